import type { ActivityRepository, EventFilter } from '../domain/activity-repository.js';
import type { ActivityEvent, NewActivityEvent } from '../domain/event.js';
import type { DerivedKeys } from '../privacy/keys.js';
import type { Registry } from '../registry/registry.js';
import { type AuditActor, AuditTrail, libraryActor, recordingOwnEvents } from './audit-trail.js';
import { EventPreparer } from './prepare-event.js';
import { type QueryPage, ReadingService } from './reading-service.js';
import {
  type ActivityObserver,
  type ImportItem,
  RecordingService,
  type RecordManyReport,
  type RejectedItem,
} from './recording-service.js';

export type { ActivityObserver, ImportItem, QueryPage, RecordManyReport, RejectedItem };

export interface ActivityServiceOptions {
  repository: ActivityRepository;
  registry: Registry;
  keys: DerivedKeys;
  observers?: readonly ActivityObserver[];
  /** Resolves relative times (`--since 24h`); an event's own time is the database's. */
  clock?: () => Date;
  /** ACTIVITY_AUDIT_READS: false stops the read and stream events of the self-audit (default true). */
  auditReads?: boolean;
  /** Where a self-audit event recorded in the background that failed is reported. */
  onBackgroundError?: (error: unknown) => void;
  /** Told of each denial counted instead of recorded. */
  onDenialSuppressed?: () => void;
}

/**
 * The one core behind the CLI, the HTTP server and the library: recording and reading,
 * each a use case of its own (recording-service.ts, reading-service.ts), behind one
 * object.
 */
export class ActivityService {
  readonly registry: Registry;
  /** The log accounting for itself: the `activity.*` events of reads, denials and administration. */
  readonly audit: AuditTrail;
  readonly #preparer: EventPreparer;
  readonly #recording: RecordingService;
  readonly #reading: ReadingService;

  constructor(options: ActivityServiceOptions) {
    this.registry = options.registry;
    this.#preparer = new EventPreparer(options.registry, options.keys);
    this.#recording = new RecordingService({
      repository: options.repository,
      preparer: this.#preparer,
      observers: options.observers,
    });
    this.audit = new AuditTrail({
      ...recordingOwnEvents(this.#recording),
      auditReads: options.auditReads ?? true,
      clock: options.clock,
      onBackgroundError: options.onBackgroundError,
      onSuppressed: options.onDenialSuppressed,
    });
    this.#reading = new ReadingService({
      repository: options.repository,
      keys: options.keys,
      audit: this.audit,
      clock: options.clock,
    });
  }

  /** What `record` would store, or an ActivityError naming the field (see EventPreparer). */
  prepare(input: unknown): NewActivityEvent {
    return this.#preparer.prepare(input);
  }

  /** Records one event and returns it as stored (a retry with the same id returns the first). */
  record(input: unknown): Promise<ActivityEvent> {
    return this.#recording.record(input);
  }

  /** Records events of one tenant all-or-nothing (see RecordingService.recordBatch). */
  recordBatch(inputs: readonly unknown[]): Promise<ActivityEvent[]> {
    return this.#recording.recordBatch(inputs);
  }

  /** Records an import stream in committed batches (see RecordingService.recordMany). */
  recordMany(
    items: AsyncIterable<ImportItem>,
    onRejected?: (item: RejectedItem) => void,
  ): Promise<RecordManyReport> {
    return this.#recording.recordMany(items, onRejected);
  }

  /**
   * One page of a tenant's events, newest first, with the cursor of the next page.
   * Recorded as `activity.events.read` by `actor` (see ReadingService), as are the two below.
   */
  query(tenantId: string, input: unknown, actor: AuditActor = libraryActor): Promise<QueryPage> {
    return this.#reading.query(tenantId, input, actor);
  }

  /** Every matching event, newest first, in constant memory. */
  queryAll(
    tenantId: string,
    input: unknown,
    actor: AuditActor = libraryActor,
  ): AsyncGenerator<ActivityEvent> {
    return this.#reading.queryAll(tenantId, input, actor);
  }

  /** What `queryAll` yields, as NDJSON text written by the database. */
  queryAllJson(
    tenantId: string,
    input: unknown,
    actor: AuditActor = libraryActor,
  ): AsyncIterable<Uint8Array> {
    return this.#reading.queryAllJson(tenantId, input, actor);
  }

  /** Where a live stream starts: the last `lines` matching events, oldest first, and the seq it goes on after. */
  backlog(
    tenantId: string,
    filters: unknown,
    lines: number,
  ): Promise<{ events: ActivityEvent[]; afterSeq: number }> {
    return this.#reading.backlog(tenantId, filters, lines);
  }

  /** The filter of a live stream, with relative times resolved now. */
  streamFilter(tenantId: string, input: unknown): EventFilter {
    return this.#reading.streamFilter(tenantId, input);
  }

  /** Resolves when the database answers. */
  ping(): Promise<void> {
    return this.#reading.ping();
  }
}
