import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import {
  cliFor,
  expectExit,
  expectJsonError,
  parseJson,
  runCliInProcess,
  testSecret,
} from '../helpers/run-cli.js';

interface PurgeJson {
  deleted: number;
  cutoff: string;
  dry_run: boolean;
  tenants: Array<{ tenant_id: string; deleted: number; rule: string }>;
}

describe('purge', () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;

  beforeAll(async () => {
    database = await createTestDatabase();
    // purge needs no ACTIVITY_SECRET: it hashes and signs nothing.
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url });
    const record = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    for (const tenant of ['old-a', 'old-a', 'old-b', 'new-c']) {
      expectExit(await record(['record', '--tenant', tenant, '--action', 'auth.email.verified']), 0);
    }
    // Age three events by a year, directly in the database (the service always stamps now).
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await client.query(
      "update activity_events set created_at = created_at - interval '400 days' where tenant_id in ('old-a', 'old-b')",
    );
    await client.end();
  });
  afterAll(async () => database?.drop());

  it('--dry-run --format json counts per tenant and deletes nothing', async () => {
    const run = await cli(['purge', '--dry-run', '--format', 'json']);
    expectExit(run, 0);
    const report = parseJson<PurgeJson>(run.stdout);
    expect(report).toMatchObject({ deleted: 3, dry_run: true });
    expect(report.tenants).toEqual([
      expect.objectContaining({ tenant_id: 'old-a', deleted: 2, rule: 'default' }),
      expect.objectContaining({ tenant_id: 'old-b', deleted: 1, rule: 'default' }),
    ]);
    // no spinner when stderr is not a terminal
    expect(run.stderr).toBe('');
    expect(Date.parse(report.cutoff)).toBeLessThan(Date.now() - 364 * 86_400_000);
    const again = parseJson<PurgeJson>((await cli(['purge', '--dry-run', '--format', 'json'])).stdout);
    expect(again.deleted).toBe(3);
  });

  it('--tenant purges that tenant only; then a full run purges the rest, and a re-run finds nothing', async () => {
    const held = await cli(['hold', 'add', '--tenant', 'old-b', '--reason', 'case 12', '--format', 'json']);
    expect(parseJson(held.stdout)).toMatchObject({ tenant_id: 'old-b', reason: 'case 12' });
    const kept = parseJson<PurgeJson>((await cli(['purge', '--tenant', 'old-b', '--format', 'json'])).stdout);
    expect(kept).toMatchObject({
      deleted: 0,
      tenants: [{ tenant_id: 'old-b', rule: 'hold', reason: 'case 12' }],
    });
    expectExit(await cli(['hold', 'remove', '--tenant', 'old-b']), 0);
    const one = parseJson<PurgeJson>((await cli(['purge', '--tenant', 'old-b', '--format', 'json'])).stdout);
    expect(one).toMatchObject({ deleted: 1, dry_run: false, tenants: [{ tenant_id: 'old-b', deleted: 1 }] });
    const rest = await cli(['purge', '--batch-size', '1', '--format', 'json']);
    expectExit(rest, 0);
    expect(parseJson<PurgeJson>(rest.stdout)).toMatchObject({
      deleted: 2,
      tenants: [{ tenant_id: 'old-a', deleted: 2 }],
    });
    expect(parseJson<PurgeJson>((await cli(['purge', '--format', 'json'])).stdout).deleted).toBe(0);
  });

  it('ACTIVITY_RETENTION_DAYS sets the default cutoff; --older-than overrides it', async () => {
    const viaEnv = await cli(['purge', '--dry-run', '--format', 'json'], {
      env: { ACTIVITY_RETENTION_DAYS: '1' },
    });
    expect(Date.now() - Date.parse(parseJson<PurgeJson>(viaEnv.stdout).cutoff)).toBeGreaterThan(86_000_000);
    const viaFlag = await cli(['purge', '--dry-run', '--older-than', '0m', '--format', 'json']);
    expectJsonError(viaFlag, 2, 'USAGE_INVALID');
    const recent = await cli(['purge', '--dry-run', '--older-than', '1s', '--format', 'json']);
    expect(parseJson<PurgeJson>(recent.stdout)).toMatchObject({ dry_run: true });
  });

  it('bad flags exit 2 with USAGE_INVALID', async () => {
    for (const args of [
      ['--older-than', 'yesterday'],
      // A cutoff before the year 1 cannot be written as a timestamp.
      ['--older-than', '999999w'],
      ['--older-than', '36501d'],
      ['--batch-size', '0'],
      ['--batch-size', '1000001'],
      ['--tenant', 'bad tenant!'],
      ['--unknown-flag'],
    ]) {
      // Refusals: the same CLI in this process, where a process of its own adds nothing.
      const refused = await runCliInProcess(['purge', ...args, '--format', 'json'], {
        env: { ACTIVITY_DATABASE_URL: database.url },
      });
      expectJsonError(refused, 2, 'USAGE_INVALID');
    }
  });

  it('--metrics-file writes the run in the Prometheus text format, replacing the last one', async () => {
    const directory = await mkdtemp(join(tmpdir(), 'activity-metrics-'));
    const path = join(directory, 'activity_purge.prom');
    try {
      expectExit(await cli(['purge', '--older-than', '1s', '--metrics-file', path, '--format', 'json']), 0);
      const text = await readFile(path, 'utf8');
      expect(text).toMatch(/^# TYPE activity_events_purged_total counter$/m);
      expect(text).toMatch(/^activity_purge_success 1$/m);
      const ended = Number(/^activity_purge_last_run_timestamp_seconds (\S+)$/m.exec(text)?.[1]);
      expect(Math.abs(ended - Date.now() / 1000)).toBeLessThan(60);
      // A failed run says so (and still counts what it deleted before failing).
      const failed = await cliFor({ ACTIVITY_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' })([
        'purge',
        '--metrics-file',
        path,
      ]);
      expectExit(failed, 3);
      expect(await readFile(path, 'utf8')).toMatch(/^activity_purge_success 0$/m);
      expect(await readdir(directory)).toEqual(['activity_purge.prom']);
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('an unreachable database exits 3', async () => {
    const run = await cliFor({ ACTIVITY_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' })([
      'purge',
      '--format',
      'json',
    ]);
    expectJsonError(run, 3, 'DB_UNAVAILABLE');
  });
});
