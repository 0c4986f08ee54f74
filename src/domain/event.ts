/** The event model shared by every layer (see docs/activity-log.md). */

export const actorTypes = ['user', 'service_account', 'system', 'api_key'] as const;
export type ActorType = (typeof actorTypes)[number];

export const eventStatuses = ['success', 'failure', 'pending'] as const;
export type EventStatus = (typeof eventStatuses)[number];

/** Maximum lengths of the string fields; over a cap is a validation error, never a truncation. */
export const fieldLimits = {
  tenantId: 128,
  action: 128,
  actorId: 256,
  objectType: 64,
  objectId: 256,
  source: 64,
  requestId: 128,
  userAgent: 512,
  ip: 64,
  metadataBytes: 8 * 1024,
  metadataDepth: 8,
  metadataString: 2048,
} as const;

/** The caps of the optional texts a caller sends, by their names in the JSON shape. */
export const optionalTextLimits = {
  actor_id: fieldLimits.actorId,
  object_type: fieldLimits.objectType,
  object_id: fieldLimits.objectId,
  source: fieldLimits.source,
  request_id: fieldLimits.requestId,
  ip: fieldLimits.ip,
  user_agent: fieldLimits.userAgent,
} as const;

export const tenantIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/** A stored event, exactly as the JSON shape of the public contract. */
export interface ActivityEvent {
  id: string;
  tenant_id: string;
  seq: number;
  action: string;
  actor_type: ActorType;
  actor_id: string | null;
  object_type: string | null;
  object_id: string | null;
  status: EventStatus;
  source: string | null;
  request_id: string | null;
  ip_hash: string | null;
  user_agent: string | null;
  metadata: Record<string, unknown>;
  created_at: string;
}

/** The fields of an event, in the order of the contract (CSV columns, table columns). */
export const eventFields = [
  'id',
  'tenant_id',
  'seq',
  'action',
  'actor_type',
  'actor_id',
  'object_type',
  'object_id',
  'status',
  'source',
  'request_id',
  'ip_hash',
  'user_agent',
  'metadata',
  'created_at',
] as const satisfies readonly (keyof ActivityEvent)[];

/** An event ready for storage: validated, scrubbed and hashed, without seq or time. */
export type NewActivityEvent = Omit<ActivityEvent, 'seq' | 'created_at'>;

/** The namespace of an action: its first dotted segment (`auth` of `auth.login.success`). */
export function namespaceOf(action: string): string {
  const dot = action.indexOf('.');
  return dot === -1 ? action : action.slice(0, dot);
}

/**
 * The reserved namespace: the events the tool records of its own use (reads, streams,
 * denials, purges, retention and holds, checkpoints, exports). No caller may record one.
 */
export const reservedNamespace = 'activity';

/**
 * The event a checkpoint run records after signing a tenant's tree: the one event a
 * new checkpoint need not cover (IntegrityRepository.uncheckpointed).
 */
export const checkpointSignedAction = `${reservedNamespace}.checkpoint.signed`;

/** Whether `action` is in the reserved namespace (`activity.…`). */
export function isReservedAction(action: string): boolean {
  return action.startsWith(`${reservedNamespace}.`);
}
