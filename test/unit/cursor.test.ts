import { describe, expect, it } from 'vitest';
import { deriveKeys } from '../../src/privacy/keys.js';
import {
  type CursorPosition,
  type CursorScope,
  decodeCursor,
  encodeCursor,
} from '../../src/service/cursor.js';
import { activityErrorFrom } from './thrown.js';

const key = deriveKeys('c'.repeat(32)).cursor;
const scope: CursorScope = { tenantId: 'tenant-a', filterKey: 'action=auth.*' };
const position: CursorPosition = { beforeSeq: 42, sinceMs: 1_700_000_000_000, untilMs: null };

function expectInvalid(cursor: string, decodeScope: CursorScope = scope, decodeKey: Buffer = key) {
  const error = activityErrorFrom(() => decodeCursor(cursor, decodeScope, decodeKey));
  expect(error.code).toBe('CURSOR_INVALID');
  expect(error.httpStatus).toBe(400);
}

/** Replaces one character of `text` with another base64url character. */
function flip(text: string, index: number): string {
  const replacement = text[index] === 'A' ? 'B' : 'A';
  return `${text.slice(0, index)}${replacement}${text.slice(index + 1)}`;
}

describe('cursors', () => {
  it('round-trip their position for the same tenant and filters', () => {
    const cursor = encodeCursor(position, scope, key);
    expect(decodeCursor(cursor, scope, key)).toEqual(position);
    const both = { beforeSeq: 1, sinceMs: -5, untilMs: 1_800_000_000_000 };
    expect(decodeCursor(encodeCursor(both, scope, key), scope, key)).toEqual(both);
  });

  it('are opaque URL-safe text that does not show the tenant', () => {
    const cursor = encodeCursor(position, scope, key);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(cursor).not.toContain('tenant-a');
  });

  it('a cursor from tenant A is rejected for tenant B', () => {
    const cursor = encodeCursor(position, scope, key);
    expectInvalid(cursor, { ...scope, tenantId: 'tenant-b' });
  });

  it('a cursor from one query is rejected for other filters', () => {
    const cursor = encodeCursor(position, scope, key);
    expectInvalid(cursor, { ...scope, filterKey: 'action=billing.*' });
    expectInvalid(cursor, { ...scope, filterKey: '' });
  });

  it('a cursor is rejected under another secret', () => {
    expectInvalid(encodeCursor(position, scope, key), scope, deriveKeys('d'.repeat(32)).cursor);
  });

  it('a cursor whose payload was edited is rejected', () => {
    const cursor = encodeCursor(position, scope, key);
    const [, mac] = cursor.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify([1_000_000, null, null])).toString('base64url');
    expectInvalid(`${forged}.${mac}`);
    expectInvalid(flip(cursor, 0));
  });

  it('a cursor whose MAC was edited is rejected', () => {
    const cursor = encodeCursor(position, scope, key);
    const dot = cursor.indexOf('.');
    expectInvalid(flip(cursor, dot + 1));
    expectInvalid(flip(cursor, dot + 5));
    expectInvalid(cursor.slice(0, -2));
    expectInvalid(`${cursor}AAAA`);
  });

  it('a cursor whose MAC text was edited without changing its bytes is rejected', () => {
    const cursor = encodeCursor(position, scope, key);
    const dot = cursor.indexOf('.');
    expectInvalid(`${cursor.slice(0, dot + 4)}!${cursor.slice(dot + 4)}`);
    expectInvalid(`${cursor}==`);
  });

  it.each([
    ['empty text', ''],
    ['no dot', 'garbage'],
    ['only a dot', '.'],
    ['an empty MAC', 'eyJhIjoxfQ.'],
    ['an empty payload', '.abc'],
    ['three parts', 'a.b.c'],
    ['non-base64 text', '!!!.???'],
  ])('garbage (%s) is rejected', (_what, cursor) => {
    expectInvalid(cursor);
  });

  it('a correctly signed cursor with an impossible position is rejected', () => {
    expectInvalid(encodeCursor({ beforeSeq: 0, sinceMs: null, untilMs: null }, scope, key));
    expectInvalid(encodeCursor({ beforeSeq: 1.5, sinceMs: null, untilMs: null }, scope, key));
  });
});
