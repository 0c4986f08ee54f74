import type { Command, Option } from 'commander';
import { activityScopes } from '../auth/token-claims.js';
import { commonFlags } from './arguments.js';

export const completionShells = ['bash', 'zsh', 'fish'] as const;
export type CompletionShell = (typeof completionShells)[number];

/** The one line that tells the shell to complete a file name instead. */
export const filesDirective = ':files';

/** An action of the registry, as completion offers it. */
export interface CompletableAction {
  name: string;
  namespace: string;
  description: string;
  reserved: boolean;
}

/**
 * What may come next on the command line `words` (the words after `activity`, the last
 * being the one under the cursor, possibly empty): commands, flags, or a flag's values,
 * one `value<TAB>description` each; or only `filesDirective`. The shell filters them by
 * what is typed. `actions` is called only when an action name is wanted.
 */
export async function completionCandidates(
  program: Command,
  words: readonly string[],
  actions: () => Promise<CompletableAction[]>,
): Promise<string[]> {
  const current = words.at(-1) ?? '';
  let command = program;
  let awaitingValue: Option | undefined;
  let operandsOnly = false;
  for (const word of words.slice(0, -1)) {
    if (awaitingValue) {
      awaitingValue = undefined;
    } else if (word === '--') {
      operandsOnly = true;
    } else if (word.startsWith('-') && !operandsOnly) {
      const option = optionNamed(command, word.split('=', 1)[0] as string);
      if (option && takesValue(option) && !word.includes('=')) awaitingValue = option;
    } else {
      command = command.commands.find((sub) => sub.name() === word) ?? command;
    }
  }
  if (awaitingValue) return valuesOf(awaitingValue, command, actions);
  // After `--` come operands only, and no command takes free ones.
  if (operandsOnly) return [];
  if (current.startsWith('--') && current.includes('=')) {
    const name = current.split('=', 1)[0] as string;
    const option = optionNamed(command, name);
    if (!option || !takesValue(option)) return [];
    const values = await valuesOf(option, command, actions);
    return values[0] === filesDirective ? values : values.map((value) => `${name}=${value}`);
  }
  const help = command.createHelp();
  const argumentChoices = command.registeredArguments.flatMap((argument) => argument.argChoices ?? []);
  if (!current.startsWith('-') && argumentChoices.length > 0) {
    return argumentChoices.map((choice) => line(choice, ''));
  }
  if (current.startsWith('-') || command.commands.length === 0) {
    const options = command === program ? commonOptionsOf(program) : help.visibleOptions(command);
    return options.flatMap((option) => (option.long ? [line(option.long, option.description)] : []));
  }
  return help
    .visibleCommands(command)
    .filter((sub) => sub.name() !== 'help')
    .map((sub) => line(sub.name(), sub.description()));
}

/** The flag `name` of `command` or its parents; before any command, of the first that has it. */
function optionNamed(command: Command, name: string): Option | undefined {
  for (let each: Command | null = command; each; each = each.parent) {
    const found = each.options.find((option) => option.long === name || option.short === name);
    if (found) return found;
  }
  if (command.parent) return undefined;
  for (const sub of command.commands) {
    const found = sub.options.find((option) => option.long === name || option.short === name);
    if (found) return found;
  }
  return undefined;
}

/** Before a command: the program's own flags, and those every command takes (`activity --data-dir X tail …`). */
function commonOptionsOf(program: Command): Option[] {
  const common = [...commonFlags].flatMap((name) => {
    const option = optionNamed(program, name);
    return option?.long === name ? [option] : [];
  });
  return [...program.createHelp().visibleOptions(program), ...common];
}

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

/** A value placeholder that names a file or a directory. */
const pathPlaceholder = /<(path|dir|file)>/;

async function valuesOf(
  option: Option,
  command: Command,
  actions: () => Promise<CompletableAction[]>,
): Promise<string[]> {
  if (option.argChoices) return option.argChoices.map((choice) => line(choice, ''));
  if (pathPlaceholder.test(option.flags)) return [filesDirective];
  // Other scopes may be granted (serve warns of none it knows); these are the ones it checks.
  if (option.long === '--scope') return activityScopes.map((scope) => line(scope, ''));
  if (option.long !== '--action') return [];
  // `record` records public actions only; filters may also name the tool's own.
  const offered = (await actions()).filter((action) => command.name() !== 'record' || !action.reserved);
  const namespaces = [...new Set(offered.map((action) => action.namespace))];
  return [
    ...offered.map((action) => line(action.name, action.description)),
    ...(command.name() === 'record'
      ? []
      : namespaces.map((namespace) => line(`${namespace}.*`, `every ${namespace} action`))),
  ];
}

/** A candidate and its description, on one line: tabs and line breaks in the text are spaces. */
function line(value: string, description: string): string {
  const text = description.replace(/\s+/g, ' ').trim();
  return text === '' ? value : `${value}\t${text}`;
}

/** The script that makes `shell` complete `activity` by asking `activity __complete`. */
export function completionScript(shell: CompletionShell): string {
  return scripts[shell];
}

const scripts: Record<CompletionShell, string> = {
  bash: `# activity completion for bash: source this file, or put it in
# ~/.local/share/bash-completion/completions/activity
_activity_complete() {
  # The line up to the cursor, split on blanks only: bash would also split at = and :,
  # which --format=json and a path with a colon hold.
  local line="\${COMP_LINE:0:COMP_POINT}" output current value flag
  local -a words candidates
  read -ra words <<< "$line"
  [[ "$line" =~ [[:space:]]$ ]] && words+=("")
  current="\${words[-1]}"
  output="$(activity __complete "\${words[@]:1}" 2>/dev/null)" || return
  if [[ "$output" == "${filesDirective}" ]]; then
    flag="" value="$current"
    if [[ "$current" == --*=* ]]; then flag="\${current%%=*}=" value="\${current#*=}"; fi
    compopt -o filenames 2>/dev/null
    mapfile -t candidates < <(compgen -f -- "$value")
    candidates=("\${candidates[@]/#/$flag}")
  else
    mapfile -t candidates < <(compgen -W "$(printf '%s\\n' "$output" | cut -f1)" -- "$current")
  fi
  # bash replaces only what follows the last = or : of the word: offer that part.
  local replaced="\${COMP_WORDS[COMP_CWORD]}"
  [[ "$replaced" == [=:] ]] && replaced=""
  local before="\${current%"$replaced"}"
  COMPREPLY=("\${candidates[@]#"$before"}")
}
complete -F _activity_complete activity
`,
  zsh: `#compdef activity
# activity completion for zsh: put this file in a directory of $fpath as _activity
_activity() {
  local -a lines candidates
  local output entry
  output="$(activity __complete "\${(@)words[2,CURRENT]}" 2>/dev/null)" || return
  lines=("\${(@f)output}")
  if [[ "\${lines[1]}" == "${filesDirective}" ]]; then
    # --file=PATH: complete the path after the =.
    compset -P '--*='
    _files
    return
  fi
  for entry in "\${lines[@]}"; do
    [[ -z "$entry" ]] && continue
    if [[ "$entry" == *$'\\t'* ]]; then
      candidates+=("\${\${entry%%$'\\t'*}//:/\\\\:}:\${entry#*$'\\t'}")
    else
      candidates+=("\${entry//:/\\\\:}")
    fi
  done
  _describe -t values activity candidates
}
if [[ "$funcstack[1]" == _activity ]]; then _activity "$@"; else compdef _activity activity; fi
`,
  fish: `# activity completion for fish: put this file in ~/.config/fish/completions/activity.fish
function __activity_complete
    set -l words (commandline -opc) (commandline -ct)
    set -e words[1]
    set -l output (activity __complete $words 2>/dev/null)
    if test "$output[1]" = "${filesDirective}"
        # --file=PATH: complete the path after the =, and keep the flag in front.
        set -l current (commandline -ct)
        set -l flag (string match -r -- '^--[^=]*=' $current)
        __fish_complete_path (string replace -r -- '^--[^=]*=' '' $current) | string replace -r -- '^' "$flag"
        return
    end
    printf '%s\\n' $output
end
complete -c activity -f -a '(__activity_complete)'
`,
};
