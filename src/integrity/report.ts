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

/** A purge run's record: seqs it removed by policy (their hashes kept), by which rule, when. */
export interface PurgedRange {
  from_seq: number;
  through_seq: number;
  rule: string;
  cutoff: string;
  purged_at: string;
}

export interface TenantVerification {
  tenant_id: string;
  /** Events the tenant's head says it has. */
  size: number;
  /** Events whose leaf and tree hashes were recomputed and found as stored. */
  verified: number;
  problems: VerifyProblem[];
  unverified: UnverifiedRange[];
  purged: PurgedRange[];
}

export interface VerifyReport {
  ok: boolean;
  tenants: TenantVerification[];
}
