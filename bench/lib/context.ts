import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { type PostgresServer, startPostgres } from '../../test/helpers/postgres-server.js';
import { type RedisServer, startRedis } from '../../test/helpers/redis-server.js';

/** The repository root (the bench runs compiled, from dist-bench/bench/lib). */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
/** The built CLI, as an operator runs it. */
export const binPath = join(repoRoot, 'bin', 'activity.js');

/** How big each workload is: the full run, or `--quick` (under two minutes, for CI). */
interface Sizes {
  /** Seconds each throughput measurement runs (B1–B3, B14). */
  seconds: number;
  /** Events in the big tenant of B5–B7 and in the table around it. */
  bigTenant: number;
  table: number;
  /** B6: how deep the deep page is. */
  deepPage: number;
  /** B4 and B8: events imported and exported; B8 also exports `exportSmall`. */
  importEvents: number;
  exportSmall: number;
  /** B9: seconds of HTTP load. */
  httpSeconds: number;
  /** B10: events timed from record to SSE frame. */
  streamEvents: number;
  /** B11: clients, tenants, events per second and seconds. */
  fanoutClients: number;
  fanoutTenants: number;
  fanoutRate: number;
  fanoutSeconds: number;
  /** B12: events in the purged month. */
  purgeMonth: number;
  /** B13: process starts per command. */
  startups: number;
  /** Latency samples per query measurement (B5–B7). */
  samples: number;
  repetitions: number;
}

const fullSizes: Sizes = {
  seconds: 5,
  bigTenant: 1_000_000,
  table: 5_000_000,
  deepPage: 10_000,
  importEvents: 1_000_000,
  exportSmall: 100_000,
  httpSeconds: 10,
  streamEvents: 1000,
  fanoutClients: 1000,
  fanoutTenants: 20,
  fanoutRate: 200,
  fanoutSeconds: 10,
  purgeMonth: 1_000_000,
  startups: 10,
  samples: 500,
  repetitions: 3,
};

const quickSizes: Sizes = {
  seconds: 1,
  bigTenant: 20_000,
  table: 60_000,
  deepPage: 2000,
  importEvents: 20_000,
  exportSmall: 5000,
  httpSeconds: 2,
  streamEvents: 100,
  fanoutClients: 100,
  fanoutTenants: 10,
  fanoutRate: 100,
  fanoutSeconds: 3,
  purgeMonth: 20_000,
  startups: 3,
  samples: 100,
  repetitions: 1,
};

export interface BenchContext {
  quick: boolean;
  sizes: Sizes;
  /** A build of the tool without the verifiable log, to compare writes with (--tree-off). */
  treeOff: string | undefined;
  postgres: PostgresServer;
  redis: RedisServer;
  /** A scratch directory, removed at the end. */
  scratch: string;
  /**
   * A fresh database on the bench's PostgreSQL: empty and not migrated, or a file copy
   * of `template` (which must have no open connections).
   */
  createDatabase(name: string, template?: string): Promise<string>;
  log(message: string): void;
}

/** Starts PostgreSQL and Redis on loopback, as the test harness does; `close` stops them. */
export async function openContext(
  quick: boolean,
  treeOff: string | undefined,
): Promise<BenchContext & { close(): Promise<void> }> {
  const postgres = await startPostgres();
  let redis: RedisServer;
  try {
    redis = await startRedis();
  } catch (error) {
    postgres.stop();
    throw error;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'activity-bench-'));
  return {
    quick,
    sizes: quick ? quickSizes : fullSizes,
    treeOff,
    postgres,
    redis,
    scratch,
    async createDatabase(name, template) {
      const client = new pg.Client({ connectionString: postgres.adminUrl });
      await client.connect();
      try {
        await client.query(`drop database if exists ${name} with (force)`);
        await client.query(
          template
            ? `create database ${name} template ${template} strategy file_copy`
            : `create database ${name}`,
        );
      } finally {
        await client.end();
      }
      return postgres.urlFor(name);
    },
    log(message) {
      process.stderr.write(`[bench] ${message}\n`);
    },
    async close() {
      await redis.stop();
      postgres.stop();
      rmSync(scratch, { recursive: true, force: true });
    },
  };
}
