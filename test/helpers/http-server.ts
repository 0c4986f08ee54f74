import { createConnection } from 'node:net';
import { type ActivityApp, openAppWithDatabase } from '../../src/app/open-app.js';
import { createTokenSigner } from '../../src/auth/sign-token.js';
import { loadConfig } from '../../src/config/load-config.js';
import { type RunningServer, type ServerOptions, startServer } from '../../src/http/server.js';
import type { Database } from '../../src/store/open-database.js';
import { createSseParser, type SseMessage } from '../../src/stream/sse-frames.js';
import type { StreamLimits } from '../../src/stream/stream-hub.js';
import { contractViolation } from './openapi-contract.js';

/** ACTIVITY_SECRET for servers under test (any 32 bytes will do). */
export const testSecret = 'http-test-secret-0123456789abcdef0123456789';
/** ACTIVITY_JWT_SECRET: tokens from `token()` are signed with it. */
export const testJwtSecret = 'http-test-jwt-secret-0123456789abcdef012345';

export interface TokenOptions {
  subject?: string;
  role?: string;
  /** Default: read and write. */
  scopes?: readonly string[];
  ttlSeconds?: number;
  /** Mint as if at this time (an old clock makes an expired token). */
  now?: Date;
}

export interface TestServer {
  url: string;
  app: ActivityApp;
  /** The database under the app, for a test that must give an event its time. */
  database: Database;
  /** Every structured log line the server wrote, in order. */
  logs: Record<string, unknown>[];
  /** A bearer token for `tenantId`, signed with the server's key. */
  token(tenantId: string, options?: TokenOptions): Promise<string>;
  /** Stops the server, then the app. */
  close(): Promise<void>;
}

export interface TestServerOptions {
  databaseUrl: string;
  /** More environment for loadConfig (ENABLE_ACTIVITY_STREAM=false, say). */
  env?: Record<string, string>;
  /**
   * Wait until the live stream listens before returning (default true). A server
   * whose database is down must not wait: `serve` starts the hub in the background.
   */
  waitForStream?: boolean;
  /** Stream limits other than the defaults. */
  streamLimits?: StreamLimits;
  /** Server options other than the defaults (heartbeat, stall timeout, connection cap). */
  server?: Partial<ServerOptions>;
  /** The clock that resolves relative times (`?since=1h`), when not the system's. */
  clock?: () => Date;
}

/** `activity serve` in-process on a free loopback port, as the CLI wires it. */
export async function startTestServer(options: TestServerOptions): Promise<TestServer> {
  const config = loadConfig(
    { databaseUrl: options.databaseUrl },
    { ACTIVITY_SECRET: testSecret, ACTIVITY_JWT_SECRET: testJwtSecret, ...options.env },
  );
  const logs: Record<string, unknown>[] = [];
  const log = (record: Record<string, unknown>) => {
    logs.push(record);
  };
  const { app, database } = await openAppWithDatabase(config, {
    stream: true,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.streamLimits ? { streamLimits: options.streamLimits } : {}),
    onBackgroundError: (error) => log({ msg: 'background error', error: String(error) }),
  });
  let server: RunningServer;
  try {
    server = await startServer(app, { host: '127.0.0.1', port: 0, log, ...options.server });
    const listening = app.hub?.start().catch((error) => log({ msg: 'stream failed', error: String(error) }));
    if (options.waitForStream ?? true) await listening;
  } catch (error) {
    await app.close();
    throw error;
  }
  return {
    url: server.url,
    app,
    database,
    logs,
    async token(tenantId, tokenOptions = {}) {
      const now = tokenOptions.now;
      const signer = createTokenSigner({
        jwtSecret: testJwtSecret,
        ...(now ? { clock: () => now } : {}),
      });
      const { token } = await signer.sign({
        tenantId,
        subject: tokenOptions.subject ?? 'tester',
        role: tokenOptions.role,
        scopes: tokenOptions.scopes ?? ['activity:read', 'activity:write'],
        ttlSeconds: tokenOptions.ttlSeconds ?? 3600,
      });
      return token;
    },
    async close() {
      await server.close();
      await app.close();
    },
  };
}

export interface ApiResponse<T> {
  status: number;
  headers: Headers;
  text: string;
  /** The parsed body when it is JSON, else undefined. */
  json: T;
}

export interface ApiRequest {
  method?: string;
  token?: string;
  /** A string is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
}

/** One request with the global fetch; the body is read whole. */
export async function call<T = unknown>(
  baseUrl: string,
  path: string,
  request: ApiRequest = {},
): Promise<ApiResponse<T>> {
  const headers: Record<string, string> = { ...request.headers };
  if (request.token !== undefined) headers.authorization = `Bearer ${request.token}`;
  let body: string | undefined;
  if (request.body !== undefined) {
    body = typeof request.body === 'string' ? request.body : JSON.stringify(request.body);
    headers['content-type'] ??= 'application/json';
  }
  const response = await fetch(`${baseUrl}${path}`, {
    method: request.method ?? (body === undefined ? 'GET' : 'POST'),
    headers,
    ...(body === undefined ? {} : { body }),
  });
  const text = await response.text();
  // Every answer a test sees is one the OpenAPI document describes.
  const violation = contractViolation({
    method: request.method ?? (body === undefined ? 'GET' : 'POST'),
    path,
    status: response.status,
    contentType: response.headers.get('content-type'),
    body: text,
  });
  if (violation !== undefined)
    throw new Error(`an answer the OpenAPI document does not describe: ${violation}`);
  const isJson = /json/.test(response.headers.get('content-type') ?? '');
  return {
    status: response.status,
    headers: response.headers,
    text,
    json: (isJson && text !== '' ? JSON.parse(text) : undefined) as T,
  };
}

/**
 * Opens an SSE stream and reads it for `forMs` (while `during` runs), then disconnects
 * and returns the raw text and the parsed frames.
 */
export async function readStream(
  baseUrl: string,
  path: string,
  options: { headers?: Record<string, string>; forMs: number; during?: () => Promise<void> },
): Promise<{ status: number; headers: Headers; text: string; frames: SseMessage[] }> {
  const abort = new AbortController();
  const response = await fetch(`${baseUrl}${path}`, {
    ...(options.headers ? { headers: options.headers } : {}),
    signal: abort.signal,
  });
  if (!response.body || !response.headers.get('content-type')?.startsWith('text/event-stream')) {
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, frames: [] };
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const reading = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        text += decoder.decode(value, { stream: true });
      }
    } catch {
      // The abort below ends the read.
    }
  })();
  try {
    await options.during?.();
    await new Promise((resolve) => setTimeout(resolve, options.forMs));
  } finally {
    abort.abort();
    await reading;
  }
  return { status: response.status, headers: response.headers, text, frames: createSseParser()(text) };
}

export interface RawResponse {
  status: number;
  /** Header names in lower case. */
  headers: Record<string, string>;
  body: string;
}

export interface RawConnection {
  write(data: string | Uint8Array): void;
  /** The next whole response on this connection, 'closed' if the server closed it, or 'timeout'. */
  nextResponse(timeoutMs: number): Promise<RawResponse | 'closed' | 'timeout'>;
  destroy(): void;
}

/**
 * One TCP connection to the server, for what fetch hides: whether a connection
 * stays usable after a response (keep-alive). Reads Content-Length framed responses only.
 */
export async function openRawConnection(baseUrl: string): Promise<RawConnection> {
  const { hostname, port } = new URL(baseUrl);
  const socket = createConnection({ host: hostname, port: Number(port) });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let buffer = Buffer.alloc(0);
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on('data', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    wake?.();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  const take = (): RawResponse | undefined => {
    const end = buffer.indexOf('\r\n\r\n');
    if (end === -1) return undefined;
    const [statusLine = '', ...lines] = buffer.subarray(0, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of lines) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length'] ?? 0);
    if (buffer.length < end + 4 + length) return undefined;
    const body = buffer.subarray(end + 4, end + 4 + length).toString('utf8');
    buffer = buffer.subarray(end + 4 + length);
    return { status: Number(statusLine.split(' ')[1]), headers, body };
  };
  return {
    write: (data) => {
      socket.write(data);
    },
    async nextResponse(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const response = take();
        if (response) return response;
        if (closed) return 'closed';
        const left = deadline - Date.now();
        if (left <= 0) return 'timeout';
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = undefined;
      }
    },
    destroy: () => socket.destroy(),
  };
}
