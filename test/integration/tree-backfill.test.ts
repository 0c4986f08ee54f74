import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointSigner } from '../../src/integrity/checkpoint-signer.js';
import { createRegistry } from '../../src/registry/registry.js';
import { ownEventsTrail } from '../../src/service/audit-trail.js';
import { IntegrityService } from '../../src/service/integrity-service.js';
import { MigrationService } from '../../src/service/migration-service.js';
import { type Database, openDatabase } from '../../src/store/open-database.js';
import { createTestDatabase } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

const signer = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey);
const beforeTrees = '0003_create_retention_policies_and_legal_holds';

/** Events appended the way the schema before the trees did, at times with microseconds. */
async function appendBeforeTrees(database: Database, tenant: string, count: number) {
  const events = Array.from({ length: count }, (_, n) => ({ ...newEvent(tenant), n }));
  await sql`select * from activity_append(${tenant}, ${JSON.stringify(events)}::jsonb,
    clock_timestamp(), '{}', null)`.execute(database.db);
}

describe('events stored before the trees', () => {
  let database: Database | undefined;
  let drop: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await database?.close();
    await drop?.();
  });

  async function databaseBeforeTrees() {
    const created = await createTestDatabase({ migrated: false });
    drop = created.drop;
    database = await openDatabase({ kind: 'postgres', url: created.url });
    await database.migrator.up(beforeTrees);
    return database;
  }
  const servicesOf = (db: Database) => ({
    migrations: new MigrationService({
      migrator: db.migrator,
      retention: db.retention,
      integrity: db.integrity,
    }),
    integrity: new IntegrityService({
      events: db.repository,
      integrity: db.integrity,
      signer: async () => signer,
      audit: ownEventsTrail(db.repository, createRegistry(), { auditReads: true }),
    }),
  });

  it('are brought into their trees by migrate, while writers go on, and verify', async () => {
    const db = await databaseBeforeTrees();
    const tenants = [`old-${randomUUID()}`, `old-${randomUUID()}`];
    for (const tenant of tenants)
      for (let round = 0; round < 4; round++) await appendBeforeTrees(db, tenant, 3000);
    await db.migrator.up();
    const { migrations, integrity } = servicesOf(db);
    // Writers of the same tenants while the leaves are hashed: they never wait for it.
    let writing = true;
    const writer = (async () => {
      let written = 0;
      while (writing || written < 20) {
        await db.repository.append(tenants[written % 2] as string, [
          newEvent(tenants[written % 2] as string),
        ]);
        written++;
      }
      return written;
    })();
    const report = await migrations.up();
    writing = false;
    const written = await writer;
    expect(report.trees).toMatchObject({ events: 24_000, tenants: 2, left: [] });
    // Every event has its leaf hash: those stored before by migrate, the writers' by their append.
    const { rows } = await sql<{ count: string }>`
      select count(*) from activity_events where leaf_hash is null`.execute(db.db);
    expect(Number(rows[0]?.count)).toBe(0);
    expect((await migrations.up()).trees.events).toBe(0);
    await integrity.checkpoint();
    const verified = await integrity.verify([signer.verifier]);
    expect(verified.ok).toBe(true);
    // With each of the two tenants' checkpoint event.
    expect(verified.tenants.reduce((sum, tenant) => sum + tenant.verified, 0)).toBe(24_000 + written + 2);
  });

  it('an event an append stored with no leaf hash as the migration ran is noted by checkpoint, and migrate brings it in', async () => {
    const db = await databaseBeforeTrees();
    await db.migrator.up();
    const { migrations, integrity } = servicesOf(db);
    const tenant = `late-${randomUUID()}`;
    await db.repository.appendGenerated([newEvent(tenant), newEvent(tenant)]);
    // As the append of migration 0002, begun before 0004 and ended after it, stores it.
    await sql`update activity_events set leaf_hash = null where tenant_id = ${tenant} and seq = 2`.execute(
      db.db,
    );
    await expect(integrity.checkpoint()).rejects.toThrow(/event 2 has no leaf hash.*activity migrate/);
    expect((await migrations.up()).trees).toMatchObject({ events: 1, tenants: 1, left: [] });
    await expect(integrity.checkpoint()).resolves.toHaveLength(1);
    expect((await integrity.verify([signer.verifier])).ok).toBe(true);
  });

  it('leaves a tenant whose first events were deleted before the tree, and verify names the range', async () => {
    const db = await databaseBeforeTrees();
    const tenant = `gap-${randomUUID()}`;
    await appendBeforeTrees(db, tenant, 10);
    await sql`delete from activity_events where tenant_id = ${tenant} and seq <= 3`.execute(db.db);
    const { migrations, integrity } = servicesOf(db);
    const report = await migrations.up();
    expect(report.trees.left).toEqual([
      { tenantId: tenant, reason: expect.stringContaining('event 1 is not stored') },
    ]);
    const verified = await integrity.verify([signer.verifier], { tenantId: tenant });
    expect(verified.tenants[0]?.problems.map(({ seq, kind }) => ({ seq, kind }))).toEqual([
      { seq: 1, kind: 'missing' },
    ]);
    await expect(integrity.checkpoint()).rejects.toThrow(/event 1 is missing/);
  });
});
