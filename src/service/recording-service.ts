import type { ActivityRepository, AppendedEvent } from '../domain/activity-repository.js';
import { ActivityError, type ErrorCode, type FieldIssue, toActivityError } from '../domain/errors.js';
import type { ActivityEvent, NewActivityEvent } from '../domain/event.js';
import { describeIssues } from '../domain/field-issues.js';
import { type EventPreparer, type OwnEventInput, validationError } from './prepare-event.js';
import { WriteCoalescer } from './write-coalescer.js';

/** Told what the service did; metrics and structured logs subscribe here. */
export interface ActivityObserver {
  recorded?(events: readonly ActivityEvent[], durationSeconds: number): void;
  recordFailed?(code: ErrorCode, count: number): void;
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
/** At most this many concurrent `record`s go in one statement. */
const maxCoalescedWrites = 1000;
/** The coalescing key of records of any tenant whose ids the service generated; no tenant id can be `*`. */
const anyTenant = '*';

/** Recording as a use case: one event, a batch of one tenant, or an import stream. */
export class RecordingService {
  readonly #repository: ActivityRepository;
  readonly #preparer: EventPreparer;
  readonly #observers: readonly ActivityObserver[];
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

  constructor(options: {
    repository: ActivityRepository;
    preparer: EventPreparer;
    observers?: readonly ActivityObserver[] | undefined;
  }) {
    this.#repository = options.repository;
    this.#preparer = options.preparer;
    this.#observers = options.observers ?? [];
  }

  /** Records one event and returns it as stored (a retry with the same id returns the first). */
  record(input: unknown): Promise<ActivityEvent> {
    return this.#recordPrepared(() => this.#preparer.prepare(input));
  }

  /** Records one of the tool's own `activity.*` events (see AuditTrail). */
  recordOwn(input: OwnEventInput): Promise<ActivityEvent> {
    return this.#recordPrepared(() => this.#preparer.prepareOwn(input));
  }

  /**
   * Records several of the tool's own events together: their ids are generated, so
   * they join the concurrent records' statements, up to a thousand events each (see
   * #appendWithoutWaiting). One refused is a fault of the tool: the others are stored,
   * then it fails.
   */
  async recordOwnAll(inputs: readonly OwnEventInput[]): Promise<void> {
    const written: Promise<AppendedEvent>[] = [];
    let refusal: ActivityError | undefined;
    for (const input of inputs) {
      try {
        written.push(this.#singleWrites.add(anyTenant, this.#preparer.prepareOwn(input)));
      } catch (error) {
        const activityError = toActivityError(error);
        this.#notifyFailure(activityError.code, 1);
        refusal ??= activityError;
      }
    }
    const failed = (await Promise.allSettled(written)).find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    if (refusal) {
      throw new ActivityError(
        'INTERNAL',
        `one of the tool's own events was refused: ${refusal.code} ${refusal.message}`,
        { cause: refusal },
      );
    }
  }

  async #recordPrepared(prepare: () => NewActivityEvent): Promise<ActivityEvent> {
    let prepared: NewActivityEvent;
    try {
      prepared = prepare();
    } catch (error) {
      this.#notifyFailure(toActivityError(error).code, 1);
      throw error;
    }
    const key = this.#preparer.hasGeneratedId(prepared) ? anyTenant : prepared.tenant_id;
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
          batch.push(this.#preparer.prepare(item.value));
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
      unique.filter((event) => this.#preparer.hasGeneratedId(event)).map((event) => event.id),
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

  /**
   * Prepares every input, or fails listing each invalid index (`[3].metadata.reason`):
   * with the code of the invalid inputs when they share one (ACTION_UNKNOWN for a batch
   * whose one bad event names an unknown action, as for that event alone), else
   * VALIDATION_FAILED.
   */
  #prepareAll(inputs: readonly unknown[]): NewActivityEvent[] {
    const prepared: NewActivityEvent[] = [];
    const issues: FieldIssue[] = [];
    const codes = new Set<ErrorCode>();
    for (const [index, input] of inputs.entries()) {
      try {
        prepared.push(this.#preparer.prepare(input));
      } catch (error) {
        const activityError = toActivityError(error);
        codes.add(activityError.code);
        this.#notifyFailure(activityError.code, 1);
        const own =
          activityError.issues.length > 0
            ? activityError.issues
            : [{ path: '(root)', message: activityError.message }];
        for (const issue of own) issues.push({ path: `[${index}].${issue.path}`, message: issue.message });
      }
    }
    const [code] = codes;
    if (code !== undefined && codes.size === 1 && code !== 'VALIDATION_FAILED') {
      throw new ActivityError(code, describeIssues(issues), { issues });
    }
    if (issues.length > 0) throw validationError(issues);
    return prepared;
  }

  #notifyFailure(code: ErrorCode, count: number) {
    for (const observer of this.#observers) observer.recordFailed?.(code, count);
  }
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
