import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository, KeptHashes } from '../domain/integrity-repository.js';
import { foldSubtrees, type LeafRange, perfectSubtrees, type Subtree } from '../integrity/merkle.js';
import { keptReadsOf, keptRowsOf, subtreeFromKept } from '../integrity/tree.js';

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
  extraLeaves: readonly number[] = [],
): Promise<{ heads: Uint8Array[]; kept: KeptHashes }> {
  const subtreesOf = ranges.map(perfectSubtrees);
  const { hashes, kept } = await subtreeHashes(repository, tenantId, subtreesOf.flat(), extraLeaves);
  let next = 0;
  const heads = subtreesOf.map((subtrees) => foldSubtrees(subtrees.map(() => hashes[next++] as Uint8Array)));
  return { heads, kept };
}

/** The hashes of perfect subtrees of a tenant's tree, from what is kept of them, in one statement. */
export async function subtreeHashes(
  repository: IntegrityRepository,
  tenantId: string,
  subtrees: readonly Subtree[],
  extraLeaves: readonly number[] = [],
): Promise<{ hashes: Uint8Array[]; kept: KeptHashes }> {
  const kept = await repository.keptHashes(tenantId, keptReadsOf(subtrees, extraLeaves));
  return { hashes: subtreesFromKept(kept, tenantId, subtrees), kept };
}

/** subtreeHashes from what was already read (see keptReadsOf). */
export function subtreesFromKept(
  kept: KeptHashes,
  tenantId: string,
  subtrees: readonly Subtree[],
): Uint8Array[] {
  return subtrees.map((subtree) => {
    const hash = subtreeFromKept(subtree, kept);
    if (hash) return hash;
    const from = subtree.index * 2 ** subtree.level + 1;
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: the tree hashes of seq ${from}..${from + 2 ** subtree.level - 1} cannot be read (what is kept for seq ${keptRowsOf(subtree).join(', ')} is missing, altered or not sealed); run \`activity verify --tenant ${tenantId}\``,
    );
  });
}
