import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAppWithDatabase } from '../../src/app/open-app.js';
import { loadConfig } from '../../src/config/load-config.js';
import { createTestDatabase } from '../helpers/databases.js';
import { type EventJson, eventFields, expectEventShape } from '../helpers/event-shape.js';
import {
  binPath,
  cliFor,
  expectExit,
  inProcessCliFor,
  parseJson,
  parseNdjson,
  testSecret,
} from '../helpers/run-cli.js';

let database: { url: string; drop(): Promise<void> };
/** `activity …` in a process of its own: every query under test runs so. */
let cli: ReturnType<typeof cliFor>;
/** The same CLI in this process: for recording what the queries read. */
let cliInProcess: ReturnType<typeof inProcessCliFor>;

interface Page {
  data: EventJson[];
  next_cursor: string | null;
}

/** Records NDJSON lines for one tenant with `record --file -`, in this process. */
async function importEvents(tenant: string, events: readonly Record<string, unknown>[]) {
  const input = `${events.map((event) => JSON.stringify({ tenant_id: tenant, ...event })).join('\n')}\n`;
  const run = await cliInProcess(['record', '--file', '-', '--format', 'json'], { input });
  expectExit(run, 0);
  expect(parseJson(run.stdout)).toMatchObject({ recorded: events.length, rejected: [] });
}

/**
 * Records events for one tenant as `record` checks them, all stamped `createdAt`: the
 * database's own clock cannot be told when to stamp an event.
 */
async function recordAt(tenant: string, events: readonly Record<string, unknown>[], createdAt: Date) {
  const config = loadConfig({ databaseUrl: database.url }, { ACTIVITY_SECRET: testSecret });
  const { app, database: store } = await openAppWithDatabase(config);
  try {
    const prepared = events.map((event) => app.service.prepare({ tenant_id: tenant, ...event }));
    await store.repository.append(tenant, prepared, { createdAt });
  } finally {
    await app.close();
  }
}

async function queryPage(args: readonly string[]): Promise<Page> {
  const run = await cli(['query', ...args, '--format', 'json']);
  expectExit(run, 0);
  return parseJson<Page>(run.stdout);
}

/** The seq numbers a filtered query returns (one page of up to 1000). */
async function seqs(tenant: string, filters: readonly string[]): Promise<number[]> {
  const page = await queryPage(['--tenant', tenant, '--limit', '1000', ...filters]);
  expect(page.next_cursor).toBeNull();
  return page.data.map((event) => event.seq);
}

beforeAll(async () => {
  database = await createTestDatabase();
  const env = { ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret };
  cli = cliFor(env);
  cliInProcess = inProcessCliFor(env);
});
afterAll(async () => {
  await database?.drop();
});

describe('query filters', () => {
  const tenant = 'q-filters';
  /** seq → event, in recording order (seq 1 first). */
  const seeded = [
    { action: 'auth.login.success', actor_id: 'u_1', request_id: 'r-1' },
    { action: 'auth.login.failure', actor_id: 'u_2', status: 'failure', metadata: { reason: 'other' } },
    { action: 'auth.logout.completed', actor_id: 'u_1', request_id: 'r-1' },
    {
      action: 'storage.file.uploaded',
      actor_id: 'u_1',
      object_type: 'file',
      object_id: 'f_1',
      metadata: { file_id: 'f_1' },
    },
    {
      action: 'storage.file.deleted',
      actor_id: 'u_2',
      object_type: 'file',
      object_id: 'f_1',
      metadata: { file_id: 'f_1' },
    },
    {
      action: 'containers.container.created',
      actor_type: 'system',
      object_type: 'container',
      object_id: 'c_1',
      status: 'pending',
      metadata: { container_id: 'c_1' },
    },
    {
      action: 'auth.account.locked',
      actor_id: 'u_2',
      status: 'success',
      request_id: 'r-2',
      metadata: { reason: 'too_many_attempts' },
    },
  ];
  let late: EventJson[];

  beforeAll(async () => {
    // Two batches a second apart (and a minute ago, well within --since 15m).
    const first = Date.now() - 60_000;
    await recordAt(tenant, seeded.slice(0, 5), new Date(first));
    await recordAt(tenant, seeded.slice(5), new Date(first + 1000));
    late = (await queryPage(['--tenant', tenant, '--limit', '2'])).data;
  });

  it('returns every event newest first by default, in the contract shape', async () => {
    const page = await queryPage(['--tenant', tenant]);
    expect(page.data.map((event) => event.seq)).toEqual([7, 6, 5, 4, 3, 2, 1]);
    expect(page.next_cursor).toBeNull();
    for (const event of page.data) {
      expectEventShape(event);
      expect(event.tenant_id).toBe(tenant);
    }
    expect(page.data.map((event) => event.action)).toEqual(seeded.map((event) => event.action).reverse());
  });

  it.concurrent.each<[string, string[], number[]]>([
    ['--action with an exact name matches only that action', ['--action', 'auth.login.success'], [1]],
    [
      '--action auth.* matches the whole namespace and nothing outside it',
      ['--action', 'auth.*'],
      [7, 3, 2, 1],
    ],
    ['--action auth.login.* matches a deeper prefix', ['--action', 'auth.login.*'], [2, 1]],
    [
      '--action takes a comma list of exact names and prefixes',
      ['--action', 'auth.logout.completed,storage.*,containers.container.created'],
      [6, 5, 4, 3],
    ],
    ['--actor-id matches one actor', ['--actor-id', 'u_1'], [4, 3, 1]],
    ['--object-type matches one kind of object', ['--object-type', 'file'], [5, 4]],
    ['--object-id matches one object', ['--object-id', 'c_1'], [6]],
    ['--request-id matches one correlation id', ['--request-id', 'r-1'], [3, 1]],
    ['--status failure matches failures only', ['--status', 'failure'], [2]],
    ['filters combine with AND', ['--actor-id', 'u_2', '--action', 'storage.*'], [5]],
    ['filters that exclude each other match nothing', ['--actor-id', 'u_2', '--status', 'pending'], []],
    ['--since 15m (relative) keeps what was just recorded', ['--since', '15m'], [7, 6, 5, 4, 3, 2, 1]],
    ['--since 7d (relative) keeps what was just recorded', ['--since', '7d'], [7, 6, 5, 4, 3, 2, 1]],
    ['--until 24h (relative) means before a day ago', ['--until', '24h'], []],
    [
      '--since and --until take RFC 3339 with an offset',
      ['--since', '2000-01-01T00:00:00+02:00', '--until', '2999-01-01T00:00:00Z'],
      [7, 6, 5, 4, 3, 2, 1],
    ],
  ])('%s', async (_behaviour, filters, expected) => {
    expect(await seqs(tenant, filters)).toEqual(expected);
  });

  it('--since is at or after and --until is before an RFC 3339 instant', async () => {
    const boundary = late.at(-1)?.created_at as string;
    expect(late.map((event) => event.seq)).toEqual([7, 6]);
    const [since, until] = await Promise.all([
      seqs(tenant, ['--since', boundary]),
      seqs(tenant, ['--until', boundary]),
    ]);
    expect(since).toEqual([7, 6]);
    expect(until).toEqual([5, 4, 3, 2, 1]);
  });

  it('--limit caps the page and sets next_cursor only when more remain', async () => {
    const page = await queryPage(['--tenant', tenant, '--limit', '3']);
    expect(page.data.map((event) => event.seq)).toEqual([7, 6, 5]);
    expect(page.next_cursor).toEqual(expect.any(String));
    const exact = await queryPage(['--tenant', tenant, '--limit', '7']);
    expect(exact.data).toHaveLength(7);
    expect(exact.next_cursor).toBeNull();
  });
});

describe('query output formats', () => {
  const tenant = 'q-formats';
  let json: { stdout: string; exitCode: number };

  beforeAll(async () => {
    await importEvents(tenant, [
      { action: 'auth.login.success', actor_id: 'u_1', user_agent: 'Mozilla/5.0, "quoted"' },
      {
        action: 'auth.login.failure',
        actor_id: '=cmd()',
        metadata: { reason: 'other', context: { note: 'a,b' } },
      },
    ]);
    json = await cli(['query', '--tenant', tenant, '--format', 'json']);
  });

  it('--format json is one document {"data":[…],"next_cursor":…}', () => {
    expect(json.exitCode).toBe(0);
    const body = parseJson<Page>(json.stdout);
    expect(Object.keys(body)).toEqual(['data', 'next_cursor']);
    expect(body.data.map((event) => event.seq)).toEqual([2, 1]);
    for (const event of body.data) expectEventShape(event);
    expect(body.next_cursor).toBeNull();
    expect(json.stdout.trimEnd().split('\n')).toHaveLength(1);
  });

  it('prints NDJSON, one event per line, when piped without --format', async () => {
    const run = await cli(['query', '--tenant', tenant]);
    expectExit(run, 0);
    expect(parseNdjson<EventJson>(run.stdout)).toEqual(parseJson<Page>(json.stdout).data);
  });

  it('--format csv prints the header and one RFC 4180 row per event', async () => {
    const run = await cli(['query', '--tenant', tenant, '--format', 'csv']);
    expectExit(run, 0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(eventFields.join(','));
    expect(lines).toHaveLength(3);
    const [newest, oldest] = parseJson<Page>(json.stdout).data as [EventJson, EventJson];
    expect(lines[1]?.startsWith(`${newest.id},${tenant},2,auth.login.failure,user,`)).toBe(true);
    expect(lines[2]?.startsWith(`${oldest.id},${tenant},1,auth.login.success,user,u_1,`)).toBe(true);
    // Quotes doubled inside a quoted field; a formula-looking value is neutralised.
    expect(lines[2]).toContain('"Mozilla/5.0, ""quoted"""');
    expect(lines[1]).not.toMatch(/,=cmd\(\)/);
    expect(lines[1]).toContain(`"${JSON.stringify(newest.metadata).replaceAll('"', '""')}"`);
    expect(lines[1]?.endsWith(`,${newest.created_at}`)).toBe(true);
  });

  it('--format table shows stored control characters escaped, never raw', async () => {
    const hostile = 'u_\u001b]0;pwned\u0007\u001b[2J\r\u2028';
    await importEvents('q-escape', [{ action: 'auth.login.success', actor_id: hostile }]);
    const [table, ndjson] = await Promise.all([
      cli(['query', '--tenant', 'q-escape', '--format', 'table']),
      cli(['query', '--tenant', 'q-escape', '--format', 'ndjson']),
    ]);
    expectExit(table, 0);
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for raw control characters is the point.
    expect(table.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f\u2028]/);
    expect(table.stdout).toContain('pwned');
    // The data itself is stored as given: JSON output escapes it losslessly.
    expect(parseNdjson<EventJson>(ndjson.stdout)[0]?.actor_id).toBe(hostile);
  });

  it('an empty result is an empty page, not an error', async () => {
    const [json, ndjson] = await Promise.all([
      queryPage(['--tenant', 'q-nobody']),
      cli(['query', '--tenant', 'q-nobody', '--format', 'ndjson']),
    ]);
    expect(json).toEqual({ data: [], next_cursor: null });
    expectExit(ndjson, 0);
    expect(ndjson.stdout).toBe('');
  });
});

describe('pagination', () => {
  it('--cursor walks back through the old events while new ones are recorded between pages', async () => {
    const tenant = 'q-paging';
    await importEvents(
      tenant,
      Array.from({ length: 7 }, (_, i) => ({ action: 'auth.login.success', actor_id: `old_${i + 1}` })),
    );
    const seen: number[] = [];
    let page = await queryPage(['--tenant', tenant, '--limit', '3']);
    seen.push(...page.data.map((event) => event.seq));
    expect(seen).toEqual([7, 6, 5]);

    let pages = 1;
    while (page.next_cursor) {
      // New events arrive between pages: they are newer than every page still to come.
      await importEvents(tenant, [
        { action: 'auth.logout.completed', actor_id: `new_${pages}a` },
        { action: 'auth.logout.completed', actor_id: `new_${pages}b` },
      ]);
      page = await queryPage(['--tenant', tenant, '--limit', '3', '--cursor', page.next_cursor]);
      seen.push(...page.data.map((event) => event.seq));
      pages++;
      expect(pages).toBeLessThan(10);
    }
    expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1]);

    // The new events were stored, and a fresh query starts with them.
    const fresh = await queryPage(['--tenant', tenant, '--limit', '1']);
    expect(fresh.data[0]?.actor_id).toBe(`new_${pages - 1}b`);
  });

  it('a cursor keeps the filters and the time window of the first page', async () => {
    const tenant = 'q-paging-filtered';
    await importEvents(
      tenant,
      Array.from({ length: 6 }, (_, i) => ({
        action: i % 2 === 0 ? 'auth.login.success' : 'auth.logout.completed',
      })),
    );
    const first = await queryPage([
      '--tenant',
      tenant,
      '--action',
      'auth.login.success',
      '--since',
      '1h',
      '--limit',
      '2',
    ]);
    expect(first.data.map((event) => event.seq)).toEqual([5, 3]);
    const second = await queryPage([
      '--tenant',
      tenant,
      '--action',
      'auth.login.success',
      '--since',
      '1h',
      '--limit',
      '2',
      '--cursor',
      first.next_cursor as string,
    ]);
    expect(second.data.map((event) => event.seq)).toEqual([1]);
    expect(second.next_cursor).toBeNull();
  });

  it('--all --format ndjson streams every event exactly once, newest first, past one internal page', async () => {
    const tenant = 'q-all';
    // One more than the service reads per internal page.
    const count = 1001;
    await importEvents(
      tenant,
      Array.from({ length: count }, (_, i) => ({ action: 'auth.token.refreshed', actor_id: `u_${i}` })),
    );
    const run = await cli(['query', '--tenant', tenant, '--all', '--format', 'ndjson']);
    expectExit(run, 0);
    const events = parseNdjson<EventJson>(run.stdout);
    expect(events).toHaveLength(count);
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: count }, (_, i) => count - i));
    expect(new Set(events.map((event) => event.id)).size).toBe(count);
    expect(events.every((event) => event.tenant_id === tenant)).toBe(true);
  });

  it('--all --format json is the same page shape with next_cursor null', async () => {
    const run = await cli(['query', '--tenant', 'q-all', '--all', '--action', 'auth.*', '--format', 'json']);
    expectExit(run, 0);
    const body = parseJson<Page>(run.stdout);
    expect(Object.keys(body)).toEqual(['data', 'next_cursor']);
    expect(body.data).toHaveLength(1001);
    expect(body.next_cursor).toBeNull();
  });

  it('--all ends quietly, with exit 0, when its reader leaves early (| head)', async () => {
    const tenant = 'q-pipe';
    // Far more than a pipe holds (64 KiB), so that writes follow the reader's leaving.
    await importEvents(
      tenant,
      Array.from({ length: 1000 }, (_, i) => ({ action: 'auth.token.refreshed', actor_id: `u_${i}` })),
    );
    const child = spawn(
      process.execPath,
      [binPath, 'query', '--tenant', tenant, '--all', '--format', 'ndjson'],
      {
        env: {
          PATH: process.env.PATH,
          NO_COLOR: '1',
          ACTIVITY_DATABASE_URL: database.url,
          ACTIVITY_SECRET: testSecret,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr += text;
    });
    // Closing the pipe's read end after the first chunk: the next writes meet EPIPE.
    child.stdout.once('data', () => child.stdout.destroy());
    const [code] = await once(child, 'exit');
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
  });

  it('--all prints, in ndjson and in json, the events the pages print', async () => {
    const first = await queryPage(['--tenant', 'q-all', '--limit', '1000']);
    const rest = await queryPage([
      '--tenant',
      'q-all',
      '--limit',
      '1000',
      '--cursor',
      first.next_cursor as string,
    ]);
    const paged = [...first.data, ...rest.data];
    expect(paged).toHaveLength(1001);
    const ndjson = await cli(['query', '--tenant', 'q-all', '--all', '--format', 'ndjson']);
    expectExit(ndjson, 0);
    expect(parseNdjson<EventJson>(ndjson.stdout)).toEqual(paged);
    const json = await cli(['query', '--tenant', 'q-all', '--all', '--format', 'json']);
    expectExit(json, 0);
    expect(parseJson<Page>(json.stdout).data).toEqual(paged);
  });
});
