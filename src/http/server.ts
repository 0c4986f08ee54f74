import { createServer, type Server, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { ActivityApp } from '../app/open-app.js';
import { toolVersion } from '../app/tool-version.js';
import { createTokenVerifier } from '../auth/verify-token.js';
import { ActivityError, type ErrorCode, errorCodes, retryAfterSeconds } from '../domain/errors.js';
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
  // What node:http's parser refuses (bad HTTP, headers over 16 KiB, a request that took
  // too long) never reaches the handler: answered here as every other error is.
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    const answer = clientErrorAnswer(error);
    // A client gone, or a response already begun on the connection: nothing to answer.
    const responding = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (answer === undefined || !socket.writable || responding?.headersSent) {
      socket.destroy();
      return;
    }
    socket.end(rawProblem(answer.code, answer.detail));
  });
  // A connection that sends nothing at all is not timed by the above: close it after
  // two minutes of silence both ways (a stream's heartbeat keeps it busy).
  server.timeout = 120_000;
  // Ahead of node:http's own listener, so that a refused connection is answered first.
  server.prependListener('connection', (socket: Socket) => {
    server.getConnections((error, count) => {
      if (error || count <= maxConnections) return;
      refused.add(socket);
      socket.end(
        rawProblem(
          'TOO_MANY_CONNECTIONS',
          `this server holds its maximum of ${maxConnections} connections; try again shortly`,
        ),
      );
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

/** What to answer a request node:http's parser refused, or undefined when the client is gone. */
function clientErrorAnswer(error: NodeJS.ErrnoException): { code: ErrorCode; detail: string } | undefined {
  switch (error.code) {
    case 'ECONNRESET':
    case 'EPIPE':
      return undefined;
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        code: 'REQUEST_TIMEOUT',
        detail: 'the request did not arrive in time (headers within 20 s, the whole request within 30 s)',
      };
    case 'HPE_HEADER_OVERFLOW':
      return { code: 'HEADERS_TOO_LARGE', detail: 'the request headers are over 16 KiB' };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { code: 'BODY_TOO_LARGE', detail: 'the chunk extensions of the body are over 16 KiB' };
    default:
      return { code: 'INPUT_UNREADABLE', detail: 'the request is not valid HTTP/1.1' };
  }
}

/**
 * A problem written straight to a socket, before or instead of a request the handler
 * reads; the connection is closed after it.
 */
function rawProblem(code: ErrorCode, detail: string): string {
  const { http: status, title } = errorCodes[code];
  const body = JSON.stringify({ type: 'about:blank', title, status, detail, code });
  const retryAfter = retryAfterSeconds(code);
  return [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? title}`,
    'content-type: application/problem+json',
    `content-length: ${Buffer.byteLength(body)}`,
    ...(retryAfter === undefined ? [] : [`retry-after: ${retryAfter}`]),
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
