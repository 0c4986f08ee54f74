import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { NewActivityEvent } from '../../src/domain/event.js';
import { canonicalJson } from '../../src/integrity/canonical-json.js';
import { eventDigest } from '../../src/integrity/leaf.js';

/** The `canonicalize` package (RFC 8785's reference list names it): the oracle. */
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string;

describe('canonical JSON (RFC 8785)', () => {
  it('writes what the canonicalize package writes, for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(canonicalize(value));
      }),
      { numRuns: 500 },
    );
  });

  it('sorts keys by UTF-16 code units, prints numbers as ECMAScript does, escapes as JCS says', () => {
    // As RFC 8785 §3.2.3 sorts them: by code unit U+1F600 (D83D DE00) comes before U+FB33.
    expect(canonicalJson({ '\ufb33': 1, '\ud83d\ude00': 2, '€': 3, a: 4, A: 5, '': 6 })).toBe(
      '{"":6,"A":5,"a":4,"€":3,"\ud83d\ude00":2,"\ufb33":1}',
    );
    expect(canonicalJson([1e21, 1.5e-7, -0, 4.5, 2 ** 53 - 1, 5e-324])).toBe(
      '[1e+21,1.5e-7,0,4.5,9007199254740991,5e-324]',
    );
    expect(canonicalJson('\u000f\n"\\\u2028é')).toBe('"\\u000f\\n\\"\\\\\u2028é"');
  });

  it('refuses what has no canonical form', () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, '\ud800', { key: ['\udc00'] }, () => 1]) {
      expect(() => canonicalJson(bad)).toThrow(RangeError);
    }
  });

  it("gives an event's digest as hashing the package's canonical JSON of its fields would", () => {
    const text = fc.option(fc.string(), { nil: null });
    fc.assert(
      fc.property(
        fc.record({
          id: fc.uuid(),
          tenant_id: fc.string({ minLength: 1 }),
          action: fc.string({ minLength: 1 }),
          actor_type: fc.constantFrom('user', 'service_account', 'system', 'api_key'),
          actor_id: text,
          object_type: text,
          object_id: text,
          status: fc.constantFrom('success', 'failure', 'pending'),
          source: text,
          request_id: text,
          ip_hash: text,
          user_agent: text,
          metadata: fc.dictionary(fc.string(), fc.jsonValue()),
        }),
        (event) => {
          const expected = createHash('sha256').update(canonicalize(event), 'utf8').digest();
          expect(eventDigest(event as NewActivityEvent).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
