import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseMigrationFile, SqlMigrator } from '../../src/store/migrator.js';
import { type Database, openDatabase } from '../../src/store/open-database.js';
import { createTestDatabase } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

async function tableNames(database: Database): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = 'public' and table_name like 'activity_%' and table_name not like 'activity_migrations%'
    order by 1`.execute(database.db);
  return rows.map((row) => row.name);
}

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
    expect(await tableNames(database)).toEqual(['activity_events', 'activity_tenants']);
    expect((await database.migrator.up()).names).toEqual([]);
    const status = await database.migrator.status();
    expect(status.every((migration) => migration.applied && migration.applied_at !== null)).toBe(true);
  });

  it('down then up round-trips cleanly, keeping data written after', async () => {
    const applied = (await database.migrator.up()).names;
    const rolledBack: string[] = [];
    for (let i = 0; i < applied.length; i++) rolledBack.push(...(await database.migrator.down()).names);
    expect(rolledBack).toEqual([...applied].reverse());
    expect(await tableNames(database)).toEqual([]);
    expect((await database.migrator.down()).names).toEqual([]);
    expect((await database.migrator.up()).names).toEqual(applied);
    const [event] = await database.repository.append('acme', [newEvent('acme')], new Date());
    expect(event?.event.seq).toBe(1);
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
      expect(await tableNames(database)).toEqual(['activity_events', 'activity_tenants']);
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
