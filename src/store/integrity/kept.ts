import { type Kysely, sql } from 'kysely';
import { hashSize } from '../../integrity/merkle.js';
import { blockOf, blockSeqs, blockSlice, keptOfBlock } from '../../integrity/tree.js';
import type { StoreSchema } from '../schema.js';

/** Seqs of one tenant. */
export interface KeptRequest {
  tenantId: string;
  seqs: readonly number[];
}

/**
 * What is kept of the tree for seqs of tenants (integrity/tree.ts), in one statement
 * where no event was purged: each row's leaf hash and the slice of its block that
 * holds its inner nodes; for a seq with no row, the leaf hash purge archived. A seq
 * held by two rows (inserted by hand) is absent: neither can be trusted, as is a row
 * with no leaf hash.
 */
export async function readKept(
  db: Kysely<StoreSchema>,
  requests: readonly KeptRequest[],
): Promise<Map<string, Map<number, Uint8Array>>> {
  const tenants: string[] = [];
  const seqs: number[] = [];
  const offsets: number[] = [];
  const lengths: number[] = [];
  for (const request of requests) {
    for (const seq of new Set(request.seqs)) {
      const slice = blockSlice(seq);
      tenants.push(request.tenantId);
      seqs.push(seq);
      offsets.push(slice.offset);
      lengths.push(slice.length);
    }
  }
  const byTenant = new Map<string, Map<number, Uint8Array>>(
    requests.map((request) => [request.tenantId, new Map()]),
  );
  if (seqs.length === 0) return byTenant;
  const { rows } = await sql<{
    tenant_id: string;
    seq: string | number;
    stored: boolean;
    leaf_hash: Uint8Array | null;
    nodes: Uint8Array | null;
  }>`
    select k.tenant_id, k.seq, e.seq is not null as stored, e.leaf_hash,
      case when k.length > 0 then (
        select substring(b.hashes from k.start + 1 for k.length) from activity_tree_blocks b
        where b.tenant_id = k.tenant_id and b.block = (k.seq - 1) / ${blockSeqs}) end as nodes
    from unnest(${tenants}::text[], ${seqs}::bigint[], ${offsets}::int[], ${lengths}::int[])
      as k(tenant_id, seq, start, length)
    left join activity_events e on e.tenant_id = k.tenant_id and e.seq = k.seq`.execute(db);
  // Seqs held by two rows, or by a row with no leaf hash.
  const untrusted = new Set<string>();
  const purged: Array<{ tenantId: string; seq: number; nodes: Uint8Array | null }> = [];
  for (const row of rows) {
    const kept = byTenant.get(row.tenant_id) as Map<number, Uint8Array>;
    const seq = Number(row.seq);
    if (!row.stored) {
      purged.push({ tenantId: row.tenant_id, seq, nodes: row.nodes });
      continue;
    }
    const key = `${row.tenant_id}\u0000${seq}`;
    if (kept.has(seq) || untrusted.has(key)) {
      kept.delete(seq);
      untrusted.add(key);
      continue;
    }
    if (row.leaf_hash) kept.set(seq, keptOf(row.leaf_hash, row.nodes));
    else untrusted.add(key);
  }
  if (purged.length === 0) return byTenant;
  const archived = await archivedLeaves(db, purged);
  for (const { tenantId, seq, nodes } of purged) {
    const leaf = archived.get(`${tenantId}\u0000${seq}`);
    if (leaf) byTenant.get(tenantId)?.set(seq, keptOf(leaf, nodes));
  }
  return byTenant;
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

/** What is kept for a seq of its leaf hash and block (see keptOfBlock), the block read whole. */
export function keptOfBlocks(
  seq: number,
  leafHash: Uint8Array,
  blocks: ReadonlyMap<number, Uint8Array>,
): Uint8Array {
  return keptOfBlock(seq, leafHash, blocks.get(blockOf(seq)));
}

function keptOf(leafHash: Uint8Array, nodes: Uint8Array | null): Uint8Array {
  return nodes && nodes.length > 0 ? Buffer.concat([leafHash, nodes]) : leafHash;
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
