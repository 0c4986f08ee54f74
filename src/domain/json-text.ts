import { keyInPath } from '../privacy/scrub.js';
import type { FieldIssue } from './errors.js';

/**
 * What JSON.parse would change of a text it accepted, as an issue with its path: a
 * number a double cannot hold, or a key given twice. Undefined when `parsed` is exactly
 * what the text says.
 */
export function jsonTextIssue(text: string, parsed: unknown, prefix?: string): FieldIssue | undefined {
  return inexactNumberIssue(text, prefix) ?? duplicateKeyIssue(text, parsed, prefix);
}

/**
 * Finds a number in JSON text that JavaScript cannot hold exactly. JSON.parse reads
 * every number as a double: an integer beyond 2^53 loses digits, 1e400 becomes
 * Infinity (stored as null), 1e-400 becomes 0. An audit record stores what it was
 * given or refuses it, so such a number is reported with its path, never stored.
 * Costs one regular-expression test for ordinary text; the scan runs only when a
 * number there might be inexact (16 or more digits, or a 3-digit exponent).
 */
export function inexactNumberIssue(text: string, prefix?: string): FieldIssue | undefined {
  if (!mightBeInexact.test(text)) return undefined;
  const found = findInexactNumber(text);
  if (found === undefined) return undefined;
  // The digits are not quoted: a number too long for a double can be a card number.
  return {
    path: [prefix, found].filter((part) => part !== undefined && part !== '').join('.') || '(root)',
    message:
      'is a number that cannot be stored exactly (JSON numbers are read as doubles: at most 15–17 significant digits, magnitude up to 1.8e308); send it as a string',
  };
}

/** 16 digits (with a dot among them, perhaps), or an exponent of 3 digits. */
const mightBeInexact = /\d[\d.]{15}|\d[eE][+-]?\d{3}/;

const numberToken = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** The path of the first number in valid JSON text that a double does not hold exactly. */
function findInexactNumber(text: string): string | undefined {
  let found: string | undefined;
  walkJsonText(text, {
    number(literal, path) {
      if (holdsExactly(literal)) return false;
      found = toPath(path);
      return true;
    },
  });
  return found;
}

/**
 * Finds a key given twice in one object of JSON text. JSON.parse keeps the last and
 * drops the rest without a word; an audit record stores what it was given or refuses
 * it. The issue names the object, not the key: a key can hold anything, a secret too.
 * Costs a count of colons and a walk of the parsed value; the text is scanned only
 * when the counts differ or an escape could hide a colon.
 */
export function duplicateKeyIssue(text: string, parsed: unknown, prefix?: string): FieldIssue | undefined {
  if (!text.includes('\\u') && colonsIn(text) === keysAndColonsIn(parsed)) return undefined;
  let found: string | undefined;
  walkJsonText(text, {
    key(key, seen, path) {
      if (!seen.has(key)) {
        seen.add(key);
        return false;
      }
      found = toPath(path.slice(0, -1));
      return true;
    },
  });
  if (found === undefined) return undefined;
  return {
    path: [prefix, found].filter((part) => part !== undefined && part !== '').join('.') || '(root)',
    message: 'has a key given twice; send each key once',
  };
}

/** Every colon in valid JSON text follows a key or sits inside a string. */
function colonsIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf(':'); at !== -1; at = text.indexOf(':', at + 1)) count++;
  return count;
}

/** The colons a parsed value's text has with no key repeated: one per key, plus those in strings. */
function keysAndColonsIn(parsed: unknown): number {
  let count = 0;
  // A stack, not recursion: JSON.parse accepts nesting deeper than the call stack.
  const pending: unknown[] = [parsed];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      count += colonsIn(value);
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item);
    } else if (value !== null && typeof value === 'object') {
      // for…in: JSON.parse makes plain objects, and no entry arrays are built.
      for (const key in value) {
        count += 1 + colonsIn(key);
        pending.push((value as Record<string, unknown>)[key]);
      }
    }
  }
  return count;
}

interface JsonTextVisitor {
  /** A key of the object at the end of `path` (already in it); true stops the walk. */
  key?(key: string, seen: Set<string>, path: ReadonlyArray<string | number>): boolean;
  /** A number's literal text at `path`; true stops the walk. */
  number?(literal: string, path: ReadonlyArray<string | number>): boolean;
}

/** Walks valid JSON text, keeping the path to where it is, and calls the visitor. */
function walkJsonText(text: string, visitor: JsonTextVisitor): void {
  const path: Array<string | number> = [];
  // For each open object, the keys it has had; undefined for an array.
  const open: Array<Set<string> | undefined> = [];
  let expectingKey = false;
  for (let at = 0; at < text.length; at++) {
    const char = text.charCodeAt(at);
    if (char === 0x22 /* " */) {
      const end = endOfString(text, at);
      if (expectingKey) {
        const key = JSON.parse(text.slice(at, end + 1)) as string;
        path[path.length - 1] = key;
        expectingKey = false;
        if (visitor.key?.(key, open.at(-1) as Set<string>, path)) return;
      }
      at = end;
    } else if (char === 0x7b /* { */ || char === 0x5b /* [ */) {
      const object = char === 0x7b;
      open.push(object ? new Set() : undefined);
      path.push(object ? '' : 0);
      expectingKey = object;
    } else if (char === 0x7d /* } */ || char === 0x5d /* ] */) {
      open.pop();
      path.pop();
      expectingKey = false;
    } else if (char === 0x2c /* , */) {
      if (open.at(-1) !== undefined) expectingKey = true;
      else path[path.length - 1] = (path.at(-1) as number) + 1;
    } else if (char === 0x2d /* - */ || (char >= 0x30 && char <= 0x39)) {
      numberToken.lastIndex = at;
      const literal = numberToken.exec(text)?.[0] ?? '';
      if (visitor.number?.(literal, path)) return;
      at += literal.length - 1;
    }
  }
}

/** The index of the quote that closes the string opening at `start`. */
function endOfString(text: string, start: number): number {
  for (let at = start + 1; at < text.length; at++) {
    const char = text.charCodeAt(at);
    if (char === 0x5c /* \ */) at++;
    else if (char === 0x22) return at;
  }
  return text.length;
}

/** Dotted, as the other field issues (`metadata.items.2`); a batch's index first as `[3]`. */
function toPath(path: ReadonlyArray<string | number>): string {
  return path
    .map((part, index) =>
      typeof part === 'string' ? keyInPath(part) : index === 0 ? `[${part}]` : String(part),
    )
    .join('.');
}

/** Whether the double nearest `literal` has exactly its decimal value. */
function holdsExactly(literal: string): boolean {
  const value = Number(literal);
  return Number.isFinite(value) && canonicalDecimal(literal) === canonicalDecimal(String(value));
}

/** A decimal's value as `<sign><digits>e<exponent>`, without leading or trailing zeros. */
function canonicalDecimal(text: string): string {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:e([+-]?\d+))?$/i.exec(text);
  if (!match) return text;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  const digits = (whole + fraction).replace(/^0+/, '');
  const significant = digits.replace(/0+$/, '');
  if (significant === '') return '0';
  const shift = Number(exponent) - fraction.length + (digits.length - significant.length);
  return `${sign}${significant}e${shift}`;
}

/**
 * Why JSON.parse refused a text, as ": reason", never quoting the text (it may hold a
 * secret): V8's reason when it names only a position, else a generic one.
 *
 * @example jsonSyntaxProblem(error) // ": Unterminated string in JSON at position 10"
 */
export function jsonSyntaxProblem(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  // `Unexpected token 'p', "password=h"... is not valid JSON` quotes the text.
  return message === '' || message.includes('"') ? ': unexpected text' : `: ${message}`;
}
