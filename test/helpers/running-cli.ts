import { execa } from 'execa';
import { Conditions } from './conditions.js';
import { binPath, cleanEnvironment, repoRoot } from './run-cli.js';

/** A long-running `activity …` process whose output is read as it comes. */
export interface RunningCli {
  child: ReturnType<typeof execCli>;
  stdout(): string;
  stderr(): string;
  /** Complete stdout lines parsed as JSON (tail --format ndjson). */
  ndjson<T = Record<string, unknown>>(): T[];
  /** The JSON lines `serve` logged on stderr so far. */
  logs(): Record<string, unknown>[];
  /** True once the process has exited. */
  readonly exited: boolean;
  /** Resolves with the exit code once the process has exited. */
  readonly finished: Promise<{ exitCode: number | undefined }>;
  /** `work`, unless the process exits first: then it fails with what the process printed. */
  whileRunning<T>(work: Promise<T>): Promise<T>;
  /** Resolves once `check` holds; fails at once if the process exits first. */
  waitFor(what: string, check: () => boolean, timeoutMs?: number): Promise<void>;
  /** Sends `signal` and waits for the exit; reports the exit code and how long it took. */
  stop(
    signal: 'SIGTERM' | 'SIGINT',
    timeoutMs?: number,
  ): Promise<{ exitCode: number | undefined; ms: number }>;
}

const running = new Set<RunningCli>();

/** `node bin/activity.js …` in a clean environment, output read as it comes, never rejecting. */
function execCli(args: readonly string[], env: Record<string, string>, stdin: 'ignore' | 'pipe' = 'ignore') {
  return execa(process.execPath, [binPath, ...args], {
    reject: false,
    extendEnv: false,
    env: cleanEnvironment(env),
    cwd: repoRoot,
    stdin,
    buffer: false,
    forceKillAfterDelay: 15_000,
  });
}

/** Starts `activity …` with `env` added to a clean environment; stop it with `stop` or `killAllCli`. */
export function spawnCli(
  args: readonly string[],
  env: Record<string, string>,
  options: { stdin?: 'ignore' | 'pipe' } = {},
): RunningCli {
  const child = execCli(args, env, options.stdin);
  let stdout = '';
  let stderr = '';
  let exited = false;
  const conditions = new Conditions();
  const wake = () => conditions.changed();
  child.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
    wake();
  });
  const finished = child.then((result) => {
    exited = true;
    running.delete(cli);
    wake();
    return result;
  });
  const cli: RunningCli = {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    ndjson: <T>() =>
      stdout
        .split('\n')
        .slice(0, -1)
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as T),
    logs: () =>
      stderr
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Record<string, unknown>),
    get exited() {
      return exited;
    },
    finished: finished.then((result) => ({ exitCode: result.exitCode })),
    whileRunning(work) {
      const exit = finished.then((result) => {
        throw new Error(
          `\`activity ${args[0]}\` exited (code ${result.exitCode}); stderr: ${stderr.slice(-2000)}`,
        );
      });
      exit.catch(() => {});
      return Promise.race([work, exit]);
    },
    waitFor(what, check, timeoutMs = 10_000) {
      const describe = () =>
        `\`activity ${args[0]}\`: ${what}; stdout: ${stdout.slice(-1500)} stderr: ${stderr.slice(-1500)}`;
      const holdsWhileRunning = () => {
        if (check()) return true;
        if (exited) throw new Error(`exited (code ${child.exitCode}) before ${describe()}`);
        return false;
      };
      return conditions.waitFor(holdsWhileRunning, timeoutMs, describe);
    },
    async stop(signal, timeoutMs = 15_000) {
      const started = Date.now();
      child.kill(signal);
      const result = await Promise.race([
        finished,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), timeoutMs)),
      ]);
      const ms = Date.now() - started;
      if (result === undefined) {
        child.kill('SIGKILL');
        await finished;
        throw new Error(
          `\`activity ${args[0]}\` did not exit within ${timeoutMs} ms of ${signal}; stderr: ${stderr}`,
        );
      }
      return { exitCode: result.exitCode, ms };
    },
  };
  running.add(cli);
  return cli;
}

/** Kills every process started by spawnCli that is still running (afterAll). */
export async function killAllCli(): Promise<void> {
  for (const cli of [...running]) {
    cli.child.kill('SIGKILL');
    await cli.child.catch(() => undefined);
  }
}

export interface RunningServe extends RunningCli {
  url: string;
  port: number;
  /** The live stream's transport, from the `listening` log line. */
  stream: string;
}

/** `activity serve --port N`; resolves with its URL from the `listening` log line. */
export async function startServe(env: Record<string, string>, port = 0): Promise<RunningServe> {
  const serve = spawnCli(['serve', '--port', String(port)], env);
  let listening: { url: string; stream: string } | undefined;
  await serve.waitFor(
    'the listening log line',
    () => {
      const record = serve.logs().find((line) => line.msg === 'listening');
      if (record) listening = { url: String(record.url), stream: String(record.stream) };
      return listening !== undefined;
    },
    15_000,
  );
  const { url, stream } = listening as { url: string; stream: string };
  return Object.assign(serve, { url, stream, port: Number(new URL(url).port) });
}
