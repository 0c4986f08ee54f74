/** What `verify` reports (the contract's JSON), from the database or from a bundle. */

export type ProblemKind = 'modified' | 'missing' | 'inserted' | 'truncated' | 'signature' | 'inconsistent';

export interface VerifyProblem {
  seq: number;
  kind: ProblemKind;
  message: string;
}

/** A run of events outside the tree (stored before it), with why. */
export interface UnverifiedRange {
  from_seq: number;
  to_seq: number;
  reason: string;
}

export interface TenantVerification {
  tenant_id: string;
  /** Events the tenant's head says it has. */
  size: number;
  /** Events whose leaf and tree hashes were recomputed and found as stored. */
  verified: number;
  problems: VerifyProblem[];
  unverified: UnverifiedRange[];
}

export interface VerifyReport {
  ok: boolean;
  tenants: TenantVerification[];
}
