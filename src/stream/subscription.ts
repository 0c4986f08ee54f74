import type { ActivityEvent } from '../domain/event.js';
import { eventJson } from '../domain/event-json.js';

export type CloseReason = 'client' | 'slow' | 'shutdown' | 'expired' | 'error';

/** How far one client may fall behind before it is cut off as slow. */
export interface SubscriptionLimits {
  /** Events queued. */
  maxEvents: number;
  /** Characters of the queued events' JSON: bounds memory whatever the events' size. */
  maxBytes: number;
}

/**
 * One client's queue of events, bounded in count and in size: a consumer that falls
 * that far behind is cut off ('slow') rather than allowed to grow memory without bound.
 * Closing drops what is queued (the client resumes from its last event); the
 * consumer releases the subscription once it is gone, which frees its place.
 */
export class Subscription implements AsyncIterable<ActivityEvent> {
  /** The seq of the last event queued for this client. */
  position: number;
  #queue: ActivityEvent[] = [];
  #queuedBytes = 0;
  #wake: (() => void) | undefined;
  #roomWaiters: Array<() => void> = [];
  #closeReason: CloseReason | undefined;
  #released = false;
  readonly #limits: SubscriptionLimits;
  readonly #onClose: Array<(reason: CloseReason) => void> = [];
  readonly #onRelease: Array<() => void> = [];

  constructor(position: number, limits: SubscriptionLimits) {
    this.position = position;
    this.#limits = limits;
  }

  get closeReason(): CloseReason | undefined {
    return this.#closeReason;
  }

  get buffered(): number {
    return this.#queue.length;
  }

  /** Queues an event after `position`; an older one is ignored (no duplicate at a seam). */
  push(event: ActivityEvent): void {
    if (this.#closeReason || event.seq <= this.position) return;
    const bytes = eventJson(event).length;
    if (this.#queue.length >= this.#limits.maxEvents || this.#queuedBytes + bytes > this.#limits.maxBytes) {
      this.close('slow');
      return;
    }
    this.#queue.push(event);
    this.#queuedBytes += bytes;
    this.position = event.seq;
    this.#signal();
  }

  /** Resolves once the queue is at most half full (replay uses it to keep pace). */
  async waitForRoom(): Promise<void> {
    while (!this.#closeReason && this.#isOverHalfFull()) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  onClose(callback: (reason: CloseReason) => void): void {
    if (this.#closeReason) callback(this.#closeReason);
    else this.#onClose.push(callback);
  }

  /** Stops delivery and drops what is queued: nothing more is yielded. */
  close(reason: CloseReason): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#signal();
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
    for (const callback of this.#onClose.splice(0)) callback(reason);
  }

  /** The consumer is gone (its connection closed): closes, and frees the subscription's place. */
  release(): void {
    this.close('client');
    if (this.#released) return;
    this.#released = true;
    for (const callback of this.#onRelease.splice(0)) callback();
  }

  onRelease(callback: () => void): void {
    if (this.#released) callback();
    else this.#onRelease.push(callback);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ActivityEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event) {
        this.#queuedBytes -= eventJson(event).length;
        if (!this.#isOverHalfFull()) for (const resolve of this.#roomWaiters.splice(0)) resolve();
        yield event;
        continue;
      }
      if (this.#closeReason) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #isOverHalfFull(): boolean {
    return this.#queue.length > this.#limits.maxEvents / 2 || this.#queuedBytes > this.#limits.maxBytes / 2;
  }

  #signal() {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
