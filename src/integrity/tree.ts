import { createHash } from 'node:crypto';
import { foldSubtrees, hashSize, nodeHash, type Subtree } from './merkle.js';

/**
 * A tenant's tree as it is kept (migrations/0004): its size and compact range (the
 * roots of its perfect subtrees, largest first), and in each event row the leaf hash
 * followed by the hash of every perfect subtree of 4 leaves or more that the event
 * completes. `TreeBuilder` extends a tree the way the database does, to recompute it
 * from the events; `keptRowsOf` and `subtreeFromKept` find any perfect subtree's hash
 * in the kept rows, for proofs.
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

  /** Appends a leaf hash; returns what its event row keeps (see above). */
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

/** The compact range kept on a head row (32 bytes per subtree), split into its hashes. */
export function splitRange(range: Uint8Array): Uint8Array[] {
  if (range.length % hashSize !== 0) throw new RangeError('a compact range is a whole number of hashes');
  const hashes: Uint8Array[] = [];
  for (let offset = 0; offset < range.length; offset += hashSize) {
    hashes.push(range.subarray(offset, offset + hashSize));
  }
  return hashes;
}

/** How many hashes the row of `seq` keeps: 1, or the trailing zero bits of seq when 2 or more. */
export function keptCount(seq: number): number {
  let zeros = 0;
  while (seq % 2 ** (zeros + 1) === 0) zeros++;
  return Math.max(1, zeros);
}

/** The seqs of the rows that hold (or, for a pair of leaves, make) the subtree's hash. */
export function keptRowsOf({ level, index }: Subtree): number[] {
  if (level === 1) return [2 * index + 1, 2 * index + 2];
  return [(index + 1) * 2 ** level];
}

/**
 * A perfect subtree's hash from the kept hashes of the rows keptRowsOf named, or
 * undefined when a row is absent or keeps too few hashes (a tampered row).
 */
export function subtreeFromKept(
  { level, index }: Subtree,
  keptOf: (seq: number) => Uint8Array | undefined,
): Uint8Array | undefined {
  if (level === 1) {
    const left = keptOf(2 * index + 1);
    const right = keptOf(2 * index + 2);
    if (!left || !right || left.length < hashSize || right.length < hashSize) return undefined;
    return nodeHash(left.subarray(0, hashSize), right.subarray(0, hashSize));
  }
  const kept = keptOf((index + 1) * 2 ** level);
  const offset = level === 0 ? 0 : (level - 1) * hashSize;
  if (!kept || kept.length < offset + hashSize) return undefined;
  return kept.subarray(offset, offset + hashSize);
}
