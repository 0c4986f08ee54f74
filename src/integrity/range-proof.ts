import { createHash } from 'node:crypto';
import { foldSubtrees, nodeHash, perfectSubtrees, type Subtree } from './merkle.js';

/**
 * What proves a contiguous run of events, seq `first` to `last`, against the root of
 * a tree of `size` leaves: the hashes of the perfect subtrees left of it (covering
 * seq 1 to first - 1, largest first) and right of it (covering seq last + 1 to size,
 * each the largest aligned one, in order). A verifier hashes the events' leaves and
 * merges all of them, in order, into the tree's root (RangeMerger).
 */
export function rangeProofSubtrees(
  first: number,
  last: number,
  size: number,
): { left: Subtree[]; right: Subtree[] } {
  if (!(Number.isSafeInteger(first) && Number.isSafeInteger(last) && Number.isSafeInteger(size))) {
    throw new RangeError('seqs and sizes are whole numbers');
  }
  if (first < 1 || last < first || last > size) {
    throw new RangeError(`seq ${first}..${last} is not a run of a tree of ${size}`);
  }
  return { left: perfectSubtrees([0, first - 1]), right: perfectSubtrees([last, size]) };
}

/**
 * Merges aligned perfect subtrees, given left to right with nothing missing between
 * them, into a tree's compact range: two neighbours of one level, the left one at an
 * even index, become their parent. A leaf is a subtree of level 0.
 */
export class RangeMerger {
  readonly #stack: Array<Subtree & { hash: Uint8Array }> = [];
  #end = 0;

  /** Adds the subtree that starts where the last ended; a RangeError when it does not. */
  push(subtree: Subtree, hash: Uint8Array): void {
    if (subtree.index * 2 ** subtree.level !== this.#end) {
      throw new RangeError(`subtree ${subtree.level}/${subtree.index} does not start at leaf ${this.#end}`);
    }
    this.#end += 2 ** subtree.level;
    let node = { ...subtree, hash };
    for (;;) {
      const top = this.#stack[this.#stack.length - 1];
      if (!top || top.level !== node.level || top.index % 2 !== 0) break;
      this.#stack.pop();
      node = { level: node.level + 1, index: top.index / 2, hash: nodeHash(top.hash, node.hash) };
    }
    this.#stack.push(node);
  }

  /** How many leaves the subtrees pushed cover. */
  get size(): number {
    return this.#end;
  }

  /** The root of the tree of every leaf pushed (RFC 9162 MTH). */
  root(): Uint8Array {
    if (this.#stack.length === 0) return createHash('sha256').digest();
    return foldSubtrees(this.#stack.map((node) => node.hash));
  }
}
