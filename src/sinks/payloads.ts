import type { ActivityEvent } from '../domain/event.js';
import { eventJson } from '../domain/event-json.js';
import type { SinkPayload } from '../domain/sink.js';
import { type OcsfProduct, toOcsf } from './ocsf.js';

/** A batch as one POST's body. */
export interface DeliveryBody {
  contentType: string;
  body: string;
}

/**
 * One tenant's events as the body of one delivery, in seq order, each with its id and
 * seq (a receiver dedupes by id and finds a gap by seq):
 * - `ndjson`: the event JSON of the API, a line each;
 * - `cloudevents`: a CloudEvents 1.0 JSON batch, `type` the action, `data` the event,
 *   the tenant and seq as the extensions `activitytenant` and `activityseq`;
 * - `ocsf`: a JSON array of OCSF events (see ocsf.ts).
 */
export function deliveryBody(
  payload: SinkPayload,
  events: readonly ActivityEvent[],
  product: OcsfProduct,
): DeliveryBody {
  switch (payload) {
    case 'ndjson':
      return {
        contentType: 'application/x-ndjson',
        body: events.map((event) => `${eventJson(event)}\n`).join(''),
      };
    case 'cloudevents':
      return {
        contentType: 'application/cloudevents-batch+json',
        body: JSON.stringify(events.map((event) => toCloudEvent(event, product))),
      };
    case 'ocsf':
      return {
        contentType: 'application/json',
        body: JSON.stringify(events.map((event) => toOcsf(event, product))),
      };
  }
}

function toCloudEvent(event: ActivityEvent, product: OcsfProduct): Record<string, unknown> {
  return {
    specversion: '1.0',
    id: event.id,
    source: `/${product.name}/tenants/${encodeURIComponent(event.tenant_id)}`,
    type: event.action,
    time: event.created_at,
    ...(event.object_id === null ? {} : { subject: event.object_id }),
    datacontenttype: 'application/json',
    activitytenant: event.tenant_id,
    activityseq: event.seq,
    data: event,
  };
}
