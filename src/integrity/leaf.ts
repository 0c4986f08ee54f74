import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';
import type { ActivityEvent, NewActivityEvent } from '../domain/event.js';

// canonicalize is CommonJS whose types declare an ES default export: imported from an
// ES module, the default is the function itself.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

export const leafSize = 48;

/**
 * The leaf (v1) of an event in its tenant's tree, as DESIGN.md defines it: `digest ‖
 * seq ‖ t`, 48 bytes. `digest` is SHA-256 of the RFC 8785 (JCS) canonical JSON of the
 * event's fields but `seq` and `created_at`, nulls included; `seq` is 8 bytes
 * big-endian; `t` is `created_at` in microseconds since the epoch, 8 bytes big-endian,
 * signed. A verifier recomputes it from a queried or exported event alone.
 */
export function leafOf(event: ActivityEvent): Uint8Array {
  const createdMs = Date.parse(event.created_at);
  if (!Number.isSafeInteger(event.seq) || event.seq < 1 || Number.isNaN(createdMs)) {
    throw new RangeError('an event with a seq of 1 or more and a created_at time has a leaf');
  }
  const leaf = Buffer.alloc(leafSize);
  eventDigest(event).copy(leaf, 0);
  leaf.writeBigUInt64BE(BigInt(event.seq), 32);
  leaf.writeBigInt64BE(BigInt(createdMs) * 1000n, 40);
  return leaf;
}

/**
 * The leaf's `digest`: SHA-256 of the canonical JSON of the event's fields but `seq`
 * and `created_at`. Writers compute it before the database gives those two, which
 * the database then hashes with it (activity_leaf_hash, migrations/0004).
 */
export function eventDigest(event: NewActivityEvent): Buffer {
  const covered = {
    id: event.id,
    tenant_id: event.tenant_id,
    action: event.action,
    actor_type: event.actor_type,
    actor_id: event.actor_id,
    object_type: event.object_type,
    object_id: event.object_id,
    status: event.status,
    source: event.source,
    request_id: event.request_id,
    ip_hash: event.ip_hash,
    user_agent: event.user_agent,
    metadata: event.metadata,
  };
  return createHash('sha256')
    .update(canonicalize(covered) as string, 'utf8')
    .digest();
}
