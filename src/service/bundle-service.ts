import type { ActivityRepository } from '../domain/activity-repository.js';
import { ActivityError } from '../domain/errors.js';
import type { ActivityEvent } from '../domain/event.js';
import type { IntegrityRepository } from '../domain/integrity-repository.js';
import { type BundleProof, encodeHashes } from '../integrity/bundle.js';
import { parseCheckpointText } from '../integrity/checkpoint.js';
import { perfectSubtrees, type Subtree } from '../integrity/merkle.js';
import { RangeMerger, rangeProofSubtrees } from '../integrity/range-proof.js';
import { signedCheckpoint } from './proof-service.js';
import { subtreeHashes } from './tree-reads.js';

/** What `activity export --out` writes (see integrity/bundle.ts). */
export interface BundleContents {
  proof: BundleProof;
  checkpoint: string;
  /** Every event of the run, in seq order, read a slice at a time. */
  events: AsyncIterable<ActivityEvent>;
}

/** Seqs read per statement while the events are written. */
const seqsPerRead = 10_000;

/**
 * A bundle of a tenant's events from `since` to `until` (all by default), proved
 * against its latest checkpoint: events after it are not in the bundle until the next
 * checkpoint signs them. The hashes left and right of the run, with what is kept for
 * the run itself, must make the checkpoint's signed root before any is handed out (as
 * a proof is); a row missing from the run is an integrity failure, found before or
 * while the events are read.
 */
export async function bundleOf(
  repositories: { events: ActivityRepository; integrity: IntegrityRepository },
  tenantId: string,
  window: { since?: Date; until?: Date } = {},
): Promise<BundleContents> {
  const checkpoint = await signedCheckpoint(repositories.integrity, tenantId);
  const edge = async (order: 'asc' | 'desc', filter: { since?: Date; until?: Date }) =>
    (await repositories.events.page(tenantId, filter, { order, limit: 1 }))[0]?.seq;
  const first = window.since === undefined ? 1 : await edge('asc', { since: window.since });
  const last = Math.min(
    checkpoint.treeSize,
    (window.until === undefined ? checkpoint.treeSize : await edge('desc', { until: window.until })) ?? 0,
  );
  if (first === undefined || first > last) {
    throw new ActivityError(
      'NOT_FOUND',
      `tenant ${tenantId} has no events in that window up to its latest checkpoint (${checkpoint.treeSize} events): \`activity checkpoint\` signs newer ones`,
    );
  }
  const { left, right } = rangeProofSubtrees(first, last, checkpoint.treeSize);
  const run = perfectSubtrees([first - 1, last]);
  const [leftHashes, runHashes, rightHashes] = await Promise.all([
    subtreeHashes(repositories.integrity, tenantId, left),
    subtreeHashes(repositories.integrity, tenantId, run),
    subtreeHashes(repositories.integrity, tenantId, right),
  ]);
  const merger = new RangeMerger();
  const pushAll = (subtrees: readonly Subtree[], hashes: readonly Uint8Array[]) => {
    subtrees.forEach((subtree, index) => {
      merger.push(subtree, hashes[index] as Uint8Array);
    });
  };
  pushAll(left, leftHashes.hashes);
  pushAll(run, runHashes.hashes);
  pushAll(right, rightHashes.hashes);
  if (Buffer.compare(merger.root(), parseCheckpointText(checkpoint.note).rootHash) !== 0) {
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: the stored tree does not prove seq ${first}..${last} against its checkpoint of ${checkpoint.treeSize}; no bundle was written — run \`activity verify --tenant ${tenantId}\``,
    );
  }
  return {
    proof: {
      version: 1,
      tenant_id: tenantId,
      first_seq: first,
      last_seq: last,
      tree_size: checkpoint.treeSize,
      left: encodeHashes(leftHashes.hashes),
      right: encodeHashes(rightHashes.hashes),
    },
    checkpoint: checkpoint.note,
    events: runOf(repositories.integrity, tenantId, first, last),
  };
}

async function* runOf(
  repository: IntegrityRepository,
  tenantId: string,
  first: number,
  last: number,
): AsyncGenerator<ActivityEvent> {
  let expected = first;
  for (let after = first - 1; after < last; after += seqsPerRead) {
    for (const { seq, event } of await repository.treeRows(
      tenantId,
      after,
      Math.min(after + seqsPerRead, last),
    )) {
      if (seq !== expected || !event) {
        throw new ActivityError(
          'INTEGRITY_FAILED',
          `tenant ${tenantId}: seq ${expected} is ${seq < expected ? 'stored twice' : seq > expected ? 'missing' : 'not readable as an event'}; no bundle can prove this run — run \`activity verify --tenant ${tenantId}\``,
        );
      }
      expected++;
      yield event;
    }
  }
  if (expected <= last) {
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: events ${expected}..${last} are missing; run \`activity verify --tenant ${tenantId}\``,
    );
  }
}
