import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { Command, CommanderError } from 'commander';
import { toolVersion } from '../app/tool-version.js';
import { ActivityError, errorCodes, toActivityError } from '../domain/errors.js';
import { unknownFlagIn, withCommonFlagsAfterCommand } from './arguments.js';
import { actionsCommand } from './commands/actions.js';
import { checkpointCommand } from './commands/checkpoint.js';
import { completionCommand } from './commands/completion.js';
import { deliverCommand } from './commands/deliver.js';
import { exportCommand } from './commands/export.js';
import { holdCommand } from './commands/hold.js';
import { migrateCommand } from './commands/migrate.js';
import { proofCommand } from './commands/proof.js';
import { purgeCommand } from './commands/purge.js';
import { queryCommand } from './commands/query.js';
import { recordCommand } from './commands/record.js';
import { retentionCommand } from './commands/retention.js';
import { serveCommand } from './commands/serve.js';
import { sinkCommand } from './commands/sink.js';
import { tailCommand } from './commands/tail.js';
import { tokenCommand } from './commands/token.js';
import { verifyCommand } from './commands/verify.js';
import type { CliIo } from './context.js';
import { defaultFormat, type Format, OutputClosed } from './render/output.js';
import { escapeControl } from './render/text.js';

const processIo: CliIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  argvBytes: () => {
    try {
      const bytes = readFileSync('/proc/self/cmdline');
      const parts: Buffer[] = [];
      for (
        let start = 0, end = bytes.indexOf(0);
        end !== -1;
        start = end + 1, end = bytes.indexOf(0, start)
      ) {
        parts.push(bytes.subarray(start, end));
      }
      return parts;
    } catch {
      return undefined;
    }
  },
  // Embedded PGlite is PostgreSQL compiled to WebAssembly. V8 compiles its hot
  // functions again with its optimising compiler, in the background, and a process
  // waits for those jobs before it exits: a quarter of a brief command's time
  // (`query --limit 5`: 1.07 s, 0.82 s without), for code that would never run again.
  // Long work (`query --all`: 6.2 s, 8.8 s without) keeps the compiler.
  briefCommand: () => setFlagsFromString('--liftoff-only'),
};

/** Whether a command does one small thing and exits (see briefCommand). */
function isBrief(command: Command): boolean {
  const options = command.opts();
  switch (command.parent?.name() === 'activity' ? command.name() : command.parent?.name()) {
    case 'query':
      return options.all !== true;
    case 'record':
      return options.file === undefined;
    case 'retention':
    case 'hold':
    case 'proof':
    case 'actions':
    case 'token':
      return true;
    default:
      return false;
  }
}

/**
 * Runs the CLI and returns its exit code: 0 success, 1 unexpected error, 2 invalid
 * usage or input, 3 a dependency unavailable, 4 an integrity check failed. This is
 * the only place that decides the exit code.
 */
export async function runCli(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const setExitCode = (code: number) => {
    exitCode = code;
  };
  const program = new Command('activity')
    .description('A tenant-scoped audit trail on PostgreSQL (or embedded PGlite).')
    .version(toolVersion(), '-V, --version')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout.write(text),
      writeErr: (text) => io.stderr.write(text),
      outputError: () => {},
    })
    .showSuggestionAfterError()
    .addHelpText(
      'after',
      `
Examples:
  $ activity record --tenant acme --action auth.login.success --actor-id u_1 --ip 203.0.113.7
  $ activity query --tenant acme --action 'auth.*' --since 24h
  $ activity query --tenant acme --all --format ndjson > acme.ndjson
  $ activity actions
  $ activity checkpoint && activity verify

Exit codes: 0 ok, 1 unexpected error, 2 invalid usage or input, 3 database unavailable, 4 integrity check failed.
Docs: docs/cli.md`,
    );
  for (const command of [
    migrateCommand,
    recordCommand,
    queryCommand,
    tailCommand,
    purgeCommand,
    retentionCommand,
    holdCommand,
    serveCommand,
    tokenCommand,
    actionsCommand,
    checkpointCommand,
    proofCommand,
    verifyCommand,
    exportCommand,
    sinkCommand,
    deliverCommand,
    completionCommand,
  ]) {
    program.addCommand(throwingErrors(command(io, setExitCode), program));
  }
  program.hook('preAction', (_, command) => {
    if (isBrief(command)) io.briefCommand?.();
  });
  // The shell scripts of `completion` ask here what may come next: never an error.
  if (argv[2] === '__complete') return completeCommandLine(program, argv.slice(3), io);

  const nested = new Set(
    program.commands.filter((each) => each.commands.length > 0).map((each) => each.name()),
  );
  const args = withCommonFlagsAfterCommand(argv, nested);
  try {
    assertArgumentsAreUtf8(argv, io);
    await program.parseAsync(args);
    return exitCode;
  } catch (error) {
    // The reader took what it wanted and left (`| head`): not a failure of the command.
    if (error instanceof OutputClosed) return 0;
    if (error instanceof CommanderError) {
      // --help (or `help`) is a success; help shown for a missing subcommand is a usage error.
      if (error.exitCode === 0 || error.code === 'commander.helpDisplayed') return 0;
      if (error.code === 'commander.help') return errorCodes.USAGE_INVALID.exit;
      const refused =
        (error.code === 'commander.missingMandatoryOptionValue' && unknownFlagIn(program, args.slice(2))) ||
        error.message.replace(/^error: /, '').replace(/\n\(Did you mean (.+)\?\)$/, ' (did you mean $1?)');
      const message = await withoutQuotedSecrets(refused);
      return reportError(new ActivityError('USAGE_INVALID', message), argv, io);
    }
    return reportError(toActivityError(error), argv, io);
  }
}

/** Prints what may follow `words` (see completionCandidates), one per line; exits 0 whatever happens. */
async function completeCommandLine(program: Command, words: readonly string[], io: CliIo): Promise<number> {
  const { completionCandidates } = await import('./completion.js');
  // The registry alone, not the app: a TAB must not wait for the database layers to load.
  const actions = async () => {
    const { createRegistry } = await import('../registry/registry.js');
    try {
      const [{ loadConfig }, { loadRegistryFile }] = await Promise.all([
        import('../config/load-config.js'),
        import('../registry/registry-file.js'),
      ]);
      const { registryFile } = loadConfig({}, io.env);
      return createRegistry(registryFile ? await loadRegistryFile(registryFile) : []).describe();
    } catch {
      // A broken registry file or configuration is the command's to report, not a TAB's.
      return createRegistry().describe();
    }
  };
  try {
    const candidates = await completionCandidates(program, words, actions);
    io.stdout.write(candidates.map((candidate) => `${candidate}\n`).join(''));
  } catch {
    // Nothing to offer.
  }
  return 0;
}

/** Commander quotes what it refused (`unknown option '--password=…'`): not a secret. */
async function withoutQuotedSecrets(message: string): Promise<string> {
  const { identifierProblem } = await import('../privacy/scrub.js');
  return message.replace(/'([^']*)'/g, (quoted, inner: string) =>
    identifierProblem(inner) === undefined ? quoted : "'[REDACTED]'",
  );
}

/**
 * An argument that was not valid UTF-8 reaches us with U+FFFD in place of its bad
 * bytes: it is refused, never stored altered. An argument with U+FFFD is taken for
 * valid only when the raw arguments hold it as valid UTF-8; where they cannot be read,
 * it cannot be told apart and is refused.
 */
function assertArgumentsAreUtf8(argv: readonly string[], io: CliIo): void {
  // argv[0] is node and argv[1] the script: the user's arguments start at argv[2].
  const suspects = argv.flatMap((argument, index) =>
    index >= 2 && argument.includes('\uFFFD') ? [index] : [],
  );
  if (suspects.length === 0) return;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  // How many times each text stands among the raw arguments as valid UTF-8.
  const valid = new Map<string, number>();
  for (const bytes of io.argvBytes?.() ?? []) {
    try {
      const text = decoder.decode(bytes);
      valid.set(text, (valid.get(text) ?? 0) + 1);
    } catch {
      // Not valid: what it became is not counted.
    }
  }
  const invalid = suspects.find((index) => {
    const left = valid.get(argv[index] as string) ?? 0;
    valid.set(argv[index] as string, left - 1);
    return left === 0;
  });
  if (invalid !== undefined) {
    // Named by its place as the user counts it, not quoted: it may be a secret.
    throw new ActivityError('USAGE_INVALID', `argument ${invalid - 1} is not valid UTF-8`);
  }
}

/** Commander errors (its own and its subcommands') become exceptions here, never process.exit. */
function throwingErrors(command: Command, program: Command): Command {
  for (const subcommand of command.commands) throwingErrors(subcommand, program);
  return command.exitOverride().configureOutput(program.configureOutput());
}

function reportError(error: ActivityError, argv: readonly string[], io: CliIo): number {
  const format = requestedFormat(argv) ?? defaultFormat(io.stdout);
  const detail = error.code === 'INTERNAL' && error.cause instanceof Error ? `: ${error.cause.message}` : '';
  if (format === 'json') {
    io.stderr.write(`${JSON.stringify({ error: { code: error.code, message: error.message + detail } })}\n`);
  } else {
    io.stderr.write(`error: ${escapeControl(error.message + detail)}\n`);
  }
  return error.exitCode;
}

/** The --format flag as given, read from argv because parsing may have failed before it. */
function requestedFormat(argv: readonly string[]): Format | undefined {
  const index = argv.findIndex((arg) => arg === '--format' || arg === '-o' || arg.startsWith('--format='));
  if (index === -1) return undefined;
  const value = argv[index]?.includes('=') ? argv[index]?.split('=')[1] : argv[index + 1];
  return value === 'json' || value === 'ndjson' || value === 'csv' || value === 'table' ? value : undefined;
}
