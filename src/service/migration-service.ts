import { ActivityError } from '../domain/errors.js';
import type { BackfillReport, IntegrityRepository } from '../domain/integrity-repository.js';
import type {
  MigrationReport,
  MigrationRunner,
  MigrationStatus,
  RollbackStep,
} from '../domain/migrations.js';
import type { RetentionRepository } from '../domain/retention.js';

/** The migration that gives each tenant its tree: events stored before it are brought in after. */
const treesMigration = '0004_tenant_merkle_trees';

/**
 * What `migrate up` did: the migrations applied, the monthly partitions made ahead,
 * and the events stored before their tenant's tree that it brought into it.
 */
export interface MigrationUpReport {
  names: string[];
  partitionsCreated: number;
  trees: BackfillReport;
}

/** The schema as a use case: its status, and moving it up or down. */
export class MigrationService {
  readonly #migrator: MigrationRunner;
  readonly #retention: RetentionRepository;
  readonly #integrity: IntegrityRepository;
  readonly #clock: () => Date;

  constructor(options: {
    migrator: MigrationRunner;
    retention: RetentionRepository;
    integrity: IntegrityRepository;
    clock?: () => Date;
  }) {
    this.#migrator = options.migrator;
    this.#retention = options.retention;
    this.#integrity = options.integrity;
    this.#clock = options.clock ?? (() => new Date());
  }

  status(): Promise<MigrationStatus[]> {
    return this.#migrator.status();
  }

  /**
   * Every `migrate` (CI runs it on each deploy) also makes the coming months'
   * partitions, and brings into their trees any events stored before them.
   */
  async up(to?: string): Promise<MigrationUpReport> {
    // Counted around the whole run: the migrations make partitions of their own.
    const before = await this.#partitionCount();
    const { names } = await this.#migrator.up(to);
    await this.#retention.ensurePartitions(this.#clock());
    const partitionsCreated = Math.max(0, (await this.#partitionCount()) - before);
    const applied = (await this.#migrator.status()).find((migration) => migration.name === treesMigration);
    const trees = applied?.applied
      ? await this.#integrity.bringEventsIntoTrees()
      : { events: 0, tenants: 0, left: [] };
    return { names, partitionsCreated, trees };
  }

  /** The monthly partitions, or 0 before the schema has its events table. */
  async #partitionCount(): Promise<number> {
    try {
      return (await this.#retention.partitions()).length;
    } catch (error) {
      if (error instanceof ActivityError && error.code === 'DB_NOT_MIGRATED') return 0;
      throw error;
    }
  }

  /**
   * Rolls back, unless it would drop legal holds while any tenant is on hold (refused
   * whatever `confirmed` says) or drop data without `confirmed`: both refusals name
   * what it would drop.
   */
  async down(to: string | undefined, { confirmed }: { confirmed: boolean }): Promise<MigrationReport> {
    const plan = await this.#migrator.rollbackPlan(to);
    const holds = plan.flatMap((step) => step.tables).find((table) => table.table === 'activity_legal_holds');
    if (holds) {
      throw new ActivityError(
        'USAGE_INVALID',
        `${holds.rows} tenant(s) are on legal hold, and the rollback would drop their holds: lift each one first (activity hold remove)`,
      );
    }
    const drops = plan.filter((step) => step.tables.length > 0 || step.columns.length > 0);
    if (drops.length > 0 && !confirmed) {
      throw new ActivityError(
        'USAGE_INVALID',
        `migrate down destroys data: ${drops.map(describeDrops).join('; ')}. Back up first, then confirm it (activity migrate down --yes)`,
      );
    }
    return this.#migrator.down(to);
  }
}

function describeDrops(step: RollbackStep): string {
  const tables = step.tables.map(
    ({ table, rows }) => `${table} (${rows.toLocaleString('en')} row${rows === 1 ? '' : 's'})`,
  );
  const columns = step.columns.map((column) => `column ${column}`);
  return `${step.name} drops ${[...tables, ...columns].join(', ')}`;
}
