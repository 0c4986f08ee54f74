import { Command } from 'commander';
import type { RetentionPolicy } from '../../domain/retention.js';
import {
  action,
  type CliIo,
  type CommonOptions,
  examples,
  tenantFlag,
  withActorOption,
  withCommonOptions,
  withFlagNames,
} from '../context.js';
import { csvRow, escapeControl } from '../render/text.js';

interface TenantOptions extends CommonOptions {
  tenant: string;
}

interface SetOptions extends TenantOptions {
  days: string;
}

export function retentionCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  const retention = new Command('retention')
    .description("per-tenant retention: a tenant's policy overrides purge's default")
    .addHelpText(
      'after',
      `
Examples:
  $ activity retention set --tenant acme --days 2555     keep acme's events 7 years
  $ activity retention list
  $ activity retention clear --tenant acme               back to the default`,
    );

  retention.addCommand(
    withCommonOptions(
      withActorOption(
        new Command('set')
          .description("set a tenant's retention, in days (1-36500)")
          .requiredOption('--tenant <id>', 'the tenant')
          .requiredOption('--days <n>', 'keep events this many days'),
      ),
    )
      .addHelpText(
        'after',
        examples(
          'activity retention set --tenant acme --days 2555     keep 7 years',
          'activity retention set --tenant acme --days 30 --actor alice',
        ),
      )
      .action(
        action<SetOptions>(io, setExitCode, async (options, context) => {
          const tenantId = tenantFlag(options.tenant);
          // Digits only: a number the flag spells otherwise ("1e3", "0x10") is refused as it reads.
          const days = /^\d{1,6}$/.test(options.days) ? Number(options.days) : Number.NaN;
          const { usingRetention } = await import('../../app/open-app.js');
          const config = await context.config();
          const policy = await usingRetention(config, (retention) =>
            withFlagNames(retention.setPolicy(tenantId, days, context.actor(config)), {
              tenant_id: '--tenant',
              retention_days: '--days',
            }),
          );
          await context.out.write(renderPolicies([policy], context.format, 'one'));
          return 0;
        }),
      ),
  );

  retention.addCommand(
    withCommonOptions(
      withActorOption(
        new Command('clear')
          .description("remove a tenant's policy: the default applies again")
          .requiredOption('--tenant <id>', 'the tenant'),
      ),
    )
      .addHelpText('after', examples('activity retention clear --tenant acme     the default applies again'))
      .action(
        action<TenantOptions>(io, setExitCode, async (options, context) => {
          const tenantId = tenantFlag(options.tenant);
          const { usingRetention } = await import('../../app/open-app.js');
          const config = await context.config();
          const cleared = await usingRetention(config, (retention) =>
            retention.clearPolicy(tenantId, context.actor(config)),
          );
          await context.out.write(
            context.format === 'table'
              ? `${escapeControl(tenantId)}: ${cleared ? 'policy cleared; the default applies' : 'had no policy'}\n`
              : context.format === 'csv'
                ? csvRow(['tenant_id', 'cleared']) + csvRow([tenantId, cleared])
                : `${JSON.stringify({ tenant_id: tenantId, cleared })}\n`,
          );
          return 0;
        }),
      ),
  );

  retention.addCommand(
    withCommonOptions(new Command('list').description('the default retention and every tenant policy'))
      .addHelpText('after', examples('activity retention list', 'activity retention list --format json'))
      .action(
        action<CommonOptions>(io, setExitCode, async (_options, context) => {
          const config = await context.config();
          const { usingRetention } = await import('../../app/open-app.js');
          const policies = await usingRetention(config, (retention) => retention.policies());
          if (context.format === 'json' || context.format === 'ndjson') {
            await context.out.write(`${JSON.stringify({ default_days: config.retentionDays, policies })}\n`);
          } else if (context.format === 'csv') {
            await context.out.write(renderPolicies(policies, 'csv', 'list'));
          } else {
            await context.out.write(
              `default: ${config.retentionDays} days (ACTIVITY_RETENTION_DAYS, or purge --older-than)\n${renderPolicies(policies, 'table', 'list')}`,
            );
          }
          return 0;
        }),
      ),
  );
  return retention;
}

function renderPolicies(policies: RetentionPolicy[], format: string, shape: 'one' | 'list'): string {
  switch (format) {
    case 'json':
    case 'ndjson':
      return `${JSON.stringify(shape === 'one' ? policies[0] : { policies })}\n`;
    case 'csv':
      return (
        csvRow(['tenant_id', 'retention_days', 'updated_at']) +
        policies.map((p) => csvRow([p.tenant_id, p.retention_days, p.updated_at])).join('')
      );
    default:
      return policies
        .map((p) => `${escapeControl(p.tenant_id)}: ${p.retention_days} days (set ${p.updated_at})\n`)
        .join('');
  }
}
