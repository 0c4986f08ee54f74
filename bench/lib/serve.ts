import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/helpers/postgres-server.js';
import { binPath, repoRoot } from './context.js';
import { cliEnvironment, pageSessionOptions } from './tool.js';

/** The HS256 key of the bench's `serve` and of the tokens minted for it (≥ 32 bytes). */
const benchJwtSecret = 'bench-jwt-secret-0123456789abcdef0123456789abcdef';

/** A child process serving HTTP on loopback, as the bench runs `activity serve` or the bare baseline. */
export interface ServedProcess {
  url: string;
  pid: number;
  /** The process's resident high-water mark so far, in MB (Linux /proc; 0 elsewhere). */
  peakRssMb(): Promise<number>;
  /** CPU time the process has used so far (user + system), in seconds (Linux /proc; 0 elsewhere). */
  cpuSeconds(): Promise<number>;
  /** The end of its stderr (serve's JSON log), for error messages. */
  logTail(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
}

function serveEnvironment(databaseUrl: string, redisUrl?: string): Record<string, string> {
  return {
    ...cliEnvironment(databaseUrl),
    ACTIVITY_JWT_SECRET: benchJwtSecret,
    ...(redisUrl ? { ACTIVITY_REDIS_URL: redisUrl } : {}),
  };
}

/** Mints a bearer token with the built CLI (`activity token`), as an operator would. */
export function mintToken(databaseUrl: string, tenantId: string, scopes: readonly string[]): Promise<string> {
  const args = [
    binPath,
    'token',
    '--tenant',
    tenantId,
    '--ttl',
    '2h',
    ...scopes.flatMap((s) => ['--scope', s]),
  ];
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      args,
      { env: serveEnvironment(databaseUrl), cwd: repoRoot },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`activity token failed: ${stderr || error.message}`));
        else resolve(stdout.trim());
      },
    );
  });
}

/** Mints one token per tenant, a few CLI processes at a time. */
export async function mintTokens(
  databaseUrl: string,
  tenants: readonly string[],
  scopes: readonly string[],
): Promise<Map<string, string>> {
  const tokens = new Map<string, string>();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(4, tenants.length) }, async () => {
      while (next < tenants.length) {
        const tenant = tenants[next++] as string;
        tokens.set(tenant, await mintToken(databaseUrl, tenant, scopes));
      }
    }),
  );
  return tokens;
}

async function highWaterMarkMb(pid: number): Promise<number> {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** utime + stime of /proc/PID/stat, in clock ticks of 1/100 s (the Linux default). */
async function cpuSecondsOf(pid: number): Promise<number> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after "pid (comm) " start at the state (field 3): utime is field 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** GETs `url` once; resolves with the status (0 when the connection fails). */
export function probe(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, timeout: 2000 }, (response) => {
      response.resume();
      response.once('end', () => resolve(response.statusCode ?? 0));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(0));
    req.end();
  });
}

/**
 * Spawns a server process with stdout ignored and stderr to a file in `scratch` (so
 * the bench spends nothing reading its logs), and waits until `readyPath` answers 200.
 */
async function spawnServer(options: {
  args: readonly string[];
  env: Record<string, string>;
  port: number;
  readyPath: string;
  logFile: string;
  name: string;
}): Promise<ServedProcess> {
  const log = openSync(options.logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, options.args, {
      env: options.env,
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', log],
    });
  } finally {
    closeSync(log);
  }
  const exited = once(child, 'exit').then(() => child.exitCode);
  // Resolves on 'error' too (a spawn that failed never exits).
  child.once('error', () => {});
  const url = `http://127.0.0.1:${options.port}`;
  const logTail = () => {
    try {
      return readFileSync(options.logFile, 'utf8').slice(-2000);
    } catch {
      return '';
    }
  };
  const stop = async (graceMs = 15_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    try {
      return await exited;
    } finally {
      clearTimeout(timer);
    }
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${options.name} exited ${child.exitCode ?? child.signalCode} at start: ${logTail()}`);
    }
    if ((await probe(`${url}${options.readyPath}`)) === 200) break;
    if (Date.now() > deadline) {
      await stop(1000);
      throw new Error(`${options.name} was not ready within 20 s: ${logTail()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const pid = child.pid as number;
  return {
    url,
    pid,
    peakRssMb: () => highWaterMarkMb(pid),
    cpuSeconds: () => cpuSecondsOf(pid),
    logTail,
    stop,
  };
}

/**
 * `activity serve` on loopback with the built CLI: the live stream on Redis when
 * `redisUrl` is given, else on PostgreSQL LISTEN/NOTIFY.
 */
export async function startServe(options: {
  databaseUrl: string;
  redisUrl?: string | undefined;
  scratch: string;
  name: string;
  /** More environment (ACTIVITY_AUDIT_READS=false, say). */
  env?: Record<string, string>;
}): Promise<ServedProcess> {
  const port = await freePort();
  return spawnServer({
    args: [binPath, 'serve', '--host', '127.0.0.1', '--port', String(port)],
    env: { ...serveEnvironment(options.databaseUrl, options.redisUrl), ...options.env },
    port,
    readyPath: '/readyz',
    logFile: join(options.scratch, `${options.name}.log`),
    name: 'activity serve',
  });
}

/** The B9 baseline (bare-server.ts, compiled beside this file): node:http + pg, no auth. */
export async function startBareServer(options: {
  databaseUrl: string;
  tenantId: string;
  scratch: string;
}): Promise<ServedProcess> {
  const port = await freePort();
  const script = fileURLToPath(new URL('./bare-server.js', import.meta.url));
  return spawnServer({
    args: [script, options.databaseUrl, options.tenantId, String(port)],
    // pg reads PGOPTIONS: the same session settings as serve's page connections.
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PGOPTIONS: pageSessionOptions },
    port,
    readyPath: '/readyz',
    logFile: join(options.scratch, 'bare-server.log'),
    name: 'the bare server',
  });
}

/**
 * The upper bounds of the Prometheus histogram buckets that hold the `quantiles`
 * (e.g. 0.5, 0.99) of `name` in a /metrics text; Infinity past the last bucket.
 */
export function histogramBounds(metrics: string, name: string, quantiles: readonly number[]): number[] {
  const buckets: Array<[number, number]> = [];
  const pattern = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)$`, 'gm');
  for (const match of metrics.matchAll(pattern)) {
    buckets.push([match[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(match[1]), Number(match[2])]);
  }
  const total = buckets.at(-1)?.[1] ?? 0;
  return quantiles.map(
    (q) => buckets.find(([, count]) => total > 0 && count >= q * total)?.[0] ?? Number.NaN,
  );
}
