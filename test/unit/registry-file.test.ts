import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRegistry } from '../../src/registry/registry.js';
import { loadRegistryFile } from '../../src/registry/registry-file.js';
import { activityErrorFrom, activityErrorFromAsync } from './thrown.js';

const directory = mkdtempSync(join(tmpdir(), 'activity-registry-'));
let fileCount = 0;

afterAll(() => rmSync(directory, { recursive: true, force: true }));

function registryFile(content: unknown): string {
  const path = join(directory, `registry-${++fileCount}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

const invoiceSent = {
  name: 'billing.invoice.sent',
  description: 'An invoice was sent.',
  metadata: {
    type: 'object',
    properties: {
      invoice_id: { type: 'string', minLength: 1 },
      amount_minor: { type: 'integer', minimum: 0 },
    },
    required: ['invoice_id'],
  },
};

async function registryWith(...actions: unknown[]) {
  return createRegistry(await loadRegistryFile(registryFile({ actions })));
}

describe('a registry file', () => {
  it('adds its actions to the built-in ones', async () => {
    const registry = await registryWith(invoiceSent);
    const invoice = registry.get('billing.invoice.sent');
    expect(invoice?.namespace).toBe('billing');
    expect(invoice?.description).toBe('An invoice was sent.');
    expect(registry.get('auth.login.success')).toBeDefined();
    expect(
      registry.validateMetadata('billing.invoice.sent', { invoice_id: 'in_1', amount_minor: 5 }),
    ).toEqual({
      invoice_id: 'in_1',
      amount_minor: 5,
    });
  });

  it('makes a custom action strict: an undeclared key is rejected and named', async () => {
    const registry = await registryWith(invoiceSent);
    const error = activityErrorFrom(() =>
      registry.validateMetadata('billing.invoice.sent', { invoice_id: 'in_1', customer_email: 'a@b.c' }),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('metadata.customer_email');
  });

  it('enforces the declared types and required fields, naming the field', async () => {
    const registry = await registryWith(invoiceSent);
    const missing = activityErrorFrom(() => registry.validateMetadata('billing.invoice.sent', {}));
    expect(missing.code).toBe('VALIDATION_FAILED');
    expect(missing.message).toContain('metadata.invoice_id');
    const wrongType = activityErrorFrom(() =>
      registry.validateMetadata('billing.invoice.sent', { invoice_id: 'in_1', amount_minor: 'five' }),
    );
    expect(wrongType.message).toContain('metadata.amount_minor');
  });

  it('gives a custom action the free-form context object, kept whole', async () => {
    const registry = await registryWith(invoiceSent);
    const metadata = { invoice_id: 'in_1', context: { batch: 7, tags: ['a'], nested: { deep: true } } };
    expect(registry.validateMetadata('billing.invoice.sent', metadata)).toEqual(metadata);
    const error = activityErrorFrom(() =>
      registry.validateMetadata('billing.invoice.sent', { invoice_id: 'in_1', context: 'text' }),
    );
    expect(error.message).toContain('metadata.context');
  });

  it('accepts an action without metadata, which then takes only context', async () => {
    const registry = await registryWith({ name: 'ops.deploy.finished' });
    expect(registry.validateMetadata('ops.deploy.finished', { context: { sha: 'abc' } })).toEqual({
      context: { sha: 'abc' },
    });
    expect(
      activityErrorFrom(() => registry.validateMetadata('ops.deploy.finished', { sha: 'abc' })).code,
    ).toBe('VALIDATION_FAILED');
  });

  it('shows custom actions in describe() as strict JSON Schema', async () => {
    const registry = await registryWith(invoiceSent);
    const description = registry.describe().find((action) => action.name === 'billing.invoice.sent');
    expect(description?.schema.type).toBe('object');
    expect(description?.schema.additionalProperties).toBe(false);
    expect(Object.keys(description?.schema.properties as object).sort()).toEqual([
      'amount_minor',
      'context',
      'invoice_id',
    ]);
    expect(description?.schema.required).toEqual(['invoice_id']);
  });

  it('reserves "context": a file cannot declare it', async () => {
    const path = registryFile({
      actions: [{ name: 'ops.deploy.finished', metadata: { properties: { context: { type: 'string' } } } }],
    });
    const error = await activityErrorFromAsync(loadRegistryFile(path));
    expect(error.code).toBe('REGISTRY_INVALID');
    expect(error.message).toContain('context');
  });

  it('cannot loosen strictness with additionalProperties', async () => {
    const path = registryFile({
      actions: [{ name: 'ops.deploy.finished', metadata: { properties: {}, additionalProperties: true } }],
    });
    expect((await activityErrorFromAsync(loadRegistryFile(path))).code).toBe('REGISTRY_INVALID');
  });

  it('a required field that is not declared is REGISTRY_INVALID', async () => {
    const path = registryFile({
      actions: [
        {
          name: 'ops.deploy.finished',
          metadata: { properties: { sha: { type: 'string' } }, required: ['shaa'] },
        },
      ],
    });
    expect((await activityErrorFromAsync(loadRegistryFile(path))).code).toBe('REGISTRY_INVALID');
  });

  it.each([
    ['upper case', 'Billing.invoice.sent'],
    ['two parts', 'billing.invoice'],
    ['four parts', 'billing.invoice.sent.now'],
    ['a wildcard', 'billing.invoice.*'],
    ['spaces', 'billing.invoice sent.x'],
  ])('rejects an action name with %s as REGISTRY_INVALID', async (_why, name) => {
    const error = await activityErrorFromAsync(loadRegistryFile(registryFile({ actions: [{ name }] })));
    expect(error.code).toBe('REGISTRY_INVALID');
    expect(error.message).toContain('actions.0.name');
  });

  it('bad JSON is REGISTRY_INVALID', async () => {
    const error = await activityErrorFromAsync(loadRegistryFile(registryFile('{"actions": [')));
    expect(error.code).toBe('REGISTRY_INVALID');
    expect(error.message).toContain('not valid JSON');
  });

  it('a missing file is REGISTRY_INVALID', async () => {
    const error = await activityErrorFromAsync(loadRegistryFile(join(directory, 'absent.json')));
    expect(error.code).toBe('REGISTRY_INVALID');
  });

  it.each([
    ['not an object', '[]'],
    ['without actions', '{}'],
    ['with an unknown top-level key', '{"actions": [], "version": 2}'],
    ['with an unknown action key', '{"actions": [{"name": "ops.deploy.finished", "helper": "x"}]}'],
    [
      'with a property that is not a schema object',
      '{"actions": [{"name": "ops.a.b", "metadata": {"properties": {"x": 1}}}]}',
    ],
  ])('a file %s is REGISTRY_INVALID', async (_why, text) => {
    expect((await activityErrorFromAsync(loadRegistryFile(registryFile(text)))).code).toBe(
      'REGISTRY_INVALID',
    );
  });

  it('an unusable JSON Schema is REGISTRY_INVALID naming the action', async () => {
    const path = registryFile({
      actions: [{ name: 'ops.deploy.finished', metadata: { properties: { sha: { type: 'nonsense' } } } }],
    });
    const error = await activityErrorFromAsync(loadRegistryFile(path));
    expect(error.code).toBe('REGISTRY_INVALID');
    expect(error.message).toContain('ops.deploy.finished');
  });

  it('a file action that reuses a built-in name is rejected when the registry is built', async () => {
    const actions = await loadRegistryFile(registryFile({ actions: [{ name: 'auth.login.success' }] }));
    expect(activityErrorFrom(() => createRegistry(actions)).code).toBe('REGISTRY_INVALID');
  });

  it('a file that names one action twice is rejected when the registry is built', async () => {
    const actions = await loadRegistryFile(registryFile({ actions: [invoiceSent, invoiceSent] }));
    expect(activityErrorFrom(() => createRegistry(actions)).code).toBe('REGISTRY_INVALID');
  });
});
