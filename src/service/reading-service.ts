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
import { type CursorScope, decodeCursor, encodeCursor } from './cursor.js';

export interface QueryPage {
  data: ActivityEvent[];
  next_cursor: string | null;
}

const streamPageSize = 1000;

/** Reading as a use case: pages with cursors, whole exports, and the filters of a live stream. */
export class ReadingService {
  readonly #repository: ActivityRepository;
  readonly #keys: DerivedKeys;
  readonly #clock: () => Date;

  constructor(options: {
    repository: ActivityRepository;
    keys: DerivedKeys;
    clock?: (() => Date) | undefined;
  }) {
    this.#repository = options.repository;
    this.#keys = options.keys;
    this.#clock = options.clock ?? (() => new Date());
  }

  /** One page of a tenant's events, newest first, with the cursor of the next page. */
  async query(tenantId: string, input: unknown): Promise<QueryPage> {
    const parsed = parseQueryInput(input);
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
    return { data, next_cursor };
  }

  /** Every matching event, newest first, read page by page: memory stays constant. */
  async *queryAll(tenantId: string, input: unknown): AsyncGenerator<ActivityEvent> {
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
    while (next) {
      const rows: ActivityEvent[] = await next;
      const last = rows.at(-1);
      next = last && rows.length === streamPageSize ? fetchPage(last.seq) : undefined;
      yield* rows;
    }
  }

  /**
   * What `queryAll` yields, as the contract's JSON text written by the database: one
   * event per line (NDJSON), in chunks that need not end at a line. An export costs
   * Node almost nothing per event; metadata keeps the database's spacing (`{"a": 1}`).
   */
  queryAllJson(tenantId: string, input: unknown): AsyncIterable<Uint8Array> {
    const { filter, position } = this.#resolveQuery(tenantId, parseQueryInput(input));
    return this.#repository.exportJson(tenantId, filter, position);
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
    const exact = input.action?.filter((part) => !part.endsWith('.*'));
    const prefixes = input.action?.filter((part) => part.endsWith('.*')).map((part) => part.slice(0, -1));
    const filter: EventFilter = {
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
