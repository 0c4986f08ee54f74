import { z } from 'zod';
import { eventStatuses, fieldLimits } from '../domain/event.js';

/**
 * The actions of the reserved `activity.*` namespace: what the tool records of its own
 * use. Only the tool writes them; a caller that tries gets ACTION_RESERVED. Their
 * schemas are strict and take no free-form `context`: each field is one the tool fills in.
 */
const seq = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
const time = z.iso.datetime({ offset: true });
const text = (max: number) => z.string().max(max);

/** The filters of a read or a stream, as the reader gave them (times resolved). */
const filters = z.strictObject({
  action: z.array(text(fieldLimits.action)).max(50).optional(),
  actor_id: text(fieldLimits.actorId).optional(),
  object_type: text(fieldLimits.objectType).optional(),
  object_id: text(fieldLimits.objectId).optional(),
  request_id: text(fieldLimits.requestId).optional(),
  status: z.enum(eventStatuses).optional(),
  since: time.optional(),
  until: time.optional(),
});

export const selfAuditActions = [
  {
    name: 'activity.events.read',
    description: 'A page or a whole listing of the tenant’s events was read (one event per request).',
    metadata: {
      kind: z.enum(['page', 'all']),
      filters,
      /** The page went on from a cursor. */
      cursor: z.boolean(),
      returned: count,
    },
  },
  {
    name: 'activity.stream.opened',
    description: 'A live stream of the tenant’s events (SSE or `tail`) was opened.',
    metadata: { filters, after_seq: seq.nullable() },
  },
  {
    name: 'activity.stream.closed',
    description: 'A live stream of the tenant’s events ended.',
    metadata: { filters, duration_ms: count, delivered: count },
  },
  {
    name: 'activity.access.denied',
    description:
      'A request with a token of this tenant was refused (401 or 403); `suppressed` counts the denials not recorded before it.',
    metadata: {
      http_status: z.union([z.literal(401), z.literal(403)]),
      reason: text(256),
      method: text(16),
      route: text(128),
      suppressed: count,
    },
  },
  {
    name: 'activity.events.purged',
    description: 'A purge run removed the tenant’s events past retention (one event per tenant per run).',
    metadata: {
      from_seq: seq,
      through_seq: seq,
      deleted: count,
      rule: z.enum(['default', 'policy']),
      cutoff: time,
      purged_at: time,
    },
  },
  {
    name: 'activity.retention.changed',
    description: 'The tenant’s retention policy was set, changed or cleared (null: the default applies).',
    metadata: {
      retention_days: z.number().int().positive().nullable(),
      previous_days: z.number().int().positive().nullable(),
    },
  },
  {
    name: 'activity.hold.placed',
    description:
      'A legal hold was placed on the tenant (or its reason changed): nothing is purged while it stands.',
    metadata: { reason: text(1000).nullable(), placed_at: time },
  },
  {
    name: 'activity.hold.lifted',
    description: 'The tenant’s legal hold was lifted.',
    metadata: { placed_at: time },
  },
  {
    name: 'activity.checkpoint.signed',
    description:
      'A checkpoint of the tenant’s tree was signed: its size and root (base64), as the signed note says.',
    metadata: { tree_size: seq, root_hash: z.base64().length(44) },
  },
  {
    name: 'activity.events.exported',
    description: 'A bundle of the tenant’s events, with what proves them, was exported.',
    metadata: { from_seq: seq, through_seq: seq, events: count, tree_size: seq },
  },
] as const satisfies readonly { name: string; description: string; metadata: z.ZodRawShape }[];

export type SelfAuditAction = (typeof selfAuditActions)[number]['name'];
