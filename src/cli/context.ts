import { userInfo } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { Chalk, type ChalkInstance } from 'chalk';
import { type Command, Option } from 'commander';
import type { Config, ConfigOverrides } from '../config/load-config.js';
import { textProblem } from '../domain/caps.js';
import { ActivityError } from '../domain/errors.js';
import { fieldLimits, tenantIdPattern } from '../domain/event.js';
import { jsonSyntaxProblem } from '../domain/json-text.js';
import { identifierProblem } from '../privacy/scrub.js';
import type { AuditActor } from '../service/audit-trail.js';
import { createOutput, defaultFormat, type Format, formats, type Output } from './render/output.js';

/** The process as the CLI sees it; tests and the library pass their own. */
export interface CliIo {
  stdin: Readable;
  /** `columns`: the terminal's width, when it is one. */
  stdout: Writable & { isTTY?: boolean; columns?: number };
  stderr: Writable & { isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  /**
   * The command line's bytes, one buffer per argument, where the system tells them
   * (Linux). Node decodes the arguments and turns invalid UTF-8 into U+FFFD; these
   * tell such an argument from one that really holds U+FFFD.
   */
  argvBytes?: () => Buffer[] | undefined;
  /**
   * Called before a brief command runs (one small read or write, then exit): the
   * process may trade speed on long work for a quicker start (see main.ts).
   */
  briefCommand?: () => void;
}

export interface CommonOptions {
  databaseUrl?: string;
  dataDir?: string;
  redisUrl?: string;
  format?: Format;
  /** false with `--no-color`. */
  color?: boolean;
  /** `--actor`, on the commands that read or administer (withActorOption). */
  actor?: string;
}

/** What every command's action gets: its output, format and configuration. */
export interface CommandContext {
  io: CliIo;
  out: Output;
  format: Format;
  /** Colours for people: on a terminal, unless NO_COLOR or --no-color. */
  paint: ChalkInstance;
  /** Loads and validates the configuration (flags over environment). */
  config(): Promise<Config>;
  /** Who the command acts as in the self-audit events: `--actor`, ACTIVITY_ACTOR, else the OS user. */
  actor(config: Config): AuditActor;
}

export type CommandAction<O> = (
  options: O,
  context: CommandContext,
  command: Command,
) => Promise<number | undefined>;

/**
 * Adds the options every command accepts (DESIGN.md). Those a command has no use for
 * (the database's, for one that opens none; the format, for `serve`, which prints
 * none) are accepted all the same, so that one set of flags works everywhere, but left
 * out of its help.
 */
export function withCommonOptions(
  command: Command,
  { database = true, format = true }: { database?: boolean; format?: boolean } = {},
): Command {
  const shown = (option: Option, used: boolean) => (used ? option : option.hideHelp());
  return command
    .addOption(
      shown(
        new Option(
          '--database-url <url>',
          'PostgreSQL URL (env ACTIVITY_DATABASE_URL; unset: embedded PGlite)',
        ),
        database,
      ),
    )
    .addOption(
      shown(
        new Option(
          '--data-dir <path>',
          'embedded database directory (env ACTIVITY_DATA_DIR, default ./.activity)',
        ),
        database,
      ),
    )
    .addOption(
      shown(
        new Option('--redis-url <url>', 'Redis URL for the live stream (env ACTIVITY_REDIS_URL)'),
        database,
      ),
    )
    .addOption(
      shown(
        new Option(
          '-o, --format <format>',
          'output format (default: table on a terminal, ndjson when piped)',
        ).choices(formats),
        format,
      ),
    )
    .addOption(
      shown(new Option('--no-color', 'no colours (also NO_COLOR, or output that is not a terminal)'), format),
    );
}

/** The examples of a command's help (`addHelpText('after', …)`), each a command line. */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}`;
}

/** Adds `--actor`, to a command that reads or administers a tenant's log. */
export function withActorOption(command: Command): Command {
  return command.option(
    '--actor <id>',
    'who you act as, in the activity.* events this command records (env ACTIVITY_ACTOR; default: your OS user name)',
  );
}

/**
 * The CLI's actor in the self-audit events. Checked here, before anything is read or
 * changed: an actor the event could not store would leave the act unrecorded.
 */
function cliActor(configured: string | undefined, fromFlag: boolean): AuditActor {
  const id = configured ?? osUserName();
  const problem = textProblem(id, fieldLimits.actorId) ?? identifierProblem(id);
  if (problem !== undefined) {
    const source = configured === undefined ? 'the OS user name' : fromFlag ? '--actor' : 'ACTIVITY_ACTOR';
    throw new ActivityError('USAGE_INVALID', `${source} ${problem}; give --actor ID`);
  }
  return { type: 'user', id, via: 'cli' };
}

/** The OS user's name; its uid where the system has no name for it (a container's bare uid). */
function osUserName(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid:${process.getuid?.() ?? 'unknown'}`;
  }
}

/** Wraps a command's action: builds its context and hands its exit code to main. */
export function action<O extends CommonOptions>(
  io: CliIo,
  setExitCode: (code: number) => void,
  run: CommandAction<O>,
): (...args: unknown[]) => Promise<void> {
  return async (...args) => {
    const command = args.at(-1) as Command;
    const options = command.opts<O>();
    const stdout = createOutput(io.stdout);
    let firstRun: { done(): void } | undefined;
    const context: CommandContext = {
      io,
      out: {
        write(text) {
          // The command's result comes once the database is open: the spinner goes first.
          firstRun?.done();
          return stdout.write(text);
        },
      },
      format: options.format ?? defaultFormat(io.stdout),
      paint: new Chalk({ level: colorsOn(io, options) ? 1 : 0 }),
      async config() {
        const { loadConfig } = await import('../config/load-config.js');
        const overrides: ConfigOverrides = {
          databaseUrl: options.databaseUrl,
          dataDir: options.dataDir,
          redisUrl: options.redisUrl,
          actor: options.actor,
        };
        const config = loadConfig(overrides, io.env);
        if (config.database.kind === 'pglite' && firstRun === undefined) {
          const { announceEmbeddedCreation } = await import('./first-run.js');
          firstRun = announceEmbeddedCreation(io, config.database.dataDir);
        }
        return config;
      },
      actor: (config) => cliActor(config.actor, options.actor !== undefined),
    };
    try {
      setExitCode((await run(options, context, command)) ?? 0);
    } catch (error) {
      throw namedByFlags(error, command);
    } finally {
      firstRun?.done();
    }
  };
}

/**
 * The core's PARAMETER_INVALID, worded for the command line where each field is a flag
 * of the command (same code and issues) (`limit` → `--limit`, `actor_id` → `--actor-id`, `action.0` → `--action`).
 */
function namedByFlags(error: unknown, command: Command): unknown {
  if (!(error instanceof ActivityError && error.code === 'PARAMETER_INVALID' && error.issues.length > 0)) {
    return error;
  }
  const flags = new Set(command.options.map((option) => option.long));
  const named = error.issues.map((issue) => {
    const flag = `--${(issue.path.split('.')[0] as string).replaceAll('_', '-')}`;
    return flags.has(flag) ? `${flag} ${issue.message}` : `${issue.path}: ${issue.message}`;
  });
  return new ActivityError('PARAMETER_INVALID', named.join('; '), { issues: [...error.issues] });
}

/** https://no-color.org: any non-empty NO_COLOR turns colours off, as --no-color does. */
function colorsOn(io: CliIo, options: CommonOptions): boolean {
  return io.stdout.isTTY === true && options.color !== false && !io.env.NO_COLOR;
}

/** Parses a JSON flag value, or fails with a usage error naming the flag. */
export function parseJsonFlag(flag: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ActivityError('USAGE_INVALID', `${flag} is not valid JSON${jsonSyntaxProblem(error)}`);
  }
}

/** Checks a `--tenant` value, or fails with a usage error. */
export function tenantFlag(value: string): string {
  if (!tenantIdPattern.test(value)) {
    throw new ActivityError('USAGE_INVALID', '--tenant must be 1-128 characters of A-Z a-z 0-9 . _ : -');
  }
  return value;
}

/**
 * The core's PARAMETER_INVALID, worded for the command line: each issue named by the
 * flag that gave its field (`retention_days` → `--days`), as a USAGE_INVALID.
 */
export async function withFlagNames<T>(work: Promise<T>, flags: Record<string, string>): Promise<T> {
  try {
    return await work;
  } catch (error) {
    if (error instanceof ActivityError && error.code === 'PARAMETER_INVALID' && error.issues.length > 0) {
      throw new ActivityError(
        'USAGE_INVALID',
        error.issues.map((issue) => `${flags[issue.path] ?? issue.path} ${issue.message}`).join('; '),
      );
    }
    throw error;
  }
}
