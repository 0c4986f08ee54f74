import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository, StoredCheckpoint, TreeHead } from '../domain/integrity-repository.js';
import { checkpointText, parseCheckpointText, tenantOrigin } from '../integrity/checkpoint.js';
import type { CheckpointSigner } from '../integrity/checkpoint-signer.js';
import { consistencyRanges, foldSubtrees, verifyConsistency } from '../integrity/merkle.js';
import { openNote } from '../integrity/signed-note.js';
import { splitRange } from '../integrity/tree.js';
import { rangeHeads } from './tree-reads.js';

export interface SignedCheckpoint {
  tenantId: string;
  size: number;
  rootHash: Uint8Array;
  note: string;
}

/** Tenants read per statement when every tenant with new events is checkpointed. */
const tenantsPerPage = 1000;

/**
 * `activity checkpoint`: signs and stores the tree head of one tenant, or of every
 * tenant whose tree grew since its latest checkpoint. A tree is signed only when it
 * extends the latest signed one, shown by a consistency proof from the stored
 * hashes checked against that checkpoint's signed root: a tree restored from an older
 * backup, forked or rewritten is refused, and after signing the others the run fails
 * with INTEGRITY_FAILED naming each tenant refused.
 */
export async function signCheckpoints(
  repository: IntegrityRepository,
  signer: CheckpointSigner,
  { tenantId }: { tenantId?: string } = {},
): Promise<SignedCheckpoint[]> {
  const signed: SignedCheckpoint[] = [];
  const refused: string[] = [];
  const signPage = async (page: Array<{ head: TreeHead; latest: StoredCheckpoint | undefined }>) => {
    const batch: SignedCheckpoint[] = [];
    for (const { head, latest } of page) {
      try {
        const checkpoint = await checkpointOf(repository, signer, head, latest);
        if (checkpoint) batch.push(checkpoint);
      } catch (error) {
        if (!(error instanceof ActivityError && error.code === 'INTEGRITY_FAILED')) throw error;
        refused.push(error.message);
      }
    }
    await repository.saveCheckpoints(
      batch.map((checkpoint) => ({
        tenantId: checkpoint.tenantId,
        treeSize: checkpoint.size,
        rootHash: checkpoint.rootHash,
        note: checkpoint.note,
      })),
    );
    signed.push(...batch);
  };
  if (tenantId !== undefined) {
    const head = await repository.head(tenantId);
    if (head) await signPage([{ head, latest: await repository.checkpoint(tenantId) }]);
  } else {
    let after: string | undefined;
    for (;;) {
      const page = await repository.uncheckpointed(after, tenantsPerPage);
      await signPage(page);
      if (page.length < tenantsPerPage) break;
      after = page[page.length - 1]?.head.tenantId;
    }
  }
  if (refused.length > 0) {
    throw new ActivityError(
      'INTEGRITY_FAILED',
      `${signed.length} checkpoint(s) signed; refused to sign ${refused.length}: ${refused.join('; ')}`,
    );
  }
  return signed;
}

/** The signed checkpoint of a head, or undefined when its latest checkpoint is of the same tree. */
async function checkpointOf(
  repository: IntegrityRepository,
  signer: CheckpointSigner,
  head: TreeHead,
  latest: StoredCheckpoint | undefined,
): Promise<SignedCheckpoint | undefined> {
  const { tenantId, treeSize } = head;
  const refuse = (why: string) =>
    new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: ${why}; nothing was signed for it — run \`activity verify --tenant ${tenantId}\``,
    );
  const rootHash = treeSize === 0 ? undefined : foldSubtrees(splitRange(head.range));
  if (rootHash === undefined) return undefined;
  if (latest) {
    const opened = openNote(latest.note, signer.verifier);
    if (!opened.ok)
      throw refuse(`its latest checkpoint (size ${latest.treeSize}) does not verify: ${opened.reason}`);
    const signedRoot = parseCheckpointText(opened.text);
    if (treeSize < signedRoot.size) {
      throw refuse(
        `its tree holds ${treeSize} events, fewer than the ${signedRoot.size} of its checkpoint signed at ${latest.signedAt.toISOString()} (a restore, a truncation or tampering)`,
      );
    }
    if (treeSize === signedRoot.size) {
      if (Buffer.compare(rootHash, signedRoot.rootHash) !== 0) {
        throw refuse(`its tree of ${treeSize} events differs from its checkpoint of that size`);
      }
      return undefined;
    }
    const { heads } = await rangeHeads(repository, tenantId, consistencyRanges(signedRoot.size, treeSize));
    if (!verifyConsistency(signedRoot.size, treeSize, heads, signedRoot.rootHash, rootHash)) {
      throw refuse(
        `its tree of ${treeSize} events does not extend its checkpoint of ${signedRoot.size} (a fork, a restore or tampering)`,
      );
    }
  }
  const text = checkpointText({ origin: tenantOrigin(signer.logName, tenantId), size: treeSize, rootHash });
  return { tenantId, size: treeSize, rootHash, note: signer.sign(text) };
}
