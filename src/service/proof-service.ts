import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository, StoredCheckpoint } from '../domain/integrity-repository.js';
import { parseCheckpointText, signsAsStored } from '../integrity/checkpoint.js';
import {
  consistencyRanges,
  inclusionRanges,
  verifyConsistency,
  verifyInclusion,
} from '../integrity/merkle.js';
import { rangeHeads } from './tree-reads.js';

/** The inclusion proof of an event against a signed checkpoint (the contract's JSON). */
export interface InclusionProof {
  tenant_id: string;
  seq: number;
  tree_size: number;
  leaf_hash: string;
  proof: string[];
  checkpoint: string;
}

export interface ConsistencyProof {
  from: number;
  to: number;
  proof: string[];
}

/**
 * `activity proof` and GET /proof: the RFC 9162 inclusion proof of event `seq`
 * against the tenant's latest checkpoint, or the one of `size`. The proof is checked
 * against the checkpoint's root before it is handed out: stored hashes altered by
 * hand fail here with INTEGRITY_FAILED, never as a proof that does not verify.
 */
export async function inclusionProofOf(
  repository: IntegrityRepository,
  tenantId: string,
  seq: number,
  size?: number,
): Promise<InclusionProof> {
  const checkpoint = await signedCheckpoint(repository, tenantId, size);
  if (seq > checkpoint.treeSize) {
    const head = await repository.head(tenantId);
    throw new ActivityError(
      'NOT_FOUND',
      seq > (head?.lastSeq ?? 0)
        ? `tenant ${tenantId} has no event ${seq}: its last is ${head?.lastSeq ?? 0}`
        : `event ${seq} of tenant ${tenantId} is not in its checkpoint of ${checkpoint.treeSize} events${size === undefined ? ': `activity checkpoint` signs a newer one' : ''}`,
    );
  }
  const { heads, kept } = await rangeHeads(
    repository,
    tenantId,
    inclusionRanges(seq - 1, checkpoint.treeSize),
    [seq],
  );
  const leafHash = kept.leaves.get(seq);
  const root = parseCheckpointText(checkpoint.note).rootHash;
  if (!leafHash || !verifyInclusion(seq - 1, checkpoint.treeSize, leafHash, heads, root)) {
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: the stored tree does not prove event ${seq} against its checkpoint of ${checkpoint.treeSize}; run \`activity verify --tenant ${tenantId}\``,
    );
  }
  return {
    tenant_id: tenantId,
    seq,
    tree_size: checkpoint.treeSize,
    leaf_hash: Buffer.from(leafHash).toString('base64'),
    proof: heads.map((hash) => Buffer.from(hash).toString('base64')),
    checkpoint: checkpoint.note,
  };
}

/**
 * GET /consistency: the consistency proof between two of the tenant's checkpoints,
 * of sizes `from` and `to`, checked against both signed roots before it is handed out.
 */
export async function consistencyProofOf(
  repository: IntegrityRepository,
  tenantId: string,
  from: number,
  to: number,
): Promise<ConsistencyProof> {
  if (from > to) {
    throw new ActivityError('PARAMETER_INVALID', `from (${from}) must not be past to (${to})`, {
      issues: [{ path: 'from', message: 'must not be past to' }],
    });
  }
  const [older, newer] = await Promise.all([
    signedCheckpoint(repository, tenantId, from),
    signedCheckpoint(repository, tenantId, to),
  ]);
  const { heads } =
    from === to ? { heads: [] } : await rangeHeads(repository, tenantId, consistencyRanges(from, to));
  const oldRoot = parseCheckpointText(older.note).rootHash;
  const newRoot = parseCheckpointText(newer.note).rootHash;
  if (!verifyConsistency(from, to, heads, oldRoot, newRoot)) {
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: the stored tree does not prove its checkpoint of ${from} consistent with its checkpoint of ${to}; run \`activity verify --tenant ${tenantId}\``,
    );
  }
  return { from, to, proof: heads.map((hash) => Buffer.from(hash).toString('base64')) };
}

/** The tenant's checkpoint of `size` (the latest without one), or NOT_FOUND that says how to get one. */
export async function signedCheckpoint(
  repository: IntegrityRepository,
  tenantId: string,
  size?: number,
): Promise<StoredCheckpoint> {
  const checkpoint = await repository.checkpoint(tenantId, size);
  if (checkpoint) {
    if (!signsAsStored(parseCheckpointText(checkpoint.note), checkpoint)) {
      throw new ActivityError(
        'INTEGRITY_FAILED',
        `tenant ${tenantId}: its stored checkpoint of ${checkpoint.treeSize} events is not what its note says; run \`activity verify --tenant ${tenantId}\``,
      );
    }
    return checkpoint;
  }
  throw new ActivityError(
    'NOT_FOUND',
    size === undefined
      ? `tenant ${tenantId} has no checkpoint yet: \`activity checkpoint --tenant ${tenantId}\` signs one`
      : `tenant ${tenantId} has no checkpoint of ${size} events`,
  );
}
