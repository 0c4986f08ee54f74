import { sql } from 'kysely';
import type { AppendedEvent } from '../../domain/activity-repository.js';
import {
  type ActivityEvent,
  type ActorType,
  type EventStatus,
  eventFields,
  type NewActivityEvent,
} from '../../domain/event.js';

/** The table's columns are named after the event's fields. */
const eventColumns = eventFields;

/** SQL for a time `column` in the contract's text (RFC 3339 UTC, milliseconds). */
export function contractTimeSql(column: string): string {
  return `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;
}

/**
 * What a page selects: the columns, with `created_at` already in the contract's text,
 * so that no row costs a Date in Node.
 */
export const pageColumns = [
  ...eventColumns.filter((column) => column !== 'created_at'),
  sql<string>`${sql.raw(contractTimeSql('created_at'))}`.as('created_at'),
] as const;

export type EventRow = Record<(typeof eventColumns)[number], unknown>;

/** A row of an append statement (append.ts, append-one.ts): one per event it stored or found stored. */
export interface AppendRow {
  event_id: string;
  event_seq: string | number;
  /** A Date, or the contract's text where the statement selected that. */
  event_created_at: Date | string;
  duplicate: boolean;
  /** The stored row of a duplicate. */
  stored: Record<string, unknown> | null;
}

/** Each input event as the append statement's rows say it was stored. */
export function toAppended(events: readonly NewActivityEvent[], rows: readonly AppendRow[]): AppendedEvent[] {
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

/**
 * A new event as stored, with the seq and time the database gave it; field by field,
 * not spread (see eventsJson in append.ts).
 */
export function toStoredEvent(event: NewActivityEvent, seq: unknown, createdAt: unknown): ActivityEvent {
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
