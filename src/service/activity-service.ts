import { v7 as uuidv7 } from 'uuid';
import { z } from 'zod';
import type {
  ActivityRepository,
  AppendedEvent,
  EventFilter,
  ExportRequest,
} from '../domain/activity-repository.js';
import { ActivityError, type ErrorCode, type FieldIssue, toActivityError } from '../domain/errors.js';
import { type ActivityEvent, fieldLimits, type NewActivityEvent } from '../domain/event.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import {
  type ParsedQueryInput,
  queryFilterShape,
  queryInputSchema,
  recordInputSchema,
  resolveTimeInput,
  tenantIdSchema,
} from '../domain/inputs.js';
import { metadataCapIssues } from '../privacy/caps.js';
import { hashIp, normalizeIp } from '../privacy/ip-hash.js';
import type { DerivedKeys } from '../privacy/keys.js';
import { identifierProblem, scrubMetadata, scrubText } from '../privacy/scrub.js';
import type { Registry } from '../registry/registry.js';
import { type CursorScope, decodeCursor, encodeCursor } from './cursor.js';
import { WriteCoalescer } from './write-coalescer.js';

/** Told what the service did; metrics and structured logs subscribe here. */
export interface ActivityObserver {
  recorded?(events: readonly ActivityEvent[], durationSeconds: number): void;
  recordFailed?(code: ErrorCode, count: number): void;
}

export interface ActivityServiceOptions {
  repository: ActivityRepository;
  registry: Registry;
  keys: DerivedKeys;
  observers?: readonly ActivityObserver[];
  /** Resolves relative times (`--since 24h`); an event's own time is the database's. */
  clock?: () => Date;
}

export interface QueryPage {
  data: ActivityEvent[];
  next_cursor: string | null;
}

export interface RecordManyReport {
  recorded: number;
  duplicates: number;
  rejected: RejectedItem[];
  /** All rejections; `rejected` keeps the first `maxRejectedKept`. */
  rejected_total: number;
  /**
   * Every line up to this one is accounted for: committed, a duplicate, rejected or
   * blank. After a failure, an import resumed from the next line stores nothing twice.
   */
  committed_through_line: number;
  /** Why the import stopped before the end of its input; the counts cover what committed. */
  failure?: ActivityError;
}

export interface RejectedItem {
  line: number;
  code: ErrorCode;
  message: string;
}

/** One item of a bulk import: a parsed value, or why its line could not be parsed. */
export type ImportItem = { line: number; value: unknown } | { line: number; error: ActivityError };

const importBatchSize = 1000;
const maxRejectedKept = 1000;
const streamPageSize = 1000;
/** At most this many concurrent `record`s go in one statement. */
const maxCoalescedWrites = 1000;
/** The coalescing key of records of any tenant whose ids the service generated; no tenant id can be `*`. */
const anyTenant = '*';

/** The one core behind the CLI, the HTTP server and the library. */
export class ActivityService {
  readonly registry: Registry;
  readonly #repository: ActivityRepository;
  readonly #keys: DerivedKeys;
  readonly #observers: readonly ActivityObserver[];
  readonly #clock: () => Date;
  /** Prepared events whose id the service generated: new by construction, never looked up. */
  readonly #generatedIds = new WeakSet<NewActivityEvent>();
  /**
   * Concurrent `record`s, written together (see WriteCoalescer): those whose id the
   * service generated, of every tenant, under `anyTenant`, in a statement that waits for
   * no lock (see #appendWithoutWaiting); those with an id the caller supplied, which
   * must be looked up under the tenant's lock, and those handed on by it, under their
   * tenant.
   */
  readonly #singleWrites = new WriteCoalescer<NewActivityEvent, AppendedEvent>(
    (key, events) => (key === anyTenant ? this.#appendWithoutWaiting(events) : this.#append(events)),
    {
      maxBatch: maxCoalescedWrites,
      // A tenant's batch that waited out the lock timeout leaves its queue to wait for
      // the same lock in turn: they fail with it, so that no record waits twice as long.
      failsQueued: (error) => error instanceof ActivityError && error.code === 'DB_TIMEOUT',
    },
  );

  constructor(options: ActivityServiceOptions) {
    this.registry = options.registry;
    this.#repository = options.repository;
    this.#keys = options.keys;
    this.#observers = options.observers ?? [];
    this.#clock = options.clock ?? (() => new Date());
  }

  /**
   * Validates one input (schema, caps, action registry), scrubs secrets and hashes
   * the IP: what `record` would store, or an ActivityError naming the field.
   */
  prepare(input: unknown): NewActivityEvent {
    const parsed = recordInputSchema.safeParse(input);
    if (!parsed.success) throw validationError(toFieldIssues(parsed.error));
    const fields = parsed.data;
    const { ip, metadata } = fields;
    this.registry.assertKnown(fields.action);
    const identifierIssues = secretIdentifierIssues(fields);
    if (identifierIssues.length > 0) throw validationError(identifierIssues);
    const capIssues = metadataCapIssues(metadata);
    if (capIssues.length > 0) throw validationError(capIssues);
    const scrubbed = scrubMetadata(
      this.#validateMetadata(fields.action, metadata as Record<string, unknown>),
    );
    if (scrubbed.issues.length > 0) throw validationError(scrubbed.issues);
    const scrubbedMetadata = scrubbed.value as Record<string, unknown>;
    // "[REDACTED]" or "[IP]" may be longer than what it replaced: the caps hold for
    // what is stored. Unchanged, the metadata was checked above.
    const scrubbedIssues = scrubbed.changed ? metadataCapIssues(scrubbedMetadata) : [];
    if (scrubbedIssues.length > 0) {
      throw validationError(
        scrubbedIssues.map((issue) => ({
          path: issue.path,
          message: `${issue.message} once secrets and IP addresses are replaced`,
        })),
      );
    }
    const userAgent = fields.user_agent === null ? null : scrubText(fields.user_agent);
    if (userAgent !== null && userAgent.length > fieldLimits.userAgent) {
      throw validationError([
        { path: 'user_agent', message: 'is over its cap once IP addresses are replaced' },
      ]);
    }
    let ipHash: string | null = null;
    if (ip !== null) {
      const normalized = normalizeIp(ip);
      if (normalized === undefined) throw validationError([{ path: 'ip', message: 'is not an IP address' }]);
      ipHash = hashIp(normalized, this.#keys.ipHash);
    }
    // Field by field, not spread: a spread made the event a slow dictionary object.
    const event: NewActivityEvent = {
      id: fields.id ?? uuidv7(),
      tenant_id: fields.tenant_id,
      action: fields.action,
      actor_type: fields.actor_type,
      actor_id: fields.actor_id,
      object_type: fields.object_type,
      object_id: fields.object_id,
      status: fields.status,
      source: fields.source,
      request_id: fields.request_id,
      ip_hash: ipHash,
      user_agent: userAgent,
      metadata: scrubbedMetadata,
    };
    if (fields.id === undefined) this.#generatedIds.add(event);
    return event;
  }

  /** Records one event and returns it as stored (a retry with the same id returns the first). */
  async record(input: unknown): Promise<ActivityEvent> {
    let prepared: NewActivityEvent;
    try {
      prepared = this.prepare(input);
    } catch (error) {
      this.#notifyFailure(toActivityError(error).code, 1);
      throw error;
    }
    const key = this.#generatedIds.has(prepared) ? anyTenant : prepared.tenant_id;
    return (await this.#singleWrites.add(key, prepared)).event;
  }

  /**
   * Records events of one tenant all-or-nothing: if any is invalid, nothing is stored
   * and the error lists each invalid index (`[3].metadata.reason: …`).
   */
  async recordBatch(inputs: readonly unknown[]): Promise<ActivityEvent[]> {
    const prepared = this.#prepareAll(inputs);
    const tenants = new Set(prepared.map((event) => event.tenant_id));
    if (tenants.size > 1) {
      throw new ActivityError('VALIDATION_FAILED', 'a batch holds the events of one tenant only', {
        issues: [{ path: 'tenant_id', message: 'differs within the batch' }],
      });
    }
    const appended = await this.#append(prepared);
    return appended.map((entry) => entry.event);
  }

  /**
   * Records a stream of items (an NDJSON import): valid items are stored in batches,
   * each batch in one transaction whatever its tenants, in input order; each invalid
   * item is reported with its line number and reason, and `onRejected` hears of it at
   * once. A failure (the database gone) stops the import and is returned in the
   * report, with the line through which everything committed.
   */
  async recordMany(
    items: AsyncIterable<ImportItem>,
    onRejected?: (item: RejectedItem) => void,
  ): Promise<RecordManyReport> {
    const report: RecordManyReport = {
      recorded: 0,
      duplicates: 0,
      rejected: [],
      rejected_total: 0,
      committed_through_line: 0,
    };
    const reject = (line: number, error: unknown) => {
      const activityError = toActivityError(error);
      const item = { line, code: activityError.code, message: activityError.message };
      report.rejected_total++;
      if (report.rejected.length < maxRejectedKept) report.rejected.push(item);
      this.#notifyFailure(activityError.code, 1);
      onRejected?.(item);
    };
    let batch: NewActivityEvent[] = [];
    let lastLine = 0;
    // One batch is stored while the next is prepared, so parsing and the database work
    // at once; batches still commit in input order.
    let storing: Promise<void> = Promise.resolve();
    const flush = async () => {
      const events = batch;
      const throughLine = lastLine;
      batch = [];
      await storing;
      storing = (async () => {
        for (const entry of (await this.#appendGroups(groupByTenant(events))).flat()) {
          if (entry.duplicate) report.duplicates++;
          else report.recorded++;
        }
        report.committed_through_line = throughLine;
      })();
      // A failure is thrown by the next await of `storing`, not reported as unhandled.
      storing.catch(() => {});
    };
    try {
      for await (const item of items) {
        lastLine = item.line;
        if ('error' in item) {
          reject(item.line, item.error);
          continue;
        }
        try {
          batch.push(this.prepare(item.value));
        } catch (error) {
          reject(item.line, error);
          continue;
        }
        if (batch.length >= importBatchSize) await flush();
      }
      await flush();
      await storing;
    } catch (error) {
      report.failure = toActivityError(error);
    }
    return report;
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

  /**
   * Stores records of any tenants, whose ids the service generated, in one statement
   * that waits for no lock. Those of a tenant whose head row is held elsewhere (a long
   * transaction, another process's write) are handed on to be written under their
   * tenant, where they wait for it alone: one tenant's lock holds up no other tenant.
   * Should the database refuse the statement, each tenant's records are written on
   * their own too, so that one tenant's failure is not the others'.
   */
  async #appendWithoutWaiting(
    events: readonly NewActivityEvent[],
  ): Promise<Array<AppendedEvent | Promise<AppendedEvent>>> {
    const started = performance.now();
    const handOn = (event: NewActivityEvent) => this.#singleWrites.add(event.tenant_id, event);
    let appended: Array<AppendedEvent | undefined>;
    try {
      appended = await this.#repository.appendUnlocked(events);
    } catch (error) {
      // Only a refusal is sure to have stored nothing. Unreachable, the statement may
      // have committed; timed out, the database is struggling; anything else is a fault
      // past the database: writing the events again could store them twice, or pile on.
      const refused =
        error instanceof ActivityError && error.code !== 'DB_UNAVAILABLE' && error.code !== 'DB_TIMEOUT';
      if (!refused) {
        this.#notifyFailure(toActivityError(error).code, events.length);
        throw error;
      }
      return events.map(handOn);
    }
    this.#tellRecorded(
      appended.filter((entry) => entry !== undefined),
      started,
    );
    return events.map((event, index) => appended[index] ?? handOn(event));
  }

  /** Stores events of one tenant (see #appendGroups). */
  async #append(events: readonly NewActivityEvent[]): Promise<AppendedEvent[]> {
    if (events.length === 0) return [];
    return (await this.#appendGroups([events]))[0] as AppendedEvent[];
  }

  /** Stores groups of events, one tenant each and none empty, all-or-nothing; counts a failure. */
  async #appendGroups(groups: readonly (readonly NewActivityEvent[])[]): Promise<AppendedEvent[][]> {
    try {
      return await this.#store(groups);
    } catch (error) {
      this.#notifyFailure(toActivityError(error).code, groups.flat().length);
      throw error;
    }
  }

  /**
   * Stores groups of events, one tenant each and none empty, in one transaction, and
   * tells the observers.
   */
  async #store(groups: readonly (readonly NewActivityEvent[])[]): Promise<AppendedEvent[][]> {
    if (groups.length === 0) return [];
    const requests = groups.map((events) => this.#toAppendRequest(events));
    const started = performance.now();
    const [only] = requests;
    const appended =
      requests.length === 1 && only
        ? [await this.#repository.append(only.tenantId, only.events, only.options)]
        : await this.#repository.appendAll(requests);
    this.#tellRecorded(appended.flat(), started);
    return requests.map((request, index) => request.results(appended[index] ?? []));
  }

  /**
   * What to append for one tenant's events: ids repeated within the call are stored
   * once (later copies come back as duplicates), and generated ids are not looked up.
   */
  #toAppendRequest(events: readonly NewActivityEvent[]) {
    const tenantId = (events[0] as NewActivityEvent).tenant_id;
    const firstPositionById = new Map<string, number>();
    for (const [position, event] of events.entries()) {
      if (!firstPositionById.has(event.id)) firstPositionById.set(event.id, position);
    }
    const unique = events.filter((event, position) => firstPositionById.get(event.id) === position);
    const generatedIds = new Set(
      unique.filter((event) => this.#generatedIds.has(event)).map((event) => event.id),
    );
    return {
      tenantId,
      events: unique,
      options: { generatedIds },
      /** One entry per input event, from the entries of `unique`. */
      results(appended: readonly AppendedEvent[]): AppendedEvent[] {
        const appendedById = new Map(appended.map((entry) => [entry.event.id, entry]));
        return events.map((event, position) => {
          const entry = appendedById.get(event.id) as AppendedEvent;
          return firstPositionById.get(event.id) === position
            ? entry
            : { event: entry.event, duplicate: true };
        });
      },
    };
  }

  /** Tells the observers what one write stored, and how long it took from `started`. */
  #tellRecorded(appended: readonly AppendedEvent[], started: number) {
    const seconds = (performance.now() - started) / 1000;
    const fresh = appended.filter((entry) => !entry.duplicate).map((entry) => entry.event);
    for (const observer of this.#observers) observer.recorded?.(fresh, seconds);
  }

  /** Prepares every input, or fails listing each invalid index (`[3].metadata.reason`). */
  #prepareAll(inputs: readonly unknown[]): NewActivityEvent[] {
    const prepared: NewActivityEvent[] = [];
    const issues: FieldIssue[] = [];
    for (const [index, input] of inputs.entries()) {
      try {
        prepared.push(this.prepare(input));
      } catch (error) {
        const activityError = toActivityError(error);
        this.#notifyFailure(activityError.code, 1);
        const own =
          activityError.issues.length > 0
            ? activityError.issues
            : [{ path: '(root)', message: activityError.message }];
        for (const issue of own) issues.push({ path: `[${index}].${issue.path}`, message: issue.message });
      }
    }
    if (issues.length > 0) throw validationError(issues);
    return prepared;
  }

  /**
   * The action's schema applied to the metadata. A refusal names undeclared keys, so
   * when a key holds a credential or an IP address that is reported instead, by path.
   */
  #validateMetadata(action: string, metadata: Record<string, unknown>): Record<string, unknown> {
    try {
      return this.registry.validateMetadata(action, metadata);
    } catch (error) {
      const keyIssues = scrubMetadata(metadata).issues;
      throw keyIssues.length > 0 ? validationError(keyIssues) : error;
    }
  }

  #notifyFailure(code: ErrorCode, count: number) {
    for (const observer of this.#observers) observer.recordFailed?.(code, count);
  }
}

/** The fields that identify and correlate: stored as given, so never with a secret in them. */
const identifierFields = [
  'tenant_id',
  'actor_id',
  'object_type',
  'object_id',
  'request_id',
  'source',
] as const;

/** Refuses identifiers that hold a credential or an IP address (see identifierProblem). */
function secretIdentifierIssues(
  fields: Record<(typeof identifierFields)[number], string | null>,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const field of identifierFields) {
    const value = fields[field];
    const problem = value === null ? undefined : identifierProblem(value);
    if (problem !== undefined) issues.push({ path: field, message: problem });
  }
  return issues;
}

function validationError(issues: FieldIssue[]): ActivityError {
  return new ActivityError('VALIDATION_FAILED', describeIssues(issues), { issues });
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

function groupByTenant(events: readonly NewActivityEvent[]): NewActivityEvent[][] {
  const groups = new Map<string, NewActivityEvent[]>();
  for (const event of events) {
    const group = groups.get(event.tenant_id);
    if (group) group.push(event);
    else groups.set(event.tenant_id, [event]);
  }
  return [...groups.values()];
}
