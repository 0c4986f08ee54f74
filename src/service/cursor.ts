import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ActivityError } from '../domain/errors.js';

/**
 * Opaque page cursors. The payload holds the keyset position and the resolved time
 * window (so relative times stay fixed across pages); the MAC binds it to the tenant
 * and the filters, so a cursor cannot be forged, edited, or replayed for another
 * tenant or another query.
 */
export interface CursorPosition {
  beforeSeq: number;
  sinceMs: number | null;
  untilMs: number | null;
}

export interface CursorScope {
  tenantId: string;
  /** A canonical string of the query's filters. */
  filterKey: string;
}

const payloadSchema = z.tuple([
  z.number().int().positive(),
  z.number().int().nullable(),
  z.number().int().nullable(),
]);

function mac(key: Buffer, scope: CursorScope, payload: string): Buffer {
  return createHmac('sha256', key)
    .update(`cursor v1\n${scope.tenantId}\n${scope.filterKey}\n${payload}`)
    .digest()
    .subarray(0, 16);
}

export function encodeCursor(position: CursorPosition, scope: CursorScope, key: Buffer): string {
  const payload = Buffer.from(
    JSON.stringify([position.beforeSeq, position.sinceMs, position.untilMs]),
  ).toString('base64url');
  return `${payload}.${mac(key, scope, payload).toString('base64url')}`;
}

export function decodeCursor(cursor: string, scope: CursorScope, key: Buffer): CursorPosition {
  const invalid = () =>
    new ActivityError('CURSOR_INVALID', 'the cursor is invalid, or belongs to another tenant or query', {
      issues: [{ path: 'cursor', message: 'invalid' }],
    });
  const [payload, signature, ...rest] = cursor.split('.');
  if (!payload || !signature || rest.length > 0) throw invalid();
  // Compare the MAC as text: base64url decoding would skip stray characters.
  const expected = Buffer.from(mac(key, scope, payload).toString('base64url'));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  const parsed = payloadSchema.safeParse(decoded);
  if (!parsed.success) throw invalid();
  const [beforeSeq, sinceMs, untilMs] = parsed.data;
  return { beforeSeq, sinceMs, untilMs };
}
