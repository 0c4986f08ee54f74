export interface MigrationStatus {
  name: string;
  applied: boolean;
  applied_at: string | null;
}

export interface MigrationReport {
  direction: 'up' | 'down';
  /** Names applied (up) or rolled back (down), in the order it happened. */
  names: string[];
}

/** What rolling back one migration destroys: the tables it drops, and the columns. */
export interface RollbackStep {
  name: string;
  /** Tables dropped that hold rows now, with how many. */
  tables: Array<{ table: string; rows: number }>;
  /** Columns dropped, as `table.column`. */
  columns: string[];
}

/** The schema's migrations, as the migration use case drives them. */
export interface MigrationRunner {
  status(): Promise<MigrationStatus[]>;
  /** Applies every pending migration, or those up to and including `to`. */
  up(to?: string): Promise<MigrationReport>;
  /** Rolls back the last migration, or those after `to`. */
  down(to?: string): Promise<MigrationReport>;
  /** What `down(to)` would roll back, last first, and what each step drops. */
  rollbackPlan(to?: string): Promise<RollbackStep[]>;
}
