import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import {
  binPath,
  cliFor,
  expectExit,
  expectJsonError,
  inProcessCliFor,
  parseJson,
  repoRoot,
} from '../helpers/run-cli.js';
import { eventually } from '../helpers/sse-client.js';

describe('retention and hold', () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;
  /** The same CLI in this process: for refusals, where a process of its own adds nothing. */
  let cliInProcess: ReturnType<typeof inProcessCliFor>;

  beforeAll(async () => {
    database = await createTestDatabase();
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url });
    cliInProcess = inProcessCliFor({ ACTIVITY_DATABASE_URL: database.url });
  });
  afterAll(async () => database?.drop());

  it('retention set, list and clear', async () => {
    const set = await cli(['retention', 'set', '--tenant', 'acme', '--days', '2555', '--format', 'json']);
    expectExit(set, 0);
    expect(parseJson(set.stdout)).toMatchObject({ tenant_id: 'acme', retention_days: 2555 });
    expectExit(await cli(['retention', 'set', '--tenant', 'acme', '--days', '90']), 0);
    const list = await cli(['retention', 'list', '--format', 'json'], {
      env: { ACTIVITY_RETENTION_DAYS: '400' },
    });
    expect(parseJson(list.stdout)).toEqual({
      default_days: 400,
      policies: [{ tenant_id: 'acme', retention_days: 90, updated_at: expect.any(String) }],
    });
    const table = await cli(['retention', 'list', '--format', 'table']);
    expect(table.stdout).toContain('default: 365 days');
    expect(table.stdout).toContain('acme: 90 days');
    const cleared = await cli(['retention', 'clear', '--tenant', 'acme', '--format', 'json']);
    expect(parseJson(cleared.stdout)).toEqual({ tenant_id: 'acme', cleared: true });
    const again = await cli(['retention', 'clear', '--tenant', 'acme', '--format', 'json']);
    expect(parseJson(again.stdout)).toEqual({ tenant_id: 'acme', cleared: false });
  });

  it('hold add, list and remove; adding again keeps the first time', async () => {
    const first = parseJson<{ placed_at: string }>(
      (await cli(['hold', 'add', '--tenant', 'globex', '--reason', 'case 1', '--format', 'json'])).stdout,
    );
    const second = parseJson(
      (await cli(['hold', 'add', '--tenant', 'globex', '--reason', 'case 2', '--format', 'json'])).stdout,
    );
    expect(second).toEqual({ tenant_id: 'globex', reason: 'case 2', placed_at: first.placed_at });
    const list = parseJson((await cli(['hold', 'list', '--format', 'json'])).stdout);
    expect(list).toEqual({ holds: [second] });
    const removed = await cli(['hold', 'remove', '--tenant', 'globex', '--format', 'json']);
    expect(parseJson(removed.stdout)).toEqual({ tenant_id: 'globex', removed: true });
    const table = await cli(['hold', 'list', '--format', 'table']);
    expect(table.stdout).toBe('no tenant is on hold\n');
  });

  it('bad input exits 2 and changes nothing', async () => {
    for (const args of [
      ['retention', 'set', '--tenant', 'acme', '--days', '0'],
      ['retention', 'set', '--tenant', 'acme', '--days', '36501'],
      ['retention', 'set', '--tenant', 'acme', '--days', '1.5'],
      ['retention', 'set', '--tenant', 'acme'],
      ['retention', 'set', '--tenant', 'bad tenant', '--days', '30'],
      ['hold', 'add'],
      ['hold', 'add', '--tenant', 'acme', '--reason', 'x'.repeat(1001)],
      ['hold', 'nonsense'],
    ]) {
      expectJsonError(await cliInProcess([...args, '--format', 'json']), 2, 'USAGE_INVALID');
    }
    expectExit(await cliInProcess(['hold']), 2);
    // A tenant id or reason that holds an IP address or a credential would be stored as
    // given: refused, without quoting it back.
    for (const [args, secret] of [
      [['retention', 'set', '--tenant', '203.0.113.9', '--days', '30'], '203.0.113.9'],
      [['retention', 'set', '--tenant', 'AKIAIOSFODNN7EXAMPLE', '--days', '30'], 'AKIAIOSFODNN7EXAMPLE'],
      [['hold', 'add', '--tenant', 'ip-2001:db8::7'], '2001:db8::7'],
      [['hold', 'add', '--tenant', 'acme', '--reason', 'customer at 203.0.113.9'], '203.0.113.9'],
      [['hold', 'add', '--tenant', 'acme', '--reason', 'db password=hunter2hunter2'], 'hunter2hunter2'],
      [['hold', 'add', '--tenant', 'acme', '--reason', 'card 4111 1111 1111 1111'], '4111 1111'],
    ] as const) {
      // In a process of its own, so that anything printed by any path is seen.
      const refused = await cli([...args, '--format', 'json']);
      expectJsonError(refused, 2, 'USAGE_INVALID');
      expect(refused.stdout + refused.stderr).not.toContain(secret);
    }
    expect(parseJson((await cli(['retention', 'list', '--format', 'json'])).stdout)).toMatchObject({
      policies: [],
    });
    expect(parseJson((await cli(['hold', 'list', '--format', 'json'])).stdout)).toEqual({ holds: [] });
  });
});

describe('a purge killed between batches', () => {
  let database: { url: string; drop(): Promise<void> };
  let client: pg.Client;
  const expired = 20_000;

  beforeAll(async () => {
    database = await createTestDatabase();
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
    // 20,000 events of last year and 10 of the last minute, in seq and time order.
    await client.query(`
      insert into activity_tenants values ('big', ${expired + 10}, now());
      insert into activity_events (tenant_id, seq, id, action, actor_type, status, created_at)
        select 'big', g, gen_random_uuid(), 'auth.login.success', 'user', 'success',
          now() - interval '400 days' + g * interval '1 ms'
        from generate_series(1, ${expired}) g;
      insert into activity_events (tenant_id, seq, id, action, actor_type, status, created_at)
        select 'big', g, gen_random_uuid(), 'auth.login.success', 'user', 'success',
          now() - interval '1 minute' + (g - ${expired}) * interval '1 ms'
        from generate_series(${expired + 1}, ${expired + 10}) g;`);
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  const expiredLeft = async () =>
    Number(
      (
        await client.query(
          "select count(*) from activity_events where tenant_id = 'big' and created_at < now() - interval '365 days'",
        )
      ).rows[0].count,
    );

  it('loses only whole batches, and a re-run finishes the job', async () => {
    const purge = execa(process.execPath, [binPath, 'purge', '--tenant', 'big', '--batch-size', '50'], {
      cwd: repoRoot,
      env: { ACTIVITY_DATABASE_URL: database.url },
      reject: false,
    });
    let left = expired;
    await eventually(
      'the purge to delete its first batch',
      async () => {
        left = await expiredLeft();
        return left !== expired;
      },
      20_000,
      10,
    );
    purge.kill('SIGKILL');
    await purge;
    // A batch in flight when the process died still commits on the server: wait for
    // its session to end before counting what the killed run removed.
    await eventually(
      "the killed purge's sessions to end",
      async () =>
        Number(
          (
            await client.query(
              'select count(*) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
            )
          ).rows[0].count,
        ) === 0,
      20_000,
      10,
    );
    left = await expiredLeft();
    expect(left).toBeGreaterThan(0);
    expect((expired - left) % 50).toBe(0);

    const rerun = await cliFor({ ACTIVITY_DATABASE_URL: database.url })([
      'purge',
      '--tenant',
      'big',
      '--batch-size',
      '50',
      '--format',
      'json',
    ]);
    expectExit(rerun, 0);
    expect(parseJson(rerun.stdout)).toMatchObject({ deleted: left });
    expect(await expiredLeft()).toBe(0);
    const { rows } = await client.query(
      "select min(seq), max(seq), count(*) from activity_events where tenant_id = 'big' and namespace <> 'activity'",
    );
    expect(rows[0]).toEqual({ min: String(expired + 1), max: String(expired + 10), count: '10' });
    // Each run is in the tenant's log once: the killed run's, written by the re-run, and the re-run's.
    const { rows: purged } = await client.query(
      "select metadata from activity_events where tenant_id = 'big' and action = 'activity.events.purged' order by seq",
    );
    expect(
      purged.map((row) => [row.metadata.from_seq, row.metadata.through_seq, row.metadata.deleted]),
    ).toEqual([
      [1, expired - left, expired - left],
      [expired - left + 1, expired, left],
    ]);
  });
});
