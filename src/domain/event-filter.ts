import type { EventFilter } from './activity-repository.js';
import { type ActivityEvent, isReservedAction } from './event.js';

/** Whether an event matches a filter: the in-memory twin of the repository's SQL. */
export function matchesFilter(event: ActivityEvent, filter: EventFilter): boolean {
  const hasActionFilter = (filter.actions?.length ?? 0) + (filter.actionPrefixes?.length ?? 0) > 0;
  if (
    hasActionFilter &&
    !filter.actions?.includes(event.action) &&
    !filter.actionPrefixes?.some((prefix) => event.action.startsWith(prefix))
  ) {
    return false;
  }
  if (filter.withoutReserved && isReservedAction(event.action)) return false;
  if (filter.actorId !== undefined && event.actor_id !== filter.actorId) return false;
  if (filter.objectType !== undefined && event.object_type !== filter.objectType) return false;
  if (filter.objectId !== undefined && event.object_id !== filter.objectId) return false;
  if (filter.requestId !== undefined && event.request_id !== filter.requestId) return false;
  if (filter.status !== undefined && event.status !== filter.status) return false;
  const time = Date.parse(event.created_at);
  if (filter.since && time < filter.since.getTime()) return false;
  if (filter.until && time >= filter.until.getTime()) return false;
  return true;
}
