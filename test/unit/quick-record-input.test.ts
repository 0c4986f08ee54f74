import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fieldLimits, optionalTextLimits } from '../../src/domain/event.js';
import { recordInputSchema } from '../../src/domain/inputs.js';
import { quickRecordInput } from '../../src/domain/quick-record-input.js';

/** The schema's result with its undefined fields left out, as the quick path leaves them out. */
function bySchema(input: unknown): Record<string, unknown> | undefined {
  const parsed = recordInputSchema.safeParse(input);
  if (!parsed.success) return undefined;
  return Object.fromEntries(Object.entries(parsed.data).filter(([, value]) => value !== undefined));
}

const caps: Record<string, number> = { action: fieldLimits.action, ...optionalTextLimits };

/** Values of a text field: valid ones, and each way one can be wrong, near its cap. */
const textValue = (cap: number) =>
  fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 20 }),
    fc.constantFrom('', 'a\u0000b', 'x\ud800', '\udc00y', 'é😀', 'a'.repeat(cap), 'a'.repeat(cap + 1)),
    fc.constantFrom(null, undefined, 0, 1.5, true, {}, [], ['x']),
  );

const fieldValues: Record<string, fc.Arbitrary<unknown>> = {
  id: fc.oneof(
    fc.uuid(),
    fc.uuid().map((id) => id.toUpperCase()),
    fc.constantFrom(undefined, null, '', 'not-a-uuid', 12),
  ),
  tenant_id: fc.oneof(
    fc.stringMatching(/^[A-Za-z0-9._:-]{1,12}$/),
    fc.constantFrom('a'.repeat(128), 'a'.repeat(129), '', 'acme corp', 'acme/x', undefined, null, 7),
  ),
  action: fc.oneof(
    fc.constantFrom('auth.login.success', 'storage.file.uploaded', 'no.such.action', 'activity.events.read'),
    textValue(fieldLimits.action),
  ),
  actor_type: fc.constantFrom(
    'user',
    'service_account',
    'system',
    'api_key',
    'robot',
    '',
    null,
    undefined,
    1,
  ),
  status: fc.constantFrom('success', 'failure', 'pending', 'ok', '', null, undefined, true),
  metadata: fc.oneof(fc.jsonValue(), fc.constantFrom(undefined, null, {}, [], 'text')),
  ...Object.fromEntries(Object.entries(caps).map(([key, cap]) => [key, textValue(cap)])),
};

/** Envelopes every field of which is valid and no id: what the quick path is for. */
const validRecords = fc.record(
  {
    tenant_id: fc.stringMatching(/^[A-Za-z0-9._:-]{1,12}$/),
    action: fc.constantFrom('auth.login.success', 'storage.file.uploaded'),
    actor_type: fc.constantFrom('user', 'service_account', 'system', 'api_key', undefined),
    status: fc.constantFrom('success', 'failure', 'pending', undefined),
    actor_id: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    ip: fc.option(fc.constantFrom('10.0.0.1', '::1', null), { nil: undefined }),
    metadata: fc.option(fc.dictionary(fc.string(), fc.jsonValue()), { nil: undefined }),
  },
  { requiredKeys: ['tenant_id', 'action'], noNullPrototype: true },
);

/**
 * Valid envelopes with up to three fields set to any value (valid or not), removed,
 * or a key the envelope lacks added: inputs on both sides of every check.
 */
const records = fc
  .tuple(
    validRecords,
    fc.array(
      fc.oneof(
        fc
          .constantFrom(...Object.keys(fieldValues))
          .chain((key) =>
            (fieldValues[key] as fc.Arbitrary<unknown>).map((value) => ({ key, value, remove: false })),
          ),
        fc.constantFrom(...Object.keys(fieldValues)).map((key) => ({ key, value: undefined, remove: true })),
        fc
          .constantFrom('ip_hash', 'seq', 'created_at', 'extra', '__proto__', 'toString')
          .map((key) => ({ key, value: 'x', remove: false })),
      ),
      { maxLength: 3 },
    ),
  )
  .map(([valid, changes]) => {
    const record: Record<string, unknown> = { ...valid };
    for (const { key, value, remove } of changes) {
      if (remove) delete record[key];
      else
        Object.defineProperty(record, key, { value, enumerable: true, configurable: true, writable: true });
    }
    return record;
  });

describe('quickRecordInput', () => {
  it('agrees with recordInputSchema on every input it reads, and reads none the schema refuses', () => {
    let read = 0;
    fc.assert(
      fc.property(records, (input) => {
        const quick = quickRecordInput(input);
        if (quick === undefined) return;
        read++;
        expect(quick).toStrictEqual(bySchema(input));
      }),
      { numRuns: 20_000 },
    );
    // Mostly wrong inputs, but enough right ones that both sides of the check ran.
    expect(read).toBeGreaterThan(20);
  });

  it('reads every valid envelope without an id, as the schema does', () => {
    fc.assert(
      fc.property(validRecords, (input) => {
        expect(quickRecordInput(input)).toStrictEqual(bySchema(input));
      }),
      { numRuns: 5_000 },
    );
  });

  it('leaves to the schema an id, any other object than a plain one, and a key the envelope lacks', () => {
    const valid = { tenant_id: 'acme', action: 'auth.login.success' };
    expect(bySchema(valid)).toBeDefined();
    expect(quickRecordInput(valid)).toBeDefined();
    for (const input of [
      { ...valid, id: '0193a7e2-5c1f-7b2a-9c3d-4e5f60718293' },
      Object.assign(Object.create(null), valid),
      Object.assign(new (class Input {})(), valid),
      { ...valid, ip_hash: 'a'.repeat(64) },
      [valid],
      JSON.stringify(valid),
      null,
    ]) {
      expect(quickRecordInput(input)).toBeUndefined();
    }
  });
});
