import { hash } from 'node:crypto';
import { type ActivityEvent, eventFields, type NewActivityEvent } from '../domain/event.js';
import { canonicalJson } from './canonical-json.js';

export const leafSize = 48;

/**
 * The leaf (v1) of an event in its tenant's tree, as DESIGN.md defines it: `digest ‖
 * seq ‖ t`, 48 bytes. `digest` is SHA-256 of the RFC 8785 (JCS) canonical JSON of the
 * event's fields but `seq` and `created_at`, nulls included; `seq` is 8 bytes
 * big-endian; `t` is `created_at` in microseconds since the epoch, 8 bytes big-endian,
 * signed. A verifier recomputes it from a queried or exported event alone.
 */
export function leafOf(event: ActivityEvent): Uint8Array {
  return writeLeaf(event, Buffer.allocUnsafe(leafSize), 0);
}

/**
 * The event's leaf hash, H(0x00 ‖ leaf) (RFC 9162): leafHash(leafOf(event)) in one
 * buffer and one hash, as `verify` computes it for every event of a tenant.
 */
export function eventLeafHash(event: ActivityEvent): Buffer {
  const prefixed = Buffer.allocUnsafe(1 + leafSize);
  prefixed[0] = 0;
  return hash('sha256', writeLeaf(event, prefixed, 1), 'buffer');
}

/** Writes the event's leaf into `target` at `offset`; returns `target`. */
function writeLeaf(event: ActivityEvent, target: Buffer, offset: number): Buffer {
  const createdMs = Date.parse(event.created_at);
  if (!Number.isSafeInteger(event.seq) || event.seq < 1 || Number.isNaN(createdMs)) {
    throw new RangeError('an event with a seq of 1 or more and a created_at time has a leaf');
  }
  eventDigest(event).copy(target, offset);
  writeInt64(target, event.seq, offset + 32);
  writeInt64(target, createdMs * 1000, offset + 40);
  return target;
}

/** A safe integer as 8 bytes, big-endian, two's complement, without a BigInt. */
function writeInt64(target: Buffer, value: number, offset: number): void {
  const high = Math.floor(value / 2 ** 32);
  target.writeInt32BE(high, offset);
  target.writeUInt32BE(value - high * 2 ** 32, offset + 4);
}

/**
 * The leaf's `digest`: SHA-256 of the canonical JSON of the event's fields but `seq`
 * and `created_at`. Writers compute it before the database gives those two, which
 * the database then hashes with it (activity_leaf_hash, migrations/0004).
 */
export function eventDigest(event: NewActivityEvent): Buffer {
  // The object's canonical JSON written out in its canonical key order, without
  // building the object: the fields are fixed, only metadata is canonicalised in turn.
  let text = '{';
  for (const field of coveredFields) {
    if (text.length > 1) text += ',';
    text += `"${field}":${canonicalJson(event[field])}`;
  }
  return hash('sha256', `${text}}`, 'buffer');
}

/** The fields the digest covers, the event's but seq and time, in canonical (UTF-16 code unit) order. */
const coveredFields = eventFields
  .filter(
    (field): field is Exclude<typeof field, 'seq' | 'created_at'> =>
      field !== 'seq' && field !== 'created_at',
  )
  .toSorted();
