/**
 * Coalesces concurrent single writes of one key into batches: the writes that arrive
 * in one turn of the event loop go together, and while a batch of a key is being
 * written, the writes that arrive for it wait and go together in the next. Writers
 * of one tenant serialise on its head row anyway, and a round trip costs more than
 * a row, so one statement for many of them instead of one each is what lets them scale.
 */
export class WriteCoalescer<Item, Result> {
  readonly #write: (key: string, items: Item[]) => Promise<ReadonlyArray<Result | PromiseLike<Result>>>;
  readonly #maxBatch: number;
  readonly #failsQueued: (error: unknown) => boolean;
  /** Per key: the items waiting for the batch in flight to finish. */
  readonly #queues = new Map<string, Array<{ item: Item; settle: Settle<Result> }>>();

  /**
   * `write` stores a batch and returns one result per item, in order; a result may be a
   * promise (an item it handed on to be written later), which the batch does not wait for.
   */
  constructor(
    write: (key: string, items: Item[]) => Promise<ReadonlyArray<Result | PromiseLike<Result>>>,
    options: {
      maxBatch: number;
      /**
       * Whether a batch's failure would befall the writes queued behind it as well (a
       * lock they would wait for in turn): they then fail with it at once.
       */
      failsQueued?: (error: unknown) => boolean;
    },
  ) {
    this.#write = write;
    this.#maxBatch = options.maxBatch;
    this.#failsQueued = options.failsQueued ?? (() => false);
  }

  add(key: string, item: Item): Promise<Result> {
    return new Promise((resolve, reject) => {
      const queue = this.#queues.get(key);
      const entry = { item, settle: { resolve, reject } };
      if (queue) {
        queue.push(entry);
        return;
      }
      this.#queues.set(key, [entry]);
      // Not at once: the writers a batch has just released come back within this turn,
      // and would go as a batch of one followed by a batch of the rest.
      setImmediate(() => void this.#drain(key));
    });
  }

  async #drain(key: string): Promise<void> {
    for (;;) {
      const queue = this.#queues.get(key) ?? [];
      const batch = queue.splice(0, this.#maxBatch);
      if (batch.length === 0) {
        this.#queues.delete(key);
        return;
      }
      try {
        const results = await this.#write(
          key,
          batch.map((entry) => entry.item),
        );
        for (const [index, entry] of batch.entries()) entry.settle.resolve(results[index] as Result);
      } catch (error) {
        const failed = this.#failsQueued(error) ? [...batch, ...queue.splice(0)] : batch;
        for (const entry of failed) entry.settle.reject(error);
      }
    }
  }
}

interface Settle<Result> {
  resolve(result: Result | PromiseLike<Result>): void;
  reject(error: unknown): void;
}
