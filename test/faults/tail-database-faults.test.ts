import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultSecrets, startDurableDatabase } from '../helpers/fault-fixture.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import { cliFor, expectExit } from '../helpers/run-cli.js';
import { killAllCli, spawnCli } from '../helpers/running-cli.js';

/** `tail` on PostgreSQL while its server restarts: it follows on, it never just ends. */
describe('tail when PostgreSQL restarts', { timeout: 90_000 }, () => {
  let postgres: PostgresServer;
  let env: Record<string, string>;
  let url: string;

  beforeAll(async () => {
    const started = await startDurableDatabase();
    postgres = started.postgres;
    url = started.url;
    env = { ACTIVITY_DATABASE_URL: url, ...faultSecrets };
  });
  afterAll(async () => {
    await killAllCli();
    postgres?.stop();
  });

  it('follows through the restart, prints what is recorded after it, and exits 0 on Ctrl-C', async () => {
    const cli = cliFor(env);
    expectExit(await cli(['record', '--tenant', 'followed', '--action', 'auth.login.success']), 0);
    const tail = spawnCli(['tail', '--tenant', 'followed', '--format', 'ndjson'], env);
    await tail.waitFor('the event recorded before', () => tail.ndjson().length === 1, 30_000);
    // Its LISTEN connection and pool are dropped: it used to end at once with exit 13,
    // a promise nothing would ever settle.
    postgres.restart();
    expectExit(await cli(['record', '--tenant', 'followed', '--action', 'auth.logout.completed']), 0);
    await tail.waitFor('the event recorded after the restart', () => tail.ndjson().length === 2, 30_000);
    expect(tail.ndjson().map((event) => [event.seq, event.action])).toEqual([
      [1, 'auth.login.success'],
      [2, 'auth.logout.completed'],
    ]);
    expect((await tail.stop('SIGINT')).exitCode).toBe(0);
  });

  it('follows on when the read that starts its stream fails: it reads again, it does not just end', async () => {
    const cli = cliFor(env);
    expectExit(await cli(['record', '--tenant', 'resumed', '--action', 'auth.login.success']), 0);
    const holder = new pg.Client({ connectionString: url });
    const admin = new pg.Client({ connectionString: url });
    await holder.connect();
    await admin.connect();
    try {
      // The backlog is printed before the table is locked: the stream's first reads then
      // wait on the lock, and each is ended while it waits.
      const tail = spawnCli(['tail', '--tenant', 'resumed', '--format', 'ndjson'], env);
      await tail.waitFor('the event recorded before', () => tail.ndjson().length === 1, 30_000);
      await holder.query('begin');
      await holder.query('lock table activity_events in access exclusive mode');
      for (let failedReads = 0; failedReads < 2; ) {
        const waiting = await tail.whileRunning(readsWaitingOnLock(admin, holder));
        if (waiting.length === 0) continue;
        await admin.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [waiting]);
        failedReads++;
      }
      await holder.query('rollback');
      expectExit(await cli(['record', '--tenant', 'resumed', '--action', 'auth.logout.completed']), 0);
      await tail.waitFor(
        'the event recorded after the failed reads',
        () => tail.ndjson().length === 2,
        30_000,
      );
      expect(tail.ndjson().map((event) => [event.seq, event.action])).toEqual([
        [1, 'auth.login.success'],
        [2, 'auth.logout.completed'],
      ]);
      expect((await tail.stop('SIGINT')).exitCode).toBe(0);
    } finally {
      await holder.end();
      await admin.end();
    }
  });
});

/** Backends of the database waiting for a lock, other than the holder's. */
async function readsWaitingOnLock(admin: pg.Client, holder: pg.Client): Promise<number[]> {
  const holderPid = (await holder.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
  const { rows } = await admin.query<{ pid: number }>(
    `select pid from pg_stat_activity
     where datname = current_database() and wait_event_type = 'Lock' and pid <> $1`,
    [holderPid],
  );
  return rows.map((row) => row.pid);
}
