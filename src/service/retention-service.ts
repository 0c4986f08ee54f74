import type { ActivityRepository } from '../domain/activity-repository.js';
import { textProblem } from '../domain/caps.js';
import { ActivityError, type FieldIssue } from '../domain/errors.js';
import { describeIssues } from '../domain/field-issues.js';
import { tenantIdSchema } from '../domain/inputs.js';
import type { LegalHold, RetentionPolicy, RetentionRepository } from '../domain/retention.js';
import { tenantIdProblem } from '../domain/tenant-id.js';
import { credentialIn, ipIn } from '../privacy/scrub.js';
import { type PurgeOptions, type PurgeProgress, type PurgeReport, purgeExpired } from './purge.js';

/** A hundred years: the longest retention a policy or a purge may name. */
export const maxRetentionDays = 36_500;
export const maxHoldReasonLength = 1000;

/**
 * Retention as a use case: tenant policies, legal holds and purge, with the checks
 * that keep what they store storable (a tenant id or a reason holding a secret is
 * refused, as a recorded event's would be). Errors are PARAMETER_INVALID with the
 * issue's path (`tenant_id`, `retention_days`, `reason`).
 */
export class RetentionService {
  readonly #events: ActivityRepository;
  readonly #retention: RetentionRepository;

  constructor(stores: { events: ActivityRepository; retention: RetentionRepository }) {
    this.#events = stores.events;
    this.#retention = stores.retention;
  }

  policies(): Promise<RetentionPolicy[]> {
    return this.#retention.policies();
  }

  async setPolicy(tenantId: string, retentionDays: number): Promise<RetentionPolicy> {
    assertValid([
      ...storedTenantIssues(tenantId),
      ...(Number.isInteger(retentionDays) && retentionDays >= 1 && retentionDays <= maxRetentionDays
        ? []
        : [{ path: 'retention_days', message: `must be a whole number from 1 to ${maxRetentionDays}` }]),
    ]);
    return this.#retention.setPolicy(tenantId, retentionDays);
  }

  /** True when the tenant had a policy. */
  async clearPolicy(tenantId: string): Promise<boolean> {
    assertValid(tenantIssues(tenantId));
    return this.#retention.clearPolicy(tenantId);
  }

  holds(): Promise<LegalHold[]> {
    return this.#retention.holds();
  }

  /** A tenant already on hold keeps its first hold's time, with the new reason if one is given. */
  async placeHold(tenantId: string, reason: string | null): Promise<LegalHold> {
    assertValid([...storedTenantIssues(tenantId), ...(reason === null ? [] : reasonIssues(reason))]);
    return this.#retention.placeHold(tenantId, reason);
  }

  /** True when the tenant was on hold. */
  async releaseHold(tenantId: string): Promise<boolean> {
    assertValid(tenantIssues(tenantId));
    return this.#retention.releaseHold(tenantId);
  }

  /** Deletes expired events (see purgeExpired). */
  async purge(options: PurgeOptions, onProgress?: (progress: PurgeProgress) => void): Promise<PurgeReport> {
    assertValid(options.tenantId === undefined ? [] : tenantIssues(options.tenantId));
    return purgeExpired({ events: this.#events, retention: this.#retention }, options, onProgress);
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
