import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { inject } from 'vitest';
import { type Database, openDatabase } from '../../src/store/open-database.js';
import { templateDatabase, withDatabase } from './global-setup.js';

/** A fresh database for one test file: a clone of the migrated template, or an empty one. */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<{
  url: string;
  drop(): Promise<void>;
}> {
  const adminUrl = inject('postgresAdminUrl');
  const name = `activity_test_${randomUUID().replaceAll('-', '')}`;
  await adminQuery(
    adminUrl,
    options.migrated === false
      ? `create database ${name}`
      : `create database ${name} template ${templateDatabase}`,
  );
  return {
    url: withDatabase(adminUrl, name),
    drop: () => adminQuery(adminUrl, `drop database if exists ${name} with (force)`),
  };
}

async function adminQuery(url: string, text: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

export type StoreKind = 'postgres' | 'pglite';
export const storeKinds: readonly StoreKind[] = ['postgres', 'pglite'];

/** Opens a migrated database of the given kind; PGlite runs in memory. */
export async function openTestStore(
  kind: StoreKind,
): Promise<{ database: Database; dispose(): Promise<void> }> {
  if (kind === 'pglite') {
    const database = await openDatabase({ kind: 'pglite', dataDir: 'memory://' });
    return { database, dispose: () => database.close() };
  }
  const created = await createTestDatabase();
  const database = await openDatabase({ kind: 'postgres', url: created.url });
  return {
    database,
    async dispose() {
      await database.close();
      await created.drop();
    },
  };
}
