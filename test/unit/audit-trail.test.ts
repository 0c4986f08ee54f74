import { describe, expect, it } from 'vitest';
import { type AccessDenial, type AuditActor, AuditTrail } from '../../src/service/audit-trail.js';
import type { OwnEventInput } from '../../src/service/prepare-event.js';

const actor: AuditActor = { type: 'service_account', id: 'svc', via: 'api' };
const denial: AccessDenial = {
  httpStatus: 403,
  reason: 'token lacks the activity:read scope',
  method: 'GET',
  route: '/api/v1/activity',
};

/** The trail's logic alone: what it would record, with a clock the test moves. */
function trailWithClock() {
  const recorded: OwnEventInput[] = [];
  let now = Date.parse('2026-12-01T00:00:00.000Z');
  let suppressed = 0;
  const trail = new AuditTrail({
    record: async (input) => {
      recorded.push(input);
      return input as never;
    },
    recordAll: async (inputs) => {
      recorded.push(...inputs);
    },
    auditReads: true,
    clock: () => new Date(now),
    denialLimits: { burst: 10, refillMs: 6_000 },
    onSuppressed: () => suppressed++,
  });
  return {
    trail,
    recorded,
    advance: (ms: number) => {
      now += ms;
    },
    suppressed: () => suppressed,
  };
}

describe('the rate limit of activity.access.denied', () => {
  it('10,000 denials at once record the burst and count the rest', async () => {
    const { trail, recorded, suppressed } = trailWithClock();
    for (let i = 0; i < 10_000; i++) trail.accessDenied(actor, 'acme', denial);
    await trail.flush();
    expect(recorded).toHaveLength(10);
    expect(suppressed()).toBe(9_990);
  });

  it('grows back one per interval, and the next one recorded carries the count of those suppressed', async () => {
    const { trail, recorded, advance } = trailWithClock();
    for (let i = 0; i < 25; i++) trail.accessDenied(actor, 'acme', denial);
    advance(5_999);
    trail.accessDenied(actor, 'acme', denial);
    advance(1);
    trail.accessDenied(actor, 'acme', denial);
    trail.accessDenied(actor, 'acme', denial);
    await trail.flush();
    const carried = recorded.map((input) => (input.metadata as { suppressed: number }).suppressed);
    expect(carried).toEqual([...Array(10).fill(0), 16]);
  });

  it('each tenant has its own allowance: one tenant flooded leaves another recorded', async () => {
    const { trail, recorded } = trailWithClock();
    for (let i = 0; i < 100; i++) trail.accessDenied(actor, 'flooded', denial);
    trail.accessDenied(actor, 'quiet', denial);
    await trail.flush();
    expect(recorded.filter((input) => input.tenant_id === 'quiet')).toHaveLength(1);
  });

  it('a clock that goes back gives nothing back', async () => {
    const { trail, recorded, advance } = trailWithClock();
    for (let i = 0; i < 10; i++) trail.accessDenied(actor, 'acme', denial);
    advance(-60_000);
    trail.accessDenied(actor, 'acme', denial);
    advance(60_000);
    trail.accessDenied(actor, 'acme', denial);
    await trail.flush();
    expect(recorded).toHaveLength(10);
  });
});
