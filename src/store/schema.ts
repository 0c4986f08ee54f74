import type { ColumnType, Generated } from 'kysely';

/** Kysely's view of the tables created by migrations/. */
export interface StoreSchema {
  activity_events: ActivityEventRow;
  activity_tenants: ActivityTenantRow;
  activity_retention_policies: RetentionPolicyRow;
  activity_legal_holds: LegalHoldRow;
  activity_checkpoints: CheckpointRow;
  activity_tree_archive: TreeArchiveRow;
  activity_tree_blocks: TreeBlockRow;
  activity_tree_seals: TreeSealRow;
  activity_tree_backfill: TreeBackfillRow;
  activity_purges: PurgeRow;
  activity_purge_totals: PurgeTotalsRow;
  activity_sinks: SinkRow;
  activity_sink_cursors: SinkCursorRow;
}

/** bigint arrives as a string from pg and as a number from PGlite. */
type Int8 = ColumnType<string | number, number, number>;

export interface ActivityEventRow {
  tenant_id: string;
  seq: Int8;
  id: string;
  action: string;
  namespace: Generated<string>;
  actor_type: string;
  actor_id: string | null;
  object_type: string | null;
  object_id: string | null;
  status: string;
  source: string | null;
  request_id: string | null;
  ip_hash: string | null;
  user_agent: string | null;
  metadata: ColumnType<Record<string, unknown>, string, string>;
  created_at: ColumnType<Date, Date, Date>;
  /** The event's leaf hash (migrations/0004); null for events stored before the tree until migrate hashes them. */
  leaf_hash: Uint8Array | null;
}

export interface ActivityTenantRow {
  tenant_id: string;
  last_seq: Int8;
  last_created_at: ColumnType<Date, Date, Date>;
}

export interface RetentionPolicyRow {
  tenant_id: string;
  retention_days: number;
  updated_at: ColumnType<Date, Date | undefined, Date>;
}

export interface LegalHoldRow {
  tenant_id: string;
  reason: string | null;
  placed_at: ColumnType<Date, Date | undefined, Date>;
}

export interface CheckpointRow {
  tenant_id: string;
  tree_size: Int8;
  root_hash: Uint8Array;
  note: string;
  signed_at: ColumnType<Date, Date | undefined, never>;
}

export interface TreeArchiveRow {
  tenant_id: string;
  from_seq: Int8;
  through_seq: Int8;
  hashes: Uint8Array;
}

export interface TreeBlockRow {
  tenant_id: string;
  block: Int8;
  /** The inner nodes kept for the block's seqs, end to end (integrity/tree.ts). */
  hashes: Uint8Array;
}

export interface TreeSealRow {
  tenant_id: string;
  sealed_size: Int8;
  /** The leaf hash of seq sealed_size when it was sealed. */
  sealed_leaf: Uint8Array | null;
}

export interface TreeBackfillRow {
  tenant_id: string;
  through_seq: Int8;
}

export interface PurgeRow {
  tenant_id: string;
  purged_at: Date;
  from_seq: Int8;
  through_seq: Int8;
  rule: string;
  cutoff: Date;
  deleted: Generated<Int8>;
  /** The id its `activity.events.purged` event is (to be) recorded under. */
  event_id: string | null;
  /** Its `activity.events.purged` event was recorded. */
  recorded: Generated<boolean>;
}

export interface PurgeTotalsRow {
  only_row: Generated<boolean>;
  events: Int8;
}

/** A value sealed with AES-256-GCM (see privacy/secret-box.ts), as stored. */
export interface SealedColumn {
  nonce: string;
  sealed: string;
}

export interface SinkRow {
  sink_id: string;
  tenant_id: string | null;
  url: string;
  payload: string;
  actions: string[] | null;
  prefixes: string[] | null;
  headers: ColumnType<SealedColumn | null, string | null, string | null>;
  secret: ColumnType<SealedColumn, string, string>;
  state: Generated<string>;
  created_at: Generated<Date>;
  next_attempt_at: Generated<Date>;
  attempts: Generated<number>;
  failing_since: Date | null;
  last_success_at: Date | null;
  last_error: string | null;
  last_error_at: Date | null;
}

export interface SinkCursorRow {
  sink_id: string;
  tenant_id: string;
  delivered_seq: Generated<Int8>;
  reported_seq: Generated<Int8>;
  unreported_skipped: Generated<Int8>;
  unreported_filtered: Generated<Int8>;
  retry_through: Int8 | null;
  delivered_at: Date | null;
  skipped: Generated<Int8>;
}
