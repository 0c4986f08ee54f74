import { describe, expect, it } from 'vitest';
import { metadataBytes, metadataCapIssues, textProblem } from '../../src/domain/caps.js';
import { fieldLimits } from '../../src/domain/event.js';

/** `levels` objects nested inside each other: `nested(1)` is `{ leaf: 1 }`. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = { leaf: 1 };
  for (let level = 1; level < levels; level++) value = { child: value };
  return value;
}

/** An object of string fields (each under the string cap) that serialises to exactly `bytes` bytes. */
function objectOfSize(bytes: number): Record<string, string> {
  const keys = ['a', 'b', 'c', 'd', 'e'];
  const empty = metadataBytes(Object.fromEntries(keys.map((key) => [key, ''])));
  let remaining = bytes - empty;
  const result: Record<string, string> = {};
  for (const key of keys) {
    const length = Math.min(remaining, fieldLimits.metadataString);
    result[key] = 'x'.repeat(length);
    remaining -= length;
  }
  if (remaining !== 0) throw new Error(`cannot build ${bytes} bytes`);
  return result;
}

describe('metadata caps', () => {
  it('accepts an empty object and ordinary metadata', () => {
    expect(metadataCapIssues({})).toEqual([]);
    expect(metadataCapIssues({ reason: 'admin', context: { list: [1, 'two', null, true] } })).toEqual([]);
  });

  it('accepts 8 levels of nesting', () => {
    expect(metadataCapIssues(nested(8))).toEqual([]);
  });

  it('rejects 9 levels of nesting, naming where', () => {
    const issues = metadataCapIssues(nested(9));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain('deeper than 8');
    expect(issues[0]?.path).toBe(`metadata${'.child'.repeat(8)}`);
  });

  it('counts arrays as levels of nesting', () => {
    let value: unknown = [1];
    for (let level = 1; level < 8; level++) value = [value];
    expect(metadataCapIssues({ list: value })).not.toEqual([]);
    expect(metadataCapIssues({ list: [[[[[[['ok']]]]]]] })).toEqual([]);
  });

  it('accepts metadata of exactly 8 KiB serialised', () => {
    const metadata = objectOfSize(8 * 1024);
    expect(metadataBytes(metadata)).toBe(8192);
    expect(metadataCapIssues(metadata)).toEqual([]);
  });

  it('rejects metadata one byte over 8 KiB serialised', () => {
    const metadata = objectOfSize(8 * 1024 + 1);
    expect(metadataBytes(metadata)).toBe(8193);
    const issues = metadataCapIssues(metadata);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe('metadata');
    expect(issues[0]?.message).toContain('8192');
  });

  it('measures the cap in UTF-8 bytes, not characters', () => {
    const metadata = objectOfSize(8 * 1024);
    const sameLength = { ...metadata, a: `${(metadata.a as string).slice(0, -1)}é` };
    expect(JSON.stringify(sameLength).length).toBe(8192);
    expect(metadataBytes(sameLength)).toBe(8193);
    expect(metadataCapIssues(sameLength)).not.toEqual([]);
  });

  it('rejects a wide array of many small values without walking forever', () => {
    const issues = metadataCapIssues({ list: new Array(100_000).fill(0) });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain('cap');
  });

  it('rejects a string over the string cap', () => {
    const issues = metadataCapIssues({ note: 'x'.repeat(fieldLimits.metadataString + 1) });
    expect(issues).toEqual([{ path: 'metadata.note', message: expect.stringContaining('longer than') }]);
    expect(metadataCapIssues({ note: 'x'.repeat(fieldLimits.metadataString) })).toEqual([]);
  });

  it('rejects a NUL byte in a value, naming the field', () => {
    expect(metadataCapIssues({ context: { note: 'a\u0000b' } })).toEqual([
      { path: 'metadata.context.note', message: expect.stringContaining('NUL') },
    ]);
  });

  it('rejects a NUL byte in a value inside an array', () => {
    expect(metadataCapIssues({ list: ['ok', 'a\u0000'] })).toEqual([
      { path: 'metadata.list.1', message: expect.stringContaining('NUL') },
    ]);
  });

  it('rejects a NUL byte in a key', () => {
    const issues = metadataCapIssues({ context: { 'bad\u0000key': 1 } });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain('NUL');
  });

  it('rejects a __proto__ key, which a copy of the object would silently drop', () => {
    const issues = metadataCapIssues(JSON.parse('{"context":{"__proto__":{"admin":true}}}'));
    expect(issues).toEqual([{ path: 'metadata.context', message: expect.stringContaining('__proto__') }]);
  });

  it.each([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN])(
    'rejects %s, which JSON would store as null',
    (value) => {
      expect(metadataCapIssues({ context: { n: [1, value] } })).toEqual([
        { path: 'metadata.context.n.1', message: 'is not a finite number' },
      ]);
    },
  );

  it('rejects a lone surrogate in a value and in a key', () => {
    expect(metadataCapIssues({ note: 'a\uD800b' })[0]?.message).toContain('lone surrogate');
    expect(metadataCapIssues({ note: 'end\uDC00' })).not.toEqual([]);
    expect(metadataCapIssues({ 'k\uD83D': 1 })).not.toEqual([]);
  });

  it('accepts a well-formed surrogate pair', () => {
    expect(metadataCapIssues({ note: 'party 🎉' })).toEqual([]);
  });

  it.each([
    ['null', null],
    ['an array', [{ a: 1 }]],
    ['a string', '{"a":1}'],
    ['a number', 42],
    ['a boolean', true],
    ['undefined', undefined],
  ])('rejects metadata that is %s', (_what, metadata) => {
    expect(metadataCapIssues(metadata)).toEqual([{ path: 'metadata', message: 'must be a JSON object' }]);
  });

  it('rejects a 100,000-deep object quickly without overflowing the stack', () => {
    let deep: Record<string, unknown> = {};
    for (let level = 0; level < 100_000; level++) deep = { d: deep };
    const started = performance.now();
    const issues = metadataCapIssues(deep);
    expect(performance.now() - started).toBeLessThan(1000);
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toContain('deeper than 8');
  });
});

describe('textProblem', () => {
  it('accepts storable text up to the maximum length', () => {
    expect(textProblem('héllo', 5)).toBeUndefined();
    expect(textProblem('', 5)).toBeUndefined();
  });

  it('names the problem of unstorable text', () => {
    expect(textProblem('abcdef', 5)).toContain('longer than 5');
    expect(textProblem('a\u0000', 5)).toContain('NUL');
    expect(textProblem('\uDFFF', 5)).toContain('surrogate');
  });
});
