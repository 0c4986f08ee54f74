import { Command } from 'commander';
import { action, type CliIo, type CommonOptions, withCommonOptions } from '../context.js';
import { csvRow, escapeControl } from '../render/text.js';

export function actionsCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('actions').description('list the action registry, with each metadata schema as JSON Schema'),
    { database: false },
  )
    .addHelpText(
      'after',
      `
Custom actions come from the file named by ACTIVITY_REGISTRY_FILE (see docs/cli.md).

Examples:
  $ activity actions
  $ activity actions --format json | jq '.actions[] | select(.namespace == "auth")'`,
    )
    .action(
      action<CommonOptions>(io, setExitCode, async (_options, context) => {
        const { loadRegistry } = await import('../../app/open-app.js');
        const actions = (await loadRegistry(await context.config())).describe();
        switch (context.format) {
          case 'json':
            await context.out.write(`${JSON.stringify({ actions })}\n`);
            break;
          case 'ndjson':
            await context.out.write(actions.map((a) => `${JSON.stringify(a)}\n`).join(''));
            break;
          case 'csv':
            await context.out.write(
              csvRow(['name', 'namespace', 'description', 'schema']) +
                actions.map((a) => csvRow([a.name, a.namespace, a.description, a.schema])).join(''),
            );
            break;
          case 'table': {
            const { fitTable } = await import('../render/fit-table.js');
            const rows = actions.map((a) => {
              const properties = Object.keys(
                (a.schema.properties as Record<string, unknown> | undefined) ?? {},
              );
              const required = new Set((a.schema.required as string[] | undefined) ?? []);
              const fields = properties.map((name) => (required.has(name) ? name : `${name}?`)).join(' ');
              return [a.name, fields, a.description].map(escapeControl);
            });
            const { stdout } = context.io;
            // The description goes first, then the fields are cut: the names stay whole.
            await context.out.write(
              fitTable(
                [
                  { head: 'action', min: 30 },
                  { head: 'fields', min: 16 },
                  { head: 'description', min: 12 },
                ],
                rows,
                stdout.isTTY ? stdout.columns : undefined,
                [{ shrink: ['description'] }, { shrink: ['fields'] }, { drop: 'description' }],
              ),
            );
          }
        }
        return 0;
      }),
    );
}
