import { describe, expect, it } from 'vitest';
import { WriteCoalescer } from '../../src/service/write-coalescer.js';

/** A write that records each batch and finishes when the test lets it. */
function controlledWrite() {
  const batches: Array<{ key: string; items: number[] }> = [];
  const releases: Array<() => void> = [];
  let failNext = false;
  const write = async (key: string, items: number[]) => {
    batches.push({ key, items });
    await new Promise<void>((resolve) => releases.push(resolve));
    if (failNext) {
      failNext = false;
      throw new Error('database went away');
    }
    return items.map((item) => item * 10);
  };
  return {
    write,
    batches,
    release: () => releases.shift()?.(),
    failNext: () => {
      failNext = true;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('WriteCoalescer', () => {
  it('writes what is added in one turn as one batch', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 100 });
    const all = [1, 2, 3].map((item) => coalescer.add('acme', item));
    await tick();
    expect(store.batches).toEqual([{ key: 'acme', items: [1, 2, 3] }]);
    store.release();
    expect(await Promise.all(all)).toEqual([10, 20, 30]);
  });

  it('writes what arrives while a batch is written together in the next batch', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 100 });
    const first = coalescer.add('acme', 1);
    await tick();
    const rest = [2, 3, 4].map((item) => coalescer.add('acme', item));
    await tick();
    expect(store.batches).toEqual([{ key: 'acme', items: [1] }]);
    store.release();
    expect(await first).toBe(10);
    await tick();
    expect(store.batches[1]).toEqual({ key: 'acme', items: [2, 3, 4] });
    store.release();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  });

  it('writes the writers a batch released, coming straight back, as one batch', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 100 });
    const writers = [1, 2, 3].map(async (writer) => {
      await coalescer.add('acme', writer);
      return coalescer.add('acme', writer + 3);
    });
    await tick();
    store.release();
    await tick();
    await tick();
    expect(store.batches.map((batch) => batch.items)).toEqual([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    store.release();
    expect(await Promise.all(writers)).toEqual([40, 50, 60]);
  });

  it('keeps keys apart: another tenant does not wait', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 100 });
    const a = coalescer.add('a', 1);
    const b = coalescer.add('b', 2);
    await tick();
    expect(store.batches.map((batch) => batch.key)).toEqual(['a', 'b']);
    store.release();
    store.release();
    expect(await Promise.all([a, b])).toEqual([10, 20]);
  });

  it('splits a long queue into batches of maxBatch', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((item) => coalescer.add('acme', item));
    for (let i = 0; i < 3; i++) {
      await tick();
      store.release();
    }
    expect(await Promise.all(all)).toEqual([10, 20, 30, 40, 50]);
    expect(store.batches.map((batch) => batch.items)).toEqual([[1, 2], [3, 4], [5]]);
  });

  it('fails every item of a failed batch, and goes on with the next', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 100 });
    const first = coalescer.add('acme', 1);
    await tick();
    const failing = [2, 3].map((item) => coalescer.add('acme', item));
    store.release();
    await first;
    store.failNext();
    await tick();
    store.release();
    for (const result of failing) await expect(result).rejects.toThrow('database went away');
    const after = coalescer.add('acme', 4);
    await tick();
    store.release();
    expect(await after).toBe(40);
  });
});

describe('WriteCoalescer, when a failure would befall the writes queued behind it', () => {
  it('fails those queued for the key with it, without writing them', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, {
      maxBatch: 100,
      failsQueued: (error) => error instanceof Error && error.message === 'database went away',
    });
    const first = coalescer.add('locked', 1);
    await tick();
    const queued = [coalescer.add('locked', 2), coalescer.add('locked', 3)];
    const elsewhere = coalescer.add('other', 4);
    store.failNext();
    store.release();
    await expect(first).rejects.toThrow('database went away');
    await expect(Promise.all(queued)).rejects.toThrow('database went away');
    await tick();
    expect(store.batches.map((batch) => batch.key)).toEqual(['locked', 'other']);
    store.release();
    expect(await elsewhere).toBe(40);
  });

  it('writes the queue after any other failure', async () => {
    const store = controlledWrite();
    const coalescer = new WriteCoalescer(store.write, { maxBatch: 100, failsQueued: () => false });
    const first = coalescer.add('acme', 1);
    await tick();
    const queued = coalescer.add('acme', 2);
    store.failNext();
    store.release();
    await expect(first).rejects.toThrow();
    await tick();
    store.release();
    expect(await queued).toBe(20);
  });
});
