import type { ActivityRepository } from '../domain/activity-repository.js';
import type { LegalHold, RetentionPolicy, RetentionRepository } from '../domain/retention.js';

const dayMs = 86_400_000;

/**
 * Events per committed statement. About 20 ms per batch: short enough that nothing
 * waits on it (deletes lock only expired rows), long enough that a batched purge runs
 * about as fast as one big DELETE (bench row B12).
 */
export const defaultBatchSize = 10_000;

export interface PurgeOptions {
  /** The instant retention counts back from. */
  now: Date;
  /** Retention of tenants without a policy of their own (`--older-than`, else ACTIVITY_RETENTION_DAYS). */
  defaultRetentionMs: number;
  /** Only this tenant; every tenant when absent. */
  tenantId?: string | undefined;
  /** Events deleted per committed statement. */
  batchSize: number;
  /** Count what a real run would delete; change nothing. */
  dryRun: boolean;
}

/** Why a tenant's events were kept or deleted up to its cutoff. */
export type RetentionRule = 'default' | 'policy' | 'hold';

export interface TenantPurge {
  tenant_id: string;
  /** Deleted, or with dry_run, that a real run would delete. */
  deleted: number;
  rule: RetentionRule;
  /** Events created before it are expired; null on hold. */
  cutoff: string | null;
  /** The tenant's policy (rule `policy`). */
  retention_days: number | null;
  /** The hold's reason (rule `hold`). */
  reason: string | null;
}

export interface PartitionPurge {
  name: string;
  /** Events created in [from, to). */
  from: string;
  to: string;
  events: number;
}

export interface PurgeReport {
  /** Deleted, or with dry_run, that a real run would delete. */
  deleted: number;
  /** The default cutoff: events created before it are expired unless a policy or hold says otherwise. */
  cutoff: string;
  dry_run: boolean;
  /** Whole monthly partitions dropped (or that would be). */
  partitions: PartitionPurge[];
  /** Tenants with something deleted, and every tenant on hold that has events, with why. */
  tenants: TenantPurge[];
}

export type PurgeProgress =
  | { step: 'partition'; name: string; deleted: number }
  | { step: 'batch'; tenantId: string; deleted: number };

const tenantPage = 500;

/**
 * Deletes expired events. A tenant on hold keeps everything; a tenant's policy
 * overrides the default retention. Whole monthly partitions that hold nothing anyone
 * keeps are dropped first; the rest (the boundary month, and months kept for a few
 * tenants) is deleted tenant by tenant in committed batches of `batchSize`: locks stay
 * short, inserts go on, and a purge that is killed resumes where it stopped when run
 * again. `onProgress` hears each step with the number of events it deleted.
 */
export async function purgeExpired(
  stores: {
    events: ActivityRepository;
    retention: RetentionRepository;
    /** Records the tenant's purges in its log (activity.events.purged), once its deletes are done. */
    recordPurges: (tenantId: string) => Promise<void>;
  },
  options: PurgeOptions,
  onProgress?: (progress: PurgeProgress) => void,
): Promise<PurgeReport> {
  const { retention } = stores;
  const defaultCutoff = new Date(options.now.getTime() - options.defaultRetentionMs);
  const report: PurgeReport = {
    deleted: 0,
    cutoff: defaultCutoff.toISOString(),
    dry_run: options.dryRun,
    partitions: [],
    tenants: [],
  };
  // A purge that runs daily keeps the coming months' partitions made ahead.
  if (!options.dryRun) await retention.ensurePartitions(options.now);

  // Counted per tenant as the partitions go, so each tenant's line tells all it lost.
  const droppedByTenant = new Map<string, number>();
  if (options.tenantId === undefined) {
    for (const partition of await retention.partitions()) {
      if (partition.to > defaultCutoff) break;
      const result = await retention.dropPartition(partition, {
        now: options.now,
        dryRun: options.dryRun,
        defaultCutoff,
      });
      if (result.outcome !== 'dropped') continue;
      let events = 0;
      for (const [tenantId, count] of result.events) {
        events += count;
        droppedByTenant.set(tenantId, (droppedByTenant.get(tenantId) ?? 0) + count);
      }
      report.partitions.push({
        name: partition.name,
        from: partition.from.toISOString(),
        to: partition.to.toISOString(),
        events,
      });
      onProgress?.({ step: 'partition', name: partition.name, deleted: events });
    }
  }

  const holds = new Map((await retention.holds()).map((hold) => [hold.tenant_id, hold]));
  const policies = new Map((await retention.policies()).map((policy) => [policy.tenant_id, policy]));
  for await (const tenantId of tenantsToPurge(stores.events, options.tenantId)) {
    const rule = ruleFor(holds.get(tenantId), policies.get(tenantId), defaultCutoff, options.now);
    let deleted = 0;
    if (rule.cutoff !== null) {
      if (options.dryRun) {
        // Partitions that would be dropped hold only expired events: counting
        // everything before the cutoff counts them too.
        deleted = await retention.countBefore(tenantId, rule.cutoff);
      } else {
        deleted = droppedByTenant.get(tenantId) ?? 0;
        deleted += await deleteInBatches(
          retention,
          tenantId,
          rule.cutoff,
          { at: options.now, rule: rule.rule },
          options.batchSize,
          onProgress,
        );
        await stores.recordPurges(tenantId);
      }
    }
    if (deleted > 0 || rule.rule === 'hold') {
      report.tenants.push({
        tenant_id: tenantId,
        deleted,
        rule: rule.rule,
        cutoff: rule.cutoff?.toISOString() ?? null,
        retention_days: rule.retentionDays,
        reason: rule.reason,
      });
    }
    report.deleted += deleted;
  }
  return report;
}

/**
 * Deletes a tenant's events created before `cutoff`, oldest first, in committed
 * batches. created_at never decreases with seq, so the expired events are a run of
 * seqs from the oldest: each batch is the next `batchSize` seqs, except that a month
 * dropped while an older one was kept leaves a gap, which a short batch looks past.
 * A hold stops it at the next batch.
 */
async function deleteInBatches(
  retention: RetentionRepository,
  tenantId: string,
  cutoff: Date,
  run: { at: Date; rule: RetentionRule },
  batchSize: number,
  onProgress: ((progress: PurgeProgress) => void) | undefined,
): Promise<number> {
  let deleted = 0;
  for (let fromSeq = await retention.firstExpiredSeq(tenantId, cutoff); fromSeq !== null; ) {
    const batch = await retention.deleteExpired(tenantId, cutoff, fromSeq, batchSize, run);
    if (batch > 0) {
      deleted += batch;
      onProgress?.({ step: 'batch', tenantId, deleted: batch });
    }
    fromSeq =
      batch === batchSize
        ? fromSeq + batchSize
        : await retention.firstExpiredSeq(tenantId, cutoff, fromSeq + batchSize);
  }
  return deleted;
}

/** A hold beats a policy, and a policy beats the default. */
function ruleFor(
  hold: LegalHold | undefined,
  policy: RetentionPolicy | undefined,
  defaultCutoff: Date,
  now: Date,
): { rule: RetentionRule; cutoff: Date | null; retentionDays: number | null; reason: string | null } {
  if (hold) return { rule: 'hold', cutoff: null, retentionDays: null, reason: hold.reason };
  if (policy) {
    return {
      rule: 'policy',
      cutoff: new Date(now.getTime() - policy.retention_days * dayMs),
      retentionDays: policy.retention_days,
      reason: null,
    };
  }
  return { rule: 'default', cutoff: defaultCutoff, retentionDays: null, reason: null };
}

async function* tenantsToPurge(
  repository: ActivityRepository,
  only: string | undefined,
): AsyncGenerator<string> {
  if (only !== undefined) {
    yield only;
    return;
  }
  let after: string | undefined;
  for (;;) {
    const tenants = await repository.tenants(after, tenantPage);
    yield* tenants;
    if (tenants.length < tenantPage) return;
    after = tenants.at(-1);
  }
}
