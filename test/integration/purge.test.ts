import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeExpired } from '../../src/service/purge.js';
import type { Database } from '../../src/store/open-database.js';
import { openTestStore, storeKinds } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

describe.each(storeKinds)('purge on %s', (kind) => {
  let database: Database;
  let dispose: () => Promise<void>;
  const cutoff = new Date('2026-06-01T00:00:00.000Z');
  const at = (offsetMs: number) => new Date(cutoff.getTime() + offsetMs);

  beforeAll(async () => {
    ({ database, dispose } = await openTestStore(kind));
  });
  afterAll(async () => dispose?.());

  async function seed(tenant: string, offsetsMs: number[]) {
    for (const offset of offsetsMs) await database.repository.append(tenant, [newEvent(tenant)], at(offset));
  }
  const remaining = async (tenant: string) =>
    (await database.repository.page(tenant, {}, { limit: 1000, order: 'asc' })).map(
      (event) => event.created_at,
    );

  it('deletes exactly what was created before the cutoff, to the millisecond', async () => {
    const tenant = `purge-${randomUUID()}`;
    await seed(tenant, [-86_400_000, -1, 0, 1]);
    const report = await purgeExpired(database.repository, {
      cutoff,
      tenantId: tenant,
      batchSize: 10,
      dryRun: false,
    });
    expect(report).toMatchObject({
      deleted: 2,
      dry_run: false,
      tenants: [{ tenant_id: tenant, deleted: 2 }],
    });
    expect(await remaining(tenant)).toEqual([at(0).toISOString(), at(1).toISOString()]);
  });

  it('a dry run counts exactly what a real run deletes, and changes nothing', async () => {
    const tenant = `purge-dry-${randomUUID()}`;
    await seed(tenant, [-3, -2, -1, 5]);
    const dry = await purgeExpired(database.repository, {
      cutoff,
      tenantId: tenant,
      batchSize: 2,
      dryRun: true,
    });
    expect(dry.deleted).toBe(3);
    expect(await remaining(tenant)).toHaveLength(4);
    const real = await purgeExpired(database.repository, {
      cutoff,
      tenantId: tenant,
      batchSize: 2,
      dryRun: false,
    });
    expect(real.deleted).toBe(dry.deleted);
  });

  it('works through small batches until nothing expired is left, and reports progress', async () => {
    const tenant = `purge-batches-${randomUUID()}`;
    await seed(tenant, [-50, -40, -30, -20, -10, 10]);
    const progress: number[] = [];
    const report = await purgeExpired(
      database.repository,
      { cutoff, tenantId: tenant, batchSize: 2, dryRun: false },
      (deleted) => progress.push(deleted),
    );
    expect(report.deleted).toBe(5);
    expect(progress).toEqual([2, 4, 5]);
    expect(await remaining(tenant)).toEqual([at(10).toISOString()]);
  });

  it('--tenant leaves every other tenant alone; without it every tenant is purged', async () => {
    const a = `purge-a-${randomUUID()}`;
    const b = `purge-b-${randomUUID()}`;
    await seed(a, [-1]);
    await seed(b, [-1]);
    await purgeExpired(database.repository, { cutoff, tenantId: a, batchSize: 10, dryRun: false });
    expect(await remaining(a)).toEqual([]);
    expect(await remaining(b)).toHaveLength(1);
    const all = await purgeExpired(database.repository, { cutoff, batchSize: 10, dryRun: false });
    expect(all.tenants).toContainEqual({ tenant_id: b, deleted: 1 });
    expect(await remaining(b)).toEqual([]);
  });

  it('inserts go on during a purge, and none of them is deleted', async () => {
    const tenant = `purge-busy-${randomUUID()}`;
    await database.repository.append(
      tenant,
      Array.from({ length: 200 }, () => newEvent(tenant)),
      at(-1000),
    );
    const purging = purgeExpired(database.repository, {
      cutoff,
      tenantId: tenant,
      batchSize: 10,
      dryRun: false,
    });
    const inserting = (async () => {
      for (let i = 0; i < 20; i++) await database.repository.append(tenant, [newEvent(tenant)], at(1));
    })();
    const [report] = await Promise.all([purging, inserting]);
    expect(report.deleted).toBe(200);
    const left = await database.repository.page(tenant, {}, { limit: 1000, order: 'asc' });
    expect(left.map((event) => event.seq)).toEqual(Array.from({ length: 20 }, (_, i) => 201 + i));
  });

  it('a tenant keeps counting seq after a purge: new events never reuse a number', async () => {
    const tenant = `purge-seq-${randomUUID()}`;
    await seed(tenant, [-2, -1]);
    await purgeExpired(database.repository, { cutoff, tenantId: tenant, batchSize: 10, dryRun: false });
    const [next] = await database.repository.append(tenant, [newEvent(tenant)], at(1));
    expect(next?.event.seq).toBe(3);
  });
});
