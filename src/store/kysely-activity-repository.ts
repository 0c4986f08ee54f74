import { type Kysely, type SelectQueryBuilder, sql } from 'kysely';
import type {
  ActivityRepository,
  AppendedEvent,
  EventFilter,
  PageRequest,
} from '../domain/activity-repository.js';
import type { ActivityEvent, ActorType, EventStatus, NewActivityEvent } from '../domain/event.js';
import type { StoreSchema } from './schema.js';
import { isUniqueViolation, toStoreError } from './store-errors.js';

const eventColumns = [
  'tenant_id',
  'seq',
  'id',
  'action',
  'actor_type',
  'actor_id',
  'object_type',
  'object_id',
  'status',
  'source',
  'request_id',
  'ip_hash',
  'user_agent',
  'metadata',
  'created_at',
] as const;

/** A concurrent retry of the same id can slip past the duplicate check once; then we re-run. */
const maxAppendAttempts = 3;

type EventRow = Record<(typeof eventColumns)[number], unknown>;

/** The repository on PostgreSQL and PGlite: the same SQL on both. */
export class KyselyActivityRepository implements ActivityRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;

  /** `where` names the database in errors (never with its password). */
  constructor(db: Kysely<StoreSchema>, where: string) {
    this.#db = db;
    this.#where = where;
  }

  async append(
    tenantId: string,
    events: readonly NewActivityEvent[],
    createdAt: Date,
  ): Promise<AppendedEvent[]> {
    if (events.length === 0) return [];
    const input = JSON.stringify(
      events.map((event, n) => ({
        n,
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
    for (let attempt = 1; ; attempt++) {
      try {
        const { rows } = await appendStatement(tenantId, input, createdAt).execute(this.#db);
        const byId = new Map(rows.map((row) => [String(row.id), row]));
        return events.map((event) => {
          const row = byId.get(event.id);
          if (!row) throw new Error(`append returned no row for ${event.id}`);
          return { event: toActivityEvent(row), duplicate: Boolean(row.duplicate) };
        });
      } catch (error) {
        if (attempt < maxAppendAttempts && isUniqueViolation(error, 'activity_events_id_key')) continue;
        throw toStoreError(error, this.#where);
      }
    }
  }

  async page(tenantId: string, filter: EventFilter, request: PageRequest): Promise<ActivityEvent[]> {
    const actionClauses: ActionClause[] = [
      ...(filter.actions ?? []).map((action) => ({ action })),
      ...(filter.actionPrefixes ?? []).map((prefix) => ({ prefix })),
    ];
    const branches = (actionClauses.length > 0 ? disjoint(actionClauses) : [undefined]).map((clause) =>
      this.#branch(tenantId, filter, request, clause),
    );
    try {
      const [first, ...rest] = branches;
      if (rest.length === 0 && first) return (await first.execute()).map(toActivityEvent);
      // One index scan per action, each stopped at the limit, merged by seq: a list of
      // actions costs no more than its parts, however many rows each matches.
      let union = this.#db.selectFrom(first?.as('b0') as never).selectAll();
      for (const [index, branch] of rest.entries()) {
        union = union.unionAll(this.#db.selectFrom(branch.as(`b${index + 1}`) as never).selectAll());
      }
      const rows = await this.#db
        .selectFrom(union.as('merged'))
        .selectAll()
        .orderBy('seq' as never, 'desc')
        .limit(request.limit)
        .execute();
      return (rows as EventRow[]).map(toActivityEvent);
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
  }

  async ping(): Promise<void> {
    try {
      await sql`select 1`.execute(this.#db);
    } catch (error) {
      throw toStoreError(error, this.#where);
    }
  }

  #branch(
    tenantId: string,
    filter: EventFilter,
    request: PageRequest,
    clause: ActionClause | undefined,
  ): SelectQueryBuilder<StoreSchema, 'activity_events', EventRow> {
    let query = this.#db
      .selectFrom('activity_events')
      .select(eventColumns)
      .where('tenant_id', '=', tenantId) as SelectQueryBuilder<StoreSchema, 'activity_events', EventRow>;
    if (request.beforeSeq !== undefined) query = query.where('seq', '<', request.beforeSeq);
    // created_at never decreases within a tenant, so a time window is a seq range:
    // the page is still read in seq order from whichever index serves the filters.
    if (filter.since) query = query.where('seq', '>', lastSeqBefore(tenantId, filter.since));
    if (filter.until) query = query.where('seq', '<=', lastSeqBefore(tenantId, filter.until));
    if (filter.actorId !== undefined) query = query.where('actor_id', '=', filter.actorId);
    if (filter.objectType !== undefined) query = query.where('object_type', '=', filter.objectType);
    if (filter.objectId !== undefined) query = query.where('object_id', '=', filter.objectId);
    if (filter.requestId !== undefined) query = query.where('request_id', '=', filter.requestId);
    if (filter.status !== undefined) query = query.where('status', '=', filter.status);
    if (clause && 'action' in clause) query = query.where('action', '=', clause.action);
    if (clause && 'prefix' in clause) {
      const [namespace, ...deeper] = clause.prefix.split('.').filter(Boolean);
      query = query.where('namespace', '=', namespace as string);
      if (deeper.length > 0) query = query.where(sql<boolean>`starts_with(action, ${clause.prefix})`);
    }
    return query.orderBy('seq', 'desc').limit(request.limit);
  }
}

type ActionClause = { action: string } | { prefix: string };

/** Drops clauses covered by a prefix in the list, so the union holds no row twice. */
function disjoint(clauses: ActionClause[]): ActionClause[] {
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

/**
 * Appends a batch in one statement (one round trip): lock the tenant's head row,
 * take the next seqs for the events whose id is new, insert them, and return them
 * with the already-stored duplicates. The head row's lock serialises writers of a
 * tenant, so seq follows commit order with no gap.
 */
function appendStatement(tenantId: string, input: string, createdAt: Date) {
  return sql<EventRow & { duplicate: boolean }>`
    with input as (
      select * from jsonb_to_recordset(${input}::jsonb) as x(
        n int, id uuid, action text, actor_type text, actor_id text, object_type text, object_id text,
        status text, source text, request_id text, ip_hash text, user_agent text, metadata jsonb)
    ),
    existing as (
      select e.* from activity_events e
      where e.tenant_id = ${tenantId} and e.id in (select id from input)
    ),
    fresh as (
      select i.*, row_number() over (order by i.n) as k
      from input i where i.id not in (select id from existing)
    ),
    head as (
      insert into activity_tenants as t (tenant_id, last_seq, last_created_at)
      select ${tenantId}, count(*), ${createdAt}::timestamptz from fresh having count(*) > 0
      on conflict (tenant_id) do update
        set last_seq = t.last_seq + excluded.last_seq,
            last_created_at = greatest(t.last_created_at, excluded.last_created_at)
      returning last_seq, last_created_at
    ),
    inserted as (
      insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
        status, source, request_id, ip_hash, user_agent, metadata, created_at)
      select ${tenantId}, h.last_seq - (select count(*) from fresh) + f.k, f.id, f.action, f.actor_type,
        f.actor_id, f.object_type, f.object_id, f.status, f.source, f.request_id, f.ip_hash, f.user_agent,
        f.metadata, h.last_created_at
      from fresh f cross join head h
      returning ${sql.join(eventColumns.map((column) => sql.ref(column)))}
    )
    select false as duplicate, * from inserted
    union all
    select true as duplicate, ${sql.join(eventColumns.map((column) => sql.ref(`existing.${column}`)))} from existing`;
}

export function toActivityEvent(row: EventRow): ActivityEvent {
  const createdAt = row.created_at instanceof Date ? row.created_at : new Date(String(row.created_at));
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
    created_at: createdAt.toISOString(),
  };
}
