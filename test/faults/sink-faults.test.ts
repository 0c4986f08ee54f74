import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { connectWhenBack, faultSecrets, startDurableDatabase } from '../helpers/fault-fixture.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import { type Received, type Receiver, startReceiver } from '../helpers/receiver.js';
import { cliFor, expectExit, parseJson } from '../helpers/run-cli.js';
import { killAllCli, startServe } from '../helpers/running-cli.js';

/** The events a receiver acknowledged, in the order it got them. */
function acknowledged(received: Received[]): ActivityEvent[] {
  return received
    .filter((request) => request.status >= 200 && request.status < 300)
    .flatMap((request) =>
      request.body
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as ActivityEvent),
    );
}

/**
 * Every seq of 1..count acknowledged, first seen in order; a seq seen again only as part
 * of a batch sent again whole (the same webhook-id), after a crash took its 2xx.
 */
function expectEveryEventInOrder(received: Received[], count: number) {
  const seqs = acknowledged(received).map((event) => event.seq);
  const firstSeen = seqs.filter((seq, index) => seqs.indexOf(seq) === index);
  expect(firstSeen).toEqual(Array.from({ length: count }, (_, i) => i + 1));
  const ids = new Map<string, string>();
  for (const request of received.filter((each) => each.status === 200)) {
    const range = `${request.headers['activity-seq-from']}-${request.headers['activity-seq-through']}`;
    const id = String(request.headers['webhook-id']);
    expect(ids.get(range) ?? id, `range ${range} kept its webhook-id`).toBe(id);
    ids.set(range, id);
  }
}

/** serve delivering sinks while it is killed and its PostgreSQL restarts. */
describe('sink delivery through crashes and restarts', { timeout: 120_000 }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let admin: pg.Client;
  let cli: ReturnType<typeof cliFor>;
  const receivers: Receiver[] = [];

  beforeAll(async () => {
    ({ postgres, url: databaseUrl } = await startDurableDatabase());
    admin = await connectWhenBack(databaseUrl);
    cli = cliFor({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets });
  });
  afterAll(async () => {
    await killAllCli();
    for (const receiver of receivers) await receiver.close();
    await admin?.end().catch(() => {});
    postgres?.stop();
  });

  const recordEvents = async (tenant: string, count: number) => {
    const lines = Array.from({ length: count }, () =>
      JSON.stringify({ tenant_id: tenant, action: 'auth.login.success' }),
    );
    expectExit(await cli(['record', '--file', '-'], { input: `${lines.join('\n')}\n` }), 0);
  };
  const addSink = async (tenant: string, url: string) => {
    const added = await cli([
      'sink',
      'add',
      '--tenant',
      tenant,
      '--url',
      url,
      '--payload',
      'ndjson',
      '--from-start',
      '--format',
      'json',
    ]);
    expectExit(added, 0);
    return parseJson<{ sink_id: string }>(added.stdout).sink_id;
  };

  it('loses and reorders nothing when serve is killed (SIGKILL) while a batch is in flight', async () => {
    await recordEvents('crash', 1200);
    // Slow answers: a batch is in flight when serve dies.
    const hook = await startReceiver(() => ({ status: 200, delayMs: 150 }));
    receivers.push(hook);
    await addSink('crash', hook.url);
    const first = await startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets });
    await first.whileRunning(hook.until(() => hook.received.length >= 1));
    first.child.kill('SIGKILL');
    await first.finished;
    const second = await startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets });
    await second.whileRunning(
      hook.until(() => new Set(acknowledged(hook.received).map((e) => e.seq)).size >= 1200, 60_000),
    );
    expectEveryEventInOrder(hook.received, 1200);
    await second.stop('SIGTERM');
  });

  it('two serve processes on one database never send a sink at the same time, and send each event once', async () => {
    await recordEvents('pair', 2000);
    const hook = await startReceiver(() => ({ status: 200, delayMs: 40 }));
    receivers.push(hook);
    await addSink('pair', hook.url);
    const [one, two] = await Promise.all([
      startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets }),
      startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets }),
    ]);
    await one.whileRunning(
      two.whileRunning(hook.until(() => acknowledged(hook.received).length >= 2000, 60_000)),
    );
    const seqs = acknowledged(hook.received).map((event) => event.seq);
    expect(seqs).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    expect(hook.mostInFlight()).toBe(1);
    await Promise.all([one.stop('SIGTERM'), two.stop('SIGTERM')]);
  });

  it('goes on from its cursor after PostgreSQL restarts mid-delivery', async () => {
    await recordEvents('restart', 1500);
    const hook = await startReceiver(() => ({ status: 200, delayMs: 100 }));
    receivers.push(hook);
    const sinkId = await addSink('restart', hook.url);
    const serve = await startServe({ ACTIVITY_DATABASE_URL: databaseUrl, ...faultSecrets });
    await serve.whileRunning(hook.until(() => hook.received.length >= 1));
    await admin.end();
    postgres.restart();
    admin = await connectWhenBack(databaseUrl);
    await serve.whileRunning(
      hook.until(() => new Set(acknowledged(hook.received).map((e) => e.seq)).size >= 1500, 60_000),
    );
    expectEveryEventInOrder(hook.received, 1500);
    const status = await cli(['sink', 'status', sinkId, '--format', 'json']);
    await serve.whileRunning(
      (async () => {
        // The cursor is committed after the last 2xx: wait for the status to say so.
        for (let tries = 0; tries < 100; tries++) {
          const now = parseJson<{ lag_events: number }>(
            (await cli(['sink', 'status', sinkId, '--format', 'json'])).stdout,
          );
          if (now.lag_events === 0) return;
        }
        throw new Error(`the sink stayed behind: ${status.stdout}`);
      })(),
    );
    await serve.stop('SIGTERM');
  });
});
