import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { ActivityError } from '../domain/errors.js';
import { namespaceOf } from '../domain/event.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import { type ActionDefinition, actionNamePattern } from './registry.js';

/**
 * A registry file adds actions without forking:
 *
 *   {"actions": [{"name": "billing.invoice.sent", "description": "…",
 *                 "metadata": {"properties": {"invoice_id": {"type": "string"}},
 *                              "required": ["invoice_id"]}}]}
 *
 * `metadata` is a JSON Schema for an object. It is made strict (undeclared keys are
 * rejected) and gains the optional `context` object, like every built-in action.
 */
const registryFileSchema = z.strictObject({
  actions: z.array(
    z.strictObject({
      name: z.string().regex(actionNamePattern, 'must be namespace.object.verb in lower case'),
      description: z.string().max(500).default(''),
      metadata: z
        .strictObject({
          type: z.literal('object').optional(),
          properties: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
          required: z.array(z.string()).default([]),
          description: z.string().optional(),
        })
        .default({ properties: {}, required: [] }),
    }),
  ),
});

export async function loadRegistryFile(path: string): Promise<ActionDefinition[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ActivityError('REGISTRY_INVALID', `cannot read registry file ${path}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ActivityError('REGISTRY_INVALID', `registry file ${path} is not valid JSON`, { cause: error });
  }
  const parsed = registryFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new ActivityError(
      'REGISTRY_INVALID',
      `registry file ${path}: ${describeIssues(toFieldIssues(parsed.error))}`,
    );
  }
  return parsed.data.actions.map((action) => {
    const { properties, required } = action.metadata;
    if ('context' in properties) {
      throw new ActivityError('REGISTRY_INVALID', `${action.name}: "context" is reserved`);
    }
    const undeclared = required.filter((name) => !(name in properties));
    if (undeclared.length > 0) {
      throw new ActivityError(
        'REGISTRY_INVALID',
        `${action.name}: required names undeclared fields: ${undeclared.join(', ')}`,
      );
    }
    let schema: z.ZodType<Record<string, unknown>>;
    try {
      schema = z.fromJSONSchema({
        type: 'object',
        properties: { ...properties, context: { type: 'object' } },
        required,
        additionalProperties: false,
      }) as z.ZodType<Record<string, unknown>>;
    } catch (error) {
      throw new ActivityError('REGISTRY_INVALID', `${action.name}: metadata is not a usable JSON Schema`, {
        cause: error,
      });
    }
    return {
      name: action.name,
      namespace: namespaceOf(action.name),
      description: action.description,
      schema,
    };
  });
}
