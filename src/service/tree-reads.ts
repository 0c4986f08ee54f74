import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository } from '../domain/integrity-repository.js';
import {
  foldSubtrees,
  hashSize,
  type LeafRange,
  perfectSubtrees,
  type Subtree,
} from '../integrity/merkle.js';
import { keptRowsOf, keptSeqsOf, subtreeFromKept } from '../integrity/tree.js';

/**
 * The heads of ranges of a tenant's tree (the hashes of a proof), from the hashes kept
 * for its seqs, read in one statement of O(log n) rows. A hash that cannot be read (a
 * row or block deleted or altered by hand) is an integrity failure: no proof is ever
 * made up.
 */
export async function rangeHeads(
  repository: IntegrityRepository,
  tenantId: string,
  ranges: readonly LeafRange[],
  extraSeqs: readonly number[] = [],
): Promise<{ heads: Uint8Array[]; kept: Map<number, Uint8Array> }> {
  const subtreesOf = ranges.map(perfectSubtrees);
  const { hashes, kept } = await subtreeHashes(repository, tenantId, subtreesOf.flat(), extraSeqs);
  let next = 0;
  const heads = subtreesOf.map((subtrees) => foldSubtrees(subtrees.map(() => hashes[next++] as Uint8Array)));
  return { heads, kept };
}

/** The hashes of perfect subtrees of a tenant's tree, from what is kept of them, in one statement. */
export async function subtreeHashes(
  repository: IntegrityRepository,
  tenantId: string,
  subtrees: readonly Subtree[],
  extraSeqs: readonly number[] = [],
): Promise<{ hashes: Uint8Array[]; kept: Map<number, Uint8Array> }> {
  const kept = await repository.keptHashes(tenantId, keptSeqsOf(subtrees, extraSeqs));
  return { hashes: subtreesFromKept(kept, tenantId, subtrees), kept };
}

/** subtreeHashes from what was already read (see keptSeqsOf). */
export function subtreesFromKept(
  kept: ReadonlyMap<number, Uint8Array>,
  tenantId: string,
  subtrees: readonly Subtree[],
): Uint8Array[] {
  return subtrees.map((subtree) => {
    const hash = subtreeFromKept(subtree, (seq) => kept.get(seq));
    if (hash) return hash;
    const from = subtree.index * 2 ** subtree.level + 1;
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: the tree hashes of seq ${from}..${from + 2 ** subtree.level - 1} cannot be read (what is kept for seq ${keptRowsOf(subtree).join(', ')} is missing, altered or not sealed); run \`activity verify --tenant ${tenantId}\``,
    );
  });
}

/** The leaf hash a row keeps. */
export function keptLeafHash(kept: Uint8Array | undefined): Uint8Array | undefined {
  return kept && kept.length >= hashSize ? kept.subarray(0, hashSize) : undefined;
}
