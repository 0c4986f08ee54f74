import { expect } from 'vitest';

/** An event exactly as the public contract prints it. */
export interface EventJson {
  id: string;
  tenant_id: string;
  seq: number;
  action: string;
  actor_type: string;
  actor_id: string | null;
  object_type: string | null;
  object_id: string | null;
  status: string;
  source: string | null;
  request_id: string | null;
  ip_hash: string | null;
  user_agent: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
}

export const eventFields = [
  'id',
  'tenant_id',
  'seq',
  'action',
  'actor_type',
  'actor_id',
  'object_type',
  'object_id',
  'status',
  'source',
  'request_id',
  'ip_hash',
  'user_agent',
  'metadata',
  'created_at',
] as const;

const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const rfc3339UtcMillis = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Asserts the contract shape: exactly these fields, with these types. */
export function expectEventShape(event: unknown): asserts event is EventJson {
  expect(event).toBeTypeOf('object');
  const e = event as Record<string, unknown>;
  expect(Object.keys(e).sort()).toEqual([...eventFields].sort());
  expect(e.id).toMatch(uuid);
  expect(e.tenant_id).toBeTypeOf('string');
  expect(Number.isSafeInteger(e.seq) && (e.seq as number) >= 1).toBe(true);
  expect(e.action).toMatch(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/);
  expect(['user', 'service_account', 'system', 'api_key']).toContain(e.actor_type);
  expect(['success', 'failure', 'pending']).toContain(e.status);
  for (const field of ['actor_id', 'object_type', 'object_id', 'source', 'request_id', 'user_agent']) {
    expect(e[field] === null || typeof e[field] === 'string', field).toBe(true);
  }
  expect(e.ip_hash === null || /^[0-9a-f]{64}$/.test(String(e.ip_hash)), 'ip_hash').toBe(true);
  expect(e.metadata !== null && typeof e.metadata === 'object' && !Array.isArray(e.metadata)).toBe(true);
  expect(e.created_at).toMatch(rfc3339UtcMillis);
  expect(new Date(e.created_at as string).toISOString()).toBe(e.created_at);
}
