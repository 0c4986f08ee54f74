import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type PurgeOptions, type PurgeProgress, purgeExpired } from '../../src/service/purge.js';
import type { Database } from '../../src/store/open-database.js';
import { openTestStore, storeKinds } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

const dayMs = 86_400_000;

function purge(
  database: Database,
  options: Omit<PurgeOptions, 'batchSize' | 'dryRun'> & Partial<PurgeOptions>,
) {
  return purgeExpired(
    { events: database.repository, retention: database.retention, recordPurges: async () => {} },
    { batchSize: 10, dryRun: false, ...options },
  );
}

async function append(database: Database, tenant: string, createdAt: Date, count = 1) {
  await database.repository.append(
    tenant,
    Array.from({ length: count }, () => newEvent(tenant)),
    { createdAt: createdAt },
  );
}

async function remaining(database: Database, tenant: string) {
  return database.repository.page(tenant, {}, { limit: 1000, order: 'asc' });
}

async function partitionNames(database: Database) {
  return (await database.retention.partitions()).map((partition) => partition.name);
}

describe.each(storeKinds)('purge in batches on %s', (kind) => {
  let database: Database;
  let dispose: () => Promise<void>;
  // Retention of one day, counted from a fixed instant: the cutoff is 2026-06-01.
  const cutoff = new Date('2026-06-01T00:00:00.000Z');
  const now = new Date(cutoff.getTime() + dayMs);
  const at = (offsetMs: number) => new Date(cutoff.getTime() + offsetMs);
  const options = { now, defaultRetentionMs: dayMs };

  beforeAll(async () => {
    ({ database, dispose } = await openTestStore(kind));
  });
  afterAll(async () => dispose?.());

  async function seed(tenant: string, offsetsMs: number[]) {
    for (const offset of offsetsMs) await append(database, tenant, at(offset));
  }
  const createdAts = async (tenant: string) => (await remaining(database, tenant)).map((e) => e.created_at);

  it('deletes exactly what was created before the cutoff, to the millisecond', async () => {
    const tenant = `purge-${randomUUID()}`;
    await seed(tenant, [-dayMs, -1, 0, 1]);
    const report = await purge(database, { ...options, tenantId: tenant });
    expect(report).toMatchObject({
      deleted: 2,
      cutoff: cutoff.toISOString(),
      dry_run: false,
      tenants: [{ tenant_id: tenant, deleted: 2, rule: 'default', cutoff: cutoff.toISOString() }],
    });
    expect(await createdAts(tenant)).toEqual([at(0).toISOString(), at(1).toISOString()]);
  });

  it('a dry run counts exactly what a real run deletes, and changes nothing', async () => {
    const tenant = `purge-dry-${randomUUID()}`;
    await seed(tenant, [-3, -2, -1, 5]);
    const partitionsBefore = await partitionNames(database);
    const dry = await purge(database, { ...options, tenantId: tenant, batchSize: 2, dryRun: true });
    expect(dry.deleted).toBe(3);
    expect(await createdAts(tenant)).toHaveLength(4);
    expect(await partitionNames(database)).toEqual(partitionsBefore);
    const real = await purge(database, { ...options, tenantId: tenant, batchSize: 2 });
    expect(real.deleted).toBe(dry.deleted);
  });

  it('works through small batches until nothing expired is left, and reports progress', async () => {
    const tenant = `purge-batches-${randomUUID()}`;
    await seed(tenant, [-50, -40, -30, -20, -10, 10]);
    const progress: PurgeProgress[] = [];
    const report = await purgeExpired(
      { events: database.repository, retention: database.retention, recordPurges: async () => {} },
      { ...options, tenantId: tenant, batchSize: 2, dryRun: false },
      (step) => progress.push(step),
    );
    expect(report.deleted).toBe(5);
    expect(progress.map((step) => step.deleted)).toEqual([2, 2, 1]);
    expect(await createdAts(tenant)).toEqual([at(10).toISOString()]);
  });

  it('--tenant leaves every other tenant alone; without it every tenant is purged', async () => {
    const a = `purge-a-${randomUUID()}`;
    const b = `purge-b-${randomUUID()}`;
    await seed(a, [-1]);
    await seed(b, [-1]);
    await purge(database, { ...options, tenantId: a });
    expect(await createdAts(a)).toEqual([]);
    expect(await createdAts(b)).toHaveLength(1);
    const all = await purge(database, options);
    expect(all.tenants).toContainEqual(expect.objectContaining({ tenant_id: b, deleted: 1 }));
    expect(await createdAts(b)).toEqual([]);
  });

  it('inserts go on during a purge, and none of them is deleted', async () => {
    const tenant = `purge-busy-${randomUUID()}`;
    await append(database, tenant, at(-1000), 200);
    const purging = purge(database, { ...options, tenantId: tenant });
    const inserting = (async () => {
      for (let i = 0; i < 20; i++) await append(database, tenant, at(1));
    })();
    const [report] = await Promise.all([purging, inserting]);
    expect(report.deleted).toBe(200);
    const left = await remaining(database, tenant);
    expect(left.map((event) => event.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 201 + i));
  });

  it('a tenant keeps counting seq after a purge: new events never reuse a number', async () => {
    const tenant = `purge-seq-${randomUUID()}`;
    await seed(tenant, [-2, -1]);
    await purge(database, { ...options, tenantId: tenant });
    const [next] = await database.repository.append(tenant, [newEvent(tenant)], { createdAt: at(1) });
    expect(next?.event.seq).toBe(3);
  });

  it("a tenant's policy overrides the default, both ways, and a hold beats any policy", async () => {
    const longer = `purge-long-${randomUUID()}`;
    const shorter = `purge-short-${randomUUID()}`;
    const held = `purge-held-${randomUUID()}`;
    for (const tenant of [longer, shorter, held]) await seed(tenant, [-10 * dayMs, -dayMs / 2, dayMs / 2]);
    await database.retention.setPolicy(longer, 30);
    await database.retention.setPolicy(shorter, 1); // cutoff 2026-06-01 + 1 day - 1 day: the default's
    await database.retention.setPolicy(held, 1);
    await database.retention.placeHold(held, 'case 7');
    const report = await purge(database, {
      now: new Date(cutoff.getTime() + dayMs),
      defaultRetentionMs: 2 * dayMs,
    });
    expect(report.tenants).toContainEqual({
      tenant_id: held,
      deleted: 0,
      rule: 'hold',
      cutoff: null,
      retention_days: null,
      reason: 'case 7',
    });
    // the default (2 days) would delete the -10 d event; 30 days keeps it
    expect(report.tenants.find((t) => t.tenant_id === longer)).toBeUndefined();
    expect(report.tenants).toContainEqual(
      expect.objectContaining({ tenant_id: shorter, deleted: 2, rule: 'policy', retention_days: 1 }),
    );
    expect(await createdAts(longer)).toHaveLength(3);
    expect(await createdAts(shorter)).toEqual([at(dayMs / 2).toISOString()]);
    expect(await createdAts(held)).toHaveLength(3);

    expect(await database.retention.releaseHold(held)).toMatchObject({ tenant_id: held, reason: 'case 7' });
    await purge(database, { now: new Date(cutoff.getTime() + dayMs), defaultRetentionMs: 2 * dayMs });
    expect(await createdAts(held)).toEqual([at(dayMs / 2).toISOString()]);
  });

  it('a hold placed while a tenant is being purged stops the next batch', async () => {
    const tenant = `purge-hold-late-${randomUUID()}`;
    await append(database, tenant, at(-1000), 50);
    const oldest = await database.retention.firstExpiredSeq(tenant, cutoff);
    expect(oldest).toBe(1);
    expect(await database.retention.deleteExpired(tenant, cutoff, 1, 10, { at: now, rule: 'default' })).toBe(
      10,
    );
    await database.retention.placeHold(tenant, null);
    expect(await database.retention.deleteExpired(tenant, cutoff, 11, 10, { at: now, rule: 'default' })).toBe(
      0,
    );
    expect(await database.retention.firstExpiredSeq(tenant, cutoff, 11)).toBeNull();
    expect(await database.retention.countBefore(tenant, cutoff)).toBe(40);
    await database.retention.releaseHold(tenant);
  });
});

describe.each(storeKinds)('purge by partition on %s', { timeout: 90_000 }, (kind) => {
  let database: Database;
  let dispose: (() => Promise<void>) | undefined;
  // Data from 2026-01 to 2026-05; retention of 60 days counted from 2026-05-20: the
  // cutoff is 2026-03-21, so January and February are whole expired months, March is
  // the boundary.
  const now = new Date('2026-05-20T00:00:00.000Z');
  const options = { now, defaultRetentionMs: 60 * dayMs };
  const months = ['2026-01-10', '2026-02-10', '2026-03-10', '2026-03-25', '2026-04-10', '2026-05-10'];

  afterEach(async () => {
    await dispose?.();
    dispose = undefined;
  });

  /** Tenants a, b and c with events in every month, in fresh monthly partitions. */
  async function seeded(): Promise<Database> {
    const opened = await openTestStore(kind);
    dispose = opened.dispose;
    await opened.database.retention.ensurePartitions(new Date('2026-01-01T00:00:00.000Z'));
    await opened.database.retention.ensurePartitions(now);
    for (const day of months) {
      for (const tenant of ['a', 'b', 'c'])
        await append(opened.database, tenant, new Date(`${day}T12:00:00.000Z`), 3);
    }
    return opened.database;
  }

  async function snapshot(db: Database) {
    const tenants: Record<string, string[]> = {};
    for (const tenant of ['a', 'b', 'c']) {
      tenants[tenant] = (await remaining(db, tenant)).map((e) => `${e.seq}@${e.created_at}`);
    }
    return tenants;
  }

  it('drops whole expired months, deletes the boundary month in batches, and ends as the batch path does', async () => {
    database = await seeded();
    const dry = await purge(database, { ...options, dryRun: true });
    expect(dry.partitions.map((p) => [p.name, p.events])).toEqual([
      ['activity_events_y2026m01', 9],
      ['activity_events_y2026m02', 9],
    ]);
    expect(await partitionNames(database)).toContain('activity_events_y2026m01');

    const report = await purge(database, options);
    expect(report.deleted).toBe(dry.deleted);
    expect(report.deleted).toBe(27); // three tenants × (January, February, March 10th) × 3
    expect(report.partitions).toEqual(dry.partitions);
    expect(report.tenants.map((t) => [t.tenant_id, t.deleted])).toEqual([
      ['a', 9],
      ['b', 9],
      ['c', 9],
    ]);
    const names = await partitionNames(database);
    expect(names).not.toContain('activity_events_y2026m01');
    expect(names).not.toContain('activity_events_y2026m02');
    expect(names).toContain('activity_events_y2026m03');
    const byPartition = await snapshot(database);
    await dispose?.();

    // The same data purged tenant by tenant: --tenant never drops a partition.
    database = await seeded();
    for (const tenant of ['a', 'b', 'c']) await purge(database, { ...options, tenantId: tenant });
    expect(await partitionNames(database)).toContain('activity_events_y2026m01');
    expect(await snapshot(database)).toEqual(byPartition);
    expect(byPartition.a?.[0]).toBe('10@2026-03-25T12:00:00.000Z');
  });

  it('keeps a month that a hold or a longer policy keeps, and batch-deletes the others in it', async () => {
    database = await seeded();
    await database.retention.placeHold('b', 'audit');
    await database.retention.setPolicy('c', 120); // cutoff 2026-01-20: keeps February on
    const report = await purge(database, options);
    expect(report.partitions).toEqual([]);
    expect(await partitionNames(database)).toContain('activity_events_y2026m01');
    expect(report.tenants.map((t) => [t.tenant_id, t.deleted, t.rule])).toEqual([
      ['a', 9, 'default'],
      ['b', 0, 'hold'],
      ['c', 3, 'policy'],
    ]);
    expect(await remaining(database, 'b')).toHaveLength(18);
    expect((await remaining(database, 'c'))[0]?.created_at).toBe('2026-02-10T12:00:00.000Z');

    // Without the hold, January holds only what c's policy lets go: it is dropped.
    await database.retention.releaseHold('b');
    const next = await purge(database, options);
    expect(next.partitions.map((p) => p.name)).toEqual(['activity_events_y2026m01']);
    expect(next.tenants.find((t) => t.tenant_id === 'b')?.deleted).toBe(9);
  });

  it('counts exactly what a dropped month held, after part of it went in batches', async () => {
    database = await seeded();
    expect(
      await database.retention.deleteExpired('a', new Date('2026-02-01T00:00:00.000Z'), 1, 2, {
        at: now,
        rule: 'default',
      }),
    ).toBe(2);
    const report = await purge(database, options);
    expect(report.partitions.map((p) => [p.name, p.events])).toEqual([
      ['activity_events_y2026m01', 7],
      ['activity_events_y2026m02', 9],
    ]);
    expect(report.tenants.map((t) => [t.tenant_id, t.deleted])).toEqual([
      ['a', 7],
      ['b', 9],
      ['c', 9],
    ]);
  });

  it('batches go on past the gap that a month dropped after a kept one leaves in a tenant', async () => {
    database = await seeded();
    // h keeps January; February is dropped, so a's and b's expired seqs are 1–3 and 7–9.
    await append(database, 'h', new Date('2026-01-10T12:00:00.000Z'));
    await database.retention.placeHold('h', null);
    const february = (await database.retention.partitions()).find(
      (partition) => partition.name === 'activity_events_y2026m02',
    );
    if (!february) throw new Error('no February partition');
    expect(
      (await database.retention.dropPartition(february, { now, dryRun: false, defaultCutoff: now })).outcome,
    ).toBe('dropped');
    // Batches of 2 end short inside each run; batches of 3 end full and find the gap empty.
    for (const [tenant, batchSize] of [
      ['a', 2],
      ['b', 3],
    ] as const) {
      const report = await purge(database, { ...options, batchSize, tenantId: tenant });
      expect(report.deleted).toBe(6);
      expect((await remaining(database, tenant))[0]?.created_at).toBe('2026-03-25T12:00:00.000Z');
    }
  });

  it('inserts go on while months are dropped, and none of them is lost', async () => {
    database = await seeded();
    let stop = false;
    let inserted = 0;
    const inserting = (async () => {
      while (!stop) {
        await append(database, 'live', new Date('2026-05-19T00:00:00.000Z'));
        inserted++;
      }
    })();
    const report = await purge(database, options);
    stop = true;
    await inserting;
    expect(report.partitions.map((p) => p.name)).toEqual([
      'activity_events_y2026m01',
      'activity_events_y2026m02',
    ]);
    expect(inserted).toBeGreaterThan(0);
    const live = await remaining(database, 'live');
    expect(live.map((e) => e.seq)).toEqual(Array.from({ length: inserted }, (_, i) => i + 1));
  });

  it('moves rows out of the default partition when their month is created', async () => {
    const opened = await openTestStore(kind);
    dispose = opened.dispose;
    database = opened.database;
    const late = new Date(Date.UTC(new Date().getUTCFullYear() + 2, 0, 15));
    await append(database, 'x', late, 2);
    const where = async () =>
      (
        await sql<{
          partition: string;
        }>`select tableoid::regclass::text as partition from activity_events where tenant_id = 'x'`.execute(
          database.db,
        )
      ).rows.map((row) => row.partition);
    expect(await where()).toEqual(['activity_events_default', 'activity_events_default']);
    expect(await database.retention.ensurePartitions(late)).toBeGreaterThan(0);
    const month = `activity_events_y${late.getUTCFullYear()}m01`;
    expect(await where()).toEqual([month, month]);
    expect((await remaining(database, 'x')).map((e) => e.seq)).toEqual([1, 2]);
  });
});
