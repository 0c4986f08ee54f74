import { type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type {
  DeliveryAttempt,
  DeliveryOutcome,
  NewSinkRow,
  SinkBatch,
  SinkCursor,
  SinkPayload,
  SinkRepository,
  SinkState,
  StoredSink,
} from '../../domain/sink.js';
import { pageColumns, toActivityEvent } from '../events/rows.js';
import type { SinkRow, StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';

/** The first key of the advisory locks that claim a sink (`actv`): no other lock of the tool uses it. */
const sinkLockClass = 0x61637476;

/**
 * Sinks on PostgreSQL and PGlite. A delivery claims its sink for the time of one
 * batch: on PostgreSQL with a transaction-scoped advisory lock taken without waiting,
 * so that of several processes one delivers the sink and the others pass it by, and
 * an operator's pause or removal never waits for a receiver; on PGlite the process
 * holds the whole data directory, and its one worker needs no lock.
 */
export class KyselySinkRepository implements SinkRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;
  readonly #lockSinks: boolean;

  constructor(db: Kysely<StoreSchema>, where: string, options: { lockSinks: boolean }) {
    this.#db = db;
    this.#where = where;
    this.#lockSinks = options.lockSinks;
  }

  add(sink: NewSinkRow, { fromStart }: { fromStart: boolean }): Promise<StoredSink> {
    return guarded(this.#where, () =>
      this.#db.transaction().execute(async (trx) => {
        const row = await trx
          .insertInto('activity_sinks')
          .values({
            ...sink,
            headers: sink.headers === null ? null : JSON.stringify(sink.headers),
            secret: JSON.stringify(sink.secret),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        if (!fromStart) {
          // From now: each tenant's cursor at its newest seq; a tenant with no event yet starts at 0.
          let tenants = trx
            .selectFrom('activity_tenants')
            .select([
              sql<string>`${sink.sink_id}::uuid`.as('sink_id'),
              'tenant_id',
              'last_seq as delivered_seq',
              'last_seq as reported_seq',
            ]);
          if (sink.tenant_id !== null) tenants = tenants.where('tenant_id', '=', sink.tenant_id);
          await trx
            .insertInto('activity_sink_cursors')
            .columns(['sink_id', 'tenant_id', 'delivered_seq', 'reported_seq'])
            .expression(tenants)
            .execute();
        }
        return toSink(row);
      }),
    );
  }

  list(): Promise<StoredSink[]> {
    return guarded(this.#where, async () =>
      (
        await this.#db
          .selectFrom('activity_sinks')
          .selectAll()
          .orderBy('created_at')
          .orderBy('sink_id')
          .execute()
      ).map(toSink),
    );
  }

  get(sinkId: string): Promise<StoredSink | undefined> {
    return guarded(this.#where, async () => {
      const row = await this.#db
        .selectFrom('activity_sinks')
        .selectAll()
        .where('sink_id', '=', sinkId)
        .executeTakeFirst();
      return row && toSink(row);
    });
  }

  setState(sinkId: string, state: 'active' | 'paused'): Promise<boolean> {
    return guarded(this.#where, async () => {
      const result = await this.#db
        .updateTable('activity_sinks')
        .set({
          state,
          next_attempt_at: sql`now()`,
          ...(state === 'active' ? { attempts: 0, failing_since: null } : {}),
        })
        .where('sink_id', '=', sinkId)
        .executeTakeFirst();
      return result.numUpdatedRows > 0n;
    });
  }

  remove(sinkId: string): Promise<boolean> {
    return guarded(this.#where, async () => {
      const result = await this.#db
        .deleteFrom('activity_sinks')
        .where('sink_id', '=', sinkId)
        .executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  cursors(sinkId: string): Promise<SinkCursor[]> {
    return guarded(this.#where, async () => {
      const sink = await this.#db
        .selectFrom('activity_sinks')
        .select('tenant_id')
        .where('sink_id', '=', sinkId)
        .executeTakeFirst();
      if (!sink) return [];
      const rows = await sql<{
        tenant_id: string;
        delivered_seq: string | number;
        delivered_at: Date | null;
        skipped: string | number;
        last_seq: string | number;
        oldest_waiting_at: Date | null;
      }>`
        select t.tenant_id, coalesce(c.delivered_seq, 0) as delivered_seq, c.delivered_at,
               coalesce(c.skipped, 0) as skipped, t.last_seq,
               (select e.created_at from activity_events e
                 where e.tenant_id = t.tenant_id and e.seq > coalesce(c.delivered_seq, 0)
                 order by e.seq limit 1) as oldest_waiting_at
        from activity_tenants t
        left join activity_sink_cursors c on c.sink_id = ${sinkId} and c.tenant_id = t.tenant_id
        where ${sink.tenant_id === null ? sql`true` : sql`t.tenant_id = ${sink.tenant_id}`}
        order by t.tenant_id`.execute(this.#db);
      return rows.rows.map((row) => ({
        tenant_id: row.tenant_id,
        delivered_seq: Number(row.delivered_seq),
        delivered_at: row.delivered_at && new Date(row.delivered_at).toISOString(),
        skipped: Number(row.skipped),
        last_seq: Number(row.last_seq),
        oldest_waiting_at: row.oldest_waiting_at && new Date(row.oldest_waiting_at).toISOString(),
      }));
    });
  }

  due(): Promise<string[]> {
    return guarded(this.#where, async () => {
      // Only sinks with something waiting: an idle sink costs no claim, however many there are.
      const { rows } = await sql<{ sink_id: string }>`
        select s.sink_id from activity_sinks s
        where s.state in ('active', 'failing') and s.next_attempt_at <= now()
          and exists (
            select 1 from activity_tenants t
            left join activity_sink_cursors c on c.sink_id = s.sink_id and c.tenant_id = t.tenant_id
            where (s.tenant_id is null or t.tenant_id = s.tenant_id)
              and t.last_seq > coalesce(c.delivered_seq, 0))
        order by s.next_attempt_at`.execute(this.#db);
      return rows.map((row) => row.sink_id);
    });
  }

  lag(): Promise<{ events: number; seconds: number }> {
    return guarded(this.#where, async () => {
      const { rows } = await sql<{ events: string | number; seconds: string | number }>`
        with behind as (
          select s.sink_id, t.tenant_id, t.last_seq - coalesce(c.delivered_seq, 0) as events,
                 coalesce(c.delivered_seq, 0) as delivered_seq
          from activity_sinks s
          join activity_tenants t on s.tenant_id is null or t.tenant_id = s.tenant_id
          left join activity_sink_cursors c on c.sink_id = s.sink_id and c.tenant_id = t.tenant_id
          where s.state <> 'paused' and t.last_seq > coalesce(c.delivered_seq, 0)
        ), per_sink as (
          select sink_id, sum(events) as events,
                 max(extract(epoch from now() - (
                   select e.created_at from activity_events e
                   where e.tenant_id = behind.tenant_id and e.seq > behind.delivered_seq
                   order by e.seq limit 1))) as seconds
          from behind group by sink_id
        )
        select coalesce(max(events), 0) as events, coalesce(max(seconds), 0) as seconds from per_sink`.execute(
        this.#db,
      );
      return { events: Number(rows[0]?.events ?? 0), seconds: Number(rows[0]?.seconds ?? 0) };
    });
  }

  deliver(
    sinkId: string,
    maxEvents: number,
    send: (sink: StoredSink, batch: SinkBatch) => Promise<DeliveryOutcome>,
  ): Promise<DeliveryAttempt> {
    const attempt = (db: Kysely<StoreSchema> | Transaction<StoreSchema>) =>
      this.#attempt(db, sinkId, maxEvents, send);
    return guarded(this.#where, () =>
      this.#lockSinks ? this.#db.transaction().execute(async (trx) => attempt(trx)) : attempt(this.#db),
    );
  }

  async #attempt(
    db: Kysely<StoreSchema> | Transaction<StoreSchema>,
    sinkId: string,
    maxEvents: number,
    send: (sink: StoredSink, batch: SinkBatch) => Promise<DeliveryOutcome>,
  ): Promise<DeliveryAttempt> {
    if (this.#lockSinks) {
      const { rows } = await sql<{ claimed: boolean }>`
        select pg_try_advisory_xact_lock(${sinkLockClass}, hashtext(${sinkId})) as claimed`.execute(db);
      if (rows[0]?.claimed !== true) return { kind: 'busy' };
    }
    const row = await db
      .selectFrom('activity_sinks')
      .selectAll()
      .where('sink_id', '=', sinkId)
      .where('state', 'in', ['active', 'failing'])
      .where('next_attempt_at', '<=', sql<Date>`now()`)
      .executeTakeFirst();
    if (!row) return { kind: 'busy' };
    const sink = toSink(row);
    const batch = await this.#nextBatch(db, sink, maxEvents);
    if (!batch) return { kind: 'idle' };
    if (batch.events.length === 0) {
      // Every seq read is purged or left out: counted, and reported by the next POST.
      await this.#advance(db, sinkId, batch, { reported: false });
      return { kind: 'accounted', sink, batch };
    }
    const outcome = await send(sink, batch);
    if (outcome.delivered) await this.#advance(db, sinkId, batch, { reported: true });
    else await this.#failed(db, sinkId, batch, outcome);
    return { kind: 'sent', sink, batch, outcome };
  }

  /** The next batch of the tenant of the sink least recently delivered, or undefined when none is waiting. */
  async #nextBatch(
    db: Kysely<StoreSchema> | Transaction<StoreSchema>,
    sink: StoredSink,
    maxEvents: number,
  ): Promise<SinkBatch | undefined> {
    const { rows } = await sql<{
      tenant_id: string;
      delivered_seq: string | number;
      reported_seq: string | number;
      unreported_skipped: string | number;
      unreported_filtered: string | number;
      retry_through: string | number | null;
      last_seq: string | number;
    }>`
      select t.tenant_id, coalesce(c.delivered_seq, 0) as delivered_seq, coalesce(c.reported_seq, 0) as reported_seq,
             coalesce(c.unreported_skipped, 0) as unreported_skipped,
             coalesce(c.unreported_filtered, 0) as unreported_filtered, c.retry_through, t.last_seq
      from activity_tenants t
      left join activity_sink_cursors c on c.sink_id = ${sink.sink_id} and c.tenant_id = t.tenant_id
      where t.last_seq > coalesce(c.delivered_seq, 0)
        and ${sink.tenant_id === null ? sql`true` : sql`t.tenant_id = ${sink.tenant_id}`}
      order by c.delivered_at nulls first, t.tenant_id
      limit 1`.execute(db);
    const pending = rows[0];
    if (!pending) return undefined;
    const afterSeq = Number(pending.delivered_seq);
    // A range the receiver did not acknowledge is sent again as it was, under its id.
    const retryThrough = pending.retry_through === null ? undefined : Number(pending.retry_through);
    const filtered = sink.actions !== null || sink.prefixes !== null;
    let events = db
      .selectFrom('activity_events')
      .select(pageColumns)
      .where('tenant_id', '=', pending.tenant_id)
      .where('seq', '>', afterSeq);
    if (retryThrough !== undefined) events = events.where('seq', '<=', retryThrough);
    if (filtered) {
      const { actions, prefixes } = sink;
      events = events.where((eb) =>
        eb.or([
          ...(actions && actions.length > 0 ? [eb('action', 'in', actions)] : []),
          ...(prefixes ?? []).map((prefix) => eb(sql<boolean>`starts_with(action, ${prefix})`, '=', true)),
        ]),
      );
    }
    const read = (await events.orderBy('seq').limit(maxEvents).execute()).map(toActivityEvent);
    // A full batch ends at its last event; a shorter one read all there was, so the seqs
    // up to the tenant's newest that it lacks are gone (purged) or left out by the
    // sink's filter, and it accounts for them.
    const lastSeq = retryThrough ?? Number(pending.last_seq);
    const throughSeq =
      read.length === maxEvents ? (read.at(-1)?.seq ?? lastSeq) : Math.max(read.at(-1)?.seq ?? 0, lastSeq);
    // Without a filter, a seq the batch lacks is gone; with one, the rows still there say
    // how many of the missing were left out rather than purged.
    const stored = filtered
      ? Number(
          (
            await db
              .selectFrom('activity_events')
              .select((eb) => eb.fn.countAll().as('rows'))
              .where('tenant_id', '=', pending.tenant_id)
              .where('seq', '>', afterSeq)
              .where('seq', '<=', throughSeq)
              .executeTakeFirst()
          )?.rows ?? 0,
        )
      : read.length;
    const checkpoint = await db
      .selectFrom('activity_checkpoints')
      .select('note')
      .where('tenant_id', '=', pending.tenant_id)
      .orderBy('tree_size', 'desc')
      .limit(1)
      .executeTakeFirst();
    const newlySkipped = throughSeq - afterSeq - stored;
    return {
      tenantId: pending.tenant_id,
      afterSeq,
      throughSeq,
      events: read,
      fromSeq: Number(pending.reported_seq) + 1,
      skipped: Number(pending.unreported_skipped) + newlySkipped,
      filtered: Number(pending.unreported_filtered) + stored - read.length,
      newlySkipped,
      checkpoint: checkpoint?.note ?? null,
    };
  }

  /**
   * The cursor moves to the batch's end, only from where the batch began. `reported`:
   * the receiver acknowledged the range; else its seqs wait to be reported by the next POST.
   */
  async #advance(
    db: Kysely<StoreSchema> | Transaction<StoreSchema>,
    sinkId: string,
    batch: SinkBatch,
    { reported }: { reported: boolean },
  ) {
    const reportedSeq = reported ? batch.throughSeq : batch.fromSeq - 1;
    const unreportedSkipped = reported ? 0 : batch.skipped;
    const unreportedFiltered = reported ? 0 : batch.filtered;
    await sql`
      insert into activity_sink_cursors as c (sink_id, tenant_id, delivered_seq, reported_seq,
        unreported_skipped, unreported_filtered, retry_through, delivered_at, skipped)
      select ${sinkId}, ${batch.tenantId}, ${batch.throughSeq}, ${reportedSeq}, ${unreportedSkipped},
        ${unreportedFiltered}, null, now(), ${batch.newlySkipped}
      where exists (select 1 from activity_sinks where sink_id = ${sinkId})
      on conflict (sink_id, tenant_id) do update
        set delivered_seq = excluded.delivered_seq, reported_seq = excluded.reported_seq,
            unreported_skipped = excluded.unreported_skipped,
            unreported_filtered = excluded.unreported_filtered, retry_through = null,
            delivered_at = excluded.delivered_at, skipped = c.skipped + excluded.skipped
        where c.delivered_seq = ${batch.afterSeq}`.execute(db);
    if (!reported) return;
    // A pause or a suspension made meanwhile stands.
    await db
      .updateTable('activity_sinks')
      .set({
        state: sql`case when state = 'failing' then 'active' else state end`,
        attempts: 0,
        failing_since: null,
        last_success_at: sql`now()`,
      })
      .where('sink_id', '=', sinkId)
      .execute();
  }

  async #failed(
    db: Kysely<StoreSchema> | Transaction<StoreSchema>,
    sinkId: string,
    batch: SinkBatch,
    outcome: Extract<DeliveryOutcome, { delivered: false }>,
  ) {
    // The retry sends this range again, however many events come after it meanwhile.
    await sql`
      insert into activity_sink_cursors as c (sink_id, tenant_id, delivered_seq, reported_seq, retry_through)
      select ${sinkId}, ${batch.tenantId}, ${batch.afterSeq}, ${batch.fromSeq - 1}, ${batch.throughSeq}
      where exists (select 1 from activity_sinks where sink_id = ${sinkId})
      on conflict (sink_id, tenant_id) do update set retry_through = excluded.retry_through
        where c.delivered_seq = ${batch.afterSeq}`.execute(db);
    const failedState = outcome.suspend ? 'suspended' : 'failing';
    await db
      .updateTable('activity_sinks')
      .set({
        state: sql`case when state in ('active', 'failing') then ${failedState} else state end`,
        attempts: sql`attempts + 1`,
        failing_since: sql`coalesce(failing_since, now())`,
        last_error: outcome.error,
        last_error_at: sql`now()`,
        next_attempt_at: outcome.retryAt,
      })
      .where('sink_id', '=', sinkId)
      .execute();
  }
}

function toSink(row: Selectable<SinkRow>): StoredSink {
  const time = (value: Date | null) => (value === null ? null : new Date(value).toISOString());
  return {
    sink_id: row.sink_id,
    tenant_id: row.tenant_id,
    url: row.url,
    payload: row.payload as SinkPayload,
    actions: row.actions,
    prefixes: row.prefixes,
    headers: parsedJson(row.headers),
    secret: parsedJson(row.secret) as StoredSink['secret'],
    state: row.state as SinkState,
    created_at: new Date(row.created_at).toISOString(),
    next_attempt_at: new Date(row.next_attempt_at).toISOString(),
    attempts: row.attempts,
    failing_since: time(row.failing_since),
    last_success_at: time(row.last_success_at),
    last_error: row.last_error,
    last_error_at: time(row.last_error_at),
  };
}

/** jsonb arrives parsed from pg and PGlite alike; a string is parsed here, to be sure. */
function parsedJson<T>(value: T | string | null): T | null {
  return typeof value === 'string' ? (JSON.parse(value) as T) : value;
}
