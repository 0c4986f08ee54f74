import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../../src/store/open-database.js';
import { createTestDatabase } from '../helpers/databases.js';
import { postgresBin } from '../helpers/postgres-server.js';

/**
 * Committed, so that a schema change shows up in review as a diff of this file. It is
 * printed by the pg_dump of the test server's PostgreSQL (postgresBin; it was 15):
 * another major version may print the same schema differently.
 */
const snapshotFile = 'test/fixtures/schema.sql';

/**
 * `pg_dump --schema-only` of `url`, without what changes from one run, date or
 * server build to the next: the monthly partitions (named after the month the
 * migration ran in; they are copies of the default partition), owners, grants,
 * pg_dump's own comments and SET lines, and `\restrict` keys (random per dump in
 * newer minor releases).
 */
async function dumpSchema(url: string): Promise<string> {
  const { stdout } = await promisify(execFile)(
    join(postgresBin(), 'pg_dump'),
    [
      '--schema-only',
      '--no-owner',
      '--no-privileges',
      '--no-tablespaces',
      '--exclude-table=public.activity_events_y????m??',
      `--dbname=${url}`,
    ],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  return normaliseDump(stdout);
}

function normaliseDump(dump: string): string {
  const lines = dump
    .split('\n')
    .filter(
      (line) =>
        !/^--/.test(line) &&
        !/^SET /.test(line) &&
        !/^SELECT pg_catalog\.set_config\('search_path'/.test(line) &&
        !/^\\(un)?restrict /.test(line),
    );
  return `${lines
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}

describe('the schema snapshot', () => {
  let database: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('matches the schema that migrations build on an empty database', async () => {
    const opened = await openDatabase({ kind: 'postgres', url: database.url });
    try {
      await opened.migrator.up();
    } finally {
      await opened.close();
    }
    await expect(
      await dumpSchema(database.url),
      `the migrations (+) and ${snapshotFile} (-) disagree: if the migrations are right, ` +
        'regenerate it with `npm run schema:snapshot` and commit the diff',
    ).toMatchFileSnapshot(`../../${snapshotFile}`);
  });
});

describe('each down step', () => {
  let database: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('restores the schema its up step found', async () => {
    const opened = await openDatabase({ kind: 'postgres', url: database.url });
    try {
      // Rolls nothing back, but creates the migrator's own tables, as every run does.
      expect((await opened.migrator.down()).names).toEqual([]);
      const names = (await opened.migrator.status()).map((migration) => migration.name);
      for (const name of names) {
        const before = await dumpSchema(database.url);
        await opened.migrator.up(name);
        await opened.migrator.down();
        expect(await dumpSchema(database.url), `${name} up then down`).toBe(before);
        await opened.migrator.up(name);
      }
    } finally {
      await opened.close();
    }
  });
});
