import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { metadataCapIssues } from '../../src/domain/caps.js';
import { metadataJson } from '../../src/domain/event-json.js';
import { scrubMetadata } from '../../src/privacy/scrub.js';
import { type MetadataShape, objectShapeOf } from '../../src/registry/metadata-shape.js';
import { createRegistry, type Registry, strictMetadataSchema } from '../../src/registry/registry.js';
import { EventPreparer } from '../../src/service/prepare-event.js';
import { quickMetadata } from '../../src/service/quick-metadata.js';

/** Strict objects nested `levels` deep, each optional. */
function nested(levels: number): z.ZodType {
  let schema: z.ZodType = z.strictObject({ leaf: z.string().optional() }).optional();
  for (let level = 1; level < levels; level++) schema = z.strictObject({ next: schema }).optional();
  return schema;
}

/** Actions beside the built-in ones, with the parts of a shape the built-in ones lack. */
const registry = createRegistry([
  {
    name: 'test.shape.wide',
    namespace: 'test',
    description: 'every kind of shape',
    schema: strictMetadataSchema({
      count: z.number().int().positive().optional(),
      ratio: z.number().gt(0).lte(1).optional(),
      tags: z.array(z.string().min(1).max(8)).min(1).max(3).optional(),
      parent: z.string().max(16).nullable().optional(),
      nested: z.strictObject({ level: z.enum(['a', 'b']), note: z.string().optional() }).optional(),
      flag: z.boolean(),
    }),
  },
  {
    name: 'test.shape.secret',
    namespace: 'test',
    description: 'a declared key whose value scrubbing redacts',
    schema: strictMetadataSchema({ api_token: z.string().optional(), note: z.string().optional() }),
  },
  {
    name: 'test.shape.deep',
    namespace: 'test',
    description: 'declared objects nested past the depth cap',
    schema: strictMetadataSchema({ next: nested(9) }),
  },
  {
    name: 'test.shape.inherited',
    namespace: 'test',
    description: 'a key every object inherits',
    schema: strictMetadataSchema({ constructor: z.string().optional() }),
  },
  {
    name: 'test.shape.formatted',
    namespace: 'test',
    description: 'a format the shape cannot hold',
    schema: strictMetadataSchema({ at: z.iso.datetime().optional() }),
  },
]);

type General = { value: unknown; json: string } | 'refused' | 'scrubbed';

/** What the general path stores (the caps, the schema, scrubbing), or why it does not store the metadata as given. */
function general(actions: Registry, action: string, metadata: unknown): General {
  if (metadataCapIssues(metadata).length > 0) return 'refused';
  let validated: Record<string, unknown>;
  try {
    validated = actions.validateMetadata(action, metadata as Record<string, unknown>);
  } catch {
    return 'refused';
  }
  const scrubbed = scrubMetadata(validated);
  if (scrubbed.issues.length > 0) return 'refused';
  if (scrubbed.changed) return 'scrubbed';
  return { value: scrubbed.value, json: JSON.stringify(scrubbed.value) };
}

const shaped = registry
  .list()
  .flatMap((action) => {
    const shape = objectShapeOf(action.schema);
    return shape ? [{ name: action.name, shape }] : [];
  })
  .sort((a, b) => a.name.localeCompare(b.name));

/** Metadata valid for a shape (the checks of scrubbing and the caps aside). */
function validFor(shape: MetadataShape): fc.Arbitrary<unknown> {
  switch (shape.kind) {
    case 'object': {
      const fields = [...shape.fields];
      return fc.record(Object.fromEntries(fields.map(([key, field]) => [key, validFor(field)])), {
        requiredKeys: fields.filter(([, field]) => field.kind !== 'optional').map(([key]) => key),
        noNullPrototype: true,
      });
    }
    case 'optional':
      return validFor(shape.inner);
    case 'nullable':
      return fc.option(validFor(shape.inner), { nil: null });
    case 'string':
      return fc.oneof(
        fc.string({ minLength: shape.min, maxLength: Math.min(shape.max, 24) }),
        fc.constant('a'.repeat(Math.min(shape.max, 3000))),
      );
    case 'enum':
      return fc.constantFrom(...shape.values);
    case 'boolean':
      return fc.boolean();
    case 'number':
      return shape.integer
        ? fc.integer({ min: 1, max: 2 ** 40 })
        : fc.double({ min: 0.001, max: 1, noNaN: true });
    case 'array':
      return fc.array(validFor(shape.element), {
        minLength: shape.min,
        maxLength: Math.min(shape.max, 4),
      });
    case 'record':
      // As JSON.parse makes them: no object without a prototype.
      return fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 3 }), {
        maxKeys: 4,
        noNullPrototype: true,
      });
  }
}

/** Values on each side of every check the caps, the schemas and scrubbing make. */
const nastyValue = fc.oneof(
  fc.constantFrom<unknown>(
    'Bearer abcdefghijklmnop.qrstuvwxyz-123456',
    'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U',
    '4111 1111 1111 1111',
    'card 4111111111111111 on file',
    4111111111111111,
    -4111111111111111,
    'seen at 203.0.113.7',
    '2001:db8::1',
    'a\u0000b',
    'x\ud800',
    '\udc00',
    'x'.repeat(2048),
    'x'.repeat(2049),
    'é'.repeat(3000),
    Number.POSITIVE_INFINITY,
    Number.NaN,
    -0,
    1e21,
    2 ** 53,
    1.5,
    -1,
    0,
    true,
    null,
    undefined,
    '',
    'sso',
    [],
    {},
    [[[[[[[[['deep']]]]]]]]],
    { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } },
    new Date(0),
    Object.create(null),
    new Map(),
    ['a', 'b', 'c', 'd'],
    Array.from({ length: 900 }, (_, i) => `v${i}`),
  ),
  fc.jsonValue({ maxDepth: 2 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

const nastyKey = fc.oneof(
  fc.constantFrom(
    'password',
    'api_key',
    'Authorization',
    'sessionToken',
    '10.0.0.1',
    'Bearer abcdefghijklmnop.qrstuvwxyz-123456',
    '__proto__',
    'constructor',
    'toString',
    'k\u0000',
    'k\ud800',
    'k'.repeat(256),
    'k'.repeat(257),
    'undeclared',
    'method',
    'context',
  ),
  fc.string({ maxLength: 8 }),
);

/** Puts `value` under `key` in `target` as JSON.parse would (an own, enumerable key, `__proto__` too). */
function put(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, configurable: true, writable: true });
}

interface Change {
  where: 'top' | 'context' | 'nested';
  key: string;
  value: unknown;
  remove: boolean;
}

/** Valid metadata of an action with up to three changes, on both sides of every check. */
const cases = fc
  .constantFrom(...shaped)
  .chain(({ name, shape }) =>
    fc.tuple(
      fc.constant(name),
      validFor(shape),
      fc.array(
        fc.record({
          where: fc.constantFrom<Change['where']>('top', 'context', 'nested'),
          key: fc.oneof(fc.constantFrom(...shape.fields.keys()), nastyKey),
          value: nastyValue,
          remove: fc.boolean(),
        }),
        { maxLength: 3 },
      ),
    ),
  )
  .map(([action, valid, changes]) => {
    const metadata = structuredClone(valid) as Record<string, unknown>;
    for (const { where, key, value, remove } of changes) {
      let target = metadata;
      if (where !== 'top') {
        if (!(typeof metadata.context === 'object' && metadata.context !== null))
          put(metadata, 'context', {});
        target = metadata.context as Record<string, unknown>;
        if (where === 'nested') {
          if (!(typeof target.inner === 'object' && target.inner !== null)) put(target, 'inner', {});
          target = target.inner as Record<string, unknown>;
        }
      }
      if (remove) delete target[key];
      else put(target, key, value);
    }
    return { action, metadata };
  });

function shapeOf(action: string) {
  const found = shaped.find((each) => each.name === action);
  if (!found) throw new Error(`${action} has no shape`);
  return found.shape;
}

describe('quickMetadata', () => {
  it('stores exactly what the general path stores, and nothing the general path refuses or scrubs', () => {
    let taken = 0;
    fc.assert(
      fc.property(cases, ({ action, metadata }) => {
        const quick = quickMetadata(shapeOf(action), metadata);
        if (quick === undefined) return;
        taken++;
        const expected = general(registry, action, metadata);
        expect(expected).not.toBe('refused');
        expect(expected).not.toBe('scrubbed');
        expect(quick.json).toBe((expected as { json: string }).json);
        // Not toStrictEqual: it reads a key named `constructor` as the object's type.
        expect(isDeepStrictEqual(quick.value, (expected as { value: unknown }).value)).toBe(true);
        expect(quick.json).toBe(JSON.stringify(quick.value));
      }),
      { numRuns: 20_000 },
    );
    // Mostly changed inputs, but enough taken that both sides of each check ran.
    expect(taken).toBeGreaterThan(1000);
  });

  it('takes every valid metadata the general path stores unchanged', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...shaped).chain(({ name, shape }) => fc.tuple(fc.constant(name), validFor(shape))),
        ([action, metadata]) => {
          const expected = general(registry, action, metadata);
          const quick = quickMetadata(shapeOf(action), metadata);
          if (typeof expected === 'string') expect(quick).toBeUndefined();
          else expect(quick?.json).toBe(expected.json);
        },
      ),
      { numRuns: 5_000 },
    );
  });

  it('has a shape for the built-in actions but where zod alone can judge', () => {
    const unshaped = registry
      .list()
      .filter((action) => !action.reserved && objectShapeOf(action.schema) === undefined)
      .map((action) => action.name);
    // A regex, a format (a time), a key every object inherits: zod's own to judge.
    expect(unshaped).toEqual([
      'auth.account.locked',
      'auth.service_account.issued',
      'billing.payment.state_changed',
      'test.shape.formatted',
      'test.shape.inherited',
    ]);
  });

  it('hands the statement the JSON it wrote, for what EventPreparer prepares', () => {
    const preparer = new EventPreparer(registry, undefined);
    const event = preparer.prepare({
      tenant_id: 'acme',
      action: 'test.shape.wide',
      metadata: { flag: true, tags: ['x'], context: { path: '/a' } },
    });
    expect(event.metadata).toStrictEqual({ tags: ['x'], flag: true, context: { path: '/a' } });
    expect(metadataJson(event.metadata)).toBe(JSON.stringify(event.metadata));
  });
});
