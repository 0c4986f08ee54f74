import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { cliFor, expectExit, expectJsonError, parseJson, testSecret } from '../helpers/run-cli.js';

interface MigrationStatus {
  name: string;
  applied: boolean;
}

const first = '0001_create_activity_events';
const partitioning = '0002_partition_activity_events_by_month';
const selfAudit = '0005_self_audit';

/**
 * A migration that needs a table another session is using gives up after its
 * lock_timeout (2 s), so the queries queued behind its lock request are not held up
 * for long; the whole run is rolled back and `migrate` exits 3 (retry) saying why.
 */
describe('migrate while another session uses the tables', () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;
  let holder: pg.Client | undefined;

  /** Opens a transaction that keeps `statement`'s locks until `release()`. */
  async function hold(statement: string): Promise<void> {
    holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query(statement);
  }
  async function release(): Promise<void> {
    const client = holder;
    holder = undefined;
    if (!client) return;
    try {
      await client.query('rollback');
    } finally {
      await client.end();
    }
  }
  async function applied(): Promise<boolean[]> {
    const run = await cli(['migrate', 'status', '--format', 'json']);
    expectExit(run, 0);
    return parseJson<{ migrations: MigrationStatus[] }>(run.stdout).migrations.map((m) => m.applied);
  }

  beforeAll(async () => {
    database = await createTestDatabase({ migrated: false });
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
  });
  afterEach(release);
  afterAll(async () => {
    await release();
    await database?.drop();
  });

  it('up gives up on a table being read, applies nothing, and succeeds once the reader is done', async () => {
    expectExit(await cli(['migrate', 'up', '--to', first]), 0);
    // a long read, such as an export, holds ACCESS SHARE until it ends
    await hold('select count(*) from activity_events');

    const blocked = await cli(['migrate', '--format', 'json']);
    const error = expectJsonError(blocked, 3, 'DB_TIMEOUT');
    expect(error.message).toContain(`${partitioning} waited 2s to lock activity_events`);
    expect(error.message).toContain('nothing was applied');
    expect(blocked.durationMs).toBeLessThan(15_000);
    expect(await applied()).toEqual([true, false, false, false, false, false]);

    await release();
    const retried = await cli(['migrate', '--format', 'json']);
    expectExit(retried, 0);
    expect(parseJson<{ applied: string[] }>(retried.stdout).applied).toHaveLength(5);
  });

  it('down gives up on a table being written, rolls nothing back, and succeeds once the writer is done', async () => {
    expect(await applied()).toEqual([true, true, true, true, true, true]);
    // an uncommitted insert holds ROW EXCLUSIVE on the partitioned table and its partition
    await hold(`select * from activity_append('acme', '[{"n":1,"id":"0b7e4c1e-7d1a-4f0e-9a55-2f3c1d9e8a10","action":"user.login",
      "actor_type":"user","status":"success","metadata":{},"digest":"${'00'.repeat(32)}"}]', now(), '{}', null)`);

    const blocked = await cli(['migrate', 'down', '--to', first, '--yes', '--format', 'json']);
    const error = expectJsonError(blocked, 3, 'DB_TIMEOUT');
    expect(error.message).toContain(`${selfAudit} waited 2s to lock activity_purges and activity_events`);
    expect(error.message).toContain('nothing was rolled back');
    expect(await applied()).toEqual([true, true, true, true, true, true]);

    await release();
    const retried = await cli(['migrate', 'down', '--to', first, '--yes', '--format', 'json']);
    expectExit(retried, 0);
    expect(parseJson<{ rolled_back: string[] }>(retried.stdout).rolled_back).toHaveLength(5);
  });

  it('the text error names the migration and the table', async () => {
    expect(await applied()).toEqual([true, false, false, false, false, false]);
    await hold("insert into activity_tenants (tenant_id) values ('acme')");

    const blocked = await cli(['migrate', 'down']);
    expectExit(blocked, 3);
    expect(blocked.stderr).toMatch(
      new RegExp(
        `^error: PostgreSQL at .* is busy: ${first} waited 2s to lock activity_tenants and activity_events`,
      ),
    );
    expect(await applied()).toEqual([true, false, false, false, false, false]);
  });
});
