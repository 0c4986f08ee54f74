import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { duplicateKeyIssue, inexactNumberIssue } from '../../src/domain/json-text.js';
import { keyInPath } from '../../src/privacy/scrub.js';

describe('numbers a double cannot hold exactly', () => {
  it.each([
    [
      'an integer beyond 2^53',
      '{"metadata":{"amount":12345678901234567890}}',
      'metadata.amount',
      '12345678901234567890',
    ],
    ['2^53 + 1', '{"metadata":{"n":9007199254740993}}', 'metadata.n', '9007199254740993'],
    [
      'a number that overflows to Infinity',
      '{"metadata":{"context":{"big":1e400}}}',
      'metadata.context.big',
      '1e400',
    ],
    ['a negative overflow', '{"metadata":{"x":-1E+309}}', 'metadata.x', '-1E+309'],
    ['a number that underflows to 0', '{"metadata":{"tiny":1e-400}}', 'metadata.tiny', '1e-400'],
    [
      'more digits than a double keeps',
      '{"metadata":{"pi":3.14159265358979323846}}',
      'metadata.pi',
      '3.14159265358979323846',
    ],
    [
      'inside an array',
      '{"metadata":{"context":{"ids":[1,2,123456789012345678901]}}}',
      'metadata.context.ids.2',
      '123456789012345678901',
    ],
    [
      'after keys with escapes and strings holding digits',
      '{"a\\"b":"12345678901234567890","c":[{"d":1}],"e":99999999999999999999}',
      'e',
      '99999999999999999999',
    ],
  ])('%s is found, with its path', (_, text, path, literal) => {
    const issue = inexactNumberIssue(text);
    expect(issue?.path).toBe(path);
    expect(issue?.message).toContain('is a number that cannot be stored exactly');
    // Never quoted: a number too long for a double can be a card number.
    expect(issue?.message).not.toContain(literal);
  });

  it('a batch names the index of the event first', () => {
    expect(inexactNumberIssue('[{"metadata":{}},{"metadata":{"n":1e999}}]')?.path).toBe('[1].metadata.n');
  });

  it('a prefix names where the text came from (--metadata)', () => {
    expect(inexactNumberIssue('{"n":1e999}', 'metadata')?.path).toBe('metadata.n');
  });

  it.each([
    '{"n":9007199254740992}',
    '{"n":-9007199254740991}',
    '{"n":1.7976931348623157e308}',
    '{"n":5e-324}',
    '{"n":0.1}',
    '{"n":1.0000000000000000}',
    '{"n":100000000000000000000}',
    '{"n":1e21}',
    '{"n":-0}',
    '{"n":0.000000000000000000001}',
    '{"id":"12345678901234567890123","ip":"192.168.100.100"}',
  ])('%s is exact', (text) => {
    expect(inexactNumberIssue(text)).toBeUndefined();
  });

  it('no JSON that JavaScript wrote is ever refused', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(inexactNumberIssue(JSON.stringify(value))).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('an integer beyond 2^53 anywhere is found at its path', () => {
    // Below 1e21 JavaScript writes a number's shortest text as plain digits: the oracle
    // is whether that text is still the integer given.
    const unsafe = fc
      .bigInt({ min: 2n ** 53n + 1n, max: 10n ** 20n })
      .filter((n) => BigInt(String(Number(n))) !== n);
    fc.assert(
      fc.property(
        fc.array(fc.string({ minLength: 1 }), { minLength: 1, maxLength: 5 }),
        unsafe,
        (keys, big) => {
          let text = `${big}`;
          for (const key of [...keys].reverse()) text = `{"filler":[1,"x"],${JSON.stringify(key)}:${text}}`;
          // A key that holds an IP address or a credential is named `[key]` (keyInPath).
          expect(inexactNumberIssue(text)?.path).toBe(keys.map(keyInPath).join('.'));
        },
      ),
      // Once failed: the key "::0 " is an IPv6 address, and no message quotes one.
      { examples: [[['::0 ', ' '], 9007199254740993n]] },
    );
  });
});

describe('keys given twice, of which JSON.parse keeps only the last', () => {
  const check = (text: string, prefix?: string) => duplicateKeyIssue(text, JSON.parse(text), prefix);

  it.each([
    ['at the top', '{"actor_id":"u_1","action":"a.b.c","actor_id":"u_2"}', '(root)'],
    ['in metadata', '{"metadata":{"context":{"a":1,"b":2,"a":3}}}', 'metadata.context'],
    ['with the same value', '{"metadata":{"a":1,"a":1}}', 'metadata'],
    ['in a batch', '[{"a":1},{"metadata":{"x":"1:2","x":null}}]', '[1].metadata'],
    ['spelt with an escape', '{"metadata":{"a":1,"\\u0061":2}}', 'metadata'],
    ['hidden by an escaped colon', '{"a":1,"a":2,"b":"\\u003a"}', '(root)'],
    ['inside an array of objects', '{"m":{"l":[{"k":1},{"k":1,"k":2}]}}', 'm.l.1'],
  ])('%s is found, naming the object, never the key', (_, text, path) => {
    const issue = check(text);
    expect(issue?.path).toBe(path);
    expect(issue?.message).toBe('has a key given twice; send each key once');
  });

  it('a prefix names where the text came from (--metadata)', () => {
    expect(check('{"a":1,"a":2}', 'metadata')?.path).toBe('metadata');
  });

  it('a key on the way that holds a secret is named [key]', () => {
    expect(check('{"metadata":{"sk_live_abcdefghijklmnop1234":{"a":1,"a":2}}}')?.path).toBe('metadata.[key]');
    expect(inexactNumberIssue('{"metadata":{"203.0.113.9":{"n":1e999}}}')?.path).toBe('metadata.[key].n');
  });

  it.each([
    '{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}',
    '{"a":"x:y","b":"\\u003a","c:d":1}',
    '{"a":1,"A":2,"a ":3}',
    '[]',
    '"just text: with a colon"',
  ])('%s has none', (text) => {
    expect(check(text)).toBeUndefined();
  });

  it('no JSON that JavaScript wrote is ever refused', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = JSON.stringify(value);
        expect(duplicateKeyIssue(text, JSON.parse(text))).toBeUndefined();
      }),
      { numRuns: 2000 },
    );
  });

  it('a key repeated anywhere is found, however the text around it looks', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string(), fc.jsonValue(), { minKeys: 1, maxKeys: 5 }),
        fc.jsonValue(),
        fc.jsonValue(),
        (object, again, filler) => {
          const key = Object.keys(object)[0] as string;
          const inner = JSON.stringify(object).slice(0, -1);
          const text = `[${JSON.stringify(filler)},{"o":${inner},${JSON.stringify(key)}:${JSON.stringify(again)}}}]`;
          expect(duplicateKeyIssue(text, JSON.parse(text))?.path).toBe('[1].o');
        },
      ),
    );
  });

  it('a depth JSON.parse accepts does not overflow the stack', () => {
    const text = `${'['.repeat(200_000)}{"a":1,"a":2}${']'.repeat(200_000)}`;
    expect(check(text)?.path).toMatch(/\.0$/);
  });
});
