import { z } from 'zod';
import { textProblem } from './caps.js';
import { ActivityError } from './errors.js';
import { actorTypes, eventStatuses, fieldLimits, tenantIdPattern } from './event.js';

/**
 * Input schemas shared by the CLI, the HTTP server and the library, so that the
 * contracts cannot drift. Field names are those of the JSON shape.
 */

/**
 * A string that can be stored: bounded, no NUL, well-formed UTF-16. (A refine, not a
 * superRefine: that one costs a closure per field per event, and a bulk import parses
 * millions of fields; the problem is worked out again only for the message.)
 */
export function storableText(maxLength: number) {
  return z.string().refine((value) => textProblem(value, maxLength) === undefined, {
    error: (issue) => textProblem(String(issue.input), maxLength),
  });
}

const optionalText = (maxLength: number) =>
  storableText(maxLength)
    .nullish()
    .transform((value) => value ?? null);

export const tenantIdSchema = z
  .string()
  .regex(tenantIdPattern, 'must be 1–128 characters of A-Z a-z 0-9 . _ : -');

/** One event to record, as a caller sends it (`ip`, never `ip_hash`). */
export const recordInputSchema = z.strictObject({
  id: z
    .uuid('must be a UUID')
    .transform((value) => value.toLowerCase())
    .optional(),
  tenant_id: tenantIdSchema,
  action: storableText(fieldLimits.action).pipe(z.string().min(1, 'is required')),
  actor_type: z.enum(actorTypes).default('user'),
  actor_id: optionalText(fieldLimits.actorId),
  object_type: optionalText(fieldLimits.objectType),
  object_id: optionalText(fieldLimits.objectId),
  status: z.enum(eventStatuses).default('success'),
  source: optionalText(fieldLimits.source),
  request_id: optionalText(fieldLimits.requestId),
  ip: optionalText(fieldLimits.ip),
  user_agent: optionalText(fieldLimits.userAgent),
  // Checked against the caps and the action's schema by the service, in that order.
  metadata: z.unknown().default({}),
});

export type RecordInput = z.input<typeof recordInputSchema>;
export type ParsedRecordInput = z.output<typeof recordInputSchema>;

const relativeTimePattern = /^(\d{1,6})(s|m|h|d|w|y)$/;
/** Built once: building it took about 40 µs, twice a page with a time window. */
const rfc3339Schema = z.iso.datetime({ offset: true });
const dateSchema = z.iso.date();

/**
 * RFC 3339, a date (`2026-01-31`, midnight UTC), or a relative age such as `15m`,
 * `24h`, `7d`, `1y` (365 days) meaning "that long ago".
 */
export const timeInputSchema = z
  .string()
  .refine(
    (value) =>
      relativeTimePattern.test(value) ||
      rfc3339Schema.safeParse(value).success ||
      dateSchema.safeParse(value).success,
    'must be RFC 3339 (2026-01-31T12:00:00Z), a date (2026-01-31, UTC) or an age like 15m, 24h, 7d, 1y',
  );

const unitMs = {
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 365 * 86_400_000,
} as const;

/** Resolves a time input against `now`. */
export function resolveTime(value: string, now: Date): Date {
  const relative = relativeTimePattern.exec(value);
  if (relative) {
    const unit = relative[2] as keyof typeof unitMs;
    return new Date(now.getTime() - Number(relative[1]) * unitMs[unit]);
  }
  return new Date(value.length === 10 ? `${value}T00:00:00.000Z` : value);
}

/** What every store and the RFC 3339 text of a time can hold: the years 1 to 9999, UTC. */
const earliestTimeMs = Date.parse('0001-01-01T00:00:00.000Z');
const latestTimeMs = Date.parse('9999-12-31T23:59:59.999Z');

/** Resolves the time input `field` against `now`; PARAMETER_INVALID outside the years 1 to 9999. */
export function resolveTimeInput(field: string, value: string, now: Date): Date {
  const time = resolveTime(value, now);
  const ms = time.getTime();
  if (!(ms >= earliestTimeMs && ms <= latestTimeMs)) {
    throw new ActivityError('PARAMETER_INVALID', `${field}: must fall between the years 1 and 9999`, {
      issues: [{ path: field, message: 'must fall between the years 1 and 9999' }],
    });
  }
  return time;
}

/** A duration such as `365d` or `12h`, in milliseconds. */
export function parseDuration(value: string): number | undefined {
  const match = relativeTimePattern.exec(value);
  return match ? Number(match[1]) * unitMs[match[2] as keyof typeof unitMs] : undefined;
}

/**
 * `auth.login.success`, `auth.*`, `auth.login.*`, or a comma list of them; `*` alone is
 * every event, the tool's own `activity.*` events included (what a verifier recomputing
 * the tree needs).
 */
const actionFilterPattern = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){0,2}(\.\*)?)$/;

export const actionFilterSchema = z
  .string()
  .max(2048)
  .transform((value) => value.split(',').map((part) => part.trim()))
  .pipe(
    z
      .array(
        z
          .string()
          .max(fieldLimits.action, `an action is at most ${fieldLimits.action} characters`)
          .regex(actionFilterPattern, 'must be action names or prefixes like auth.* (comma separated), or *')
          .refine(
            (part) => part === '*' || part.endsWith('.*') || part.split('.').length === 3,
            'an exact action has three parts (namespace.object.verb); end a prefix with .*',
          ),
      )
      .min(1)
      .max(50),
  );

export const queryFilterShape = {
  action: actionFilterSchema.optional(),
  actor_id: storableText(fieldLimits.actorId).optional(),
  object_type: storableText(fieldLimits.objectType).optional(),
  object_id: storableText(fieldLimits.objectId).optional(),
  request_id: storableText(fieldLimits.requestId).optional(),
  status: z.enum(eventStatuses).optional(),
  since: timeInputSchema.optional(),
  until: timeInputSchema.optional(),
};

/** A page's `limit`: a whole number from 1 to `max`, said so whatever is wrong with it. */
export function pageLimit(max: number) {
  const message = `must be a whole number from 1 to ${max}`;
  // Digits only: Number() would also read 0x10, 1e2, +5 and " 5" as numbers.
  return z.preprocess(
    (value) => (typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value),
    z.number({ error: message }).int(message).min(1, message).max(max, message),
  );
}

/** One page of a query; the HTTP route uses the same schema with a lower `limit` cap. */
export const queryInputSchema = z.strictObject({
  ...queryFilterShape,
  limit: pageLimit(1000).default(50),
  cursor: z.string().min(1).max(1024).optional(),
});

export type QueryInput = z.input<typeof queryInputSchema>;
export type ParsedQueryInput = z.output<typeof queryInputSchema>;
