import { Chalk, type ChalkInstance } from 'chalk';
import { type ActivityEvent, type EventStatus, eventFields } from '../../domain/event.js';
import { type Column, type FitStep, fitTable } from './fit-table.js';
import { csvRow, escapeControl } from './text.js';

export function renderEventsCsvHeader(): string {
  return csvRow(eventFields);
}

export function renderEventCsv(event: ActivityEvent): string {
  return csvRow(eventFields.map((field) => event[field]));
}

export function renderEventNdjson(event: ActivityEvent): string {
  return `${JSON.stringify(event)}\n`;
}

/**
 * Turns NDJSON of events, in chunks split anywhere, into the elements of a JSON array.
 * JSON text holds no raw newline, so each one ends an event and becomes the comma
 * before the next; the last is dropped.
 */
export function createNdjsonToArrayElements(): (chunk: Uint8Array) => Uint8Array {
  let commaOwed = false;
  return (chunk) => {
    const endsLine = chunk.at(-1) === newline;
    const body = Buffer.from(endsLine ? chunk.subarray(0, -1) : chunk);
    for (let at = body.indexOf(newline); at !== -1; at = body.indexOf(newline, at + 1)) body[at] = comma;
    const elements = commaOwed && body.length > 0 ? Buffer.concat([commaBytes, body]) : body;
    if (body.length > 0 || endsLine) commaOwed = endsLine;
    return elements;
  };
}

const newline = 0x0a;
const comma = 0x2c;
const commaBytes = Buffer.of(comma);

/** The columns of the events table, and what goes first when a terminal is narrow. */
const eventColumns: Column[] = [
  { head: 'seq', min: 3 },
  { head: 'time', min: 24 },
  { head: 'action', min: 16 },
  { head: 'actor', min: 10 },
  { head: 'object', min: 10 },
  { head: 'status', min: 7 },
  { head: 'metadata', min: 16, max: 60 },
];
const narrowing: FitStep[] = [
  { shrink: ['metadata'] },
  { drop: 'object' },
  { drop: 'metadata' },
  { shrink: ['action', 'actor'] },
  { drop: 'actor' },
  { drop: 'status' },
];

/** A failure stands out; what is pending, less. */
const statusColors: Record<EventStatus, (paint: ChalkInstance) => (text: string) => string> = {
  success: (paint) => paint.green,
  failure: (paint) => paint.red,
  pending: (paint) => paint.yellow,
};

/** The namespace of an action in colour, the rest as is. */
function paintAction(paint: ChalkInstance, action: string): string {
  const dot = action.indexOf('.');
  return dot === -1 ? action : paint.cyan(action.slice(0, dot)) + action.slice(dot);
}

/**
 * A compact table for people: the fields that tell what happened, escaped. On a
 * terminal (`width`) it fits its columns; `wide` shows every column whole.
 */
export function renderEventsTable(
  events: readonly ActivityEvent[],
  {
    width,
    wide = false,
    paint = new Chalk({ level: 0 }),
  }: { width?: number | undefined; wide?: boolean; paint?: ChalkInstance } = {},
): string {
  const rows = events.map((event) => {
    const [seq, time, action, actor, object, status, metadata] = [
      String(event.seq),
      event.created_at,
      event.action,
      event.actor_id ? `${event.actor_type}:${event.actor_id}` : event.actor_type,
      event.object_type || event.object_id ? `${event.object_type ?? ''}:${event.object_id ?? ''}` : '',
      event.status,
      JSON.stringify(event.metadata),
    ].map(escapeControl) as [string, string, string, string, string, string, string];
    return [
      seq,
      paint.dim(time),
      paintAction(paint, action),
      actor,
      object,
      statusColors[event.status](paint)(status),
      paint.dim(metadata),
    ];
  });
  const columns = wide ? eventColumns.map(({ head, min }) => ({ head, min })) : eventColumns;
  return fitTable(columns, rows, wide ? undefined : width, narrowing);
}

/** Every field of one event, one `name  value` line each (a null shown as `-`). */
export function renderEventDetail(event: ActivityEvent): string {
  const width = Math.max(...eventFields.map((field) => field.length));
  return eventFields
    .map((field) => {
      const value = event[field];
      const text = value === null ? '-' : typeof value === 'object' ? JSON.stringify(value) : String(value);
      return `${field.padEnd(width)}  ${escapeControl(text)}\n`;
    })
    .join('');
}
