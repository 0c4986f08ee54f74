import type { ActivityEvent, EventStatus, NewActivityEvent } from './event.js';

/** Which events a query matches. Every field narrows; absent fields match all. */
export interface EventFilter {
  /** Exact action names. Together with `actionPrefixes`, an event matches either. */
  actions?: readonly string[];
  /** Prefixes ending in a dot: `auth.` or `auth.login.`. */
  actionPrefixes?: readonly string[];
  actorId?: string;
  objectType?: string;
  objectId?: string;
  requestId?: string;
  status?: EventStatus;
  /** created_at >= since */
  since?: Date;
  /** created_at < until */
  until?: Date;
  /** Leave out the tool's own `activity.*` events (what a read without an action filter does). */
  withoutReserved?: boolean;
}

export interface PageRequest {
  /** Only events with a lower seq (the keyset position of a newest-first page). */
  beforeSeq?: number;
  /** Only events with a higher seq (a stream catching up, oldest first). */
  afterSeq?: number;
  /** `desc` (default): newest first; `asc`: oldest first. */
  order?: 'asc' | 'desc';
  limit: number;
}

/** What an export reads: a page's position and order, without a limit. */
export type ExportRequest = Omit<PageRequest, 'limit'>;

export interface AppendOptions {
  /** Ids the service generated (UUIDv7): new by construction, so never looked up. */
  generatedIds?: ReadonlySet<string>;
  /**
   * The time to store instead of the database's clock, which the service always uses
   * so that no writer's clock decides an event's time. Tests place events in time
   * with it. Either way time never runs backwards within a tenant.
   */
  createdAt?: Date;
}

/** One tenant's events to append, as `append` takes them. */
export interface AppendRequest {
  tenantId: string;
  events: readonly NewActivityEvent[];
  options?: AppendOptions;
}

export interface AppendedEvent {
  event: ActivityEvent;
  /** True when an event with this id was already stored: it is returned as stored. */
  duplicate: boolean;
}

/** The storage port of the service. Implementations: src/store (PostgreSQL and PGlite). */
export interface ActivityRepository {
  /**
   * Appends events of one tenant under one lock of its head row: each new event gets
   * the next seq, in input order, and the database's time (or the tenant's latest
   * time if that is later, so time never runs backwards within a tenant). Ids must be
   * unique within the call; an id already stored comes back as a duplicate, except
   * those in `generatedIds`. Returns one entry per input, in input order.
   */
  append(
    tenantId: string,
    events: readonly NewActivityEvent[],
    options?: AppendOptions,
  ): Promise<AppendedEvent[]>;
  /**
   * Appends events whose ids the service generated (new by construction, so never
   * looked up), of any number of tenants, in one statement: each tenant's new events
   * get its next seqs in input order, as `append` gives them. Returns one entry per
   * input, in input order.
   */
  appendGenerated(
    events: readonly NewActivityEvent[],
    options?: Pick<AppendOptions, 'createdAt'>,
  ): Promise<AppendedEvent[]>;
  /**
   * appendGenerated that waits for no lock: the events of a tenant whose head row
   * another transaction holds, or that has none yet, are skipped (their entries
   * undefined), so that the caller can append them on their own and no tenant's lock
   * holds up another's events.
   */
  appendUnlocked(events: readonly NewActivityEvent[]): Promise<Array<AppendedEvent | undefined>>;
  /**
   * Appends the events of several tenants, each as `append` would, in one transaction:
   * all are stored or none. Returns one list per request, in request order.
   */
  appendAll(requests: readonly AppendRequest[]): Promise<AppendedEvent[][]>;
  /** Matching events in seq order: newest first unless `order` is `asc`. */
  page(tenantId: string, filter: EventFilter, request: PageRequest): Promise<ActivityEvent[]>;
  /**
   * Every event `page` would return for the filter and position, without a limit, as
   * the contract's JSON text written by the database: one event per line, each line
   * parsing to the event `page` returns (metadata keeps the database's spacing).
   * Streamed in chunks that need not end at a line; memory stays constant.
   */
  exportJson(tenantId: string, filter: EventFilter, request: ExportRequest): AsyncIterable<Uint8Array>;
  /** Resolves when the database answers and holds the schema. */
  ping(): Promise<void>;
  /** Tenants that have a head row, in id order, after `afterTenantId`. */
  tenants(afterTenantId: string | undefined, limit: number): Promise<string[]>;
}
