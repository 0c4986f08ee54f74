import { Command } from 'commander';
import type { LegalHold } from '../../domain/retention.js';
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

interface HoldOptions extends CommonOptions {
  tenant: string;
  reason?: string;
}

export function holdCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  const hold = new Command('hold')
    .description('legal holds: a tenant on hold is never purged, whatever its retention')
    .addHelpText(
      'after',
      `
Examples:
  $ activity hold add --tenant acme --reason "litigation 2026-114"
  $ activity hold list
  $ activity hold remove --tenant acme`,
    );

  hold.addCommand(
    withCommonOptions(
      withActorOption(
        new Command('add')
          .description('place a tenant on hold (again: keeps the first time, updates the reason)')
          .requiredOption('--tenant <id>', 'the tenant')
          .option('--reason <text>', 'why, e.g. a case reference'),
      ),
    )
      .addHelpText(
        'after',
        examples(
          'activity hold add --tenant acme --reason "litigation 2026-114"',
          'activity hold add --tenant acme --reason "case 7" --actor legal-ops',
        ),
      )
      .action(
        action<HoldOptions>(io, setExitCode, async (options, context) => {
          const tenantId = tenantFlag(options.tenant);
          const { usingRetention } = await import('../../app/open-app.js');
          const config = await context.config();
          const placed = await usingRetention(config, (retention) =>
            withFlagNames(
              retention.placeHold(tenantId, options.reason ?? null, context.actor(config)),
              holdFlags,
            ),
          );
          await context.out.write(renderHolds([placed], context.format, 'one'));
          return 0;
        }),
      ),
  );

  hold.addCommand(
    withCommonOptions(
      withActorOption(
        new Command('remove')
          .description('release a tenant from hold: purge applies its retention again')
          .requiredOption('--tenant <id>', 'the tenant'),
      ),
    )
      .addHelpText(
        'after',
        examples('activity hold remove --tenant acme     purge applies its retention again'),
      )
      .action(
        action<HoldOptions>(io, setExitCode, async (options, context) => {
          const tenantId = tenantFlag(options.tenant);
          const { usingRetention } = await import('../../app/open-app.js');
          const config = await context.config();
          const removed = await usingRetention(config, (retention) =>
            retention.releaseHold(tenantId, context.actor(config)),
          );
          await context.out.write(
            context.format === 'table'
              ? `${escapeControl(tenantId)}: ${removed ? 'hold removed' : 'was not on hold'}\n`
              : context.format === 'csv'
                ? csvRow(['tenant_id', 'removed']) + csvRow([tenantId, removed])
                : `${JSON.stringify({ tenant_id: tenantId, removed })}\n`,
          );
          return 0;
        }),
      ),
  );

  hold.addCommand(
    withCommonOptions(new Command('list').description('every tenant on hold'))
      .addHelpText('after', examples('activity hold list', 'activity hold list --format json'))
      .action(
        action<CommonOptions>(io, setExitCode, async (_options, context) => {
          const { usingRetention } = await import('../../app/open-app.js');
          const holds = await usingRetention(await context.config(), (retention) => retention.holds());
          await context.out.write(
            holds.length === 0 && context.format === 'table'
              ? 'no tenant is on hold\n'
              : renderHolds(holds, context.format, 'list'),
          );
          return 0;
        }),
      ),
  );
  return hold;
}

/** The core's fields, as the flags of these commands name them. */
const holdFlags = { tenant_id: '--tenant', reason: '--reason' };

function renderHolds(holds: LegalHold[], format: string, shape: 'one' | 'list'): string {
  switch (format) {
    case 'json':
    case 'ndjson':
      return `${JSON.stringify(shape === 'one' ? holds[0] : { holds })}\n`;
    case 'csv':
      return (
        csvRow(['tenant_id', 'reason', 'placed_at']) +
        holds.map((h) => csvRow([h.tenant_id, h.reason, h.placed_at])).join('')
      );
    default:
      return holds
        .map(
          (h) =>
            `${escapeControl(h.tenant_id)}: on hold since ${h.placed_at}${h.reason ? ` (${escapeControl(h.reason)})` : ''}\n`,
        )
        .join('');
  }
}
