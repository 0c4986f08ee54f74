import type { ActivityEvent } from '../domain/event.js';
import { ocsfClasses, ocsfClassOf, ocsfVersion } from '../registry/ocsf-mapping.js';

/** The product every OCSF event names in `metadata.product`. */
export interface OcsfProduct {
  name: string;
  vendor_name: string;
  version: string;
}

const statusIds = { success: 1, failure: 2, pending: 99 } as const;

/**
 * An event as OCSF 1.3.0 (Authentication, Account Change or API Activity; see
 * ocsf-mapping.ts). Only OCSF's own attributes are set; what OCSF has no place for
 * (tenant, seq, source, object, the event's metadata) is kept under `unmapped`, and
 * the tenant and seq also in `metadata.tenant_uid` and `metadata.sequence`. The IP is
 * the keyed hash the log keeps, as `src_endpoint.uid`: never an address made up.
 */
export function toOcsf(event: ActivityEvent, product: OcsfProduct): Record<string, unknown> {
  const { classUid, activityId, activityName } = ocsfClassOf(event.action);
  const type = ocsfClasses[classUid];
  const subject = userOf(event);
  const ocsf: Record<string, unknown> = {
    activity_id: activityId,
    activity_name: activityName,
    category_uid: type.categoryUid,
    category_name: type.categoryName,
    class_uid: classUid,
    class_name: type.name,
    type_uid: classUid * 100 + activityId,
    type_name: `${type.name}: ${activityName}`,
    time: Date.parse(event.created_at),
    severity_id: event.status === 'failure' ? 2 : 1,
    status_id: statusIds[event.status],
    ...(event.status === 'pending' ? { status: 'Pending' } : {}),
    metadata: {
      uid: event.id,
      version: ocsfVersion,
      product,
      tenant_uid: event.tenant_id,
      sequence: event.seq,
      event_code: event.action,
      ...(event.request_id === null ? {} : { correlation_uid: event.request_id }),
      profiles: [],
    },
    src_endpoint: event.ip_hash === null ? { name: 'unknown' } : { uid: event.ip_hash },
    ...(event.user_agent === null ? {} : { http_request: { user_agent: event.user_agent } }),
    unmapped: {
      tenant_id: event.tenant_id,
      seq: event.seq,
      source: event.source,
      actor_type: event.actor_type,
      object_type: event.object_type,
      object_id: event.object_id,
      metadata: event.metadata,
    },
  };
  if (classUid === 3002) {
    ocsf.user = subject;
    // Authentication names the service signed in to (or where): here, the event's source.
    ocsf.service = { name: event.source ?? product.name };
    if (typeof event.metadata.mfa === 'boolean') ocsf.is_mfa = event.metadata.mfa;
  } else if (classUid === 3001) {
    ocsf.actor = { user: subject };
    ocsf.user = accountOf(event, subject);
  } else {
    ocsf.actor =
      event.actor_type === 'system' ? { app_name: event.source ?? product.name } : { user: subject };
    ocsf.api = {
      operation: event.action,
      ...(event.request_id === null ? {} : { request: { uid: event.request_id } }),
    };
    if (event.object_id !== null || event.object_type !== null) {
      ocsf.resources = [
        {
          ...(event.object_id === null ? {} : { uid: event.object_id }),
          ...(event.object_type === null ? {} : { type: event.object_type }),
        },
      ];
    }
  }
  return ocsf;
}

/** The actor as an OCSF user: its id and kind, or `unknown` where the event has no id. */
function userOf(event: ActivityEvent): Record<string, unknown> {
  const id = event.actor_id === null ? { name: 'unknown' } : { uid: event.actor_id };
  switch (event.actor_type) {
    case 'user':
      return { ...id, type_id: 1, type: 'User' };
    case 'system':
      return { ...id, type_id: 3, type: 'System' };
    case 'service_account':
      return { ...id, type_id: 99, type: 'Service Account' };
    case 'api_key':
      return { ...id, type_id: 99, type: 'API Key' };
  }
}

/** The account an Account Change changed: a service account, the event's object, else the actor's own. */
function accountOf(event: ActivityEvent, actor: Record<string, unknown>): Record<string, unknown> {
  const serviceAccount = event.metadata.service_account_id;
  if (typeof serviceAccount === 'string')
    return { uid: serviceAccount, type_id: 99, type: 'Service Account' };
  return event.object_id === null ? actor : { uid: event.object_id, type_id: 0, type: 'Unknown' };
}
