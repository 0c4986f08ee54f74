import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { namespaceOf } from '../domain/event.js';
import type { ActivityObserver } from '../service/activity-service.js';
import type { BatchReport } from '../service/sink-delivery.js';

/** The Prometheus metrics of one process; tenant ids are never labels. */
export interface ActivityMetrics {
  registry: Registry;
  /** Feeds the metrics from the service. */
  observer: ActivityObserver;
  streamConnections: Gauge;
  /** Seconds from an event's commit to its delivery to a stream client. */
  streamLag: Histogram;
  httpRequests: Counter<'route' | 'status'>;
  httpDuration: Histogram<'route'>;
  /** Denials counted instead of recorded as `activity.access.denied` (rate limit). */
  auditEventsSuppressed: Counter;
  /** Counts one sink batch: events delivered (by payload), a failure (by reason), events skipped. */
  sinkBatch(report: BatchReport): void;
}

/**
 * `eventsPurged`: every event purged so far, by any process (purge runs from cron, not
 * in serve): read from the database at each scrape, so that every replica reports the
 * same count.
 */
export function createMetrics(
  sources: {
    eventsPurged?: () => Promise<number>;
    /** How far behind the sink furthest behind is, read from the database at each scrape. */
    sinkLag?: () => Promise<{ events: number; seconds: number }>;
  } = {},
): ActivityMetrics {
  const registry = new Registry();
  const { eventsPurged, sinkLag } = sources;
  if (sinkLag !== undefined) {
    // One read per scrape serves both gauges.
    let reading: Promise<{ events: number; seconds: number }> | undefined;
    let last = { events: 0, seconds: 0 };
    const read = () => {
      reading ??= sinkLag()
        .catch(() => last)
        .then((lag) => {
          last = lag;
          setImmediate(() => {
            reading = undefined;
          });
          return lag;
        });
      return reading;
    };
    new Gauge({
      name: 'activity_sink_lag_events',
      help: 'Events not yet delivered by the sink furthest behind (paused sinks aside).',
      registers: [registry],
      async collect() {
        this.set((await read()).events);
      },
    });
    new Gauge({
      name: 'activity_sink_lag_seconds',
      help: 'Age of the oldest event not yet delivered, of the sink furthest behind.',
      registers: [registry],
      async collect() {
        this.set((await read()).seconds);
      },
    });
  }
  if (eventsPurged !== undefined) {
    let last = 0;
    new Counter({
      name: 'activity_events_purged_total',
      help: 'Events deleted by purge, by any process (from the database at each scrape).',
      registers: [registry],
      async collect() {
        // A database that does not answer leaves the last count, not a failed scrape.
        last = await eventsPurged().catch(() => last);
        this.reset();
        this.inc(last);
      },
    });
  }
  const recorded = new Counter({
    name: 'activity_events_recorded_total',
    help: 'Events stored, by action namespace and status.',
    labelNames: ['namespace', 'status'] as const,
    registers: [registry],
  });
  // Each action's series, looked up once (prom-client hashed the labels on every event);
  // only registered actions are recorded, so the map stays as small as the registry.
  const recordedChildren = new Map<string, Counter.Internal>();
  const recordedChild = (action: string, status: string) => {
    const key = `${action} ${status}`;
    let child = recordedChildren.get(key);
    if (child === undefined) {
      child = recorded.labels({ namespace: namespaceOf(action), status });
      recordedChildren.set(key, child);
    }
    return child;
  };
  const failures = new Counter({
    name: 'activity_record_failures_total',
    help: 'Events that could not be recorded, by error code.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'activity_record_duration_seconds',
    help: 'Time to store one write (an event or a batch).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const streamConnections = new Gauge({
    name: 'activity_stream_connections',
    help: 'Open live streams (SSE) on this server.',
    registers: [registry],
  });
  const streamLag = new Histogram({
    name: 'activity_stream_lag_seconds',
    help: 'Time from recording an event to writing it to a stream client.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: 'activity_http_requests_total',
    help: 'HTTP requests by route and status.',
    labelNames: ['route', 'status'] as const,
    registers: [registry],
  });
  const httpDuration = new Histogram({
    name: 'activity_http_request_duration_seconds',
    help: 'HTTP request duration by route (streams: until headers are sent).',
    labelNames: ['route'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const auditEventsSuppressed = new Counter({
    name: 'activity_audit_events_suppressed_total',
    help: 'Denied requests counted but not recorded as activity.access.denied events (rate limit).',
    registers: [registry],
  });
  const sinkDelivered = new Counter({
    name: 'activity_sink_delivered_total',
    help: 'Events delivered to sinks (answered 2xx), by payload format.',
    labelNames: ['format'] as const,
    registers: [registry],
  });
  const sinkFailures = new Counter({
    name: 'activity_sink_failures_total',
    help: 'Sink deliveries that failed, by reason (status, timeout, network, secret).',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const sinkSkipped = new Counter({
    name: 'activity_sink_skipped_total',
    help: 'Events gone (purged) before a sink could deliver them.',
    registers: [registry],
  });
  return {
    registry,
    auditEventsSuppressed,
    sinkBatch(report) {
      if (report.delivered) {
        sinkDelivered.inc({ format: report.payload }, report.events);
        if (report.skipped > 0) sinkSkipped.inc(report.skipped);
      } else {
        sinkFailures.inc({ reason: report.reason ?? 'unknown' });
      }
    },
    streamConnections,
    streamLag,
    httpRequests,
    httpDuration,
    observer: {
      recorded(events, seconds) {
        duration.observe(seconds);
        for (const event of events) recordedChild(event.action, event.status).inc();
      },
      recordFailed(code, count) {
        failures.inc({ reason: code }, count);
      },
    },
  };
}

/**
 * The metrics of one `purge` run, written by `--metrics-file` for node_exporter's
 * textfile collector: what it deleted, whether it succeeded, when it ran.
 */
export interface PurgeMetrics {
  registry: Registry;
  eventsPurged: Counter;
  /** Sets success, end time and duration; call once, at the end of the run. */
  finish(succeeded: boolean, startedAt: Date, endedAt: Date): void;
}

export function createPurgeMetrics(): PurgeMetrics {
  const registry = new Registry();
  const eventsPurged = new Counter({
    name: 'activity_events_purged_total',
    help: 'Events deleted by purge (by partition drop or batched delete).',
    registers: [registry],
  });
  const success = new Gauge({
    name: 'activity_purge_success',
    help: '1 when the last purge run succeeded, 0 when it failed.',
    registers: [registry],
  });
  const lastRun = new Gauge({
    name: 'activity_purge_last_run_timestamp_seconds',
    help: 'When the last purge run ended (Unix time).',
    registers: [registry],
  });
  const duration = new Gauge({
    name: 'activity_purge_duration_seconds',
    help: 'How long the last purge run took.',
    registers: [registry],
  });
  return {
    registry,
    eventsPurged,
    finish(succeeded, startedAt, endedAt) {
      success.set(succeeded ? 1 : 0);
      lastRun.set(endedAt.getTime() / 1000);
      duration.set((endedAt.getTime() - startedAt.getTime()) / 1000);
    },
  };
}
