import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkEventsSql } from '../helpers/bulk-events.js';
import { createTestDatabase } from '../helpers/databases.js';
import { binPath, expectExit, repoRoot, runCli, testSecret } from '../helpers/run-cli.js';

/** Events of the exported tenant: several MB of NDJSON, far more than a pipe holds. */
const eventCount = 30_000;

describe('the CLI when PostgreSQL drops its connection', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let admin: pg.Client;

  beforeAll(async () => {
    database = await createTestDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(bulkEventsSql('exported', eventCount));
  });
  afterAll(async () => {
    await admin?.end();
    await database?.drop();
  });

  it('query --all whose COPY backend is terminated exits 3 with one line on stderr', async () => {
    const child = spawn(process.execPath, [binPath, 'query', '--tenant', 'exported', '--all'], {
      cwd: repoRoot,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        TMPDIR: tmpdir(),
        ACTIVITY_DATABASE_URL: database.url,
        ACTIVITY_SECRET: testSecret,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const exited = once(child, 'exit') as Promise<[number | null, string | null]>;
    // Nobody reads stdout yet: the export stalls on the full pipe, its COPY still running.
    child.stdout.pause();
    const copyBackend = await waitForCopy(admin);
    await admin.query('select pg_terminate_backend($1)', [copyBackend]);
    child.stdout.resume();
    const [code] = await exited;
    expect(code, stderr).toBe(3);
    const lines = stderr.split('\n').filter((line) => line !== '');
    expect(lines, stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: cannot use PostgreSQL at 127\.0\.0\.1:\d+\/activity_test_\w+: /);
  });

  it('sslmode=require against a server without TLS exits 3, the database unavailable', async () => {
    const url = `${database.url}?sslmode=require`;
    const run = await runCli(['query', '--tenant', 'exported', '--limit', '1'], {
      env: { ACTIVITY_DATABASE_URL: url, ACTIVITY_SECRET: testSecret },
    });
    expectExit(run, 3);
    // pg itself warns about how it reads sslmode, on the lines before.
    expect(run.stderr).toMatch(
      /\nerror: cannot use PostgreSQL at .*: The server does not support SSL connections\n$/,
    );
  });
});

/** The pid of the export's COPY once it runs; bounded wait. */
async function waitForCopy(admin: pg.Client): Promise<number> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { rows } = await admin.query<{ pid: number }>(
      `select pid from pg_stat_activity
       where datname = current_database() and state = 'active' and query like 'copy (%'`,
    );
    if (rows[0]) return rows[0].pid;
    if (Date.now() > deadline) throw new Error('the export never started its COPY');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
