import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { type Principal, requireScope, type TokenVerifier } from '../auth/verify-token.js';
import { ActivityError } from '../domain/errors.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import type { ActivityMetrics } from '../metrics/metrics.js';
import type { ActivityService } from '../service/activity-service.js';
import type { AuditActor } from '../service/audit-trail.js';
import type { IntegrityService } from '../service/integrity-service.js';
import type { StreamHub } from '../stream/stream-hub.js';
import { bearerToken } from './bearer-token.js';
import type { EventStreams, StreamContext } from './event-stream.js';
import { openApiDocument } from './openapi.js';
import {
  consistencyParamsSchema,
  listParamsSchema,
  maxBatch,
  proofParamsSchema,
  resumeSeqPattern,
  streamPath,
} from './parameters.js';
import { assertJsonBody, readJsonBody } from './request-body.js';
import { sendJson } from './responses.js';

export interface RequestContext extends StreamContext {
  request: IncomingMessage;
  url: URL;
  /** Set once the token is verified, for the request log. */
  principal?: Principal;
  /** Whom a token refused for its time speaks for (see TokenVerifier.claimant): a denial is recorded there. */
  claimant?: { tenantId: string; subject: string } | undefined;
}

export interface Route {
  path: string;
  methods: Record<string, (context: RequestContext) => Promise<void>>;
}

export interface RouteOptions {
  service: ActivityService;
  integrity: IntegrityService;
  verifier: TokenVerifier;
  metrics: ActivityMetrics;
  /** Absent when the stream is turned off: its route is a 404. */
  hub: StreamHub | undefined;
  streams: EventStreams;
  log(record: Record<string, unknown>): void;
  /** The tool's version, as the OpenAPI document gives it. */
  version: string;
}

/**
 * The API's routes: each parses its input with the CLI's schemas and calls the same
 * service. HEAD answers as GET does, without the body (node:http leaves it out), as
 * HTTP asks of every server; not on the stream, which has no end to send headers for.
 */
export function createRoutes(options: RouteOptions): Route[] {
  return routesOf(options).map((route) =>
    route.methods.GET && route.path !== streamPath
      ? { ...route, methods: { ...route.methods, HEAD: route.methods.GET } }
      : route,
  );
}

function routesOf(options: RouteOptions): Route[] {
  const { service, integrity, verifier, metrics, hub, streams, log } = options;
  const openApi = openApiDocument(options.version);

  const authenticate = async (
    context: RequestContext,
    scope: 'activity:read' | 'activity:write',
    // Only EventSource, which cannot set headers, may put the token in the URL, where
    // proxies and browsers log it: the stream route alone takes ?access_token=.
    { fromQuery = false }: { fromQuery?: boolean } = {},
  ) => {
    const queryToken = fromQuery ? (context.url.searchParams.get('access_token') ?? undefined) : undefined;
    const token = bearerToken(context.request.headers.authorization, queryToken);
    let principal: Principal;
    try {
      principal = await verifier.verify(token);
    } catch (error) {
      context.claimant = await verifier.claimant(token);
      throw error;
    }
    context.principal = principal;
    requireScope(principal, scope);
    return principal;
  };

  return [
    {
      path: '/api/v1/activity',
      methods: {
        GET: async (context) => {
          const principal = await authenticate(context, 'activity:read');
          const params = searchParams(context.url);
          assertValid(listParamsSchema, params);
          sendJson(
            context.response,
            200,
            await service.query(principal.tenantId, params, apiActor(context.request, principal.subject)),
          );
        },
        POST: async (context) => {
          const principal = await authenticate(context, 'activity:write');
          assertJsonBody(context.request);
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
      path: streamPath,
      methods: {
        GET: async (context) => {
          if (!hub) throw new ActivityError('NOT_FOUND', 'the activity stream is turned off on this server');
          if (streams.closing)
            throw new ActivityError('SHUTTING_DOWN', 'the server is shutting down; reconnect to another');
          const principal = await authenticate(context, 'activity:read', { fromQuery: true });
          const { after, ...filters } = searchParams(context.url);
          const lastEventId = context.request.headers['last-event-id'];
          const resumeFrom = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : after;
          if (resumeFrom !== undefined && !resumeSeqPattern.test(resumeFrom)) {
            throw new ActivityError('PARAMETER_INVALID', 'Last-Event-ID (or after) must be a seq number');
          }
          const filter = service.streamFilter(principal.tenantId, filters);
          const afterSeq = resumeFrom === undefined ? undefined : Number(resumeFrom);
          const subscription = await hub.subscribe(principal.tenantId, filter, afterSeq);
          const closed = service.audit.streamOpened(
            apiActor(context.request, principal.subject),
            principal.tenantId,
            filter,
            afterSeq ?? null,
          );
          await streams.serve(context, principal, subscription, closed);
        },
      },
    },
    {
      path: '/api/v1/activity/actions',
      methods: {
        GET: async (context) => {
          await authenticate(context, 'activity:read');
          assertValid(z.strictObject({}), searchParams(context.url));
          sendJson(context.response, 200, { actions: service.registry.describe() });
        },
      },
    },
    {
      path: '/api/v1/activity/checkpoint',
      methods: {
        GET: async (context) => {
          const principal = await authenticate(context, 'activity:read');
          assertValid(z.strictObject({}), searchParams(context.url));
          const note = await integrity.latestCheckpoint(principal.tenantId);
          context.response.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
          context.response.end(note);
        },
      },
    },
    {
      path: '/api/v1/activity/proof',
      methods: {
        GET: async (context) => {
          const principal = await authenticate(context, 'activity:read');
          const { seq, size } = parsed(proofParamsSchema, searchParams(context.url));
          sendJson(context.response, 200, await integrity.proof(principal.tenantId, seq, size));
        },
      },
    },
    {
      path: '/api/v1/activity/consistency',
      methods: {
        GET: async (context) => {
          const principal = await authenticate(context, 'activity:read');
          const { from, to } = parsed(consistencyParamsSchema, searchParams(context.url));
          sendJson(context.response, 200, await integrity.consistency(principal.tenantId, from, to));
        },
      },
    },
    {
      path: '/api/v1/openapi.json',
      methods: {
        GET: async ({ response }) => sendJson(response, 200, openApi),
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
}

/**
 * Who made a request, as the self-audit events name them: the token's subject, the
 * request's address (stored hashed), user agent and X-Request-Id, as sent. The audit
 * trail keeps of them what an event can store (AuditTrail.#inputOf).
 */
export function apiActor(request: IncomingMessage, subject: string): AuditActor {
  const userAgent = request.headers['user-agent'];
  const requestId = request.headers['x-request-id'];
  return {
    type: 'service_account',
    id: subject,
    via: 'api',
    ip: request.socket.remoteAddress ?? null,
    userAgent: typeof userAgent === 'string' ? userAgent : null,
    requestId: typeof requestId === 'string' ? requestId : null,
  };
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
  parsed(schema, params);
}

/** The parameters as the schema reads them, or PARAMETER_INVALID naming each that is not. */
function parsed<T>(schema: z.ZodType<T>, params: Record<string, string>): T {
  const result = schema.safeParse(params);
  if (result.success) return result.data;
  const issues = toFieldIssues(result.error);
  throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
}
