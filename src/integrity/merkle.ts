import { createHash, hash } from 'node:crypto';

/**
 * RFC 9162 §2.1 Merkle trees over SHA-256: hashes, tree heads, and the inclusion and
 * consistency proofs, made and checked. Hashes are 32-byte Uint8Arrays. The verifiers
 * reject rather than guess: a proof of the wrong length, a hash of the wrong size, an
 * index or a size out of range, all fail, as a forged proof must (the RFC 6962 test
 * vectors of transparency-dev/merkle are their fixtures).
 */

export const hashSize = 32;

/** `H(0x00 ‖ leaf)`. */
export function leafHash(leaf: Uint8Array): Uint8Array {
  return createHash('sha256').update(Uint8Array.of(0)).update(leaf).digest();
}

/** `H(0x01 ‖ left ‖ right)`. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  // One buffer and one hash: a tree of n leaves takes n - 1 of them.
  const input = Buffer.allocUnsafe(1 + left.length + right.length);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 1 + left.length);
  return hash('sha256', input, 'buffer');
}

/** The tree head (MTH) of leaves given by their hashes; the hash of no input for none. */
export function treeHead(leafHashes: readonly Uint8Array[]): Uint8Array {
  if (leafHashes.length === 0) return createHash('sha256').digest();
  return headOf(leafHashes, 0, leafHashes.length);
}

/** RFC 9162 §2.1.3.1: the inclusion proof of leaf `index` in the tree of `leafHashes`. */
export function inclusionProof(leafHashes: readonly Uint8Array[], index: number): Uint8Array[] {
  return inclusionRanges(index, leafHashes.length).map(([from, to]) => headOf(leafHashes, from, to));
}

/** RFC 9162 §2.1.4.1: the consistency proof of the tree of `size1` leaves with the whole. */
export function consistencyProof(leafHashes: readonly Uint8Array[], size1: number): Uint8Array[] {
  return consistencyRanges(size1, leafHashes.length).map(([from, to]) => headOf(leafHashes, from, to));
}

/** A run of leaves [from, to) whose head is one hash of a proof. */
export type LeafRange = readonly [from: number, to: number];

/**
 * The ranges whose heads make the inclusion proof of leaf `index` in a tree of `size`,
 * in proof order. Each starts at a multiple of a power of two at least its length, so
 * its head is the fold of its perfect subtrees (see perfectSubtrees).
 */
export function inclusionRanges(index: number, size: number): LeafRange[] {
  if (!isIndex(index) || !isIndex(size) || index >= size) {
    throw new RangeError(`leaf ${index} is not in a tree of ${size}`);
  }
  const ranges: LeafRange[] = [];
  // Down from the whole tree to the leaf; the siblings, leaf first, are the proof.
  let from = 0;
  let to = size;
  while (to - from > 1) {
    const split = from + largestPowerOfTwoBelow(to - from);
    if (index < split) {
      ranges.push([split, to]);
      to = split;
    } else {
      ranges.push([from, split]);
      from = split;
    }
  }
  return ranges.reverse();
}

/** The ranges whose heads make the consistency proof from `size1` to `size2`, in proof order. */
export function consistencyRanges(size1: number, size2: number): LeafRange[] {
  if (!isIndex(size1) || !isIndex(size2) || size1 < 1 || size1 > size2) {
    throw new RangeError(`no consistency proof from ${size1} to ${size2}`);
  }
  const ranges: LeafRange[] = [];
  let from = 0;
  let to = size2;
  let m = size1;
  // SUBPROOF(m, D[from:to], b): b is true while the old tree is the left part exactly.
  let whole = true;
  while (m !== to - from) {
    const k = largestPowerOfTwoBelow(to - from);
    if (m <= k) {
      ranges.push([from + k, to]);
      to = from + k;
    } else {
      ranges.push([from, from + k]);
      from += k;
      m -= k;
      whole = false;
    }
  }
  if (!whole) ranges.push([from, to]);
  return ranges.reverse();
}

/** A perfect subtree: the 2^level leaves from index × 2^level. */
export interface Subtree {
  level: number;
  index: number;
}

/**
 * The perfect subtrees that make up leaves [from, to), largest first, when `from` is a
 * multiple of a power of two at least `to - from` (every range of a proof, and every
 * prefix [0, n)): the range's head is their fold (foldSubtrees).
 */
export function perfectSubtrees([from, to]: LeafRange): Subtree[] {
  const subtrees: Subtree[] = [];
  let start = from;
  while (start < to) {
    let size = 1;
    while (start % (size * 2) === 0 && start + size * 2 <= to) size *= 2;
    subtrees.push({ level: Math.log2(size), index: start / size });
    start += size;
  }
  return subtrees;
}

/** The head of consecutive perfect subtrees, largest first, given their hashes: folded from the right. */
export function foldSubtrees(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) throw new RangeError('no subtrees to fold');
  let head = hashes[hashes.length - 1] as Uint8Array;
  for (let i = hashes.length - 2; i >= 0; i--) head = nodeHash(hashes[i] as Uint8Array, head);
  return head;
}

/** RFC 9162 §2.1.3.2: whether `proof` shows the leaf at `index` in the tree of `size` with head `root`. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!isIndex(index) || !isIndex(size) || index >= size) return false;
  if (leaf.length !== hashSize || root.length !== hashSize || !proof.every(isHash)) return false;
  const computed = rootFromInclusion(index, size, leaf, proof);
  return computed !== undefined && equal(computed, root);
}

/**
 * RFC 9162 §2.1.4.2: whether `proof` shows the tree of `size1` leaves with head `root1`
 * to be the first `size1` leaves of the tree of `size2` with head `root2`.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!isIndex(size1) || !isIndex(size2) || size1 > size2) return false;
  // An empty tree is consistent with anything: proving it proves nothing.
  if (size1 === 0) return false;
  if (size1 === size2) return proof.length === 0 && equal(root1, root2);
  if (root1.length !== hashSize || root2.length !== hashSize || proof.length === 0 || !proof.every(isHash)) {
    return false;
  }
  // When the old tree is a whole left subtree, its head starts the path.
  const path = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  let fr = path[0] as Uint8Array;
  let sr = fr;
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(fr, root1) && equal(sr, root2);
}

/** The head an inclusion proof leads to, or undefined when the proof has the wrong length. */
function rootFromInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array | undefined {
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn = Math.floor(fn / 2);
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : undefined;
}

/** The head of leaves [from, to), which is not empty. */
function headOf(leafHashes: readonly Uint8Array[], from: number, to: number): Uint8Array {
  if (to - from === 1) return leafHashes[from] as Uint8Array;
  const split = from + largestPowerOfTwoBelow(to - from);
  return nodeHash(headOf(leafHashes, from, split), headOf(leafHashes, split, to));
}

/** The largest power of two smaller than `n` (n ≥ 2). */
function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** By doubling, not by bits: sizes go past 2^31. */
function isPowerOfTwo(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}

/** A tree size or leaf index: a whole number a double holds exactly. */
function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function isHash(hash: Uint8Array): boolean {
  return hash.length === hashSize;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
