import { type Kysely, sql } from 'kysely';
import type { BackfillReport } from '../../domain/integrity-repository.js';
import { eventLeafHash } from '../../integrity/leaf.js';
import { type EventRow, pageColumns, toActivityEvent } from '../events/rows.js';
import type { StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';
import { readArchivedLeaves } from './kept.js';

/** Events read and hashed per statement. */
const eventsPerStep = 5000;

/**
 * Brings the events stored before the trees existed (the tenants migrations/0004, or
 * the sealer, noted in activity_tree_backfill) into them: hashes each one's leaf
 * exactly as an append would have, a few thousand rows at a time, in seq order from
 * the tenant's sealed size, then deletes the tenant's note. A leaf depends on its
 * event alone, so no head row is locked and writers never wait; the sealer takes the
 * leaves in at the next checkpoint. A tenant whose events do not run without a gap
 * (some were deleted, or purged before they were hashed) is named in the report: its
 * tree cannot be built past the first gap. Safe to run again or at once with another
 * run: only rows with no leaf hash are written.
 */
export async function bringEventsIntoTrees(db: Kysely<StoreSchema>, where: string): Promise<BackfillReport> {
  const report: BackfillReport = { events: 0, tenants: 0, left: [] };
  /** The first seq of (afterSeq, throughSeq] that purge did not archive (a gap), if any. */
  const firstUnarchived = async (tenantId: string, afterSeq: number, throughSeq: number) => {
    const archived = await guarded(where, () => readArchivedLeaves(db, tenantId, afterSeq, throughSeq));
    for (let seq = afterSeq + 1; seq <= throughSeq; seq++) if (!archived.has(seq)) return seq;
    return undefined;
  };
  const notes = await guarded(where, () =>
    db.selectFrom('activity_tree_backfill').selectAll().orderBy('tenant_id').execute(),
  );
  for (const note of notes) {
    const tenantId = note.tenant_id;
    // Up to the last seq now, too: an append that began before the migration may have
    // ended after it, with no leaf hash (the sealer notes those it meets as well). From
    // the sealed size: what the sealer took in has its leaves.
    const { rows: heads } = await guarded(where, () =>
      sql<{ last_seq: string | number | null; sealed_size: string | number | null }>`
        select (select last_seq from activity_tenants where tenant_id = ${tenantId}) as last_seq,
          (select sealed_size from activity_tree_seals where tenant_id = ${tenantId}) as sealed_size`.execute(
        db,
      ),
    );
    const through = Math.max(Number(note.through_seq), Number(heads[0]?.last_seq ?? 0));
    let hashed = 0;
    let gap: number | undefined;
    let after = Number(heads[0]?.sealed_size ?? 0);
    while (after < through) {
      const from = after;
      const rows = await guarded(where, () =>
        db
          .selectFrom('activity_events')
          .select([...pageColumns, 'leaf_hash'])
          .where('tenant_id', '=', tenantId)
          .where('seq', '>', from)
          .where('seq', '<=', through)
          .orderBy('seq')
          .limit(eventsPerStep)
          .execute(),
      );
      if (rows.length === 0) break;
      const seqs: number[] = [];
      const leaves: string[] = [];
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== after + 1 && gap === undefined) gap = await firstUnarchived(tenantId, after, seq - 1);
        after = seq;
        if (row.leaf_hash !== null) continue;
        seqs.push(seq);
        leaves.push(Buffer.from(eventLeafHash(toActivityEvent(row as unknown as EventRow))).toString('hex'));
      }
      if (seqs.length > 0) {
        await guarded(where, () =>
          sql`
            update activity_events e set leaf_hash = decode(k.leaf, 'hex')
            from unnest(${seqs}::bigint[], ${leaves}::text[]) as k(seq, leaf)
            where e.tenant_id = ${tenantId} and e.seq = k.seq and e.leaf_hash is null`.execute(db),
        );
      }
      hashed += seqs.length;
    }
    if (after < through && gap === undefined) gap = await firstUnarchived(tenantId, after, through);
    if (gap !== undefined) {
      report.left.push({
        tenantId,
        reason: `event ${gap} is not stored (purged or deleted before the tree existed): its tree cannot be built past it`,
      });
    }
    report.events += hashed;
    if (hashed > 0) report.tenants++;
    // Unless the sealer noted a later seq meanwhile.
    await guarded(where, () =>
      db
        .deleteFrom('activity_tree_backfill')
        .where('tenant_id', '=', tenantId)
        .where('through_seq', '<=', through)
        .execute(),
    );
  }
  return report;
}
