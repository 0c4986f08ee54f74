import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import type { PurgeMetrics } from '../../metrics/metrics.js';
import { defaultBatchSize, type PurgeReport, type TenantPurge } from '../../service/purge.js';
import {
  action,
  type CliIo,
  type CommonOptions,
  tenantFlag,
  withActorOption,
  withCommonOptions,
} from '../context.js';
import { startProgress } from '../progress.js';
import { csvRow, escapeControl } from '../render/text.js';

interface PurgeCommandOptions extends CommonOptions {
  olderThan?: string;
  tenant?: string;
  dryRun?: boolean;
  batchSize: string;
  metricsFile?: string;
}

/** A hundred years, as `retention set --days` allows: an older cutoff is not a retention. */
const maxAgeMs = 36_500 * 86_400_000;

export function purgeCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    withActorOption(new Command('purge'))
      .description(
        'delete events past retention: whole expired months, then committed batches; prints what it deleted (or would) and why',
      )
      .option(
        '--older-than <age>',
        'default retention, e.g. 365d or 12w (default: ACTIVITY_RETENTION_DAYS, 365 days); a tenant policy overrides it',
      )
      .option('--tenant <id>', 'only this tenant')
      .option('--dry-run', 'count what would be deleted; change nothing')
      .option(
        '--batch-size <n>',
        'events deleted per committed statement, 1-100000',
        String(defaultBatchSize),
      )
      .option(
        '--metrics-file <path>',
        "write the run's metrics here (Prometheus text, for a textfile collector)",
      ),
  )
    .addHelpText(
      'after',
      `
A tenant on hold (activity hold) keeps everything; a tenant's own retention
(activity retention) overrides the default. Whole monthly partitions that nobody
keeps are dropped; the rest is deleted in committed batches, so it is safe to kill
and run again, and inserts go on meanwhile. Each tenant's log gets one
activity.events.purged event per run that removed some of its events (a run killed
before writing it leaves it to the next run). Exit 0 on success, 2 on a bad flag,
3 when the database is unavailable or not migrated.

Examples:
  $ activity purge --dry-run
  $ activity purge --older-than 90d --tenant acme
  # cron, nightly, with metrics for node_exporter:
  15 3 * * * activity purge --format json --metrics-file /var/lib/node_exporter/activity_purge.prom >> /var/log/activity-purge.log`,
    )
    .action(
      action<PurgeCommandOptions>(io, setExitCode, async (options, context) => {
        const { parseDuration } = await import('../../domain/inputs.js');
        const config = await context.config();
        const ageMs =
          options.olderThan === undefined
            ? config.retentionDays * 86_400_000
            : parseDuration(options.olderThan);
        if (ageMs === undefined || ageMs <= 0 || ageMs > maxAgeMs) {
          throw new ActivityError(
            'USAGE_INVALID',
            '--older-than must be an age such as 365d, 12w or 24h, at most 36500d',
          );
        }
        const batchSize = Number(options.batchSize);
        if (!/^\d{1,6}$/.test(options.batchSize) || batchSize < 1 || batchSize > 100_000) {
          throw new ActivityError('USAGE_INVALID', '--batch-size must be a number from 1 to 100000');
        }
        const tenantId = options.tenant === undefined ? undefined : tenantFlag(options.tenant);
        const { usingRetention } = await import('../../app/open-app.js');
        const { createPurgeMetrics } = await import('../../metrics/metrics.js');
        const metrics = createPurgeMetrics();
        const spinner = await startProgress(
          io,
          options.dryRun ? 'counting expired events' : 'purging expired events',
        );
        const startedAt = new Date();
        let total = 0;
        let report: PurgeReport;
        try {
          report = await usingRetention(config, (retention) =>
            retention.purge(
              {
                now: startedAt,
                defaultRetentionMs: ageMs,
                tenantId,
                batchSize,
                dryRun: options.dryRun === true,
              },
              (progress) => {
                total += progress.deleted;
                if (!options.dryRun) metrics.eventsPurged.inc(progress.deleted);
                const done = `${total.toLocaleString('en')} events ${options.dryRun ? 'to delete' : 'deleted'}`;
                spinner.text =
                  progress.step === 'partition'
                    ? `partition ${progress.name}; ${done}`
                    : `tenant ${escapeControl(progress.tenantId)}; ${done}`;
              },
              context.actor(config),
            ),
          );
        } catch (error) {
          spinner.stop();
          await writeMetrics(options.metricsFile, metrics, false, startedAt);
          throw error;
        }
        spinner.stop();
        await writeMetrics(options.metricsFile, metrics, true, startedAt);
        await context.out.write(renderReport(report, context.format));
        return 0;
      }),
    );
}

/** Writes the file whole, then renames it in place: a collector never reads half a file. */
async function writeMetrics(
  path: string | undefined,
  metrics: PurgeMetrics,
  succeeded: boolean,
  startedAt: Date,
): Promise<void> {
  if (path === undefined) return;
  const { rename, writeFile } = await import('node:fs/promises');
  metrics.finish(succeeded, startedAt, new Date());
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, await metrics.registry.metrics());
  await rename(temporary, path);
}

function renderReport(report: PurgeReport, format: string): string {
  switch (format) {
    case 'json':
    case 'ndjson':
      return `${JSON.stringify(report)}\n`;
    case 'csv':
      return (
        csvRow(['tenant_id', 'deleted', 'rule', 'cutoff', 'retention_days', 'reason', 'dry_run']) +
        report.tenants
          .map((t) =>
            csvRow([t.tenant_id, t.deleted, t.rule, t.cutoff, t.retention_days, t.reason, report.dry_run]),
          )
          .join('')
      );
    default: {
      const verb = report.dry_run ? 'would delete' : 'deleted';
      const partitionVerb = report.dry_run ? 'would drop' : 'dropped';
      const lines = [
        `${verb} ${report.deleted} events (default cutoff ${report.cutoff})`,
        ...report.partitions.map(
          (p) => `  ${partitionVerb} partition ${p.name}: ${p.events} events of ${p.from.slice(0, 7)}`,
        ),
        ...report.tenants.map((t) => `  ${escapeControl(t.tenant_id)}: ${describeTenant(t, verb)}`),
      ];
      return `${lines.join('\n')}\n`;
    }
  }
}

function describeTenant(tenant: TenantPurge, verb: string): string {
  switch (tenant.rule) {
    case 'hold':
      return `kept everything (on hold${tenant.reason ? `: ${escapeControl(tenant.reason)}` : ''})`;
    case 'policy':
      return `${verb} ${tenant.deleted} before ${tenant.cutoff} (its policy: ${tenant.retention_days} days)`;
    default:
      return `${verb} ${tenant.deleted} before ${tenant.cutoff} (default retention)`;
  }
}
