import { execFileSync, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A throwaway PostgreSQL cluster on loopback, owned by the `postgres` user when we are root. */
export interface PostgresServer {
  /** URL of the `postgres` database, as superuser. */
  adminUrl: string;
  urlFor(database: string): string;
  /** `pg_ctl restart -m fast`: every connection is dropped; returns once it accepts connections again. */
  restart(): void;
  /** `pg_ctl stop -m fast`, keeping the data: an outage until `start()`. */
  halt(): void;
  start(): void;
  stop(): void;
}

export function postgresBin(): string {
  const fromEnv = process.env.PG_BIN;
  if (fromEnv) return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      'PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: install postgresql (apt-get install -y postgresql) or set PG_BIN',
    );
  }
  return join(root, versions[0] as string, 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface StartPostgresOptions {
  /**
   * Commits survive a crash (fsync and synchronous_commit on, as in production).
   * Off by default: the suite runs faster, and only the fault tests crash a server.
   */
  durable?: boolean;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const bin = postgresBin();
  const isRoot = process.getuid?.() === 0;
  const directory = mkdtempSync(join(tmpdir(), 'activity-pg-'));
  const run = (program: string, args: string[]) => {
    const command = isRoot ? 'runuser' : join(bin, program);
    const fullArgs = isRoot ? ['-u', 'postgres', '--', join(bin, program), ...args] : args;
    const result = spawnSync(command, fullArgs, { encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(
        `the test PostgreSQL: ${program} ${args.at(-1)} failed: ${result.stderr || result.stdout || result.error}`,
      );
    }
  };
  if (isRoot) execFileSync('chown', ['postgres', directory]);
  const data = join(directory, 'data');
  run('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--locale=C']);
  const port = await freePort();
  const settings = [
    `-p ${port}`,
    `-k ${directory}`,
    '-c listen_addresses=127.0.0.1',
    ...(options.durable ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    '-c max_connections=200',
  ].join(' ');
  const pgCtl = (...args: string[]) =>
    run('pg_ctl', ['-D', data, '-o', settings, '-l', join(directory, 'log'), '-w', '-t', '30', ...args]);
  pgCtl('start');
  const urlFor = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    adminUrl: urlFor('postgres'),
    urlFor,
    halt: () => pgCtl('-m', 'fast', 'stop'),
    start: () => pgCtl('start'),
    restart: () => pgCtl('-m', 'fast', 'restart'),
    stop() {
      spawnSync(isRoot ? 'runuser' : join(bin, 'pg_ctl'), [
        ...(isRoot ? ['-u', 'postgres', '--', join(bin, 'pg_ctl')] : []),
        '-D',
        data,
        '-m',
        'immediate',
        'stop',
      ]);
      if (isRoot) chownSync(directory, 0, 0);
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
