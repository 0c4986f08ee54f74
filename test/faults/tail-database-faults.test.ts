import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultSecrets, startDurableDatabase } from '../helpers/fault-fixture.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import { cliFor, expectExit } from '../helpers/run-cli.js';
import { killAllCli, spawnCli } from '../helpers/running-cli.js';

/** `tail` on PostgreSQL while its server restarts: it follows on, it never just ends. */
describe('tail when PostgreSQL restarts', { timeout: 90_000 }, () => {
  let postgres: PostgresServer;
  let env: Record<string, string>;

  beforeAll(async () => {
    const started = await startDurableDatabase();
    postgres = started.postgres;
    env = { ACTIVITY_DATABASE_URL: started.url, ...faultSecrets };
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
});
