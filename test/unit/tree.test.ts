import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  consistencyRanges,
  foldSubtrees,
  inclusionProof,
  inclusionRanges,
  leafHash,
  perfectSubtrees,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from '../../src/integrity/merkle.js';
import { keptCount, keptRowsOf, splitRange, subtreeFromKept, TreeBuilder } from '../../src/integrity/tree.js';

const leavesOf = (size: number) =>
  Array.from({ length: size }, (_, index) => leafHash(Buffer.from(`leaf ${index}`)));

/** Builds a tree as the database does; returns what each row (seq = index + 1) keeps. */
function build(leaves: readonly Uint8Array[]) {
  const builder = new TreeBuilder();
  const kept = new Map<number, Uint8Array>();
  for (const [index, leaf] of leaves.entries()) kept.set(index + 1, builder.push(leaf));
  return { builder, kept };
}

/** A proof made from the kept rows only, as the store makes it. */
function fromKept(kept: Map<number, Uint8Array>, ranges: ReturnType<typeof inclusionRanges>) {
  return ranges.map((range) =>
    foldSubtrees(
      perfectSubtrees(range).map((subtree) => {
        for (const seq of keptRowsOf(subtree)) expect(kept.has(seq)).toBe(true);
        return subtreeFromKept(subtree, (seq) => kept.get(seq)) as Uint8Array;
      }),
    ),
  );
}

describe('a tree extended leaf by leaf and kept in rows', () => {
  it('has the root of a recomputation from scratch at every size, 1 to 5,000', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (size) => {
        const leaves = leavesOf(size);
        const { builder, kept } = build(leaves);
        expect(Buffer.from(builder.root())).toEqual(Buffer.from(treeHead(leaves)));
        expect(builder.range.length).toBe(size.toString(2).replaceAll('0', '').length);
        // every row keeps 1 hash, or the trailing zero bits of its seq: 48 bytes a row on average
        for (const [seq, hashes] of kept) expect(hashes.length).toBe(32 * keptCount(seq));
      }),
      { numRuns: 15 },
    );
  });

  it('splits a stored range back into its hashes and refuses a ragged one', () => {
    const { builder } = build(leavesOf(13));
    expect(splitRange(Buffer.concat(builder.range)).map((hash) => Buffer.from(hash))).toEqual(
      builder.range.map((hash) => Buffer.from(hash)),
    );
    expect(() => splitRange(Buffer.alloc(33))).toThrow(RangeError);
  });

  it('makes from its rows the very inclusion and consistency proofs of RFC 9162, which verify', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 5000 })
          .chain((size) =>
            fc.tuple(fc.constant(size), fc.integer({ min: 1, max: size }), fc.integer({ min: 1, max: size })),
          ),
        ([size, index, older]) => {
          const leaves = leavesOf(size);
          const { builder, kept } = build(leaves);
          const root = builder.root();
          const inclusion = fromKept(kept, inclusionRanges(index - 1, size));
          expect(inclusion.map((hash) => Buffer.from(hash))).toEqual(
            inclusionProof(leaves, index - 1).map((hash) => Buffer.from(hash)),
          );
          expect(verifyInclusion(index - 1, size, leaves[index - 1] as Uint8Array, inclusion, root)).toBe(
            true,
          );
          const consistency = fromKept(kept, consistencyRanges(older, size));
          expect(consistency.map((hash) => Buffer.from(hash))).toEqual(
            consistencyProof(leaves, older).map((hash) => Buffer.from(hash)),
          );
          expect(verifyConsistency(older, size, consistency, treeHead(leaves.slice(0, older)), root)).toBe(
            true,
          );
        },
      ),
      { numRuns: 25 },
    );
  });

  it('cannot read a subtree from a row that keeps too few hashes', () => {
    const { kept } = build(leavesOf(8));
    const truncated = (seq: number) => (seq === 8 ? kept.get(8)?.subarray(0, 32) : kept.get(seq));
    expect(subtreeFromKept({ level: 3, index: 0 }, truncated)).toBeUndefined();
    expect(
      subtreeFromKept({ level: 1, index: 0 }, (seq) => (seq === 2 ? undefined : kept.get(seq))),
    ).toBeUndefined();
  });
});
