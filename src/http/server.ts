import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ActivityApp } from '../app/open-app.js';
import { toolVersion } from '../app/tool-version.js';
import { createTokenVerifier } from '../auth/verify-token.js';
import { ActivityError, errorCodes, retryAfterSeconds } from '../domain/errors.js';
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
  /** How long a request (headers and body) may take to arrive before a 408 (default 30 s). */
  requestTimeoutMs?: number;
  /** Connections held at once; past it a new one is answered 503 and closed (default 10,000). */
  maxConnections?: number;
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
      'serve needs ACTIVITY_JWT_SECRET (HS256, at least 32 bytes: export ACTIVITY_JWT_SECRET="$(openssl rand -hex 32)") or ACTIVITY_JWKS_FILE to verify bearer tokens',
    );
  }
  const verifier = createTokenVerifier({ jwtSecret, jwksFile, issuer: jwtIssuer, audience: jwtAudience });
  const handler = createHandler({
    service: app.service,
    integrity: app.integrity,
    verifier,
    metrics: app.metrics,
    hub: app.config.streamEnabled ? app.hub : undefined,
    log: options.log,
    version: toolVersion(),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
    ...(options.stallTimeoutMs ? { stallTimeoutMs: options.stallTimeoutMs } : {}),
  });
  const maxConnections = options.maxConnections ?? 10_000;
  // Connections past the cap, answered 503 as they arrive: the handler never runs for them.
  const refused = new WeakSet<Socket>();
  const server = createServer(
    {
      // The whole request, headers and body, must arrive within this (408 otherwise),
      // checked every second: a body sent a byte at a time cannot hold a connection.
      // A stream's request has no body: once read, its connection is not timed.
      requestTimeout: options.requestTimeoutMs ?? 30_000,
      headersTimeout: Math.min(20_000, options.requestTimeoutMs ?? 30_000),
      connectionsCheckingInterval: 1_000,
      // Idle keep-alive outlives the usual 60 s of load balancers and proxies, so they
      // never send a request on a connection serve is closing (a 502).
      keepAliveTimeout: 65_000,
    },
    (request, response) => {
      if (refused.has(request.socket)) request.socket.destroy();
      else void handler(request, response);
    },
  );
  // A connection that sends nothing at all is not timed by the above: close it after
  // two minutes of silence both ways (a stream's heartbeat keeps it busy).
  server.timeout = 120_000;
  // Ahead of node:http's own listener, so that a refused connection is answered first.
  server.prependListener('connection', (socket: Socket) => {
    server.getConnections((error, count) => {
      if (error || count <= maxConnections) return;
      refused.add(socket);
      socket.end(tooManyConnections(maxConnections));
    });
  });
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

/** The raw 503 for a connection past the cap: written before any request is read. */
function tooManyConnections(maxConnections: number): string {
  const { http: status, title } = errorCodes.TOO_MANY_CONNECTIONS;
  const body = JSON.stringify({
    type: 'about:blank',
    title,
    status,
    detail: `this server holds its maximum of ${maxConnections} connections; try again shortly`,
    code: 'TOO_MANY_CONNECTIONS',
  });
  return [
    `HTTP/1.1 ${status} Service Unavailable`,
    'content-type: application/problem+json',
    `content-length: ${Buffer.byteLength(body)}`,
    `retry-after: ${retryAfterSeconds('TOO_MANY_CONNECTIONS')}`,
    'connection: close',
    '',
    body,
  ].join('\r\n');
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
