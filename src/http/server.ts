import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ActivityApp } from '../app/open-app.js';
import { ActivityError } from '../domain/errors.js';
import { createTokenVerifier } from './auth.js';
import { createHandler } from './create-handler.js';

export interface ServerOptions {
  host: string;
  port: number;
  log(record: Record<string, unknown>): void;
  /** How long in-flight requests may take to finish on shutdown. */
  drainMs?: number;
  heartbeatMs?: number;
  /** See HandlerOptions. */
  stallTimeoutMs?: number;
}

export interface RunningServer {
  url: string;
  /** Stops accepting, ends open streams, waits for in-flight requests. Idempotent. */
  close(): Promise<void>;
}

/** Binds the port and serves the API of `app`. The only place that listens. */
export async function startServer(app: ActivityApp, options: ServerOptions): Promise<RunningServer> {
  const { jwtSecret, jwksFile, jwtIssuer, jwtAudience } = app.config;
  if (!jwtSecret && !jwksFile) {
    throw new ActivityError(
      'CONFIG_INVALID',
      'serve needs ACTIVITY_JWT_SECRET (HS256, at least 32 bytes) or ACTIVITY_JWKS_FILE to verify bearer tokens',
    );
  }
  const verifier = createTokenVerifier({ jwtSecret, jwksFile, issuer: jwtIssuer, audience: jwtAudience });
  const handler = createHandler({
    service: app.service,
    verifier,
    metrics: app.metrics,
    hub: app.config.streamEnabled ? app.hub : undefined,
    log: options.log,
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.stallTimeoutMs ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
  });
  const server = createServer((request, response) => void handler(request, response));
  // SSE connections are long-lived by design; the heartbeat keeps them from idling out.
  server.requestTimeout = 0;
  // Idle keep-alive outlives the usual 60 s of load balancers and proxies, so they
  // never send a request on a connection serve is closing (a 502).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await listen(server, options.host, options.port);
  const { address, port } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
  options.log({
    msg: 'listening',
    url,
    stream: app.hub && app.config.streamEnabled ? app.transport.name : 'off',
  });

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        handler.closeStreams();
        server.closeIdleConnections();
        const timer = setTimeout(() => server.closeAllConnections(), options.drainMs ?? 10_000);
        await closed;
        clearTimeout(timer);
        options.log({ msg: 'stopped' });
      })();
      return closing;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) =>
      reject(
        new ActivityError(
          error.code === 'EADDRINUSE' || error.code === 'EACCES' ? 'USAGE_INVALID' : 'INTERNAL',
          `cannot listen on ${host}:${port}: ${error.code ?? error.message}`,
          { cause: error },
        ),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
