import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { type FatalProxy, startFatalProxy } from '../helpers/fatal-proxy.js';
import {
  connectWhenBack,
  faultSecrets,
  readWriteTokens,
  startDurableDatabase,
} from '../helpers/fault-fixture.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import { killAllCli, type RunningServe, startServe } from '../helpers/running-cli.js';
import { openSse, type SseTestStream } from '../helpers/sse-client.js';
import { startWriteLoad, type WriteLoad } from '../helpers/write-load.js';

/**
 * `serve` on a PostgreSQL of its own (these tests restart it), under eight POST
 * loops, while its connections are dropped every way a server drops them. It must
 * stay up, answer 503 for what it could not do, and store every write it
 * acknowledged exactly once.
 */
describe('serve when PostgreSQL drops its connections', { timeout: 120_000 }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let admin: pg.Client;
  let serve: RunningServe;
  let load: WriteLoad;
  let stream: SseTestStream;
  const tenants = ['fault-a', 'fault-b', 'fault-c', 'fault-d'];

  beforeAll(async () => {
    ({ postgres, url: databaseUrl } = await startDurableDatabase());
    // The test's own session, on serve's database: it outlives each fault by reconnecting.
    admin = await connectWhenBack(databaseUrl);
    serve = await startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets });
    const tokens = await readWriteTokens(tenants);
    stream = await openSse(`${serve.url}/api/v1/activity/stream`, {
      authorization: `Bearer ${tokens.get('fault-a')}`,
    });
    load = startWriteLoad({ url: serve.url, tokens, clients: 8 });
    await load.waitForMoreAcks(50, 20_000);
  });

  afterAll(async () => {
    await load?.stop();
    await stream?.close();
    await killAllCli();
    await admin?.end().catch(() => {});
    postgres?.stop();
  });

  /** Sessions of `serve` on its database, as an operator would find them. */
  const sessionsOfServe = async () =>
    (
      await admin.query<{ pid: number }>(
        `select pid from pg_stat_activity where application_name = 'activity' and datname = current_database()`,
      )
    ).rows.map((row) => row.pid);

  async function expectRecovered() {
    // Writes go through again after the fault, and nothing but 503 was answered meanwhile.
    await serve.whileRunning(load.waitForMoreAcks(50, 30_000));
    expect([...load.refused.keys()].filter((status) => status !== 503)).toEqual([]);
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
  }

  it('stays up while its backends are terminated, five times under load', async () => {
    for (let round = 0; round < 5; round++) {
      const pids = await sessionsOfServe();
      expect(pids.length).toBeGreaterThan(0);
      await admin.query('select pg_terminate_backend(pid) from unnest($1::int[]) as pid', [pids]);
      await expectRecovered();
    }
  });

  it('stays up through a restart of PostgreSQL under load', async () => {
    await admin.end();
    postgres.restart();
    admin = await connectWhenBack(databaseUrl);
    await expectRecovered();
  });

  it('stays up when a backend is killed and PostgreSQL goes through crash recovery', async () => {
    const [pid] = await sessionsOfServe();
    process.kill(pid as number, 'SIGKILL');
    // Crash recovery ends every session of the cluster, the test's own included.
    await admin.end().catch(() => {});
    admin = await connectWhenBack(databaseUrl);
    await expectRecovered();
  });

  it('stored every acknowledged write exactly once, and the live stream caught up after it all', async () => {
    await load.stop();
    // The session made after the crash may have come up before the postmaster ended
    // every session for its recovery: counted on one made now.
    await admin.end().catch(() => {});
    admin = await connectWhenBack(databaseUrl);
    const { rows } = await admin.query<{ id: string; copies: string }>(
      'select id::text, count(*) as copies from activity_events where id = any($1::uuid[]) group by id',
      [[...load.acked.keys()]],
    );
    expect(rows.length).toBe(load.acked.size);
    expect(rows.filter((row) => row.copies !== '1')).toEqual([]);
    const lastOfA = Math.max(
      ...[...load.acked.values()].filter((event) => event.tenant_id === 'fault-a').map((event) => event.seq),
    );
    await stream.waitFor(`seq ${lastOfA} of fault-a`, (s) => s.seqs().includes(lastOfA), 20_000);
    const seqs = stream.seqs();
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect((await fetch(`${serve.url}/readyz`)).status).toBe(200);
  });
});

describe('serve when a connection is lost the moment it is made', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let proxy: FatalProxy;

  beforeAll(async () => {
    database = await createTestDatabase();
    // Every second connection is ended in the same read that completes it.
    proxy = await startFatalProxy(database.url, 2);
  });
  afterAll(async () => {
    await killAllCli();
    await proxy?.close();
    await database?.drop();
  });

  it('stays up, and serves on the connections that live', async () => {
    const serve = await startServe({ ACTIVITY_DATABASE_URL: proxy.url, ...faultSecrets });
    const tokens = await readWriteTokens(['lost-at-once']);
    const statuses: number[] = [];
    const headers = { authorization: `Bearer ${tokens.get('lost-at-once')}` };
    const post = () =>
      fetch(`${serve.url}/api/v1/activity`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'auth.login.success' }),
      }).then((response) => response.status);
    const read = () =>
      fetch(`${serve.url}/api/v1/activity?limit=5`, { headers }).then((response) => response.status);
    // Ten at once, so that the pools open connections (and lose some) as they go:
    // concurrent records share one statement, concurrent reads take a connection each.
    for (let round = 0; round < 20 && (proxy.ended < 2 || !statuses.includes(201)); round++) {
      const requests = Array.from({ length: 10 }, (_, index) => (index % 2 === 0 ? post() : read()));
      statuses.push(...(await serve.whileRunning(Promise.all(requests))));
    }
    expect(proxy.ended).toBeGreaterThanOrEqual(2);
    expect(statuses).toContain(201);
    expect(statuses.filter((status) => ![200, 201, 503].includes(status))).toEqual([]);
    expect(serve.exited).toBe(false);
  });
});
