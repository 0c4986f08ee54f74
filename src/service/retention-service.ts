import { v7 as uuidv7 } from 'uuid';
import type { ActivityRepository } from '../domain/activity-repository.js';
import { textProblem } from '../domain/caps.js';
import { ActivityError, type FieldIssue } from '../domain/errors.js';
import { describeIssues } from '../domain/field-issues.js';
import { tenantIdSchema } from '../domain/inputs.js';
import type { LegalHold, RetentionPolicy, RetentionRepository } from '../domain/retention.js';
import { tenantIdProblem } from '../domain/tenant-id.js';
import { credentialIn, ipIn } from '../privacy/scrub.js';
import { type AuditActor, type AuditTrail, libraryActor } from './audit-trail.js';
import { type PurgeOptions, type PurgeProgress, type PurgeReport, purgeExpired } from './purge.js';

/** A hundred years: the longest retention a policy or a purge may name. */
export const maxRetentionDays = 36_500;
export const maxHoldReasonLength = 1000;

/**
 * Retention as a use case: tenant policies, legal holds and purge, with the checks
 * that keep what they store storable (a tenant id or a reason holding a secret is
 * refused, as a recorded event's would be). Errors are PARAMETER_INVALID with the
 * issue's path (`tenant_id`, `retention_days`, `reason`).
 *
 * Every change is recorded in the tenant's log (`activity.retention.changed`,
 * `activity.hold.placed`, `activity.hold.lifted`, `activity.events.purged`) as `actor`,
 * once it has committed.
 */
export class RetentionService {
  readonly #events: ActivityRepository;
  readonly #retention: RetentionRepository;
  readonly #audit: AuditTrail;

  constructor(stores: { events: ActivityRepository; retention: RetentionRepository; audit: AuditTrail }) {
    this.#events = stores.events;
    this.#retention = stores.retention;
    this.#audit = stores.audit;
  }

  policies(): Promise<RetentionPolicy[]> {
    return this.#retention.policies();
  }

  async setPolicy(
    tenantId: string,
    retentionDays: number,
    actor: AuditActor = libraryActor,
  ): Promise<RetentionPolicy> {
    assertValid([
      ...storedTenantIssues(tenantId),
      ...(Number.isInteger(retentionDays) && retentionDays >= 1 && retentionDays <= maxRetentionDays
        ? []
        : [{ path: 'retention_days', message: `must be a whole number from 1 to ${maxRetentionDays}` }]),
    ]);
    const { policy, previousDays } = await this.#retention.setPolicy(tenantId, retentionDays);
    if (previousDays !== retentionDays) {
      await this.#audit.retentionChanged(actor, tenantId, { retentionDays, previousDays });
    }
    return policy;
  }

  /** True when the tenant had a policy. */
  async clearPolicy(tenantId: string, actor: AuditActor = libraryActor): Promise<boolean> {
    assertValid(tenantIssues(tenantId));
    const previousDays = await this.#retention.clearPolicy(tenantId);
    if (previousDays === null) return false;
    await this.#audit.retentionChanged(actor, tenantId, { retentionDays: null, previousDays });
    return true;
  }

  holds(): Promise<LegalHold[]> {
    return this.#retention.holds();
  }

  /** A tenant already on hold keeps its first hold's time, with the new reason if one is given. */
  async placeHold(
    tenantId: string,
    reason: string | null,
    actor: AuditActor = libraryActor,
  ): Promise<LegalHold> {
    assertValid([...storedTenantIssues(tenantId), ...(reason === null ? [] : reasonIssues(reason))]);
    const { hold, changed } = await this.#retention.placeHold(tenantId, reason);
    if (changed)
      await this.#audit.holdPlaced(actor, tenantId, { reason: hold.reason, placedAt: hold.placed_at });
    return hold;
  }

  /** True when the tenant was on hold. */
  async releaseHold(tenantId: string, actor: AuditActor = libraryActor): Promise<boolean> {
    assertValid(tenantIssues(tenantId));
    const lifted = await this.#retention.releaseHold(tenantId);
    if (lifted === undefined) return false;
    await this.#audit.holdLifted(actor, tenantId, lifted.placed_at);
    return true;
  }

  /** Deletes expired events (see purgeExpired), recording what it removed of each tenant as `actor`. */
  async purge(
    options: PurgeOptions,
    onProgress?: (progress: PurgeProgress) => void,
    actor: AuditActor = libraryActor,
  ): Promise<PurgeReport> {
    assertValid(options.tenantId === undefined ? [] : tenantIssues(options.tenantId));
    return purgeExpired(
      {
        events: this.#events,
        retention: this.#retention,
        recordPurges: (tenantId) => this.#recordPurges(tenantId, actor),
      },
      options,
      onProgress,
    );
  }

  /**
   * One `activity.events.purged` per purge record of the tenant not yet recorded: this
   * run's, and any a killed run left. The event's id is kept in the record before the
   * event is written, so recording it again after a kill stores it once; the record is
   * marked only once it is stored.
   */
  async #recordPurges(tenantId: string, actor: AuditActor): Promise<void> {
    for (const purge of await this.#retention.unrecordedPurges(tenantId)) {
      const id = await this.#retention.purgeEventId(tenantId, purge.purgedAt, uuidv7());
      await this.#audit.eventsPurged(
        actor,
        {
          tenantId,
          fromSeq: purge.fromSeq,
          throughSeq: purge.throughSeq,
          deleted: purge.deleted,
          rule: purge.rule === 'policy' ? 'policy' : 'default',
          cutoff: purge.cutoff,
          purgedAt: purge.purgedAt,
        },
        id,
      );
      await this.#retention.markPurgeRecorded(tenantId, purge.purgedAt);
    }
  }
}

function tenantIssues(tenantId: string): FieldIssue[] {
  return tenantIdSchema.safeParse(tenantId).success
    ? []
    : [{ path: 'tenant_id', message: 'must be 1-128 characters of A-Z a-z 0-9 . _ : -' }];
}

/** What is stored must not hold a secret, as a recorded tenant id may not. */
function storedTenantIssues(tenantId: string): FieldIssue[] {
  const problem = tenantIdProblem(tenantId);
  return problem === undefined ? [] : [{ path: 'tenant_id', message: problem }];
}

/** A reason is free text stored as given: refused if too long or if it holds a secret. */
function reasonIssues(reason: string): FieldIssue[] {
  const credential = credentialIn(reason);
  const problem =
    textProblem(reason, maxHoldReasonLength) ??
    (credential !== undefined
      ? `holds a credential (${credential}); credentials are never stored`
      : ipIn(reason)
        ? 'holds an IP address, which is never stored in the clear'
        : undefined);
  return problem === undefined ? [] : [{ path: 'reason', message: problem }];
}

function assertValid(issues: FieldIssue[]) {
  if (issues.length > 0) throw new ActivityError('PARAMETER_INVALID', describeIssues(issues), { issues });
}
