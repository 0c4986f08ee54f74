import type { NewActivityEvent } from '../../domain/event.js';
import { metadataJson } from '../../domain/event-json.js';
import { eventDigest } from '../../integrity/leaf.js';
import { type AppendRow, contractTimeSql } from './rows.js';

/** A statement's text and its values, as a StatementRunner sends them. */
export interface Statement {
  text: string;
  values: unknown[];
}

/**
 * The row of appendOneStatement, when it stored the event: only what the event lacked,
 * the time already in the contract's text, so that no row costs a Date in Node.
 */
export interface OneEventRow {
  event_seq: string | number;
  event_created_at: string;
}

/**
 * appendNewStatement (append.ts) for one event, the shape of every `record` that waits
 * alone: its fields as parameters of a text built once, not a JSON array for the
 * database to expand. Cheaper in Node and in PostgreSQL; on a single writer it took a
 * third off what a record costs above a raw INSERT. Like appendNewStatement, it skips
 * an event whose tenant has no head row yet (making one, unless `skipLocked`), or with
 * `skipLocked` whose head another transaction holds: no row comes back.
 */
export function appendOneStatement(
  event: NewActivityEvent,
  { createdAt, skipLocked }: { createdAt?: Date | undefined; skipLocked: boolean },
  notifyChannel: string | undefined,
): Statement {
  const values: unknown[] = [
    event.tenant_id,
    createdAt ?? null,
    eventDigest(event).toString('hex'),
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
    metadataJson(event.metadata),
  ];
  const texts = skipLocked ? unlockedTexts : waitingTexts;
  if (notifyChannel === undefined) return { text: texts.plain, values };
  values.push(notifyChannel);
  return { text: texts.notifying, values };
}

/** The rows of appendOneStatement for `event`, as those of the statements of several events. */
export function oneEventRows(event: NewActivityEvent, rows: readonly OneEventRow[]): AppendRow[] {
  return rows.map((row) => ({
    event_id: event.id,
    event_seq: row.event_seq,
    event_created_at: row.event_created_at,
    duplicate: false,
    stored: null,
  }));
}

interface OneEventTexts {
  plain: string;
  notifying: string;
}

/**
 * The statement's texts: $1 the tenant, $2 the time to store (or null: the database's
 * clock), $3 the digest in hex, then the event's fields from $4, its id first; a
 * channel to NOTIFY after them. `head` advances the head row in one update; the
 * insert stores the event with its leaf hash (migrations/0004).
 */
function oneEventTexts(head: string): OneEventTexts {
  const field = (offset: number) => `$${4 + offset}`;
  const body = `with ${head},
  inserted as (
    insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
      status, source, request_id, ip_hash, user_agent, metadata, created_at, leaf_hash)
    select $1, h.last_seq, ${field(0)}::uuid, ${[1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map(field).join(', ')},
      ${field(11)}::jsonb, h.last_created_at, activity_leaf_hash(decode($3, 'hex'), h.last_seq, h.last_created_at)
    from head h where h.last_seq > 0
    returning seq, created_at
  )
  select seq as event_seq, ${contractTimeSql('created_at')} as event_created_at`;
  return {
    plain: `${body} from inserted`,
    notifying: `${body},
    pg_notify(${field(12)}, json_build_array($1::text, seq)::text) as notified
  from inserted`,
  };
}

/**
 * Upserts the head. A tenant without one gets an empty head row, and the event is not
 * inserted (no row comes back: appendGenerated goes again), so that the common case
 * is one update of the head row.
 */
const waitingTexts = oneEventTexts(`head as (
    insert into activity_tenants as t (tenant_id, last_created_at)
    values ($1, coalesce($2::timestamptz, clock_timestamp()))
    on conflict (tenant_id) do update
      set last_seq = t.last_seq + 1,
        last_created_at = activity_next_time(t.last_created_at, excluded.last_created_at)
    returning last_seq, last_created_at
  )`);

/** Advances the head only if no other transaction holds it; a tenant with none is skipped. */
const unlockedTexts = oneEventTexts(`clock as (select coalesce($2::timestamptz, clock_timestamp()) as now),
  head as (
    update activity_tenants t
    set last_seq = t.last_seq + 1,
      last_created_at = activity_next_time(t.last_created_at, c.now)
    from clock c
    where t.tenant_id = (select tenant_id from activity_tenants where tenant_id = $1 for update skip locked)
    returning t.last_seq, t.last_created_at
  )`);
