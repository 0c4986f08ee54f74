import { expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createMetrics } from '../../src/metrics/metrics.js';

function stored(action: string, status: ActivityEvent['status']): ActivityEvent {
  return {
    id: '0193a7e2-5c1f-7b2a-9c3d-4e5f60718293',
    tenant_id: 'acme',
    seq: 1,
    action,
    actor_type: 'user',
    actor_id: null,
    object_type: null,
    object_id: null,
    status,
    source: null,
    request_id: null,
    ip_hash: null,
    user_agent: null,
    metadata: {},
    created_at: '2026-12-08T00:00:00.000Z',
  };
}

it('counts recorded events by namespace and status, each series on its own, over many writes', async () => {
  const metrics = createMetrics();
  const writes: Array<[string, ActivityEvent['status']]> = [
    ['auth.login.success', 'success'],
    ['auth.login.failure', 'failure'],
    ['auth.login.success', 'success'],
    ['storage.file.uploaded', 'success'],
    ['auth.login.success', 'failure'],
  ];
  for (let round = 0; round < 3; round++) {
    metrics.observer.recorded?.(
      writes.map(([action, status]) => stored(action, status)),
      0.001,
    );
  }
  const { values } = (await metrics.registry.getSingleMetric('activity_events_recorded_total')?.get()) ?? {
    values: [],
  };
  const counts = Object.fromEntries(
    values.map((value) => [`${value.labels.namespace} ${value.labels.status}`, value.value]),
  );
  expect(counts).toEqual({ 'auth success': 6, 'auth failure': 6, 'storage success': 3 });
});
