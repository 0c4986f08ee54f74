import { Command, Option } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import { actorTypes, eventStatuses } from '../../domain/event.js';
import { jsonTextIssue } from '../../domain/json-text.js';
import type { RecordManyReport } from '../../service/activity-service.js';
import {
  action,
  type CliIo,
  type CommandContext,
  type CommonOptions,
  parseJsonFlag,
  withCommonOptions,
} from '../context.js';
import { limitHeapGrowth } from '../heap-growth.js';
import { counting, startProgress } from '../progress.js';
import {
  renderEventCsv,
  renderEventDetail,
  renderEventNdjson,
  renderEventsCsvHeader,
} from '../render/events.js';
import { csvRow, escapeControl } from '../render/text.js';

interface RecordOptions extends CommonOptions {
  file?: string;
  tenant?: string;
  action?: string;
  actorType?: string;
  actorId?: string;
  objectType?: string;
  objectId?: string;
  status?: string;
  source?: string;
  requestId?: string;
  ip?: string;
  userAgent?: string;
  metadata?: string;
  id?: string;
  resumeFrom?: string;
}

/** Flag name → field of the record input. */
const eventFlags = {
  id: 'id',
  tenant: 'tenant_id',
  action: 'action',
  actorType: 'actor_type',
  actorId: 'actor_id',
  objectType: 'object_type',
  objectId: 'object_id',
  status: 'status',
  source: 'source',
  requestId: 'request_id',
  ip: 'ip',
  userAgent: 'user_agent',
} as const;

export function recordCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('record')
      .description('record one event, or NDJSON events from a file')
      .option('--tenant <id>', 'tenant id')
      .option('--action <name>', 'action from the registry (see `activity actions`)')
      .addOption(new Option('--actor-type <type>', 'who acted').choices(actorTypes))
      .option('--actor-id <id>', 'id of the actor')
      .option('--object-type <type>', 'kind of thing acted on')
      .option('--object-id <id>', 'id of the thing acted on')
      .addOption(new Option('--status <status>', 'outcome').choices(eventStatuses))
      .option('--source <source>', 'where it came from: api, cli, worker, webhook…')
      .option('--request-id <id>', 'correlation id')
      .option('--ip <address>', 'client IP (stored only as a keyed hash)')
      .option('--user-agent <ua>', 'client user agent')
      .option('--metadata <json>', 'metadata object, validated by the action schema')
      .option('--id <uuid>', 'event id for an idempotent retry (default: a new UUIDv7)')
      .option('--file <path>', 'record NDJSON events from PATH, or - for stdin')
      .option(
        '--resume-from <line>',
        'with --file: skip the lines before LINE (after an interrupted import)',
      ),
  )
    .addHelpText(
      'after',
      `
Defaults: --actor-type user, --status success. Secrets in metadata are redacted.

Examples:
  $ activity record --tenant acme --action auth.login.failure --actor-id u_1 --status failure \\
      --ip 203.0.113.7 --metadata '{"reason":"invalid_credentials"}'
  $ activity record --file events.ndjson --format json
  $ producer | activity record --file -

With --file, each line is one JSON object with the fields of an event (ip instead
of ip_hash). Valid lines are recorded; each rejected line is reported with its line
number and reason, and the exit code is then 2. Lines are stored in batches, each
all or nothing: if the database goes away, the import stops (exit 3), says through
which line everything is stored, and --resume-from the next line goes on from there
without storing any line twice.`,
    )
    .action(
      action<RecordOptions>(io, setExitCode, async (options, context) => {
        const { usingApp } = await import('../../app/open-app.js');
        if (options.file !== undefined) {
          const given = Object.keys(eventFlags).filter(
            (flag) => options[flag as keyof RecordOptions] !== undefined,
          );
          if (given.length > 0 || options.metadata !== undefined) {
            throw new ActivityError(
              'USAGE_INVALID',
              '--file takes the events from the file; drop the event flags',
            );
          }
          return recordFile(options.file, resumeFromFlag(options.resumeFrom), context);
        }
        if (options.resumeFrom !== undefined) {
          throw new ActivityError('USAGE_INVALID', '--resume-from goes with --file');
        }
        if (options.tenant === undefined || options.action === undefined) {
          throw new ActivityError('USAGE_INVALID', 'record needs --tenant and --action (or --file)');
        }
        const input: Record<string, unknown> = {};
        for (const [flag, field] of Object.entries(eventFlags)) {
          const value = options[flag as keyof typeof eventFlags];
          if (value !== undefined) input[field] = value;
        }
        if (options.metadata !== undefined) {
          input.metadata = parseJsonFlag('--metadata', options.metadata);
          const changed = jsonTextIssue(options.metadata, input.metadata, 'metadata');
          if (changed) {
            throw new ActivityError('VALIDATION_FAILED', `${changed.path}: ${changed.message}`, {
              issues: [changed],
            });
          }
        }
        const event = await usingApp(await context.config(), ({ service }) => service.record(input));
        const rendered = {
          json: () => `${JSON.stringify(event)}\n`,
          ndjson: () => renderEventNdjson(event),
          csv: () => renderEventsCsvHeader() + renderEventCsv(event),
          table: () => renderEventDetail(event),
        }[context.format]();
        await context.out.write(rendered);
        return 0;
      }),
    );
}

/** The first line to read, from --resume-from (default 1). */
function resumeFromFlag(value: string | undefined): number {
  if (value === undefined) return 1;
  if (!/^[1-9]\d{0,14}$/.test(value)) {
    throw new ActivityError('USAGE_INVALID', '--resume-from must be a line number (1 or more)');
  }
  return Number(value);
}

async function recordFile(path: string, firstLine: number, context: CommandContext): Promise<number> {
  limitHeapGrowth();
  const { usingApp } = await import('../../app/open-app.js');
  const { readNdjson } = await import('../read-ndjson.js');
  const { open } = await import('node:fs/promises');
  // Open before anything else, so a missing file is a clear error, not a stream crash.
  const handle =
    path === '-'
      ? undefined
      : await open(path).catch((error: NodeJS.ErrnoException) => {
          throw new ActivityError('INPUT_UNREADABLE', `cannot read ${path}: ${error.code ?? error.message}`);
        });
  const fileStream = handle?.createReadStream();
  const source = fileStream ?? context.io.stdin;
  // A file's size tells how much is left; stdin's is not known.
  const size = handle ? (await handle.stat()).size : 0;
  const done = fileStream && size > 0 ? () => fileStream.bytesRead / size : undefined;
  const reportRejected = context.format !== 'json';
  let report: RecordManyReport;
  let linesInInput: number | undefined;
  const lines = readNdjson(source, path === '-' ? 'stdin' : path, {
    firstLine,
    onEnd: (count) => {
      linesInInput = count;
    },
  });
  const spinner = await startProgress(context.io, 'recording');
  try {
    report = await usingApp(await context.config(), ({ service }) =>
      service.recordMany(counting(lines, spinner, 'lines read', undefined, done), (rejected) => {
        if (reportRejected) {
          // Above the progress line, which is drawn again after it.
          spinner.clear();
          context.io.stderr.write(
            `error: line ${rejected.line}: ${rejected.code}: ${escapeControl(rejected.message)}\n`,
          );
        }
      }),
    );
  } finally {
    spinner.stop();
    await handle?.close();
  }

  if (linesInInput !== undefined && firstLine > linesInInput + 1) {
    // Nothing was read, so nothing stored: most likely another input than the one that failed.
    throw new ActivityError(
      'USAGE_INVALID',
      `--resume-from ${firstLine} is past the end of the input, which has ${linesInInput} line${linesInInput === 1 ? '' : 's'}: is it the same input?`,
    );
  }
  const { failure } = report;
  // Nothing read yet counts as done up to the line before the first one asked for.
  const committedThrough = Math.max(report.committed_through_line, firstLine - 1);
  const resumeFrom = failure ? committedThrough + 1 : undefined;
  switch (context.format) {
    case 'json':
    case 'ndjson':
      await context.out.write(
        `${JSON.stringify({
          recorded: report.recorded,
          duplicates: report.duplicates,
          rejected: report.rejected,
          rejected_total: report.rejected_total,
          committed_through_line: committedThrough,
          ...(resumeFrom === undefined ? {} : { resume_from: resumeFrom }),
        })}\n`,
      );
      break;
    case 'csv':
      await context.out.write(
        csvRow(['recorded', 'duplicates', 'rejected', 'committed_through_line']) +
          csvRow([report.recorded, report.duplicates, report.rejected_total, committedThrough]),
      );
      break;
    case 'table':
      await context.out.write(
        `recorded ${report.recorded}, duplicates ${report.duplicates}, rejected ${report.rejected_total}\n`,
      );
  }
  if (failure) {
    // Reported by main like any error, with how to go on.
    throw new ActivityError(
      failure.code,
      `${failure.message}; every line through ${committedThrough} is stored: run again with --resume-from ${resumeFrom} to go on without storing any line twice`,
      { cause: failure },
    );
  }
  return report.rejected_total > 0 ? 2 : 0;
}
