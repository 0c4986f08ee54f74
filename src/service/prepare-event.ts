import { v7 as uuidv7 } from 'uuid';
import { metadataCapIssues } from '../domain/caps.js';
import { ActivityError, type FieldIssue } from '../domain/errors.js';
import { fieldLimits, type NewActivityEvent } from '../domain/event.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import { recordInputSchema } from '../domain/inputs.js';
import { hashIp, normalizeIp } from '../privacy/ip-hash.js';
import type { DerivedKeys } from '../privacy/keys.js';
import { identifierProblem, scrubMetadata, scrubText } from '../privacy/scrub.js';
import type { Registry } from '../registry/registry.js';

/**
 * Turns a caller's input into the event to store: the schema, the caps, the action
 * registry, secrets scrubbed and the IP hashed. Pure but for the ids it generates.
 */
export class EventPreparer {
  readonly registry: Registry;
  /** Absent where nothing recorded carries an IP (`purge`, `retention`, `hold` on PostgreSQL without a secret). */
  readonly #keys: DerivedKeys | undefined;
  /** Prepared events whose id was generated here: new by construction, never looked up. */
  readonly #generatedIds = new WeakSet<NewActivityEvent>();

  constructor(registry: Registry, keys: DerivedKeys | undefined) {
    this.registry = registry;
    this.#keys = keys;
  }

  /**
   * Validates one input (schema, caps, action registry), scrubs secrets and hashes
   * the IP: what `record` would store, or an ActivityError naming the field. An action
   * of the reserved `activity.*` namespace is ACTION_RESERVED unless `ownEvent` (the
   * tool recording itself, see AuditTrail).
   */
  prepare(input: unknown, ownEvent = false): NewActivityEvent {
    const parsed = recordInputSchema.safeParse(input);
    if (!parsed.success) throw validationError(toFieldIssues(parsed.error));
    const fields = parsed.data;
    const { ip, metadata } = fields;
    if (this.registry.assertKnown(fields.action).reserved && !ownEvent) {
      throw new ActivityError(
        'ACTION_RESERVED',
        `action "${fields.action}" is reserved: the tool records activity.* events of itself, and no caller may`,
        { issues: [{ path: 'action', message: 'is reserved for the events the tool records of itself' }] },
      );
    }
    const identifierIssues = secretIdentifierIssues(fields);
    if (identifierIssues.length > 0) throw validationError(identifierIssues);
    const capIssues = metadataCapIssues(metadata);
    if (capIssues.length > 0) throw validationError(capIssues);
    const scrubbed = scrubMetadata(
      this.#validateMetadata(fields.action, metadata as Record<string, unknown>),
    );
    if (scrubbed.issues.length > 0) throw validationError(scrubbed.issues);
    const scrubbedMetadata = scrubbed.value as Record<string, unknown>;
    // "[REDACTED]" or "[IP]" may be longer than what it replaced: the caps hold for
    // what is stored. Unchanged, the metadata was checked above.
    const scrubbedIssues = scrubbed.changed ? metadataCapIssues(scrubbedMetadata) : [];
    if (scrubbedIssues.length > 0) {
      throw validationError(
        scrubbedIssues.map((issue) => ({
          path: issue.path,
          message: `${issue.message} once secrets and IP addresses are replaced`,
        })),
      );
    }
    const userAgent = fields.user_agent === null ? null : scrubText(fields.user_agent);
    if (userAgent !== null && userAgent.length > fieldLimits.userAgent) {
      throw validationError([
        { path: 'user_agent', message: 'is over its cap once IP addresses are replaced' },
      ]);
    }
    let ipHash: string | null = null;
    if (ip !== null) {
      const normalized = normalizeIp(ip);
      if (normalized === undefined) throw validationError([{ path: 'ip', message: 'is not an IP address' }]);
      if (this.#keys === undefined) {
        throw new ActivityError('CONFIG_INVALID', 'ACTIVITY_SECRET is required to hash an IP address');
      }
      ipHash = hashIp(normalized, this.#keys.ipHash);
    }
    // Field by field, not spread: a spread made the event a slow dictionary object.
    const event: NewActivityEvent = {
      id: fields.id ?? uuidv7(),
      tenant_id: fields.tenant_id,
      action: fields.action,
      actor_type: fields.actor_type,
      actor_id: fields.actor_id,
      object_type: fields.object_type,
      object_id: fields.object_id,
      status: fields.status,
      source: fields.source,
      request_id: fields.request_id,
      ip_hash: ipHash,
      user_agent: userAgent,
      metadata: scrubbedMetadata,
    };
    if (fields.id === undefined) this.#generatedIds.add(event);
    return event;
  }

  /** Whether `event`'s id was generated here (so no stored event can have it). */
  hasGeneratedId(event: NewActivityEvent): boolean {
    return this.#generatedIds.has(event);
  }

  /**
   * The action's schema applied to the metadata. A refusal names undeclared keys, so
   * when a key holds a credential or an IP address that is reported instead, by path.
   */
  #validateMetadata(action: string, metadata: Record<string, unknown>): Record<string, unknown> {
    try {
      return this.registry.validateMetadata(action, metadata);
    } catch (error) {
      const keyIssues = scrubMetadata(metadata).issues;
      throw keyIssues.length > 0 ? validationError(keyIssues) : error;
    }
  }
}

/** The fields that identify and correlate: stored as given, so never with a secret in them. */
const identifierFields = [
  'tenant_id',
  'actor_id',
  'object_type',
  'object_id',
  'request_id',
  'source',
] as const;

/** Refuses identifiers that hold a credential or an IP address (see identifierProblem). */
function secretIdentifierIssues(
  fields: Record<(typeof identifierFields)[number], string | null>,
): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const field of identifierFields) {
    const value = fields[field];
    const problem = value === null ? undefined : identifierProblem(value);
    if (problem !== undefined) issues.push({ path: field, message: problem });
  }
  return issues;
}

export function validationError(issues: FieldIssue[]): ActivityError {
  return new ActivityError('VALIDATION_FAILED', describeIssues(issues), { issues });
}
