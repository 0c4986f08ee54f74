import { type CompiledQuery, type Kysely, sql } from 'kysely';
import type { AppendedEvent, AppendOptions, AppendRequest } from '../../domain/activity-repository.js';
import type { NewActivityEvent } from '../../domain/event.js';
import type { StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';
import { appendOneStatement, appendOneUnlockedStatement } from './append-one.js';
import { type AppendRow, toAppended, toStoredEvent } from './rows.js';

/** The append half of the repository: each call one statement, or one transaction (appendAll). */
export class EventAppender {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;
  readonly #notifyChannel: string | undefined;

  /** With `notifyChannel`, each statement also NOTIFYs its tenants (see appendNewStatement). */
  constructor(db: Kysely<StoreSchema>, where: string, notifyChannel: string | undefined) {
    this.#db = db;
    this.#where = where;
    this.#notifyChannel = notifyChannel;
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
    const { rows } = await guarded(this.#where, () => this.#db.executeQuery(statement));
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
    await guarded(this.#where, () =>
      this.#db.transaction().execute(async (transaction) => {
        for (const { index } of order) {
          rows[index] = (await transaction.executeQuery(statements[index] as CompiledQuery<AppendRow>)).rows;
        }
      }),
    );
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
    const { rows } = await guarded(this.#where, () => this.#db.executeQuery(statement));
    return toAppended(events, rows);
  }
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
 * "tenant T has events up to N" for each tenant, delivered at commit: LISTEN/NOTIFY
 * costs no extra round trip. The time is the database's (clock_timestamp()), never a
 * writer's, unless `createdAt` is given.
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
