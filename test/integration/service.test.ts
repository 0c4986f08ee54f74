import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ActivityError } from '../../src/domain/errors.js';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createMetrics } from '../../src/metrics/metrics.js';
import { deriveKeys } from '../../src/privacy/keys.js';
import { createRegistry } from '../../src/registry/registry.js';
import { ActivityService, type ImportItem } from '../../src/service/activity-service.js';
import { createActivityLog } from '../../src/service/typed-log.js';
import { openTestStore, storeKinds } from '../helpers/databases.js';

async function* items(values: unknown[]): AsyncGenerator<ImportItem> {
  for (const [index, value] of values.entries()) yield { line: index + 1, value };
}

describe.each(storeKinds)('service on %s', (kind) => {
  let service: ActivityService;
  let store: Awaited<ReturnType<typeof openTestStore>>;
  let dispose: () => Promise<void>;
  const metrics = createMetrics();
  const logged: ActivityEvent[] = [];

  beforeAll(async () => {
    store = await openTestStore(kind);
    dispose = store.dispose;
    service = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
      observers: [metrics.observer, { recorded: (events) => logged.push(...events) }],
    });
  });
  afterAll(async () => dispose?.());

  const tenant = () => `svc-${randomUUID()}`;

  it('records a scrubbed, hashed event and tells its observers', async () => {
    const a = tenant();
    const event = await service.record({
      tenant_id: a,
      action: 'auth.login.failure',
      actor_id: 'u_1',
      status: 'failure',
      ip: '::ffff:203.0.113.7',
      metadata: {
        reason: 'invalid_credentials',
        context: { password: 'hunter2', header: 'Bearer abc.def.ghijkl' },
      },
    });
    expect(event).toMatchObject({ tenant_id: a, seq: 1, actor_type: 'user', status: 'failure' });
    expect(event.metadata).toEqual({
      reason: 'invalid_credentials',
      context: { password: '[REDACTED]', header: '[REDACTED]' },
    });
    expect(event.ip_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(event)).not.toContain('203.0.113.7');
    const same = await service.record({ tenant_id: a, action: 'auth.login.success', ip: '203.0.113.7' });
    expect(same.ip_hash).toBe(event.ip_hash);
    expect(logged.map((e) => e.id)).toContain(event.id);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/activity_events_recorded_total\{namespace="auth",status="failure"\} [1-9]/);
  });

  it.each([
    ['actor_id', 'Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXNpZw', 'credential'],
    ['request_id', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJlLXNpZw', 'credential'],
    ['source', 'postgres://admin:hunter2@db.internal/app', 'credential'],
    ['object_id', '203.0.113.95', 'IP address'],
  ])('an identifier holding a secret is refused, never stored or echoed: %s', async (field, value, what) => {
    const a = tenant();
    const refused = await service
      .record({ tenant_id: a, action: 'auth.login.success', [field]: value })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [expect.objectContaining({ path: field })],
    });
    expect((refused as Error).message).toContain(what);
    expect(JSON.stringify(refused)).not.toContain(value);
    expect((refused as Error).message).not.toContain(value);
    expect((await service.query(a, {})).data).toEqual([]);
  });

  it('a 16-digit numeric id is kept: card numbers are looked for in metadata, not in identifiers', async () => {
    const event = await service.record({
      tenant_id: tenant(),
      action: 'auth.login.success',
      object_id: '4111111111111111',
    });
    expect(event.object_id).toBe('4111111111111111');
  });

  it('IP addresses inside text become [IP], in metadata and in the user agent', async () => {
    const event = await service.record({
      tenant_id: tenant(),
      action: 'auth.login.failure',
      status: 'failure',
      user_agent: 'curl/8.5 (via proxy 203.0.113.96)',
      metadata: {
        reason: 'rate_limited',
        context: {
          note: 'login from 203.0.113.91 blocked',
          forwarded: 'for=203.0.113.94;proto=https',
          v6: '[2001:db8::92]:443',
        },
      },
    });
    expect(event.user_agent).toBe('curl/8.5 (via proxy [IP])');
    expect(event.metadata.context).toEqual({
      note: 'login from [IP] blocked',
      forwarded: 'for=[IP];proto=https',
      v6: '[IP]:443',
    });
  });

  it('a metadata string that scrubbing makes longer than its cap is refused, never stored over it', async () => {
    const refused = await service
      .record({
        tenant_id: tenant(),
        action: 'auth.login.success',
        metadata: { context: { note: '::1 '.repeat(512) } },
      })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [
        {
          path: 'metadata.context.note',
          message: expect.stringContaining('once secrets and IP addresses are replaced'),
        },
      ],
    });
  });

  it('a metadata key that holds a secret is refused, naming where without the key', async () => {
    const key = 'Bearer abcdefgh.ijklmnop-qrstu_vwxyz';
    const refused = await service
      .record({ tenant_id: tenant(), action: 'auth.login.success', metadata: { context: { [key]: 1 } } })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [expect.objectContaining({ path: 'metadata.context.[key]' })],
    });
    expect(JSON.stringify(refused)).not.toContain('abcdefgh');
  });

  it('rejects invalid input before storing anything, and counts the failure', async () => {
    const a = tenant();
    await expect(service.record({ tenant_id: a, action: 'auth.nope.nope' })).rejects.toMatchObject({
      code: 'ACTION_UNKNOWN',
    });
    await expect(
      service.record({ tenant_id: a, action: 'auth.login.failure', metadata: { reason: 'bad', extra: 1 } }),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      message: expect.stringContaining('metadata.extra'),
    });
    await expect(
      service.record({ tenant_id: a, action: 'auth.login.success', ip: 'not-an-ip' }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED', message: expect.stringContaining('ip') });
    expect((await service.query(a, {})).data).toEqual([]);
    expect(await metrics.registry.metrics()).toMatch(
      /activity_record_failures_total\{reason="ACTION_UNKNOWN"\} [1-9]/,
    );
  });

  it('concurrent records of one tenant are written together, each once, with gapless seqs', async () => {
    const a = tenant();
    const writes: number[] = [];
    const probe = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
      observers: [{ recorded: (events) => writes.push(events.length) }],
    });
    const retried = randomUUID();
    const recorded = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        probe.record({
          tenant_id: a,
          action: 'auth.login.success',
          ...(i % 10 === 0 ? { id: retried } : {}),
        }),
      ),
    );
    // One id sent four times is stored once; the copies come back as the stored event.
    expect(new Set(recorded.filter((event) => event.id === retried).map((event) => event.seq)).size).toBe(1);
    expect([...new Set(recorded.map((event) => event.seq))].sort((x, y) => x - y)).toEqual(
      Array.from({ length: 37 }, (_, i) => i + 1),
    );
    expect(writes.reduce((sum, count) => sum + count, 0)).toBe(37);
    expect(writes.length).toBeLessThan(37);
  });

  it('concurrent records of several tenants go in one statement, each tenant counting on from its head', async () => {
    const tenants = [tenant(), tenant(), tenant()];
    const writes: string[][] = [];
    const probe = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
      observers: [{ recorded: (events) => writes.push(events.map((event) => event.tenant_id)) }],
    });
    // Their first events, one by one: a tenant with no head row yet is written on its own.
    for (const t of tenants) await probe.record({ tenant_id: t, action: 'auth.login.success' });
    writes.length = 0;
    const recorded = await Promise.all(
      [0, 1, 2, 0, 1, 2, 0].map((n) => probe.record({ tenant_id: tenants[n], action: 'auth.login.success' })),
    );
    expect(writes).toHaveLength(1);
    expect(new Set(writes[0])).toEqual(new Set(tenants));
    expect(recorded.map((event) => [event.tenant_id, event.seq])).toEqual([
      [tenants[0], 2],
      [tenants[1], 2],
      [tenants[2], 2],
      [tenants[0], 3],
      [tenants[1], 3],
      [tenants[2], 3],
      [tenants[0], 4],
    ]);
  });

  it("a write the database rejects for one tenant fails only that tenant's records", async () => {
    const poisoned = `poison-${randomUUID()}`;
    const healthy = tenant();
    const failures: Array<[string, number]> = [];
    const probe = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
      observers: [{ recordFailed: (code, count) => failures.push([code, count]) }],
    });
    // A trigger stands in for whatever the database may refuse of one tenant's rows.
    await sql`create function reject_poisoned() returns trigger language plpgsql as $$
      begin
        if new.tenant_id = ${sql.lit(poisoned)} then raise exception 'poisoned tenant'; end if;
        return new;
      end $$`.execute(store.database.db);
    await sql`create trigger reject_poisoned before insert on activity_events
      for each row execute function reject_poisoned()`.execute(store.database.db);
    try {
      const [good, bad, alsoGood] = await Promise.allSettled([
        probe.record({ tenant_id: healthy, action: 'auth.login.success' }),
        probe.record({ tenant_id: poisoned, action: 'auth.login.success' }),
        probe.record({ tenant_id: healthy, action: 'auth.logout.completed' }),
      ]);
      expect(good.status === 'fulfilled' && good.value.seq).toBe(1);
      expect(alsoGood.status === 'fulfilled' && alsoGood.value.seq).toBe(2);
      expect(bad.status === 'rejected' && bad.reason.code).toBe('INTERNAL');
      expect(failures).toEqual([['INTERNAL', 1]]);
    } finally {
      await sql`drop trigger reject_poisoned on activity_events`.execute(store.database.db);
      await sql`drop function reject_poisoned()`.execute(store.database.db);
    }
    const [after] = await store.database.repository.page(poisoned, {}, { limit: 1 });
    expect(after).toBeUndefined();
  });

  it('a fault after a write across tenants is not taken for a refusal: nothing is stored twice', async () => {
    const tenants = [tenant(), tenant()];
    // Head rows first: the statement across tenants skips a tenant that has none yet.
    for (const t of tenants) await service.record({ tenant_id: t, action: 'auth.login.success' });
    let faults = 1;
    const probe = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
      observers: [
        {
          recorded: () => {
            if (faults-- > 0) throw new Error('observer fault');
          },
        },
      ],
    });
    const results = await Promise.allSettled(
      tenants.map((t) => probe.record({ tenant_id: t, action: 'auth.login.success' })),
    );
    expect(results.map((result) => result.status)).toEqual(['rejected', 'rejected']);
    for (const t of tenants) {
      const stored = await store.database.repository.page(t, {}, { limit: 10 });
      expect(stored.map((event) => event.seq)).toEqual([2, 1]);
    }
  });

  it('a batch is all-or-nothing and names each invalid index', async () => {
    const a = tenant();
    const valid = { tenant_id: a, action: 'auth.email.verified' };
    await expect(
      service.recordBatch([valid, { ...valid, action: 'x.y.z' }, valid, { ...valid, metadata: { nope: 1 } }]),
    ).rejects.toMatchObject({
      code: 'VALIDATION_FAILED',
      issues: [
        expect.objectContaining({ path: '[1].action' }),
        expect.objectContaining({ path: '[3].metadata.nope' }),
      ],
    });
    expect(await store.database.repository.page(a, {}, { limit: 10 })).toEqual([]);
    const stored = await service.recordBatch([valid, valid]);
    expect(stored.map((event) => event.seq)).toEqual([1, 2]);
  });

  it('pages with cursors, and events arriving meanwhile neither repeat nor hide older ones', async () => {
    const a = tenant();
    await service.recordBatch(
      Array.from({ length: 25 }, () => ({ tenant_id: a, action: 'auth.token.refreshed' })),
    );
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 10; page++) {
      const result = await service.query(a, { limit: 7, ...(cursor ? { cursor } : {}) });
      seen.push(...result.data.map((event) => event.seq));
      await service.record({ tenant_id: a, action: 'auth.token.refreshed' });
      if (!result.next_cursor) break;
      cursor = result.next_cursor;
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
  });

  it('the last page has no next cursor', async () => {
    const a = tenant();
    await service.recordBatch(
      Array.from({ length: 4 }, () => ({ tenant_id: a, action: 'auth.email.verified' })),
    );
    const page = await service.query(a, { limit: 4 });
    expect(page.data).toHaveLength(4);
    expect(page.next_cursor).toBeNull();
  });

  it('a cursor is bound to its tenant and its filters', async () => {
    const a = tenant();
    const b = tenant();
    await service.recordBatch(
      Array.from({ length: 3 }, () => ({ tenant_id: a, action: 'auth.email.verified' })),
    );
    await service.recordBatch(
      Array.from({ length: 3 }, () => ({ tenant_id: b, action: 'auth.email.verified' })),
    );
    const { next_cursor } = await service.query(a, { limit: 1, action: 'auth.*' });
    expect(next_cursor).toEqual(expect.any(String));
    await expect(service.query(b, { cursor: next_cursor, action: 'auth.*' })).rejects.toMatchObject({
      code: 'CURSOR_INVALID',
    });
    await expect(service.query(a, { cursor: next_cursor, action: 'storage.*' })).rejects.toMatchObject({
      code: 'CURSOR_INVALID',
    });
    expect((await service.query(a, { cursor: next_cursor, action: 'auth.*', limit: 5 })).data).toHaveLength(
      2,
    );
  });

  it('a relative window stays fixed across the pages of one query', async () => {
    const a = tenant();
    await service.recordBatch(
      Array.from({ length: 3 }, () => ({ tenant_id: a, action: 'auth.email.verified' })),
    );
    const first = await service.query(a, { since: '1h', limit: 1 });
    const rest = await service.query(a, { since: '1h', limit: 5, cursor: first.next_cursor });
    expect([...first.data, ...rest.data].map((event) => event.seq)).toEqual([3, 2, 1]);
  });

  it('queryAll streams every matching event, newest first', async () => {
    const a = tenant();
    await service.recordBatch(
      Array.from({ length: 2100 }, (_, i) => ({
        tenant_id: a,
        action: i % 2 === 0 ? 'auth.email.verified' : 'storage.file.deleted',
        metadata: i % 2 === 0 ? {} : { file_id: `f${i}` },
      })),
    );
    const seqs: number[] = [];
    for await (const event of service.queryAll(a, { action: 'storage.*' })) seqs.push(event.seq);
    expect(seqs).toEqual(Array.from({ length: 1050 }, (_, i) => 2100 - 2 * i));
  });

  it('queryAllJson streams, as NDJSON, the events queryAll yields', async () => {
    const a = tenant();
    await service.recordBatch(
      Array.from({ length: 30 }, (_, i) => ({
        tenant_id: a,
        action: i % 3 === 0 ? 'auth.email.verified' : 'storage.file.deleted',
        request_id: `r-${i % 2}`,
        metadata: i % 3 === 0 ? {} : { file_id: `f"${i}\\` },
      })),
    );
    const input = { action: 'storage.*', request_id: 'r-1' };
    const events: ActivityEvent[] = [];
    for await (const event of service.queryAll(a, input)) events.push(event);
    const chunks: Uint8Array[] = [];
    for await (const chunk of service.queryAllJson(a, input)) chunks.push(chunk);
    const lines = Buffer.concat(chunks).toString('utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(events).toHaveLength(10);
    expect(lines.map((line) => JSON.parse(line))).toEqual(events);
  });

  it('queryAllJson refuses a bad filter before reading anything', () => {
    expect(() => service.queryAllJson(tenant(), { status: 'maybe' })).toThrow(
      expect.objectContaining({ code: 'PARAMETER_INVALID' }),
    );
    expect(() => service.queryAllJson('no spaces allowed', {})).toThrow(ActivityError);
  });

  it('recordMany stores valid items, reports each rejected line, and counts duplicates', async () => {
    const a = tenant();
    const id = randomUUID();
    const rejected: number[] = [];
    const report = await service.recordMany(
      items([
        { tenant_id: a, action: 'auth.email.verified', id },
        { tenant_id: a, action: 'auth.unknown.thing' },
        { tenant_id: a, action: 'auth.email.verified', id },
        { tenant_id: `${a}-2`, action: 'auth.email.verified' },
        'not an object',
      ]),
      (item) => rejected.push(item.line),
    );
    expect(report).toMatchObject({ recorded: 2, duplicates: 1, rejected_total: 2 });
    expect(report.rejected.map((item) => [item.line, item.code])).toEqual([
      [2, 'ACTION_UNKNOWN'],
      [5, 'VALIDATION_FAILED'],
    ]);
    expect(rejected).toEqual([2, 5]);
    expect((await service.query(a, {})).data).toHaveLength(1);
  });

  it('typed helpers record their action with the default tenant', async () => {
    const a = tenant();
    const log = createActivityLog(service, { tenantId: a });
    const event = await log.auth.loginFailed({
      actor_id: 'u_9',
      status: 'failure',
      metadata: { reason: 'mfa_failed' },
    });
    expect(event).toMatchObject({ tenant_id: a, action: 'auth.login.failure', actor_id: 'u_9' });
    await log.containers.bound({
      metadata: { container_id: 'c1', bound_to_type: 'agent', bound_to_id: 'a1' },
    });
    expect((await service.query(a, { action: 'containers.*' })).data).toHaveLength(1);
  });

  it('a writer whose clock is ten years ahead stores the database time, and does not move the timeline', async () => {
    const a = tenant();
    const tenYears = 10 * 365 * 86_400_000;
    const skewed = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
      clock: () => new Date(Date.now() + tenYears),
    });
    const fromSkewedHost = [
      await skewed.record({ tenant_id: a, action: 'auth.login.success' }),
      ...(await skewed.recordBatch([{ tenant_id: a, action: 'auth.login.success' }])),
      await skewed.record({ tenant_id: a, action: 'auth.login.success', id: randomUUID() }),
    ];
    const after = await service.record({ tenant_id: a, action: 'auth.login.success' });
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(store.database.db);
    const databaseNow = (rows[0] as { now: Date }).now.getTime();
    for (const event of [...fromSkewedHost, after]) {
      // The database's clock, give or take the test's own duration: nowhere near ten years.
      expect(Math.abs(Date.parse(event.created_at) - databaseNow)).toBeLessThan(60_000);
    }
    expect(after.seq).toBe(4);
  });
});

// PGlite is one session: only PostgreSQL can hold a lock against the service.
describe('service on postgres, with a lock held elsewhere', () => {
  let service: ActivityService;
  let store: Awaited<ReturnType<typeof openTestStore>>;

  beforeAll(async () => {
    store = await openTestStore('postgres');
    service = new ActivityService({
      repository: store.database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
    });
  });
  afterAll(async () => store?.dispose());

  const tenant = () => `svc-lock-${randomUUID()}`;

  it("a tenant whose head row another session holds is written on its own, holding up no other tenant's records", async () => {
    const held = tenant();
    const free = [tenant(), tenant()];
    await service.record({ tenant_id: held, action: 'auth.login.success' });
    const holder = await store.database.db.connection().execute(async (connection) => {
      await sql`begin`.execute(connection);
      await sql`select 1 from activity_tenants where tenant_id = ${held} for update`.execute(connection);
      const writes = [held, ...free].map((t) =>
        service.record({ tenant_id: t, action: 'auth.login.success' }),
      );
      let heldSettled = false;
      void writes[0]?.finally(() => {
        heldSettled = true;
      });
      // Written in one turn, so together: the free tenants' records do not wait for the lock.
      const others = await Promise.all(writes.slice(1));
      const settledEarly = heldSettled;
      await sql`commit`.execute(connection);
      return { others, settledEarly, heldEvent: await writes[0] };
    });
    expect(holder.settledEarly).toBe(false);
    expect(holder.others.map((event) => event.seq)).toEqual([1, 1]);
    expect(holder.heldEvent?.seq).toBe(2);
  });
});
