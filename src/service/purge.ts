import type { ActivityRepository } from '../domain/activity-repository.js';

export interface PurgeOptions {
  /** Events created before this instant are expired. */
  cutoff: Date;
  /** Only this tenant; every tenant when absent. */
  tenantId?: string | undefined;
  /** Events deleted per committed statement. */
  batchSize: number;
  /** Count what a real run would delete; delete nothing. */
  dryRun: boolean;
}

export interface PurgeReport {
  /** Deleted, or with dry_run, that a real run would delete. */
  deleted: number;
  cutoff: string;
  dry_run: boolean;
  /** Tenants with something to delete, and how much. */
  tenants: Array<{ tenant_id: string; deleted: number }>;
}

const tenantPage = 500;

/**
 * Deletes expired events tenant by tenant, in committed batches of `batchSize`:
 * locks stay short, inserts go on meanwhile, and a purge that is killed resumes where
 * it stopped when run again. `onProgress` hears the running total after each batch.
 */
export async function purgeExpired(
  repository: ActivityRepository,
  options: PurgeOptions,
  onProgress?: (deleted: number) => void,
): Promise<PurgeReport> {
  const report: PurgeReport = {
    deleted: 0,
    cutoff: options.cutoff.toISOString(),
    dry_run: options.dryRun,
    tenants: [],
  };
  for await (const tenantId of tenantsToPurge(repository, options.tenantId)) {
    let deleted = 0;
    if (options.dryRun) {
      deleted = await repository.countBefore(tenantId, options.cutoff);
    } else {
      for (;;) {
        const batch = await repository.deleteBefore(tenantId, options.cutoff, options.batchSize);
        deleted += batch;
        onProgress?.(report.deleted + deleted);
        if (batch < options.batchSize) break;
      }
    }
    if (deleted > 0) report.tenants.push({ tenant_id: tenantId, deleted });
    report.deleted += deleted;
  }
  return report;
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
