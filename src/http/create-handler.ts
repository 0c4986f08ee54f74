import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { type Principal, requireScope, type TokenVerifier } from '../auth/verify-token.js';
import { ActivityError, errorCodes, retryAfterSeconds, toActivityError } from '../domain/errors.js';
import { eventJson } from '../domain/event-json.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import { queryInputSchema } from '../domain/inputs.js';
import { jsonTextIssue } from '../domain/json-text.js';
import type { ActivityMetrics } from '../metrics/metrics.js';
import { identifierProblem } from '../privacy/scrub.js';
import type { ActivityService } from '../service/activity-service.js';
import { sseComment, sseFrame } from '../stream/sse-frames.js';
import type { StreamHub } from '../stream/stream-hub.js';
import { bearerToken } from './auth.js';

export interface HandlerOptions {
  service: ActivityService;
  verifier: TokenVerifier;
  metrics: ActivityMetrics;
  /** Absent when the stream is turned off (ENABLE_ACTIVITY_STREAM=false): its route is a 404. */
  hub: StreamHub | undefined;
  /** One JSON object per line on stderr. */
  log(record: Record<string, unknown>): void;
  heartbeatMs?: number;
  /**
   * How long a stream's socket may refuse more data (a client that stopped reading)
   * before the stream is cut off as slow and its connection destroyed (default 60 s).
   */
  stallTimeoutMs?: number;
  clock?: () => Date;
}

/** How long an ended stream's client has to close its side before the server does. */
const closeGraceMs = 5000;

const maxBodyBytes = 1024 * 1024;
const maxBatch = 1000;

/** The list route's parameters: the CLI's query schema, with the HTTP page cap. */
const listParamsSchema = queryInputSchema.extend({
  limit: z.coerce.number().int().min(1).max(200).default(50),
});

type Route = { path: string; methods: Record<string, (request: RequestContext) => Promise<void>> };

interface RequestContext {
  request: IncomingMessage;
  response: ServerResponse;
  url: URL;
  /** Set once the token is verified, for the request log. */
  principal?: Principal;
  /** When a stream sent its headers: its request duration ends there, not when it closes. */
  headersSentAt?: number;
}

/**
 * The HTTP API as a plain `(request, response)` handler, built apart from `listen`
 * so that tests can call it without a port. Every route parses its input with the
 * same schemas as the CLI and calls the same service.
 */
export function createHandler(options: HandlerOptions) {
  const { service, verifier, metrics, hub, log } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const clock = options.clock ?? (() => new Date());
  const openStreams = new Set<() => void>();
  let closing = false;

  const authenticate = async (
    context: RequestContext,
    scope: 'activity:read' | 'activity:write',
    // Only EventSource, which cannot set headers, may put the token in the URL, where
    // proxies and browsers log it: the stream route alone takes ?access_token=.
    { fromQuery = false }: { fromQuery?: boolean } = {},
  ) => {
    const queryToken = fromQuery ? (context.url.searchParams.get('access_token') ?? undefined) : undefined;
    const principal = await verifier.verify(bearerToken(context.request.headers.authorization, queryToken));
    context.principal = principal;
    requireScope(principal, scope);
    return principal;
  };

  const routes: Route[] = [
    {
      path: '/api/v1/activity',
      methods: {
        GET: async (context) => {
          const principal = await authenticate(context, 'activity:read');
          const params = searchParams(context.url);
          assertValid(listParamsSchema, params);
          sendJson(context.response, 200, await service.query(principal.tenantId, params));
        },
        POST: async (context) => {
          const principal = await authenticate(context, 'activity:write');
          const body = await readJsonBody(context.request);
          const inputs = Array.isArray(body) ? body : [body];
          if (Array.isArray(body) && (body.length === 0 || body.length > maxBatch)) {
            throw new ActivityError('VALIDATION_FAILED', `a batch holds 1 to ${maxBatch} events`);
          }
          const scoped = inputs.map((input, index) => withTenant(input, principal.tenantId, index));
          const events = Array.isArray(body)
            ? await service.recordBatch(scoped)
            : [await service.record(scoped[0])];
          for (const event of events) {
            log({
              msg: 'recorded',
              activity_event_id: event.id,
              tenant_id: event.tenant_id,
              action: event.action,
            });
          }
          sendJson(context.response, 201, Array.isArray(body) ? { data: events } : events[0]);
        },
      },
    },
    {
      path: '/api/v1/activity/stream',
      methods: {
        GET: async (context) => {
          if (!hub) throw new ActivityError('NOT_FOUND', 'the activity stream is turned off on this server');
          if (closing)
            throw new ActivityError('SHUTTING_DOWN', 'the server is shutting down; reconnect to another');
          const principal = await authenticate(context, 'activity:read', { fromQuery: true });
          const { after, ...filters } = searchParams(context.url);
          const lastEventId = context.request.headers['last-event-id'];
          const resumeFrom = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : after;
          if (resumeFrom !== undefined && !/^\d{1,15}$/.test(resumeFrom)) {
            throw new ActivityError('PARAMETER_INVALID', 'Last-Event-ID (or after) must be a seq number');
          }
          const filter = service.streamFilter(principal.tenantId, filters);
          const subscription = await hub.subscribe(
            principal.tenantId,
            filter,
            resumeFrom === undefined ? undefined : Number(resumeFrom),
          );
          await streamEvents(context, principal, subscription);
        },
      },
    },
    {
      path: '/api/v1/activity/actions',
      methods: {
        GET: async (context) => {
          await authenticate(context, 'activity:read');
          sendJson(context.response, 200, { actions: service.registry.describe() });
        },
      },
    },
    {
      path: '/metrics',
      methods: {
        GET: async ({ response }) => {
          response.writeHead(200, { 'content-type': metrics.registry.contentType });
          response.end(await metrics.registry.metrics());
        },
      },
    },
    {
      path: '/healthz',
      methods: { GET: async ({ response }) => sendJson(response, 200, { status: 'ok' }) },
    },
    {
      path: '/readyz',
      methods: {
        GET: async ({ response }) => {
          await service.ping();
          sendJson(response, 200, { status: 'ready' });
        },
      },
    },
  ];

  async function streamEvents(
    context: RequestContext,
    principal: Principal,
    subscription: Awaited<ReturnType<StreamHub['subscribe']>>,
  ) {
    const { response } = context;
    // The stream's place (and the gauge) is held until its connection is gone, not
    // merely until the stream ends: a client that stopped reading keeps its socket,
    // and the memory queued for it, until that socket is destroyed.
    const socket = response.socket;
    metrics.streamConnections.inc();
    const released = () => {
      subscription.release();
      metrics.streamConnections.dec();
    };
    if (!socket || socket.destroyed) {
      released();
      return;
    }
    socket.once('close', released);
    // A stream ends only when one side goes away: never reuse its connection, so a
    // shutdown does not wait on sockets left idle behind ended streams. (Set before
    // the headers: Node decides the Connection header when it writes them.)
    response.shouldKeepAlive = false;
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      'x-accel-buffering': 'no',
    });

    response.write(sseComment('connected'));
    response.flushHeaders();
    context.headersSentAt = performance.now();
    const end = () => subscription.close('shutdown');
    openStreams.add(end);
    // When the socket last refused more (write returned false) and has not drained since.
    let stalledSince: number | undefined;
    const heartbeat = setInterval(() => {
      if (stalledSince === undefined) response.write(sseComment('heartbeat'));
      else if (clock().getTime() - stalledSince >= stallTimeoutMs) subscription.close('slow');
    }, heartbeatMs);
    let expiry: NodeJS.Timeout | undefined;
    // setTimeout cannot wait past 2^31-1 ms (~24.8 days): re-arm until the token expires.
    const armExpiry = () => {
      const remaining = principal.expiresAt.getTime() - clock().getTime();
      if (remaining <= 0) subscription.close('expired');
      else expiry = setTimeout(armExpiry, Math.min(remaining, 2 ** 31 - 1));
    };
    armExpiry();
    try {
      for await (const event of subscription) {
        // One JSON text per event, shared by every stream that sends it.
        const written = response.write(
          sseFrame({ id: event.seq, event: 'activity', data: eventJson(event) }),
        );
        metrics.streamLag.observe(Math.max(0, clock().getTime() - Date.parse(event.created_at)) / 1000);
        if (!written) {
          stalledSince = clock().getTime();
          await waitForDrain(response, subscription);
          stalledSince = undefined;
        }
      }
      const reason = subscription.closeReason;
      if (response.writableNeedDrain) {
        // The client reads nothing more: a close frame would only queue behind the rest.
        resetConnection(response);
      } else if (reason === 'slow' || reason === 'expired') {
        response.write(sseFrame({ event: 'close', data: JSON.stringify({ reason }) }));
      }
    } finally {
      clearInterval(heartbeat);
      clearTimeout(expiry);
      openStreams.delete(end);
      if (!response.destroyed) {
        response.end();
        // Should the client not close its side, the connection goes all the same.
        setTimeout(() => resetConnection(response), closeGraceMs).unref();
      }
    }
  }

  const handler = async (request: IncomingMessage, response: ServerResponse) => {
    const started = performance.now();
    const url = new URL(request.url ?? '/', 'http://localhost');
    const route = routes.find((candidate) => candidate.path === url.pathname);
    const context: RequestContext = { request, response, url };
    try {
      if (!route) {
        // A path that holds a secret is not quoted back.
        const named = identifierProblem(url.pathname) === undefined ? ` ${url.pathname}` : ' here';
        throw new ActivityError('NOT_FOUND', `no route${named}`);
      }
      const method = route.methods[request.method ?? 'GET'];
      if (!method) {
        response.setHeader('allow', Object.keys(route.methods).join(', '));
        throw new ActivityError('METHOD_NOT_ALLOWED', `${request.method} is not allowed on ${url.pathname}`);
      }
      await method(context);
    } catch (error) {
      // A body not read to its end (refused before it was needed, or too large) would be
      // waited for to reuse the connection: close it after the answer instead.
      if (!request.complete) response.shouldKeepAlive = false;
      sendProblem(response, toActivityError(error), log);
    } finally {
      const routeLabel = route?.path ?? 'unmatched';
      const finished = performance.now();
      const seconds = (finished - started) / 1000;
      metrics.httpRequests.inc({ route: routeLabel, status: String(response.statusCode) });
      metrics.httpDuration.observe(
        { route: routeLabel },
        ((context.headersSentAt ?? finished) - started) / 1000,
      );
      log({
        msg: 'request',
        method: request.method,
        route: routeLabel,
        status: response.statusCode,
        duration_ms: Math.round(seconds * 1000),
        ...(context.principal ? { tenant_id: context.principal.tenantId } : {}),
      });
    }
  };

  return Object.assign(handler, {
    /** Ends every open stream (graceful shutdown). */
    closeStreams() {
      closing = true;
      for (const end of [...openStreams]) end();
    },
  });
}

/** The body's tenant, if any, must be the token's: a token writes its own tenant only. */
function withTenant(input: unknown, tenantId: string, index: number): unknown {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) return input;
  const given = (input as { tenant_id?: unknown }).tenant_id;
  if (given !== undefined && given !== tenantId) {
    throw new ActivityError('FORBIDDEN', `event ${index}: tenant_id differs from the token's tenant`);
  }
  return { ...input, tenant_id: tenantId };
}

/** The query string as one value per name (`access_token` is auth, not a parameter). */
function searchParams(url: URL): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of url.searchParams) {
    if (key === 'access_token') continue;
    if (key in params) throw new ActivityError('PARAMETER_INVALID', `${key} is given more than once`);
    params[key] = value;
  }
  return params;
}

function assertValid(schema: z.ZodType, params: Record<string, string>) {
  const parsed = schema.safeParse(params);
  if (parsed.success) return;
  const issues = toFieldIssues(parsed.error);
  throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
}

async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBodyBytes)
    throw new ActivityError('BODY_TOO_LARGE', `the body is over ${maxBodyBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes)
        throw new ActivityError('BODY_TOO_LARGE', `the body is over ${maxBodyBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof ActivityError) throw error;
    // The client went away mid-body: its fault, not the server's.
    throw new ActivityError(
      'INPUT_UNREADABLE',
      'the client closed the connection before the whole body arrived',
      {
        cause: error,
      },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new ActivityError('INPUT_UNREADABLE', 'the body is not valid UTF-8');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ActivityError('INPUT_UNREADABLE', 'the body is not JSON');
  }
  const changed = jsonTextIssue(text, body);
  if (changed) throw new ActivityError('VALIDATION_FAILED', describeIssues([changed]), { issues: [changed] });
  return body;
}

/**
 * Ends a stream's connection with a reset: a plain close leaves what the kernel still
 * holds for a client that reads nothing (megabytes) queued on an orphaned socket for
 * minutes, while its place is already free.
 */
function resetConnection(response: ServerResponse) {
  const socket = response.socket;
  if (socket && !socket.destroyed) socket.resetAndDestroy();
  else response.destroy();
}

function waitForDrain(
  response: ServerResponse,
  subscription: Awaited<ReturnType<StreamHub['subscribe']>>,
): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      response.off('drain', done);
      response.off('close', done);
      resolve();
    };
    response.once('drain', done);
    response.once('close', done);
    subscription.onClose(done);
  });
}

function sendJson(response: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** RFC 9457 problem details; never SQL, a stack trace, or another tenant's data. */
function sendProblem(response: ServerResponse, error: ActivityError, log: HandlerOptions['log']) {
  if (errorCodes[error.code].http >= 500) {
    log({ msg: 'request failed', code: error.code, error: String(error.cause ?? error.message) });
  }
  if (response.headersSent) {
    response.end();
    return;
  }
  const { http: status, title } = errorCodes[error.code];
  // Server-side failures are described in the log, never to the client.
  const detail =
    status < 500 || error.code === 'SHUTTING_DOWN'
      ? error.message
      : error.code === 'DB_TIMEOUT'
        ? 'the database is busy (a lock or a slow statement); try again shortly'
        : error.exitCode === 3
          ? 'the database is unavailable; try again shortly'
          : 'an unexpected error occurred';
  const text = JSON.stringify({ type: 'about:blank', title, status, detail, code: error.code });
  const retryAfter = retryAfterSeconds(error.code);
  response.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(text),
    ...(status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
    ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }),
  });
  response.end(text);
}
