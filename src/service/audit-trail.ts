import type { ActivityRepository, EventFilter } from '../domain/activity-repository.js';
import { textProblem } from '../domain/caps.js';
import { type ActivityEvent, type ActorType, fieldLimits } from '../domain/event.js';
import { identifierProblem, scrubText } from '../privacy/scrub.js';
import type { Registry } from '../registry/registry.js';
import type { SelfAuditAction } from '../registry/self-audit-actions.js';
import { EventPreparer, type OwnEventInput } from './prepare-event.js';
import { RecordingService } from './recording-service.js';

/** Through what a reader or an administrator acted: the `source` of the events it leaves. */
export type AuditChannel = 'api' | 'cli' | 'library';

/** Who acted, as the self-audit events name them. */
export interface AuditActor {
  type: ActorType;
  id: string | null;
  via: AuditChannel;
  /** Where an HTTP request came from: stored as its keyed hash, like any event's. */
  ip?: string | null;
  userAgent?: string | null;
  requestId?: string | null;
}

/** The actor of a library call that names none. */
export const libraryActor: AuditActor = { type: 'system', id: null, via: 'library' };

/** What a read was: a page (with or without a cursor) or a whole listing. */
export interface EventsRead {
  kind: 'page' | 'all';
  filter: EventFilter;
  cursor: boolean;
  returned: number;
}

/** A denial to record; `route` is the route's pattern, never the raw path. */
export interface AccessDenial {
  httpStatus: 401 | 403;
  reason: string;
  method: string;
  route: string;
}

/** A purge run's record of one tenant, as `activity.events.purged` tells it. */
export interface PurgeRun {
  tenantId: string;
  fromSeq: number;
  throughSeq: number;
  deleted: number;
  rule: 'default' | 'policy';
  cutoff: Date;
  purgedAt: Date;
}

/** How many denials of one tenant are recorded before they are only counted, and how fast that allowance comes back. */
export interface DenialLimits {
  burst: number;
  /** One more denial may be recorded after each of these. */
  refillMs: number;
}

const defaultDenialLimits: DenialLimits = { burst: 10, refillMs: 6_000 };
/**
 * Events recorded in the background are written together: those of up to this long, or
 * this many, in one statement. A page's read then costs the database a row of a
 * multi-row insert, not an insert of its own; a process that dies loses at most these.
 */
const backgroundDelayMs = 50;
const backgroundBatch = 500;
/** Tenants whose denial allowance is remembered; the oldest is forgotten past it. */
const maxTenantsTracked = 10_000;

/**
 * The log accounting for itself: each read, stream, denial and administrative act
 * becomes an `activity.*` event in the tenant's own log, recorded through the same
 * path as any event (same seq, same tree). The services call it; no shell writes
 * these events by hand.
 *
 * Reads, streams and denials are recorded in the background, so that a reader does not
 * wait for their commit: `flush()` (called by the app's close) writes those still
 * pending. Acts that change something (retention, holds, purge) and exports are awaited.
 */
export class AuditTrail {
  readonly #record: (input: OwnEventInput) => Promise<ActivityEvent>;
  readonly #auditReads: boolean;
  readonly #clock: () => Date;
  readonly #limits: DenialLimits;
  readonly #onBackgroundError: (error: unknown) => void;
  readonly #onSuppressed: () => void;
  readonly #recordAll: (inputs: readonly OwnEventInput[]) => Promise<void>;
  readonly #pending = new Set<Promise<unknown>>();
  /** Background events not yet handed to the database, and the timer that will. */
  #queued: OwnEventInput[] = [];
  #queueTimer: NodeJS.Timeout | undefined;
  /** Per tenant: the denials it may still record now, as of `at`, and those suppressed since the last recorded. */
  readonly #denials = new Map<string, { allowance: number; at: number; suppressed: number }>();

  constructor(options: {
    /** Records one of the tool's own events (RecordingService.recordOwn). */
    record: (input: OwnEventInput) => Promise<ActivityEvent>;
    /** Records several together; fails if any is refused (RecordingService.recordOwnAll). */
    recordAll: (inputs: readonly OwnEventInput[]) => Promise<void>;
    /** ACTIVITY_AUDIT_READS: false stops read and stream events (never the others). */
    auditReads: boolean;
    clock?: (() => Date) | undefined;
    denialLimits?: DenialLimits | undefined;
    onBackgroundError?: ((error: unknown) => void) | undefined;
    /** Told of each denial counted instead of recorded (the suppressed metric). */
    onSuppressed?: (() => void) | undefined;
  }) {
    this.#record = options.record;
    this.#recordAll = options.recordAll;
    this.#auditReads = options.auditReads;
    this.#clock = options.clock ?? (() => new Date());
    this.#limits = options.denialLimits ?? defaultDenialLimits;
    this.#onBackgroundError = options.onBackgroundError ?? (() => {});
    this.#onSuppressed = options.onSuppressed ?? (() => {});
  }

  /** `activity.events.read`: one per page or listing, in the background. */
  eventsRead(actor: AuditActor, tenantId: string, read: EventsRead): void {
    if (!this.#auditReads) return;
    this.#inBackground(
      this.#inputOf(actor, tenantId, 'activity.events.read', 'success', {
        kind: read.kind,
        filters: filtersOf(read.filter),
        cursor: read.cursor,
        returned: read.returned,
      }),
    );
  }

  /**
   * `activity.stream.opened` now, in the background; the function returned records
   * `activity.stream.closed` with the stream's duration and what it delivered.
   */
  streamOpened(
    actor: AuditActor,
    tenantId: string,
    filter: EventFilter,
    afterSeq: number | null,
  ): (delivered: number) => void {
    if (!this.#auditReads) return () => {};
    const filters = filtersOf(filter);
    const opened = this.#clock().getTime();
    this.#inBackground(
      this.#inputOf(actor, tenantId, 'activity.stream.opened', 'success', { filters, after_seq: afterSeq }),
    );
    let closed = false;
    return (delivered) => {
      if (closed) return;
      closed = true;
      this.#inBackground(
        this.#inputOf(actor, tenantId, 'activity.stream.closed', 'success', {
          filters,
          duration_ms: Math.max(0, this.#clock().getTime() - opened),
          delivered,
        }),
      );
    };
  }

  /**
   * `activity.access.denied` into the tenant the token names, in the background. A
   * tenant's denials are recorded up to a burst, then one per refill interval; those
   * between are counted, in the next one recorded and in the suppressed metric.
   */
  accessDenied(actor: AuditActor, tenantId: string, denial: AccessDenial): void {
    const now = this.#clock().getTime();
    let state = this.#denials.get(tenantId);
    if (state === undefined) {
      state = { allowance: this.#limits.burst, at: now, suppressed: 0 };
      if (this.#denials.size >= maxTenantsTracked) {
        this.#denials.delete(this.#denials.keys().next().value as string);
      }
      this.#denials.set(tenantId, state);
    }
    // A token bucket: the allowance grows back by one per refill interval, up to the burst.
    state.allowance = Math.min(
      this.#limits.burst,
      state.allowance + Math.max(0, now - state.at) / this.#limits.refillMs,
    );
    // Only forward: a clock set back and forth again gives nothing back.
    state.at = Math.max(state.at, now);
    if (state.allowance < 1) {
      state.suppressed++;
      this.#onSuppressed();
      return;
    }
    state.allowance--;
    const suppressed = state.suppressed;
    state.suppressed = 0;
    this.#inBackground(
      this.#inputOf(actor, tenantId, 'activity.access.denied', 'failure', {
        http_status: denial.httpStatus,
        reason: denial.reason,
        method: denial.method,
        route: denial.route,
        suppressed,
      }),
    );
  }

  /**
   * `activity.events.purged`, under the id kept in the run's record: a run that records
   * it again (killed before it marked the record) stores it once. The id is random,
   * chosen before the event is written: no caller can record something else under it.
   */
  async eventsPurged(actor: AuditActor, run: PurgeRun, id: string): Promise<void> {
    await this.#record(
      this.#inputOf(
        actor,
        run.tenantId,
        'activity.events.purged',
        'success',
        {
          from_seq: run.fromSeq,
          through_seq: run.throughSeq,
          deleted: run.deleted,
          rule: run.rule,
          cutoff: run.cutoff.toISOString(),
          purged_at: run.purgedAt.toISOString(),
        },
        id,
      ),
    );
  }

  async retentionChanged(
    actor: AuditActor,
    tenantId: string,
    change: { retentionDays: number | null; previousDays: number | null },
  ): Promise<void> {
    await this.#record(
      this.#inputOf(actor, tenantId, 'activity.retention.changed', 'success', {
        retention_days: change.retentionDays,
        previous_days: change.previousDays,
      }),
    );
  }

  async holdPlaced(actor: AuditActor, tenantId: string, hold: { reason: string | null; placedAt: string }) {
    await this.#record(
      this.#inputOf(actor, tenantId, 'activity.hold.placed', 'success', {
        reason: hold.reason,
        placed_at: hold.placedAt,
      }),
    );
  }

  async holdLifted(actor: AuditActor, tenantId: string, placedAt: string): Promise<void> {
    await this.#record(
      this.#inputOf(actor, tenantId, 'activity.hold.lifted', 'success', { placed_at: placedAt }),
    );
  }

  /**
   * `activity.checkpoint.signed` in each tenant's log, all in one batch. It lands after
   * the head it signs, so the next run leaves a tenant alone while this event is all it
   * has added (IntegrityRepository.uncheckpointed).
   */
  async checkpointsSigned(
    actor: AuditActor,
    checkpoints: ReadonlyArray<{ tenantId: string; size: number; rootHash: Uint8Array }>,
  ): Promise<void> {
    if (checkpoints.length === 0) return;
    await this.#recordAll(
      checkpoints.map((checkpoint) =>
        this.#inputOf(actor, checkpoint.tenantId, 'activity.checkpoint.signed', 'success', {
          tree_size: checkpoint.size,
          root_hash: Buffer.from(checkpoint.rootHash).toString('base64'),
        }),
      ),
    );
  }

  /** `activity.events.exported`: a bundle written whole (recorded whatever ACTIVITY_AUDIT_READS says: the events left). */
  async eventsExported(
    actor: AuditActor,
    tenantId: string,
    bundle: { fromSeq: number; throughSeq: number; events: number; treeSize: number },
  ): Promise<void> {
    await this.#record(
      this.#inputOf(actor, tenantId, 'activity.events.exported', 'success', {
        from_seq: bundle.fromSeq,
        through_seq: bundle.throughSeq,
        events: bundle.events,
        tree_size: bundle.treeSize,
      }),
    );
  }

  /** Waits for the events recorded in the background. */
  async flush(): Promise<void> {
    this.#writeQueued();
    while (this.#pending.size > 0) await Promise.all(this.#pending);
  }

  /** Queues an event to be written with the others of the next few milliseconds. */
  #inBackground(input: OwnEventInput): void {
    this.#queued.push(input);
    if (this.#queued.length >= backgroundBatch) this.#writeQueued();
    else this.#queueTimer ??= setTimeout(() => this.#writeQueued(), backgroundDelayMs).unref();
  }

  #writeQueued(): void {
    clearTimeout(this.#queueTimer);
    this.#queueTimer = undefined;
    if (this.#queued.length === 0) return;
    const inputs = this.#queued;
    this.#queued = [];
    const tracked: Promise<void> = this.#recordAll(inputs)
      .catch((error) => this.#onBackgroundError(error))
      .finally(() => this.#pending.delete(tracked));
    this.#pending.add(tracked);
  }

  #inputOf(
    actor: AuditActor,
    tenantId: string,
    action: SelfAuditAction,
    status: 'success' | 'failure',
    metadata: Record<string, unknown>,
    id?: string,
  ): OwnEventInput {
    // What the caller sent is kept only where an event can store it, else left out
    // (null): no caller can make its own acts unrecordable with a crafted header or sub.
    const userAgent = actor.userAgent == null ? null : scrubText(actor.userAgent);
    return {
      ...(id === undefined ? {} : { id }),
      tenant_id: tenantId,
      action,
      actor_type: actor.type,
      actor_id: storableIdentifier(actor.id, fieldLimits.actorId),
      status,
      source: actor.via,
      request_id: storableIdentifier(actor.requestId ?? null, fieldLimits.requestId),
      ip: actor.ip ?? null,
      user_agent:
        userAgent !== null && textProblem(userAgent, fieldLimits.userAgent) === undefined ? userAgent : null,
      metadata,
    };
  }
}

/** `value` when an event can store it as an identifier, else null. */
function storableIdentifier(value: string | null, maxLength: number): string | null {
  return value !== null &&
    textProblem(value, maxLength) === undefined &&
    identifierProblem(value) === undefined
    ? value
    : null;
}

/**
 * The self-audit of a process that records nothing else (the CLI's retention and
 * integrity commands): its own recording path, without keys (these events carry no
 * IP) or observers.
 */
export function ownEventsTrail(
  repository: ActivityRepository,
  registry: Registry,
  options: { auditReads: boolean },
): AuditTrail {
  const recording = new RecordingService({ repository, preparer: new EventPreparer(registry, undefined) });
  return new AuditTrail({ ...recordingOwnEvents(recording), auditReads: options.auditReads });
}

/** How an AuditTrail records through `recording`. */
export function recordingOwnEvents(recording: RecordingService) {
  return {
    record: (input: OwnEventInput) => recording.recordOwn(input),
    recordAll: (inputs: readonly OwnEventInput[]) => recording.recordOwnAll(inputs),
  };
}

/** A filter as the events name it: the query parameters' names, times in RFC 3339. */
function filtersOf(filter: EventFilter): Record<string, unknown> {
  const actions = [...(filter.actions ?? []), ...(filter.actionPrefixes ?? []).map((prefix) => `${prefix}*`)];
  return {
    ...(actions.length > 0 ? { action: actions } : {}),
    ...(filter.actorId === undefined ? {} : { actor_id: filter.actorId }),
    ...(filter.objectType === undefined ? {} : { object_type: filter.objectType }),
    ...(filter.objectId === undefined ? {} : { object_id: filter.objectId }),
    ...(filter.requestId === undefined ? {} : { request_id: filter.requestId }),
    ...(filter.status === undefined ? {} : { status: filter.status }),
    ...(filter.since === undefined ? {} : { since: filter.since.toISOString() }),
    ...(filter.until === undefined ? {} : { until: filter.until.toISOString() }),
  };
}
