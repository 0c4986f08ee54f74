import { type Kysely, sql } from 'kysely';
import { checkpointSignedAction } from '../../domain/event.js';
import type {
  BackfillReport,
  IntegrityRepository,
  KeptHashes,
  KeptReads,
  PurgeRecord,
  SealOutcome,
  StoredCheckpoint,
  TreeHead,
  TreeRow,
} from '../../domain/integrity-repository.js';
import { blockOf, keptOfBlock } from '../../integrity/tree.js';
import { type EventRow, pageColumns, toActivityEvent } from '../events/rows.js';
import type { StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';
import { bringEventsIntoTrees } from './backfill.js';
import { readArchivedLeaves, readBlocks, readKept } from './kept.js';
import { sealTrees } from './seal.js';

/** Tree heads, kept hashes, the sealer and checkpoints on PostgreSQL and PGlite. */
export class KyselyIntegrityRepository implements IntegrityRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;

  constructor(db: Kysely<StoreSchema>, where: string) {
    this.#db = db;
    this.#where = where;
  }

  head(tenantId: string): Promise<TreeHead | undefined> {
    return guarded(this.#where, async () => {
      const { rows } = await sql<HeadRow>`
        select t.tenant_id, t.last_seq, s.sealed_size, s.sealed_leaf from activity_tenants t
        left join activity_tree_seals s on s.tenant_id = t.tenant_id
        where t.tenant_id = ${tenantId}`.execute(this.#db);
      return rows[0] && toHead(rows[0]);
    });
  }

  seqsGiven(tenantId?: string): Promise<number> {
    return guarded(this.#where, async () => {
      const { rows } = await sql<{ given: string }>`
        select coalesce(sum(last_seq), 0)::text as given from activity_tenants
        ${tenantId === undefined ? sql`` : sql`where tenant_id = ${tenantId}`}`.execute(this.#db);
      return Number(rows[0]?.given ?? 0);
    });
  }

  uncheckpointed(afterTenantId: string | undefined, limit: number, onlyTenantId?: string) {
    return guarded(this.#where, async () => {
      const { rows } = await sql<HeadRow & LatestRow>`
        select t.tenant_id, t.last_seq, s.sealed_size, s.sealed_leaf,
          c.tree_size as latest_size, c.root_hash, c.note, c.signed_at
        from activity_tenants t
        left join activity_tree_seals s on s.tenant_id = t.tenant_id
        left join lateral (
          select * from activity_checkpoints c where c.tenant_id = t.tenant_id
          order by c.tree_size desc limit 1) c on true
        where t.last_seq <> coalesce(c.tree_size, 0)
          and not (t.last_seq = c.tree_size + 1 and exists (
            select 1 from activity_events e
            where e.tenant_id = t.tenant_id and e.seq = t.last_seq and e.action = ${checkpointSignedAction}))
          and t.tenant_id > ${afterTenantId ?? ''}
          ${onlyTenantId === undefined ? sql`` : sql`and t.tenant_id = ${onlyTenantId}`}
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

  keptHashes(tenantId: string, reads: KeptReads): Promise<KeptHashes> {
    return guarded(
      this.#where,
      async () => (await readKept(this.#db, [{ tenantId, ...reads }])).get(tenantId) as KeptHashes,
    );
  }

  keptHashesOfTenants(
    requests: ReadonlyArray<KeptReads & { tenantId: string }>,
  ): Promise<Map<string, KeptHashes>> {
    return guarded(this.#where, () => readKept(this.#db, requests));
  }

  archivedHashes(tenantId: string, afterSeq: number, throughSeq: number): Promise<Map<number, Uint8Array>> {
    return guarded(this.#where, async () => {
      const leaves = await readArchivedLeaves(this.#db, tenantId, afterSeq, throughSeq);
      if (leaves.size === 0) return leaves;
      const blocks = await readBlocks(this.#db, tenantId, blockOf(afterSeq + 1), blockOf(throughSeq));
      return new Map(
        [...leaves].map(([seq, leaf]) => [seq, keptOfBlock(seq, leaf, blocks.get(blockOf(seq)))]),
      );
    });
  }

  seal(requests: ReadonlyArray<{ tenantId: string; through: number }>): Promise<Map<string, SealOutcome>> {
    return sealTrees(this.#db, this.#where, requests);
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
          'leaf_hash',
          sql<string>`(extract(epoch from created_at) * 1000000)::text`.as('created_micros'),
        ])
        .where('tenant_id', '=', tenantId)
        .where('seq', '>', afterSeq);
      if (throughSeq !== undefined) query = query.where('seq', '<=', throughSeq);
      const rows = await query.orderBy('seq').orderBy('created_at').execute();
      const last = rows.at(-1);
      const blocks =
        rows.length === 0
          ? new Map<number, Uint8Array>()
          : await readBlocks(this.#db, tenantId, blockOf(afterSeq + 1), blockOf(Number(last?.seq)));
      return rows.map((row) => ({
        seq: Number(row.seq),
        event: readableEvent(row as unknown as EventRow),
        createdMicros: row.created_micros,
        keptHashes:
          row.leaf_hash && keptOfBlock(Number(row.seq), row.leaf_hash, blocks.get(blockOf(Number(row.seq)))),
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
  sealed_size: string | number | null;
  sealed_leaf: Uint8Array | null;
}

function toHead(row: HeadRow): TreeHead {
  return {
    tenantId: row.tenant_id,
    lastSeq: Number(row.last_seq),
    sealedSize: Number(row.sealed_size ?? 0),
    sealedLeaf: row.sealed_leaf,
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
