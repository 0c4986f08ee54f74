import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TokenVerifier } from '../auth/verify-token.js';
import { ActivityError, toActivityError } from '../domain/errors.js';
import { identifierProblem } from '../privacy/scrub.js';
import type { ActivityService } from '../service/activity-service.js';
import type { IntegrityService } from '../service/integrity-service.js';
import type { StreamHub } from '../stream/stream-hub.js';
import { createEventStreams, type EventStreamOptions } from './event-stream.js';
import { sendProblem } from './responses.js';
import { apiActor, createRoutes, type RequestContext } from './routes.js';

export interface HandlerOptions extends EventStreamOptions {
  service: ActivityService;
  integrity: IntegrityService;
  verifier: TokenVerifier;
  /** Absent when the stream is turned off (ENABLE_ACTIVITY_STREAM=false): its route is a 404. */
  hub: StreamHub | undefined;
  /** One JSON object per line on stderr. */
  log(record: Record<string, unknown>): void;
  /** The tool's version, as the OpenAPI document gives it. */
  version: string;
}

/**
 * The HTTP API as a plain `(request, response)` handler, built apart from `listen`
 * so that tests can call it without a port: it finds the route, answers failures as
 * problem+json, and counts and logs every request.
 */
export function createHandler(options: HandlerOptions) {
  const { metrics, log } = options;
  const streams = createEventStreams(options);
  const routes = createRoutes({ ...options, streams });

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
      const failure = toActivityError(error);
      if (route) recordDenial(context, route.path, failure);
      sendProblem(response, failure, log);
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

  /**
   * A 401 or 403 goes into the log of the tenant the token names, when it is one of
   * ours (verified, or refused only for its time); a caller without one writes nothing.
   */
  const recordDenial = (context: RequestContext, route: string, failure: ActivityError) => {
    if (failure.code !== 'UNAUTHORIZED' && failure.code !== 'FORBIDDEN') return;
    const who = context.principal ?? context.claimant;
    if (who === undefined) return;
    options.service.audit.accessDenied(apiActor(context.request, who.subject), who.tenantId, {
      httpStatus: failure.code === 'UNAUTHORIZED' ? 401 : 403,
      reason: failure.message.slice(0, 256),
      method: context.request.method ?? 'GET',
      route,
    });
  };

  return Object.assign(handler, {
    /** Ends every open stream (graceful shutdown). */
    closeStreams() {
      streams.closeAll();
    },
  });
}
