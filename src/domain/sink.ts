import type { ActivityEvent } from './event.js';

/** What a sink's receiver is sent: OCSF, CloudEvents, or the event JSON a line each. */
export const sinkPayloads = ['ocsf', 'cloudevents', 'ndjson'] as const;
export type SinkPayload = (typeof sinkPayloads)[number];

/**
 * `active`: delivering; `paused`: by an operator, its cursors kept; `failing`: its
 * receiver refused or could not be reached, retried with backoff; `suspended`: failing
 * for too long, left until an operator resumes it.
 */
export const sinkStates = ['active', 'paused', 'failing', 'suspended'] as const;
export type SinkState = (typeof sinkStates)[number];

/** A sealed secret as stored (see privacy/secret-box.ts). */
export interface SealedSecret {
  nonce: string;
  sealed: string;
}

/** A sink as stored: its secrets still sealed. */
export interface StoredSink {
  sink_id: string;
  /** null: every tenant. */
  tenant_id: string | null;
  url: string;
  payload: SinkPayload;
  /** Only events of these actions, or of these prefixes (`auth.`); null: every event. */
  actions: string[] | null;
  prefixes: string[] | null;
  headers: SealedSecret | null;
  secret: SealedSecret;
  state: SinkState;
  created_at: string;
  next_attempt_at: string;
  attempts: number;
  failing_since: string | null;
  last_success_at: string | null;
  last_error: string | null;
  last_error_at: string | null;
}

/** How far a sink has delivered one tenant's events, and how far the tenant has gone. */
export interface SinkCursor {
  tenant_id: string;
  delivered_seq: number;
  delivered_at: string | null;
  /** Events gone (purged) before they could be delivered. */
  skipped: number;
  /** The tenant's newest seq. */
  last_seq: number;
  /** When the oldest event not yet delivered was recorded, or null when none is waiting. */
  oldest_waiting_at: string | null;
}

/**
 * A batch to deliver: one tenant's events after `afterSeq`, in seq order, through
 * `throughSeq`. What the POST reports starts at `fromSeq`, the seq after the last range
 * the receiver acknowledged: seqs read since without a POST (all purged or left out)
 * are counted in its `skipped` and `filtered`, so a receiver can account for every seq.
 */
export interface SinkBatch {
  tenantId: string;
  afterSeq: number;
  /** The last seq the batch accounts for: its last event's, or past events gone or left out. */
  throughSeq: number;
  events: ActivityEvent[];
  /** Of the reported range `fromSeq`..`throughSeq`: seqs purged, and seqs the filter left out. */
  fromSeq: number;
  skipped: number;
  filtered: number;
  /** Seqs this read found purged (after `afterSeq`), for the sink's total. */
  newlySkipped: number;
  /** The tenant's latest signed checkpoint (a signed note), if it has one. */
  checkpoint: string | null;
}

/** What became of one attempt to deliver a batch. */
export type DeliveryOutcome =
  | { delivered: true }
  | { delivered: false; reason: string; error: string; retryAt: Date; suspend: boolean };

/**
 * The sinks' storage. `deliver` claims one due sink, so that no other process delivers
 * it at the same time, and hands its next batch to `send`; the outcome decides the
 * cursor (advanced only when delivered) and the sink's state.
 */
export interface SinkRepository {
  add(sink: NewSinkRow, options: { fromStart: boolean }): Promise<StoredSink>;
  list(): Promise<StoredSink[]>;
  get(sinkId: string): Promise<StoredSink | undefined>;
  /** Sets the state (and makes it due now); false when there is no such sink. */
  setState(sinkId: string, state: 'active' | 'paused'): Promise<boolean>;
  remove(sinkId: string): Promise<boolean>;
  cursors(sinkId: string): Promise<SinkCursor[]>;
  /** The ids of the sinks due for delivery now, with events waiting. */
  due(): Promise<string[]>;
  /**
   * How far behind the sink furthest behind is (paused ones aside): events not yet
   * delivered, and the age in seconds of the oldest of them.
   */
  lag(): Promise<{ events: number; seconds: number }>;
  /**
   * Claims the sink if it is still due and no other process holds it, and delivers its
   * next batch of at most `maxEvents` through `send`. Returns what happened: nothing to
   * claim, nothing waiting, or the batch and its outcome.
   */
  deliver(
    sinkId: string,
    maxEvents: number,
    send: (sink: StoredSink, batch: SinkBatch) => Promise<DeliveryOutcome>,
  ): Promise<DeliveryAttempt>;
}

/**
 * `busy`: another process holds the sink, or it is no longer due; `idle`: nothing
 * waits; `accounted`: every seq read was purged or left out, counted for the next POST;
 * `sent`: the batch and what the receiver made of it.
 */
export type DeliveryAttempt =
  | { kind: 'busy' }
  | { kind: 'idle' }
  | { kind: 'accounted'; sink: StoredSink; batch: SinkBatch }
  | { kind: 'sent'; sink: StoredSink; batch: SinkBatch; outcome: DeliveryOutcome };

/** A sink as `add` stores it; the rest of its row is the database's to fill. */
export type NewSinkRow = Pick<
  StoredSink,
  'sink_id' | 'tenant_id' | 'url' | 'payload' | 'actions' | 'prefixes' | 'headers' | 'secret'
>;
