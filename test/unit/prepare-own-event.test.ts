import { describe, expect, it } from 'vitest';
import type { ActivityError } from '../../src/domain/errors.js';
import { deriveKeys } from '../../src/privacy/keys.js';
import { createRegistry } from '../../src/registry/registry.js';
import { EventPreparer, type OwnEventInput } from '../../src/service/prepare-event.js';

/**
 * The tool's own events skip the envelope schema, nothing else: forged fields in them
 * (what a reader controls: filter values, a token's sub, headers) are still refused
 * or scrubbed as in any caller's event, and no other action gets through this path.
 */
const preparer = new EventPreparer(createRegistry(), deriveKeys('k'.repeat(32)));

const read: OwnEventInput = {
  tenant_id: 'acme',
  action: 'activity.events.read',
  actor_type: 'service_account',
  actor_id: 'svc',
  status: 'success',
  source: 'api',
  request_id: null,
  ip: '203.0.113.7',
  user_agent: null,
  metadata: { kind: 'page', filters: {}, cursor: false, returned: 3 },
};

function refusal(input: OwnEventInput): ActivityError {
  try {
    preparer.prepareOwn(input);
  } catch (error) {
    return error as ActivityError;
  }
  throw new Error('prepared what it must refuse');
}

describe("prepareOwn (the tool's own events)", () => {
  it('prepares what prepare would, for the same fields', () => {
    const own = preparer.prepareOwn(read);
    // prepare refuses the reserved action; with any public one, the rest is alike.
    const public_ = preparer.prepare({ ...read, action: 'auth.login.success', metadata: {} });
    expect({ ...own, id: '', action: '', metadata: {} }).toEqual({ ...public_, id: '', action: '' });
    expect(own.ip_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(preparer.hasGeneratedId(own)).toBe(true);
  });

  it('refuses any action outside activity.*, so no caller event can take this path', () => {
    const forged = { ...read, action: 'auth.login.success' } as unknown as OwnEventInput;
    expect(refusal(forged).code).toBe('INTERNAL');
    const unknown = { ...read, action: 'activity.events.deleted' } as unknown as OwnEventInput;
    expect(refusal(unknown).code).toBe('ACTION_UNKNOWN');
  });

  it('scrubs a secret in a filter value the reader typed', () => {
    const own = preparer.prepareOwn({
      ...read,
      metadata: { ...read.metadata, filters: { object_id: 'password=hunter2' } },
    });
    expect(JSON.stringify(own.metadata)).not.toContain('hunter2');
  });

  it('refuses metadata that is not the action’s schema', () => {
    expect(refusal({ ...read, metadata: { ...read.metadata, extra: 'x' } }).code).toBe('VALIDATION_FAILED');
    expect(refusal({ ...read, metadata: { ...read.metadata, returned: -1 } }).code).toBe('VALIDATION_FAILED');
  });

  it('refuses a tenant id, an identifier or an IP that an event cannot store', () => {
    expect(refusal({ ...read, tenant_id: 'has space' }).code).toBe('VALIDATION_FAILED');
    expect(refusal({ ...read, tenant_id: '203.0.113.7' }).issues[0]?.path).toBe('tenant_id');
    expect(
      refusal({ ...read, actor_id: 'Bearer abcdefghijklmnopqrstuvwxyz0123456789' }).issues[0]?.path,
    ).toBe('actor_id');
    expect(refusal({ ...read, ip: 'not-an-ip' }).issues[0]?.path).toBe('ip');
  });

  it('hashes the IP as prepare does, and never stores it', () => {
    const own = preparer.prepareOwn({ ...read, ip: '::ffff:203.0.113.7' });
    expect(own.ip_hash).toBe(preparer.prepareOwn(read).ip_hash);
    expect(JSON.stringify(own)).not.toContain('203.0.113.7');
  });
});
