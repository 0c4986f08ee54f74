import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ActivityApp, openAppWithDatabase } from '../../src/app/open-app.js';
import { loadConfig } from '../../src/config/load-config.js';
import { ActivityError } from '../../src/domain/errors.js';
import type { ActivityEvent } from '../../src/domain/event.js';
import type { Database } from '../../src/store/open-database.js';
import { createInProcessTransport } from '../../src/stream/in-process-transport.js';
import { createPostgresTransport } from '../../src/stream/postgres-transport.js';
import { createRedisTransport } from '../../src/stream/redis-transport.js';
import { StreamHub, type StreamHubOptions } from '../../src/stream/stream-hub.js';
import type { Subscription } from '../../src/stream/subscription.js';
import type { StreamNotice, StreamTransport } from '../../src/stream/transport.js';
import { createTestDatabase } from '../helpers/databases.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { eventually } from '../helpers/sse-client.js';

const env = { ACTIVITY_SECRET: 'x'.repeat(32), ACTIVITY_JWT_SECRET: 'j'.repeat(32) };
/** Long enough that a test passing with it proves the notice (or resync) path, not the poll. */
const noPollMs = 3_600_000;

type TransportKind = 'in-process' | 'postgres' | 'redis';
const transportKinds: readonly TransportKind[] = ['in-process', 'postgres', 'redis'];

interface Fixture {
  app: ActivityApp;
  /** The app's database, for hubs built by the tests and direct SQL. */
  database: Database;
  databaseUrl: string | undefined;
  redis: RedisServer | undefined;
  /** A new transport of the same kind that hears the app's notices, for a hub built by a test. */
  newTransport(): Promise<StreamTransport>;
  dispose(): Promise<void>;
}

/**
 * The app as `serve` builds it, on the given transport. In-process notices reach only
 * the app's own transport, so hubs built by the tests get theirs from a mirror that
 * the app's observers feed; Redis and PostgreSQL are heard by any number of listeners.
 */
async function openFixture(kind: TransportKind): Promise<Fixture> {
  const created = kind === 'in-process' ? undefined : await createTestDatabase();
  let redis: RedisServer | undefined;
  try {
    if (kind === 'redis') redis = await startRedis();
  } catch (error) {
    await created?.drop();
    throw new Error(`the redis transport needs a redis-server for this test: ${String(error)}`);
  }
  const mirrors = new Set<StreamTransport>();
  const config =
    created === undefined
      ? loadConfig({ dataDir: 'memory://' }, { ACTIVITY_SECRET: env.ACTIVITY_SECRET })
      : loadConfig({ databaseUrl: created.url, redisUrl: redis?.url }, env);
  const { app, database } = await openAppWithDatabase(config, {
    stream: true,
    observers: [
      {
        recorded(events) {
          // One write may hold several tenants (records are coalesced across tenants).
          const latest = new Map(events.map((event) => [event.tenant_id, event.seq]));
          for (const [tenantId, seq] of latest)
            for (const mirror of mirrors) void mirror.publish({ tenantId, seq });
        },
      },
    ],
  });
  await app.hub?.start();
  expect(app.transport.name).toBe(kind);
  return {
    app,
    database,
    databaseUrl: created?.url,
    redis,
    async newTransport() {
      if (kind === 'redis') return createRedisTransport((redis as RedisServer).url);
      // The app's appends NOTIFY as they commit; a second transport only listens.
      if (kind === 'postgres') return createPostgresTransport(created?.url as string);
      const transport = createInProcessTransport();
      mirrors.add(transport);
      return {
        ...transport,
        async close() {
          mirrors.delete(transport);
          await transport.close();
        },
      };
    },
    async dispose() {
      await app.close();
      await redis?.stop();
      await created?.drop();
    },
  };
}

/** Reads a subscription in the background, as a client that keeps up. */
function collect(subscription: Subscription) {
  const events: ActivityEvent[] = [];
  const done = (async () => {
    for await (const event of subscription) events.push(event);
  })();
  const seqs = () => events.map((event) => event.seq);
  return {
    events,
    seqs,
    done,
    /** Waits until the event with `seq` has arrived. */
    async until(seq: number, timeoutMs = 5000) {
      await eventually(
        `seq ${seq} (got [${seqs().join(',')}], closed: ${subscription.closeReason ?? 'no'})`,
        () => seqs().includes(seq) || subscription.closeReason !== undefined,
        timeoutMs,
      );
      expect(seqs(), `seq ${seq} arrived before the subscription closed`).toContain(seq);
    },
  };
}

/** How many connections Redis has subscribed to the live stream's channel. */
async function channelSubscribers(url: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0 });
  client.on('error', () => {});
  try {
    await client.connect();
    const [, count] = (await client.pubsub('NUMSUB', 'activity:events')) as [string, number];
    return count;
  } finally {
    client.disconnect();
  }
}

/** A transport that passes on only the notices `keep` accepts. */
function filteredTransport(inner: StreamTransport, keep: (notice: StreamNotice) => boolean): StreamTransport {
  return {
    name: inner.name,
    publish: (notice) => inner.publish(notice),
    listen: (listener) =>
      inner.listen({
        onNotice: (notice) => {
          if (keep(notice)) listener.onNotice(notice);
        },
        onResync: () => listener.onResync(),
      }),
    close: () => inner.close(),
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(transportKinds)('the live stream hub over the %s transport', (kind) => {
  let fixture: Fixture;
  let app: ActivityApp;
  let hub: StreamHub;
  const openHubs: StreamHub[] = [];

  beforeAll(async () => {
    fixture = await openFixture(kind);
    app = fixture.app;
    hub = app.hub as StreamHub;
  });
  afterAll(async () => {
    for (const extra of openHubs) await extra.close();
    await fixture?.dispose();
  });

  const tenant = () => `hub-${kind}-${randomUUID()}`;
  const record = (tenantId: string, fields: Record<string, unknown> = {}) =>
    app.service.record({ tenant_id: tenantId, action: 'auth.login.success', ...fields });
  const recordMany = async (tenantId: string, count: number, fields: Record<string, unknown> = {}) => {
    const events: ActivityEvent[] = [];
    for (let i = 0; i < count; i++) events.push(await record(tenantId, fields));
    return events;
  };
  /** A hub of its own on a new transport of this kind; closed after the file if the test does not. */
  const openHub = async (
    options: Partial<Omit<StreamHubOptions, 'repository' | 'transport'>> = {},
    wrap: (transport: StreamTransport) => StreamTransport = (transport) => transport,
  ) => {
    const extra = new StreamHub({
      repository: fixture.database.repository,
      transport: wrap(await fixture.newTransport()),
      ...options,
    });
    openHubs.push(extra);
    await extra.start();
    return extra;
  };

  it('a subscriber receives every event recorded after it subscribed, once, in seq order', async () => {
    const t = tenant();
    await recordMany(t, 2);
    const subscription = await hub.subscribe(t, {});
    const reader = collect(subscription);
    await recordMany(t, 5);
    const batch = await app.service.recordBatch([
      { tenant_id: t, action: 'auth.logout.completed' },
      { tenant_id: t, action: 'auth.logout.completed' },
      { tenant_id: t, action: 'auth.logout.completed' },
    ]);
    expect(batch.map((event) => event.seq)).toEqual([8, 9, 10]);
    await reader.until(10);
    expect(reader.seqs()).toEqual(range(3, 10));
    expect(reader.events.slice(-3).map((event) => event.id)).toEqual(batch.map((event) => event.id));
    expect(subscription.closeReason).toBeUndefined();
    subscription.close('client');
    await reader.done;
  });

  it('refuses a subscription once closed with SHUTTING_DOWN, not as if the database were down', async () => {
    const closing = await openHub();
    await closing.close();
    await expect(closing.subscribe(tenant(), {})).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
  });

  it('applies the filters: action prefix, actor_id and status', async () => {
    const t = tenant();
    const byAction = collect(await hub.subscribe(t, app.service.streamFilter(t, { action: 'auth.*' })));
    const byActor = collect(await hub.subscribe(t, app.service.streamFilter(t, { actor_id: 'u_1' })));
    const byStatus = collect(await hub.subscribe(t, app.service.streamFilter(t, { status: 'failure' })));
    const combined = collect(
      await hub.subscribe(
        t,
        app.service.streamFilter(t, { action: 'auth.login.failure,conversations.*', actor_id: 'u_2' }),
      ),
    );
    await record(t, { action: 'auth.login.success', actor_id: 'u_1' }); // 1
    await record(t, { action: 'conversations.conversation.created', actor_id: 'u_2' }); // 2
    await record(t, {
      action: 'auth.login.failure',
      actor_id: 'u_2',
      status: 'failure',
      metadata: { reason: 'invalid_credentials' },
    }); // 3
    await record(t, { action: 'auth.logout.completed', actor_id: 'u_1' }); // 4
    await record(t, { action: 'conversations.conversation.created', actor_id: 'u_1', status: 'failure' }); // 5
    // The last event matches every filter: once it has arrived, each reader is complete.
    await record(t, {
      action: 'auth.login.failure',
      actor_id: 'u_1',
      status: 'failure',
      metadata: { reason: 'other' },
    }); // 6
    await record(t, {
      action: 'conversations.conversation.cleared',
      actor_id: 'u_2',
    }); // 7
    for (const reader of [byAction, byActor, byStatus]) await reader.until(6);
    await combined.until(7);
    expect(byAction.seqs()).toEqual([1, 3, 4, 6]);
    expect(byActor.seqs()).toEqual([1, 4, 5, 6]);
    expect(byStatus.seqs()).toEqual([3, 5, 6]);
    expect(combined.seqs()).toEqual([2, 3, 7]);
    for (const reader of [byAction, byActor, byStatus, combined]) {
      expect(reader.events.every((event) => event.tenant_id === t)).toBe(true);
    }
  });

  it('afterSeq replays the missed events oldest first, then goes live with no gap or duplicate', async () => {
    const t = tenant();
    await recordMany(t, 10);
    const reader = collect(await hub.subscribe(t, {}, 4));
    await reader.until(10);
    expect(reader.seqs()).toEqual(range(5, 10));
    await recordMany(t, 3);
    await reader.until(13);
    expect(reader.seqs()).toEqual(range(5, 13));
  });

  it('afterSeq with a filter replays only the matching events', async () => {
    const t = tenant();
    for (let i = 1; i <= 8; i++) {
      await record(t, {
        action: i % 2 === 0 ? 'auth.logout.completed' : 'conversations.conversation.created',
      });
    }
    const reader = collect(await hub.subscribe(t, app.service.streamFilter(t, { action: 'auth.*' }), 3));
    await reader.until(8);
    expect(reader.seqs()).toEqual([4, 6, 8]);
    await record(t, { action: 'conversations.conversation.created' }); // 9
    await record(t, { action: 'auth.logout.completed' }); // 10
    await reader.until(10);
    expect(reader.seqs()).toEqual([4, 6, 8, 10]);
  });

  it('afterSeq beyond the latest event starts at the latest event, so no later event is swallowed', async () => {
    const t = tenant();
    await recordMany(t, 3);
    const reader = collect(await hub.subscribe(t, {}, 40));
    await recordMany(t, 3);
    await reader.until(6);
    expect(reader.seqs()).toEqual([4, 5, 6]);
  });

  it('replay has no gap or duplicate at the seam while events are recorded concurrently', async () => {
    const t = tenant();
    await recordMany(t, 10);
    const recorded: ActivityEvent[] = [];
    const perWriter = 25;
    const writers = Promise.all(
      ['auth.login.success', 'conversations.conversation.created'].map(async (action) => {
        for (let i = 0; i < perWriter; i++) recorded.push(await record(t, { action }));
      }),
    );
    const latest = () => Math.max(10, ...recorded.map((event) => event.seq));
    const readers: { after: number; reader: ReturnType<typeof collect>; filtered: boolean }[] = [];
    const subscribeAt = async (count: number, after: () => number, filtered = false) => {
      await eventually(`${count} events recorded`, () => recorded.length >= count, 10_000, 2);
      const afterSeq = after();
      const filter = filtered ? app.service.streamFilter(t, { action: 'auth.*' }) : {};
      readers.push({ after: afterSeq, reader: collect(await hub.subscribe(t, filter, afterSeq)), filtered });
    };
    await subscribeAt(0, () => 0);
    await subscribeAt(3, () => 10);
    await subscribeAt(8, () => 0, true);
    await subscribeAt(12, () => latest());
    await subscribeAt(20, () => Math.max(0, latest() - 5));
    await subscribeAt(30, () => latest());
    await subscribeAt(40, () => Math.max(0, latest() - 1), true);
    await writers;
    const total = 10 + 2 * perWriter;
    expect(latest()).toBe(total);
    const authSeqs = [
      ...range(1, 10),
      ...recorded.filter((event) => event.action.startsWith('auth.')).map((event) => event.seq),
    ].sort((a, b) => a - b);
    for (const { after, reader, filtered } of readers) {
      const expected = filtered ? authSeqs.filter((seq) => seq > after) : range(after + 1, total);
      const last = expected.at(-1);
      if (last !== undefined) await reader.until(last, 10_000);
      expect(reader.seqs(), `subscribed after ${after}${filtered ? ' with action auth.*' : ''}`).toEqual(
        expected,
      );
    }
  });

  it('two subscribers of one tenant both get everything; another tenant gets none of it', async () => {
    const t = tenant();
    const other = tenant();
    const first = collect(await hub.subscribe(t, {}));
    const second = collect(await hub.subscribe(t, {}));
    const stranger = collect(await hub.subscribe(other, {}));
    await recordMany(t, 4);
    await record(other);
    await Promise.all([first.until(4), second.until(4), stranger.until(1)]);
    expect(first.seqs()).toEqual([1, 2, 3, 4]);
    expect(second.seqs()).toEqual([1, 2, 3, 4]);
    expect(stranger.events.map((event) => event.tenant_id)).toEqual([other]);
  });

  it('a subscriber that never reads is cut off as slow once more than bufferPerStream events queue', async () => {
    const small = await openHub({ bufferPerStream: 5, pollIntervalMs: noPollMs });
    const t = tenant();
    const idle = await small.subscribe(t, {});
    const reading = collect(await small.subscribe(t, {}));
    const closed: string[] = [];
    idle.onClose((reason) => closed.push(reason));
    await recordMany(t, 5);
    await reading.until(5);
    expect(idle.closeReason).toBeUndefined();
    expect(idle.buffered).toBe(5);
    await record(t);
    await eventually('the idle subscriber to be cut off', () => idle.closeReason !== undefined);
    expect(idle.closeReason).toBe('slow');
    expect(closed).toEqual(['slow']);
    await reading.until(6);
    await recordMany(t, 3);
    await reading.until(9);
    expect(reading.seqs()).toEqual(range(1, 9));
    // Cut off, it holds its place until its consumer releases it (its connection closed).
    expect(small.size).toBe(2);
    idle.release();
    expect(small.size).toBe(1);
  });

  it('a subscriber is cut off as slow once its queued events pass bytesPerStream, whatever their count', async () => {
    const small = await openHub({ bytesPerStream: 4096, pollIntervalMs: noPollMs });
    const t = tenant();
    const idle = await small.subscribe(t, {});
    const reading = collect(await small.subscribe(t, {}));
    const bulky = { context: { note: 'x'.repeat(1500) } };
    await recordMany(t, 2, { metadata: bulky });
    await reading.until(2);
    expect(idle.closeReason).toBeUndefined();
    await recordMany(t, 2, { metadata: bulky });
    await reading.until(4);
    await eventually('the idle subscriber to be cut off', () => idle.closeReason !== undefined);
    expect(idle.closeReason).toBe('slow');
    // Cut off, it holds nothing more: what was queued is dropped.
    expect(idle.buffered).toBe(0);
  });

  it('a subscriber that reads keeps up through a replay longer than its buffer', async () => {
    const small = await openHub({ bufferPerStream: 5, pollIntervalMs: noPollMs });
    const t = tenant();
    await recordMany(t, 20);
    const subscription = await small.subscribe(t, {}, 0);
    const reader = collect(subscription);
    await reader.until(20);
    expect(subscription.closeReason).toBeUndefined();
    expect(reader.seqs()).toEqual(range(1, 20));
  });

  it('refuses more than maxStreamsPerTenant streams of one tenant with TOO_MANY_STREAMS', async () => {
    const capped = await openHub({ maxStreamsPerTenant: 2, pollIntervalMs: noPollMs });
    const t = tenant();
    const first = await capped.subscribe(t, {});
    await capped.subscribe(t, {}, 0);
    const refused = await capped.subscribe(t, {}).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ActivityError);
    expect(refused).toMatchObject({ code: 'TOO_MANY_STREAMS' });
    expect((refused as ActivityError).httpStatus).toBe(429);
    // The cap is per tenant. A closed stream keeps its place until it is released
    // (its connection gone), then frees it.
    await expect(capped.subscribe(tenant(), {})).resolves.toBeDefined();
    first.close('slow');
    await expect(capped.subscribe(t, {})).rejects.toMatchObject({ code: 'TOO_MANY_STREAMS' });
    first.release();
    await expect(capped.subscribe(t, {})).resolves.toBeDefined();
    expect(capped.size).toBe(3);
  });

  it('refuses more than maxStreams streams across tenants, and a released stream frees its place', async () => {
    const capped = await openHub({ maxStreams: 2, pollIntervalMs: noPollMs });
    const first = await capped.subscribe(tenant(), {});
    await capped.subscribe(tenant(), {});
    await expect(capped.subscribe(tenant(), {})).rejects.toMatchObject({ code: 'TOO_MANY_STREAMS' });
    first.release();
    await expect(capped.subscribe(tenant(), {})).resolves.toBeDefined();
    expect(capped.size).toBe(2);
  });

  it('the per-tenant cap holds when subscribes race on a tenant with no open stream', async () => {
    const capped = await openHub({ maxStreamsPerTenant: 2, pollIntervalMs: noPollMs });
    const t = tenant();
    await record(t);
    const results = await Promise.allSettled([0, 1, 2, 3].map(() => capped.subscribe(t, {})));
    const refused = results.filter((result) => result.status === 'rejected');
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(2);
    expect(refused.map((result) => (result as PromiseRejectedResult).reason)).toEqual([
      expect.objectContaining({ code: 'TOO_MANY_STREAMS' }),
      expect.objectContaining({ code: 'TOO_MANY_STREAMS' }),
    ]);
  });

  it('a lost notice is recovered by the next one: every event still arrives', async () => {
    const t = tenant();
    // Every notice with an odd seq is lost; the poll is too slow to help.
    const lossy = await openHub({ pollIntervalMs: noPollMs }, (transport) =>
      filteredTransport(transport, (notice) => notice.tenantId !== t || notice.seq % 2 === 0),
    );
    const reader = collect(await lossy.subscribe(t, {}));
    await recordMany(t, 6);
    await reader.until(6);
    expect(reader.seqs()).toEqual(range(1, 6));
  });

  it('records of several tenants stored in one statement send each tenant its notice', async () => {
    const tenants = [tenant(), tenant(), tenant()];
    const quiet = await openHub({ pollIntervalMs: noPollMs });
    const readers = await Promise.all(tenants.map(async (t) => collect(await quiet.subscribe(t, {}))));
    // Started in one turn, so they are written together.
    await Promise.all([...tenants, tenants[0] as string].map((t) => record(t)));
    await Promise.all(readers.map((reader, n) => reader.until(n === 0 ? 2 : 1)));
    expect(readers.map((reader) => reader.seqs())).toEqual([[1, 2], [1], [1]]);
  });

  it('with no notices at all, the poll delivers every event', async () => {
    const t = tenant();
    const deaf = await openHub({ pollIntervalMs: 100 }, (transport) =>
      filteredTransport(transport, () => false),
    );
    const reader = collect(await deaf.subscribe(t, {}));
    await recordMany(t, 3);
    await reader.until(3, 3000);
    await recordMany(t, 2);
    await reader.until(5, 3000);
    expect(reader.seqs()).toEqual(range(1, 5));
  });

  it('close ends every stream with reason shutdown and refuses new subscribers', async () => {
    const closing = await openHub({ pollIntervalMs: noPollMs });
    const t = tenant();
    const subscription = await closing.subscribe(t, {});
    const reader = collect(subscription);
    await closing.close();
    await reader.done;
    expect(subscription.closeReason).toBe('shutdown');
    expect(closing.size).toBe(0);
    await expect(closing.subscribe(t, {})).rejects.toBeInstanceOf(ActivityError);
  });

  if (kind === 'redis') {
    it('after Redis restarts, events recorded after the restart still arrive (resync)', async () => {
      const resyncing = await openHub({ pollIntervalMs: noPollMs });
      const t = tenant();
      const reader = collect(await resyncing.subscribe(t, {}));
      await record(t);
      await reader.until(1);
      const redisUrl = fixture.redis?.url as string;
      const subscribed = await channelSubscribers(redisUrl);
      await fixture.redis?.restart();
      // Recorded while the transports may still be reconnecting: the notice may be lost,
      // the resync after the reconnect must fetch it.
      await record(t);
      await reader.until(2, 8000);
      // A notice sent before a subscriber is back on the channel is lost (no poll here).
      await eventually(
        `the ${subscribed} subscribers of before the restart to be back on the channel`,
        async () => (await channelSubscribers(redisUrl)) >= subscribed,
        8000,
      );
      await recordMany(t, 2);
      await reader.until(4, 8000);
      expect(reader.seqs()).toEqual([1, 2, 3, 4]);
    });
  }

  if (kind === 'postgres') {
    it('after its LISTEN connection is killed, the hub reconnects and fetches what it missed', async () => {
      const resyncing = await openHub({ pollIntervalMs: noPollMs });
      const t = tenant();
      const reader = collect(await resyncing.subscribe(t, {}));
      await record(t);
      await reader.until(1);
      const killed = await sql<{ pid: number }>`
        select pg_terminate_backend(pid) as killed, pid from pg_stat_activity
        where datname = current_database() and query = 'LISTEN activity_events' and pid <> pg_backend_pid()
      `.execute(fixture.database.db);
      expect(killed.rows.length).toBeGreaterThan(0);
      // The notice of this one is sent while nobody listens: only the resync can deliver it.
      await record(t);
      await reader.until(2, 8000);
      await recordMany(t, 2);
      await reader.until(4, 8000);
      expect(reader.seqs()).toEqual([1, 2, 3, 4]);
    });
  }
});
