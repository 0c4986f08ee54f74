import { Command } from 'commander';
import { action, type CliIo, type CommonOptions, withCommonOptions } from '../context.js';
import { csvRow, escapeControl } from '../render/text.js';

interface PurgeCommandOptions extends CommonOptions {
  olderThan?: string;
  tenant?: string;
  dryRun?: boolean;
  batchSize: string;
}

export function purgeCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('purge')
      .description('delete events past retention, in committed batches; prints what it deleted (or would)')
      .option(
        '--older-than <age>',
        'cutoff age, e.g. 365d or 12w (default: ACTIVITY_RETENTION_DAYS, 365 days)',
      )
      .option('--tenant <id>', 'only this tenant')
      .option('--dry-run', 'count what would be deleted; delete nothing')
      .option('--batch-size <n>', 'events deleted per committed statement, 1-100000', '1000'),
  )
    .addHelpText(
      'after',
      `
Safe to kill and run again: every batch commits on its own, and inserts go on
meanwhile. Exit 0 on success, 2 on a bad flag, 3 when the database is unavailable.

Examples:
  $ activity purge --dry-run --format json
  $ activity purge --older-than 90d --tenant acme
  # cron, nightly:
  15 3 * * * activity purge --format json >> /var/log/activity-purge.log`,
    )
    .action(
      action<PurgeCommandOptions>(io, setExitCode, async (options, context) => {
        const { ActivityError } = await import('../../domain/errors.js');
        const { parseDuration, tenantIdSchema } = await import('../../domain/inputs.js');
        const config = await context.config();
        const ageMs =
          options.olderThan === undefined
            ? config.retentionDays * 86_400_000
            : parseDuration(options.olderThan);
        if (ageMs === undefined || ageMs <= 0) {
          throw new ActivityError('USAGE_INVALID', '--older-than must be an age such as 365d, 12w or 24h');
        }
        const batchSize = Number(options.batchSize);
        if (!/^\d{1,6}$/.test(options.batchSize) || batchSize < 1 || batchSize > 100_000) {
          throw new ActivityError('USAGE_INVALID', '--batch-size must be a number from 1 to 100000');
        }
        if (options.tenant !== undefined && !tenantIdSchema.safeParse(options.tenant).success) {
          throw new ActivityError(
            'USAGE_INVALID',
            '--tenant must be 1-128 characters of A-Z a-z 0-9 . _ : -',
          );
        }
        const { usingDatabase } = await import('../../app/open-app.js');
        const { purgeExpired } = await import('../../service/purge.js');
        const report = await usingDatabase(config, (database) =>
          purgeExpired(database.repository, {
            cutoff: new Date(Date.now() - ageMs),
            tenantId: options.tenant,
            batchSize,
            dryRun: options.dryRun === true,
          }),
        );
        switch (context.format) {
          case 'json':
          case 'ndjson':
            await context.out.write(`${JSON.stringify(report)}\n`);
            break;
          case 'csv':
            await context.out.write(
              csvRow(['tenant_id', 'deleted', 'cutoff', 'dry_run']) +
                report.tenants
                  .map((t) => csvRow([t.tenant_id, t.deleted, report.cutoff, report.dry_run]))
                  .join(''),
            );
            break;
          case 'table': {
            const verb = report.dry_run ? 'would delete' : 'deleted';
            const lines = report.tenants.map((t) => `  ${escapeControl(t.tenant_id)}: ${t.deleted}\n`);
            await context.out.write(
              `${verb} ${report.deleted} events created before ${report.cutoff}\n${lines.join('')}`,
            );
          }
        }
        return 0;
      }),
    );
}
