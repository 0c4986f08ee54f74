import { CompiledQuery, type Kysely, type RawBuilder, type SelectQueryBuilder, sql } from 'kysely';
import type { EventFilter, ExportRequest, PageRequest } from '../../domain/activity-repository.js';
import { type ActivityEvent, reservedNamespace } from '../../domain/event.js';
import type { StoreSchema } from '../schema.js';
import type { StatementRunner } from '../statement-runner.js';
import { guarded } from '../store-errors.js';
import { type EventRow, pageColumns, toActivityEvent } from './rows.js';

/**
 * Reads pages, each through a statement compiled once per shape and sent by `run`
 * with the values of its slots.
 */
export class EventPageReader {
  readonly #pages: Kysely<StoreSchema>;
  readonly #where: string;
  readonly #run: StatementRunner;
  /** Compiled page statements by shape (see #statement). */
  readonly #statements = new Map<string, CompiledQuery>();

  /**
   * `pages`: where pages are read (see open-database.ts), which builds their SQL;
   * `run` sends it there (on PostgreSQL without Kysely, see createPreparingPool).
   */
  constructor(pages: Kysely<StoreSchema>, where: string, run: StatementRunner) {
    this.#pages = pages;
    this.#where = where;
    this.#run = run;
  }

  async page(tenantId: string, filter: EventFilter, request: PageRequest): Promise<ActivityEvent[]> {
    const clauses = actionClauses(filter);
    const values = pageValues(tenantId, filter, request, clauses);
    const statement = this.#statement(values, request, clauses);
    return guarded(this.#where, async () => {
      const rows = await this.#run<EventRow>(statement.sql, slotValues(statement, values));
      return rows.map(toActivityEvent);
    });
  }

  /**
   * The page's statement, compiled once per shape (which filters are given, the action
   * clauses, order and size) with slots where the values go: building and compiling
   * it cost more than reading a small page.
   */
  #statement(values: PageValues, request: PageRequest, clauses: ActionClause[]) {
    const shape = pageShape(values, request, clauses);
    let statement = this.#statements.get(shape);
    if (statement === undefined) {
      statement = buildPage(this.#pages, values, request, clauses).compile();
      if (this.#statements.size >= maxPageStatements) this.#statements.clear();
      this.#statements.set(shape, statement);
    }
    return statement;
  }
}

/** Page shapes kept compiled; past this many (a client varying sizes), they start over. */
const maxPageStatements = 256;

/** What a page statement reads: a page, or with no limit, every matching event. */
type PageQuery = ExportRequest & { limit: number | undefined };

/** A page's query on `db`, with slots for `values` (fill them in with withValues once compiled). */
export function buildPage(
  db: Kysely<StoreSchema>,
  values: PageValues,
  request: PageQuery,
  clauses: ActionClause[],
) {
  const branches = (clauses.length > 0 ? clauses : [undefined]).map((clause, index) =>
    branch(db, values, request, clause, index),
  );
  const [first, ...rest] = branches;
  if (!first) throw new Error('a page has at least one branch');
  if (rest.length === 0) return first;
  // One index scan per action, each stopped at the limit, merged by seq: a list of
  // actions costs no more than its parts, however many rows each matches.
  let union = db.selectFrom(first.as('b0') as never).selectAll();
  for (const [index, next] of rest.entries()) {
    union = union.unionAll(db.selectFrom(next.as(`b${index + 1}`) as never).selectAll());
  }
  return withLimit(
    db
      .selectFrom(union.as('merged'))
      .selectAll()
      .orderBy('seq' as never, request.order ?? 'desc'),
    request.limit,
  );
}

/** One index scan's query; a filter is part of it when its value is given. */
function branch(
  db: Kysely<StoreSchema>,
  values: PageValues,
  request: PageQuery,
  clause: ActionClause | undefined,
  index: number,
): SelectQueryBuilder<StoreSchema, 'activity_events', EventRow> {
  const given = (name: FilterSlot) => values[name] !== undefined;
  const tenantId = slot<string>('tenantId');
  let query = db
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
  // A literal, not a slot: so the statement matches the partial index of the events
  // that are not the tool's own (activity_events_unreserved_idx, migrations/0005).
  if (values.withoutReserved === true) query = query.where('namespace', '<>', sql.lit(reservedNamespace));
  if (clause && 'action' in clause) query = query.where('action', '=', slot<string>(`action${index}`));
  if (clause && 'prefix' in clause) {
    query = query.where('namespace', '=', slot<string>(`namespace${index}`));
    if (prefixIsDeep(clause.prefix)) {
      query = query.where(sql<boolean>`starts_with(action, ${slot<string>(`prefix${index}`)})`);
    }
  }
  return withLimit(query.orderBy('seq', request.order ?? 'desc'), request.limit);
}

/** The statement with the values of its slots (a compiled statement keeps the slots). */
export function withValues(statement: CompiledQuery, values: PageValues): CompiledQuery {
  return CompiledQuery.raw(statement.sql, slotValues(statement, values));
}

/** The parameters of a compiled statement, its slots filled in from `values`. */
function slotValues(statement: CompiledQuery, values: PageValues): unknown[] {
  return statement.parameters.map((parameter) =>
    parameter instanceof PageSlot ? values[parameter.name] : parameter,
  );
}

export function actionClauses(filter: EventFilter): ActionClause[] {
  return disjoint([
    ...(filter.actions ?? []).map((action) => ({ action })),
    ...(filter.actionPrefixes ?? []).map((prefix) => ({ prefix })),
  ]);
}

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
export type PageValues = Partial<Record<FilterSlot, unknown>> & Record<string, unknown>;

/**
 * What makes one page's SQL differ from another's: which filters have a value, the
 * action clauses, order and size. The same values decide what branch builds.
 */
function pageShape(values: PageValues, request: PageQuery, clauses: ActionClause[]): string {
  let given = 0;
  for (const [bit, name] of filterSlots.entries()) if (values[name] !== undefined) given |= 1 << bit;
  let kinds = '';
  for (const clause of clauses) kinds += 'action' in clause ? 'a' : prefixIsDeep(clause.prefix) ? 'P' : 'p';
  return `${request.order ?? 'desc'} ${request.limit} ${given} ${kinds}${values.withoutReserved === true ? ' r' : ''}`;
}

/** The values of the slots of a page statement (see branch). */
export function pageValues(
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
    withoutReserved: filter.withoutReserved === true,
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

export type ActionClause = { action: string } | { prefix: string };

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
