import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { deriveKeys } from '../../src/privacy/keys.js';
import { createRegistry } from '../../src/registry/registry.js';
import { ActivityService } from '../../src/service/activity-service.js';
import { RetentionService } from '../../src/service/retention-service.js';
import { type BatchReport, SinkDelivery, type SinkDeliveryOptions } from '../../src/service/sink-delivery.js';
import { SinkService } from '../../src/service/sink-service.js';
import type { Database } from '../../src/store/open-database.js';
import { openDatabase } from '../../src/store/open-database.js';
import { createTestDatabase, openTestStore, storeKinds } from '../helpers/databases.js';
import {
  type Behaviour,
  hasWebhookSignature,
  type Received,
  type Receiver,
  startReceiver,
} from '../helpers/receiver.js';

const product = { name: 'activity', vendor_name: 'activity', version: 'test' };

/** The events of an ndjson delivery. */
function eventsOf(request: Received): ActivityEvent[] {
  return request.body
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as ActivityEvent);
}

describe.each(storeKinds)('sink delivery on %s', (kind) => {
  let database: Database;
  let dispose: () => Promise<void>;
  let service: ActivityService;
  let sinks: SinkService;
  const receivers: Receiver[] = [];
  const sinkIds: string[] = [];

  beforeAll(async () => {
    ({ database, dispose } = await openTestStore(kind));
    const keys = deriveKeys('s'.repeat(32));
    service = new ActivityService({ repository: database.repository, registry: createRegistry(), keys });
    sinks = new SinkService({
      sinks: database.sinks,
      sealingKey: keys.sinkSecrets,
      registry: createRegistry(),
    });
  });
  afterEach(async () => {
    for (const sinkId of sinkIds.splice(0)) await sinks.remove(sinkId).catch(() => {});
    for (const receiver of receivers.splice(0)) await receiver.close();
  });
  afterAll(async () => dispose?.());

  const tenant = () => `sink-${randomUUID()}`;
  const record = async (tenantId: string, count: number) => {
    for (let i = 0; i < count; i++) {
      await service.record({ tenant_id: tenantId, action: 'auth.login.success', actor_id: `u${i}` });
    }
  };
  const receiver = async (behave?: (request: number) => Behaviour) => {
    const started = await startReceiver(behave);
    receivers.push(started);
    return started;
  };
  const addSink = async (tenantId: string | null, url: string, extra: { fromStart?: boolean } = {}) => {
    const added = await sinks.add({
      tenantId,
      url,
      payload: 'ndjson',
      headers: { Authorization: 'Splunk 0b1c2d3e-secret-token' },
      fromStart: extra.fromStart ?? true,
    });
    sinkIds.push(added.sink.sink_id);
    return added;
  };
  const deliverer = (options: Partial<SinkDeliveryOptions> = {}) =>
    new SinkDelivery({
      sinks: database.sinks,
      service: sinks,
      product,
      batchSize: 4,
      firstRetryMs: 1,
      maxRetryMs: 5,
      ...options,
    });
  /** Delivers until no sink but a paused one is behind (failed sinks are retried within a few ms). */
  const deliverAll = async (delivery: SinkDelivery, passes = 200) => {
    for (let pass = 0; pass < passes; pass++) {
      if ((await delivery.deliverDue()) > 0) continue;
      if ((await database.sinks.lag()).events === 0) return;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    throw new Error(`the sinks were still behind after ${passes} passes`);
  };
  const deliveredSeqs = (requests: Received[], tenantId: string) =>
    requests
      .filter((request) => request.status >= 200 && request.status < 300)
      .flatMap(eventsOf)
      .filter((event) => event.tenant_id === tenantId)
      .map((event) => event.seq);

  it("delivers a tenant's events in seq order, in batches, each signed, and moves the cursor", async () => {
    const tenantId = tenant();
    await record(tenantId, 10);
    const hook = await receiver();
    const { sink, secret } = await addSink(tenantId, hook.url);
    const waiting = await database.sinks.lag();
    expect(waiting.events).toBe(10);
    expect(waiting.seconds).toBeGreaterThanOrEqual(0);
    await deliverAll(deliverer());
    expect(await database.sinks.lag()).toEqual({ events: 0, seconds: 0 });
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(hook.received.map((request) => eventsOf(request).length)).toEqual([4, 4, 2]);
    for (const request of hook.received) {
      const id = String(request.headers['webhook-id']);
      const timestamp = Number(request.headers['webhook-timestamp']);
      expect(
        hasWebhookSignature(
          secret,
          id,
          timestamp,
          request.body,
          String(request.headers['webhook-signature']),
        ),
      ).toBe(true);
      expect(
        hasWebhookSignature(
          secret,
          id,
          timestamp + 1,
          request.body,
          String(request.headers['webhook-signature']),
        ),
      ).toBe(false);
      expect(request.headers).toMatchObject({
        authorization: 'Splunk 0b1c2d3e-secret-token',
        'content-type': 'application/x-ndjson',
        'activity-tenant': tenantId,
        'activity-skipped': '0',
      });
    }
    expect(hook.received.map((request) => request.headers['activity-seq-from'])).toEqual(['1', '5', '9']);
    const status = await sinks.status(sink.sink_id);
    expect(status).toMatchObject({ state: 'active', lag_events: 0, header_names: ['Authorization'] });
    expect(status.tenants).toMatchObject([
      { tenant_id: tenantId, delivered_seq: 10, skipped: 0, lag_events: 0 },
    ]);
    // Caught up, the sink is not due: an idle sink costs a pass nothing.
    expect(await database.sinks.due()).toEqual([]);
    // Recorded later, delivered from where the cursor is.
    await record(tenantId, 2);
    expect(await database.sinks.due()).toEqual([sink.sink_id]);
    await deliverAll(deliverer());
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
  });

  it('loses and reorders nothing while the receiver fails, and a retried batch keeps its id', async () => {
    const tenantId = tenant();
    await record(tenantId, 9);
    // Fails, closes, times out its answer, refuses with 429, then takes everything.
    const script: Behaviour[] = [
      { status: 500 },
      { close: true },
      { status: 200 },
      { status: 429 },
      { status: 503 },
    ];
    const hook = await receiver((request) => script[request] ?? { status: 200 });
    const { sink } = await addSink(tenantId, hook.url);
    const reports: BatchReport[] = [];
    const delivery = deliverer({ onBatch: (report) => reports.push(report) });
    await delivery.deliverDue();
    expect((await sinks.status(sink.sink_id)).state).toBe('failing');
    await deliverAll(delivery);
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The first range was sent three times (500, closed, 200), with one id.
    const firstRange = hook.received.filter((request) => request.headers['activity-seq-from'] === '1');
    expect(firstRange.map((request) => request.status)).toEqual([500, 0, 200]);
    expect(new Set(firstRange.map((request) => request.headers['webhook-id'])).size).toBe(1);
    expect(reports.filter((report) => !report.delivered).map((report) => report.reason)).toEqual([
      'status',
      'network',
      'status',
      'status',
    ]);
    expect(await sinks.status(sink.sink_id)).toMatchObject({
      state: 'active',
      lag_events: 0,
      last_error: expect.any(String),
    });
  });

  it('a paused sink delivers nothing and keeps its cursor; resumed, it goes on from there', async () => {
    const tenantId = tenant();
    await record(tenantId, 3);
    const hook = await receiver();
    const { sink } = await addSink(tenantId, hook.url);
    await deliverAll(deliverer());
    await sinks.pause(sink.sink_id);
    await record(tenantId, 3);
    await deliverAll(deliverer());
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3]);
    expect(await sinks.status(sink.sink_id)).toMatchObject({ state: 'paused', lag_events: 3 });
    await sinks.resume(sink.sink_id);
    await deliverAll(deliverer());
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('from now by default for a new sink, from the start when asked', async () => {
    const tenantId = tenant();
    await record(tenantId, 2);
    const fromNow = await receiver();
    const fromStart = await receiver();
    await addSink(tenantId, fromNow.url, { fromStart: false });
    await addSink(tenantId, fromStart.url, { fromStart: true });
    await record(tenantId, 1);
    await deliverAll(deliverer());
    expect(deliveredSeqs(fromNow.received, tenantId)).toEqual([3]);
    expect(deliveredSeqs(fromStart.received, tenantId)).toEqual([1, 2, 3]);
  });

  it('reports events purged before delivery as skipped, with their range, never silently', async () => {
    const tenantId = tenant();
    await record(tenantId, 8);
    const hook = await receiver();
    const { sink } = await addSink(tenantId, hook.url);
    // Gone before the sink saw them: seq 2 to 6.
    await sql`delete from activity_events where tenant_id = ${tenantId} and seq between 2 and 6`.execute(
      database.db,
    );
    const reports: BatchReport[] = [];
    await deliverAll(deliverer({ onBatch: (report) => reports.push(report) }));
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 7, 8]);
    expect(hook.received.map((request) => request.headers['activity-skipped'])).toEqual(['5']);
    expect(reports).toMatchObject([{ fromSeq: 1, throughSeq: 8, events: 3, skipped: 5, delivered: true }]);
    expect((await sinks.status(sink.sink_id)).tenants).toMatchObject([{ delivered_seq: 8, skipped: 5 }]);
  });

  it('a paused sink keeps its cursor through a purge, and reports what the purge took as skipped', async () => {
    const tenantId = tenant();
    await record(tenantId, 6);
    const hook = await receiver();
    const { sink } = await addSink(tenantId, hook.url);
    await deliverAll(deliverer());
    await sinks.pause(sink.sink_id);
    await record(tenantId, 4);
    // Seqs 1 to 9 a year old; purge takes them (7 to 9 never delivered) and records
    // its own event (seq 11).
    await sql`update activity_events set created_at = created_at - interval '400 days'
      where tenant_id = ${tenantId} and seq <= 9`.execute(database.db);
    const retention = new RetentionService({
      events: database.repository,
      retention: database.retention,
      audit: service.audit,
    });
    const purged = await retention.purge({
      now: new Date(),
      defaultRetentionMs: 365 * 86_400_000,
      tenantId,
      batchSize: 100,
      dryRun: false,
    });
    expect(purged.deleted).toBe(9);
    expect((await sinks.status(sink.sink_id)).tenants).toMatchObject([{ delivered_seq: 6 }]);
    await sinks.resume(sink.sink_id);
    const reports: BatchReport[] = [];
    await deliverAll(deliverer({ onBatch: (report) => reports.push(report) }));
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3, 4, 5, 6, 10, 11]);
    expect(reports).toMatchObject([{ fromSeq: 7, throughSeq: 11, events: 2, skipped: 3 }]);
    expect(eventsOf(hook.received.at(-1) as Received).map((event) => event.action)).toEqual([
      'auth.login.success',
      'activity.events.purged',
    ]);
  });

  it('gives up on a receiver that stalls past the timeout, and sends the batch again', async () => {
    const tenantId = tenant();
    await record(tenantId, 2);
    const hook = await receiver((request) =>
      request === 0 ? { status: 200, delayMs: 2000 } : { status: 200 },
    );
    await addSink(tenantId, hook.url);
    const reports: BatchReport[] = [];
    await deliverAll(deliverer({ timeoutMs: 100, onBatch: (report) => reports.push(report) }));
    expect(reports.map((report) => [report.delivered, report.reason])).toEqual([
      [false, 'timeout'],
      [true, undefined],
    ]);
    await hook.until(() => hook.received.length === 2);
    expect(hook.received.map((request) => request.headers['webhook-id'])).toEqual([
      hook.received[0]?.headers['webhook-id'],
      hook.received[0]?.headers['webhook-id'],
    ]);
  });

  it('with an action filter, delivers those actions only and accounts for the rest, left out or gone', async () => {
    const tenantId = tenant();
    for (const action of [
      'auth.login.success',
      'conversations.conversation.created',
      'auth.logout.completed',
      'conversations.conversation.created',
      'auth.email.verified',
    ]) {
      await service.record({ tenant_id: tenantId, action });
    }
    await sql`delete from activity_events where tenant_id = ${tenantId} and seq = 2`.execute(database.db);
    const hook = await receiver();
    const added = await sinks.add({
      tenantId,
      url: hook.url,
      payload: 'ndjson',
      fromStart: true,
      action: 'auth.login.*, auth.email.verified',
    });
    sinkIds.push(added.sink.sink_id);
    expect(added.sink.actions).toEqual(['auth.email.verified', 'auth.login.*']);
    await deliverAll(deliverer());
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 5]);
    expect(hook.received[0]?.headers).toMatchObject({
      'activity-seq-from': '1',
      'activity-seq-through': '5',
      'activity-skipped': '1',
      'activity-filtered': '2',
    });
    await expect(
      sinks.add({ tenantId, url: hook.url, payload: 'ndjson', action: 'auth' }),
    ).rejects.toMatchObject({
      code: 'PARAMETER_INVALID',
    });
  });

  it('a range left out whole sends nothing, and the next POST starts where the last acknowledged one ended', async () => {
    const tenantId = tenant();
    const hook = await receiver();
    const added = await sinks.add({
      tenantId,
      url: hook.url,
      payload: 'ndjson',
      fromStart: true,
      action: 'auth.*',
    });
    sinkIds.push(added.sink.sink_id);
    await service.record({ tenant_id: tenantId, action: 'auth.login.success' });
    await deliverAll(deliverer());
    await service.record({ tenant_id: tenantId, action: 'conversations.conversation.created' });
    await deliverAll(deliverer());
    expect(hook.received).toHaveLength(1);
    await service.record({ tenant_id: tenantId, action: 'auth.logout.completed' });
    await deliverAll(deliverer());
    expect(hook.received.map((request) => request.headers)).toMatchObject([
      { 'activity-seq-from': '1', 'activity-seq-through': '1', 'activity-filtered': '0' },
      {
        'activity-seq-from': '2',
        'activity-seq-through': '3',
        'activity-filtered': '1',
        'activity-skipped': '0',
      },
    ]);
  });

  it('a retry sends the same range under the same id, whatever was recorded since', async () => {
    const tenantId = tenant();
    await record(tenantId, 1);
    const hook = await receiver((request) => (request === 0 ? { status: 503 } : { status: 200 }));
    await addSink(tenantId, hook.url);
    const delivery = deliverer();
    await delivery.deliverDue();
    await record(tenantId, 2);
    await deliverAll(delivery);
    expect(
      hook.received.map((request) => [
        request.status,
        request.headers['activity-seq-from'],
        request.headers['activity-seq-through'],
      ]),
    ).toEqual([
      [503, '1', '1'],
      [200, '1', '1'],
      [200, '2', '3'],
    ]);
    expect(hook.received[1]?.headers['webhook-id']).toBe(hook.received[0]?.headers['webhook-id']);
    expect(deliveredSeqs(hook.received, tenantId)).toEqual([1, 2, 3]);
  });

  it("carries the tenant's latest signed checkpoint, when it has one", async () => {
    const tenantId = tenant();
    await record(tenantId, 2);
    const hook = await receiver();
    await addSink(tenantId, hook.url);
    await deliverAll(deliverer());
    expect(hook.received[0]?.headers['activity-checkpoint']).toBeUndefined();
    for (const size of [1, 2]) {
      await sql`insert into activity_checkpoints (tenant_id, tree_size, root_hash, note)
        values (${tenantId}, ${size}, ${Buffer.alloc(32)}, ${`activity/tenants/${tenantId}\n${size}\n…\n`})`.execute(
        database.db,
      );
    }
    await record(tenantId, 1);
    await deliverAll(deliverer());
    const note = Buffer.from(String(hook.received[1]?.headers['activity-checkpoint']), 'base64').toString(
      'utf8',
    );
    expect(note).toBe(`activity/tenants/${tenantId}\n2\n…\n`);
  });

  it('a sink of every tenant delivers each tenant in its own batches', async () => {
    const [first, second] = [tenant(), tenant()];
    const hook = await receiver();
    await addSink(null, hook.url, { fromStart: false });
    await record(first as string, 2);
    await record(second as string, 3);
    await deliverAll(deliverer());
    expect(deliveredSeqs(hook.received, first as string)).toEqual([1, 2]);
    expect(deliveredSeqs(hook.received, second as string)).toEqual([1, 2, 3]);
    for (const request of hook.received) {
      expect(new Set(eventsOf(request).map((event) => event.tenant_id))).toEqual(
        new Set([request.headers['activity-tenant']]),
      );
    }
  });

  it('stores headers and the signing secret sealed, and a sink sealed under another secret is not sent', async () => {
    const tenantId = tenant();
    await record(tenantId, 1);
    const hook = await receiver();
    const { sink, secret } = await addSink(tenantId, hook.url);
    const row = await sql<{
      text: string;
    }>`select row_to_json(s)::text as text from activity_sinks s where sink_id = ${sink.sink_id}`.execute(
      database.db,
    );
    const stored = row.rows[0]?.text ?? '';
    expect(stored).toContain(hook.url);
    expect(stored).not.toContain('0b1c2d3e-secret-token');
    expect(stored).not.toContain(secret.slice('whsec_'.length));
    const otherKeys = deriveKeys('o'.repeat(32));
    const reports: BatchReport[] = [];
    const stranger = new SinkDelivery({
      sinks: database.sinks,
      service: new SinkService({
        sinks: database.sinks,
        sealingKey: otherKeys.sinkSecrets,
        registry: createRegistry(),
      }),
      product,
      onBatch: (report) => reports.push(report),
    });
    await stranger.deliverDue();
    expect(hook.received).toEqual([]);
    expect(reports.find((report) => report.sinkId === sink.sink_id)).toMatchObject({
      delivered: false,
      reason: 'secret',
    });
  });
});

describe('two deliverers on one PostgreSQL', () => {
  it('never send one sink at the same time, and together deliver everything once, in order', async () => {
    const created = await createTestDatabase();
    const [one, two] = await Promise.all([
      openDatabase({ kind: 'postgres', url: created.url }),
      openDatabase({ kind: 'postgres', url: created.url }),
    ]);
    const hook = await startReceiver(() => ({ status: 200, delayMs: 20 }));
    try {
      const keys = deriveKeys('t'.repeat(32));
      const service = new ActivityService({ repository: one.repository, registry: createRegistry(), keys });
      const tenantId = `sink-${randomUUID()}`;
      for (let i = 0; i < 24; i++)
        await service.record({ tenant_id: tenantId, action: 'auth.login.success' });
      const deliverer = (database: Database) =>
        new SinkDelivery({
          sinks: database.sinks,
          service: new SinkService({
            sinks: database.sinks,
            sealingKey: keys.sinkSecrets,
            registry: createRegistry(),
          }),
          product,
          batchSize: 3,
        });
      const sinks = new SinkService({
        sinks: one.sinks,
        sealingKey: keys.sinkSecrets,
        registry: createRegistry(),
      });
      await sinks.add({ tenantId, url: hook.url, payload: 'ndjson', fromStart: true });
      const controller = new AbortController();
      const runs = [deliverer(one), deliverer(two)].map((delivery) =>
        delivery.run(controller.signal, (error) => {
          throw error;
        }),
      );
      await hook.until(() => hook.received.flatMap(eventsOf).length >= 24);
      controller.abort();
      await Promise.all(runs);
      expect(hook.received.flatMap(eventsOf).map((event) => event.seq)).toEqual(
        Array.from({ length: 24 }, (_, i) => i + 1),
      );
      expect(hook.mostInFlight()).toBe(1);
    } finally {
      await hook.close();
      await one.close();
      await two.close();
      await created.drop();
    }
  });
});
