import { Argument, Command } from 'commander';
import { type CompletionShell, completionScript, completionShells } from '../completion.js';
import { action, type CliIo, type CommonOptions, examples, withCommonOptions } from '../context.js';

export function completionCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('completion')
      .description('print the shell script that completes commands, flags, formats and action names')
      .addArgument(new Argument('<shell>', 'the shell to complete in').choices(completionShells)),
    { database: false, format: false },
  )
    .addHelpText(
      'after',
      `
The script asks \`activity\` (on your PATH) what may come next, so it follows the
registry (ACTIVITY_REGISTRY_FILE) and new versions without being installed again.
In bash, \`source <(activity completion bash)\` in ~/.bashrc also works.
${examples(
  'activity completion bash > ~/.local/share/bash-completion/completions/activity',
  'activity completion zsh > ~/.zfunc/_activity   # ~/.zfunc in fpath, then compinit',
  'activity completion fish > ~/.config/fish/completions/activity.fish',
)}`,
    )
    .action(
      action<CommonOptions>(io, setExitCode, async (_options, context, command) => {
        await context.out.write(completionScript(command.args[0] as CompletionShell));
        return 0;
      }),
    );
}
