import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { type EventJson, expectEventShape } from '../helpers/event-shape.js';
import {
  cliFor,
  createTempDir,
  expectExit,
  expectJsonError,
  inProcessCliFor,
  parseJson,
  parseNdjson,
  testSecret,
} from '../helpers/run-cli.js';

let database: { url: string; drop(): Promise<void> };
let temp: { path: string; remove(): Promise<void> };
/** `activity …` in a process of its own: every record under test runs so. */
let cli: ReturnType<typeof cliFor>;
/** The same CLI in this process: for refusals, and for reading back what was stored. */
let cliInProcess: ReturnType<typeof inProcessCliFor>;

beforeAll(async () => {
  [database, temp] = await Promise.all([createTestDatabase(), createTempDir('record')]);
  const env = { ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret };
  cli = cliFor(env);
  cliInProcess = inProcessCliFor(env);
});
afterAll(async () => {
  await Promise.all([database?.drop(), temp?.remove()]);
});

async function queryAll(tenant: string): Promise<EventJson[]> {
  const run = await cliInProcess(['query', '--tenant', tenant, '--all', '--format', 'ndjson']);
  expectExit(run, 0);
  return parseNdjson<EventJson>(run.stdout);
}

async function recordJson(args: readonly string[]): Promise<EventJson> {
  const run = await cli(['record', ...args, '--format', 'json']);
  expectExit(run, 0);
  const event = parseJson<EventJson>(run.stdout);
  expectEventShape(event);
  return event;
}

describe('record one event', () => {
  it('stores every flag and prints the stored event in the contract shape', async () => {
    const id = randomUUID();
    const before = Date.now();
    const event = await recordJson([
      '--tenant',
      'rec-all',
      '--action',
      'auth.login.failure',
      '--actor-type',
      'service_account',
      '--actor-id',
      'sa_42',
      '--object-type',
      'session',
      '--object-id',
      'sess_9',
      '--status',
      'failure',
      '--source',
      'cli',
      '--request-id',
      'req-123',
      '--ip',
      '203.0.113.7',
      '--user-agent',
      'curl/8.5.0',
      '--metadata',
      '{"reason":"invalid_credentials","method":"password"}',
      '--id',
      id,
    ]);
    expect(event).toMatchObject({
      id,
      tenant_id: 'rec-all',
      seq: 1,
      action: 'auth.login.failure',
      actor_type: 'service_account',
      actor_id: 'sa_42',
      object_type: 'session',
      object_id: 'sess_9',
      status: 'failure',
      source: 'cli',
      request_id: 'req-123',
      user_agent: 'curl/8.5.0',
      metadata: { reason: 'invalid_credentials', method: 'password' },
    });
    expect(event.ip_hash).toMatch(/^[0-9a-f]{64}$/);
    const createdAt = Date.parse(event.created_at);
    expect(createdAt).toBeGreaterThanOrEqual(before - 1000);
    expect(createdAt).toBeLessThanOrEqual(Date.now() + 1000);

    // What was printed is what was stored.
    expect(await queryAll('rec-all')).toEqual([event]);
  });

  it('defaults to actor type user and status success, with absent fields null', async () => {
    const event = await recordJson(['--tenant', 'rec-defaults', '--action', 'auth.logout.completed']);
    expect(event).toMatchObject({
      tenant_id: 'rec-defaults',
      seq: 1,
      action: 'auth.logout.completed',
      actor_type: 'user',
      status: 'success',
      actor_id: null,
      object_type: null,
      object_id: null,
      source: null,
      request_id: null,
      ip_hash: null,
      user_agent: null,
      metadata: {},
    });
  });

  it('stores an IP only as a 64-hex keyed hash that is the same for every spelling of the address', async () => {
    const ip = '198.51.100.23';
    // Four processes at once: the hash depends on the address, not on the order.
    const recordFrom = (address: string) =>
      recordJson(['--tenant', 'rec-ip', '--action', 'auth.login.success', '--ip', address]);
    const [first, again, v6, v6Long] = await Promise.all([
      recordFrom(ip),
      recordFrom(ip),
      recordFrom('2001:DB8::1'),
      recordFrom('2001:0db8:0:0:0:0:0:1'),
    ]);
    expect(first.ip_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(again.ip_hash).toBe(first.ip_hash);
    expect(v6.ip_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(v6.ip_hash).not.toBe(first.ip_hash);
    expect(v6Long.ip_hash).toBe(v6.ip_hash);
    expect(first.ip_hash).not.toContain('198');

    const runs = await Promise.all(
      ['json', 'csv'].map((format) => cli(['query', '--tenant', 'rec-ip', '--format', format])),
    );
    for (const run of runs) {
      expectExit(run, 0);
      expect(run.stdout).not.toContain(ip);
      expect(run.stdout.toLowerCase()).not.toContain('2001:db8');
      expect(run.stdout).not.toMatch(/"ip"\s*:/);
    }
  });

  it('rejects an IP that is not an address, storing nothing', async () => {
    const run = await cliInProcess([
      'record',
      '--tenant',
      'rec-bad-ip',
      '--action',
      'auth.login.success',
      '--ip',
      'not-an-ip',
      '--format',
      'json',
    ]);
    const error = expectJsonError(run, 2, 'VALIDATION_FAILED');
    expect(error.message).toContain('ip');
    expect(await queryAll('rec-bad-ip')).toEqual([]);
  });

  it('replaces secret-looking metadata keys and values with [REDACTED] before storage', async () => {
    const secrets = {
      password: 'hunter2-hunter2',
      apiKey: 'k-1234567890abcdef',
      Session_ID: 'sess-abcdef123456',
      header: 'Bearer abcdefghijklmnopqrstuvwxyz0123',
      jwt: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlc2ln',
      card: '4111 1111 1111 1111',
    };
    const event = await recordJson([
      '--tenant',
      'rec-secret',
      '--action',
      'auth.login.success',
      '--metadata',
      JSON.stringify({ method: 'password', context: { ...secrets, note: 'kept as is', attempts: 3 } }),
    ]);
    expect(event.metadata).toEqual({
      method: 'password',
      context: {
        password: '[REDACTED]',
        apiKey: '[REDACTED]',
        Session_ID: '[REDACTED]',
        header: '[REDACTED]',
        jwt: '[REDACTED]',
        card: '[REDACTED]',
        note: 'kept as is',
        attempts: 3,
      },
    });
    const stored = await cli(['query', '--tenant', 'rec-secret', '--format', 'json']);
    for (const secret of Object.values(secrets)) expect(stored.stdout).not.toContain(secret);
  });

  it('a retry with the same --id returns the first event, same seq, and adds no row', async () => {
    const id = randomUUID();
    const args = ['--tenant', 'rec-retry', '--action', 'auth.login.success', '--id', id];
    const first = await recordJson([...args, '--actor-id', 'u_1']);
    const other = await recordJson(['--tenant', 'rec-retry', '--action', 'auth.logout.completed']);
    const retry = await recordJson([...args, '--actor-id', 'u_1']);
    expect(first.seq).toBe(1);
    expect(other.seq).toBe(2);
    expect(retry).toEqual(first);

    const stored = await queryAll('rec-retry');
    expect(stored.map((event) => event.seq)).toEqual([2, 1]);
    expect(stored.filter((event) => event.id === id)).toEqual([first]);
  });

  it('prints NDJSON when piped and no --format is given', async () => {
    const run = await cli(['record', '--tenant', 'rec-piped', '--action', 'auth.login.success']);
    expectExit(run, 0);
    const [event, ...rest] = parseNdjson<EventJson>(run.stdout);
    expect(rest).toEqual([]);
    expectEventShape(event);
    expect(event.tenant_id).toBe('rec-piped');
  });
});

describe('record --file', () => {
  const line = (fields: Record<string, unknown>) => JSON.stringify({ tenant_id: 'imp-file', ...fields });

  it('records the valid lines, counts duplicates, reports each rejected line, and exits 2', async () => {
    const repeated = randomUUID();
    const lines = [
      /* 1 */ line({ id: repeated, action: 'auth.login.success', actor_id: 'u_1' }),
      /* 2 */ '',
      /* 3 */ line({ action: 'auth.nothing.happened' }),
      /* 4 */ '{"tenant_id": "imp-file", "action": ',
      /* 5 */ line({ action: 'auth.login.success', ip: '192.0.2.55', metadata: { method: 'sso' } }),
      /* 6 */ line({ id: repeated, action: 'auth.login.success', actor_id: 'u_1' }),
      /* 7 */ '   ',
      /* 8 */ line({ action: 'auth.login.failure', metadata: { reason: 'bogus' } }),
      /* 9 */ line({ action: 'auth.logout.completed', status: 'pending', actor_type: 'system' }),
      /* 10 */ line({ action: 'auth.login.success', ip_hash: 'f'.repeat(64) }),
      /* 11, no final newline */ line({ action: 'auth.token.refreshed' }),
    ];
    const path = join(temp.path, 'events.ndjson');
    await writeFile(path, lines.join('\n'));

    const run = await cli(['record', '--file', path, '--format', 'json']);
    expectExit(run, 2);
    const report = parseJson<{
      recorded: number;
      duplicates: number;
      rejected: { line: number; code: string; message: string }[];
    }>(run.stdout);
    expect(report).toMatchObject({ recorded: 4, duplicates: 1 });
    expect(report.rejected.map(({ line, code }) => ({ line, code }))).toEqual([
      { line: 3, code: 'ACTION_UNKNOWN' },
      { line: 4, code: 'INPUT_UNREADABLE' },
      { line: 8, code: 'VALIDATION_FAILED' },
      { line: 10, code: 'VALIDATION_FAILED' },
    ]);
    for (const rejected of report.rejected) {
      expect(Object.keys(rejected).sort()).toEqual(['code', 'line', 'message']);
      expect(rejected.message.length).toBeGreaterThan(0);
    }
    expect(report.rejected[2]?.message).toContain('metadata.reason');
    expect(report.rejected[3]?.message).toContain('ip_hash');

    const stored = await queryAll('imp-file');
    expect(stored.map((event) => event.seq)).toEqual([4, 3, 2, 1]);
    expect(stored.map((event) => event.action)).toEqual([
      'auth.token.refreshed',
      'auth.logout.completed',
      'auth.login.success',
      'auth.login.success',
    ]);
    for (const event of stored) expectEventShape(event);
    expect(stored.filter((event) => event.id === repeated)).toHaveLength(1);
    expect(stored[1]).toMatchObject({ status: 'pending', actor_type: 'system' });
    expect(stored[2]?.ip_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(stored)).not.toContain('192.0.2.55');
    // The ip_hash a caller sent (line 10) was rejected, never stored.
    expect(JSON.stringify(stored)).not.toContain('f'.repeat(64));
  });

  it('importing the same file again records nothing new and counts every line as a duplicate', async () => {
    const ids = [randomUUID(), randomUUID()];
    const path = join(temp.path, 'again.ndjson');
    await writeFile(
      path,
      `${ids.map((id) => JSON.stringify({ id, tenant_id: 'imp-again', action: 'auth.login.success' })).join('\n')}\n`,
    );
    const first = await cli(['record', '--file', path, '--format', 'json']);
    expectExit(first, 0);
    expect(parseJson(first.stdout)).toMatchObject({ recorded: 2, duplicates: 0, rejected: [] });
    const second = await cli(['record', '--file', path, '--format', 'json']);
    expectExit(second, 0);
    expect(parseJson(second.stdout)).toMatchObject({ recorded: 0, duplicates: 2, rejected: [] });
    expect((await queryAll('imp-again')).map((event) => event.id).sort()).toEqual([...ids].sort());
  });

  it('reads stdin with --file -, skips blank lines, and exits 0 when nothing is rejected', async () => {
    const input = [
      JSON.stringify({ tenant_id: 'imp-stdin', action: 'auth.login.success', actor_id: 'u_1' }),
      '',
      JSON.stringify({ tenant_id: 'imp-stdin', action: 'auth.logout.completed', actor_id: 'u_1' }),
      '',
      '',
      JSON.stringify({
        tenant_id: 'imp-stdin',
        action: 'auth.login.failure',
        status: 'failure',
        metadata: { reason: 'invalid_credentials' },
      }),
      '',
    ].join('\n');
    const run = await cli(['record', '--file', '-', '--format', 'json'], { input });
    expectExit(run, 0);
    expect(parseJson(run.stdout)).toMatchObject({ recorded: 3, duplicates: 0, rejected: [] });
    expect((await queryAll('imp-stdin')).map((event) => event.action)).toEqual([
      'auth.login.failure',
      'auth.logout.completed',
      'auth.login.success',
    ]);
  });

  it('--resume-from skips the lines before it, and past the end of the input is a usage error', async () => {
    const input = `${['u_1', 'u_2', 'u_3']
      .map((actor) =>
        JSON.stringify({ tenant_id: 'imp-resume', action: 'auth.login.success', actor_id: actor }),
      )
      .join('\n')}\n`;
    const rest = await cli(['record', '--file', '-', '--resume-from', '2', '--format', 'json'], { input });
    expectExit(rest, 0);
    expect(parseJson(rest.stdout)).toMatchObject({ recorded: 2, committed_through_line: 3 });
    const nothingLeft = await cli(['record', '--file', '-', '--resume-from', '4', '--format', 'json'], {
      input,
    });
    expectExit(nothingLeft, 0);
    expect(parseJson(nothingLeft.stdout)).toMatchObject({ recorded: 0, committed_through_line: 3 });
    const pastTheEnd = await cliInProcess(
      ['record', '--file', '-', '--resume-from', '5', '--format', 'json'],
      {
        input,
      },
    );
    expect(expectJsonError(pastTheEnd, 2, 'USAGE_INVALID').message).toBe(
      '--resume-from 5 is past the end of the input, which has 3 lines: is it the same input?',
    );
    expect((await queryAll('imp-resume')).map((event) => event.actor_id)).toEqual(['u_3', 'u_2']);
  });

  it('reports a rejected stdin line by its number and exits 2', async () => {
    const input = `${JSON.stringify({ tenant_id: 'imp-stdin-bad', action: 'auth.login.success' })}\n\n{"tenant_id":"imp-stdin-bad"}\n`;
    const run = await cliInProcess(['record', '--file', '-', '--format', 'json'], { input });
    expectExit(run, 2);
    const report = parseJson<{ recorded: number; rejected: { line: number; code: string }[] }>(run.stdout);
    expect(report).toMatchObject({ recorded: 1, duplicates: 0 });
    expect(report.rejected).toEqual([{ line: 3, code: 'VALIDATION_FAILED', message: expect.any(String) }]);
  });

  it('a file that does not exist is an input error with exit 2', async () => {
    const run = await cliInProcess([
      'record',
      '--file',
      join(temp.path, 'missing.ndjson'),
      '--format',
      'json',
    ]);
    expectJsonError(run, 2, 'INPUT_UNREADABLE');
  });
});
