import { Argument, Command } from 'commander';
import { action, type CliIo, type CommonOptions, withCommonOptions } from '../context.js';
import { csvRow, escapeControl } from '../render/text.js';

interface MigrateOptions extends CommonOptions {
  to?: string;
  yes?: boolean;
  force?: boolean;
}

export function migrateCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('migrate')
      .description('apply, roll back or list schema migrations (idempotent; safe when run twice at once)')
      .addArgument(new Argument('[direction]', 'what to do').choices(['up', 'down', 'status']).default('up'))
      .option('--to <name>', 'up: apply up to and including NAME; down: roll back to NAME, keeping it')
      .option('--yes', 'down: drop what the rollback drops (it lists it, and refuses without this)')
      .option('--force', 'the same as --yes, for scripts'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ activity migrate                      apply every pending migration
  $ activity migrate status --format json
  $ activity migrate down                 list what rolling back the last migration drops
  $ activity migrate down --yes           then do it

A rollback that drops tables or columns holding data refuses without --yes (or
--force), naming each with its rows; one that would drop legal holds refuses while
any tenant is on hold.`,
    )
    .action(
      action<MigrateOptions>(io, setExitCode, async (options, context, command) => {
        const direction = command.processedArgs[0] as 'up' | 'down' | 'status';
        const { usingMigrations } = await import('../../app/open-app.js');
        const config = await context.config();
        await usingMigrations(config, async (migrations) => {
          if (direction === 'status') {
            const statuses = await migrations.status();
            if (context.format === 'json' || context.format === 'ndjson') {
              return context.out.write(`${JSON.stringify({ migrations: statuses })}\n`);
            }
            const rows = statuses.map((m) => [m.name, m.applied, m.applied_at]);
            if (context.format === 'csv') {
              return context.out.write(csvRow(['name', 'applied', 'applied_at']) + rows.map(csvRow).join(''));
            }
            return context.out.write(
              statuses
                .map(
                  (m) =>
                    `${m.applied ? 'applied' : 'pending'}  ${m.name}${m.applied_at ? `  ${m.applied_at}` : ''}\n`,
                )
                .join(''),
            );
          }
          const report =
            direction === 'up'
              ? await migrations.up(options.to)
              : {
                  ...(await migrations.down(options.to, {
                    confirmed: Boolean(options.yes || options.force),
                  })),
                  partitionsCreated: 0,
                  trees: undefined,
                };
          const { partitionsCreated, trees } = report;
          const key = direction === 'up' ? 'applied' : 'rolled_back';
          if (context.format === 'json' || context.format === 'ndjson') {
            const extra =
              direction === 'up'
                ? {
                    partitions_created: partitionsCreated,
                    trees: trees && {
                      events: trees.events,
                      tenants: trees.tenants,
                      left: trees.left.map((left) => ({ tenant_id: left.tenantId, reason: left.reason })),
                    },
                  }
                : {};
            return context.out.write(`${JSON.stringify({ [key]: report.names, ...extra })}\n`);
          }
          if (context.format === 'csv') {
            return context.out.write(csvRow([key]) + report.names.map((name) => csvRow([name])).join(''));
          }
          const verb = direction === 'up' ? 'applied' : 'rolled back';
          const partitions =
            partitionsCreated > 0 ? `created ${partitionsCreated} monthly partitions ahead\n` : '';
          const brought =
            trees && trees.events > 0
              ? `brought ${trees.events.toLocaleString('en')} stored events of ${trees.tenants} tenant(s) into their trees\n`
              : '';
          const left = (trees?.left ?? [])
            .map(
              (tenant) =>
                `warning: tenant ${escapeControl(tenant.tenantId)} stays partly outside its tree: ${tenant.reason}\n`,
            )
            .join('');
          return context.out.write(
            (report.names.length === 0
              ? `nothing to do: ${direction === 'up' ? 'the schema is up to date' : 'no migration to roll back'}\n`
              : report.names.map((name) => `${verb}  ${name}\n`).join('')) +
              partitions +
              brought +
              left,
          );
        });
        return 0;
      }),
    );
}
