import type { ActivityEvent } from '../../domain/event.js';
import { escapeControl } from './text.js';

/** One event as one readable line, for `tail` on a terminal. */
export function renderEventLine(event: ActivityEvent): string {
  const actor = event.actor_id ? `${event.actor_type}:${event.actor_id}` : event.actor_type;
  const object =
    event.object_type || event.object_id ? ` on ${event.object_type ?? ''}:${event.object_id ?? ''}` : '';
  const metadata = Object.keys(event.metadata).length > 0 ? ` ${JSON.stringify(event.metadata)}` : '';
  return `${escapeControl(
    `${event.created_at} #${event.seq} ${event.action} ${event.status} by ${actor}${object}${metadata}`,
  )}\n`;
}
