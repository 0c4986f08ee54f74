import { randomUUID } from 'node:crypto';
import { type ActivityApp, loadConfig, openApp, openAppWithDatabase, usingMigrations } from 'activity';
import pg from 'pg';
import { appendOneStatement } from '../../src/store/events/append-one.js';
import { postgresNotifyChannel } from '../../src/stream/postgres-transport.js';

export const benchSecret = 'bench-secret-0123456789abcdef0123456789abcdef';

/** Migrates a database to the latest schema, with the coming months' partitions, as `activity migrate` does. */
export async function migrate(url: string): Promise<void> {
  await usingMigrations(toolConfig(url), (migrations) => migrations.up());
}

/** The tool as `serve` composes it, on PostgreSQL (live stream by LISTEN/NOTIFY unless `redisUrl`). */
export function openTool(url: string, redisUrl?: string): Promise<ActivityApp> {
  return openApp(toolConfig(url, redisUrl));
}

/** openTool with its reads not recorded (ACTIVITY_AUDIT_READS=false): what recording them costs. */
export function openToolWithoutReadAudit(url: string): Promise<ActivityApp> {
  return openApp(
    loadConfig({ databaseUrl: url }, { ACTIVITY_SECRET: benchSecret, ACTIVITY_AUDIT_READS: 'false' }),
  );
}

/** openTool, with the database under it: for B1's row of the store alone. */
export function openToolWithDatabase(url: string) {
  return openAppWithDatabase(toolConfig(url));
}

function toolConfig(url: string, redisUrl?: string) {
  return loadConfig(
    { databaseUrl: url, ...(redisUrl ? { redisUrl } : {}) },
    { ACTIVITY_SECRET: benchSecret },
  );
}

/** The environment for running the built CLI against a bench database. */
export function cliEnvironment(url: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/tmp',
    ACTIVITY_DATABASE_URL: url,
    ACTIVITY_SECRET: benchSecret,
    NO_COLOR: '1',
  };
}

/**
 * The session settings of the tool's page connections (see pageSessionOptions in
 * src/store/open-database.ts), given to the baselines that read pages: the same SQL
 * on the same connection settings, so that a ratio measures the tool's own work.
 */
export const pageSessionOptions = '-c enable_sort=off -c plan_cache_mode=force_generic_plan';

const insertColumns =
  'tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id, status, source, request_id, ip_hash, user_agent, metadata, created_at';

/**
 * The raw baseline of a write: one single-row INSERT of the same row into the same
 * table, prepared once per connection, with seq from a counter instead of the head row.
 */
export function rawInsert(client: pg.ClientBase | pg.Pool, input: Record<string, unknown>, seq: number) {
  return client.query({
    name: 'bench_raw_insert',
    text: `insert into activity_events (${insertColumns}) values ($1,$2,$3,$4,'user',$5,$6,$7,'success',$8,$9,$10,$11,$12,now())`,
    values: [
      input.tenant_id,
      seq,
      randomUUID(),
      input.action,
      input.actor_id,
      input.object_type,
      input.object_id,
      input.source,
      input.request_id,
      'a'.repeat(64),
      input.user_agent,
      JSON.stringify(input.metadata),
    ],
  });
}

type PreparedEvent = ReturnType<ActivityApp['service']['prepare']>;

/**
 * The contract-equivalent baseline of a write: the tool's own statement for one event
 * (the head row advanced, the event inserted with its leaf hash, a NOTIFY at commit),
 * sent by a bare pg client, prepared once per connection. Its texts and values are
 * built from `events` (prepared by the tool) before the clock starts; each call sends
 * the next with a new id. What a write costs in SQL alone, with no Node work in front.
 */
export function contractAppend(events: readonly PreparedEvent[]) {
  const statements = events.map((event) =>
    appendOneStatement(event, { skipLocked: false }, postgresNotifyChannel),
  );
  return (client: pg.ClientBase | pg.Pool, i: number) => {
    const statement = statements[i % statements.length] as (typeof statements)[number];
    const values = [...statement.values];
    values[3] = randomUUID();
    return client.query({ name: 'bench_contract_append', text: statement.text, values });
  };
}

export async function withPool<T>(url: string, size: number, use: (pool: pg.Pool) => Promise<T>): Promise<T> {
  const pool = new pg.Pool({ connectionString: url, max: size });
  try {
    return await use(pool);
  } finally {
    await pool.end();
  }
}
