import { z } from 'zod';
import { errorCodes } from '../domain/errors.js';
import {
  actorTypes,
  eventFields,
  eventStatuses,
  fieldLimits,
  optionalTextLimits,
  tenantIdPattern,
} from '../domain/event.js';
import { recordInputSchema } from '../domain/inputs.js';
import {
  consistencyParamsSchema,
  listParamsSchema,
  maxBatch,
  proofParamsSchema,
  streamParamsSchema,
  streamPath,
} from './parameters.js';

/**
 * The OpenAPI 3.1 document of the HTTP API, served at GET /api/v1/openapi.json. The
 * request body and the query parameters come from the zod schemas the routes parse
 * with; the answers are written out here, and the HTTP tests check every answer they
 * see against them (test/helpers/openapi-contract.ts), so neither can drift.
 */
export function openApiDocument(version: string): Record<string, unknown> {
  const document = describedDocument(version);
  for (const [path, item] of Object.entries(document.paths)) {
    if (item.get && path !== streamPath) item.head = headOf(item.get);
  }
  return document;
}

/** HEAD of a GET operation: its answers' statuses and headers, no body. */
function headOf(get: Operation): Operation {
  const responses: Record<string, unknown> = {};
  for (const [status, answer] of Object.entries(get.responses)) {
    const { content: _body, ...rest } = answer as Record<string, unknown>;
    responses[status] = rest;
  }
  return {
    ...get,
    operationId: `${String(get.operationId)}Head`,
    summary: `The headers of ${String(get.operationId)}, without its body`,
    responses,
  };
}

interface Operation {
  operationId?: unknown;
  responses: Record<string, unknown>;
  [key: string]: unknown;
}

function describedDocument(version: string): Record<string, unknown> & {
  paths: Record<string, Record<string, Operation>>;
} {
  return {
    openapi: '3.1.0',
    info: {
      title: 'activity',
      version,
      summary: 'A tenant-scoped audit trail: record, query, stream and prove activity.',
      description:
        'A token reads and writes its own tenant only. Errors are RFC 9457 problem details with a stable `code`. See docs/api.md.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    security: [{ bearer: [] }],
    paths: {
      '/api/v1/activity': {
        get: {
          operationId: 'listEvents',
          summary: 'A page of the tenant’s events, newest first',
          description:
            'Pass `next_cursor` as `cursor`, with the same filters, for the next page; `null` means the last page. The tool’s own `activity.*` events are left out unless `action` names them.',
          parameters: queryParameters(listParamsSchema, parameterDescriptions),
          responses: {
            200: jsonAnswer('A page of events', ref('EventPage')),
            ...problems(400, 401, 403, 503),
          },
        },
        post: {
          operationId: 'recordEvents',
          summary: 'Record one event, or a batch of one tenant all-or-nothing',
          description:
            'The tenant comes from the token; a body whose `tenant_id` differs is 403. An `id` already stored answers 201 with the stored event (an idempotent retry). The body is at most 1 MiB.',
          security: [{ bearer: [] }],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  oneOf: [
                    ref('EventInput'),
                    { type: 'array', items: ref('EventInput'), minItems: 1, maxItems: maxBatch },
                  ],
                },
              },
            },
          },
          responses: {
            201: jsonAnswer('The stored event, or `{"data":[…]}` for a batch, in order', {
              oneOf: [ref('Event'), ref('EventBatch')],
            }),
            ...problems(400, 401, 403, 413, 415, 422, 503),
          },
        },
      },
      '/api/v1/activity/stream': {
        get: {
          operationId: 'streamEvents',
          summary: 'Server-Sent Events: the matching events as they commit',
          description:
            'Each frame is `id: <seq>`, `event: activity`, `data: <event JSON>`. With `Last-Event-ID: N` (or `after=N`) the events after N are replayed first, with no gap and no duplicate. `event: close` with `{"reason":"slow"|"expired"}` ends a stream.',
          security: [{ bearer: [] }, { accessTokenQuery: [] }],
          parameters: [
            ...queryParameters(streamParamsSchema, parameterDescriptions),
            {
              name: 'Last-Event-ID',
              in: 'header',
              required: false,
              description: 'Resume after this seq (EventSource sends it by itself when it reconnects).',
              schema: { type: 'string', pattern: '^\\d{1,15}$' },
            },
          ],
          responses: {
            200: {
              description: 'The stream; headers are sent at once',
              content: { 'text/event-stream': { schema: { type: 'string' } } },
            },
            ...problems(400, 401, 403, 404, 429, 503),
          },
        },
      },
      '/api/v1/activity/actions': {
        get: {
          operationId: 'listActions',
          summary: 'The action registry, each with the JSON Schema of its metadata',
          responses: {
            200: jsonAnswer('Every action; `reserved` marks those only the tool records', ref('ActionList')),
            ...problems(400, 401, 403),
          },
        },
      },
      '/api/v1/activity/checkpoint': {
        get: {
          operationId: 'latestCheckpoint',
          summary: 'The tenant’s latest signed checkpoint (a C2SP signed note)',
          responses: {
            200: {
              description: 'The checkpoint note',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...problems(400, 401, 403, 404, 503),
          },
        },
      },
      '/api/v1/activity/proof': {
        get: {
          operationId: 'inclusionProof',
          summary: 'The RFC 9162 inclusion proof of one event',
          parameters: queryParameters(proofParamsSchema, parameterDescriptions),
          responses: {
            200: jsonAnswer(
              'The proof, checked against the signed root before it is sent',
              ref('InclusionProof'),
            ),
            ...problems(400, 401, 403, 404, 503),
          },
        },
      },
      '/api/v1/activity/consistency': {
        get: {
          operationId: 'consistencyProof',
          summary: 'The RFC 9162 consistency proof between two checkpoints',
          parameters: queryParameters(consistencyParamsSchema, parameterDescriptions),
          responses: {
            200: jsonAnswer('The proof', ref('ConsistencyProof')),
            ...problems(400, 401, 403, 404, 503),
          },
        },
      },
      '/api/v1/openapi.json': {
        get: {
          operationId: 'openApiDocument',
          summary: 'This document',
          security: [],
          responses: { 200: jsonAnswer('The OpenAPI 3.1 document', { type: 'object' }), ...problems() },
        },
      },
      '/metrics': {
        get: {
          operationId: 'metrics',
          summary: 'Prometheus metrics (no token: bind to loopback or an internal interface)',
          security: [],
          responses: {
            200: {
              description: 'Prometheus text format',
              content: { 'text/plain': { schema: { type: 'string' } } },
            },
            ...problems(),
          },
        },
      },
      '/healthz': {
        get: {
          operationId: 'liveness',
          summary: 'The process is up',
          security: [],
          responses: { 200: jsonAnswer('Up', status('ok')), ...problems() },
        },
      },
      '/readyz': {
        get: {
          operationId: 'readiness',
          summary: 'The database answers and is migrated',
          security: [],
          responses: { 200: jsonAnswer('Ready', status('ready')), ...problems(503) },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            'Claims `tenant_id`, `sub`, `exp`, and `scope` (`activity:read`, `activity:write`) and/or `role` (`owner`, `admin` read). Mint one with `activity token`.',
        },
        accessTokenQuery: {
          type: 'apiKey',
          in: 'query',
          name: 'access_token',
          description:
            'The token in the URL, for EventSource, which cannot set headers: the stream route only.',
        },
      },
      schemas: {
        Event: eventSchema,
        EventInput: eventInputSchema(),
        EventPage: {
          type: 'object',
          required: ['data', 'next_cursor'],
          additionalProperties: false,
          properties: {
            data: { type: 'array', items: ref('Event') },
            next_cursor: { type: ['string', 'null'] },
          },
        },
        EventBatch: {
          type: 'object',
          required: ['data'],
          additionalProperties: false,
          properties: { data: { type: 'array', items: ref('Event') } },
        },
        ActionList: {
          type: 'object',
          required: ['actions'],
          additionalProperties: false,
          properties: {
            actions: {
              type: 'array',
              items: {
                type: 'object',
                required: ['name', 'namespace', 'description', 'schema', 'reserved'],
                additionalProperties: false,
                properties: {
                  name: { type: 'string' },
                  namespace: { type: 'string' },
                  description: { type: 'string' },
                  schema: { type: 'object', description: 'The JSON Schema of the action’s metadata' },
                  reserved: { type: 'boolean' },
                },
              },
            },
          },
        },
        InclusionProof: {
          type: 'object',
          required: ['tenant_id', 'seq', 'tree_size', 'leaf_hash', 'proof', 'checkpoint'],
          additionalProperties: false,
          properties: {
            tenant_id: { type: 'string' },
            seq: { type: 'integer', minimum: 1 },
            tree_size: { type: 'integer', minimum: 1 },
            leaf_hash: hashSchema,
            proof: { type: 'array', items: hashSchema },
            checkpoint: { type: 'string', description: 'The signed note the proof is against' },
          },
        },
        ConsistencyProof: {
          type: 'object',
          required: ['from', 'to', 'proof'],
          additionalProperties: false,
          properties: {
            from: { type: 'integer', minimum: 1 },
            to: { type: 'integer', minimum: 1 },
            proof: { type: 'array', items: hashSchema },
          },
        },
        Problem: {
          type: 'object',
          description: 'RFC 9457 problem details; never SQL, a stack trace, or another tenant’s data',
          required: ['type', 'title', 'status', 'detail', 'code'],
          additionalProperties: false,
          properties: {
            type: { const: 'about:blank' },
            title: { type: 'string' },
            status: { type: 'integer' },
            detail: { type: 'string' },
            code: { enum: Object.keys(errorCodes) },
          },
        },
      },
    },
  };
}

const nullableText = (maxLength: number) => ({ type: ['string', 'null'], maxLength });

const eventSchema = {
  type: 'object',
  additionalProperties: false,
  required: [...eventFields],
  properties: {
    id: { type: 'string', format: 'uuid' },
    tenant_id: { type: 'string', pattern: tenantIdPattern.source },
    seq: { type: 'integer', minimum: 1, description: 'Gapless per tenant, from 1' },
    action: { type: 'string', maxLength: fieldLimits.action },
    actor_type: { enum: [...actorTypes] },
    actor_id: nullableText(fieldLimits.actorId),
    object_type: nullableText(fieldLimits.objectType),
    object_id: nullableText(fieldLimits.objectId),
    status: { enum: [...eventStatuses] },
    source: nullableText(fieldLimits.source),
    request_id: nullableText(fieldLimits.requestId),
    ip_hash: {
      type: ['string', 'null'],
      pattern: '^[0-9a-f]{64}$',
      description: 'HMAC-SHA256 of the normalised address; the address itself is never stored',
    },
    user_agent: nullableText(fieldLimits.userAgent),
    metadata: { type: 'object', description: 'As the action’s schema declares; secrets scrubbed' },
    created_at: { type: 'string', format: 'date-time' },
  },
};

/** The caps the routes enforce past the schema (in the service): in the document too. */
const inputLengths: Record<string, number> = { action: fieldLimits.action, ...optionalTextLimits };

/** What a caller sends: the record schema, the tenant optional (the token names it). */
function eventInputSchema(): Record<string, unknown> {
  const schema = jsonSchemaOf(recordInputSchema.partial({ tenant_id: true }));
  const properties = schema.properties as Record<string, Record<string, unknown>>;
  for (const [name, maxLength] of Object.entries(inputLengths)) {
    properties[name] = { ...properties[name], maxLength };
  }
  properties.ip = { ...properties.ip, description: 'Stored only as its keyed hash (`ip_hash`)' };
  properties.metadata = {
    type: 'object',
    default: {},
    description: 'As the action’s schema declares (GET /api/v1/activity/actions); at most 8 KiB of JSON',
  };
  return schema;
}

const parameterDescriptions: Record<string, string> = {
  action:
    'Exact names, `ns.*` prefixes, `*` (every action, the tool’s own `activity.*` included), or a comma list of them',
  since:
    'Inclusive: RFC 3339, a date (`2026-01-31`, midnight UTC), or an age such as `15m`, `24h`, `7d`, `1y`',
  until: 'Exclusive; the same forms as `since`',
  limit: 'Events per page, 1 to 200 (default 50)',
  cursor: 'The `next_cursor` of the previous page, with the same filters',
  after: 'Resume after this seq, as `Last-Event-ID` does',
  seq: 'The event’s seq',
  size: 'Prove against the checkpoint of this tree size (default: the latest)',
  from: 'The older checkpoint’s tree size',
  to: 'The newer checkpoint’s tree size',
};

/** One query parameter per property of a route's zod schema. */
function queryParameters(schema: z.ZodType, descriptions: Record<string, string>) {
  const json = jsonSchemaOf(schema);
  const properties = json.properties as Record<string, Record<string, unknown>>;
  const required = new Set((json.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, property]) => ({
    name,
    in: 'query',
    required: required.has(name),
    ...(descriptions[name] === undefined ? {} : { description: descriptions[name] }),
    schema: property,
  }));
}

function jsonSchemaOf(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  return rest;
}

const hashSchema = {
  type: 'string',
  contentEncoding: 'base64',
  pattern: '^[A-Za-z0-9+/]{43}=$',
  description: 'SHA-256, standard base64',
};

function ref(name: string) {
  return { $ref: `#/components/schemas/${name}` };
}

function status(value: string) {
  return {
    type: 'object',
    required: ['status'],
    additionalProperties: false,
    properties: { status: { const: value } },
  };
}

function jsonAnswer(description: string, schema: Record<string, unknown>) {
  return { description, content: { 'application/json': { schema } } };
}

const problemDescriptions: Record<number, string> = {
  400: 'A bad, unknown or repeated parameter, a bad cursor, or a body that is not JSON',
  401: 'No token, or a malformed, expired, wrongly signed or unsupported one',
  403: 'The token lacks the scope, or names another tenant than the body',
  404: 'Not found (no checkpoint yet, or the stream turned off)',
  413: 'The body is over 1 MiB',
  415: 'The Content-Type is not JSON (`application/json`, or a type ending in `+json`)',
  422: 'An event does not validate, names an unknown action, or one only the tool records',
  429: 'Too many open streams for the tenant',
  500: 'A bug, or stored hashes that no longer prove a signed root (INTEGRITY_FAILED)',
  503: 'The database is unavailable, busy or not migrated, the server holds too many connections, or it is stopping',
};

/** The problem answers of an operation; 500 and 503 may come from any route. */
function problems(...statuses: number[]) {
  const answers: Record<number, unknown> = {};
  for (const code of new Set([...statuses, 500, 503])) {
    answers[code] = {
      description: problemDescriptions[code],
      ...(code === 429 || code === 503
        ? { headers: { 'Retry-After': { description: 'Seconds', schema: { type: 'integer' } } } }
        : {}),
      content: { 'application/problem+json': { schema: ref('Problem') } },
    };
  }
  return answers;
}
