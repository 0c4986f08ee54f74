import type { MigrationReport, MigrationRunner, MigrationStatus } from '../domain/migrations.js';
import type { RetentionRepository } from '../domain/retention.js';

/** What `migrate up` did: the migrations applied, and the monthly partitions made ahead. */
export interface MigrationUpReport {
  names: string[];
  partitionsCreated: number;
}

/** The schema as a use case: its status, and moving it up or down. */
export class MigrationService {
  readonly #migrator: MigrationRunner;
  readonly #retention: RetentionRepository;
  readonly #clock: () => Date;

  constructor(options: { migrator: MigrationRunner; retention: RetentionRepository; clock?: () => Date }) {
    this.#migrator = options.migrator;
    this.#retention = options.retention;
    this.#clock = options.clock ?? (() => new Date());
  }

  status(): Promise<MigrationStatus[]> {
    return this.#migrator.status();
  }

  /** Every `migrate` (CI runs it on each deploy) also makes the coming months' partitions. */
  async up(to?: string): Promise<MigrationUpReport> {
    const { names } = await this.#migrator.up(to);
    return { names, partitionsCreated: await this.#retention.ensurePartitions(this.#clock()) };
  }

  down(to?: string): Promise<MigrationReport> {
    return this.#migrator.down(to);
  }
}
