import { describe, expect, it } from 'vitest';
import { csvField, csvRow, escapeControl } from '../../src/cli/render/text.js';

describe('escapeControl', () => {
  it('makes an ANSI escape sequence visible instead of obeyed', () => {
    const escaped = escapeControl('\u001b[2J\u001b[31mred\u001b[0m');
    expect(escaped).toBe('\\x1b[2J\\x1b[31mred\\x1b[0m');
    expect(escaped).not.toContain('\u001b');
  });

  it('makes an OSC sequence (terminal title, hyperlink) visible', () => {
    expect(escapeControl('\u001b]0;pwned\u0007')).toBe('\\x1b]0;pwned\\x07');
  });

  it('makes CR, LF, tab, backspace, BEL and DEL visible', () => {
    expect(escapeControl('a\rb\nc\td\be\u0007f\u007f')).toBe('a\\x0db\\x0ac\\x09d\\x08e\\x07f\\x7f');
  });

  it('makes C1 controls such as CSI (U+009B) visible', () => {
    expect(escapeControl('\u009b31m')).toBe('\\x9b31m');
  });

  it('makes the line and paragraph separators U+2028 and U+2029 visible', () => {
    expect(escapeControl('a\u2028b\u2029c')).toBe('a\\u2028b\\u2029c');
  });

  it('makes NUL visible', () => {
    expect(escapeControl('a\u0000b')).toBe('a\\x00b');
  });

  it('leaves printable text, accents and emoji alone', () => {
    const text = 'auth.login.success — Zoë 🎉 {"a":1} \\x1b';
    expect(escapeControl(text)).toBe(text);
  });
});

describe('csvField', () => {
  it('writes null and undefined as empty fields', () => {
    expect(csvField(null)).toBe('');
    expect(csvField(undefined)).toBe('');
  });

  it('leaves plain text and numbers unquoted', () => {
    expect(csvField('auth.login.success')).toBe('auth.login.success');
    expect(csvField(42)).toBe('42');
    expect(csvField(true)).toBe('true');
  });

  it('quotes a field holding a comma, a quote, CR or LF, doubling quotes', () => {
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
    expect(csvField('line1\nline2')).toBe('"line1\nline2"');
    expect(csvField('a\rb')).toBe('"a\rb"');
  });

  it('writes objects as quoted JSON', () => {
    expect(csvField({ a: 1, b: 'x' })).toBe('"{""a"":1,""b"":""x""}"');
  });

  it.each([
    ['=', '=HYPERLINK("http://evil","click")'],
    ['+', '+1+cmd|calc'],
    ['-', '-2+3'],
    ['@', '@SUM(A1:A2)'],
    ['tab', '\t=1'],
    ['CR', '\r=1'],
  ])('neutralises a formula starting with %s', (_start, value) => {
    const field = csvField(value);
    const unquoted = field.startsWith('"') ? field.slice(1, -1).replace(/""/g, '"') : field;
    expect(unquoted).toBe(`'${value}`);
  });

  it('neutralises a formula that also needs quoting', () => {
    expect(csvField('=1,2')).toBe(`"'=1,2"`);
  });

  it('leaves an equals sign inside text alone', () => {
    expect(csvField('a=b')).toBe('a=b');
  });
});

describe('csvRow', () => {
  it('joins fields with commas and ends with a newline', () => {
    expect(csvRow(['a', null, 'b,c', 1])).toBe('a,,"b,c",1\n');
  });
});
