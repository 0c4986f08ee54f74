import { type Kysely, sql } from 'kysely';
import type {
  BackfillReport,
  IntegrityRepository,
  PurgeRecord,
  StoredCheckpoint,
  TreeHead,
  TreeRow,
} from '../../domain/integrity-repository.js';
import { hashSize } from '../../integrity/merkle.js';
import { keptCount } from '../../integrity/tree.js';
import { type EventRow, pageColumns, toActivityEvent } from '../events/rows.js';
import type { StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';
import { bringEventsIntoTrees } from './backfill.js';

/** Tree heads, kept hashes and checkpoints on PostgreSQL and PGlite. */
export class KyselyIntegrityRepository implements IntegrityRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;

  constructor(db: Kysely<StoreSchema>, where: string) {
    this.#db = db;
    this.#where = where;
  }

  head(tenantId: string): Promise<TreeHead | undefined> {
    return guarded(this.#where, async () => {
      const row = await this.#db
        .selectFrom('activity_tenants')
        .select(['tenant_id', 'last_seq', 'tree_size', 'tree_range'])
        .where('tenant_id', '=', tenantId)
        .executeTakeFirst();
      return row && toHead(row);
    });
  }

  uncheckpointed(afterTenantId: string | undefined, limit: number) {
    return guarded(this.#where, async () => {
      const { rows } = await sql<HeadRow & LatestRow>`
        select t.tenant_id, t.last_seq, t.tree_size, t.tree_range,
          c.tree_size as latest_size, c.root_hash, c.note, c.signed_at
        from activity_tenants t
        left join lateral (
          select * from activity_checkpoints c where c.tenant_id = t.tenant_id
          order by c.tree_size desc limit 1) c on true
        where (t.tree_size <> coalesce(c.tree_size, 0) or t.tree_size <> t.last_seq)
          and t.tenant_id > ${afterTenantId ?? ''}
        order by t.tenant_id
        limit ${limit}`.execute(this.#db);
      return rows.map((row) => ({
        head: toHead(row),
        latest:
          row.latest_size === null
            ? undefined
            : toCheckpoint({
                tenant_id: row.tenant_id,
                tree_size: row.latest_size,
                root_hash: row.root_hash as Uint8Array,
                note: row.note as string,
                signed_at: row.signed_at as Date,
              }),
      }));
    });
  }

  keptHashes(tenantId: string, seqs: readonly number[]): Promise<Map<number, Uint8Array>> {
    return guarded(this.#where, async () => {
      const rows = await this.#db
        .selectFrom('activity_events')
        .select(['seq', 'tree_hashes'])
        .where('tenant_id', '=', tenantId)
        .where('seq', '=', sql<number>`any(${[...seqs]}::bigint[])`)
        .where('tree_hashes', 'is not', null)
        .execute();
      // A seq twice (a row inserted by hand) is no seq: neither copy can be trusted here.
      const kept = new Map<number, Uint8Array>();
      const seen = new Set<number>();
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seen.has(seq)) kept.delete(seq);
        else kept.set(seq, row.tree_hashes as Uint8Array);
        seen.add(seq);
      }
      const purged = seqs.filter((seq) => !seen.has(seq));
      if (purged.length === 0) return kept;
      const { rows: runs } = await sql<ArchiveRow>`
        select distinct on (a.from_seq) a.from_seq, a.through_seq, a.hashes
        from unnest(${purged}::bigint[]) as s(seq)
        cross join lateral (
          select * from activity_tree_archive a
          where a.tenant_id = ${tenantId} and a.from_seq <= s.seq
          order by a.from_seq desc limit 1) a
        where a.through_seq >= s.seq`.execute(this.#db);
      for (const [seq, hashes] of splitArchive(runs)) if (purged.includes(seq)) kept.set(seq, hashes);
      return kept;
    });
  }

  keptHashesOfTenants(
    requests: ReadonlyArray<{ tenantId: string; seqs: readonly number[] }>,
  ): Promise<Map<string, Map<number, Uint8Array>>> {
    return guarded(this.#where, async () => {
      const tenants = requests.flatMap((request) => request.seqs.map(() => request.tenantId));
      const seqs = requests.flatMap((request) => request.seqs);
      const { rows } = await sql<{ tenant_id: string; seq: string | number; tree_hashes: Uint8Array }>`
        select e.tenant_id, e.seq, e.tree_hashes
        from unnest(${tenants}::text[], ${seqs}::bigint[]) as k(tenant_id, seq)
        join activity_events e on e.tenant_id = k.tenant_id and e.seq = k.seq
        where e.tree_hashes is not null`.execute(this.#db);
      const byTenant = new Map<string, Map<number, Uint8Array>>();
      const twice = new Set<string>();
      for (const row of rows) {
        const kept = byTenant.get(row.tenant_id) ?? new Map<number, Uint8Array>();
        byTenant.set(row.tenant_id, kept);
        const seq = Number(row.seq);
        if (kept.has(seq)) twice.add(`${row.tenant_id}\u0000${seq}`);
        kept.set(seq, row.tree_hashes);
      }
      // A seq twice, or one not found (purged, deleted): as keptHashes says it, tenant by tenant.
      for (const request of requests) {
        const kept = byTenant.get(request.tenantId);
        const complete = request.seqs.every(
          (seq) => kept?.has(seq) && !twice.has(`${request.tenantId}\u0000${seq}`),
        );
        if (!complete) byTenant.set(request.tenantId, await this.keptHashes(request.tenantId, request.seqs));
      }
      return byTenant;
    });
  }

  archivedHashes(tenantId: string, afterSeq: number, throughSeq: number): Promise<Map<number, Uint8Array>> {
    return guarded(this.#where, async () => {
      const { rows } = await sql<ArchiveRow>`
        select from_seq, through_seq, hashes from activity_tree_archive
        where tenant_id = ${tenantId} and from_seq <= ${throughSeq}::bigint and through_seq > ${afterSeq}::bigint
        order by from_seq`.execute(this.#db);
      const kept = new Map<number, Uint8Array>();
      for (const [seq, hashes] of splitArchive(rows)) {
        if (seq > afterSeq && seq <= throughSeq) kept.set(seq, hashes);
      }
      return kept;
    });
  }

  bringEventsIntoTrees(): Promise<BackfillReport> {
    return bringEventsIntoTrees(this.#db, this.#where);
  }

  purges(tenantId: string): Promise<PurgeRecord[]> {
    return guarded(this.#where, async () => {
      const rows = await this.#db
        .selectFrom('activity_purges')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('from_seq')
        .execute();
      return rows.map((row) => ({
        fromSeq: Number(row.from_seq),
        throughSeq: Number(row.through_seq),
        rule: row.rule,
        cutoff: row.cutoff,
        purgedAt: row.purged_at,
      }));
    });
  }

  checkpoint(tenantId: string, treeSize?: number): Promise<StoredCheckpoint | undefined> {
    return guarded(this.#where, async () => {
      let query = this.#db.selectFrom('activity_checkpoints').selectAll().where('tenant_id', '=', tenantId);
      if (treeSize !== undefined) query = query.where('tree_size', '=', treeSize);
      const row = await query.orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
      return row && toCheckpoint(row);
    });
  }

  checkpoints(tenantId: string): Promise<StoredCheckpoint[]> {
    return guarded(this.#where, async () => {
      const rows = await this.#db
        .selectFrom('activity_checkpoints')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('tree_size')
        .execute();
      return rows.map(toCheckpoint);
    });
  }

  saveCheckpoints(checkpoints: readonly Omit<StoredCheckpoint, 'signedAt'>[]): Promise<void> {
    if (checkpoints.length === 0) return Promise.resolve();
    return guarded(this.#where, async () => {
      await this.#db
        .insertInto('activity_checkpoints')
        .values(
          checkpoints.map((checkpoint) => ({
            tenant_id: checkpoint.tenantId,
            tree_size: checkpoint.treeSize,
            root_hash: checkpoint.rootHash,
            note: checkpoint.note,
          })),
        )
        .onConflict((conflict) => conflict.columns(['tenant_id', 'tree_size']).doNothing())
        .execute();
    });
  }

  treeRows(tenantId: string, afterSeq: number, throughSeq: number | undefined): Promise<TreeRow[]> {
    return guarded(this.#where, async () => {
      let query = this.#db
        .selectFrom('activity_events')
        .select([
          ...pageColumns,
          'tree_hashes',
          sql<string>`(extract(epoch from created_at) * 1000000)::text`.as('created_micros'),
        ])
        .where('tenant_id', '=', tenantId)
        .where('seq', '>', afterSeq);
      if (throughSeq !== undefined) query = query.where('seq', '<=', throughSeq);
      const rows = await query.orderBy('seq').orderBy('created_at').execute();
      return rows.map((row) => ({
        seq: Number(row.seq),
        event: readableEvent(row as unknown as EventRow),
        createdMicros: row.created_micros,
        keptHashes: row.tree_hashes,
      }));
    });
  }

  tenants(afterTenantId: string | undefined, limit: number): Promise<string[]> {
    return guarded(this.#where, async () => {
      const after = afterTenantId ?? '';
      // Tenants of the events themselves by a skip scan (one index probe each), so that
      // a tenant whose head row was deleted is still found.
      const { rows } = await sql<{ tenant_id: string }>`
        with recursive event_tenants(tenant_id, n) as (
          (select tenant_id, 1 from activity_events where tenant_id > ${after} order by tenant_id limit 1)
          union all
          select (select e.tenant_id from activity_events e where e.tenant_id > t.tenant_id
                  order by e.tenant_id limit 1), t.n + 1
          from event_tenants t where t.tenant_id is not null and t.n < ${limit}
        )
        select tenant_id from (
          select tenant_id from activity_tenants where tenant_id > ${after}
          union select tenant_id from activity_checkpoints where tenant_id > ${after}
          union select tenant_id from activity_purges where tenant_id > ${after}
          union select tenant_id from event_tenants where tenant_id is not null
        ) known
        order by tenant_id limit ${limit}`.execute(this.#db);
      return rows.map((row) => row.tenant_id);
    });
  }
}

/** The row as the API would return it, or undefined when it cannot be (a time no API text holds). */
function readableEvent(row: EventRow) {
  try {
    return toActivityEvent(row);
  } catch {
    return undefined;
  }
}

interface ArchiveRow {
  from_seq: string | number;
  through_seq: string | number;
  hashes: Uint8Array;
}

/**
 * Each seq of archived runs with its hashes: a run holds its rows' tree_hashes end to
 * end, each as long as keptCount says. A run whose length does not add up (edited by
 * hand) yields nothing past where it stops adding up.
 */
function* splitArchive(runs: readonly ArchiveRow[]): Generator<[number, Uint8Array]> {
  for (const run of runs) {
    let offset = 0;
    for (let seq = Number(run.from_seq); seq <= Number(run.through_seq); seq++) {
      const length = keptCount(seq) * hashSize;
      if (offset + length > run.hashes.length) break;
      yield [seq, run.hashes.subarray(offset, offset + length)];
      offset += length;
    }
  }
}

/** A tenant's latest checkpoint, or nulls. */
interface LatestRow {
  latest_size: string | number | null;
  root_hash: Uint8Array | null;
  note: string | null;
  signed_at: Date | null;
}

interface HeadRow {
  tenant_id: string;
  last_seq: string | number;
  tree_size: string | number;
  tree_range: Uint8Array;
}

function toHead(row: HeadRow): TreeHead {
  return {
    tenantId: row.tenant_id,
    lastSeq: Number(row.last_seq),
    treeSize: Number(row.tree_size),
    range: row.tree_range,
  };
}

function toCheckpoint(row: {
  tenant_id: string;
  tree_size: string | number;
  root_hash: Uint8Array;
  note: string;
  signed_at: Date;
}): StoredCheckpoint {
  return {
    tenantId: row.tenant_id,
    treeSize: Number(row.tree_size),
    rootHash: row.root_hash,
    note: row.note,
    signedAt: row.signed_at,
  };
}
