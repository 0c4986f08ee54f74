import { Command } from 'commander';
import { ActivityError } from '../../domain/errors.js';
import { action, type CliIo, type CommonOptions, withCommonOptions } from '../context.js';

interface ServeOptions extends CommonOptions {
  host: string;
  port: string;
  maxConnections: string;
}

export function serveCommand(io: CliIo, setExitCode: (code: number) => void): Command {
  return withCommonOptions(
    new Command('serve')
      .description('serve the HTTP API and the live stream (SIGTERM drains and exits 0)')
      .option('--host <address>', 'address to bind', '127.0.0.1')
      .option('--port <n>', 'port to bind (0: any free port)', '8080')
      .option(
        '--max-connections <n>',
        'connections held at once; more are answered 503 (keep it under the open-file limit)',
        '10000',
      ),
    { format: false },
  )
    .addHelpText(
      'after',
      `
Needs ACTIVITY_JWT_SECRET (or ACTIVITY_JWKS_FILE) to verify bearer tokens; mint one
with \`activity token\`. Logs are JSON lines on stderr. See docs/api.md.

Examples:
  $ ACTIVITY_JWT_SECRET=… activity serve --port 8080
  $ curl -H "Authorization: Bearer $(activity token --tenant acme --role admin)" \\
      'http://127.0.0.1:8080/api/v1/activity?action=auth.*'`,
    )
    .action(
      action<ServeOptions>(io, setExitCode, async (options, context) => {
        const port = Number(options.port);
        if (!/^\d{1,5}$/.test(options.port) || port > 65_535) {
          throw new ActivityError('USAGE_INVALID', '--port must be a number from 0 to 65535');
        }
        const maxConnections = Number(options.maxConnections);
        if (!/^\d{1,7}$/.test(options.maxConnections) || maxConnections < 1) {
          throw new ActivityError('USAGE_INVALID', '--max-connections must be a whole number, at least 1');
        }
        const { openApp } = await import('../../app/open-app.js');
        const { startServer } = await import('../../http/server.js');
        // Lines written within one turn of the event loop go out in one write: one
        // syscall per burst of requests, not one per request.
        let pending = '';
        const flush = () => {
          const lines = pending;
          pending = '';
          if (lines !== '') io.stderr.write(lines);
        };
        const log = (record: Record<string, unknown>) => {
          if (pending === '') setImmediate(flush);
          pending += `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
        };
        const config = await context.config();
        const app = await openApp(config, {
          stream: config.streamEnabled,
          onBackgroundError: (error) => log({ msg: 'background error', error: String(error) }),
          delivery: {
            onBatch: (report) => {
              if (!report.delivered || report.skipped > 0) log({ msg: 'sink batch', ...report });
            },
          },
        });
        try {
          const server = await startServer(app, { host: options.host, port, log, maxConnections });
          app.hub?.start().catch((error) => log({ msg: 'stream transport failed', error: String(error) }));
          // serve delivers the sinks' events too; with replicas, each sink by one at a time.
          const delivery = new AbortController();
          const delivering = app.delivery.run(delivery.signal, (error) =>
            log({ msg: 'delivery failed', error: String(error) }),
          );
          await new Promise<void>((resolve) => {
            process.once('SIGTERM', resolve);
            process.once('SIGINT', resolve);
          });
          log({ msg: 'shutting down' });
          delivery.abort();
          await Promise.all([server.close(), delivering]);
        } finally {
          await app.close();
          flush();
        }
        return 0;
      }),
    );
}
