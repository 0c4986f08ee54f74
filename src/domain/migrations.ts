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

/** The schema's migrations, as the migration use case drives them. */
export interface MigrationRunner {
  status(): Promise<MigrationStatus[]>;
  /** Applies every pending migration, or those up to and including `to`. */
  up(to?: string): Promise<MigrationReport>;
  /** Rolls back the last migration, or those after `to`. */
  down(to?: string): Promise<MigrationReport>;
}
