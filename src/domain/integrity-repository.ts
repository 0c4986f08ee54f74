import type { ActivityEvent } from './event.js';

/** A tenant's head row as the tree sees it (migrations/0004). */
export interface TreeHead {
  tenantId: string;
  /** The last seq handed out: the tree's size, each event being a leaf. */
  lastSeq: number;
  /** How many leaves, from seq 1, the sealer has computed the inner nodes of (0 before it ran). */
  sealedSize: number;
  /** The leaf hash of seq sealedSize when it was sealed. */
  sealedLeaf: Uint8Array | null;
}

/** What sealing a tenant's tree did: how far it is sealed now, and why not further if it stopped short. */
export interface SealOutcome {
  sealedSize: number;
  /** Why the tree cannot be sealed past sealedSize (an event with no leaf hash, missing or twice). */
  stopped?: string;
}

/** What is read of a tree to make subtrees' hashes: the seqs whose leaf hash, and those whose inner nodes. */
export interface KeptReads {
  leaves: number[];
  nodes: number[];
}

/** Leaf hashes and inner nodes read for seqs (see KeptReads), each by seq; what could not be read is absent. */
export interface KeptHashes {
  leaves: ReadonlyMap<number, Uint8Array>;
  /** The inner nodes kept for a seq: the subtrees of 4 leaves or more it completes, smallest first. */
  nodes: ReadonlyMap<number, Uint8Array>;
}

/** A signed checkpoint as stored. */
export interface StoredCheckpoint {
  tenantId: string;
  treeSize: number;
  rootHash: Uint8Array;
  /** The C2SP signed note. */
  note: string;
  signedAt: Date;
}

/** An event with what is kept of the tree for it (null when its row has no leaf hash). */
export interface TreeRow {
  seq: number;
  /** The event as the API returns it; undefined when the row cannot be read as one (a time out of range). */
  event: ActivityEvent | undefined;
  /** created_at as stored, in microseconds since the epoch (decimal text): the API shows milliseconds. */
  createdMicros: string;
  keptHashes: Uint8Array | null;
}

/** A purge run's record for one tenant: the seqs it removed, by which rule, when. */
export interface PurgeRecord {
  fromSeq: number;
  throughSeq: number;
  rule: string;
  cutoff: Date;
  purgedAt: Date;
}

/** What bringing events stored before the tree into it did (`migrate`). */
export interface BackfillReport {
  events: number;
  tenants: number;
  /** Tenants whose tree cannot be built from seq 1, with why; `verify` names the events missing. */
  left: Array<{ tenantId: string; reason: string }>;
}

/** The storage port of the integrity use cases. Implementation: src/store/integrity. */
export interface IntegrityRepository {
  head(tenantId: string): Promise<TreeHead | undefined>;
  /**
   * Heads with events their tenant's latest checkpoint does not cover (or with none),
   * in tenant id order after `afterTenantId` (or only `onlyTenantId`'s), each with that
   * checkpoint. The `activity.checkpoint.signed` event recorded right after that
   * checkpoint does not count: without it, each run would sign every tree again.
   */
  uncheckpointed(
    afterTenantId: string | undefined,
    limit: number,
    onlyTenantId?: string,
  ): Promise<Array<{ head: TreeHead; latest: StoredCheckpoint | undefined }>>;
  /**
   * What is kept of the tree for these seqs (see integrity/tree.ts): the leaf hashes of
   * the rows (or for purged events what purge kept) and the inner nodes in their
   * blocks; what cannot be read (no row, no leaf hash, two rows) is absent.
   */
  keptHashes(tenantId: string, reads: KeptReads): Promise<KeptHashes>;
  /** keptHashes of several tenants at once, in one statement where no event was purged. */
  keptHashesOfTenants(
    requests: ReadonlyArray<KeptReads & { tenantId: string }>,
  ): Promise<Map<string, KeptHashes>>;
  /** What is kept of the tree for the purged seqs in (afterSeq, throughSeq], by seq. */
  archivedHashes(tenantId: string, afterSeq: number, throughSeq: number): Promise<Map<number, Uint8Array>>;
  /**
   * Brings events stored before their tenant's tree existed into it: hashes their
   * leaves, a few thousand at a time (store/integrity/backfill.ts).
   */
  bringEventsIntoTrees(): Promise<BackfillReport>;
  /**
   * Computes and keeps the inner nodes of each tenant's tree up to `through` leaves,
   * from the last sealed size on, under the lock of the tenant's seal row (never its
   * head row: writers do not wait); see store/integrity/seal.ts.
   */
  seal(requests: ReadonlyArray<{ tenantId: string; through: number }>): Promise<Map<string, SealOutcome>>;
  /**
   * Tenants with anything to verify (a head row, a checkpoint, a purge record or an
   * event), in id order after `afterTenantId`.
   */
  tenants(afterTenantId: string | undefined, limit: number): Promise<string[]>;
  /** The seqs given so far, of one tenant or all (purged ones included): what verify reads, at most. */
  seqsGiven(tenantId?: string): Promise<number>;
  /** The tenant's purge records, oldest first. */
  purges(tenantId: string): Promise<PurgeRecord[]>;
  /** The latest checkpoint of a tenant, or the one of `treeSize`. */
  checkpoint(tenantId: string, treeSize?: number): Promise<StoredCheckpoint | undefined>;
  /** Every checkpoint of a tenant, smallest first. */
  checkpoints(tenantId: string): Promise<StoredCheckpoint[]>;
  /** Stores checkpoints; one already stored for a tenant and size is kept as it is. */
  saveCheckpoints(checkpoints: readonly Omit<StoredCheckpoint, 'signedAt'>[]): Promise<void>;
  /**
   * The rows of a tenant with seq in (afterSeq, throughSeq] (no upper bound when
   * undefined), in seq order; in a tampered table a seq may repeat or be absent, and
   * each row comes as stored.
   */
  treeRows(tenantId: string, afterSeq: number, throughSeq: number | undefined): Promise<TreeRow[]>;
}
