import { createHash, randomInt } from 'node:crypto';
import type { DeliveryOutcome, SinkBatch, SinkRepository, StoredSink } from '../domain/sink.js';
import type { OcsfProduct } from '../sinks/ocsf.js';
import { deliveryBody } from '../sinks/payloads.js';
import { type PostBatch, postBatch } from '../sinks/post-batch.js';
import { webhookSignature } from '../sinks/webhook-signature.js';
import type { SinkService } from './sink-service.js';

export interface SinkDeliveryOptions {
  sinks: SinkRepository;
  service: SinkService;
  product: OcsfProduct;
  /** Events per POST (default 500). */
  batchSize?: number;
  /** How long a receiver may take to answer (default 10 s). */
  timeoutMs?: number;
  /** The first retry's delay; each next one doubles, up to maxRetryMs, with jitter (default 1 s). */
  firstRetryMs?: number;
  maxRetryMs?: number;
  /** Failing this long, a sink is suspended until an operator resumes it (default 7 days). */
  suspendAfterMs?: number;
  /** How often to look for new events when there were none (default 250 ms). */
  pollMs?: number;
  post?: PostBatch;
  clock?: () => Date;
  /** Told of every batch: delivered, refused, or skipped events. */
  onBatch?: (report: BatchReport) => void;
}

/** What became of one batch, for logs and metrics. */
export interface BatchReport {
  sinkId: string;
  payload: StoredSink['payload'];
  tenantId: string;
  fromSeq: number;
  throughSeq: number;
  events: number;
  /** Events of the range gone (purged) before they could be delivered. */
  skipped: number;
  /** Events of the range of actions the sink does not take. */
  filtered: number;
  delivered: boolean;
  /** Why not: `status` (the answer's code in `error`), `timeout`, `network`, `secret`. */
  reason?: string;
  error?: string;
}

/**
 * Delivers each due sink's events: one tenant's batch at a time, in seq order, at least
 * once. A batch is POSTed with Standard Webhooks headers; the cursor moves only when
 * the receiver answers 2xx, else the sink is retried with exponential backoff and
 * jitter, and suspended after failing for `suspendAfterMs`. A batch keeps its
 * `webhook-id` across retries (the same range), and every event its id and seq, so a
 * receiver can drop what it already has.
 */
export class SinkDelivery {
  readonly #options: Required<Omit<SinkDeliveryOptions, 'onBatch'>> & Pick<SinkDeliveryOptions, 'onBatch'>;

  constructor(options: SinkDeliveryOptions) {
    this.#options = {
      batchSize: 500,
      timeoutMs: 10_000,
      firstRetryMs: 1000,
      maxRetryMs: 300_000,
      suspendAfterMs: 7 * 86_400_000,
      pollMs: 250,
      post: postBatch,
      clock: () => new Date(),
      ...options,
    };
  }

  /**
   * One pass over the sinks due now, each delivered until it has nothing waiting or
   * fails; returns how many batches were delivered. A sink another process is
   * delivering is passed by.
   */
  async deliverDue(stop?: AbortSignal): Promise<number> {
    let delivered = 0;
    for (const sinkId of await this.#options.sinks.due()) {
      // A sink with a long backlog takes turns with the others.
      for (let batches = 0; batches < batchesPerTurn && !stop?.aborted; batches++) {
        const attempt = await this.#options.sinks.deliver(sinkId, this.#options.batchSize, (sink, batch) =>
          this.#send(sink, batch, stop),
        );
        if (attempt.kind === 'accounted') continue;
        if (attempt.kind !== 'sent') break;
        this.#report(attempt.sink, attempt.batch, attempt.outcome);
        if (!attempt.outcome.delivered) break;
        delivered++;
      }
    }
    return delivered;
  }

  /**
   * Delivers until `stop` aborts: at once while there is work, else every `pollMs`. A
   * batch in flight when it aborts is given up (sent again later, with the same id). A
   * failed pass (the database away) is reported to `onError` and tried again, less
   * often while it keeps failing.
   */
  async run(stop: AbortSignal, onError: (error: unknown) => void = () => {}): Promise<void> {
    let failures = 0;
    while (!stop.aborted) {
      let delivered = 0;
      try {
        delivered = await this.deliverDue(stop);
        failures = 0;
      } catch (error) {
        if (stop.aborted) return;
        failures++;
        onError(error);
      }
      const wait = Math.min(maxFailedPassWaitMs, this.#options.pollMs * 2 ** failures);
      if (delivered === 0 && !stop.aborted) await pause(wait, stop);
    }
  }

  async #send(sink: StoredSink, batch: SinkBatch, stop: AbortSignal | undefined): Promise<DeliveryOutcome> {
    const secrets = this.#options.service.secretsOf(sink);
    if (secrets === undefined) {
      return this.#failure(
        sink,
        'secret',
        "cannot open the sink's sealed headers and secret: ACTIVITY_SECRET is not the one they were sealed with",
      );
    }
    const { contentType, body } = deliveryBody(sink.payload, batch.events, this.#options.product);
    // The same range keeps the same id, so that a receiver can tell a retry.
    const id = `msg_${createHash('sha256')
      .update(`${sink.sink_id}\n${batch.tenantId}\n${batch.fromSeq}\n${batch.throughSeq}`)
      .digest('base64url')
      .slice(0, 32)}`;
    const timestamp = Math.floor(this.#options.clock().getTime() / 1000);
    const headers: Record<string, string> = {
      ...secrets.headers,
      'content-type': contentType,
      'user-agent': `${this.#options.product.name}/${this.#options.product.version}`,
      'webhook-id': id,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': webhookSignature(secrets.secret, id, timestamp, body),
      'activity-tenant': batch.tenantId,
      'activity-seq-from': String(batch.fromSeq),
      'activity-seq-through': String(batch.throughSeq),
      'activity-skipped': String(batch.skipped),
      'activity-filtered': String(batch.filtered),
      // The tenant's latest signed tree head: what its events can be proved against.
      ...(batch.checkpoint === null
        ? {}
        : { 'activity-checkpoint': Buffer.from(batch.checkpoint, 'utf8').toString('base64') }),
    };
    const result = await this.#options.post(sink.url, headers, body, {
      timeoutMs: this.#options.timeoutMs,
      stop,
    });
    if (result.ok) return { delivered: true };
    return result.reason === 'status'
      ? this.#failure(sink, 'status', `the receiver answered ${result.status}`)
      : this.#failure(sink, result.reason, result.message);
  }

  #failure(sink: StoredSink, reason: string, error: string): DeliveryOutcome {
    const { firstRetryMs, maxRetryMs, suspendAfterMs, clock } = this.#options;
    const now = clock().getTime();
    const ceiling = Math.min(maxRetryMs, firstRetryMs * 2 ** Math.min(sink.attempts, 30));
    // Half the delay fixed, half drawn: replicas and sinks that failed together spread out.
    const delay = ceiling / 2 + randomInt(Math.max(1, Math.floor(ceiling / 2)) + 1);
    const failingFor = sink.failing_since === null ? 0 : now - Date.parse(sink.failing_since);
    return {
      delivered: false,
      reason,
      error,
      retryAt: new Date(now + delay),
      suspend: failingFor >= suspendAfterMs,
    };
  }

  #report(sink: StoredSink, batch: SinkBatch, outcome: DeliveryOutcome): void {
    const { onBatch } = this.#options;
    if (!onBatch) return;
    onBatch({
      sinkId: sink.sink_id,
      payload: sink.payload,
      tenantId: batch.tenantId,
      fromSeq: batch.fromSeq,
      throughSeq: batch.throughSeq,
      events: batch.events.length,
      skipped: batch.skipped,
      filtered: batch.filtered,
      delivered: outcome.delivered,
      ...(outcome.delivered ? {} : { reason: outcome.reason, error: outcome.error }),
    });
  }
}

/** Batches of one sink before the next sink's turn. */
const batchesPerTurn = 20;
/** The longest wait between passes while they fail (the database away). */
const maxFailedPassWaitMs = 5000;

function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
