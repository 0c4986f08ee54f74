import { Command } from 'commander';
import { action, type CliIo, type CommonOptions, examples, withCommonOptions } from '../context.js';

interface DeliverOptions extends CommonOptions {
  once?: boolean;
}

/**
 * Delivers the sinks' events without a server: for those who run no `serve` (which
 * delivers too). Several may run at once: each sink is delivered by one at a time.
 */
export function deliverCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('deliver')
      .description("deliver the sinks' events until stopped (serve does it too); logs each batch on stderr")
      .option('--once', 'deliver what is waiting now, then exit (for cron)'),
  )
    .addHelpText(
      'after',
      examples('activity deliver', 'activity deliver --once      from cron: what is waiting, then exit'),
    )
    .action(
      action<DeliverOptions>(io, setExitCode, async (options, context) => {
        const { openApp } = await import('../../app/open-app.js');
        const log = (record: Record<string, unknown>) =>
          io.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
        let failed = 0;
        const app = await openApp(await context.config(), {
          // A directory with no database has no sink: a cron job run in the wrong one says so.
          existing: true,
          delivery: {
            onBatch: (report) => {
              if (!report.delivered) failed++;
              log({ msg: report.delivered ? 'delivered' : 'not delivered', ...report });
            },
          },
        });
        try {
          if (options.once) {
            let batches = 0;
            for (;;) {
              const delivered = await app.delivery.deliverDue();
              if (delivered === 0) break;
              batches += delivered;
            }
            await context.out.write(
              context.format === 'table'
                ? `${batches} ${batches === 1 ? 'batch' : 'batches'} delivered${failed > 0 ? `, ${failed} not (see \`activity sink list\`)` : ''}\n`
                : `${JSON.stringify({ batches, failed })}\n`,
            );
            // For cron: a receiver that refused or could not be reached is a dependency unavailable.
            return failed > 0 ? 3 : 0;
          }
          const stop = new AbortController();
          const onSignal = () => stop.abort();
          process.once('SIGTERM', onSignal);
          process.once('SIGINT', onSignal);
          try {
            await app.delivery.run(stop.signal, (error) =>
              log({ msg: 'delivery failed', error: String(error) }),
            );
          } finally {
            process.off('SIGTERM', onSignal);
            process.off('SIGINT', onSignal);
          }
          return 0;
        } finally {
          await app.close();
        }
      }),
    );
}
