import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { checkpointSigner } from '../../src/integrity/checkpoint-signer.js';
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
    }),
  });

  it('are brought into their trees by migrate, while writers go on, and verify', async () => {
    const db = await databaseBeforeTrees();
    const tenants = [`old-${randomUUID()}`, `old-${randomUUID()}`];
    for (const tenant of tenants)
      for (let round = 0; round < 4; round++) await appendBeforeTrees(db, tenant, 3000);
    const { migrations, integrity } = servicesOf(db);
    // Writers of the same tenants while the trees are built: they never wait for a whole tenant.
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
    expect(report.trees.events).toBeGreaterThanOrEqual(24_000);
    expect(report.trees.left).toEqual([]);
    // What was written while the trees caught up is brought in by the next run, if any is left.
    await migrations.up();
    for (const tenant of tenants) {
      const head = await db.integrity.head(tenant);
      expect(head?.treeSize).toBe(head?.lastSeq);
    }
    expect((await db.integrity.head(tenants[0] as string))?.lastSeq).toBeGreaterThan(12_000);
    await integrity.checkpoint();
    const verified = await integrity.verify([signer.verifier]);
    expect(verified.ok).toBe(true);
    expect(verified.tenants.reduce((sum, tenant) => sum + tenant.verified, 0)).toBe(24_000 + written);
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
    expect(verified.tenants[0]?.problems.map((problem) => problem.kind)).toEqual(['missing']);
    expect(verified.tenants[0]?.unverified).toEqual([
      { from_seq: 4, to_seq: 10, reason: 'stored before the tree existed and not yet brought into it' },
    ]);
  });
});
