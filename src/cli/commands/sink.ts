import { Command, Option } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import { sinkPayloads } from '../../domain/sink.js';
import type { SinkStatus, SinkView } from '../../service/sink-service.js';
import {
  action,
  type CliIo,
  type CommonOptions,
  examples,
  tenantFlag,
  withCommonOptions,
} from '../context.js';
import { csvRow, escapeControl } from '../render/text.js';

interface AddOptions extends CommonOptions {
  tenant?: string;
  action?: string;
  allTenants?: boolean;
  url: string;
  payload: string;
  header: string[];
  secret?: string;
  fromStart?: boolean;
}

export function sinkCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  const sink = new Command('sink')
    .description("sinks: deliver each tenant's events to a SIEM or a webhook, in seq order (docs/sinks.md)")
    .addHelpText(
      'after',
      `
Examples:
  $ activity sink add --tenant acme --url https://siem.example/hook --payload ocsf --header 'Authorization=Bearer …'
  $ activity sink list
  $ activity sink status 0193a7e2-5c1f-7b2a-9c3d-4e5f60718293
  $ activity deliver            delivers (serve does too)`,
    );

  sink.addCommand(
    withCommonOptions(
      new Command('add')
        .description('add a sink of one tenant (--tenant) or of every tenant (--all-tenants)')
        .option('--tenant <id>', 'the tenant whose events it receives')
        .option('--all-tenants', 'every tenant, each in batches of its own')
        .requiredOption('--url <url>', 'where the events are POSTed (http or https)')
        .addOption(
          new Option('--payload <format>', 'what each POST carries')
            .choices(sinkPayloads)
            .makeOptionMandatory(),
        )
        .option(
          '--header <name=value>',
          'a header sent with every POST, e.g. Authorization=Bearer …; stored sealed, never shown (repeatable)',
          (value: string, previous: string[]) => [...previous, value],
          [],
        )
        .option('--secret <whsec>', 'the Standard Webhooks signing secret (default: a new one, shown once)')
        .option('--from-start', 'deliver every event the tenants still have, not only those from now')
        .option(
          '--action <names>',
          "only these actions: names and ns.* prefixes, comma separated, as query's",
        ),
    )
      .addHelpText(
        'after',
        examples(
          "activity sink add --tenant acme --url https://http-inputs.splunk.example/services/collector/raw --payload ocsf --header 'Authorization=Splunk <HEC token>'",
          'activity sink add --all-tenants --url https://hooks.example/activity --payload cloudevents',
          'activity sink add --tenant acme --url http://127.0.0.1:8686/ --payload ndjson --from-start',
          "activity sink add --all-tenants --url https://siem.example/hook --payload ocsf --action 'auth.*,activity.access.denied'",
        ),
      )
      .action(
        action<AddOptions>(io, setExitCode, async (options, context) => {
          if ((options.tenant === undefined) === (options.allTenants !== true)) {
            throw new ActivityError('USAGE_INVALID', 'give --tenant ID or --all-tenants (one of them)');
          }
          const tenantId = options.tenant === undefined ? null : tenantFlag(options.tenant);
          const headers = Object.fromEntries(options.header.map(headerFlag));
          const { usingSinks } = await import('../../app/open-app.js');
          const { sink: added, secret } = await usingSinks(await context.config(), (sinks) =>
            sinks.add({
              tenantId,
              url: options.url,
              payload: options.payload,
              headers,
              ...(options.secret === undefined ? {} : { secret: options.secret }),
              fromStart: options.fromStart === true,
              ...(options.action === undefined ? {} : { action: options.action }),
            }),
          );
          if (context.format === 'table') {
            await context.out.write(
              `${renderDetail(added)}secret: ${secret}\n  (shown once: the receiver checks webhook-signature with it)\n`,
            );
          } else {
            await context.out.write(renderSinks([{ ...added, secret }], context.format, 'one'));
          }
          return 0;
        }),
      ),
  );

  sink.addCommand(
    withCommonOptions(new Command('list').description('every sink, its state and last delivery'))
      .addHelpText('after', examples('activity sink list', 'activity sink list --format json'))
      .action(
        action<CommonOptions>(io, setExitCode, async (_options, context) => {
          const { usingSinks } = await import('../../app/open-app.js');
          const sinks = await usingSinks(await context.config(), (service) => service.list(), {
            existing: true,
          });
          await context.out.write(
            sinks.length === 0 && context.format === 'table'
              ? 'no sink: add one with `activity sink add`\n'
              : renderSinks(sinks, context.format, 'list'),
          );
          return 0;
        }),
      ),
  );

  sink.addCommand(
    withCommonOptions(
      new Command('status')
        .description("a sink's state and, per tenant, how far it has delivered and how far behind it is")
        .argument('<sink-id>', 'the sink, as `sink list` shows it'),
    )
      .addHelpText('after', examples('activity sink status 0193a7e2-5c1f-7b2a-9c3d-4e5f60718293'))
      .action(
        action<CommonOptions>(io, setExitCode, async (_options, context, command) => {
          const { usingSinks } = await import('../../app/open-app.js');
          const status = await usingSinks(
            await context.config(),
            (sinks) => sinks.status(String(command.args[0])),
            {
              existing: true,
            },
          );
          await context.out.write(renderStatus(status, context.format));
          return 0;
        }),
      ),
  );

  for (const [name, description] of [
    ['pause', 'stop delivering; the cursors stay where they are'],
    ['resume', 'deliver again from the cursors (a failing or suspended sink too)'],
    ['remove', 'delete the sink and its cursors'],
  ] as const) {
    sink.addCommand(
      withCommonOptions(new Command(name).description(description).argument('<sink-id>', 'the sink'))
        .addHelpText('after', examples(`activity sink ${name} 0193a7e2-5c1f-7b2a-9c3d-4e5f60718293`))
        .action(
          action<CommonOptions>(io, setExitCode, async (_options, context, command) => {
            const sinkId = String(command.args[0]);
            const { usingSinks } = await import('../../app/open-app.js');
            const changed = await usingSinks(await context.config(), async (sinks) => {
              if (name === 'remove') {
                await sinks.remove(sinkId);
                return undefined;
              }
              return name === 'pause' ? sinks.pause(sinkId) : sinks.resume(sinkId);
            });
            await context.out.write(
              changed === undefined
                ? context.format === 'table'
                  ? `${sinkId}: removed\n`
                  : `${JSON.stringify({ sink_id: sinkId, removed: true })}\n`
                : context.format === 'table'
                  ? `${sinkId}: ${changed.state}\n`
                  : renderSinks([changed], context.format, 'one'),
            );
            return 0;
          }),
        ),
    );
  }
  return sink;
}

/** `Name=value` as a header; the name is checked by the core. */
function headerFlag(text: string): [string, string] {
  const at = text.indexOf('=');
  if (at <= 0)
    throw new ActivityError('USAGE_INVALID', '--header takes NAME=VALUE, e.g. Authorization=Bearer …');
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

function renderSinks(
  sinks: Array<SinkView & { secret?: string }>,
  format: string,
  shape: 'one' | 'list',
): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(shape === 'one' ? sinks[0] : { sinks })}\n`;
    case 'ndjson':
      return sinks.map((sink) => `${JSON.stringify(sink)}\n`).join('');
    case 'csv': {
      // `add` shows the secret once: in every format, csv too.
      const secret = sinks.some((sink) => sink.secret !== undefined);
      return (
        csvRow([
          'sink_id',
          'tenant_id',
          'url',
          'payload',
          'state',
          'last_success_at',
          'last_error',
          ...(secret ? ['secret'] : []),
        ]) +
        sinks
          .map((s) =>
            csvRow([
              s.sink_id,
              s.tenant_id ?? '*',
              s.url,
              s.payload,
              s.state,
              s.last_success_at,
              s.last_error,
              ...(secret ? [s.secret] : []),
            ]),
          )
          .join('')
      );
    }
    default:
      return sinks.map(renderDetail).join('\n');
  }
}

function renderDetail(sink: SinkView): string {
  const lines: Array<[string, string | null]> = [
    ['sink', sink.sink_id],
    ['tenant', sink.tenant_id ?? 'every tenant'],
    ['url', sink.url],
    ['payload', sink.payload],
    ['actions', sink.actions === null ? null : sink.actions.join(', ')],
    [
      'headers',
      sink.header_names === null
        ? 'cannot be opened: ACTIVITY_SECRET is not the one they were sealed with'
        : sink.header_names.length === 0
          ? null
          : sink.header_names.join(', '),
    ],
    ['state', sink.state],
    ['last success', sink.last_success_at],
    ['last error', sink.last_error === null ? null : `${sink.last_error} (${sink.last_error_at})`],
  ];
  return lines
    .filter(([, value]) => value !== null)
    .map(([name, value]) => `${name}: ${escapeControl(String(value))}\n`)
    .join('');
}

function renderStatus(status: SinkStatus, format: string): string {
  if (format === 'json' || format === 'ndjson') return `${JSON.stringify(status)}\n`;
  if (format === 'csv') {
    return (
      csvRow([
        'tenant_id',
        'delivered_seq',
        'last_seq',
        'lag_events',
        'lag_seconds',
        'skipped',
        'delivered_at',
      ]) +
      status.tenants
        .map((t) =>
          csvRow([
            t.tenant_id,
            t.delivered_seq,
            t.last_seq,
            t.lag_events,
            t.lag_seconds,
            t.skipped,
            t.delivered_at,
          ]),
        )
        .join('')
    );
  }
  return (
    `${renderDetail(status)}behind: ${status.lag_events} events, ${status.lag_seconds} s\n` +
    status.tenants
      .map(
        (t) =>
          `  ${escapeControl(t.tenant_id)}: delivered through ${t.delivered_seq} of ${t.last_seq}` +
          `${t.lag_events > 0 ? ` (${t.lag_events} behind, ${t.lag_seconds} s)` : ''}` +
          `${t.skipped > 0 ? `, ${t.skipped} purged before delivery` : ''}\n`,
      )
      .join('')
  );
}
