import { CompiledQuery, type Kysely, sql } from 'kysely';
import type { AppendedEvent, AppendOptions, AppendRequest } from '../../domain/activity-repository.js';
import type { NewActivityEvent } from '../../domain/event.js';
import { eventDigest } from '../../integrity/leaf.js';
import type { StoreSchema } from '../schema.js';
import type { StatementRunner } from '../statement-runner.js';
import { guarded } from '../store-errors.js';
import { appendOneStatement, type OneEventRow, oneEventRows, type Statement } from './append-one.js';
import { type AppendRow, contractTimeSql, toAppended, toStoredEvent } from './rows.js';

/** The append half of the repository: each call one statement, or one transaction (appendAll). */
export class EventAppender {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;
  readonly #notifyChannel: string | undefined;
  /** Sends a statement outside a transaction (see #send). */
  readonly #run: StatementRunner;

  /** With `notifyChannel`, each statement also NOTIFYs its tenants (see appendNewStatement). */
  constructor(
    db: Kysely<StoreSchema>,
    where: string,
    options: { notifyChannel: string | undefined; run: StatementRunner },
  ) {
    this.#db = db;
    this.#where = where;
    this.#notifyChannel = options.notifyChannel;
    this.#run = options.run;
  }

  append(
    tenantId: string,
    events: readonly NewActivityEvent[],
    options: AppendOptions = {},
  ): Promise<AppendedEvent[]> {
    return guarded(this.#where, async () =>
      toAppended(events, await this.#appendRows(this.#db, { tenantId, events, options })),
    );
  }

  appendGenerated(
    events: readonly NewActivityEvent[],
    { createdAt }: Pick<AppendOptions, 'createdAt'> = {},
  ): Promise<AppendedEvent[]> {
    return guarded(this.#where, async () =>
      toAppended(events, await this.#generatedRows(this.#db, events, createdAt)),
    );
  }

  async appendUnlocked(events: readonly NewActivityEvent[]): Promise<Array<AppendedEvent | undefined>> {
    const rows = await guarded(this.#where, () =>
      this.#newRows(this.#db, events, { createdAt: undefined, skipLocked: true }),
    );
    const appended = new Map(rows.map((row) => [row.event_id, row]));
    return events.map((event) => {
      const row = appended.get(event.id);
      return row && { event: toStoredEvent(event, row.event_seq, row.event_created_at), duplicate: false };
    });
  }

  /** The rows of appendNewStatement, or of appendOneStatement for one event. */
  async #newRows(
    db: Kysely<StoreSchema>,
    events: readonly NewActivityEvent[],
    options: { createdAt: Date | undefined; skipLocked: boolean },
  ): Promise<AppendRow[]> {
    const [only] = events;
    if (events.length === 1 && only) {
      const statement = appendOneStatement(only, options, this.#notifyChannel);
      return oneEventRows(only, await this.#send<OneEventRow>(db, statement));
    }
    return this.#send<AppendRow>(db, appendNewStatement(events, options, this.#notifyChannel));
  }

  /**
   * Sends a statement: alone, straight on the pool (see StatementRunner); in a
   * transaction (appendAll), on its connection.
   */
  async #send<Row>(db: Kysely<StoreSchema>, { text, values }: Statement): Promise<Row[]> {
    if (db === this.#db) return this.#run<Row>(text, values);
    return (await db.executeQuery<Row>(CompiledQuery.raw(text, values))).rows;
  }

  async appendAll(requests: readonly AppendRequest[]): Promise<AppendedEvent[][]> {
    // Head rows locked in tenant id order, as every statement that locks several does.
    const order = requests
      .map((request, index) => ({ tenantId: request.tenantId, index }))
      .sort((a, b) => (a.tenantId < b.tenantId ? -1 : a.tenantId > b.tenantId ? 1 : 0));
    const rows = new Array<AppendRow[]>(requests.length);
    await guarded(this.#where, () =>
      this.#db.transaction().execute(async (transaction) => {
        for (const { index } of order) {
          rows[index] = await this.#appendRows(transaction, requests[index] as AppendRequest);
        }
      }),
    );
    return requests.map((request, index) => toAppended(request.events, rows[index] as AppendRow[]));
  }

  /** The rows of one tenant's append (see append). */
  #appendRows(
    db: Kysely<StoreSchema>,
    { tenantId, events, options = {} }: AppendRequest,
  ): Promise<AppendRow[]> {
    const { generatedIds, createdAt } = options;
    // Ids the service generated (UUIDv7) cannot be stored yet: only the others are looked up.
    const checkIds = events.map((event) => event.id).filter((id) => !generatedIds?.has(id));
    if (checkIds.length === 0) return this.#generatedRows(db, events, createdAt);
    const statement = appendCheckedStatement(tenantId, events, createdAt, checkIds, this.#notifyChannel);
    return statement.execute(db).then((result) => result.rows);
  }

  /**
   * The rows of appendNewStatement (or appendOneStatement), which skips the events of
   * tenants with no head row yet: those get one, and go again.
   */
  async #generatedRows(
    db: Kysely<StoreSchema>,
    events: readonly NewActivityEvent[],
    createdAt: Date | undefined,
  ): Promise<AppendRow[]> {
    const run = (batch: readonly NewActivityEvent[]) =>
      this.#newRows(db, batch, { createdAt, skipLocked: false });
    const rows = await run(events);
    if (rows.length === events.length) return rows;
    const stored = new Set(rows.map((row) => row.event_id));
    const headless = events.filter((event) => !stored.has(event.id));
    const tenants = [...new Set(headless.map((event) => event.tenant_id))].sort();
    await sql`insert into activity_tenants (tenant_id) select unnest(${tenants}::text[])
      on conflict do nothing`.execute(db);
    return [...rows, ...(await run(headless))];
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
      digest: eventDigest(event).toString('hex'),
    })),
  );
}

/**
 * Appends events whose ids need no lookup (the service generated them), of one tenant
 * or several, in one statement: lock each tenant's head row (in tenant id order, the
 * same in every such statement, so two of them never wait on each other in a cycle),
 * take the next seqs from it, advance the head and insert the events with their leaf
 * hashes. The head stays locked until commit, so seq follows commit order
 * with no gap. The time is the database's (clock_timestamp()), never a writer's,
 * unless `createdAt` is given. With a channel, it also NOTIFYs "tenant T has events up
 * to N" for each tenant, delivered at commit: LISTEN/NOTIFY costs no extra round trip.
 *
 * A tenant with no head row yet has its events skipped, as does, with `skipLocked`, a
 * tenant whose head another transaction holds (SKIP LOCKED).
 */
function appendNewStatement(
  events: readonly NewActivityEvent[],
  { createdAt, skipLocked }: { createdAt?: Date | undefined; skipLocked: boolean },
  notifyChannel: string | undefined,
): Statement {
  const { input, tenants, counts } = appendInput(events);
  const values: unknown[] = [input, createdAt ?? null, tenants, counts];
  const texts = skipLocked ? unlockedNewEventsTexts : waitingNewEventsTexts;
  if (notifyChannel === undefined) return { text: texts.plain, values };
  values.push(notifyChannel);
  return { text: texts.notifying, values };
}

/**
 * appendNewStatement's texts, built once (Kysely compiled the statement again for
 * every batch): $1 the events' JSON, $2 the time to store (or null: the database's
 * clock), $3 the tenants in id order, $4 their counts, $5 the channel to NOTIFY.
 */
function newEventsTexts(skipLocked: boolean) {
  const body = `
    with input as (
      select * from jsonb_to_recordset($1::jsonb) as i(
        back int, tenant_id text, id uuid, action text, actor_type text, actor_id text, object_type text,
        object_id text, status text, source text, request_id text, ip_hash text, user_agent text,
        metadata jsonb, digest text)
    ),
    locked as (
      select t.tenant_id, t.last_seq, w.added,
        activity_next_time(t.last_created_at, coalesce($2::timestamptz, clock_timestamp())) as created_at
      from activity_tenants t
      join unnest($3::text[], $4::int[]) as w(tenant_id, added) on w.tenant_id = t.tenant_id
      order by t.tenant_id
      for update of t${skipLocked ? ' skip locked' : ''}
    ),
    head as (
      update activity_tenants t
      set last_seq = l.last_seq + l.added, last_created_at = l.created_at
      from locked l
      where t.tenant_id = l.tenant_id
    ),
    inserted as (
      insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
        status, source, request_id, ip_hash, user_agent, metadata, created_at, leaf_hash)
      select i.tenant_id, l.last_seq + l.added - i.back, i.id, i.action, i.actor_type, i.actor_id,
        i.object_type, i.object_id, i.status, i.source, i.request_id, i.ip_hash, i.user_agent, i.metadata,
        l.created_at, activity_leaf_hash(decode(i.digest, 'hex'), l.last_seq + l.added - i.back, l.created_at)
      from input i
      join locked l on l.tenant_id = i.tenant_id
      returning tenant_id, id, seq, created_at
    )
    select inserted.id as event_id, inserted.seq as event_seq,
      ${contractTimeSql('inserted.created_at')} as event_created_at, false as duplicate, null::jsonb as stored
    from inserted`;
  return {
    plain: body,
    notifying: `${body} cross join (select count(*) from (
        select pg_notify($5, json_build_array(tenant_id, max(seq))::text)
        from inserted group by tenant_id) as each_tenant) as notified`,
  };
}

const unlockedNewEventsTexts = newEventsTexts(true);
const waitingNewEventsTexts = newEventsTexts(false);

/**
 * The events as the statement above takes them: JSON with each event's `back` (how
 * many events of its tenant follow it: it takes seq last_seq + added - back), and each
 * tenant, in id order, with its count.
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

/**
 * Appends events some of whose ids may be stored already, through activity_append
 * (migrations/0004), in one round trip: it locks the head row (made if missing),
 * returns the ids of `checkIds` already stored as duplicates, and inserts the rest
 * with their leaf hashes.
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
