import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseMigrationFile, SqlMigrator } from '../../src/store/migrator.js';
import { type Database, openDatabase } from '../../src/store/open-database.js';
import { createTestDatabase, storeKinds } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

async function tableNames(database: Database): Promise<string[]> {
  // partitions are part of their table
  const { rows } = await sql<{ name: string }>`
    select relname as name from pg_class
    where relkind in ('r', 'p') and not relispartition and relnamespace = 'public'::regnamespace
      and relname like 'activity_%' and relname not like 'activity_migrations%'
    order by 1`.execute(database.db);
  return rows.map((row) => row.name);
}

const latestTables = [
  'activity_checkpoints',
  'activity_events',
  'activity_legal_holds',
  'activity_purge_totals',
  'activity_purges',
  'activity_retention_policies',
  'activity_sink_cursors',
  'activity_sinks',
  'activity_tenants',
  'activity_tree_archive',
  'activity_tree_backfill',
  'activity_tree_blocks',
  'activity_tree_seals',
];

describe('migrations on an empty postgres database', () => {
  let url: string;
  let drop: () => Promise<void>;
  let database: Database;

  beforeEach(async () => {
    ({ url, drop } = await createTestDatabase({ migrated: false }));
    database = await openDatabase({ kind: 'postgres', url });
  });
  afterEach(async () => {
    await database?.close();
    await drop?.();
  });

  it('up applies every migration once; a second run applies none', async () => {
    const first = await database.migrator.up();
    expect(first.names.length).toBeGreaterThan(0);
    expect(await tableNames(database)).toEqual(latestTables);
    expect((await database.migrator.up()).names).toEqual([]);
    const status = await database.migrator.status();
    expect(status.every((migration) => migration.applied && migration.applied_at !== null)).toBe(true);
  });

  it('isCurrent holds only when every migration, and no other, is applied', async () => {
    expect(await database.migrator.isCurrent()).toBe(false);
    await database.migrator.up();
    expect(await database.migrator.isCurrent()).toBe(true);
    await database.migrator.down();
    expect(await database.migrator.isCurrent()).toBe(false);
    await database.migrator.up();
    // A database migrated by a newer version of the tool is not this version's current.
    await sql`insert into activity_migrations (name, timestamp) values ('9999_from_the_future', now()::text)`.execute(
      database.db,
    );
    expect(await database.migrator.isCurrent()).toBe(false);
  });

  it('down then up round-trips cleanly, keeping data written after', async () => {
    const applied = (await database.migrator.up()).names;
    const rolledBack: string[] = [];
    for (let i = 0; i < applied.length; i++) rolledBack.push(...(await database.migrator.down()).names);
    expect(rolledBack).toEqual([...applied].reverse());
    expect(await tableNames(database)).toEqual([]);
    expect((await database.migrator.down()).names).toEqual([]);
    expect((await database.migrator.up()).names).toEqual(applied);
    const [event] = await database.repository.append('acme', [newEvent('acme')]);
    expect(event?.event.seq).toBe(1);
  });

  it('a rollback never drops legal holds: the plan names them, and the down step itself refuses', async () => {
    await database.migrator.up();
    await database.repository.append('held', [newEvent('held')]);
    await database.retention.placeHold('held', 'case 7');
    const names = (await database.migrator.status()).map((migration) => migration.name);
    const beforeHolds = names[1] as string;
    const plan = await database.migrator.rollbackPlan(beforeHolds);
    expect(plan.map((step) => step.name)).toEqual(names.slice(2).reverse());
    expect(plan.find((step) => step.name === names[2])?.tables).toEqual([
      { table: 'activity_legal_holds', rows: 1 },
    ]);
    // Past the service's check (a hold placed after it), the migration refuses under its lock.
    await expect(database.migrator.down(beforeHolds)).rejects.toMatchObject({
      code: 'MIGRATION_FAILED',
      message: expect.stringContaining('1 tenant(s) are on legal hold'),
    });
    expect(await tableNames(database)).toEqual(latestTables);
    expect(await database.retention.holds()).toMatchObject([{ tenant_id: 'held', reason: 'case 7' }]);
  });

  it('up --to stops at a name, down --to keeps it, and up --to an applied name rolls nothing back', async () => {
    const names = (await database.migrator.status()).map((migration) => migration.name);
    const first = names[0] as string;
    expect((await database.migrator.up(first)).names).toEqual([first]);
    await database.migrator.up();
    expect((await database.migrator.up(first)).names).toEqual([]);
    expect((await database.migrator.down(first)).names).toEqual(names.slice(1).reverse());
    await expect(database.migrator.up('0999_nope')).rejects.toMatchObject({ code: 'USAGE_INVALID' });
  });

  it('two migrate runs at once both succeed and apply the schema once', async () => {
    const other = await openDatabase({ kind: 'postgres', url });
    try {
      const [a, b] = await Promise.all([database.migrator.up(), other.migrator.up()]);
      expect([...a.names, ...b.names].sort()).toEqual(
        (await database.migrator.status()).map((m) => m.name).sort(),
      );
      expect(await tableNames(database)).toEqual(latestTables);
    } finally {
      await other.close();
    }
  });

  it('a query before migrating says to run activity migrate', async () => {
    await expect(database.repository.page('acme', {}, { limit: 1 })).rejects.toMatchObject({
      code: 'DB_NOT_MIGRATED',
      message: expect.stringContaining('activity migrate'),
    });
  });
});

describe('a failing migration', () => {
  let directory: string;
  let url: string;
  let drop: () => Promise<void>;

  beforeEach(async () => {
    directory = `${await mkdtemp(join(tmpdir(), 'activity-migrations-'))}/`;
    ({ url, drop } = await createTestDatabase({ migrated: false }));
  });
  afterAll(async () => {
    await drop?.();
    await rm(directory, { recursive: true, force: true });
  });

  it('is rolled back whole and reported as MIGRATION_FAILED', async () => {
    await writeFile(
      `${directory}0001_ok.sql`,
      '-- migrate:up\ncreate table ok (id int);\n-- migrate:down\ndrop table ok;\n',
    );
    await writeFile(
      `${directory}0002_bad.sql`,
      '-- migrate:up\ncreate table nope (id nosuchtype);\n-- migrate:down\n',
    );
    const database = await openDatabase({ kind: 'postgres', url });
    try {
      const migrator = new SqlMigrator(database.db as never, 'test', directory);
      await expect(migrator.up()).rejects.toMatchObject({ code: 'MIGRATION_FAILED' });
      expect((await migrator.status()).map((m) => m.applied)).toEqual([false, false]);
    } finally {
      await database.close();
    }
  });

  it('a file without both parts is refused', () => {
    expect(() => parseMigrationFile('0003_x', 'create table x (id int);')).toThrow(/migrate:up/);
  });
});

describe.each(storeKinds)('the partition migration on %s', (kind) => {
  let database: Database;
  let drop: (() => Promise<void>) | undefined;

  beforeEach(async () => {
    if (kind === 'pglite') {
      database = await openDatabase({ kind: 'pglite', dataDir: 'memory://' }, { autoMigrate: false });
    } else {
      const created = await createTestDatabase({ migrated: false });
      drop = created.drop;
      database = await openDatabase({ kind: 'postgres', url: created.url });
    }
  });
  afterEach(async () => {
    await database?.close();
    await drop?.();
  });

  const allRows = async () =>
    (
      await sql<Record<string, unknown>>`
        select tenant_id, seq, id::text, action, namespace, actor_type, actor_id, object_type, object_id,
          status, source, request_id, ip_hash, user_agent, metadata::text, created_at
        from activity_events order by tenant_id, seq`.execute(database.db)
    ).rows;
  const relkind = async () =>
    (
      await sql<{ relkind: string }>`select relkind from pg_class where relname = 'activity_events'`.execute(
        database.db,
      )
    ).rows[0]?.relkind;

  it('up keeps every row, each in its month; down keeps every row, including those written in between', async () => {
    const first = '0001_create_activity_events';
    await database.migrator.up(first);
    // Events of two tenants over three months, as version 0001 stored them.
    await sql`
      insert into activity_tenants values ('acme', 3, '2026-03-02T10:00:00Z'), ('globex', 1, '2026-01-31T23:59:59.999Z');
      insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, status, request_id, metadata, created_at) values
        ('acme', 1, '0190c6a0-0000-7000-8000-000000000001', 'auth.login.success', 'user', 'u1', 'success', 'r1', '{"a":1}', '2026-01-15T00:00:00Z'),
        ('acme', 2, '0190c6a0-0000-7000-8000-000000000002', 'auth.logout', 'user', 'u1', 'success', null, '{}', '2026-02-01T00:00:00Z'),
        ('acme', 3, '0190c6a0-0000-7000-8000-000000000003', 'billing.payment.failed', 'system', null, 'failure', null, '{"b":[1,2]}', '2026-03-02T10:00:00Z'),
        ('globex', 1, '0190c6a0-0000-7000-8000-000000000004', 'auth.login.success', 'api_key', 'k', 'success', null, '{}', '2026-01-31T23:59:59.999Z');
    `.execute(database.db);
    const before = await allRows();
    expect(before).toHaveLength(4);

    await database.migrator.up();
    expect(await relkind()).toBe('p');
    expect(await allRows()).toEqual(before);
    const { rows: placed } = await sql<{ seq: number; partition: string }>`
      select seq, tableoid::regclass::text as partition from activity_events where tenant_id = 'acme' order by seq`.execute(
      database.db,
    );
    expect(placed.map((row) => row.partition)).toEqual([
      'activity_events_y2026m01',
      'activity_events_y2026m02',
      'activity_events_y2026m03',
    ]);
    // Appends go on from the head row, and an id stored before the migration is still a duplicate.
    const appended = await database.repository.append('acme', [
      newEvent('acme', { id: '0190c6a0-0000-7000-8000-000000000002' }),
      newEvent('acme'),
    ]);
    expect(appended.map((entry) => [entry.event.seq, entry.duplicate])).toEqual([
      [2, true],
      [4, false],
    ]);
    const withNew = await allRows();

    await database.migrator.down(first);
    expect(await relkind()).toBe('r');
    expect(await allRows()).toEqual(withNew);
    const { rows: constraints } = await sql<{ name: string }>`
      select conname as name from pg_constraint where conrelid = 'activity_events'::regclass and contype in ('p', 'u')
      order by 1`.execute(database.db);
    expect(constraints.map((row) => row.name)).toEqual(['activity_events_id_key', 'activity_events_pkey']);
  });
});

describe('the embedded database on open', { timeout: 60_000 }, () => {
  it('applies what a rollback left unapplied, and finds nothing to do once current', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'activity-reopen-'));
    try {
      let database = await openDatabase({ kind: 'pglite', dataDir });
      expect(await database.migrator.isCurrent()).toBe(true);
      const [rolledBack] = (await database.migrator.down()).names;
      await database.close();
      database = await openDatabase({ kind: 'pglite', dataDir });
      const status = await database.migrator.status();
      expect(status.find((migration) => migration.name === rolledBack)?.applied).toBe(true);
      expect(status.every((migration) => migration.applied)).toBe(true);
      await database.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
