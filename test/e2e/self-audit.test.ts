import { generateKeyPairSync } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createTestDatabase } from '../helpers/databases.js';
import {
  cliFor,
  createTempDir,
  expectExit,
  expectJsonError,
  parseJson,
  testSecret,
} from '../helpers/run-cli.js';

/** The CLI's own use, in the tenant's log: as a new user would see it, through the built CLI. */
describe('the CLI accounts for itself', () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;

  beforeAll(async () => {
    database = await createTestDatabase();
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
  });
  afterAll(async () => database?.drop());

  const own = async (tenant: string, action = 'activity.*', env: Record<string, string> = {}) => {
    const run = await cli(['query', '--tenant', tenant, '--action', action, '--format', 'json'], {
      env: { ACTIVITY_AUDIT_READS: 'false', ...env },
    });
    expectExit(run, 0);
    return parseJson<{ data: ActivityEvent[] }>(run.stdout).data.reverse();
  };

  it('refuses to record an activity.* event, with exit 2 and a clear error', async () => {
    const run = await cli([
      'record',
      '--tenant',
      'reserved',
      '--action',
      'activity.hold.lifted',
      '--metadata',
      '{"placed_at":"2026-01-01T00:00:00.000Z"}',
      '--format',
      'json',
    ]);
    const error = expectJsonError(run, 2, 'ACTION_RESERVED');
    expect(error.message).toContain('reserved');
    expect(await own('reserved')).toEqual([]);
  });

  it('records who changed retention and holds: --actor, else ACTIVITY_ACTOR, else the OS user', async () => {
    expectExit(await cli(['retention', 'set', '--tenant', 'acme', '--days', '90', '--actor', 'alice']), 0);
    expectExit(
      await cli(['hold', 'add', '--tenant', 'acme', '--reason', 'case 7'], {
        env: { ACTIVITY_ACTOR: 'bob' },
      }),
      0,
    );
    expectExit(await cli(['hold', 'remove', '--tenant', 'acme']), 0);
    const events = await own('acme');
    expect(events.map((event) => [event.action, event.actor_id, event.source])).toEqual([
      ['activity.retention.changed', 'alice', 'cli'],
      ['activity.hold.placed', 'bob', 'cli'],
      ['activity.hold.lifted', userInfo().username, 'cli'],
    ]);
  });

  it('records each checkpoint `checkpoint --actor` signs, and nothing when there is nothing to sign', async () => {
    const keys = await createTempDir('self-audit-key');
    try {
      const keyFile = join(keys.path, 'signing-key.pem');
      const { privateKey } = generateKeyPairSync('ed25519');
      await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const env = { env: { ACTIVITY_SIGNING_KEY_FILE: keyFile } };
      expectExit(await cli(['record', '--tenant', 'signed', '--action', 'auth.login.success']), 0);
      const signs = async () => {
        const run = await cli(
          ['checkpoint', '--tenant', 'signed', '--actor', 'cron', '--format', 'json'],
          env,
        );
        expectExit(run, 0);
        return parseJson<{ checkpoints: Array<{ size: number; root_hash: string }> }>(run.stdout).checkpoints;
      };
      const [signed] = await signs();
      expect(signed?.size).toBe(1);
      expect(await signs()).toEqual([]);
      const events = await own('signed');
      expect(
        events.map((event) => [event.seq, event.action, event.actor_id, event.source, event.metadata]),
      ).toEqual([
        [2, 'activity.checkpoint.signed', 'cron', 'cli', { tree_size: 1, root_hash: signed?.root_hash }],
      ]);
    } finally {
      await keys.remove();
    }
  });

  it('a query is one read, left out of the next query; ACTIVITY_AUDIT_READS=false records none', async () => {
    expectExit(await cli(['record', '--tenant', 'reads', '--action', 'auth.login.success']), 0);
    const first = await cli(['query', '--tenant', 'reads', '--actor', 'carol', '--format', 'json']);
    expectExit(first, 0);
    expect(parseJson<{ data: ActivityEvent[] }>(first.stdout).data.map((e) => e.action)).toEqual([
      'auth.login.success',
    ]);
    const all = await cli(['query', '--tenant', 'reads', '--all', '--format', 'ndjson']);
    expectExit(all, 0);
    expect(
      all.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).action),
    ).toEqual(['auth.login.success']);
    expectExit(await cli(['query', '--tenant', 'reads'], { env: { ACTIVITY_AUDIT_READS: 'false' } }), 0);
    const reads = await own('reads', 'activity.events.read');
    expect(reads.map((event) => [event.actor_id, event.metadata])).toEqual([
      ['carol', { kind: 'page', filters: {}, cursor: false, returned: 1 }],
      [userInfo().username, { kind: 'all', filters: {}, cursor: false, returned: 1 }],
    ]);
  });

  it('an actor the event could not store is refused before anything is read or changed', async () => {
    const secret = await cli([
      'query',
      '--tenant',
      'reads',
      '--actor',
      'Bearer abcdefghijklmnopqrstuvwxyz0123456789',
      '--format',
      'json',
    ]);
    expect(expectJsonError(secret, 2, 'USAGE_INVALID').message).toMatch(/^--actor holds a credential/);
    const long = await cli(['hold', 'add', '--tenant', 'never-held', '--format', 'json'], {
      env: { ACTIVITY_ACTOR: 'x'.repeat(257) },
    });
    expect(expectJsonError(long, 2, 'CONFIG_INVALID').message).toContain('ACTIVITY_ACTOR');
    const holds = await cli(['hold', 'list', '--format', 'json']);
    expect(parseJson<{ holds: unknown[] }>(holds.stdout).holds).toEqual([]);
  });
});
