import { type Kysely, sql } from 'kysely';
import type { SealOutcome } from '../../domain/integrity-repository.js';
import { hashSize, perfectSubtrees } from '../../integrity/merkle.js';
import {
  blockOf,
  blockSeqs,
  blockSlice,
  keptReadsOf,
  subtreeFromKept,
  TreeBuilder,
} from '../../integrity/tree.js';
import type { StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';
import { readArchivedLeaves, readKept } from './kept.js';

/** Leaves sealed per step (one transaction): memory, and how long seal rows stay locked, are bounded. */
const leavesPerStep = 20_000;
/**
 * Leaves read for one tenant in a step: a tenant that cannot be sealed (its next
 * event has no leaf hash yet, or is missing) costs each run that many rows at most.
 */
const leavesPerTenant = 4096;

interface SealRequest {
  tenantId: string;
  through: number;
}

/**
 * The sealer: computes the inner nodes of tenants' trees for the leaves past each
 * one's sealed size, up to `through`, and keeps them in their blocks
 * (migrations/0004). Each step is one transaction that locks the tenants' seal rows,
 * in tenant id order, so that sealers take turns and never deadlock; it reads the
 * compact range at each sealed size from what is kept, the block being filled and the
 * new leaves, then writes the blocks and the new sealed sizes. A tenant whose last
 * sealed leaf is not the one its row holds now (rows replaced after the head row was
 * moved back) is not sealed over. Writers never wait for
 * it: it locks no head row, and reads only leaves up to a last seq its caller read,
 * all committed. A tenant whose next leaf cannot be had (missing, held by two rows, or
 * stored before the tree with no leaf hash) is sealed up to it, and its outcome says
 * why not further; a row with no leaf hash is noted for `activity migrate` to hash.
 */
export async function sealTrees(
  db: Kysely<StoreSchema>,
  where: string,
  requests: readonly SealRequest[],
): Promise<Map<string, SealOutcome>> {
  const outcomes = new Map<string, SealOutcome>();
  let pending = [...new Map(requests.map((request) => [request.tenantId, request.through]))]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([tenantId, through]) => ({ tenantId, through }));
  while (pending.length > 0) {
    const step = await guarded(where, () => db.transaction().execute((trx) => sealStep(trx, pending)));
    for (const [tenantId, outcome] of step) outcomes.set(tenantId, outcome);
    pending = pending.filter((request) => {
      const outcome = step.get(request.tenantId);
      return !outcome || (outcome.stopped === undefined && outcome.sealedSize < request.through);
    });
  }
  return outcomes;
}

/** One step: every tenant already sealed far enough, and as many leaves of the others as a step takes. */
async function sealStep(
  trx: Kysely<StoreSchema>,
  requests: readonly SealRequest[],
): Promise<Map<string, SealOutcome>> {
  const ids = requests.map((request) => request.tenantId);
  await sql`insert into activity_tree_seals (tenant_id, sealed_size)
    select unnest(${ids}::text[]), 0 on conflict do nothing`.execute(trx);
  const { rows: seals } = await sql<{
    tenant_id: string;
    sealed_size: string | number;
    sealed_leaf: Uint8Array | null;
  }>`
    select tenant_id, sealed_size, sealed_leaf from activity_tree_seals
    where tenant_id = any(${ids}::text[]) order by tenant_id for update`.execute(trx);
  const sealedOf = new Map(seals.map((row) => [row.tenant_id, Number(row.sealed_size)]));
  const sealedLeafOf = new Map(seals.map((row) => [row.tenant_id, row.sealed_leaf]));
  const outcomes = new Map<string, SealOutcome>();
  const work: Array<{ tenantId: string; from: number; through: number }> = [];
  let budget = leavesPerStep;
  for (const { tenantId, through } of requests) {
    const sealed = sealedOf.get(tenantId) ?? 0;
    if (sealed >= through) outcomes.set(tenantId, { sealedSize: sealed });
    else if (budget > 0) {
      const upTo = Math.min(through, sealed + budget, sealed + leavesPerTenant);
      budget -= upTo - sealed;
      work.push({ tenantId, from: sealed, through: upTo });
    }
  }
  if (work.length === 0) return outcomes;

  const rangeSubtrees = work.map((each) => perfectSubtrees([0, each.from]));
  const filling = work.filter((each) => each.from % blockSeqs !== 0);
  // One after the other: a transaction is one connection.
  const kept = await readKept(
    trx,
    work.map((each, index) => ({
      tenantId: each.tenantId,
      ...keptReadsOf(rangeSubtrees[index] ?? [], each.from > 0 ? [each.from] : []),
    })),
  );
  const { rows: blockRows } = await sql<{ tenant_id: string; hashes: Uint8Array }>`
      select b.tenant_id, b.hashes
      from unnest(${filling.map((each) => each.tenantId)}::text[],
        ${filling.map((each) => blockOf(each.from + 1))}::bigint[]) as k(tenant_id, block)
      join activity_tree_blocks b on b.tenant_id = k.tenant_id and b.block = k.block`.execute(trx);
  const { rows: leafRows } = await sql<{
    tenant_id: string;
    seq: string | number;
    leaf_hash: Uint8Array | null;
  }>`
      select e.tenant_id, e.seq, e.leaf_hash
      from unnest(${work.map((each) => each.tenantId)}::text[], ${work.map((each) => each.from)}::bigint[],
        ${work.map((each) => each.through)}::bigint[]) as k(tenant_id, after, through)
      join activity_events e on e.tenant_id = k.tenant_id and e.seq > k.after and e.seq <= k.through
      order by e.tenant_id, e.seq`.execute(trx);
  const fillingOf = new Map(blockRows.map((row) => [row.tenant_id, row.hashes]));
  const leavesOf = new Map<string, Array<{ seq: number; leaf: Uint8Array | null }>>();
  for (const row of leafRows) {
    const leaves = leavesOf.get(row.tenant_id) ?? [];
    leavesOf.set(row.tenant_id, leaves);
    leaves.push({ seq: Number(row.seq), leaf: row.leaf_hash });
  }

  const blocks: Array<{ tenantId: string; block: number; hashes: Uint8Array }> = [];
  const grown: Array<{ tenantId: string; sealedSize: number; sealedLeaf: Uint8Array }> = [];
  const unhashed: Array<{ tenantId: string; seq: number }> = [];
  for (const [index, { tenantId, from, through }] of work.entries()) {
    const keptOf = kept.get(tenantId) ?? { leaves: new Map(), nodes: new Map() };
    const range = (rangeSubtrees[index] ?? []).map((subtree) => subtreeFromKept(subtree, keptOf));
    const filled = blockSlice(from + 1).offset;
    const block = fillingOf.get(tenantId) ?? new Uint8Array();
    if (range.some((hash) => hash === undefined) || (from % blockSeqs !== 0 && block.length < filled)) {
      outcomes.set(tenantId, {
        sealedSize: from,
        stopped: `the inner nodes of its tree up to seq ${from} cannot be read (a leaf hash or a block was altered or removed)`,
      });
      continue;
    }
    const lastLeaf = keptOf.leaves.get(from);
    const sealedLeaf = sealedLeafOf.get(tenantId);
    if (from > 0 && !(lastLeaf && sealedLeaf && Buffer.compare(lastLeaf, sealedLeaf) === 0)) {
      outcomes.set(tenantId, {
        sealedSize: from,
        stopped: `event ${from} is not the event sealed at that seq: its row was replaced or altered since`,
      });
      continue;
    }
    const builder = new TreeBuilder(from, range as Uint8Array[]);
    let newestLeaf: Uint8Array | undefined;
    let nodes: Uint8Array[] = from % blockSeqs === 0 ? [] : [block.subarray(0, filled)];
    const leaves = leavesOf.get(tenantId) ?? [];
    let archived: Map<number, Uint8Array> | undefined;
    let stopped: string | undefined;
    for (let seq = from + 1, next = 0; seq <= through; seq++) {
      let leaf: Uint8Array | undefined;
      if (leaves[next]?.seq === seq) {
        const row = leaves[next++];
        if (leaves[next]?.seq === seq) {
          stopped = `event ${seq} is held by two rows`;
          break;
        }
        if (!row?.leaf) {
          stopped = `event ${seq} has no leaf hash (stored before the tree): \`activity migrate\` brings it in`;
          unhashed.push({ tenantId, seq });
          break;
        }
        leaf = row.leaf;
      } else {
        archived ??= await readArchivedLeaves(trx, tenantId, from, through);
        leaf = archived.get(seq);
        if (!leaf) {
          stopped = `event ${seq} is missing`;
          break;
        }
      }
      if (leaf.length !== hashSize) {
        stopped = `event ${seq}'s leaf hash is ${leaf.length} bytes, not ${hashSize}: it was altered`;
        break;
      }
      const keptHashes = builder.push(leaf);
      newestLeaf = leaf;
      if (seq % 4 === 0) nodes.push(keptHashes.subarray(hashSize));
      if (seq % blockSeqs === 0) {
        blocks.push({ tenantId, block: blockOf(seq), hashes: Buffer.concat(nodes) });
        nodes = [];
      }
    }
    if (builder.size % blockSeqs !== 0 && builder.size > from) {
      blocks.push({ tenantId, block: blockOf(builder.size), hashes: Buffer.concat(nodes) });
    }
    outcomes.set(
      tenantId,
      stopped === undefined ? { sealedSize: builder.size } : { sealedSize: builder.size, stopped },
    );
    if (newestLeaf) grown.push({ tenantId, sealedSize: builder.size, sealedLeaf: newestLeaf });
  }

  if (blocks.length > 0) {
    await sql`
      insert into activity_tree_blocks (tenant_id, block, hashes)
      select k.tenant_id, k.block, decode(k.hashes, 'hex')
      from unnest(${blocks.map((each) => each.tenantId)}::text[], ${blocks.map((each) => each.block)}::bigint[],
        ${blocks.map((each) => Buffer.from(each.hashes).toString('hex'))}::text[]) as k(tenant_id, block, hashes)
      on conflict (tenant_id, block) do update set hashes = excluded.hashes`.execute(trx);
  }
  if (unhashed.length > 0) {
    // For migrate to find: an append that began before migration 0004 and ended after it.
    await sql`
      insert into activity_tree_backfill (tenant_id, through_seq)
      select * from unnest(${unhashed.map((each) => each.tenantId)}::text[],
        ${unhashed.map((each) => each.seq)}::bigint[])
      on conflict (tenant_id) do update
        set through_seq = greatest(activity_tree_backfill.through_seq, excluded.through_seq)`.execute(trx);
  }
  if (grown.length > 0) {
    await sql`
      update activity_tree_seals s set sealed_size = k.sealed_size, sealed_leaf = decode(k.sealed_leaf, 'hex')
      from unnest(${grown.map((each) => each.tenantId)}::text[], ${grown.map((each) => each.sealedSize)}::bigint[],
        ${grown.map((each) => Buffer.from(each.sealedLeaf).toString('hex'))}::text[])
        as k(tenant_id, sealed_size, sealed_leaf)
      where s.tenant_id = k.tenant_id`.execute(trx);
  }
  return outcomes;
}
