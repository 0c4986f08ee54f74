import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { leafOf, leafSize } from '../../src/integrity/leaf.js';

const event: ActivityEvent = {
  id: '0190a0c4-7b7e-7000-8000-000000000001',
  tenant_id: 'acme',
  seq: 258,
  action: 'auth.login.success',
  actor_type: 'user',
  actor_id: 'u_1',
  object_type: null,
  object_id: null,
  status: 'success',
  source: null,
  request_id: null,
  ip_hash: null,
  user_agent: null,
  metadata: { method: 'sso', context: { b: 1, a: [true, null, 'é'] } },
  created_at: '2026-12-07T10:00:00.123Z',
};

describe('the leaf (v1) of an event', () => {
  it('is digest ‖ seq ‖ t: 48 bytes, seq and microseconds big-endian', () => {
    const leaf = Buffer.from(leafOf(event));
    expect(leaf.length).toBe(leafSize);
    // The canonical JSON written out by hand: keys sorted, no spaces, nulls kept.
    const canonical =
      '{"action":"auth.login.success","actor_id":"u_1","actor_type":"user","id":"0190a0c4-7b7e-7000-8000-000000000001","ip_hash":null,"metadata":{"context":{"a":[true,null,"é"],"b":1},"method":"sso"},"object_id":null,"object_type":null,"request_id":null,"source":null,"status":"success","tenant_id":"acme","user_agent":null}';
    expect(leaf.subarray(0, 32).toString('hex')).toBe(createHash('sha256').update(canonical).digest('hex'));
    expect(leaf.subarray(32, 40).toString('hex')).toBe('0000000000000102');
    expect(leaf.readBigInt64BE(40)).toBe(1_796_637_600_123_000n);
  });

  it('is the same whatever order the fields and metadata keys come in', () => {
    const reordered = JSON.parse(
      JSON.stringify({ ...event, metadata: { context: { a: [true, null, 'é'], b: 1 }, method: 'sso' } }),
    ) as ActivityEvent;
    expect(Buffer.from(leafOf(reordered)).equals(Buffer.from(leafOf(event)))).toBe(true);
  });

  it('changes with any covered field, the seq or the time', () => {
    const base = Buffer.from(leafOf(event));
    const changes: Partial<ActivityEvent>[] = [
      { actor_id: 'u_2' },
      { actor_id: null },
      { status: 'failure' },
      { metadata: { ...event.metadata, method: 'password' } },
      { seq: 259 },
      { created_at: '2026-12-07T10:00:00.124Z' },
      { tenant_id: 'acme2' },
    ];
    for (const change of changes)
      expect(Buffer.from(leafOf({ ...event, ...change })).equals(base)).toBe(false);
  });

  it('differs for any two different metadata values', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
        fc.pre(JSON.stringify(a) !== JSON.stringify(b));
        const leafA = Buffer.from(leafOf({ ...event, metadata: { context: a } as Record<string, unknown> }));
        const leafB = Buffer.from(leafOf({ ...event, metadata: { context: b } as Record<string, unknown> }));
        // Objects equal but for key order canonicalise alike; anything else differs.
        const same = JSON.stringify(sortKeys(a)) === JSON.stringify(sortKeys(b));
        expect(leafA.equals(leafB)).toBe(same);
      }),
    );
  });

  it('refuses an event without a seq or a time', () => {
    expect(() => leafOf({ ...event, seq: 0 })).toThrow(RangeError);
    expect(() => leafOf({ ...event, created_at: 'yesterday' })).toThrow(RangeError);
  });
});

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
