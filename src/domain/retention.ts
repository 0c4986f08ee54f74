import type { PurgeRecord } from './integrity-repository.js';

/** A tenant's own retention, which overrides the default of `purge`. */
export interface RetentionPolicy {
  tenant_id: string;
  retention_days: number;
  updated_at: string;
}

/** A legal hold: the tenant's events are never purged while it stands. */
export interface LegalHold {
  tenant_id: string;
  reason: string | null;
  placed_at: string;
}

/** One monthly partition of the events table: events created in [from, to). */
export interface MonthPartition {
  name: string;
  from: Date;
  to: Date;
}

/**
 * What dropping a partition did: dropped (in a dry run, would drop) with its events per
 * tenant; kept for the tenants a hold or a policy keeps; or busy, when its lock could not
 * be had quickly (its events are then left to the batched delete).
 */
export type PartitionDropResult =
  | { outcome: 'dropped'; events: Map<string, number> }
  | { outcome: 'kept'; keptFor: string[] }
  | { outcome: 'busy' };

/** A purge run's record of one tenant whose `activity.events.purged` event is not yet recorded. */
export interface UnrecordedPurge extends PurgeRecord {
  tenantId: string;
  deleted: number;
}

/** The retention port of the service: policies, holds, and the partitions purge drops. */
export interface RetentionRepository {
  policies(): Promise<RetentionPolicy[]>;
  /** Sets the policy; returns it with the retention it replaced (null: the tenant had none). */
  setPolicy(
    tenantId: string,
    retentionDays: number,
  ): Promise<{ policy: RetentionPolicy; previousDays: number | null }>;
  /** Clears the policy; returns the retention it had, or null when it had none. */
  clearPolicy(tenantId: string): Promise<number | null>;
  holds(): Promise<LegalHold[]>;
  /**
   * Places a hold; a tenant already on hold keeps its first hold's time, with the new
   * reason if one is given. `changed`: a hold was placed, or its reason changed.
   */
  placeHold(tenantId: string, reason: string | null): Promise<{ hold: LegalHold; changed: boolean }>;
  /** Lifts the hold; returns it, or undefined when the tenant was not on hold. */
  releaseHold(tenantId: string): Promise<LegalHold | undefined>;
  /**
   * Creates the missing monthly partitions, from the oldest month that has events in
   * the default partition (which moves them out of it) to three months after `now`.
   * Returns how many it created; 0 on a schema without partitions.
   */
  ensurePartitions(now: Date): Promise<number>;
  /** The monthly partitions, oldest first (the default partition is not one of them). */
  partitions(): Promise<MonthPartition[]>;
  /**
   * Drops the partition in one short transaction, unless a tenant with events in it is
   * kept by a hold or by a policy whose cutoff (from `now`) is before the partition's
   * end; holds and policies are read inside the transaction, under a lock that makes
   * concurrent changes to them wait. With `dryRun`, counts and drops nothing. The
   * caller has checked that the default cutoff is at or after the partition's end.
   * Before the drop, in the same transaction, its rows' tree hashes are kept and the
   * purge recorded for each tenant (rule `policy` or `default`, with its cutoff).
   */
  dropPartition(
    partition: MonthPartition,
    options: { now: Date; dryRun: boolean; defaultCutoff: Date },
  ): Promise<PartitionDropResult>;
  /** How many of a tenant's events were created before `cutoff`. */
  countBefore(tenantId: string, cutoff: Date): Promise<number>;
  /**
   * The seq of a tenant's oldest event created before `cutoff`, from seq `fromSeq` on;
   * null when there is none, or while the tenant is on hold.
   */
  firstExpiredSeq(tenantId: string, cutoff: Date, fromSeq?: number): Promise<number | null>;
  /**
   * Deletes a tenant's events created before `cutoff` whose seq is in
   * [`fromSeq`, `fromSeq + limit`), in one statement that commits on its own; none
   * while the tenant is on hold. Returns how many it deleted. The same statement keeps
   * their tree hashes and records the purge (`run`: the run's time and rule).
   */
  deleteExpired(
    tenantId: string,
    cutoff: Date,
    fromSeq: number,
    limit: number,
    run: { at: Date; rule: string },
  ): Promise<number>;
  /** The tenant's purge records whose `activity.events.purged` event is not yet recorded, oldest first. */
  unrecordedPurges(tenantId: string): Promise<UnrecordedPurge[]>;
  /** The id the record's event is recorded under: `candidate`, unless one was chosen before. */
  purgeEventId(tenantId: string, purgedAt: Date, candidate: string): Promise<string>;
  markPurgeRecorded(tenantId: string, purgedAt: Date): Promise<void>;
  /** Every event purged since migration 0005, by any process. */
  eventsPurged(): Promise<number>;
}
