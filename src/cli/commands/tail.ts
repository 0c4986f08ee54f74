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
import { followLocal } from '../follow-local.js';
import { renderEventLine } from '../render/event-line.js';
import { renderEventCsv, renderEventNdjson, renderEventsCsvHeader } from '../render/events.js';

interface TailOptions extends CommonOptions, FilterOptions {
  tenant?: string;
  lines: string;
  url?: string;
  token?: string;
}

export function tailCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    withFilterOptions(
      withActorOption(new Command('tail'))
        .description('print the last N matching events, then follow new ones until interrupted')
        .option('--tenant <id>', 'tenant id (with --url, the token decides)'),
    )
      .option('-n, --lines <n>', 'how many past events to print first', '10')
      .option('--url <url>', 'follow a remote `activity serve` over SSE instead of the database')
      .option('--token <jwt>', 'bearer token for --url (see `activity token`)'),
  )
    .addHelpText(
      'after',
      `
Past events print oldest first, then new ones as they commit. Readable lines on a
terminal, NDJSON when piped. Ctrl-C stops.

Examples:
  $ activity tail --tenant acme --action 'auth.*' -n 20
  $ activity tail --tenant acme --status failure --format ndjson | jq .action
  $ activity tail --url https://activity.internal --token "$TOKEN" --action 'billing.*'`,
    )
    .action(
      action<TailOptions>(io, setExitCode, async (options, context) => {
        if (!/^\d{1,4}$/.test(options.lines) || Number(options.lines) > maxLines)
          throw new ActivityError('USAGE_INVALID', `-n must be 0 to ${maxLines}`);
        const filters = toFilterParameters(options);
        const print = eventPrinter(context);
        const stop = stopSignal();
        if (options.url !== undefined) {
          if (!options.token) throw new ActivityError('USAGE_INVALID', '--url needs --token');
          assertServerUrl(options.url);
          const { followRemote } = await import('../follow-remote.js');
          await followRemote({
            url: options.url,
            token: options.token,
            filters,
            lines: Number(options.lines),
            print,
            stop,
          });
          return 0;
        }
        if (options.tenant === undefined)
          throw new ActivityError('USAGE_INVALID', 'tail needs --tenant (or --url)');
        const tenant = options.tenant;
        const { usingApp } = await import('../../app/open-app.js');
        const config = await context.config();
        const actor = context.actor(config);
        const warn = (error: unknown) => io.stderr.write(`warning: ${String(error)}\n`);
        await usingApp(
          config,
          async ({ service, hub }) => {
            if (!hub) throw new Error('tail opens the app with its stream hub');
            // Where the past ends and the stream begins, so nothing is printed twice or skipped.
            const { events, afterSeq } = await service.backlog(tenant, filters, Number(options.lines));
            const filter = service.streamFilter(tenant, filters);
            const closed = service.audit.streamOpened(actor, tenant, filter, afterSeq);
            let delivered = 0;
            // Ctrl-C holds no handle of its own: while the stream is quiet (the database
            // away, reconnecting on unref'd timers), Node would end the process mid-await.
            const waitingForCtrlC = setInterval(() => {}, 60_000);
            try {
              for (const event of events) {
                await print(event);
                delivered++;
              }
              if (config.database.kind === 'pglite') {
                io.stderr.write(embeddedNote);
                return;
              }
              await waitForListening(hub.start());
              delivered += await followLocal({
                hub,
                tenantId: tenant,
                filter,
                afterSeq,
                print,
                stop,
                onRetry: warn,
              });
            } finally {
              clearInterval(waitingForCtrlC);
              closed(delivered);
            }
          },
          {
            stream: true,
            existing: true,
            onBackgroundError: warn,
          },
        );
        return 0;
      }),
    );
}

/** Past events a local tail prints (the page size of a backlog). */
const maxLines = 1000;

const embeddedNote =
  'tail: no new events can come: the embedded database serves one process at a time, and ' +
  'this one holds it. To follow, run `activity serve` and `activity tail --url`, or share a ' +
  'PostgreSQL (ACTIVITY_DATABASE_URL).\n';

/** Resolves on Ctrl-C or SIGTERM. */
function stopSignal(): Promise<void> {
  return new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

async function waitForListening(listening: Promise<void>) {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ActivityError(
            'DEPENDENCY_UNAVAILABLE',
            'cannot listen for new events (Redis or PostgreSQL unreachable)',
          ),
        ),
      10_000,
    );
  });
  try {
    await Promise.race([listening, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function eventPrinter(context: CommandContext): (event: ActivityEvent) => Promise<void> {
  let headerDone = false;
  return async (event) => {
    switch (context.format) {
      case 'table':
        return context.out.write(renderEventLine(event));
      case 'csv':
        if (!headerDone) await context.out.write(renderEventsCsvHeader());
        headerDone = true;
        return context.out.write(renderEventCsv(event));
      default:
        return context.out.write(renderEventNdjson(event));
    }
  };
}

/** `--url` names a server, nothing more: a user or password in it would be sent nowhere and printed in errors. */
function assertServerUrl(value: string) {
  const url = URL.parse(value);
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new ActivityError('USAGE_INVALID', '--url must be an http:// or https:// URL of `activity serve`');
  }
  if (url.username !== '' || url.password !== '') {
    throw new ActivityError(
      'USAGE_INVALID',
      '--url must not hold a user or password: the token goes in --token',
    );
  }
}
