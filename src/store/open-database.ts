import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import type { PoolClient } from 'pg';
import { tcpKeepAlive } from '../config/connections.js';
import type { DatabaseTarget } from '../config/load-config.js';
import type { ActivityRepository } from '../domain/activity-repository.js';
import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository } from '../domain/integrity-repository.js';
import type { RetentionRepository } from '../domain/retention.js';
import type { SinkRepository } from '../domain/sink.js';
import { lockDataDirectory } from './data-dir-lock.js';
import type { CopyOut } from './events/export.js';
import { KyselyActivityRepository } from './events/repository.js';
import { KyselyIntegrityRepository } from './integrity/repository.js';
import { SqlMigrator } from './migrator.js';
import { createPgliteDialect } from './pglite-dialect.js';
import { createPreparingPool } from './preparing-pool.js';
import { KyselyRetentionRepository } from './retention/repository.js';
import type { StoreSchema } from './schema.js';
import { KyselySinkRepository } from './sinks/repository.js';
import type { StatementRunner } from './statement-runner.js';
import { toStoreError } from './store-errors.js';

/** See the pool's 'connect' listener: the error reaches the caller through its query, or the next one. */
function ignoreClientError(): void {}

/** PostgreSQL, or embedded PGlite in a directory (`memory://` keeps it in memory, for tests). */

/** An open database: Kysely, the repositories and the migrator over it. */
export interface Database {
  kind: DatabaseTarget['kind'];
  /** A name for messages, without credentials. */
  where: string;
  db: Kysely<StoreSchema>;
  /** Where pages are read: `db` itself, except on PostgreSQL (see pageSessionOptions). */
  pages: Kysely<StoreSchema>;
  repository: ActivityRepository;
  retention: RetentionRepository;
  integrity: IntegrityRepository;
  sinks: SinkRepository;
  migrator: SqlMigrator;
  close(): Promise<void>;
}

/**
 * Pages are read on connections of their own, set up for them:
 * - Every filter has an index that ends in `seq`, so a page is best read as one
 *   ordered index scan per partition, merged, stopping at the limit. A plan made for
 *   no value in particular expects few rows of any value, and so reads them all and
 *   sorts: for an object with 333,000 events that took 220 ms instead of 0.6 ms.
 *   Sorting is therefore a last resort.
 * - With that, the plan made once for a prepared page is the one wanted for any
 *   value, so it is always used: planning a page again on every request cost 0.4 ms
 *   on the partitioned table, more than reading it.
 * Only pages: the first setting made the idempotent append (activity_append) a
 * hundred times slower.
 */
const pageSessionOptions = '-c enable_sort=off -c plan_cache_mode=force_generic_plan';

/** How long to wait for PostgreSQL before reporting it unavailable. */
const connectTimeoutMs = 5000;

/**
 * Connections each pool keeps however long it idles (pg's pool closes the others
 * after 10 s). A new connection cost 16–32 ms on the bench's machine, with a backend
 * to start and each statement to prepare again: more than the request waiting for
 * it, and a quiet `serve` would pay it on every request.
 */
const warmConnections = 2;

export interface OpenDatabaseOptions {
  /** Migrate the embedded database to the latest schema on open (default true; `migrate` turns it off). */
  autoMigrate?: boolean;
  /**
   * Embedded: open only a database that exists (CONFIG_INVALID otherwise), for the
   * commands that read one: in the wrong directory they would make an empty one.
   */
  existing?: boolean;
  /** PostgreSQL: NOTIFY this channel from each append (the LISTEN/NOTIFY transport). */
  notifyChannel?: string | undefined;
  /**
   * PostgreSQL: how long each statement of these sessions may wait for a lock and run,
   * in ms (0 or absent: no limit). A stuck lock then fails the request (DB_TIMEOUT)
   * instead of holding it, and its connection, for as long as the lock is held.
   */
  timeouts?: { lockMs: number; statementMs: number } | undefined;
}

export async function openDatabase(
  target: DatabaseTarget,
  options: OpenDatabaseOptions = {},
): Promise<Database> {
  return target.kind === 'postgres'
    ? openPostgres(target.url, options)
    : openPglite(target.dataDir, options.autoMigrate ?? true, options.existing ?? false);
}

async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<Database> {
  const { notifyChannel, timeouts } = options;
  const { default: pg } = await import('pg');
  const where = describePostgresUrl(url);
  const connect = (sessionOptions?: string) => {
    const pool = new pg.Pool({
      connectionString: url,
      max: 10,
      connectionTimeoutMillis: connectTimeoutMs,
      idleTimeoutMillis: 10_000,
      min: warmConnections,
      ...tcpKeepAlive,
      application_name: 'activity',
      // Sent at connection: the sessions' defaults, which RESET returns to.
      ...(timeouts?.lockMs ? { lock_timeout: timeouts.lockMs } : {}),
      ...(timeouts?.statementMs ? { statement_timeout: timeouts.statementMs } : {}),
      ...(sessionOptions ? { options: sessionOptions } : {}),
    });
    // An idle client that loses its server must not crash the process; the next query reports it.
    pool.on('error', () => {});
    // pg's pool listens for a client's errors only while it idles. A client that loses
    // its server while checked out (a terminated backend, a restart), or in the instant
    // between its connection and its first use, would emit an unhandled 'error' and end
    // the process. So every client listens from its creation: the query in flight fails
    // with the same error, and the pool drops the client when it is released.
    // The pool's end() settles once it has asked its clients to end, not once they have:
    // `ended` waits for their sockets, so that a closed database holds no connection.
    const open = new Set<PoolClient>();
    pool.on('connect', (client) => {
      client.on('error', ignoreClientError);
      open.add(client);
      client.once('end', () => open.delete(client));
    });
    const ended = () =>
      Promise.all([...open].map((client) => new Promise((resolve) => client.once('end', resolve))));
    const preparing = createPreparingPool(pool);
    return {
      pool,
      ended,
      run: preparing.run,
      db: new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool: preparing }) }),
    };
  };
  const writes = connect();
  const pages = connect(pageSessionOptions);
  return assemble('postgres', where, writes.db, {
    release: async () => {
      await pages.db.destroy();
      // Kysely ends a pool only once it has used it: each `run` may have used its
      // pool alone (records, pages), an export the second (COPY).
      for (const each of [writes, pages]) {
        if (!each.pool.ended) await each.pool.end();
        await each.ended();
      }
    },
    notifyChannel,
    run: writes.run,
    runPage: pages.run,
    pages: pages.db,
    // Loaded by the first export: every other command would pay for it at start-up.
    copyOut: async function* (statement) {
      const { copyOut } = await import('./copy-out.js');
      yield* copyOut(pages.pool, statement);
    },
  });
}

async function openPglite(dataDir: string, autoMigrate: boolean, existing: boolean): Promise<Database> {
  const inMemory = dataDir.startsWith('memory://');
  if (existing && !inMemory && !existsSync(join(dataDir, 'pgdata'))) {
    throw new ActivityError(
      'CONFIG_INVALID',
      `there is no embedded database in ${dataDir}, and this command only reads one: run it where the data directory is, name it with --data-dir or ACTIVITY_DATA_DIR, or use ACTIVITY_DATABASE_URL`,
    );
  }
  if (!inMemory) await mkdir(dataDir, { recursive: true });
  const unlock = inMemory ? async () => {} : await lockDataDirectory(dataDir);
  const where = inMemory ? 'the in-memory database' : `the embedded database in ${dataDir}`;
  try {
    const { PGlite } = await import('@electric-sql/pglite');
    const pglite = await PGlite.create(inMemory ? dataDir : join(dataDir, 'pgdata'));
    const db = new Kysely<StoreSchema>({ dialect: createPgliteDialect(pglite) });
    const database = assemble('pglite', where, db, { release: unlock });
    // Zero set-up: the embedded database migrates itself to the latest schema, with
    // the coming months' partitions where a command may write.
    if (autoMigrate && !(await database.migrator.isCurrent())) {
      const { names } = await database.migrator.up();
      await database.retention.ensurePartitions(new Date());
      if (names.length > 0) await database.integrity.bringEventsIntoTrees();
    } else if (autoMigrate && !existing) {
      await database.retention.ensurePartitions(new Date());
    }
    return database;
  } catch (error) {
    await unlock();
    // toStoreError passes an ActivityError (a migration's, a lock's) on as it is.
    throw toStoreError(error, where);
  }
}

function assemble(
  kind: Database['kind'],
  where: string,
  db: Kysely<StoreSchema>,
  options: {
    /** Called once `db` is destroyed. */
    release: () => Promise<void>;
    notifyChannel?: string | undefined;
    /** Sends an append outside a transaction, when quicker than through `db` (see createPreparingPool). */
    run?: StatementRunner;
    /** Sends a page, when quicker than through `pages`. */
    runPage?: StatementRunner;
    /** Where pages are read, when not `db`. */
    pages?: Kysely<StoreSchema>;
    /** Runs a `COPY … TO STDOUT` where pages are read, when the database can stream one. */
    copyOut?: CopyOut;
  },
): Database {
  const { release, notifyChannel, run, runPage, pages = db, copyOut } = options;
  let closed: Promise<void> | undefined;
  return {
    kind,
    where,
    db,
    pages,
    repository: new KyselyActivityRepository(db, where, {
      notifyChannel,
      pages,
      ...(run ? { run } : {}),
      ...(runPage ? { runPage } : {}),
      ...(copyOut ? { copyOut } : {}),
    }),
    retention: new KyselyRetentionRepository(db, where),
    integrity: new KyselyIntegrityRepository(db, where),
    // PGlite's process holds its whole data directory: its one deliverer needs no lock.
    sinks: new KyselySinkRepository(db, where, { lockSinks: kind === 'postgres' }),
    migrator: new SqlMigrator(db as Kysely<unknown>, where),
    close() {
      closed ??= db.destroy().finally(release);
      return closed;
    },
  };
}

/** `PostgreSQL at host:port/db`, never the password. */
export function describePostgresUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `PostgreSQL at ${parsed.hostname || 'localhost'}:${parsed.port || '5432'}${parsed.pathname}`;
  } catch {
    return 'PostgreSQL';
  }
}
