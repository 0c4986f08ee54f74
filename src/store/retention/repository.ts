import { type Kysely, type RawBuilder, sql } from 'kysely';
import type {
  LegalHold,
  MonthPartition,
  PartitionDropResult,
  RetentionPolicy,
  RetentionRepository,
  UnrecordedPurge,
} from '../../domain/retention.js';
import type { StoreSchema } from '../schema.js';
import { guarded, isLockTimeout } from '../store-errors.js';

const partitionName = /^activity_events_y(\d{4})m(\d{2})$/;

/**
 * How long a partition drop waits for its locks. The drop needs an exclusive lock on
 * the events table, and inserts queue behind a waiting drop: a short wait bounds how
 * long they can stall, and a busy partition is left to the batched delete.
 */
const dropLockTimeout = '1s';

/** Retention on PostgreSQL and PGlite: policies, holds, partitions, batched deletes. */
export class KyselyRetentionRepository implements RetentionRepository {
  readonly #db: Kysely<StoreSchema>;
  readonly #where: string;

  constructor(db: Kysely<StoreSchema>, where: string) {
    this.#db = db;
    this.#where = where;
  }

  policies(): Promise<RetentionPolicy[]> {
    return guarded(this.#where, async () => {
      const rows = await this.#db
        .selectFrom('activity_retention_policies')
        .selectAll()
        .orderBy('tenant_id')
        .execute();
      return rows.map(toPolicy);
    });
  }

  setPolicy(
    tenantId: string,
    retentionDays: number,
  ): Promise<{ policy: RetentionPolicy; previousDays: number | null }> {
    return guarded(this.#where, async () => {
      // The policy it replaces, read by the same statement: what the change changed.
      const row = await this.#db
        .with('previous', (db) =>
          db
            .selectFrom('activity_retention_policies')
            .select('retention_days')
            .where('tenant_id', '=', tenantId),
        )
        .insertInto('activity_retention_policies')
        .values({ tenant_id: tenantId, retention_days: retentionDays })
        .onConflict((conflict) =>
          conflict.column('tenant_id').doUpdateSet({ retention_days: retentionDays, updated_at: sql`now()` }),
        )
        .returningAll()
        .returning(sql<number | null>`(select retention_days from previous)`.as('previous_days'))
        .executeTakeFirstOrThrow();
      return { policy: toPolicy(row), previousDays: row.previous_days };
    });
  }

  clearPolicy(tenantId: string): Promise<number | null> {
    return guarded(this.#where, async () => {
      const row = await this.#db
        .deleteFrom('activity_retention_policies')
        .where('tenant_id', '=', tenantId)
        .returning('retention_days')
        .executeTakeFirst();
      return row?.retention_days ?? null;
    });
  }

  holds(): Promise<LegalHold[]> {
    return guarded(this.#where, async () => {
      const rows = await this.#db
        .selectFrom('activity_legal_holds')
        .selectAll()
        .orderBy('tenant_id')
        .execute();
      return rows.map(toHold);
    });
  }

  placeHold(tenantId: string, reason: string | null): Promise<{ hold: LegalHold; changed: boolean }> {
    return guarded(this.#where, async () => {
      // The hold it replaces, read by the same statement: whether anything changed.
      const row = await this.#db
        .with('previous', (db) =>
          db.selectFrom('activity_legal_holds').select('reason').where('tenant_id', '=', tenantId),
        )
        .insertInto('activity_legal_holds')
        .values({ tenant_id: tenantId, reason })
        .onConflict((conflict) =>
          conflict
            .column('tenant_id')
            .doUpdateSet({ reason: sql`coalesce(excluded.reason, activity_legal_holds.reason)` }),
        )
        .returningAll()
        .returning(sql<boolean>`exists (select 1 from previous)`.as('existed'))
        .returning(sql<string | null>`(select reason from previous)`.as('previous_reason'))
        .executeTakeFirstOrThrow();
      return { hold: toHold(row), changed: !row.existed || row.reason !== row.previous_reason };
    });
  }

  releaseHold(tenantId: string): Promise<LegalHold | undefined> {
    return guarded(this.#where, async () => {
      const row = await this.#db
        .deleteFrom('activity_legal_holds')
        .where('tenant_id', '=', tenantId)
        .returningAll()
        .executeTakeFirst();
      return row && toHold(row);
    });
  }

  ensurePartitions(now: Date): Promise<number> {
    return guarded(this.#where, async () => {
      const { rows: found } = await sql<{ partitioned: boolean }>`
        select to_regprocedure('activity_ensure_partitions(timestamptz,timestamptz)') is not null as partitioned`.execute(
        this.#db,
      );
      if (!found[0]?.partitioned) return 0;
      // Rows land in the default only when no partition was made ahead for months; a
      // month created for them moves them out, so that purge can drop it later.
      const { rows } = await sql<{ created: number }>`
        select activity_ensure_partitions(
          greatest(least((select min(created_at) from activity_events_default), ${now}::timestamptz),
                   ${now}::timestamptz - interval '10 years'),
          ${now}::timestamptz + interval '3 months') as created`.execute(this.#db);
      return Number(rows[0]?.created ?? 0);
    });
  }

  partitions(): Promise<MonthPartition[]> {
    return guarded(this.#where, async () => {
      const { rows } = await sql<{ name: string }>`
        select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
        where i.inhparent = 'activity_events'::regclass order by c.relname`.execute(this.#db);
      return rows.flatMap(({ name }) => {
        const match = partitionName.exec(name);
        if (!match) return [];
        const year = Number(match[1]);
        const month = Number(match[2]) - 1;
        return [
          { name, from: new Date(Date.UTC(year, month, 1)), to: new Date(Date.UTC(year, month + 1, 1)) },
        ];
      });
    });
  }

  dropPartition(
    partition: MonthPartition,
    options: { now: Date; dryRun: boolean; defaultCutoff: Date },
  ): Promise<PartitionDropResult> {
    const table = sql.id(partition.name);
    return guarded(this.#where, async () => {
      try {
        return await this.#db.transaction().execute(async (trx) => {
          await sql.raw(`set local lock_timeout = '${dropLockTimeout}'`).execute(trx);
          // Hold and policy changes wait until this commits; nothing is inserted into
          // the partition meanwhile, so the counts are exactly what the drop removes.
          await sql`lock table activity_legal_holds, activity_retention_policies in share mode`.execute(trx);
          await sql`lock table ${table} in share mode`.execute(trx);
          const { rows: kept } = await sql<{ tenant_id: string }>`
            select k.tenant_id from (
              select tenant_id from activity_legal_holds
              union
              select tenant_id from activity_retention_policies
              where ${options.now}::timestamptz - make_interval(secs => retention_days * 86400) < ${partition.to}::timestamptz
            ) k
            where exists (select 1 from ${table} e where e.tenant_id = k.tenant_id)
            order by 1`.execute(trx);
          if (kept.length > 0) return { outcome: 'kept', keptFor: kept.map((row) => row.tenant_id) } as const;
          // Events are only ever removed oldest first (whole months, or a tenant's lowest
          // seqs), so a tenant's events in one month are a run of seqs: max - min + 1
          // counts them from the index, tenant by tenant (a skip scan), where count(*)
          // would read the whole month.
          const { rows: counts } = await sql<{ tenant_id: string; events: string | number }>`
            with recursive tenants as (
              (select tenant_id from ${table} order by tenant_id limit 1)
              union all
              select (select e.tenant_id from ${table} e where e.tenant_id > t.tenant_id order by e.tenant_id limit 1)
              from tenants t where t.tenant_id is not null
            )
            select t.tenant_id,
              (select max(seq) from ${table} e where e.tenant_id = t.tenant_id)
                - (select min(seq) from ${table} e where e.tenant_id = t.tenant_id) + 1 as events
            from tenants t where t.tenant_id is not null`.execute(trx);
          if (!options.dryRun) {
            await sql`
              with gone as (select tenant_id, seq, leaf_hash from ${table}),
              ${keptTree(sql`gone`)},
              recorded as (
                insert into activity_purges (tenant_id, purged_at, from_seq, through_seq, rule, cutoff, deleted)
                select g.tenant_id, ${options.now}::timestamptz, min(g.seq), max(g.seq),
                  case when p.tenant_id is null then 'default' else 'policy' end,
                  case when p.tenant_id is null then ${options.defaultCutoff}::timestamptz
                    else ${options.now}::timestamptz - make_interval(secs => p.retention_days * 86400) end,
                  count(*)
                from gone g left join activity_retention_policies p on p.tenant_id = g.tenant_id
                group by g.tenant_id, p.tenant_id, p.retention_days
                ${mergedPurgeRecord}
              ),
              ${countedPurged(sql`gone`)}
              select 1`.execute(trx);
            await sql`drop table ${table}`.execute(trx);
          }
          return {
            outcome: 'dropped',
            events: new Map(counts.map((row) => [row.tenant_id, Number(row.events)])),
          } as const;
        });
      } catch (error) {
        if (isLockTimeout(error)) return { outcome: 'busy' } as const;
        throw error;
      }
    });
  }

  countBefore(tenantId: string, cutoff: Date): Promise<number> {
    return guarded(this.#where, async () => {
      const row = await this.#db
        .selectFrom('activity_events')
        .select((eb) => eb.fn.countAll<string | number>().as('count'))
        .where('tenant_id', '=', tenantId)
        .where('created_at', '<', cutoff)
        .executeTakeFirstOrThrow();
      return Number(row.count);
    });
  }

  firstExpiredSeq(tenantId: string, cutoff: Date, fromSeq = 0): Promise<number | null> {
    return guarded(this.#where, async () => {
      const { rows } = await sql<{ seq: string | number | null }>`
        select min(seq) as seq from activity_events
        where tenant_id = ${tenantId} and created_at < ${cutoff}::timestamptz and seq >= ${fromSeq}::bigint
          and not exists (select 1 from activity_legal_holds h where h.tenant_id = ${tenantId})`.execute(
        this.#db,
      );
      const seq = rows[0]?.seq;
      return seq == null ? null : Number(seq);
    });
  }

  deleteExpired(
    tenantId: string,
    cutoff: Date,
    fromSeq: number,
    limit: number,
    run: { at: Date; rule: string },
  ): Promise<number> {
    return guarded(this.#where, async () => {
      // One short range scan of the primary key, pruned to the expired partitions; the
      // deleted rows' leaf hashes are kept and the purge recorded by the same statement.
      const { rows } = await sql<{ deleted: string | number }>`
        with gone as (
          delete from activity_events
          where tenant_id = ${tenantId} and created_at < ${cutoff}::timestamptz
            and seq >= ${fromSeq}::bigint and seq < ${fromSeq}::bigint + ${limit}::bigint
            and not exists (select 1 from activity_legal_holds h where h.tenant_id = ${tenantId})
          returning tenant_id, seq, leaf_hash
        ),
        ${keptTree(sql`gone`)},
        recorded as (
          insert into activity_purges (tenant_id, purged_at, from_seq, through_seq, rule, cutoff, deleted)
          select tenant_id, ${run.at}::timestamptz, min(seq), max(seq), ${run.rule}, ${cutoff}::timestamptz, count(*)
          from gone group by tenant_id
          ${mergedPurgeRecord}
        ),
        ${countedPurged(sql`gone`)}
        select count(*) as deleted from gone`.execute(this.#db);
      return Number(rows[0]?.deleted ?? 0);
    });
  }

  unrecordedPurges(tenantId: string): Promise<UnrecordedPurge[]> {
    return guarded(this.#where, async () => {
      const rows = await this.#db
        .selectFrom('activity_purges')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .where('recorded', '=', false)
        .orderBy('purged_at')
        .execute();
      return rows.map((row) => ({
        tenantId: row.tenant_id,
        purgedAt: new Date(row.purged_at),
        fromSeq: Number(row.from_seq),
        throughSeq: Number(row.through_seq),
        rule: row.rule,
        cutoff: new Date(row.cutoff),
        deleted: Number(row.deleted),
      }));
    });
  }

  purgeEventId(tenantId: string, purgedAt: Date, candidate: string): Promise<string> {
    return guarded(this.#where, async () => {
      const row = await this.#db
        .updateTable('activity_purges')
        .set({ event_id: sql`coalesce(event_id, ${candidate}::uuid)` })
        .where('tenant_id', '=', tenantId)
        .where('purged_at', '=', purgedAt)
        .returning('event_id')
        .executeTakeFirstOrThrow();
      return row.event_id as string;
    });
  }

  markPurgeRecorded(tenantId: string, purgedAt: Date): Promise<void> {
    return guarded(this.#where, async () => {
      await this.#db
        .updateTable('activity_purges')
        .set({ recorded: true })
        .where('tenant_id', '=', tenantId)
        .where('purged_at', '=', purgedAt)
        .execute();
    });
  }

  eventsPurged(): Promise<number> {
    return guarded(this.#where, async () => {
      const row = await this.#db.selectFrom('activity_purge_totals').select('events').executeTakeFirst();
      return Number(row?.events ?? 0);
    });
  }
}

/**
 * A CTE `archived` that keeps the leaf hashes of `gone(tenant_id, seq, leaf_hash)` in
 * activity_tree_archive: one row per run of consecutive seqs within each 1024, their
 * leaf hashes end to end in seq order (rows with none, stored before the tree and not
 * yet hashed, keep none). Their inner nodes stay in their blocks.
 */
function keptTree(gone: RawBuilder<unknown>) {
  return sql`archived as (
    insert into activity_tree_archive (tenant_id, from_seq, through_seq, hashes)
    select tenant_id, min(seq), max(seq), string_agg(leaf_hash, ''::bytea order by seq)
    from (
      select tenant_id, seq, leaf_hash,
        seq - row_number() over (partition by tenant_id order by seq) as run
      from ${gone} where leaf_hash is not null
    ) g
    group by tenant_id, (seq - 1) / 1024, run
  )`;
}

/** One record per tenant and run: the batches of a run widen it and add to its count. */
const mergedPurgeRecord = sql`on conflict (tenant_id, purged_at) do update
  set from_seq = least(activity_purges.from_seq, excluded.from_seq),
    through_seq = greatest(activity_purges.through_seq, excluded.through_seq),
    deleted = activity_purges.deleted + excluded.deleted`;

/** A CTE that adds the rows of `gone` to the count of every event purged. */
function countedPurged(gone: RawBuilder<unknown>) {
  return sql`counted as (
    update activity_purge_totals set events = events + (select count(*) from ${gone}) where only_row
  )`;
}

function toPolicy(row: { tenant_id: string; retention_days: number; updated_at: Date }): RetentionPolicy {
  return {
    tenant_id: row.tenant_id,
    retention_days: Number(row.retention_days),
    updated_at: new Date(row.updated_at).toISOString(),
  };
}

function toHold(row: { tenant_id: string; reason: string | null; placed_at: Date }): LegalHold {
  return { tenant_id: row.tenant_id, reason: row.reason, placed_at: new Date(row.placed_at).toISOString() };
}
