import { type Kysely, sql } from 'kysely';
import type { BackfillReport } from '../../domain/integrity-repository.js';
import { eventLeafHash } from '../../integrity/leaf.js';
import { splitRange, TreeBuilder } from '../../integrity/tree.js';
import { type EventRow, pageColumns, toActivityEvent } from '../events/rows.js';
import type { StoreSchema } from '../schema.js';
import { guarded } from '../store-errors.js';

/** Events hashed per transaction: the head row is locked, and writers of its tenant wait, this long only. */
const eventsPerStep = 5000;

/**
 * Brings events stored before their tenant's tree existed (migrations/0004) into it,
 * oldest first, a step at a time: each step locks the head row, hashes the next
 * events exactly as an append would have, stores their tree hashes and the tree's new
 * state, and commits. Appends meanwhile store their events outside the tree (the tree
 * lags) and the next step takes them in; once the tree has caught up, appends extend
 * it themselves. Safe to run again or at once with another run: each step starts
 * from what the head row says under its lock.
 */
export async function bringEventsIntoTrees(db: Kysely<StoreSchema>, where: string): Promise<BackfillReport> {
  const report: BackfillReport = { events: 0, tenants: 0, left: [] };
  const lagging = await guarded(where, async () =>
    (
      await db
        .selectFrom('activity_tenants')
        .select('tenant_id')
        .whereRef('tree_size', '<', 'last_seq')
        .orderBy('tenant_id')
        .execute()
    ).map((row) => row.tenant_id),
  );
  for (const tenantId of lagging) {
    let steps = 0;
    for (;;) {
      const step = await guarded(where, () => db.transaction().execute((trx) => extendStep(trx, tenantId)));
      if (typeof step === 'string') {
        report.left.push({ tenantId, reason: step });
        break;
      }
      report.events += step;
      if (steps++ === 0 && step > 0) report.tenants++;
      if (step < eventsPerStep) break;
    }
  }
  return report;
}

/** One step for one tenant: how many events it brought in, or why it cannot. */
async function extendStep(trx: Kysely<StoreSchema>, tenantId: string): Promise<number | string> {
  const { rows: heads } = await sql<{
    last_seq: string | number;
    tree_size: string | number;
    tree_range: Uint8Array;
  }>`
    select last_seq, tree_size, tree_range from activity_tenants where tenant_id = ${tenantId} for update`.execute(
    trx,
  );
  const head = heads[0];
  if (!head) return 0;
  const treeSize = Number(head.tree_size);
  const through = Math.min(Number(head.last_seq), treeSize + eventsPerStep);
  if (through <= treeSize) return 0;
  const rows = await trx
    .selectFrom('activity_events')
    .select([...pageColumns, 'tree_hashes'])
    .where('tenant_id', '=', tenantId)
    .where('seq', '>', treeSize)
    .where('seq', '<=', through)
    .orderBy('seq')
    .execute();
  const builder = new TreeBuilder(treeSize, splitRange(head.tree_range));
  const seqs: number[] = [];
  const hashes: string[] = [];
  for (const row of rows) {
    const event = toActivityEvent(row as unknown as EventRow);
    if (event.seq !== builder.size + 1) {
      return `event ${builder.size + 1} is not stored (purged or deleted before the tree existed): its tree cannot be built past it`;
    }
    seqs.push(event.seq);
    hashes.push(Buffer.from(builder.push(eventLeafHash(event))).toString('hex'));
  }
  if (builder.size < through) {
    return `event ${builder.size + 1} is not stored (purged or deleted before the tree existed): its tree cannot be built past it`;
  }
  await sql`
    update activity_events e set tree_hashes = decode(k.hashes, 'hex')
    from unnest(${seqs}::bigint[], ${hashes}::text[]) as k(seq, hashes)
    where e.tenant_id = ${tenantId} and e.seq = k.seq`.execute(trx);
  await sql`
    update activity_tenants set tree_size = ${builder.size}, tree_range = ${Buffer.concat(builder.range)}
    where tenant_id = ${tenantId}`.execute(trx);
  return rows.length;
}
