import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository, StoredCheckpoint, TreeHead } from '../domain/integrity-repository.js';
import { checkpointText, tenantOrigin } from '../integrity/checkpoint.js';
import { type CheckpointSigner, openCheckpoint } from '../integrity/checkpoint-signer.js';
import { consistencyRanges, foldSubtrees, perfectSubtrees, verifyConsistency } from '../integrity/merkle.js';
import { splitRange } from '../integrity/tree.js';
import { rangeHeads, subtreeHashes } from './tree-reads.js';

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
 * tenant whose tree is not the one its latest checkpoint signed. A tree is signed only
 * when it extends the latest signed one (stored, or kept outside the database and
 * given in `outside`, by tenant), shown by a consistency proof from the stored hashes
 * checked against that checkpoint's signed root: a tree restored from an older
 * backup, forked or rewritten is refused, and after signing the others the run fails
 * with INTEGRITY_FAILED naming each tenant refused.
 */
export async function signCheckpoints(
  repository: IntegrityRepository,
  signer: CheckpointSigner,
  { tenantId, outside = new Map() }: { tenantId?: string; outside?: ReadonlyMap<string, string> } = {},
): Promise<SignedCheckpoint[]> {
  const signed: SignedCheckpoint[] = [];
  const refused: string[] = [];
  const signPage = async (page: Array<{ head: TreeHead; latest: StoredCheckpoint | undefined }>) => {
    const batch: SignedCheckpoint[] = [];
    for (const { head, latest } of page) {
      try {
        const checkpoint = await checkpointOf(repository, signer, head, latest, outside.get(head.tenantId));
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

/** A checkpoint signed earlier, opened and checked, with where it is kept. */
interface SignedBefore {
  size: number;
  rootHash: Uint8Array;
  source: string;
}

/**
 * The signed checkpoint of a head, or undefined when the latest one signed is of the
 * same tree. Refused (INTEGRITY_FAILED): a head that is not a whole tree of its events
 * (lagging, or claiming more than the rows keep), a stored checkpoint whose columns are
 * not its signed note's, and a tree that does not extend the latest signed checkpoint,
 * in the database or kept outside it (`outside`).
 */
async function checkpointOf(
  repository: IntegrityRepository,
  signer: CheckpointSigner,
  head: TreeHead,
  stored: StoredCheckpoint | undefined,
  outside: string | undefined,
): Promise<SignedCheckpoint | undefined> {
  const { tenantId, treeSize, lastSeq } = head;
  const refuse = (why: string) =>
    new ActivityError(
      'INTEGRITY_FAILED',
      `tenant ${tenantId}: ${why}; nothing was signed for it — run \`activity verify --tenant ${tenantId}\``,
    );
  const signedBefore: SignedBefore[] = [];
  if (stored) {
    const opened = openCheckpoint(stored.note, signer.trusted, tenantId);
    if (!opened.ok)
      throw refuse(`its stored checkpoint of ${stored.treeSize} events does not verify: ${opened.reason}`);
    if (opened.size !== stored.treeSize || Buffer.compare(opened.rootHash, stored.rootHash) !== 0) {
      throw refuse(
        `its stored checkpoint says ${stored.treeSize} events but its signed note ${opened.size}, or another root`,
      );
    }
    signedBefore.push({ size: opened.size, rootHash: opened.rootHash, source: 'its stored checkpoint' });
  }
  if (outside !== undefined) {
    const opened = openCheckpoint(outside, signer.trusted, tenantId);
    if (!opened.ok)
      throw refuse(`its checkpoint kept outside the database does not verify: ${opened.reason}`);
    signedBefore.push({
      size: opened.size,
      rootHash: opened.rootHash,
      source: 'its checkpoint kept outside the database',
    });
  }
  const latest = signedBefore.sort((a, b) => b.size - a.size)[0];
  if (latest && treeSize < latest.size) {
    throw refuse(
      `its tree holds ${treeSize} events, fewer than the ${latest.size} of ${latest.source} (a restore, a truncation or tampering)`,
    );
  }
  if (treeSize !== lastSeq) {
    throw refuse(
      treeSize < lastSeq
        ? `its tree holds ${treeSize} of its ${lastSeq} events: \`activity migrate\` brings the rest in`
        : `its head row claims a tree of ${treeSize} events, but only ${lastSeq} were handed out`,
    );
  }
  if (treeSize === 0) return undefined;
  // The root the rows' kept hashes make, which must be the head row's: never the head row's word alone.
  const { hashes } = await subtreeHashes(repository, tenantId, perfectSubtrees([0, treeSize]));
  const rootHash = foldSubtrees(hashes);
  if (Buffer.compare(rootHash, foldSubtrees(splitRange(head.range))) !== 0) {
    throw refuse(`its head row's tree state does not match the hashes its events keep`);
  }
  // Every earlier checkpoint must be a prefix of this tree.
  for (const before of signedBefore) {
    if (before.size === treeSize) {
      if (Buffer.compare(rootHash, before.rootHash) !== 0) {
        throw refuse(`its tree of ${treeSize} events differs from ${before.source} of that size`);
      }
      continue;
    }
    const { heads } = await rangeHeads(repository, tenantId, consistencyRanges(before.size, treeSize));
    if (!verifyConsistency(before.size, treeSize, heads, before.rootHash, rootHash)) {
      throw refuse(
        `its tree of ${treeSize} events does not extend ${before.source} of ${before.size} (a fork, a restore or tampering)`,
      );
    }
  }
  if (latest?.size === treeSize) return undefined;
  const text = checkpointText({ origin: tenantOrigin(signer.logName, tenantId), size: treeSize, rootHash });
  return { tenantId, size: treeSize, rootHash, note: signer.sign(text) };
}
