import type { ServerResponse } from 'node:http';
import type { Principal } from '../auth/verify-token.js';
import { eventJson } from '../domain/event-json.js';
import type { ActivityMetrics } from '../metrics/metrics.js';
import { sseComment, sseFrame } from '../stream/sse-frames.js';
import type { Subscription } from '../stream/subscription.js';

export interface EventStreamOptions {
  metrics: ActivityMetrics;
  heartbeatMs?: number;
  /**
   * How long a stream's socket may refuse more data (a client that stopped reading)
   * before the stream is cut off as slow and its connection destroyed (default 60 s).
   */
  stallTimeoutMs?: number;
  clock?: () => Date;
}

/** What a stream needs of its request. */
export interface StreamContext {
  response: ServerResponse;
  /** When a stream sent its headers: its request duration ends there, not when it closes. */
  headersSentAt?: number;
}

/** The open SSE streams of one handler. */
export interface EventStreams {
  /** True once `closeAll` ran: a shutting-down server opens no new stream. */
  readonly closing: boolean;
  /** Sends the subscription's events on `context.response` until either side ends it. */
  /** `closed` hears how many events the stream delivered, once its connection is gone. */
  serve(
    context: StreamContext,
    principal: Principal,
    subscription: Subscription,
    closed: (delivered: number) => void,
  ): Promise<void>;
  /** Ends every open stream (graceful shutdown). */
  closeAll(): void;
}

/** How long an ended stream's client has to close its side before the server does. */
const closeGraceMs = 5000;

export function createEventStreams(options: EventStreamOptions): EventStreams {
  const { metrics } = options;
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 60_000;
  const clock = options.clock ?? (() => new Date());
  const openStreams = new Set<() => void>();
  let closing = false;

  async function serve(
    context: StreamContext,
    principal: Principal,
    subscription: Subscription,
    closed: (delivered: number) => void,
  ) {
    const { response } = context;
    // The stream's place (and the gauge) is held until its connection is gone, not
    // merely until the stream ends: a client that stopped reading keeps its socket,
    // and the memory queued for it, until that socket is destroyed.
    const socket = response.socket;
    metrics.streamConnections.inc();
    let delivered = 0;
    const released = () => {
      subscription.release();
      metrics.streamConnections.dec();
      closed(delivered);
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
        delivered++;
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

  return {
    get closing() {
      return closing;
    },
    serve,
    closeAll() {
      closing = true;
      for (const end of [...openStreams]) end();
    },
  };
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

function waitForDrain(response: ServerResponse, subscription: Subscription): Promise<void> {
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
