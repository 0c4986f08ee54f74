import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Kysely, type Migration, type MigrationResultSet, Migrator, sql } from 'kysely';
import { ActivityError } from '../domain/errors.js';
import type {
  MigrationReport,
  MigrationRunner,
  MigrationStatus,
  RollbackStep,
} from '../domain/migrations.js';
import { guarded, toStoreError } from './store-errors.js';

/** migrations/ at the package root, beside src/ and dist/. */
export const migrationsDirectory = fileURLToPath(new URL('../../migrations/', import.meta.url));

const upMarker = /^-- migrate:up\s*$/m;
const downMarker = /^-- migrate:down\s*$/m;

/** Splits a migration file into its up and down SQL; both parts are required. */
export function parseMigrationFile(name: string, text: string): { up: string; down: string } {
  const up = upMarker.exec(text);
  const down = downMarker.exec(text);
  if (!up || !down || down.index < up.index) {
    throw new ActivityError(
      'MIGRATION_FAILED',
      `${name}: needs a "-- migrate:up" part, then a "-- migrate:down" part`,
    );
  }
  return {
    up: text.slice(up.index + up[0].length, down.index),
    down: text.slice(down.index + down[0].length),
  };
}

/** The migrations' names, in order: their files' names without `.sql`. */
async function migrationNames(directory: string): Promise<string[]> {
  return (await readdir(directory))
    .filter((file) => file.endsWith('.sql'))
    .sort()
    .map((file) => file.slice(0, -'.sql'.length));
}

/** Each migration's up and down SQL, by name. */
async function readMigrationFiles(directory: string): Promise<Map<string, { up: string; down: string }>> {
  const migrations = new Map<string, { up: string; down: string }>();
  for (const name of await migrationNames(directory)) {
    migrations.set(name, parseMigrationFile(name, await readFile(`${directory}${name}.sql`, 'utf8')));
  }
  return migrations;
}

async function readMigrations(directory: string): Promise<Record<string, Migration>> {
  const migrations: Record<string, Migration> = {};
  for (const [name, { up, down }] of await readMigrationFiles(directory)) {
    migrations[name] = {
      up: async (db) => void (await sql.raw(up).execute(db)),
      down: async (db) => void (await sql.raw(down).execute(db)),
    };
  }
  return migrations;
}

/** The tables a down step drops and the columns, as its SQL says (comments left out). */
function dropsOf(downSql: string): { tables: string[]; columns: string[] } {
  const code = downSql.replace(/--.*$/gm, '');
  const tables = [...code.matchAll(/\bDROP TABLE (?:IF EXISTS )?(\w+)/gi)].map((match) => match[1] as string);
  const columns = [
    ...code.matchAll(/\bALTER TABLE (\w+)((?:\s*,?\s*DROP COLUMN (?:IF EXISTS )?\w+)+)/gi),
  ].flatMap((match) =>
    [...(match[2] as string).matchAll(/DROP COLUMN (?:IF EXISTS )?(\w+)/gi)].map(
      (column) => `${match[1]}.${column[1]}`,
    ),
  );
  return { tables, columns };
}

/**
 * Plain SQL migrations, applied in order inside one transaction under Kysely's
 * migration lock (an advisory lock on PostgreSQL), so two runs at once are safe and a
 * second run is a no-op.
 */
export class SqlMigrator implements MigrationRunner {
  readonly #migrator: Migrator;
  readonly #db: Kysely<unknown>;
  readonly #where: string;
  readonly #directory: string;

  constructor(db: Kysely<unknown>, where: string, directory = migrationsDirectory) {
    this.#db = db;
    this.#where = where;
    this.#directory = directory;
    this.#migrator = new Migrator({
      db,
      provider: { getMigrations: () => readMigrations(directory) },
      migrationTableName: 'activity_migrations',
      migrationLockTableName: 'activity_migrations_lock',
    });
  }

  async status(): Promise<MigrationStatus[]> {
    const migrations = await guarded(this.#where, () => this.#migrator.getMigrations());
    return migrations.map((migration) => ({
      name: migration.name,
      applied: migration.executedAt !== undefined,
      applied_at: migration.executedAt?.toISOString() ?? null,
    }));
  }

  /**
   * Whether every migration, and no other, is applied: one read, where Kysely's own
   * check (its tables, its lock) costs the embedded database about 0.5 s on each open.
   */
  async isCurrent(): Promise<boolean> {
    const names = await migrationNames(this.#directory);
    try {
      const { rows } = await sql<{ name: string }>`select name from activity_migrations`.execute(this.#db);
      const applied = new Set(rows.map((row) => row.name));
      return applied.size === names.length && names.every((name) => applied.has(name));
    } catch {
      // No migrations table: nothing is applied yet.
      return false;
    }
  }

  /** Applies every pending migration, or those up to and including `to`. */
  async up(to?: string): Promise<MigrationReport> {
    if (to === undefined) return this.#run('up', () => this.#migrator.migrateToLatest());
    const target = await this.#find(to);
    // Never roll back from `up`: a target already applied means nothing to do.
    if (target.applied) return { direction: 'up', names: [] };
    return this.#run('up', () => this.#migrator.migrateTo(to));
  }

  /** Rolls back the last applied migration, or every one after `to` (keeping `to`). */
  async down(to?: string): Promise<MigrationReport> {
    if (to === undefined) return this.#run('down', () => this.#migrator.migrateDown());
    await this.#assertApplied(to);
    return this.#run('down', () => this.#migrator.migrateTo(to));
  }

  async rollbackPlan(to?: string): Promise<RollbackStep[]> {
    if (to !== undefined) await this.#assertApplied(to);
    const applied = (await this.status()).filter((migration) => migration.applied).map((m) => m.name);
    const rolledBack = (
      to === undefined ? applied.slice(-1) : applied.slice(applied.indexOf(to) + 1)
    ).reverse();
    const files = await readMigrationFiles(this.#directory);
    const steps: RollbackStep[] = [];
    for (const name of rolledBack) {
      const { tables, columns } = dropsOf(files.get(name)?.down ?? '');
      const counted: RollbackStep['tables'] = [];
      for (const table of tables) {
        // Tables a down step makes and drops itself, or that are gone already, hold nothing now.
        const rows = await guarded(this.#where, () => rowsOf(this.#db, table));
        if (rows !== undefined && rows > 0) counted.push({ table, rows });
      }
      steps.push({ name, tables: counted, columns });
    }
    return steps;
  }

  /** A rollback target must be applied: it is kept, the later ones rolled back. */
  async #assertApplied(to: string): Promise<void> {
    if (!(await this.#find(to)).applied) {
      throw new ActivityError('USAGE_INVALID', `migration ${to} is not applied; nothing to roll back to`);
    }
  }

  async #find(name: string): Promise<MigrationStatus> {
    const found = (await this.status()).find((migration) => migration.name === name);
    if (!found)
      throw new ActivityError(
        'USAGE_INVALID',
        `no migration named ${name} (see \`activity migrate status\`)`,
      );
    return found;
  }

  async #run(direction: 'up' | 'down', run: () => Promise<MigrationResultSet>): Promise<MigrationReport> {
    const { error, results = [] } = await guarded(this.#where, run);
    if (error) {
      const failed = results.find((result) => result.status === 'Error')?.migrationName;
      const storeError = toStoreError(error, this.#where);
      if (storeError.code !== 'INTERNAL') throw storeError;
      throw new ActivityError(
        'MIGRATION_FAILED',
        `migration ${failed ?? ''} failed and was rolled back: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    return {
      direction,
      names: results.filter((result) => result.status === 'Success').map((result) => result.migrationName),
    };
  }
}

/** The rows of `table`, or undefined when there is no such table. */
async function rowsOf(db: Kysely<unknown>, table: string): Promise<number | undefined> {
  const { rows } = await sql<{ exists: boolean }>`select to_regclass(${table}) is not null as exists`.execute(
    db,
  );
  if (!rows[0]?.exists) return undefined;
  const counted = await sql<{ count: string }>`select count(*) from ${sql.table(table)}`.execute(db);
  return Number(counted.rows[0]?.count ?? 0);
}
