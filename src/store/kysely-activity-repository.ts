import { CompiledQuery, type Kysely, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type {
  ActivityRepository,
  AppendedEvent,
  AppendOptions,
  AppendRequest,
  EventFilter,
  ExportRequest,
  PageRequest,
} from '../domain/activity-repository.js';
import {
  type ActivityEvent,
  type ActorType,
  type EventStatus,
  eventFields,
  type NewActivityEvent,
} from '../domain/event.js';
import { type CopyColumnKind, copyTextToJsonLines } from './copy-text-json.js';
import type { StoreSchema } from './schema.js';
import { toStoreError } from './store-errors.js';

/** The table's columns are named after the event's fields. */
const eventColumns = eventFields;

/**
 * What a page selects: the columns, with `created_at` already in the contract's text
 * (RFC 3339 UTC, milliseconds), so that no row costs a Date in Node.
 */
const pageColumns = [
  ...eventColumns.filter((column) => column !== 'created_at'),
  sql<string>`to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`.as('created_at'),
] as const;

type EventRow = Record<(typeof eventColumns)[number], unknown>;

/**
 * How each field of a page row goes into its JSON text (see eventJson): escaped by
 * to_json, or as it is where no character could need escaping.
 */
const jsonValueOf: Record<(typeof eventFields)[number], 'escaped' | 'quoted' | 'bare'> = {
  id: 'quoted', // a uuid
  tenant_id: 'escaped',
  seq: 'bare',
  action: 'escaped',
  actor_type: 'quoted', // one of four words: the schema checks it
  actor_id: 'escaped',
  object_type: 'escaped',
  object_id: 'escaped',
  status: 'quoted', // one of three words: the schema checks it
  source: 'escaped',
  request_id: 'escaped',
  ip_hash: 'escaped',
  user_agent: 'escaped',
  metadata: 'bare', // jsonb's own text
  created_at: 'quoted', // digits and separators (pageColumns)
};

/**
 * A page row as the contract's JSON text, written by the database: the keys, their
 * order and the values of `JSON.stringify(toActivityEvent(row))`, but metadata keeps
 * jsonb's spacing (`{"a": 1}`). One `concat` builds it in one pass. PGlite's export
 * reads pages of these; on PostgreSQL, copyTextToJsonLines writes the same bytes from
 * the rows of a COPY.
 */
const eventJson = (() => {
  const parts: string[] = [];
  let text = '{';
  for (const [index, field] of eventFields.entries()) {
    text += `${index > 0 ? ',' : ''}"${field}":`;
    const kind = jsonValueOf[field];
    if (kind === 'quoted') text += '"';
    parts.push(`'${text}'`, kind === 'escaped' ? `coalesce(to_json("${field}"), 'null')` : `"${field}"`);
    text = kind === 'quoted' ? '"' : '';
  }
  parts.push(`'${text}}'`);
  return sql<string>`concat(${sql.raw(parts.join(', '))})`;
})();

/** An event's fields as they come from a page's COPY, in order (see copyTextToJsonLines). */
const exportColumns = eventFields.map((key) => ({
  key,
  kind: key === 'seq' ? 'number' : key === 'metadata' ? 'json' : 'string',
})) satisfies Array<{ key: string; kind: CopyColumnKind }>;

/** Lines per page of an export where the database cannot COPY to a stream (PGlite). */
const exportPageSize = 1000;

/** The repository on PostgreSQL and PGlite: the same SQL on both. */
export class KyselyActivityRepository implements ActivityRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;

  readonly #notifyChannel: string | undefined;
  /** Where pages are read (see open-database.ts); the same database by default. */
  readonly #pages: Kysely<StoreSchema>;
  /** Compiled page statements by shape (see #pageStatement). */
  readonly #pageStatements = new Map<string, CompiledQuery>();
  /** Runs a `COPY … TO STDOUT` on the pages' connections (PostgreSQL only). */
  readonly #copyOut: ((statement: CompiledQuery) => AsyncIterable<Uint8Array>) | undefined;

  /**
   * `where` names the database in errors (never with its password). With
   * `notifyChannel`, each append also NOTIFYs "tenant T has events up to N" in the
   * same statement, delivered when it commits: LISTEN/NOTIFY costs no extra round trip.
   */
  constructor(
    db: Kysely<StoreSchema>,
    where: string,
    options: {
      notifyChannel?: string | undefined;
      pages?: Kysely<StoreSchema>;
      copyOut?: (statement: CompiledQuery) => AsyncIterable<Uint8Array>;
    } = {},
  ) {
    this.#db = db;
    this.#where = where;
    this.#notifyChannel = options.notifyChannel;
    this.#pages = options.pages ?? db;
    this.#copyOut = options.copyOut;
  }

  append(
    tenantId: string,
    events: readonly NewActivityEvent[],
    options: AppendOptions = {},
  ): Promise<AppendedEvent[]> {
    return this.#appendWith(events, this.#appendStatement({ tenantId, events, options }));
  }

  appendGenerated(
    events: readonly NewActivityEvent[],
    { createdAt }: Pick<AppendOptions, 'createdAt'> = {},
  ): Promise<AppendedEvent[]> {
    return this.#appendWith(events, this.#appendGeneratedStatement(events, createdAt));
  }

  async appendUnlocked(events: readonly NewActivityEvent[]): Promise<Array<AppendedEvent | undefined>> {
    const statement =
      events.length === 1
        ? appendOneUnlockedStatement(events[0] as NewActivityEvent, this.#notifyChannel)
        : appendUnlockedStatement(events, this.#notifyChannel).compile(this.#db);
    let rows: AppendRow[];
    try {
      ({ rows } = await this.#db.executeQuery(statement));
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
    const appended = new Map(rows.map((row) => [row.event_id, row]));
    return events.map((event) => {
      const row = appended.get(event.id);
      return row && { event: toStoredEvent(event, row.event_seq, row.event_created_at), duplicate: false };
    });
  }

  async appendAll(requests: readonly AppendRequest[]): Promise<AppendedEvent[][]> {
    const statements = requests.map((request) => this.#appendStatement(request));
    // Head rows locked in tenant id order, as every statement that locks several does.
    const order = requests
      .map((request, index) => ({ tenantId: request.tenantId, index }))
      .sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
    const rows = new Array<AppendRow[]>(requests.length);
    try {
      await this.#db.transaction().execute(async (transaction) => {
        for (const { index } of order) {
          rows[index] = (await transaction.executeQuery(statements[index] as CompiledQuery<AppendRow>)).rows;
        }
      });
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
    return requests.map((request, index) => toAppended(request.events, rows[index] as AppendRow[]));
  }

  /** The statement that appends one tenant's events (see append). */
  #appendStatement({ tenantId, events, options = {} }: AppendRequest): CompiledQuery<AppendRow> {
    const { generatedIds, createdAt } = options;
    // Ids the service generated (UUIDv7) cannot be stored yet: only the others are looked up.
    const checkIds = events.map((event) => event.id).filter((id) => !generatedIds?.has(id));
    if (checkIds.length === 0) return this.#appendGeneratedStatement(events, createdAt);
    return appendCheckedStatement(tenantId, events, createdAt, checkIds, this.#notifyChannel).compile(
      this.#db,
    );
  }

  #appendGeneratedStatement(
    events: readonly NewActivityEvent[],
    createdAt: Date | undefined,
  ): CompiledQuery<AppendRow> {
    return events.length === 1
      ? appendOneStatement(events[0] as NewActivityEvent, createdAt, this.#notifyChannel)
      : appendNewStatement(events, createdAt, this.#notifyChannel).compile(this.#db);
  }

  async #appendWith(
    events: readonly NewActivityEvent[],
    statement: CompiledQuery<AppendRow>,
  ): Promise<AppendedEvent[]> {
    let rows: AppendRow[];
    try {
      ({ rows } = await this.#db.executeQuery(statement));
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
    return toAppended(events, rows);
  }

  async page(tenantId: string, filter: EventFilter, request: PageRequest): Promise<ActivityEvent[]> {
    const clauses = actionClauses(filter);
    const values = pageValues(tenantId, filter, request, clauses);
    const statement = this.#pageStatement(values, request, clauses);
    try {
      const { rows } = await this.#pages.executeQuery<EventRow>(withValues(statement, values));
      return rows.map(toActivityEvent);
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
  }

  async *exportJson(
    tenantId: string,
    filter: EventFilter,
    request: ExportRequest,
  ): AsyncGenerator<Uint8Array> {
    const clauses = actionClauses(filter);
    if (this.#copyOut) {
      // One statement for the whole export, streamed, whose rows Node turns into JSON
      // lines while the database reads on.
      const values = pageValues(tenantId, filter, request, clauses);
      const select = this.#buildPage(values, { ...request, limit: undefined }, clauses).compile();
      const copy = CompiledQuery.raw(`copy (${select.sql}) to stdout`, [...select.parameters]);
      try {
        yield* copyTextToJsonLines(exportColumns, this.#copyOut(withValues(copy, values)));
      } catch (error) {
        throw toStoreError(error, this.#where);
      }
      return;
    }
    const order = request.order ?? 'desc';
    let position: ExportRequest = request;
    for (;;) {
      const values = pageValues(tenantId, filter, position, clauses);
      const select = this.#exportLines(values, position, clauses);
      let rows: { line: string; seq: unknown }[];
      try {
        ({ rows } = await this.#pages.executeQuery<{ line: string; seq: unknown }>(
          withValues(select.compile(), values),
        ));
      } catch (error) {
        throw toStoreError(error, this.#where);
      }
      if (rows.length > 0) yield Buffer.from(rows.map((row) => `${row.line}\n`).join(''));
      const last = rows.at(-1);
      if (last === undefined || rows.length < exportPageSize) return;
      const seq = Number(last.seq);
      position = order === 'asc' ? { ...request, afterSeq: seq } : { ...request, beforeSeq: seq };
    }
  }

  async ping(): Promise<void> {
    // Both pools, and both tables that requests use, not waiting long for a lock: an
    // unmigrated database, a lock on the events (a migration, an operator) or a pool
    // stuck behind one must each make the server not ready.
    const probe = (db: Kysely<StoreSchema>) =>
      db.transaction().execute(async (transaction) => {
        await sql`set local lock_timeout = '1s'`.execute(transaction);
        await sql`select 1 from activity_tenants limit 1`.execute(transaction);
        await sql`select 1 from activity_events where tenant_id = '' limit 1`.execute(transaction);
      });
    try {
      await Promise.all([probe(this.#db), ...(this.#pages === this.#db ? [] : [probe(this.#pages)])]);
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
  }

  async tenants(afterTenantId: string | undefined, limit: number): Promise<string[]> {
    try {
      let query = this.#db
        .selectFrom('activity_tenants')
        .select('tenant_id')
        .orderBy('tenant_id')
        .limit(limit);
      if (afterTenantId !== undefined) query = query.where('tenant_id', '>', afterTenantId);
      return (await query.execute()).map((row) => row.tenant_id);
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
  }

  /**
   * The page's statement, compiled once per shape (which filters are given, the action
   * clauses, order and size) with slots where the values go: building and compiling
   * it cost more than reading a small page.
   */
  #pageStatement(values: PageValues, request: PageRequest, clauses: ActionClause[]) {
    const shape = pageShape(values, request, clauses);
    let statement = this.#pageStatements.get(shape);
    if (statement === undefined) {
      statement = this.#buildPage(values, request, clauses).compile();
      if (this.#pageStatements.size >= maxPageStatements) this.#pageStatements.clear();
      this.#pageStatements.set(shape, statement);
    }
    return statement;
  }

  /** A page of an export's events as JSON lines (eventJson) with their seqs, in its order. */
  #exportLines(values: PageValues, request: ExportRequest, clauses: ActionClause[]) {
    const page = this.#buildPage(values, { ...request, limit: exportPageSize }, clauses);
    return this.#pages
      .selectFrom(page.as('p') as never)
      .select([eventJson.as('line'), sql<unknown>`seq`.as('seq')])
      .orderBy(sql`seq`, request.order ?? 'desc');
  }

  #buildPage(values: PageValues, request: PageQuery, clauses: ActionClause[]) {
    const branches = (clauses.length > 0 ? clauses : [undefined]).map((clause, index) =>
      this.#branch(values, request, clause, index),
    );
    const [first, ...rest] = branches;
    if (!first) throw new Error('a page has at least one branch');
    if (rest.length === 0) return first;
    // One index scan per action, each stopped at the limit, merged by seq: a list of
    // actions costs no more than its parts, however many rows each matches.
    let union = this.#pages.selectFrom(first.as('b0') as never).selectAll();
    for (const [index, branch] of rest.entries()) {
      union = union.unionAll(this.#pages.selectFrom(branch.as(`b${index + 1}`) as never).selectAll());
    }
    return withLimit(
      this.#pages
        .selectFrom(union.as('merged'))
        .selectAll()
        .orderBy('seq' as never, request.order ?? 'desc'),
      request.limit,
    );
  }

  /** One index scan's query; a filter is part of it when its value is given. */
  #branch(
    values: PageValues,
    request: PageQuery,
    clause: ActionClause | undefined,
    index: number,
  ): SelectQueryBuilder<StoreSchema, 'activity_events', EventRow> {
    const given = (name: FilterSlot) => values[name] !== undefined;
    const tenantId = slot<string>('tenantId');
    let query = this.#pages
      .selectFrom('activity_events')
      .select(pageColumns)
      .where('tenant_id', '=', tenantId) as SelectQueryBuilder<StoreSchema, 'activity_events', EventRow>;
    if (given('beforeSeq')) query = query.where('seq', '<', slot<number>('beforeSeq'));
    if (given('afterSeq')) query = query.where('seq', '>', slot<number>('afterSeq'));
    // created_at never decreases within a tenant, so a time window is a seq range:
    // the page is still read in seq order from whichever index serves the filters.
    // The same window on created_at changes no row, but lets PostgreSQL skip the
    // months (partitions) outside it.
    if (given('since')) {
      query = query
        .where('seq', '>', lastSeqBefore(tenantId, slot<Date>('since')))
        .where('created_at', '>=', slot<Date>('since'));
    }
    if (given('until')) {
      query = query
        .where('seq', '<=', lastSeqBefore(tenantId, slot<Date>('until')))
        .where('created_at', '<', slot<Date>('until'));
    }
    if (given('actorId')) query = query.where('actor_id', '=', slot<string>('actorId'));
    if (given('objectType')) query = query.where('object_type', '=', slot<string>('objectType'));
    if (given('objectId')) query = query.where('object_id', '=', slot<string>('objectId'));
    if (given('requestId')) query = query.where('request_id', '=', slot<string>('requestId'));
    if (given('status')) query = query.where('status', '=', slot<string>('status'));
    if (clause && 'action' in clause) query = query.where('action', '=', slot<string>(`action${index}`));
    if (clause && 'prefix' in clause) {
      query = query.where('namespace', '=', slot<string>(`namespace${index}`));
      if (prefixIsDeep(clause.prefix)) {
        query = query.where(sql<boolean>`starts_with(action, ${slot<string>(`prefix${index}`)})`);
      }
    }
    return withLimit(query.orderBy('seq', request.order ?? 'desc'), request.limit);
  }
}

/** What a page statement reads: a page, or with no limit, every matching event. */
type PageQuery = ExportRequest & { limit: number | undefined };

/** The statement with the values of its slots (a compiled statement keeps the slots). */
function withValues(statement: CompiledQuery, values: PageValues): CompiledQuery {
  return CompiledQuery.raw(
    statement.sql,
    statement.parameters.map((parameter) =>
      parameter instanceof PageSlot ? values[parameter.name] : parameter,
    ),
  );
}

function actionClauses(filter: EventFilter): ActionClause[] {
  return disjoint([
    ...(filter.actions ?? []).map((action) => ({ action })),
    ...(filter.actionPrefixes ?? []).map((prefix) => ({ prefix })),
  ]);
}

/** Page shapes kept compiled; past this many (a client varying sizes), they start over. */
const maxPageStatements = 256;

/** Where a value goes in a compiled page statement; filled in at each call. */
class PageSlot {
  constructor(readonly name: string) {}
}

/** A slot, typed as the value it stands for, so the builder takes it. */
function slot<T>(name: string): T {
  return new PageSlot(name) as unknown as T;
}

/** The slots of the filters a page may have, besides the tenant and the action clauses. */
const filterSlots = [
  'beforeSeq',
  'afterSeq',
  'since',
  'until',
  'actorId',
  'objectType',
  'objectId',
  'requestId',
  'status',
] as const;
type FilterSlot = (typeof filterSlots)[number];

/** The values of a page statement's slots; a filter not given has no value. */
type PageValues = Partial<Record<FilterSlot, unknown>> & Record<string, unknown>;

/**
 * What makes one page's SQL differ from another's: which filters have a value, the
 * action clauses, order and size. The same values decide what #branch builds.
 */
function pageShape(values: PageValues, request: PageQuery, clauses: ActionClause[]): string {
  let given = 0;
  for (const [bit, name] of filterSlots.entries()) if (values[name] !== undefined) given |= 1 << bit;
  let kinds = '';
  for (const clause of clauses) kinds += 'action' in clause ? 'a' : prefixIsDeep(clause.prefix) ? 'P' : 'p';
  return `${request.order ?? 'desc'} ${request.limit} ${given} ${kinds}`;
}

/** The values of the slots of a page statement (see #branch). */
function pageValues(
  tenantId: string,
  filter: EventFilter,
  request: ExportRequest,
  clauses: ActionClause[],
): PageValues {
  const values: PageValues = {
    tenantId,
    beforeSeq: request.beforeSeq,
    afterSeq: request.afterSeq,
    since: filter.since,
    until: filter.until,
    actorId: filter.actorId,
    objectType: filter.objectType,
    objectId: filter.objectId,
    requestId: filter.requestId,
    status: filter.status,
  };
  for (const [index, clause] of clauses.entries()) {
    if ('action' in clause) values[`action${index}`] = clause.action;
    else {
      values[`namespace${index}`] = clause.prefix.split('.').find(Boolean);
      values[`prefix${index}`] = clause.prefix;
    }
  }
  return values;
}

/** `auth.login.` needs more than its namespace; `auth.` is the namespace alone. */
function prefixIsDeep(prefix: string): boolean {
  return prefix.split('.').filter(Boolean).length > 1;
}

/**
 * The page size as a literal, not a parameter: a prepared page is planned once for
 * any value (see open-database.ts), and given `LIMIT $n` PostgreSQL would cost that
 * plan as if it read a tenth of the tenant, which can pick the wrong index.
 */
function withLimit<Query extends { limit(limit: RawBuilder<number>): Query }>(
  query: Query,
  limit: number | undefined,
): Query {
  if (limit === undefined) return query;
  if (!Number.isSafeInteger(limit) || limit < 1)
    throw new RangeError(`page limit ${limit} is not a positive integer`);
  return query.limit(sql.lit(limit));
}

type ActionClause = { action: string } | { prefix: string };

/** Drops clauses covered by a prefix in the list, so the union holds no row twice. */
function disjoint(clauses: ActionClause[]): ActionClause[] {
  if (clauses.length === 0) return clauses;
  const prefixes = clauses.flatMap((clause) => ('prefix' in clause ? [clause.prefix] : []));
  const covered = (name: string, self?: string) =>
    prefixes.some((prefix) => prefix !== self && name.startsWith(prefix));
  const seen = new Set<string>();
  return clauses.filter((clause) => {
    const key = 'action' in clause ? clause.action : clause.prefix;
    if (seen.has(key)) return false;
    seen.add(key);
    return 'action' in clause ? !covered(clause.action) : !covered(clause.prefix, clause.prefix);
  });
}

function lastSeqBefore(tenantId: string, time: Date) {
  return sql<number>`coalesce((
    select seq from activity_events
    where tenant_id = ${tenantId} and created_at < ${time}
    order by created_at desc, seq desc limit 1), 0)`;
}

/** Each input event as the append statement's rows say it was stored. */
function toAppended(events: readonly NewActivityEvent[], rows: readonly AppendRow[]): AppendedEvent[] {
  const appended = new Map(rows.map((row) => [row.event_id, row]));
  return events.map((event) => {
    const row = appended.get(event.id);
    if (!row) throw new Error(`append returned no row for ${event.id}`);
    // A duplicate comes back as first stored, which may differ from this input.
    if (row.duplicate) return { event: toActivityEvent(row.stored as EventRow), duplicate: true };
    return {
      event: toStoredEvent(event, row.event_seq, row.event_created_at),
      duplicate: false,
    };
  });
}

interface AppendRow {
  event_id: string;
  event_seq: string | number;
  event_created_at: Date;
  duplicate: boolean;
  /** The stored row of a duplicate. */
  stored: Record<string, unknown> | null;
}

/**
 * The events as one JSON parameter, expanded by jsonb_to_recordset in the statements
 * below, each with its position `n` (activity_append) and its `back` (appendNewStatement);
 * a statement ignores the keys it does not read. One object literal for every event: a
 * spread into it made each a slow dictionary, a tenth of an import's time.
 */
function eventsJson(events: readonly NewActivityEvent[], backs?: readonly number[]): string {
  return JSON.stringify(
    events.map((event, index) => ({
      n: index,
      back: backs?.[index],
      tenant_id: event.tenant_id,
      id: event.id,
      action: event.action,
      actor_type: event.actor_type,
      actor_id: event.actor_id,
      object_type: event.object_type,
      object_id: event.object_id,
      status: event.status,
      source: event.source,
      request_id: event.request_id,
      ip_hash: event.ip_hash,
      user_agent: event.user_agent,
      metadata: event.metadata,
    })),
  );
}

/**
 * Appends events whose ids need no lookup (the service generated them), of one tenant
 * or several, in one statement: take the next seqs from each tenant's head row, which
 * stays locked until commit so that seq follows commit order with no gap, and insert.
 * Head rows are locked in tenant id order, the same in every such statement, so two
 * of them never wait on each other in a cycle. With a channel, it also NOTIFYs
 * "tenant T has events up to N" for each tenant, delivered at commit. The time is the
 * database's (clock_timestamp()), never a writer's, unless `createdAt` is given.
 */
function appendNewStatement(
  events: readonly NewActivityEvent[],
  createdAt: Date | undefined,
  notifyChannel: string | undefined,
) {
  const { input, tenants, counts } = appendInput(events);
  return sql<AppendRow>`
    with head as (
      insert into activity_tenants as t (tenant_id, last_seq, last_created_at)
      select h.tenant_id, h.added, coalesce(${createdAt ?? null}::timestamptz, clock_timestamp())
      from unnest(${tenants}::text[], ${counts}::int[]) with ordinality as h(tenant_id, added, position)
      order by h.position
      on conflict (tenant_id) do update
        set last_seq = t.last_seq + excluded.last_seq,
            last_created_at = greatest(t.last_created_at, excluded.last_created_at)
      returning tenant_id, last_seq, last_created_at
    ),
    ${insertedFromHead(input, notifyChannel)}`;
}

/**
 * appendNewStatement that waits for no lock: the head rows it can lock at once are
 * advanced, those held by another transaction skipped (SKIP LOCKED), and only the
 * events of the tenants it holds are inserted. A tenant with no head row yet is
 * skipped too: its first event is left to the waiting statements, which create it.
 */
function appendUnlockedStatement(events: readonly NewActivityEvent[], notifyChannel: string | undefined) {
  const { input, tenants, counts } = appendInput(events);
  return sql<AppendRow>`
    with head as (
      update activity_tenants t
      set last_seq = t.last_seq + w.added, last_created_at = greatest(t.last_created_at, clock_timestamp())
      from unnest(${tenants}::text[], ${counts}::int[]) as w(tenant_id, added)
      where t.tenant_id = w.tenant_id and t.tenant_id in (
        select tenant_id from activity_tenants where tenant_id = any(${tenants}::text[]) for update skip locked)
      returning t.tenant_id, t.last_seq, t.last_created_at
    ),
    ${insertedFromHead(input, notifyChannel)}`;
}

/**
 * The events as the statements above take them: JSON with each event's `back` (how
 * many events of its tenant follow it: it takes seq last_seq - back), and each tenant,
 * in id order, with its count.
 */
function appendInput(events: readonly NewActivityEvent[]) {
  // Walked from the end, so that `added` ends with each tenant's count.
  const added = new Map<string, number>();
  const backs = new Array<number>(events.length);
  for (let index = events.length - 1; index >= 0; index--) {
    const tenantId = (events[index] as NewActivityEvent).tenant_id;
    const following = added.get(tenantId) ?? 0;
    backs[index] = following;
    added.set(tenantId, following + 1);
  }
  const tenants = [...added.keys()].sort();
  return {
    input: eventsJson(events, backs),
    tenants,
    counts: tenants.map((tenantId) => added.get(tenantId)),
  };
}

/** The rest of a statement after its `head` (tenant, last seq, time): insert, NOTIFY, the rows. */
function insertedFromHead(input: string, notifyChannel: string | undefined) {
  return sql`inserted as (
      insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
        status, source, request_id, ip_hash, user_agent, metadata, created_at)
      select i.tenant_id, h.last_seq - i.back, i.id, i.action, i.actor_type, i.actor_id,
        i.object_type, i.object_id, i.status, i.source, i.request_id, i.ip_hash, i.user_agent, i.metadata,
        h.last_created_at
      from jsonb_to_recordset(${input}::jsonb) as i(
        back int, tenant_id text, id uuid, action text, actor_type text, actor_id text, object_type text,
        object_id text, status text, source text, request_id text, ip_hash text, user_agent text, metadata jsonb)
      join head h on h.tenant_id = i.tenant_id
      returning tenant_id, id, seq, created_at
    )
    select inserted.id as event_id, inserted.seq as event_seq, inserted.created_at as event_created_at,
      false as duplicate, null::jsonb as stored
    from inserted${
      notifyChannel === undefined
        ? sql``
        : sql` cross join (select count(*) from (
            select pg_notify(${notifyChannel}, json_build_array(tenant_id, max(seq))::text)
            from inserted group by tenant_id) as each_tenant) as notified`
    }`;
}

/**
 * appendNewStatement for one event, the shape of every `record` that waits alone: its
 * fields as parameters of a text built once, not a JSON array for the database to
 * expand, and the head row upserted by its key. Cheaper in Node and in PostgreSQL; on
 * a single writer it took a third off what a record costs above a raw INSERT.
 */
function appendOneStatement(
  event: NewActivityEvent,
  createdAt: Date | undefined,
  notifyChannel: string | undefined,
): CompiledQuery<AppendRow> {
  return oneEventStatement(appendOneTexts, [event.tenant_id, createdAt ?? null], event, notifyChannel);
}

/** appendUnlockedStatement for one event, with its fields as parameters (see appendOneStatement). */
function appendOneUnlockedStatement(
  event: NewActivityEvent,
  notifyChannel: string | undefined,
): CompiledQuery<AppendRow> {
  return oneEventStatement(appendOneUnlockedTexts, [event.tenant_id], event, notifyChannel);
}

/** A one-event statement: the head's parameters, then the event's fields, then the channel. */
function oneEventStatement(
  texts: OneEventTexts,
  headValues: unknown[],
  event: NewActivityEvent,
  notifyChannel: string | undefined,
): CompiledQuery<AppendRow> {
  const values: unknown[] = [
    ...headValues,
    event.id,
    event.action,
    event.actor_type,
    event.actor_id,
    event.object_type,
    event.object_id,
    event.status,
    event.source,
    event.request_id,
    event.ip_hash,
    event.user_agent,
    JSON.stringify(event.metadata),
  ];
  if (notifyChannel === undefined) return CompiledQuery.raw(texts.plain, values);
  values.push(notifyChannel);
  return CompiledQuery.raw(texts.notifying, values);
}

interface OneEventTexts {
  plain: string;
  notifying: string;
}

/**
 * A one-event statement's texts after its `head` CTE (the tenant is $1; the event's
 * fields start at $`first`, its id first): insert the event, return its row, and
 * NOTIFY when a channel follows the fields.
 */
function oneEventTexts(head: string, first: number): OneEventTexts {
  const field = (offset: number) => `$${first + offset}`;
  const body = `with ${head},
  inserted as (
    insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
      status, source, request_id, ip_hash, user_agent, metadata, created_at)
    select $1, h.last_seq, ${field(0)}::uuid, ${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(field).join(', ')},
      ${field(11)}::jsonb, h.last_created_at
    from head h
    returning seq, created_at
  )
  select ${field(0)}::uuid as event_id, seq as event_seq, created_at as event_created_at,
    false as duplicate, null::jsonb as stored`;
  return {
    plain: `${body} from inserted`,
    notifying: `${body},
    pg_notify(${field(12)}, json_build_array($1::text, seq)::text) as notified
  from inserted`,
  };
}

const appendOneTexts = oneEventTexts(
  `head as (
    insert into activity_tenants as t (tenant_id, last_seq, last_created_at)
      values ($1, 1, coalesce($2::timestamptz, clock_timestamp()))
    on conflict (tenant_id) do update
      set last_seq = t.last_seq + 1, last_created_at = greatest(t.last_created_at, excluded.last_created_at)
    returning last_seq, last_created_at
  )`,
  3,
);

const appendOneUnlockedTexts = oneEventTexts(
  `head as (
    update activity_tenants t
    set last_seq = t.last_seq + 1, last_created_at = greatest(t.last_created_at, clock_timestamp())
    where t.tenant_id = (select tenant_id from activity_tenants where tenant_id = $1 for update skip locked)
    returning t.last_seq, t.last_created_at
  )`,
  2,
);

/**
 * Appends events some of whose ids may be stored already, through activity_append
 * (migrations/0002), in one round trip: it locks the head row, returns the ids of
 * `checkIds` already stored as duplicates, and inserts the rest.
 */
function appendCheckedStatement(
  tenantId: string,
  events: readonly NewActivityEvent[],
  createdAt: Date | undefined,
  checkIds: readonly string[],
  notifyChannel: string | undefined,
) {
  return sql<AppendRow>`select * from activity_append(${tenantId}, ${eventsJson(events)}::jsonb,
    coalesce(${createdAt ?? null}::timestamptz, clock_timestamp()), ${checkIds}::uuid[],
    ${notifyChannel ?? null}::text)`;
}

/** `2026-11-27T08:50:19.123Z`, as pages select `created_at`. */
const contractTime = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

export function toActivityEvent(row: EventRow): ActivityEvent {
  return {
    id: String(row.id),
    tenant_id: String(row.tenant_id),
    seq: Number(row.seq),
    action: String(row.action),
    actor_type: row.actor_type as ActorType,
    actor_id: row.actor_id as string | null,
    object_type: row.object_type as string | null,
    object_id: row.object_id as string | null,
    status: row.status as EventStatus,
    source: row.source as string | null,
    request_id: row.request_id as string | null,
    ip_hash: row.ip_hash as string | null,
    user_agent: row.user_agent as string | null,
    metadata: (typeof row.metadata === 'string' ? JSON.parse(row.metadata) : row.metadata) as Record<
      string,
      unknown
    >,
    created_at: toContractTime(row.created_at),
  };
}

/** A new event as stored, with the seq and time the database gave it; field by field, not spread (see eventsJson). */
function toStoredEvent(event: NewActivityEvent, seq: unknown, createdAt: unknown): ActivityEvent {
  return {
    id: event.id,
    tenant_id: event.tenant_id,
    seq: Number(seq),
    action: event.action,
    actor_type: event.actor_type,
    actor_id: event.actor_id,
    object_type: event.object_type,
    object_id: event.object_id,
    status: event.status,
    source: event.source,
    request_id: event.request_id,
    ip_hash: event.ip_hash,
    user_agent: event.user_agent,
    metadata: event.metadata,
    created_at: toContractTime(createdAt),
  };
}

function toContractTime(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'string' && contractTime.test(value)) return value;
  return new Date(String(value)).toISOString();
}
