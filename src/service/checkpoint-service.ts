import { ActivityError } from '../domain/errors.js';
import type {
  IntegrityRepository,
  KeptHashes,
  KeptReads,
  SealOutcome,
  StoredCheckpoint,
  TreeHead,
} from '../domain/integrity-repository.js';
import { checkpointText, signsAsStored, tenantOrigin } from '../integrity/checkpoint.js';
import { type CheckpointSigner, openCheckpoint } from '../integrity/checkpoint-signer.js';
import {
  consistencyRanges,
  foldSubtrees,
  perfectSubtrees,
  type Subtree,
  verifyConsistency,
} from '../integrity/merkle.js';
import { keptReadsOf } from '../integrity/tree.js';
import { subtreesFromKept } from './tree-reads.js';

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
 * tenant with events its latest checkpoint does not cover, after sealing it
 * (computing the inner nodes of its new leaves). A tree is signed only
 * when it extends the latest signed one (stored, or kept outside the database and
 * given in `outside`, by tenant), shown by a consistency proof from the stored hashes
 * checked against that checkpoint's signed root: a tree restored from an older
 * backup, forked or rewritten is refused, and after signing the others the run fails
 * with INTEGRITY_FAILED naming each tenant refused.
 */
export async function signCheckpoints(
  repository: IntegrityRepository,
  signer: CheckpointSigner,
  {
    tenantId,
    outside = new Map(),
    onSaved = async () => {},
  }: {
    tenantId?: string;
    outside?: ReadonlyMap<string, string>;
    /** Told of each page of checkpoints once stored (IntegrityService records them). */
    onSaved?: (checkpoints: readonly SignedCheckpoint[]) => Promise<void>;
  } = {},
): Promise<SignedCheckpoint[]> {
  const signed: SignedCheckpoint[] = [];
  const refused: string[] = [];
  const refusing = <T>(work: () => T): T | undefined => {
    try {
      return work();
    } catch (error) {
      if (!(error instanceof ActivityError && error.code === 'INTEGRITY_FAILED')) throw error;
      refused.push(error.message);
      return undefined;
    }
  };
  // A page of tenants: checks on what is at hand, the trees sealed, then what every
  // tenant's root and consistency proofs need, read in one statement, then the signatures.
  const signPage = async (page: Array<{ head: TreeHead; latest: StoredCheckpoint | undefined }>) => {
    const planned = page.flatMap(
      ({ head, latest }) => refusing(() => planOf(signer, head, latest, outside.get(head.tenantId))) ?? [],
    );
    const sealed = await repository.seal(
      planned.map((plan) => ({ tenantId: plan.head.tenantId, through: plan.head.lastSeq })),
    );
    const plans = planned.filter(
      (plan) => refusing(() => checkSealed(plan.head, sealed.get(plan.head.tenantId))) === true,
    );
    const kept = await repository.keptHashesOfTenants(
      plans.map((plan) => ({ tenantId: plan.head.tenantId, ...plan.reads })),
    );
    const batch = plans.flatMap(
      (plan) =>
        refusing(() =>
          finish(signer, plan, kept.get(plan.head.tenantId) ?? { leaves: new Map(), nodes: new Map() }),
        ) ?? [],
    );
    await repository.saveCheckpoints(
      batch.map((checkpoint) => ({
        tenantId: checkpoint.tenantId,
        treeSize: checkpoint.size,
        rootHash: checkpoint.rootHash,
        note: checkpoint.note,
      })),
    );
    signed.push(...batch);
    await onSaved(batch);
  };
  if (tenantId !== undefined) {
    await signPage(await repository.uncheckpointed(undefined, 1, tenantId));
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

/** What signing a head takes: the checkpoints it must extend, and what to read of its tree. */
interface Plan {
  head: TreeHead;
  before: SignedBefore[];
  rootSubtrees: Subtree[];
  /** Per earlier checkpoint smaller than the tree: the subtrees of each hash of its consistency proof. */
  proofs: Array<{ before: SignedBefore; subtreesOf: Subtree[][] }>;
  reads: KeptReads;
}

const refusal = (tenantId: string, why: string) =>
  new ActivityError(
    'INTEGRITY_FAILED',
    `tenant ${tenantId}: ${why}; nothing was signed for it — run \`activity verify --tenant ${tenantId}\``,
  );

/**
 * Refuses a tree the sealer could not seal up to the last seq read, saying why. Sealed
 * past it is no refusal: another run sealed the events appended since, and what is
 * kept up to a seq never changes once sealed (verify holds the sealed size to the
 * last seq, reading both at once).
 */
function checkSealed(head: TreeHead, outcome: SealOutcome | undefined): true {
  if (outcome && outcome.sealedSize >= head.lastSeq) return true;
  throw refusal(
    head.tenantId,
    `its tree cannot be built past seq ${outcome?.sealedSize ?? 0} of ${head.lastSeq}: ${outcome?.stopped ?? 'not sealed'}`,
  );
}

/**
 * The plan of a head's checkpoint, or undefined when its tree is empty. Refused
 * (INTEGRITY_FAILED): a stored checkpoint whose columns are not its signed note's, or
 * a tree smaller than the latest checkpoint signed, in the database or kept outside
 * it (`outside`).
 */
function planOf(
  signer: CheckpointSigner,
  head: TreeHead,
  stored: StoredCheckpoint | undefined,
  outside: string | undefined,
): Plan | undefined {
  const { tenantId, lastSeq: treeSize } = head;
  const before: SignedBefore[] = [];
  if (stored) {
    const opened = openCheckpoint(stored.note, signer.trusted, tenantId);
    if (!opened.ok) {
      throw refusal(
        tenantId,
        `its stored checkpoint of ${stored.treeSize} events does not verify: ${opened.reason}`,
      );
    }
    if (!signsAsStored(opened, stored)) {
      throw refusal(
        tenantId,
        `its stored checkpoint says ${stored.treeSize} events but its signed note ${opened.size}, or another root`,
      );
    }
    before.push({ size: opened.size, rootHash: opened.rootHash, source: 'its stored checkpoint' });
  }
  if (outside !== undefined) {
    const opened = openCheckpoint(outside, signer.trusted, tenantId);
    if (!opened.ok) {
      throw refusal(tenantId, `its checkpoint kept outside the database does not verify: ${opened.reason}`);
    }
    before.push({
      size: opened.size,
      rootHash: opened.rootHash,
      source: 'its checkpoint kept outside the database',
    });
  }
  const latest = [...before].sort((a, b) => b.size - a.size)[0];
  if (latest && treeSize < latest.size) {
    throw refusal(
      tenantId,
      `its tree holds ${treeSize} events, fewer than the ${latest.size} of ${latest.source} (a restore, a truncation or tampering)`,
    );
  }
  if (treeSize === 0) return undefined;
  const rootSubtrees = perfectSubtrees([0, treeSize]);
  const proofs = before
    .filter((each) => each.size < treeSize)
    .map((each) => ({
      before: each,
      subtreesOf: consistencyRanges(each.size, treeSize).map(perfectSubtrees),
    }));
  const reads = keptReadsOf([...rootSubtrees, ...proofs.flatMap((proof) => proof.subtreesOf.flat())]);
  return { head, before, rootSubtrees, proofs, reads };
}

/**
 * The signed checkpoint of a plan, or undefined when the latest one signed is of the
 * same tree. Its root is the one the kept hashes make, and it must extend every
 * earlier checkpoint: a consistency proof from the kept hashes, checked against its root.
 */
function finish(
  signer: CheckpointSigner,
  { head, before, rootSubtrees, proofs }: Plan,
  kept: KeptHashes,
): SignedCheckpoint | undefined {
  const { tenantId, lastSeq: treeSize } = head;
  const rootHash = foldSubtrees(subtreesFromKept(kept, tenantId, rootSubtrees));
  for (const each of before) {
    if (each.size === treeSize && Buffer.compare(rootHash, each.rootHash) !== 0) {
      throw refusal(tenantId, `its tree of ${treeSize} events differs from ${each.source} of that size`);
    }
  }
  for (const { before: each, subtreesOf } of proofs) {
    const proof = subtreesOf.map((subtrees) => foldSubtrees(subtreesFromKept(kept, tenantId, subtrees)));
    if (!verifyConsistency(each.size, treeSize, proof, each.rootHash, rootHash)) {
      throw refusal(
        tenantId,
        `its tree of ${treeSize} events does not extend ${each.source} of ${each.size} (a fork, a restore or tampering)`,
      );
    }
  }
  if (before.some((each) => each.size === treeSize)) return undefined;
  const text = checkpointText({ origin: tenantOrigin(signer.logName, tenantId), size: treeSize, rootHash });
  return { tenantId, size: treeSize, rootHash, note: signer.sign(text) };
}
