import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { expect } from 'vitest';

/** The built binary (`npm run build` first): what an operator runs. */
export const binPath = fileURLToPath(new URL('../../bin/activity.js', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Any string of at least 32 bytes will do as ACTIVITY_SECRET. */
export const testSecret = 'e2e-secret-0123456789abcdef0123456789abcdef';

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

export interface RunOptions {
  /** Added to a minimal environment; `undefined` leaves a variable out. */
  env?: Record<string, string | undefined>;
  /** Written to the child's stdin, then closed. */
  input?: string | Uint8Array;
  cwd?: string;
  timeoutMs?: number;
}

/**
 * Runs `node bin/activity.js …` with a clean environment (nothing inherited that
 * could point it at another database), colours off, never rejecting.
 */
export async function runCli(args: readonly string[], options: RunOptions = {}): Promise<CliRun> {
  return runProcess(process.execPath, [binPath, ...args], options);
}

/**
 * Runs the CLI in this process, through the same `runCli` that bin/activity.js calls,
 * with the environment `cleanEnvironment` gives a child and pipes for stdin, stdout and
 * stderr (no TTY). For what a process adds nothing to (usage errors, exit codes); the
 * working directory is not changed, so give such a run no command that uses it.
 */
export async function runCliInProcess(
  args: readonly string[],
  options: RunOptions & {
    terminalColumns?: number;
    stderrIsTerminal?: boolean;
    /** Told when the command is a brief one (see CliIo.briefCommand). */
    briefCommand?: () => void;
  } = {},
): Promise<CliRun> {
  // A terminal of that many columns, when given: what a table fits and colours for.
  const stdout =
    options.terminalColumns === undefined
      ? new PassThrough()
      : Object.assign(new PassThrough(), { isTTY: true, columns: options.terminalColumns });
  // A terminal on stderr, where progress is shown: what moves its cursor writes nothing here.
  const stderr = Object.assign(
    new PassThrough(),
    options.stderrIsTerminal === true
      ? { isTTY: true, columns: 80, cursorTo: () => true, clearLine: () => true, moveCursor: () => true }
      : {},
  );
  const output = Promise.all([text(stdout), text(stderr)]);
  const stdin = options.input === undefined ? Readable.from([]) : Readable.from([Buffer.from(options.input)]);
  const argv = [process.execPath, binPath, ...args];
  const started = Date.now();
  // Imported here, so that files that only spawn the CLI do not load its source.
  const { runCli } = await import('../../src/cli/main.js');
  const exitCode = await runCli(argv, {
    stdin,
    stdout,
    stderr,
    env: cleanEnvironment(options.env),
    // What /proc/self/cmdline holds for a child given these (UTF-8) arguments.
    argvBytes: () => argv.map((argument) => Buffer.from(argument, 'utf8')),
    ...(options.briefCommand ? { briefCommand: options.briefCommand } : {}),
  });
  stdout.end();
  stderr.end();
  const [stdoutText, stderrText] = await output;
  return { exitCode, stdout: stdoutText, stderr: stderrText, durationMs: Date.now() - started };
}

/** `runCliInProcess` bound to one database (and secret), like `cliFor`. */
export function inProcessCliFor(env: Record<string, string | undefined>) {
  return (args: readonly string[], options: RunOptions = {}) =>
    runCliInProcess(args, { ...options, env: { ...env, ...options.env } });
}

/**
 * Runs `script` with `sh -c`, where `"$ACTIVITY"` is the CLI: for arguments Node
 * cannot pass itself, such as bytes that are not UTF-8 (`"$(printf 'u\\377')"`).
 */
export async function runCliInShell(script: string, options: RunOptions = {}): Promise<CliRun> {
  return runProcess('sh', ['-c', script], {
    ...options,
    env: { ...options.env, ACTIVITY: `${process.execPath} ${binPath}` },
  });
}

/**
 * The environment of a CLI under test: nothing inherited that could point it at
 * another database, colours off, and `extra` (an `undefined` leaves a variable out).
 */
export function cleanEnvironment(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    TMPDIR: tmpdir(),
    LANG: 'C.UTF-8',
    FORCE_COLOR: '0',
    NO_COLOR: '1',
  };
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

async function runProcess(file: string, args: readonly string[], options: RunOptions): Promise<CliRun> {
  const env = cleanEnvironment(options.env);
  const started = Date.now();
  const result = await execa(file, args, {
    reject: false,
    extendEnv: false,
    env,
    cwd: options.cwd ?? repoRoot,
    stripFinalNewline: false,
    timeout: options.timeoutMs ?? 25_000,
    ...(options.input === undefined ? { stdin: 'ignore' as const } : { input: options.input }),
  });
  return {
    exitCode: result.exitCode ?? -1,
    stdout: String(result.stdout ?? ''),
    stderr: String(result.stderr ?? ''),
    durationMs: Date.now() - started,
  };
}

/** A runner bound to one database (and secret), for the common case. */
export function cliFor(env: Record<string, string | undefined>) {
  return (args: readonly string[], options: RunOptions = {}) =>
    runCli(args, { ...options, env: { ...env, ...options.env } });
}

/** The process exited with `code`; on failure the message shows what it printed. */
export function expectExit(run: CliRun, code: number): void {
  expect(
    run.exitCode,
    `exit code of the CLI (stdout: ${run.stdout.slice(0, 1000)} stderr: ${run.stderr.slice(0, 1000)})`,
  ).toBe(code);
}

/** Parses stdout as exactly one JSON document. */
export function parseJson<T = Record<string, unknown>>(text: string): T {
  expect(text.endsWith('\n'), 'JSON output ends with a newline').toBe(true);
  return JSON.parse(text) as T;
}

/** Parses NDJSON: one JSON document per non-empty line. */
export function parseNdjson<T = Record<string, unknown>>(text: string): T[] {
  if (text === '') return [];
  expect(text.endsWith('\n'), 'NDJSON output ends with a newline').toBe(true);
  return text
    .slice(0, -1)
    .split('\n')
    .map((line) => JSON.parse(line) as T);
}

export interface CliErrorBody {
  code: string;
  message: string;
}

/** Asserts an exit code and one `{"error":{"code","message"}}` line on stderr; returns the error. */
export function expectJsonError(run: CliRun, exitCode: number, code: string): CliErrorBody {
  expectExit(run, exitCode);
  const lines = run.stderr.split('\n').filter((line) => line.trim() !== '');
  expect(lines, 'stderr holds one line').toHaveLength(1);
  const body = JSON.parse(lines[0] as string) as { error: CliErrorBody };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error).toMatchObject({ code, message: expect.any(String) });
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error;
}

/** A fresh directory under the OS temp dir; `remove()` deletes it. */
export async function createTempDir(prefix: string): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), `activity-e2e-${prefix}-`));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
