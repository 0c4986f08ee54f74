import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { KeptHashes, KeptReads } from '../../src/domain/integrity-repository.js';
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
import {
  blockOf,
  blockSeqs,
  blockSlice,
  keptCount,
  keptOfBlock,
  keptReadsOf,
  keptRowsOf,
  subtreeFromKept,
  TreeBuilder,
} from '../../src/integrity/tree.js';

const leavesOf = (size: number) =>
  Array.from({ length: size }, (_, index) => leafHash(Buffer.from(`leaf ${index}`)));

/** Builds a tree as the database does; returns what each row (seq = index + 1) keeps. */
function build(leaves: readonly Uint8Array[]) {
  const builder = new TreeBuilder();
  const kept = new Map<number, Uint8Array>();
  for (const [index, leaf] of leaves.entries()) kept.set(index + 1, builder.push(leaf));
  return { builder, kept };
}

/**
 * What the store reads of what is kept (leaf, then inner nodes, per seq): the leaves
 * and the inner nodes of the seqs `reads` names, and nothing else.
 */
function readOf(kept: ReadonlyMap<number, Uint8Array>, reads: KeptReads): KeptHashes {
  const leaves = new Map<number, Uint8Array>();
  const nodes = new Map<number, Uint8Array>();
  for (const seq of reads.leaves) {
    const hashes = kept.get(seq);
    if (hashes) leaves.set(seq, hashes.subarray(0, 32));
  }
  for (const seq of reads.nodes) {
    const hashes = kept.get(seq);
    if (hashes && hashes.length > 32) nodes.set(seq, hashes.subarray(32));
  }
  return { leaves, nodes };
}

/** A proof made from what keptReadsOf says to read only, as the store makes it. */
function fromKept(kept: Map<number, Uint8Array>, ranges: ReturnType<typeof inclusionRanges>) {
  return ranges.map((range) => {
    const subtrees = perfectSubtrees(range);
    const read = readOf(kept, keptReadsOf(subtrees));
    return foldSubtrees(
      subtrees.map((subtree) => {
        for (const seq of keptRowsOf(subtree)) expect(kept.has(seq)).toBe(true);
        return subtreeFromKept(subtree, read) as Uint8Array;
      }),
    );
  });
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

  it('keeps the inner nodes in blocks of 64 seqs, end to end, from which every seq reads back what it keeps', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), (size) => {
        const leaves = leavesOf(size);
        const { kept } = build(leaves);
        // The blocks as the sealer writes them: each seq's hashes after its leaf, in seq order.
        const blocks = new Map<number, Buffer>();
        for (const [seq, hashes] of kept) {
          const block = blocks.get(blockOf(seq)) ?? Buffer.alloc(0);
          blocks.set(blockOf(seq), Buffer.concat([block, hashes.subarray(32)]));
        }
        for (const [seq, hashes] of kept) {
          const read = keptOfBlock(seq, leaves[seq - 1] as Uint8Array, blocks.get(blockOf(seq)));
          expect(Buffer.from(read)).toEqual(Buffer.from(hashes));
        }
        expect(blocks.size).toBe(Math.ceil(size / blockSeqs));
        // 16 bytes an event on average besides its leaf hash (the pairs of leaves are not kept)
        const blockBytes = [...blocks.values()].reduce((sum, block) => sum + block.length, 0);
        expect(blockBytes).toBeLessThanOrEqual(16 * size + 32 * Math.log2(size + 1));
      }),
      { numRuns: 15 },
    );
  });

  it("finds a seq's nodes in its block where the nodes of the seqs before it end, at any seq", () => {
    for (const first of [1, 65, 2 ** 20 + 1, 2 ** 40 + 1, 2 ** 52 - 63]) {
      let offset = 0;
      for (let seq = first; seq < first + blockSeqs; seq++) {
        const nodes = seq % 4 === 0 ? keptCount(seq) - 1 : 0;
        expect(blockSlice(seq)).toEqual({ block: blockOf(seq), offset: offset * 32, length: nodes * 32 });
        offset += nodes;
      }
    }
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
    const all = readOf(kept, { leaves: [...kept.keys()], nodes: [...kept.keys()] });
    expect(subtreeFromKept({ level: 3, index: 0 }, all)).toBeDefined();
    const truncated = {
      leaves: all.leaves,
      nodes: new Map([[8, (all.nodes.get(8) as Uint8Array).subarray(0, 32)]]),
    };
    expect(subtreeFromKept({ level: 3, index: 0 }, truncated)).toBeUndefined();
    const leaves = new Map(all.leaves);
    leaves.delete(2);
    expect(subtreeFromKept({ level: 1, index: 0 }, { leaves, nodes: all.nodes })).toBeUndefined();
  });
});
