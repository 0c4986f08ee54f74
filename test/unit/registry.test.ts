import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { builtinActions } from '../../src/registry/builtin-actions.js';
import { type ActionDefinition, createRegistry, strictMetadataSchema } from '../../src/registry/registry.js';
import { selfAuditActions } from '../../src/registry/self-audit-actions.js';
import { activityErrorFrom } from './thrown.js';

/** Each milestone touchpoint, with an action that covers it and metadata it accepts. */
const touchpoints: Array<[touchpoint: string, action: string, metadata: Record<string, unknown>]> = [
  ['auth: signup', 'auth.signup.completed', {}],
  ['auth: login success', 'auth.login.success', { method: 'password' }],
  ['auth: login failure', 'auth.login.failure', { reason: 'invalid_credentials' }],
  ['auth: logout', 'auth.logout.completed', {}],
  ['auth: token refresh', 'auth.token.refreshed', {}],
  ['auth: password change', 'auth.password.changed', {}],
  ['auth: password reset request', 'auth.password_reset.requested', { delivery: 'email' }],
  ['auth: password reset complete', 'auth.password_reset.completed', {}],
  ['auth: email verification', 'auth.email.verified', {}],
  ['auth: account lock', 'auth.account.locked', { reason: 'too_many_attempts' }],
  ['auth: account unlock', 'auth.account.unlocked', {}],
  ['auth: service account issued', 'auth.service_account.issued', { service_account_id: 'sa_1' }],
  ['auth: service account revoked', 'auth.service_account.revoked', { service_account_id: 'sa_1' }],
  ['conversations: created', 'conversations.conversation.created', {}],
  ['conversations: cleared', 'conversations.conversation.cleared', { message_count: 3 }],
  ['agents: run started', 'agents.run.started', { agent_id: 'a', run_id: 'r' }],
  ['agents: run ended', 'agents.run.ended', { agent_id: 'a', run_id: 'r', outcome: 'completed' }],
  ['workflows: run started', 'workflows.run.started', { workflow_id: 'w', run_id: 'r' }],
  ['workflows: run ended', 'workflows.run.ended', { workflow_id: 'w', run_id: 'r', outcome: 'failed' }],
  [
    'billing: subscription state change',
    'billing.subscription.state_changed',
    { subscription_id: 's', from_state: 'trialing', to_state: 'active' },
  ],
  [
    'billing: payment state change',
    'billing.payment.state_changed',
    { payment_id: 'p', to_state: 'succeeded', amount_minor: 1999, currency: 'EUR' },
  ],
  ['storage: file uploaded', 'storage.file.uploaded', { file_id: 'f', size_bytes: 10 }],
  ['storage: file deleted', 'storage.file.deleted', { file_id: 'f' }],
  ['vector: sync state changed', 'vector.sync.state_changed', { vector_store_id: 'v', to_state: 'synced' }],
  ['containers: created', 'containers.container.created', { container_id: 'c' }],
  ['containers: destroyed', 'containers.container.destroyed', { container_id: 'c' }],
  [
    'containers: bound',
    'containers.container.bound',
    { container_id: 'c', bound_to_type: 'agent', bound_to_id: 'a' },
  ],
  [
    'containers: unbound',
    'containers.container.unbound',
    { container_id: 'c', bound_to_type: 'agent', bound_to_id: 'a' },
  ],
];

function customAction(name: string, shape: z.ZodRawShape = {}): ActionDefinition {
  return {
    name,
    namespace: name.split('.')[0] as string,
    description: 'custom',
    schema: strictMetadataSchema(shape),
  };
}

describe('the built-in taxonomy', () => {
  const registry = createRegistry();

  it.each(touchpoints)('covers %s with %s', (_touchpoint, action, metadata) => {
    const definition = registry.get(action);
    expect(definition?.name).toBe(action);
    expect(definition?.namespace).toBe(action.split('.')[0]);
    expect(registry.validateMetadata(action, metadata)).toEqual(metadata);
  });

  it('names every action namespace.object.verb in lower case, once', () => {
    const names = builtinActions.map((action) => action.name);
    for (const name of names) expect(name).toMatch(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/);
    expect(new Set(names).size).toBe(names.length);
  });

  it('gives every action a helper name that is unique within its namespace', () => {
    const seen = new Set<string>();
    for (const action of builtinActions) {
      const key = `${action.name.split('.')[0]}.${action.helper}`;
      expect(seen.has(key), key).toBe(false);
      seen.add(key);
    }
  });

  it('gives every action a description', () => {
    for (const action of registry.list()) expect(action.description.length).toBeGreaterThan(0);
  });

  it('lists actions sorted by name', () => {
    const names = registry.list().map((action) => action.name);
    expect(names).toEqual([...names].sort((a, b) => a.localeCompare(b)));
    expect(names.length).toBe(builtinActions.length + selfAuditActions.length);
  });
});

describe('metadata validation', () => {
  const registry = createRegistry();

  it('an unknown action is rejected with ACTION_UNKNOWN', () => {
    const error = activityErrorFrom(() => registry.validateMetadata('auth.login.teleported', {}));
    expect(error.code).toBe('ACTION_UNKNOWN');
    expect(error.message).toContain('auth.login.teleported');
    expect(registry.get('auth.login.teleported')).toBeUndefined();
  });

  it('a missing required field is VALIDATION_FAILED naming metadata.reason', () => {
    const error = activityErrorFrom(() => registry.validateMetadata('auth.login.failure', {}));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('metadata.reason');
    expect(error.issues.map((issue) => issue.path)).toEqual(['metadata.reason']);
  });

  it('a value outside an enum is VALIDATION_FAILED naming the field', () => {
    const error = activityErrorFrom(() =>
      registry.validateMetadata('auth.login.failure', { reason: 'bad_luck' }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('metadata.reason');
  });

  it('a value of the wrong type is VALIDATION_FAILED naming the field', () => {
    const error = activityErrorFrom(() => registry.validateMetadata('auth.login.success', { mfa: 'yes' }));
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('metadata.mfa');
  });

  it('a bad element of an array is named by its index', () => {
    const error = activityErrorFrom(() =>
      registry.validateMetadata('auth.service_account.issued', {
        service_account_id: 'sa',
        scopes: ['ok', ''],
      }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('metadata.scopes.1');
  });

  it('an undeclared key is rejected, not dropped', () => {
    const error = activityErrorFrom(() =>
      registry.validateMetadata('auth.login.success', { method: 'password', favourite_colour: 'blue' }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('metadata.favourite_colour');
    expect(error.issues).toContainEqual({
      path: 'metadata.favourite_colour',
      message: 'is not a declared field',
    });
  });

  it('each undeclared key is named', () => {
    const error = activityErrorFrom(() => registry.validateMetadata('auth.password.changed', { a: 1, b: 2 }));
    expect(error.issues.map((issue) => issue.path).sort()).toEqual(['metadata.a', 'metadata.b']);
  });

  it('accepts a free-form context object beside the declared fields and keeps it whole', () => {
    const metadata = {
      reason: 'mfa_failed',
      context: { attempt: 3, nested: { list: [1, 'two', { three: true }] }, note: null },
    };
    expect(registry.validateMetadata('auth.login.failure', metadata)).toEqual(metadata);
  });

  it('accepts context on an action that declares no fields', () => {
    expect(registry.validateMetadata('auth.password.changed', { context: { via: 'settings' } })).toEqual({
      context: { via: 'settings' },
    });
  });

  it('rejects a context that is not an object', () => {
    for (const context of ['text', 42, ['a'], null]) {
      const error = activityErrorFrom(() => registry.validateMetadata('auth.password.changed', { context }));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.message).toContain('metadata.context');
    }
  });

  it('rejects a currency that is not three upper-case letters', () => {
    const error = activityErrorFrom(() =>
      registry.validateMetadata('billing.payment.state_changed', {
        payment_id: 'p',
        to_state: 'failed',
        currency: 'eur',
      }),
    );
    expect(error.message).toContain('metadata.currency');
  });

  it('rejects a timestamp that is not RFC 3339', () => {
    const error = activityErrorFrom(() =>
      registry.validateMetadata('auth.account.locked', { reason: 'admin', locked_until: 'tomorrow' }),
    );
    expect(error.message).toContain('metadata.locked_until');
  });
});

describe('describe()', () => {
  const registry = createRegistry();
  const descriptions = registry.describe();

  it('yields one JSON Schema per action', () => {
    expect(descriptions.map((description) => description.name)).toEqual(
      registry.list().map((action) => action.name),
    );
    for (const description of descriptions) {
      expect(description.schema.type).toBe('object');
      expect(description.schema.additionalProperties).toBe(false);
      expect(description.namespace).toBe(description.name.split('.')[0]);
      expect(JSON.parse(JSON.stringify(description.schema))).toEqual(description.schema);
    }
  });

  it('shows declared and required fields, and the optional context', () => {
    const failure = descriptions.find((description) => description.name === 'auth.login.failure');
    const properties = failure?.schema.properties as Record<string, Record<string, unknown>>;
    expect(Object.keys(properties).sort()).toEqual(['context', 'method', 'reason']);
    expect(properties.reason?.enum).toContain('invalid_credentials');
    expect(properties.context?.type).toBe('object');
    expect(failure?.schema.required).toEqual(['reason']);
  });
});

describe('custom actions', () => {
  it('are validated like built-in ones', () => {
    const registry = createRegistry([customAction('billing.invoice.sent', { invoice_id: z.string() })]);
    expect(registry.validateMetadata('billing.invoice.sent', { invoice_id: 'in_1' })).toEqual({
      invoice_id: 'in_1',
    });
    expect(activityErrorFrom(() => registry.validateMetadata('billing.invoice.sent', {})).code).toBe(
      'VALIDATION_FAILED',
    );
    expect(registry.describe().some((description) => description.name === 'billing.invoice.sent')).toBe(true);
  });

  it('a custom action cannot reuse a built-in name', () => {
    const error = activityErrorFrom(() => createRegistry([customAction('auth.login.success')]));
    expect(error.code).toBe('REGISTRY_INVALID');
    expect(error.message).toContain('auth.login.success');
  });

  it('two custom actions with the same name are rejected', () => {
    const error = activityErrorFrom(() =>
      createRegistry([customAction('billing.invoice.sent'), customAction('billing.invoice.sent')]),
    );
    expect(error.code).toBe('REGISTRY_INVALID');
  });
});
