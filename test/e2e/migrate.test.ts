import { readdir } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { cliFor, expectExit, expectJsonError, parseJson, repoRoot, testSecret } from '../helpers/run-cli.js';

/** What migrate reports of the trees when no event predates them. */
const noTrees = { events: 0, tenants: 0, left: [] };

interface MigrationStatus {
  name: string;
  applied: boolean;
  applied_at: string | null;
}

/** The migration names on disk, in order: what `migrate` should apply. */
async function migrationNames(): Promise<string[]> {
  const files = await readdir(`${repoRoot}/migrations`);
  return files
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => file.replace(/\.sql$/, ''));
}

async function appliedRows(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      'select name from activity_migrations order by name',
    );
    return rows.map((row) => row.name);
  } finally {
    await client.end();
  }
}

describe('migrate on an empty PostgreSQL database', () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;
  let expected: string[];

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    expected = await migrationNames();
    expect(expected.length).toBeGreaterThan(0);
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('status lists every migration as pending before anything is applied', async () => {
    const run = await cli(['migrate', 'status', '--format', 'json']);
    expectExit(run, 0);
    const { migrations } = parseJson<{ migrations: MigrationStatus[] }>(run.stdout);
    expect(migrations).toEqual(expected.map((name) => ({ name, applied: false, applied_at: null })));
  });

  it('applies every migration in order, then applies none on a second run', async () => {
    const first = await cli(['migrate', '--format', 'json']);
    expectExit(first, 0);
    // The migrations' own partitions (the current month and the three ahead) count as created.
    expect(parseJson(first.stdout)).toEqual({ applied: expected, partitions_created: 4, trees: noTrees });

    const second = await cli(['migrate', 'up', '--format', 'json']);
    expectExit(second, 0);
    expect(parseJson(second.stdout)).toEqual({ applied: [], partitions_created: 0, trees: noTrees });
  });

  it("makes the coming months' partitions when one is missing", async () => {
    const ahead = new Date();
    ahead.setUTCDate(1);
    ahead.setUTCMonth(ahead.getUTCMonth() + 3);
    const name = `activity_events_y${ahead.getUTCFullYear()}m${String(ahead.getUTCMonth() + 1).padStart(2, '0')}`;
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(`drop table ${name}`);
      const run = await cli(['migrate', '--format', 'json']);
      expect(parseJson(run.stdout)).toEqual({ applied: [], partitions_created: 1, trees: noTrees });
      expect((await client.query('select to_regclass($1) as found', [name])).rows[0].found).toBe(name);
    } finally {
      await client.end();
    }
  });

  it('status then shows each migration applied with an RFC 3339 time', async () => {
    const run = await cli(['migrate', 'status', '--format', 'json']);
    expectExit(run, 0);
    const body = parseJson<{ migrations: MigrationStatus[] }>(run.stdout);
    expect(Object.keys(body)).toEqual(['migrations']);
    expect(body.migrations.map((m) => m.name)).toEqual(expected);
    for (const migration of body.migrations) {
      expect(Object.keys(migration).sort()).toEqual(['applied', 'applied_at', 'name']);
      expect(migration.applied).toBe(true);
      expect(migration.applied_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/);
      expect(Number.isNaN(Date.parse(migration.applied_at as string))).toBe(false);
    }
  });

  it('down refuses, even with --yes, to drop legal holds while a tenant is on hold', async () => {
    expectExit(await cli(['hold', 'add', '--tenant', 'held', '--reason', 'case 7']), 0);
    const holdsMigration = expected.find((name) => name.includes('legal_holds')) as string;
    const before = expected[expected.indexOf(holdsMigration) - 1] as string;
    const refused = expectJsonError(
      await cli(['migrate', 'down', '--to', before, '--yes', '--format', 'json']),
      2,
      'USAGE_INVALID',
    );
    expect(refused.message).toBe(
      '1 tenant(s) are on legal hold, and the rollback would drop their holds: lift each one first (activity hold remove)',
    );
    expect(await appliedRows(database.url)).toEqual(expected);
    expectExit(await cli(['hold', 'remove', '--tenant', 'held']), 0);
  });

  it('down lists what it would drop and refuses without --yes; then rolls back only the last migration, and up applies it again', async () => {
    const last = expected.at(-1) as string;
    expect(last).toBe('0006_sinks');
    const added = await cli([
      'sink',
      'add',
      '--tenant',
      'acme',
      '--url',
      'https://siem.example/hook',
      '--payload',
      'ndjson',
    ]);
    expectExit(added, 0);
    const refused = expectJsonError(await cli(['migrate', 'down', '--format', 'json']), 2, 'USAGE_INVALID');
    expect(refused.message).toBe(
      `migrate down destroys data: ${last} drops activity_sinks (1 row). ` +
        'Back up first, then confirm it (activity migrate down --yes)',
    );
    expect(await appliedRows(database.url)).toEqual(expected);
    const down = await cli(['migrate', 'down', '--force', '--format', 'json']);
    expectExit(down, 0);
    expect(parseJson(down.stdout)).toEqual({ rolled_back: [last] });

    const status = await cli(['migrate', 'status', '--format', 'json']);
    const { migrations } = parseJson<{ migrations: MigrationStatus[] }>(status.stdout);
    expect(migrations.map((m) => m.applied)).toEqual(expected.map((name) => name !== last));

    const up = await cli(['migrate', '--format', 'json']);
    expectExit(up, 0);
    expect(parseJson(up.stdout)).toEqual({ applied: [last], partitions_created: 0, trees: noTrees });
    expect(await appliedRows(database.url)).toEqual(expected);
  });
});

describe('two migrate processes at once', () => {
  let database: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('both exit 0 and the schema ends applied exactly once', async () => {
    const cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    const expected = await migrationNames();
    const runs = await Promise.all([
      cli(['migrate', '--format', 'json']),
      cli(['migrate', '--format', 'json']),
    ]);
    for (const run of runs) expectExit(run, 0);
    const applied = runs.flatMap((run) => parseJson<{ applied: string[] }>(run.stdout).applied);
    // Between them, each migration was applied by exactly one of the two.
    expect(applied.sort()).toEqual(expected);
    expect(await appliedRows(database.url)).toEqual(expected);

    const status = await cli(['migrate', 'status', '--format', 'json']);
    const { migrations } = parseJson<{ migrations: MigrationStatus[] }>(status.stdout);
    expect(migrations.every((m) => m.applied)).toBe(true);
  });
});
