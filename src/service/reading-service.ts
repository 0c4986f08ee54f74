import { z } from 'zod';
import type { ActivityRepository, EventFilter, ExportRequest } from '../domain/activity-repository.js';
import { ActivityError } from '../domain/errors.js';
import type { ActivityEvent } from '../domain/event.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import {
  type ParsedQueryInput,
  queryFilterShape,
  queryInputSchema,
  resolveTimeInput,
  tenantIdSchema,
} from '../domain/inputs.js';
import type { DerivedKeys } from '../privacy/keys.js';
import type { AuditActor, AuditTrail } from './audit-trail.js';
import { type CursorScope, decodeCursor, encodeCursor } from './cursor.js';

export interface QueryPage {
  data: ActivityEvent[];
  next_cursor: string | null;
}

const streamPageSize = 1000;

/**
 * Reading as a use case: pages with cursors, whole exports, and the filters of a live
 * stream. Each page or listing is recorded in the tenant's log as
 * `activity.events.read`, by `actor`, once it has been read.
 */
export class ReadingService {
  readonly #repository: ActivityRepository;
  readonly #keys: DerivedKeys;
  readonly #clock: () => Date;
  readonly #audit: AuditTrail;

  constructor(options: {
    repository: ActivityRepository;
    keys: DerivedKeys;
    audit: AuditTrail;
    clock?: (() => Date) | undefined;
  }) {
    this.#repository = options.repository;
    this.#keys = options.keys;
    this.#audit = options.audit;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** One page of a tenant's events, newest first, with the cursor of the next page. */
  async query(tenantId: string, input: unknown, actor: AuditActor): Promise<QueryPage> {
    const parsed = parseQueryInput(input);
    const { filter, page } = await this.#page(tenantId, parsed);
    this.#audit.eventsRead(actor, tenantId, {
      kind: 'page',
      filter,
      cursor: parsed.cursor !== undefined,
      returned: page.data.length,
    });
    return page;
  }

  /**
   * Where a live stream starts (`tail -n N`): the last `lines` matching events, oldest
   * first, and the seq after which the stream goes on. Part of the stream, which
   * records itself: not recorded as a read.
   */
  async backlog(
    tenantId: string,
    filters: unknown,
    lines: number,
  ): Promise<{ events: ActivityEvent[]; afterSeq: number }> {
    if (lines > 0) {
      const { page } = await this.#page(tenantId, parseQueryInput({ ...(filters as object), limit: lines }));
      const events = page.data.reverse();
      return { events, afterSeq: events.at(-1)?.seq ?? 0 };
    }
    const [newest] = await this.#repository.page(tenantId, {}, { limit: 1 });
    return { events: [], afterSeq: newest?.seq ?? 0 };
  }

  async #page(tenantId: string, parsed: ParsedQueryInput): Promise<{ filter: EventFilter; page: QueryPage }> {
    const { filter, scopeOf, position } = this.#resolveQuery(tenantId, parsed);
    const rows = await this.#repository.page(tenantId, filter, {
      ...(position.beforeSeq === undefined ? {} : { beforeSeq: position.beforeSeq }),
      limit: parsed.limit + 1,
    });
    const data = rows.slice(0, parsed.limit);
    const last = data.at(-1);
    const next_cursor =
      rows.length > parsed.limit && last
        ? encodeCursor(
            {
              beforeSeq: last.seq,
              sinceMs: filter.since?.getTime() ?? null,
              untilMs: filter.until?.getTime() ?? null,
            },
            scopeOf(),
            this.#keys.cursor,
          )
        : null;
    return { filter, page: { data, next_cursor } };
  }

  /**
   * Every matching event, newest first, read page by page: memory stays constant.
   * Recorded when the caller stops reading, with how many it read.
   */
  async *queryAll(tenantId: string, input: unknown, actor: AuditActor): AsyncGenerator<ActivityEvent> {
    const parsed = parseQueryInput(input);
    const { filter, position } = this.#resolveQuery(tenantId, parsed);
    const fetchPage = (beforeSeq: number | undefined) => {
      const page = this.#repository.page(tenantId, filter, {
        ...(beforeSeq === undefined ? {} : { beforeSeq }),
        limit: streamPageSize,
      });
      // Awaited on the next turn; a reader that stops early must not leave it unhandled.
      page.catch(() => {});
      return page;
    };
    // The next page is read while the caller consumes this one: the database and the
    // caller work at the same time, and at most two pages are held.
    let next: Promise<ActivityEvent[]> | undefined = fetchPage(position.beforeSeq);
    let returned = 0;
    let failed = false;
    try {
      while (next) {
        const rows: ActivityEvent[] = await next;
        const last = rows.at(-1);
        next = last && rows.length === streamPageSize ? fetchPage(last.seq) : undefined;
        for (const row of rows) {
          returned++;
          yield row;
        }
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      // Read whole, or as far as the reader went; a read that failed is not one.
      if (!failed) {
        const cursor = parsed.cursor !== undefined;
        this.#audit.eventsRead(actor, tenantId, { kind: 'all', filter, cursor, returned });
      }
    }
  }

  /**
   * What `queryAll` yields, as the contract's JSON text written by the database: one
   * event per line (NDJSON), in chunks that need not end at a line. An export costs
   * Node almost nothing per event; metadata keeps the database's spacing (`{"a": 1}`).
   */
  queryAllJson(tenantId: string, input: unknown, actor: AuditActor): AsyncIterable<Uint8Array> {
    const parsed = parseQueryInput(input);
    const { filter, position } = this.#resolveQuery(tenantId, parsed);
    return this.#countedLines(this.#repository.exportJson(tenantId, filter, position), (returned) =>
      this.#audit.eventsRead(actor, tenantId, {
        kind: 'all',
        filter,
        cursor: parsed.cursor !== undefined,
        returned,
      }),
    );
  }

  /**
   * The chunks of JSON lines as they are, counting the lines; `done` hears the count
   * when the reader stops, unless reading failed.
   */
  async *#countedLines(chunks: AsyncIterable<Uint8Array>, done: (lines: number) => void) {
    let lines = 0;
    let failed = false;
    try {
      for await (const chunk of chunks) {
        for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) lines++;
        yield chunk;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      if (!failed) done(lines);
    }
  }

  /** The filter of a live stream: the query filters, with relative times resolved now. */
  streamFilter(tenantId: string, input: unknown): EventFilter {
    const parsed = streamFilterSchema.safeParse(input);
    if (!parsed.success) {
      const issues = toFieldIssues(parsed.error);
      throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
    }
    return this.#resolveQuery(tenantId, { ...parsed.data, limit: 1 }).filter;
  }

  /** Resolves when the database answers. */
  ping(): Promise<void> {
    return this.#repository.ping();
  }

  #resolveQuery(tenantId: string, input: ParsedQueryInput) {
    assertTenantId(tenantId);
    // What a cursor is bound to; spelled out only for a page that has or gives one.
    let scope: CursorScope | undefined;
    const scopeOf = () => {
      scope ??= { tenantId, filterKey: filterKeyOf(input) };
      return scope;
    };
    const now = this.#clock();
    const cursor =
      input.cursor === undefined ? undefined : decodeCursor(input.cursor, scopeOf(), this.#keys.cursor);
    const since = cursor
      ? cursor.sinceMs
      : input.since === undefined
        ? null
        : resolveTimeInput('since', input.since, now).getTime();
    const until = cursor
      ? cursor.untilMs
      : input.until === undefined
        ? null
        : resolveTimeInput('until', input.until, now).getTime();
    // `*`: every event, whatever else is listed beside it.
    const actions = input.action?.includes('*') ? [] : input.action;
    const exact = actions?.filter((part) => !part.endsWith('.*'));
    const prefixes = actions?.filter((part) => part.endsWith('.*')).map((part) => part.slice(0, -1));
    // Without an action filter the tool's own events are left out; naming them (an
    // exact activity.* action or a prefix of them) is how they are read.
    const filter: EventFilter = {
      ...(input.action === undefined ? { withoutReserved: true } : {}),
      ...(exact && exact.length > 0 ? { actions: exact } : {}),
      ...(prefixes && prefixes.length > 0 ? { actionPrefixes: prefixes } : {}),
      ...(input.actor_id === undefined ? {} : { actorId: input.actor_id }),
      ...(input.object_type === undefined ? {} : { objectType: input.object_type }),
      ...(input.object_id === undefined ? {} : { objectId: input.object_id }),
      ...(input.request_id === undefined ? {} : { requestId: input.request_id }),
      ...(input.status === undefined ? {} : { status: input.status }),
      ...(since === null ? {} : { since: new Date(since) }),
      ...(until === null ? {} : { until: new Date(until) }),
    };
    const position: ExportRequest = cursor ? { beforeSeq: cursor.beforeSeq } : {};
    return { filter, scopeOf, position };
  }
}

function assertTenantId(tenantId: string) {
  const parsed = tenantIdSchema.safeParse(tenantId);
  if (!parsed.success) {
    throw new ActivityError('PARAMETER_INVALID', `tenant: ${parsed.error.issues[0]?.message ?? 'invalid'}`, {
      issues: [{ path: 'tenant_id', message: 'invalid' }],
    });
  }
}

function parseQueryInput(input: unknown): ParsedQueryInput {
  const parsed = queryInputSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issues = toFieldIssues(parsed.error);
  throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
}

const streamFilterSchema = z.strictObject(queryFilterShape);

const filterKeys = Object.keys(queryFilterShape) as (keyof typeof queryFilterShape)[];

/** A canonical string of the filters, which a cursor is bound to. */
function filterKeyOf(input: ParsedQueryInput): string {
  return JSON.stringify(
    filterKeys.map((key) => (key === 'action' ? [...(input.action ?? [])].sort() : (input[key] ?? null))),
  );
}
