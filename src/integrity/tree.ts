import { createHash } from 'node:crypto';
import type { KeptHashes, KeptReads } from '../domain/integrity-repository.js';
import { foldSubtrees, hashSize, nodeHash, type Subtree } from './merkle.js';

/**
 * A tenant's tree as it is kept (migrations/0004): what is kept for each seq is its
 * leaf hash (in its event row) followed by the hash of every perfect subtree of 4
 * leaves or more that the event completes (in its block, once sealed). `TreeBuilder`
 * extends a tree the way the sealer does, and recomputes it from the events;
 * `keptRowsOf` and `subtreeFromKept` find any perfect subtree's hash in what is kept,
 * for proofs.
 */
export class TreeBuilder {
  #size: number;
  readonly #range: Uint8Array[];

  constructor(size = 0, range: readonly Uint8Array[] = []) {
    this.#size = size;
    this.#range = [...range];
  }

  get size(): number {
    return this.#size;
  }

  /** The compact range, largest subtree first. */
  get range(): readonly Uint8Array[] {
    return this.#range;
  }

  /** The tree head (RFC 9162 MTH): the hash of no input for an empty tree. */
  root(): Uint8Array {
    return this.#range.length === 0 ? createHash('sha256').digest() : foldSubtrees(this.#range);
  }

  /**
   * Takes `hash` as the root of the newest subtree instead of the one computed: after
   * a kept hash is found altered, the tree follows what is kept from there on, so
   * that one alteration is reported once, not again at every hash above it.
   */
  replaceNewest(hash: Uint8Array): void {
    if (this.#range.length === 0) throw new RangeError('an empty tree has no newest subtree');
    this.#range[this.#range.length - 1] = hash;
  }

  /** Appends a leaf hash; returns what is kept for its seq (see above). */
  push(leafHash: Uint8Array): Uint8Array {
    const kept: Uint8Array[] = [leafHash];
    let hash = leafHash;
    // each 1-bit at the bottom of the size is a subtree the new leaf completes
    for (let level = 0; Math.floor(this.#size / 2 ** level) % 2 === 1; level++) {
      hash = nodeHash(this.#range.pop() as Uint8Array, hash);
      if (level >= 1) kept.push(hash);
    }
    this.#range.push(hash);
    this.#size++;
    return kept.length === 1 ? leafHash : Buffer.concat(kept);
  }
}

/** How many hashes are kept for `seq`: 1, or the trailing zero bits of seq when 2 or more. */
export function keptCount(seq: number): number {
  if (!Number.isSafeInteger(seq) || seq < 1) throw new RangeError(`${seq} is not a seq`);
  let zeros = 0;
  while (seq % 2 ** (zeros + 1) === 0) zeros++;
  return Math.max(1, zeros);
}

/**
 * What to read for these subtrees' hashes (see keptRowsOf), and the leaves of
 * `extraLeaves`: a subtree of 1 or 2 leaves is made from leaf hashes, a larger one is
 * kept among the inner nodes of its last seq, and needs no leaf (nor its event row).
 */
export function keptReadsOf(subtrees: readonly Subtree[], extraLeaves: readonly number[] = []): KeptReads {
  const leaves = new Set(extraLeaves);
  const nodes = new Set<number>();
  for (const subtree of subtrees) {
    for (const seq of keptRowsOf(subtree)) (subtree.level >= 2 ? nodes : leaves).add(seq);
  }
  return { leaves: [...leaves], nodes: [...nodes] };
}

/** The seqs whose kept hashes hold (or, for a pair of leaves, make) the subtree's hash. */
export function keptRowsOf({ level, index }: Subtree): number[] {
  if (level === 1) return [2 * index + 1, 2 * index + 2];
  return [(index + 1) * 2 ** level];
}

/**
 * A perfect subtree's hash from the leaf hashes and inner nodes of the seqs
 * keptRowsOf named, or undefined when one is absent or too short (tampered, or not
 * sealed yet).
 */
export function subtreeFromKept({ level, index }: Subtree, kept: KeptHashes): Uint8Array | undefined {
  const leafOf = (seq: number) => {
    const leaf = kept.leaves.get(seq);
    return leaf && leaf.length >= hashSize ? leaf.subarray(0, hashSize) : undefined;
  };
  if (level === 0) return leafOf(index + 1);
  if (level === 1) {
    const left = leafOf(2 * index + 1);
    const right = leafOf(2 * index + 2);
    return left && right ? nodeHash(left, right) : undefined;
  }
  const nodes = kept.nodes.get((index + 1) * 2 ** level);
  const offset = (level - 2) * hashSize;
  if (!nodes || nodes.length < offset + hashSize) return undefined;
  return nodes.subarray(offset, offset + hashSize);
}

/**
 * Seqs per block of inner nodes (activity_tree_blocks): block b holds those of seqs
 * 64b + 1 .. 64b + 64, about 1 KB, small enough to stay in its row (no TOAST) when the
 * sealer rewrites the block being filled.
 */
export const blockSeqs = 64;

/** The block that keeps the inner nodes of `seq`. */
export function blockOf(seq: number): number {
  return Math.floor((seq - 1) / blockSeqs);
}

/**
 * Where the inner nodes kept for `seq` (its kept hashes after the leaf) lie in its
 * block, in bytes: the nodes of the seqs before it in the block, end to end. Empty
 * unless seq is a multiple of 4.
 */
export function blockSlice(seq: number): { block: number; offset: number; length: number } {
  const block = blockOf(seq);
  // The m-th multiple of 4 of a block (m < 16) keeps 1 + tz(m) nodes, and the trailing
  // zeros of 1..M add up to M - popcount(M) (Legendre): M of them keep 2M - popcount(M).
  const before = Math.floor((seq - 1 - block * blockSeqs) / 4);
  const offset = 2 * before - popcount(before);
  const length = seq % 4 === 0 ? keptCount(seq) - 1 : 0;
  return { block, offset: offset * hashSize, length: length * hashSize };
}

function popcount(value: number): number {
  let count = 0;
  for (let rest = value; rest > 0; rest >>= 1) count += rest & 1;
  return count;
}

/** What is kept for `seq`: its leaf hash, then its inner nodes sliced from its block's hashes (if any). */
export function keptOfBlock(
  seq: number,
  leafHash: Uint8Array,
  blockHashes: Uint8Array | undefined,
): Uint8Array {
  const { offset, length } = blockSlice(seq);
  if (length === 0 || !blockHashes) return leafHash;
  return Buffer.concat([leafHash, blockHashes.subarray(offset, offset + length)]);
}
