import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import type { EventJson } from '../helpers/event-shape.js';
import {
  cliFor,
  expectExit,
  expectJsonError,
  parseJson,
  parseNdjson,
  testSecret,
} from '../helpers/run-cli.js';

interface Page {
  data: EventJson[];
  next_cursor: string | null;
}

describe('tenant isolation', () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;
  let cursorA: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    const line = (tenant: string, i: number) =>
      JSON.stringify({ tenant_id: tenant, action: 'auth.login.success', actor_id: `${tenant}_user_${i}` });
    const input = `${[0, 1, 2, 3, 4].flatMap((i) => [line('tenant-a', i), ...(i < 2 ? [line('tenant-b', i)] : [])]).join('\n')}\n`;
    const run = await cli(['record', '--file', '-', '--format', 'json'], { input });
    expectExit(run, 0);
    expect(parseJson(run.stdout)).toMatchObject({ recorded: 7 });
    const pageA = await cli(['query', '--tenant', 'tenant-a', '--limit', '2', '--format', 'json']);
    expectExit(pageA, 0);
    cursorA = parseJson<Page>(pageA.stdout).next_cursor as string;
    expect(cursorA).toEqual(expect.any(String));
  });
  afterAll(async () => {
    await database?.drop();
  });

  it("tenant B's query never shows tenant A's events, and each tenant has its own seq", async () => {
    const [a, b] = await Promise.all(
      ['tenant-a', 'tenant-b'].map(async (tenant) => {
        const run = await cli(['query', '--tenant', tenant, '--all', '--format', 'ndjson']);
        expectExit(run, 0);
        return parseNdjson<EventJson>(run.stdout);
      }),
    );
    expect(a?.map((event) => event.seq)).toEqual([5, 4, 3, 2, 1]);
    expect(b?.map((event) => event.seq)).toEqual([2, 1]);
    expect(
      b?.every((event) => event.tenant_id === 'tenant-b' && event.actor_id?.startsWith('tenant-b_')),
    ).toBe(true);
    const idsOfA = new Set(a?.map((event) => event.id));
    expect(b?.some((event) => idsOfA.has(event.id))).toBe(false);
    const filtered = await cli([
      'query',
      '--tenant',
      'tenant-b',
      '--actor-id',
      'tenant-a_user_3',
      '--format',
      'json',
    ]);
    expect(parseJson<Page>(filtered.stdout).data).toEqual([]);
  });

  it('a cursor from tenant A is rejected for tenant B with CURSOR_INVALID', async () => {
    const run = await cli([
      'query',
      '--tenant',
      'tenant-b',
      '--limit',
      '2',
      '--cursor',
      cursorA,
      '--format',
      'json',
    ]);
    expectJsonError(run, 2, 'CURSOR_INVALID');
    expect(run.stdout).toBe('');
  });

  it('a cursor used with different filters is rejected', async () => {
    const runs = await Promise.all([
      cli([
        'query',
        '--tenant',
        'tenant-a',
        '--limit',
        '2',
        '--cursor',
        cursorA,
        '--status',
        'success',
        '--format',
        'json',
      ]),
      cli(['query', '--tenant', 'tenant-a', '--cursor', cursorA, '--action', 'auth.*', '--format', 'json']),
    ]);
    for (const run of runs) {
      expectJsonError(run, 2, 'CURSOR_INVALID');
      expect(run.stdout).toBe('');
    }
  });

  it('the same cursor still works for tenant A with the same filters', async () => {
    const run = await cli([
      'query',
      '--tenant',
      'tenant-a',
      '--limit',
      '2',
      '--cursor',
      cursorA,
      '--format',
      'json',
    ]);
    expectExit(run, 0);
    expect(parseJson<Page>(run.stdout).data.map((event) => event.seq)).toEqual([3, 2]);
  });

  it('an edited cursor is rejected', async () => {
    // Any change to an opaque cursor breaks its signature.
    const forged = `${cursorA.startsWith('A') ? 'B' : 'A'}${cursorA.slice(1)}`;
    const run = await cli([
      'query',
      '--tenant',
      'tenant-a',
      '--limit',
      '2',
      '--cursor',
      forged,
      '--format',
      'json',
    ]);
    expectJsonError(run, 2, 'CURSOR_INVALID');
  });

  it('a cursor signed with another ACTIVITY_SECRET is rejected', async () => {
    const run = await cli(
      ['query', '--tenant', 'tenant-a', '--limit', '2', '--cursor', cursorA, '--format', 'json'],
      {
        env: { ACTIVITY_SECRET: 'another-secret-another-secret-another-secret' },
      },
    );
    expectJsonError(run, 2, 'CURSOR_INVALID');
  });
});
