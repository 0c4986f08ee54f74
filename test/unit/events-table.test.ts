import { describe, expect, it } from 'vitest';
import { renderEventsTable } from '../../src/cli/render/events.js';
import type { ActivityEvent } from '../../src/domain/event.js';
import { newEvent } from '../helpers/new-event.js';

const event = (seq: number, fields: Partial<ActivityEvent>): ActivityEvent => ({
  ...newEvent('acme', { id: `0190c6a0-0000-7000-8000-00000000000${seq}` }),
  seq,
  created_at: '2026-12-07T20:51:19.806Z',
  ...fields,
});

const events = [
  event(1, { metadata: { mfa: true, method: 'password' } }),
  event(2, {
    action: 'billing.payment.state_changed',
    actor_type: 'service_account',
    actor_id: 'billing-worker-eu-west-1',
    object_type: 'payment',
    object_id: 'pay_0123456789',
    status: 'failure',
    metadata: { payment_id: 'pay_0123456789', to_state: 'failed', from_state: 'pending', currency: 'EUR' },
  }),
  event(3, { action: 'storage.file.uploaded', actor_id: null, actor_type: 'system', status: 'pending' }),
];

describe('the events table', () => {
  it.each([80, 120])('fits a terminal of %i columns, never wrapping a row', (width) => {
    const table = renderEventsTable(events, { width });
    const lines = table.trimEnd().split('\n');
    for (const line of lines) expect([...line].length).toBeLessThanOrEqual(width);
    // One line per event, with the head and the top and bottom rules: no row wrapped.
    expect(lines).toHaveLength(events.length + 3);
    expect(table).toMatchSnapshot();
  });

  it('keeps seq, time, action and status on 80 columns, cutting the long ones with …', () => {
    const table = renderEventsTable(events, { width: 80 });
    expect(table).toContain('billing.payment…');
    expect(table).toContain('failure');
    expect(table).toContain('2026-12-07T20:51:19.806Z');
    expect(table).not.toContain('metadata');
  });

  it('shows every column whole with wide, or piped with no width (metadata cut at 60)', () => {
    const wide = renderEventsTable(events, { width: 80, wide: true });
    expect(wide).toContain(
      '"payment_id":"pay_0123456789","to_state":"failed","from_state":"pending","currency":"EUR"',
    );
    const piped = renderEventsTable(events, {});
    expect(piped).toContain('object');
    expect(piped).toContain('"to_state":"failed","from_st…');
  });
});
