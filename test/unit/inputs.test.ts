import { describe, expect, it } from 'vitest';
import {
  actionFilterSchema,
  parseDuration,
  queryInputSchema,
  recordInputSchema,
  resolveTime,
  tenantIdSchema,
  timeInputSchema,
} from '../../src/domain/inputs.js';

const minimal = { tenant_id: 'acme', action: 'auth.login.success' };

function issuePaths(result: { success: boolean; error?: { issues: Array<{ path: PropertyKey[] }> } }) {
  return (result.error?.issues ?? []).map((issue) => issue.path.join('.'));
}

describe('recordInputSchema', () => {
  it('defaults actor_type to user, status to success, metadata to {} and optional fields to null', () => {
    expect(recordInputSchema.parse(minimal)).toEqual({
      tenant_id: 'acme',
      action: 'auth.login.success',
      actor_type: 'user',
      actor_id: null,
      object_type: null,
      object_id: null,
      status: 'success',
      source: null,
      request_id: null,
      ip: null,
      user_agent: null,
      metadata: {},
    });
  });

  it('keeps given values', () => {
    const parsed = recordInputSchema.parse({
      ...minimal,
      actor_type: 'service_account',
      actor_id: 'sa_1',
      status: 'failure',
      ip: '203.0.113.7',
      metadata: { reason: 'admin' },
    });
    expect(parsed.actor_type).toBe('service_account');
    expect(parsed.status).toBe('failure');
    expect(parsed.actor_id).toBe('sa_1');
    expect(parsed.ip).toBe('203.0.113.7');
    expect(parsed.metadata).toEqual({ reason: 'admin' });
  });

  it('turns an explicit null into null', () => {
    expect(recordInputSchema.parse({ ...minimal, actor_id: null }).actor_id).toBeNull();
  });

  it.each([
    ['ip_hash', 'abc'],
    ['seq', 1],
    ['created_at', '2026-01-01T00:00:00Z'],
    ['tenant', 'acme'],
  ])('rejects the unknown key %s instead of dropping it', (key, value) => {
    const result = recordInputSchema.safeParse({ ...minimal, [key]: value });
    expect(result.success).toBe(false);
    expect(JSON.stringify(result.error?.issues)).toContain(key);
  });

  it.each(['a', 'acme-01', 'org:acme.eu_west', 'A'.repeat(128), 'x.y:z-1_2'])(
    'accepts the tenant id %s',
    (id) => {
      expect(tenantIdSchema.safeParse(id).success).toBe(true);
      expect(recordInputSchema.safeParse({ ...minimal, tenant_id: id }).success).toBe(true);
    },
  );

  it.each(['', 'a'.repeat(129), 'acme corp', 'acme/eu', 'acme\u0000', 'ácme', "a'; drop table x;--", 'a\n'])(
    'rejects the tenant id %j',
    (id) => {
      const result = recordInputSchema.safeParse({ ...minimal, tenant_id: id });
      expect(result.success).toBe(false);
      expect(issuePaths(result)).toContain('tenant_id');
    },
  );

  it('requires tenant_id and action', () => {
    expect(issuePaths(recordInputSchema.safeParse({ tenant_id: 'acme' }))).toContain('action');
    expect(issuePaths(recordInputSchema.safeParse({ action: 'auth.login.success' }))).toContain('tenant_id');
    expect(issuePaths(recordInputSchema.safeParse({ ...minimal, action: '' }))).toContain('action');
  });

  it.each(['action', 'actor_id', 'object_type', 'object_id', 'source', 'request_id', 'user_agent', 'ip'])(
    'rejects a NUL byte in %s',
    (field) => {
      const result = recordInputSchema.safeParse({ ...minimal, [field]: 'a\u0000b' });
      expect(result.success).toBe(false);
      expect(issuePaths(result)).toContain(field);
    },
  );

  it('rejects a lone surrogate in a text field', () => {
    expect(issuePaths(recordInputSchema.safeParse({ ...minimal, actor_id: 'u\uD800' }))).toContain(
      'actor_id',
    );
  });

  it('rejects text over the field cap', () => {
    expect(recordInputSchema.safeParse({ ...minimal, user_agent: 'x'.repeat(512) }).success).toBe(true);
    const over = recordInputSchema.safeParse({ ...minimal, user_agent: 'x'.repeat(513) });
    expect(over.error?.issues).toEqual([
      expect.objectContaining({ path: ['user_agent'], message: 'is longer than 512 characters' }),
    ]);
  });

  it('rejects an unknown actor_type or status', () => {
    expect(issuePaths(recordInputSchema.safeParse({ ...minimal, actor_type: 'robot' }))).toContain(
      'actor_type',
    );
    expect(issuePaths(recordInputSchema.safeParse({ ...minimal, status: 'ok' }))).toContain('status');
  });

  it('accepts a UUID id and stores it in lower case', () => {
    const id = '0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B';
    expect(recordInputSchema.parse({ ...minimal, id }).id).toBe(id.toLowerCase());
  });

  it.each(['not-a-uuid', '0190a1b2c3d47e5f8a9b0c1d2e3f4a5b', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5', ''])(
    'rejects the id %j',
    (id) => {
      expect(issuePaths(recordInputSchema.safeParse({ ...minimal, id }))).toContain('id');
    },
  );

  it('leaves metadata to the registry and the caps (any value passes the schema)', () => {
    expect(recordInputSchema.parse({ ...minimal, metadata: 'text' }).metadata).toBe('text');
  });
});

describe('time inputs', () => {
  const now = new Date('2026-02-01T12:00:00.000Z');

  it.each([
    ['15m', '2026-02-01T11:45:00.000Z'],
    ['24h', '2026-01-31T12:00:00.000Z'],
    ['7d', '2026-01-25T12:00:00.000Z'],
    ['30s', '2026-02-01T11:59:30.000Z'],
    ['2w', '2026-01-18T12:00:00.000Z'],
    ['1y', '2025-02-01T12:00:00.000Z'],
  ])('the relative time %s means that long before now', (value, expected) => {
    expect(timeInputSchema.safeParse(value).success).toBe(true);
    expect(resolveTime(value, now).toISOString()).toBe(expected);
  });

  it.each([
    ['2026-01-31T12:00:00Z', '2026-01-31T12:00:00.000Z'],
    ['2026-01-31T12:00:00.123Z', '2026-01-31T12:00:00.123Z'],
    ['2026-01-31T14:00:00+02:00', '2026-01-31T12:00:00.000Z'],
    ['2026-01-31T07:00:00-05:00', '2026-01-31T12:00:00.000Z'],
  ])('the RFC 3339 time %s is taken as is', (value, expected) => {
    expect(timeInputSchema.safeParse(value).success).toBe(true);
    expect(resolveTime(value, now).toISOString()).toBe(expected);
  });

  it('a date is its midnight in UTC', () => {
    expect(timeInputSchema.safeParse('2026-01-31').success).toBe(true);
    expect(resolveTime('2026-01-31', now).toISOString()).toBe('2026-01-31T00:00:00.000Z');
  });

  it.each([
    'yesterday',
    '15',
    'm15',
    '-15m',
    '15 m',
    '15x',
    '2026-02-30',
    '2026-1-31',
    '2026-01-31 12:00',
    '',
    '1.5h',
  ])('rejects the time %j', (value) => {
    expect(timeInputSchema.safeParse(value).success).toBe(false);
  });
});

describe('parseDuration', () => {
  it('turns a duration into milliseconds', () => {
    expect(parseDuration('365d')).toBe(365 * 86_400_000);
    expect(parseDuration('12h')).toBe(12 * 3_600_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('45s')).toBe(45_000);
    expect(parseDuration('1w')).toBe(604_800_000);
    expect(parseDuration('1y')).toBe(365 * 86_400_000);
  });

  it.each(['', 'd', '365', '1mo', '365 d', '-1d', '1.5d', '1d2h'])('returns undefined for %j', (value) => {
    expect(parseDuration(value)).toBeUndefined();
  });
});

describe('actionFilterSchema', () => {
  it.each([
    ['auth.login.success', ['auth.login.success']],
    ['auth.*', ['auth.*']],
    ['auth.login.*', ['auth.login.*']],
    ['auth.*,billing.payment.state_changed', ['auth.*', 'billing.payment.state_changed']],
    [
      'auth.login.success, auth.login.failure , storage.*',
      ['auth.login.success', 'auth.login.failure', 'storage.*'],
    ],
    // Every event, the tool's own activity.* included.
    ['*', ['*']],
    ['auth.*,*', ['auth.*', '*']],
  ])('accepts %j', (value, expected) => {
    expect(actionFilterSchema.parse(value)).toEqual(expected);
  });

  it.each([
    ['one part', 'auth'],
    ['two parts without a star', 'auth.login'],
    ['a star beside a prefix', '**'],
    ['an action over 128 characters', `auth.*,${'a'.repeat(200)}.b.c`],
    ['a star in the middle', 'auth.*.success'],
    ['a bare prefix star', 'auth*'],
    ['upper case', 'Auth.login.success'],
    ['an empty string', ''],
    ['an empty item', 'auth.*,'],
    ['a double dot', 'auth..success'],
    ['SQL wildcards', 'auth.%.success'],
    ['spaces inside a name', 'auth.log in.success'],
  ])('rejects %s', (_what, value) => {
    expect(actionFilterSchema.safeParse(value).success).toBe(false);
  });

  it('rejects more than 50 items', () => {
    const items = Array.from({ length: 51 }, (_, i) => `ns${i}.*`).join(',');
    expect(actionFilterSchema.safeParse(items).success).toBe(false);
    const fifty = Array.from({ length: 50 }, (_, i) => `ns${i}.*`).join(',');
    expect(actionFilterSchema.safeParse(fifty).success).toBe(true);
  });
});

describe('queryInputSchema', () => {
  it('defaults the limit to 50 and coerces a numeric string', () => {
    expect(queryInputSchema.parse({}).limit).toBe(50);
    expect(queryInputSchema.parse({ limit: '10' }).limit).toBe(10);
  });

  it.each([0, 1001, 1.5, 'ten', '0x10', '1e2', '+5', ' 5', '1.0', ''])('rejects the limit %j', (limit) => {
    expect(queryInputSchema.safeParse({ limit }).success).toBe(false);
  });

  it('rejects an unknown filter', () => {
    expect(queryInputSchema.safeParse({ tenant: 'acme' }).success).toBe(false);
  });

  it('parses the action filter into a list', () => {
    expect(queryInputSchema.parse({ action: 'auth.*' }).action).toEqual(['auth.*']);
  });
});
