import { type Kysely, sql } from 'kysely';
import type {
  ActivityRepository,
  AppendedEvent,
  AppendOptions,
  AppendRequest,
  EventFilter,
  ExportRequest,
  PageRequest,
} from '../../domain/activity-repository.js';
import type { ActivityEvent, NewActivityEvent } from '../../domain/event.js';
import type { StoreSchema } from '../schema.js';
import { kyselyRunner, type StatementRunner } from '../statement-runner.js';
import { guarded } from '../store-errors.js';
import { EventAppender } from './append.js';
import { type CopyOut, EventExporter } from './export.js';
import { EventPageReader } from './page.js';

/**
 * The repository on PostgreSQL and PGlite, the same SQL on both: appends (append.ts),
 * pages (page.ts) and exports (export.ts) over rows mapped in rows.ts.
 */
export class KyselyActivityRepository implements ActivityRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;
  /** Where pages are read (see open-database.ts); the same database by default. */
  readonly #pages: Kysely<StoreSchema>;
  readonly #appender: EventAppender;
  readonly #pageReader: EventPageReader;
  readonly #exporter: EventExporter;

  /**
   * `where` names the database in errors (never with its password). With
   * `notifyChannel`, each append also NOTIFYs "tenant T has events up to N" in the
   * same statement, delivered when it commits. `copyOut` streams an export where the
   * database can (PostgreSQL).
   */
  constructor(
    db: Kysely<StoreSchema>,
    where: string,
    options: {
      notifyChannel?: string | undefined;
      pages?: Kysely<StoreSchema>;
      copyOut?: CopyOut;
      /** Sends an append outside a transaction; through Kysely by default. */
      run?: StatementRunner;
      /** Sends a page where pages are read; through Kysely by default. */
      runPage?: StatementRunner;
    } = {},
  ) {
    this.#db = db;
    this.#where = where;
    this.#pages = options.pages ?? db;
    this.#appender = new EventAppender(db, where, {
      notifyChannel: options.notifyChannel,
      run: options.run ?? kyselyRunner(db as Kysely<unknown>),
    });
    this.#pageReader = new EventPageReader(
      this.#pages,
      where,
      options.runPage ?? kyselyRunner(this.#pages as Kysely<unknown>),
    );
    this.#exporter = new EventExporter(this.#pages, where, options.copyOut);
  }

  append(
    tenantId: string,
    events: readonly NewActivityEvent[],
    options?: AppendOptions,
  ): Promise<AppendedEvent[]> {
    return this.#appender.append(tenantId, events, options);
  }

  appendGenerated(
    events: readonly NewActivityEvent[],
    options?: Pick<AppendOptions, 'createdAt'>,
  ): Promise<AppendedEvent[]> {
    return this.#appender.appendGenerated(events, options);
  }

  appendUnlocked(events: readonly NewActivityEvent[]): Promise<Array<AppendedEvent | undefined>> {
    return this.#appender.appendUnlocked(events);
  }

  appendAll(requests: readonly AppendRequest[]): Promise<AppendedEvent[][]> {
    return this.#appender.appendAll(requests);
  }

  page(tenantId: string, filter: EventFilter, request: PageRequest): Promise<ActivityEvent[]> {
    return this.#pageReader.page(tenantId, filter, request);
  }

  exportJson(tenantId: string, filter: EventFilter, request: ExportRequest): AsyncGenerator<Uint8Array> {
    return this.#exporter.exportJson(tenantId, filter, request);
  }

  ping(): Promise<void> {
    // Both pools, and both tables that requests use, not waiting long for a lock: an
    // unmigrated database, a lock on the events (a migration, an operator) or a pool
    // stuck behind one must each make the server not ready.
    const probe = (db: Kysely<StoreSchema>) =>
      db.transaction().execute(async (transaction) => {
        await sql`set local lock_timeout = '1s'`.execute(transaction);
        await sql`select 1 from activity_tenants limit 1`.execute(transaction);
        await sql`select 1 from activity_events where tenant_id = '' limit 1`.execute(transaction);
      });
    return guarded(this.#where, async () => {
      await Promise.all([probe(this.#db), ...(this.#pages === this.#db ? [] : [probe(this.#pages)])]);
    });
  }

  tenants(afterTenantId: string | undefined, limit: number): Promise<string[]> {
    return guarded(this.#where, async () => {
      let query = this.#db
        .selectFrom('activity_tenants')
        .select('tenant_id')
        .orderBy('tenant_id')
        .limit(limit);
      if (afterTenantId !== undefined) query = query.where('tenant_id', '>', afterTenantId);
      return (await query.execute()).map((row) => row.tenant_id);
    });
  }
}
