import { type Command, Option } from 'commander';
import { eventStatuses } from '../domain/event.js';

/** The filter flags of `query` and `tail`, as given. */
export interface FilterOptions {
  action?: string;
  actorId?: string;
  objectType?: string;
  objectId?: string;
  requestId?: string;
  status?: string;
  since?: string;
  until?: string;
}

/** Flag name → query parameter (the names of the HTTP route). */
const filterParameters = {
  action: 'action',
  actorId: 'actor_id',
  objectType: 'object_type',
  objectId: 'object_id',
  requestId: 'request_id',
  status: 'status',
  since: 'since',
  until: 'until',
} as const satisfies Record<keyof FilterOptions, string>;

export function withFilterOptions(command: Command): Command {
  return command
    .option('--action <names>', 'exact names, ns.* prefixes, or a comma list of both')
    .option('--actor-id <id>', 'only this actor')
    .option('--object-type <type>', 'only this kind of object')
    .option('--object-id <id>', 'only this object')
    .option('--request-id <id>', 'only this correlation id')
    .addOption(new Option('--status <status>', 'only this outcome').choices(eventStatuses))
    .option('--since <time>', 'at or after TIME: RFC 3339, or an age like 15m, 24h, 7d')
    .option('--until <time>', 'before TIME: RFC 3339, or an age (--until 24h: before 24 hours ago)');
}

/** The given filters as query parameters, for the service or the HTTP API. */
export function toFilterParameters(options: FilterOptions): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (const [flag, parameter] of Object.entries(filterParameters)) {
    const value = options[flag as keyof FilterOptions];
    if (value !== undefined) parameters[parameter] = value;
  }
  return parameters;
}
