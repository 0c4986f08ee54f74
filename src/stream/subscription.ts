import type { ActivityEvent } from '../domain/event.js';

export type CloseReason = 'client' | 'slow' | 'shutdown' | 'expired' | 'error';

/**
 * One client's queue of events, bounded: a consumer that falls `capacity` events
 * behind is cut off ('slow') rather than allowed to grow memory without bound.
 */
export class Subscription implements AsyncIterable<ActivityEvent> {
  /** The seq of the last event queued for this client. */
  position: number;
  #queue: ActivityEvent[] = [];
  #wake: (() => void) | undefined;
  #roomWaiters: Array<() => void> = [];
  #closeReason: CloseReason | undefined;
  readonly #capacity: number;
  readonly #onClose: Array<(reason: CloseReason) => void> = [];

  constructor(position: number, capacity: number) {
    this.position = position;
    this.#capacity = capacity;
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
    if (this.#queue.length >= this.#capacity) {
      this.close('slow');
      return;
    }
    this.#queue.push(event);
    this.position = event.seq;
    this.#signal();
  }

  /** Resolves once the queue is at most half full (replay uses it to keep pace). */
  async waitForRoom(): Promise<void> {
    while (!this.#closeReason && this.#queue.length > this.#capacity / 2) {
      await new Promise<void>((resolve) => this.#roomWaiters.push(resolve));
    }
  }

  onClose(callback: (reason: CloseReason) => void): void {
    if (this.#closeReason) callback(this.#closeReason);
    else this.#onClose.push(callback);
  }

  close(reason: CloseReason): void {
    if (this.#closeReason) return;
    this.#closeReason = reason;
    this.#signal();
    for (const resolve of this.#roomWaiters.splice(0)) resolve();
    for (const callback of this.#onClose.splice(0)) callback(reason);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<ActivityEvent> {
    for (;;) {
      const event = this.#queue.shift();
      if (event) {
        if (this.#queue.length <= this.#capacity / 2)
          for (const resolve of this.#roomWaiters.splice(0)) resolve();
        yield event;
        continue;
      }
      if (this.#closeReason) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  #signal() {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
