import { type Kysely, sql } from 'kysely';
import type { KeptHashes, KeptReads } from '../../domain/integrity-repository.js';
import { hashSize } from '../../integrity/merkle.js';
import { blockSeqs, blockSlice } from '../../integrity/tree.js';
import type { StoreSchema } from '../schema.js';

/** What to read of one tenant's tree (see keptReadsOf). */
export interface KeptRequest extends KeptReads {
  tenantId: string;
}

/**
 * Leaf hashes and inner nodes of seqs of tenants (integrity/tree.ts), in one statement
 * where no event was purged: the leaf hash of each row asked for its leaf (or, for a
 * seq with no row, the one purge archived), and the slice of its block that holds a
 * seq's inner nodes, with no event row read for those. A seq held by two rows
 * (inserted by hand) has no leaf: neither can be trusted, as a row with none.
 */
export async function readKept(
  db: Kysely<StoreSchema>,
  requests: readonly KeptRequest[],
): Promise<Map<string, KeptHashes>> {
  const leafTenants: string[] = [];
  const leafSeqs: number[] = [];
  const nodeTenants: string[] = [];
  const nodeSeqs: number[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  for (const request of requests) {
    for (const seq of new Set(request.leaves)) {
      leafTenants.push(request.tenantId);
      leafSeqs.push(seq);
    }
    for (const seq of new Set(request.nodes)) {
      const slice = blockSlice(seq);
      if (slice.length === 0) continue;
      nodeTenants.push(request.tenantId);
      nodeSeqs.push(seq);
      offsets.push(slice.offset);
      lengths.push(slice.length);
    }
  }
  const kept = new Map(
    requests.map((request) => [
      request.tenantId,
      { leaves: new Map<number, Uint8Array>(), nodes: new Map<number, Uint8Array>() },
    ]),
  );
  if (leafSeqs.length === 0 && nodeSeqs.length === 0) return kept;
  const { rows } = await sql<{
    tenant_id: string;
    seq: string | number;
    is_leaf: boolean;
    stored: boolean;
    hashes: Uint8Array | null;
  }>`
    select k.tenant_id, k.seq, true as is_leaf, e.seq is not null as stored, e.leaf_hash as hashes
    from unnest(${leafTenants}::text[], ${leafSeqs}::bigint[]) as k(tenant_id, seq)
    left join activity_events e on e.tenant_id = k.tenant_id and e.seq = k.seq
    union all
    select k.tenant_id, k.seq, false, true, (
        select substring(b.hashes from k.start + 1 for k.length) from activity_tree_blocks b
        where b.tenant_id = k.tenant_id and b.block = (k.seq - 1) / ${blockSeqs})
    from unnest(${nodeTenants}::text[], ${nodeSeqs}::bigint[], ${offsets}::int[], ${lengths}::int[])
      as k(tenant_id, seq, start, length)`.execute(db);
  // Seqs held by two rows, or by a row with no leaf hash.
  const untrusted = new Set<string>();
  const purged: Array<{ tenantId: string; seq: number }> = [];
  for (const row of rows) {
    const seq = Number(row.seq);
    if (!row.is_leaf) {
      if (row.hashes && row.hashes.length > 0) kept.get(row.tenant_id)?.nodes.set(seq, row.hashes);
      continue;
    }
    if (!row.stored) {
      purged.push({ tenantId: row.tenant_id, seq });
      continue;
    }
    const leaves = kept.get(row.tenant_id)?.leaves as Map<number, Uint8Array>;
    const key = `${row.tenant_id}\u0000${seq}`;
    if (leaves.has(seq) || untrusted.has(key) || !row.hashes) {
      leaves.delete(seq);
      untrusted.add(key);
      continue;
    }
    leaves.set(seq, row.hashes);
  }
  if (purged.length > 0) {
    const archived = await archivedLeaves(db, purged);
    for (const { tenantId, seq } of purged) {
      const leaf = archived.get(`${tenantId}\u0000${seq}`);
      if (leaf) kept.get(tenantId)?.leaves.set(seq, leaf);
    }
  }
  return kept;
}

/** The leaf hashes purge archived for these seqs, by `tenant\0seq`. */
async function archivedLeaves(
  db: Kysely<StoreSchema>,
  wanted: ReadonlyArray<{ tenantId: string; seq: number }>,
): Promise<Map<string, Uint8Array>> {
  const { rows } = await sql<ArchiveRow & { tenant_id: string }>`
    select distinct on (s.tenant_id, a.from_seq) s.tenant_id, a.from_seq, a.through_seq, a.hashes
    from unnest(${wanted.map((each) => each.tenantId)}::text[], ${wanted.map((each) => each.seq)}::bigint[])
      as s(tenant_id, seq)
    cross join lateral (
      select * from activity_tree_archive a
      where a.tenant_id = s.tenant_id and a.from_seq <= s.seq
      order by a.from_seq desc limit 1) a
    where a.through_seq >= s.seq`.execute(db);
  const leaves = new Map<string, Uint8Array>();
  for (const row of rows) {
    for (const [seq, leaf] of splitArchive([row])) leaves.set(`${row.tenant_id}\u0000${seq}`, leaf);
  }
  return leaves;
}

/** The leaf hashes purge archived for a tenant's seqs in (afterSeq, throughSeq], by seq. */
export async function readArchivedLeaves(
  db: Kysely<StoreSchema>,
  tenantId: string,
  afterSeq: number,
  throughSeq: number,
): Promise<Map<number, Uint8Array>> {
  const { rows } = await sql<ArchiveRow>`
    select from_seq, through_seq, hashes from activity_tree_archive
    where tenant_id = ${tenantId} and from_seq <= ${throughSeq}::bigint and through_seq > ${afterSeq}::bigint
    order by from_seq`.execute(db);
  const leaves = new Map<number, Uint8Array>();
  for (const [seq, leaf] of splitArchive(rows)) {
    if (seq > afterSeq && seq <= throughSeq) leaves.set(seq, leaf);
  }
  return leaves;
}

/** The blocks of a tenant from `fromBlock` through `throughBlock`, by block. */
export async function readBlocks(
  db: Kysely<StoreSchema>,
  tenantId: string,
  fromBlock: number,
  throughBlock: number,
): Promise<Map<number, Uint8Array>> {
  const rows = await db
    .selectFrom('activity_tree_blocks')
    .select(['block', 'hashes'])
    .where('tenant_id', '=', tenantId)
    .where('block', '>=', fromBlock)
    .where('block', '<=', throughBlock)
    .execute();
  return new Map(rows.map((row) => [Number(row.block), row.hashes]));
}

interface ArchiveRow {
  from_seq: string | number;
  through_seq: string | number;
  hashes: Uint8Array;
}

/**
 * Each seq of archived runs with its leaf hash: a run holds its rows' leaf hashes end
 * to end. A run whose length does not add up (edited by hand) yields nothing past
 * where it stops adding up.
 */
function* splitArchive(runs: readonly ArchiveRow[]): Generator<[number, Uint8Array]> {
  for (const run of runs) {
    let offset = 0;
    for (let seq = Number(run.from_seq); seq <= Number(run.through_seq); seq++) {
      if (offset + hashSize > run.hashes.length) break;
      yield [seq, run.hashes.subarray(offset, offset + hashSize)];
      offset += hashSize;
    }
  }
}
