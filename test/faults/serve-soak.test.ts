import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { faultSecrets, readWriteTokens, startDurableDatabase, withClient } from '../helpers/fault-fixture.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import { killAllCli, type RunningServe, startServe } from '../helpers/running-cli.js';
import { openSse, type SseTestStream } from '../helpers/sse-client.js';
import { startWriteLoad, type WriteLoad } from '../helpers/write-load.js';

/**
 * How long the soak runs: 15 s in the suite; ACTIVITY_SOAK_SECONDS=300 for the
 * five-minute run of docs/operations.md.
 */
const soakSeconds = Number(process.env.ACTIVITY_SOAK_SECONDS ?? 15);

/**
 * `serve` under eight POST loops while PostgreSQL keeps losing its sessions: each
 * round terminates them, every fifth restarts the server, every seventh kills a
 * backend (crash recovery). Each round waits for more acknowledged writes, so the
 * faults are paced by the load itself.
 */
describe('serve under load through repeated database faults', { timeout: (soakSeconds + 120) * 1000 }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let serve: RunningServe;
  let load: WriteLoad;
  let stream: SseTestStream;

  beforeAll(async () => {
    ({ postgres, url: databaseUrl } = await startDurableDatabase());
    serve = await startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets });
    const tokens = await readWriteTokens(['soak-a', 'soak-b', 'soak-c', 'soak-d']);
    stream = await openSse(`${serve.url}/api/v1/activity/stream`, {
      authorization: `Bearer ${tokens.get('soak-a')}`,
    });
    load = startWriteLoad({ url: serve.url, tokens, clients: 8, maxRequestsPerClient: 1_000_000 });
  });
  afterAll(async () => {
    await load?.stop();
    await stream?.close();
    await killAllCli();
    postgres?.stop();
  });

  it(`stays up for ${soakSeconds} s, answers only 201 or 503, and stores every acknowledged write once`, async () => {
    const started = Date.now();
    let round = 0;
    while (Date.now() - started < soakSeconds * 1000 && round < 10_000) {
      round++;
      await serve.whileRunning(load.waitForMoreAcks(100, 60_000));
      if (round % 5 === 0) postgres.restart();
      else if (round % 7 === 0) {
        const [pid] = await sessionsOf(databaseUrl);
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
      } else {
        await withClient(databaseUrl, (client) =>
          client.query(
            `select pg_terminate_backend(pid) from pg_stat_activity
             where application_name = 'activity' and datname = current_database()`,
          ),
        );
      }
    }
    await serve.whileRunning(load.waitForMoreAcks(100, 60_000));
    await load.stop();
    expect(serve.exited).toBe(false);
    expect([...load.refused.keys()].filter((status) => status !== 503)).toEqual([]);

    const acked = [...load.acked.keys()];
    const copies = await withClient(databaseUrl, async (client) =>
      (
        await client.query<{ copies: string }>(
          'select count(*) as copies from activity_events where id = any($1::uuid[]) group by id',
          [acked],
        )
      ).rows.map((row) => Number(row.copies)),
    );
    expect(copies.length).toBe(acked.length);
    expect(copies.filter((count) => count !== 1)).toEqual([]);

    // The stream has every event of its tenant, in order, once: the acknowledged
    // ones and any that committed while their answer was lost.
    const lastOfA = await withClient(databaseUrl, async (client) =>
      Number(
        (
          await client.query<{ last: string }>(
            `select max(seq) as last from activity_events where tenant_id = 'soak-a'`,
          )
        ).rows[0]?.last,
      ),
    );
    await stream.waitFor(`seq ${lastOfA}`, (s) => s.messages.at(-1)?.id === String(lastOfA), 30_000);
    expect(stream.seqs()).toEqual(Array.from({ length: lastOfA }, (_, i) => i + 1));
    console.info(
      `soak: ${Math.round((Date.now() - started) / 1000)} s, ${round} fault rounds, ${acked.length} writes acknowledged, other answers ${JSON.stringify([...load.refused])}`,
    );
  });
});

async function sessionsOf(url: string): Promise<number[]> {
  return withClient(url, async (client) =>
    (
      await client.query<{ pid: number }>(
        `select pid from pg_stat_activity where application_name = 'activity' and datname = current_database()`,
      )
    ).rows.map((row) => row.pid),
  );
}
