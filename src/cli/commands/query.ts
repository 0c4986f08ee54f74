import type { ChalkInstance } from 'chalk';
import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import type { ActivityEvent } from '../../domain/event.js';
import {
  action,
  type CliIo,
  type CommandContext,
  type CommonOptions,
  withActorOption,
  withCommonOptions,
} from '../context.js';
import { type FilterOptions, toFilterParameters, withFilterOptions } from '../filter-options.js';
import { limitHeapGrowth } from '../heap-growth.js';
import { untilInterrupted } from '../interrupt.js';
import { counting, startProgress } from '../progress.js';
import {
  createNdjsonToArrayElements,
  renderEventCsv,
  renderEventNdjson,
  renderEventsCsvHeader,
  renderEventsTable,
} from '../render/events.js';

interface QueryOptions extends CommonOptions, FilterOptions {
  tenant: string;
  limit?: string;
  cursor?: string;
  all?: boolean;
  wide?: boolean;
}

/** Rows per table when --all prints a table: one table per chunk keeps memory flat. */
const tableChunk = 500;

export function queryCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    withFilterOptions(
      withActorOption(new Command('query'))
        .description("list a tenant's events, newest first")
        .requiredOption('--tenant <id>', 'tenant id'),
    )
      .option('--limit <n>', 'events per page, 1-1000 (default 50)')
      .option('--cursor <cursor>', 'the next page, from next_cursor of the previous one')
      .option('--all', 'every matching event, streamed with constant memory')
      .option('--wide', 'table: every column whole, however wide the terminal'),
  )
    .addHelpText(
      'after',
      `
Examples:
  $ activity query --tenant acme --action 'auth.*' --since 24h
  $ activity query --tenant acme --action auth.login.failure,auth.account.* --status failure
  $ activity query --tenant acme --limit 100 --format json | jq -r .next_cursor
  $ activity query --tenant acme --all --format ndjson > acme.ndjson`,
    )
    .action(
      action<QueryOptions>(io, setExitCode, async (options, context) => {
        const { usingApp } = await import('../../app/open-app.js');
        const input = toFilterParameters(options);
        if (options.limit !== undefined) input.limit = options.limit;
        if (options.cursor !== undefined) input.cursor = options.cursor;
        if (options.all && (options.cursor !== undefined || options.limit !== undefined)) {
          throw new ActivityError('USAGE_INVALID', '--all reads every page; drop --cursor and --limit');
        }
        const config = await context.config();
        const actor = context.actor(config);
        await usingApp(
          config,
          async ({ service }) => {
            if (options.all) {
              limitHeapGrowth();
              // Progress when the events go to a file or a pipe, and stderr is a terminal.
              const spinner = context.io.stdout.isTTY
                ? undefined
                : await startProgress(context.io, 'reading');
              try {
                if (context.format === 'ndjson' || context.format === 'json') {
                  const chunks = untilInterrupted(service.queryAllJson(options.tenant, input, actor));
                  return await writeAllJson(
                    spinner ? counting(chunks, spinner, 'events written', linesIn) : chunks,
                    context,
                  );
                }
                const events = untilInterrupted(service.queryAll(options.tenant, input, actor));
                return await writeAll(
                  spinner ? counting(events, spinner, 'events written') : events,
                  context,
                  tableFit(context, options),
                );
              } finally {
                spinner?.stop();
              }
            }
            const page = await service.query(options.tenant, input, actor);
            const { out } = context;
            switch (context.format) {
              case 'json':
                return out.write(`${JSON.stringify(page)}\n`);
              case 'ndjson':
                return out.write(page.data.map(renderEventNdjson).join(''));
              case 'csv':
                return out.write(renderEventsCsvHeader() + page.data.map(renderEventCsv).join(''));
              case 'table':
                await out.write(
                  page.data.length > 0
                    ? renderEventsTable(page.data, tableFit(context, options))
                    : 'no matching events\n',
                );
                if (page.next_cursor) context.io.stderr.write(`more: --cursor ${page.next_cursor}\n`);
            }
          },
          {
            existing: true,
            // The read is recorded as the command ends: say so if it could not be.
            onBackgroundError: (error) =>
              context.io.stderr.write(
                `warning: this read was not recorded in the tenant's log: ${String(error)}\n`,
              ),
          },
        );
        return 0;
      }),
    );
}

/** Streams the database's NDJSON as it comes, waiting for the pipe to drain; for `json`, as one document. */
async function writeAllJson(lines: AsyncIterable<Uint8Array>, context: CommandContext) {
  const { out, format } = context;
  if (format === 'ndjson') {
    for await (const chunk of lines) await out.write(chunk);
    return;
  }
  // Opened with the first events, so that a database that fails at once leaves stdout empty.
  let opening = '{"data":[';
  const toElements = createNdjsonToArrayElements();
  for await (const chunk of lines) {
    await out.write(opening);
    opening = '';
    await out.write(toElements(chunk));
  }
  await out.write(`${opening}],"next_cursor":null}\n`);
}

/**
 * Streams every event as CSV or a table (JSON and NDJSON come written by the database,
 * see writeAllJson); text is written in chunks of ~64 KiB, waiting for the pipe to drain.
 */
async function writeAll(events: AsyncIterable<ActivityEvent>, context: CommandContext, fit: TableFit) {
  const { out, format } = context;
  const csv = format === 'csv';
  let pending = csv ? renderEventsCsvHeader() : '';
  let count = 0;
  let rows: ActivityEvent[] = [];
  for await (const event of events) {
    if (csv) pending += renderEventCsv(event);
    else rows.push(event);
    count++;
    if (rows.length === tableChunk) {
      pending += renderEventsTable(rows, fit);
      rows = [];
    }
    if (pending.length >= 65_536) {
      await out.write(pending);
      pending = '';
    }
  }
  if (rows.length > 0) pending += renderEventsTable(rows, fit);
  if (!csv && count === 0) pending += 'no matching events\n';
  await out.write(pending);
}

type TableFit = { width: number | undefined; wide: boolean; paint: ChalkInstance };

/** The table fits the terminal's width unless --wide; piped, nothing to fit. */
function tableFit(context: CommandContext, options: QueryOptions): TableFit {
  const { stdout } = context.io;
  return {
    width: stdout.isTTY ? stdout.columns : undefined,
    wide: options.wide === true,
    paint: context.paint,
  };
}

/** The events in a chunk of NDJSON: one per newline. */
function linesIn(chunk: Uint8Array): number {
  let lines = 0;
  for (let at = chunk.indexOf(0x0a); at !== -1; at = chunk.indexOf(0x0a, at + 1)) lines++;
  return lines;
}
