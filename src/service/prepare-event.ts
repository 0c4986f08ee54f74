import { v7 as uuidv7 } from 'uuid';
import { metadataCapIssues } from '../domain/caps.js';
import { ActivityError, type FieldIssue } from '../domain/errors.js';
import { type ActorType, type EventStatus, fieldLimits, type NewActivityEvent } from '../domain/event.js';
import { keepMetadataJson } from '../domain/event-json.js';
import { describeIssues, toFieldIssues } from '../domain/field-issues.js';
import { type ParsedRecordInput, recordInputSchema, tenantIdSchema } from '../domain/inputs.js';
import { quickRecordInput } from '../domain/quick-record-input.js';
import { IpHasher, normalizeIp } from '../privacy/ip-hash.js';
import type { DerivedKeys } from '../privacy/keys.js';
import { identifierProblem, scrubMetadata, scrubText } from '../privacy/scrub.js';
import { type ObjectShape, objectShapeOf } from '../registry/metadata-shape.js';
import type { Registry } from '../registry/registry.js';
import type { SelfAuditAction } from '../registry/self-audit-actions.js';
import { type QuickMetadata, quickMetadata } from './quick-metadata.js';

/**
 * One of the tool's own events as AuditTrail builds it: typed, and its identifiers
 * already left out (null) where an event could not store them.
 */
export interface OwnEventInput {
  id?: string;
  tenant_id: string;
  action: SelfAuditAction;
  actor_type: ActorType;
  actor_id: string | null;
  status: EventStatus;
  source: string;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  metadata: Record<string, unknown>;
}

/**
 * Turns a caller's input into the event to store: the schema, the caps, the action
 * registry, secrets scrubbed and the IP hashed. Pure but for the ids it generates.
 */
export class EventPreparer {
  readonly registry: Registry;
  /** Absent where nothing recorded carries an IP (`purge`, `retention`, `hold` on PostgreSQL without a secret). */
  readonly #ipHasher: IpHasher | undefined;
  /** Each action's metadata shape, or null where it has none (see metadata-shape.ts). */
  readonly #shapes = new Map<string, ObjectShape | null>();
  /** Prepared events whose id was generated here: new by construction, never looked up. */
  readonly #generatedIds = new WeakSet<NewActivityEvent>();

  constructor(registry: Registry, keys: DerivedKeys | undefined) {
    this.registry = registry;
    this.#ipHasher = keys === undefined ? undefined : new IpHasher(keys.ipHash);
  }

  /**
   * Validates one input (schema, caps, action registry), scrubs secrets and hashes
   * the IP: what `record` would store, or an ActivityError naming the field. An action
   * of the reserved `activity.*` namespace is ACTION_RESERVED: only the tool records
   * those, through prepareOwn.
   */
  prepare(input: unknown): NewActivityEvent {
    const fields = quickRecordInput(input) ?? parseRecordInput(input);
    if (this.registry.assertKnown(fields.action).reserved) {
      throw new ActivityError(
        'ACTION_RESERVED',
        `action "${fields.action}" is reserved: the tool records activity.* events of itself, and no caller may`,
        { issues: [{ path: 'action', message: 'is reserved for the events the tool records of itself' }] },
      );
    }
    return this.#prepareFields(fields);
  }

  /**
   * One of the tool's own `activity.*` events (see AuditTrail). Its fields are typed
   * and built by the tool, so the envelope schema is not run again; everything that
   * guards the log still is: the tenant id, no secret in an identifier, the caps, the
   * action's schema, scrubbing, the IP hashed. Any other action is refused: this path
   * records the reserved namespace only.
   */
  prepareOwn(input: OwnEventInput): NewActivityEvent {
    if (!this.registry.assertKnown(input.action).reserved) {
      throw new ActivityError('INTERNAL', `"${input.action}" is not one of the tool's own actions`);
    }
    if (!tenantIdSchema.safeParse(input.tenant_id).success) {
      throw validationError([
        { path: 'tenant_id', message: 'must be 1–128 characters of A-Z a-z 0-9 . _ : -' },
      ]);
    }
    return this.#prepareFields({ ...input, object_type: null, object_id: null });
  }

  #prepareFields(fields: ParsedRecordInput): NewActivityEvent {
    const { ip, metadata } = fields;
    const identifierIssues = secretIdentifierIssues(fields);
    if (identifierIssues.length > 0) throw validationError(identifierIssues);
    const quick = this.#quickMetadata(fields.action, metadata);
    if (quick) keepMetadataJson(quick.value, quick.json);
    const storedMetadata = quick?.value ?? this.#checkedMetadata(fields.action, metadata);
    const userAgent = fields.user_agent === null ? null : scrubText(fields.user_agent);
    if (userAgent !== null && userAgent.length > fieldLimits.userAgent) {
      throw validationError([
        { path: 'user_agent', message: 'is over its cap once IP addresses are replaced' },
      ]);
    }
    let ipHash: string | null = null;
    if (ip !== null) {
      ipHash = this.#ipHasher?.hash(ip) ?? null;
      if (ipHash === null) {
        if (normalizeIp(ip) === undefined)
          throw validationError([{ path: 'ip', message: 'is not an IP address' }]);
        throw new ActivityError('CONFIG_INVALID', 'ACTIVITY_SECRET is required to hash an IP address');
      }
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
      metadata: storedMetadata,
    };
    if (fields.id === undefined) this.#generatedIds.add(event);
    return event;
  }

  /** Whether `event`'s id was generated here (so no stored event can have it). */
  hasGeneratedId(event: NewActivityEvent): boolean {
    return this.#generatedIds.has(event);
  }

  /**
   * The metadata as stored, by the general path: the caps, the action's schema, then
   * scrubbing, each refusal worded by the step that makes it.
   */
  #checkedMetadata(action: string, metadata: unknown): Record<string, unknown> {
    const capIssues = metadataCapIssues(metadata);
    if (capIssues.length > 0) throw validationError(capIssues);
    const scrubbed = scrubMetadata(this.#validateMetadata(action, metadata as Record<string, unknown>));
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
    return scrubbedMetadata;
  }

  /**
   * The metadata as stored, checked in one walk where it is the common case (see
   * quickMetadata); undefined where the general path must decide.
   */
  #quickMetadata(action: string, metadata: unknown): QuickMetadata | undefined {
    let shape = this.#shapes.get(action);
    if (shape === undefined) {
      const schema = this.registry.get(action)?.schema;
      shape = (schema && objectShapeOf(schema)) ?? null;
      this.#shapes.set(action, shape);
    }
    return shape === null ? undefined : quickMetadata(shape, metadata);
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

/** The envelope by its schema, or the refusal it words. */
function parseRecordInput(input: unknown): ParsedRecordInput {
  const parsed = recordInputSchema.safeParse(input);
  if (!parsed.success) throw validationError(toFieldIssues(parsed.error));
  return parsed.data;
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
