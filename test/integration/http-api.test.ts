import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createTestDatabase } from '../helpers/databases.js';
import { expectEventShape } from '../helpers/event-shape.js';
import {
  type ApiRequest,
  type ApiResponse,
  call,
  openRawConnection,
  startTestServer,
  type TestServer,
  testJwtSecret,
} from '../helpers/http-server.js';
import { newEvent } from '../helpers/new-event.js';
import { openApi } from '../helpers/openapi-contract.js';
import { eventually, openSse } from '../helpers/sse-client.js';

interface Page {
  data: ActivityEvent[];
  next_cursor: string | null;
}

interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
}

const contractMetrics = [
  'activity_events_recorded_total',
  'activity_record_failures_total',
  'activity_record_duration_seconds',
  'activity_stream_connections',
  'activity_stream_lag_seconds',
  'activity_http_requests_total',
  'activity_http_request_duration_seconds',
  'activity_events_purged_total',
  'activity_audit_events_suppressed_total',
] as const;

/** Every tenant this file has used: no metric and no other tenant's error may name one. */
const tenantsUsed = new Set<string>();

function newTenant(label: string): string {
  const tenant = `${label}-${randomUUID().slice(0, 8)}`;
  tenantsUsed.add(tenant);
  return tenant;
}

/** Asserts the problem+json contract and that the body leaks nothing. */
function expectProblem(
  response: ApiResponse<unknown>,
  status: number,
  code: string,
  callerTenant?: string,
): Problem {
  expect(response.status, response.text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  const problem = response.json as Problem;
  expect(Object.keys(problem).sort()).toEqual(['code', 'detail', 'status', 'title', 'type']);
  expect(problem).toMatchObject({
    type: expect.any(String),
    title: expect.any(String),
    status,
    detail: expect.any(String),
    code,
  });
  expectNoLeak(response.text, callerTenant);
  return problem;
}

/** No stack trace, no SQL, no tenant other than the caller's. */
function expectNoLeak(text: string, callerTenant?: string) {
  expect(text).not.toMatch(/\bat \S+ \(|\bat (?:file:\/\/|\/|node:)\S+:\d+/);
  expect(text).not.toMatch(/\.(?:ts|js|mjs|cjs):\d+/);
  expect(text).not.toMatch(/node_modules|node:internal|\/work\//);
  expect(text).not.toMatch(
    /\bselect\b|\binsert into\b|\bupdate\b.*\bset\b|\bdelete from\b|\bactivity_events\b/i,
  );
  for (const tenant of tenantsUsed) if (tenant !== callerTenant) expect(text).not.toContain(tenant);
}

/** The sum of a metric's samples whose labels include `labels`. */
function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const labelText = match[2] ?? '';
    if (Object.entries(labels).every(([key, value]) => labelText.includes(`${key}="${value}"`))) {
      sum += Number(match[3]);
    }
  }
  return sum;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

describe('HTTP API contract', () => {
  let database: { url: string; drop(): Promise<void> };
  let server: TestServer;
  /** The server's clock for relative times (`?since=1h`): the system's unless a test sets it. */
  let now: Date | undefined;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startTestServer({ databaseUrl: database.url, clock: () => now ?? new Date() });
  });
  afterEach(() => {
    now = undefined;
  });
  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  const api = <T = unknown>(path: string, request?: ApiRequest) => call<T>(server.url, path, request);

  /** A token that reads and writes `tenant`. */
  const tokenFor = (tenant: string) => server.token(tenant);

  async function record(
    tenant: string,
    events: readonly Record<string, unknown>[],
  ): Promise<ActivityEvent[]> {
    const response = await api<{ data: ActivityEvent[] }>('/api/v1/activity', {
      token: await tokenFor(tenant),
      body: events,
    });
    expect(response.status, response.text).toBe(201);
    return response.json.data;
  }

  async function list(tenant: string, query = ''): Promise<Page> {
    const response = await api<Page>(`/api/v1/activity${query}`, { token: await tokenFor(tenant) });
    expect(response.status, response.text).toBe(200);
    return response.json;
  }

  describe('GET /api/v1/activity', () => {
    it('returns 200 with the data newest first and a null next_cursor when all fit', async () => {
      const tenant = newTenant('list');
      await record(tenant, [
        { action: 'auth.login.success', actor_id: 'u1' },
        { action: 'auth.logout.completed', actor_id: 'u1' },
        { action: 'storage.file.deleted', metadata: { file_id: 'f1' } },
      ]);
      const response = await api<Page>('/api/v1/activity', { token: await tokenFor(tenant) });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(Object.keys(response.json).sort()).toEqual(['data', 'next_cursor']);
      expect(response.json.next_cursor).toBeNull();
      expect(response.json.data.map((event) => event.seq)).toEqual([3, 2, 1]);
      for (const event of response.json.data) {
        expectEventShape(event);
        expect(event.tenant_id).toBe(tenant);
      }
    });

    it('filters by action: an exact name, a namespace prefix, and a comma list of both', async () => {
      const tenant = newTenant('actions');
      await record(tenant, [
        { action: 'auth.login.success' },
        { action: 'auth.login.failure', metadata: { reason: 'invalid_credentials' } },
        { action: 'storage.file.deleted', metadata: { file_id: 'f1' } },
        { action: 'conversations.conversation.created' },
      ]);
      const actions = async (query: string) =>
        (await list(tenant, `?action=${encodeURIComponent(query)}`)).data.map((event) => event.action);
      expect(await actions('auth.login.success')).toEqual(['auth.login.success']);
      expect(await actions('auth.*')).toEqual(['auth.login.failure', 'auth.login.success']);
      expect(await actions('auth.login.failure,storage.*')).toEqual([
        'storage.file.deleted',
        'auth.login.failure',
      ]);
      expect(await actions('workflows.*')).toEqual([]);
    });

    it.each([
      ['actor_id', 'u_target'],
      ['object_type', 'document'],
      ['object_id', 'doc_42'],
      ['request_id', 'req_7'],
      ['status', 'failure'],
    ] as const)('filters exactly by %s', async (field, value) => {
      const tenant = newTenant(`filter-${field.replace('_', '-')}`);
      // Near misses: a longer value and another case (or the other statuses).
      const [near, other] = field === 'status' ? ['pending', 'success'] : [`${value}_2`, value.toUpperCase()];
      const base = { action: 'auth.logout.completed' };
      const [, match] = await record(tenant, [
        { ...base, [field]: near },
        { ...base, [field]: value },
        { ...base, [field]: other },
      ]);
      const page = await list(tenant, `?${field}=${encodeURIComponent(value)}`);
      expect(page.data.map((event) => event.id)).toEqual([match?.id]);
      expect(page.data[0]?.[field]).toBe(value);
    });

    it('since and until take RFC 3339 times: since includes, until excludes', async () => {
      const tenant = newTenant('window');
      // One millisecond apart, given by the test: the database's own clock may give two
      // events the same millisecond.
      const first = Date.now() - 60_000;
      const times = [0, 1, 2].map((i) => new Date(first + i).toISOString());
      for (const time of times) {
        await server.database.repository.append(
          tenant,
          [newEvent(tenant, { action: 'auth.token.refreshed' })],
          {
            createdAt: new Date(time),
          },
        );
      }
      const events = (await list(tenant)).data.reverse();
      expect(events.map((event) => event.created_at)).toEqual(times);
      const middle = events[1] as ActivityEvent;
      const seqs = async (query: string) => (await list(tenant, query)).data.map((event) => event.seq);
      expect(await seqs(`?since=${encodeURIComponent(middle.created_at)}`)).toEqual([3, 2]);
      expect(await seqs(`?until=${encodeURIComponent(middle.created_at)}`)).toEqual([1]);
      const offset = middle.created_at.replace('Z', '+00:00');
      expect(
        await seqs(
          `?since=${encodeURIComponent(offset)}&until=${encodeURIComponent(events[2]?.created_at ?? '')}`,
        ),
      ).toEqual([2]);
    });

    it('since and until take relative ages meaning "that long ago"', async () => {
      const tenant = newTenant('relative');
      const recorded = await record(tenant, [
        { action: 'auth.token.refreshed' },
        { action: 'auth.token.refreshed' },
      ]);
      const latest = Math.max(...recorded.map((event) => Date.parse(event.created_at)));
      // The server's clock stands still at the later event's millisecond, then 1001 ms on.
      now = new Date(latest);
      expect((await list(tenant, '?since=1h')).data).toHaveLength(2);
      expect((await list(tenant, '?until=1h')).data).toHaveLength(0);
      expect((await list(tenant, '?since=7d&until=1s')).data).toHaveLength(0);
      now = new Date(latest + 1001);
      expect((await list(tenant, '?since=7d&until=1s')).data).toHaveLength(2);
      expect((await list(tenant, '?since=1s')).data).toHaveLength(0);
    });

    it.each(['since=999999w', 'until=0000-12-31T23:59:59Z', 'since=10000-01-01T00:00:00Z'])(
      '%s, outside the years 1 to 9999, is 400 naming it',
      async (query) => {
        const tenant = newTenant('time-range');
        const problem = expectProblem(
          await api(`/api/v1/activity?${query}`, { token: await tokenFor(tenant) }),
          400,
          'PARAMETER_INVALID',
          tenant,
        );
        expect(problem.detail).toContain(query.split('=')[0]);
      },
    );

    it('limit defaults to 50 and takes 1 to 200', async () => {
      const tenant = newTenant('limit');
      await record(
        tenant,
        Array.from({ length: 201 }, () => ({ action: 'auth.email.verified' })),
      );
      const first = await list(tenant);
      expect(first.data).toHaveLength(50);
      expect(first.data[0]?.seq).toBe(201);
      expect(first.next_cursor).toEqual(expect.any(String));
      expect((await list(tenant, '?limit=1')).data.map((event) => event.seq)).toEqual([201]);
      const max = await list(tenant, '?limit=200');
      expect(max.data).toHaveLength(200);
      expect(max.next_cursor).toEqual(expect.any(String));
    });

    it.each(['0', '201', '1000', '-1', '1.5', 'ten', ''])(
      'limit=%s is 400 PARAMETER_INVALID',
      async (limit) => {
        const tenant = newTenant('bad-limit');
        const problem = expectProblem(
          await api(`/api/v1/activity?limit=${limit}`, { token: await tokenFor(tenant) }),
          400,
          'PARAMETER_INVALID',
          tenant,
        );
        expect(problem.detail).toContain('limit');
      },
    );

    it('follows next_cursor across pages with no repeat and no gap, and the last has none', async () => {
      const tenant = newTenant('pages');
      await record(
        tenant,
        Array.from({ length: 7 }, (_, i) => ({ action: 'auth.login.success', actor_id: `u${i}` })),
      );
      const seen: number[][] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 5; page++) {
        const query: string = `?limit=3&action=auth.*${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
        const result = await list(tenant, query);
        seen.push(result.data.map((event) => event.seq));
        cursor = result.next_cursor;
        if (!cursor) break;
      }
      expect(seen).toEqual([[7, 6, 5], [4, 3, 2], [1]]);
    });

    it.each([
      ['garbage', () => 'not-a-cursor'],
      ['an edited cursor', (cursor: string) => `${cursor.slice(0, -2)}${cursor.endsWith('A') ? 'BB' : 'AA'}`],
      ['a forged payload', (cursor: string) => `${base64url([1, null, null])}.${cursor.split('.')[1]}`],
    ])('%s is 400 CURSOR_INVALID', async (_, mangle) => {
      const tenant = newTenant('cursor');
      await record(tenant, [{ action: 'auth.email.verified' }, { action: 'auth.email.verified' }]);
      const { next_cursor } = await list(tenant, '?limit=1');
      expect(next_cursor).toEqual(expect.any(String));
      const bad = mangle(next_cursor as string);
      expectProblem(
        await api(`/api/v1/activity?limit=1&cursor=${encodeURIComponent(bad)}`, {
          token: await tokenFor(tenant),
        }),
        400,
        'CURSOR_INVALID',
        tenant,
      );
    });

    it('a cursor used with other filters is 400 CURSOR_INVALID', async () => {
      const tenant = newTenant('cursor-filters');
      await record(tenant, [{ action: 'auth.email.verified' }, { action: 'auth.email.verified' }]);
      const { next_cursor } = await list(tenant, '?limit=1&action=auth.*');
      expectProblem(
        await api(
          `/api/v1/activity?limit=1&action=storage.*&cursor=${encodeURIComponent(next_cursor ?? '')}`,
          {
            token: await tokenFor(tenant),
          },
        ),
        400,
        'CURSOR_INVALID',
        tenant,
      );
    });

    it('an unknown parameter is 400 and named in the detail', async () => {
      const tenant = newTenant('unknown-param');
      const problem = expectProblem(
        await api('/api/v1/activity?colour=blue', { token: await tokenFor(tenant) }),
        400,
        'PARAMETER_INVALID',
        tenant,
      );
      expect(problem.detail).toContain('colour');
    });

    it('a repeated parameter is 400 and named in the detail', async () => {
      const tenant = newTenant('repeated');
      const problem = expectProblem(
        await api('/api/v1/activity?status=success&status=failure', { token: await tokenFor(tenant) }),
        400,
        'PARAMETER_INVALID',
        tenant,
      );
      expect(problem.detail).toContain('status');
    });

    it.each([
      ['status=done', 'status'],
      ['since=yesterday', 'since'],
      ['until=2026-13-45', 'until'],
      ['action=Auth.Login', 'action'],
      ['action=auth.login', 'action'],
    ])('an invalid value (%s) is 400 PARAMETER_INVALID naming the parameter', async (query, name) => {
      const tenant = newTenant('bad-value');
      const problem = expectProblem(
        await api(`/api/v1/activity?${query}`, { token: await tokenFor(tenant) }),
        400,
        'PARAMETER_INVALID',
        tenant,
      );
      expect(problem.detail).toContain(name);
    });
  });

  describe('POST /api/v1/activity', () => {
    it('records one event: 201 with the stored event, tenant from the token, ip kept only as ip_hash', async () => {
      const tenant = newTenant('post-one');
      const response = await api<ActivityEvent>('/api/v1/activity', {
        token: await tokenFor(tenant),
        body: {
          action: 'auth.login.failure',
          actor_id: 'u_1',
          status: 'failure',
          ip: '203.0.113.9',
          user_agent: 'curl/8',
          request_id: 'req_1',
          metadata: { reason: 'invalid_credentials', context: { password: 'hunter2' } },
        },
      });
      expect(response.status, response.text).toBe(201);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      const event = response.json;
      expectEventShape(event);
      expect(event).toMatchObject({
        tenant_id: tenant,
        seq: 1,
        action: 'auth.login.failure',
        actor_type: 'user',
        actor_id: 'u_1',
        status: 'failure',
        request_id: 'req_1',
        user_agent: 'curl/8',
        metadata: { reason: 'invalid_credentials', context: { password: '[REDACTED]' } },
      });
      expect(event.ip_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(event.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(response.text).not.toContain('203.0.113.9');
      expect(response.text).not.toContain('hunter2');
      const stored = await list(tenant);
      expect(stored.data).toEqual([event]);
      expect(JSON.stringify(stored)).not.toContain('203.0.113.9');
    });

    it('records a JSON array: 201 {"data":[…]} with consecutive seqs', async () => {
      const tenant = newTenant('post-batch');
      const response = await api<{ data: ActivityEvent[] }>('/api/v1/activity', {
        token: await tokenFor(tenant),
        body: [
          { action: 'auth.signup.completed', actor_id: 'u1' },
          { action: 'auth.email.verified', actor_id: 'u1' },
          { action: 'auth.login.success', actor_id: 'u1' },
        ],
      });
      expect(response.status, response.text).toBe(201);
      expect(Object.keys(response.json)).toEqual(['data']);
      expect(response.json.data.map((event) => [event.seq, event.action, event.tenant_id])).toEqual([
        [1, 'auth.signup.completed', tenant],
        [2, 'auth.email.verified', tenant],
        [3, 'auth.login.success', tenant],
      ]);
      expect((await list(tenant)).data.map((event) => event.id)).toEqual(
        response.json.data.map((event) => event.id).reverse(),
      );
    });

    it('an array with invalid items is 422 naming each invalid index, and stores nothing', async () => {
      const tenant = newTenant('post-invalid');
      const valid = { action: 'auth.email.verified' };
      const problem = expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: [
            valid,
            { action: 'auth.nope.nope' },
            valid,
            { action: 'auth.login.failure', metadata: { reason: 'bad', extra: 1 } },
            'not an object',
          ],
        }),
        422,
        'VALIDATION_FAILED',
        tenant,
      );
      expect(problem.detail).toContain('[1]');
      expect(problem.detail).toContain('[3].metadata');
      expect(problem.detail).toContain('[4]');
      expect(problem.detail).not.toContain('[0]');
      expect(problem.detail).not.toContain('[2]');
      expect((await list(tenant)).data).toEqual([]);
    });

    it('a batch whose invalid events all name an unknown action is ACTION_UNKNOWN, as one such event is', async () => {
      const tenant = newTenant('post-batch-unknown');
      const problem = expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: [{ action: 'auth.login.success' }, { action: 'auth.teleport.done' }],
        }),
        422,
        'ACTION_UNKNOWN',
        tenant,
      );
      expect(problem.detail).toBe('[1].action: not in the registry');
      expect((await list(tenant)).data).toEqual([]);
    });

    it('an array of one invalid event still names its index', async () => {
      const tenant = newTenant('post-one-invalid');
      const problem = expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: [{ action: 'auth.login.failure', metadata: { reason: 'bad' } }],
        }),
        422,
        'VALIDATION_FAILED',
        tenant,
      );
      expect(problem.detail).toContain('[0].metadata.reason');
      expect((await list(tenant)).data).toEqual([]);
    });

    it('an array of more than 1,000 events is 422 and stores nothing', async () => {
      const tenant = newTenant('post-big-batch');
      expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: Array.from({ length: 1001 }, () => ({ action: 'auth.email.verified' })),
        }),
        422,
        'VALIDATION_FAILED',
        tenant,
      );
      expect((await list(tenant)).data).toEqual([]);
    });

    it('an array of exactly 1,000 events is recorded', async () => {
      const tenant = newTenant('post-1000');
      const events = await record(
        tenant,
        Array.from({ length: 1000 }, () => ({ action: 'auth.email.verified' })),
      );
      expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
    });

    it('an empty array is 422', async () => {
      const tenant = newTenant('post-empty');
      expectProblem(
        await api('/api/v1/activity', { token: await tokenFor(tenant), body: [] }),
        422,
        'VALIDATION_FAILED',
        tenant,
      );
    });

    it('a body whose Content-Type is not JSON is 415 before it is read, and stores nothing', async () => {
      const tenant = newTenant('post-media');
      const token = await tokenFor(tenant);
      const body = { action: 'auth.email.verified' };
      for (const type of [
        'application/x-www-form-urlencoded',
        'text/plain',
        'application/json; charset=latin1',
        'multipart/form-data; boundary=x',
      ]) {
        const answer = await api('/api/v1/activity', { token, body, headers: { 'content-type': type } });
        expect(expectProblem(answer, 415, 'UNSUPPORTED_MEDIA_TYPE', tenant).detail).toContain(
          'Content-Type: application/json',
        );
      }
      expect((await list(tenant)).data).toEqual([]);
      // JSON by any of its names, or no Content-Type at all, is read.
      for (const type of [
        'application/json',
        'Application/JSON; charset="UTF-8"',
        'application/vnd.acme+json',
      ]) {
        const answer = await api('/api/v1/activity', { token, body, headers: { 'content-type': type } });
        expect(answer.status).toBe(201);
      }
      const untyped = await fetch(`${server.url}/api/v1/activity`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: new Blob([JSON.stringify(body)]),
      });
      expect(untyped.status).toBe(201);
      expect((await list(tenant)).data).toHaveLength(4);
    });

    it('a body over 1 MiB is 413 and stores nothing (fetch)', async () => {
      const tenant = newTenant('post-huge');
      const padding = 'x'.repeat(1024 * 1024);
      expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: { action: 'auth.email.verified', user_agent: padding },
        }),
        413,
        'BODY_TOO_LARGE',
        tenant,
      );
      expect((await list(tenant)).data).toEqual([]);
    });

    it.each([
      ['with Content-Length', false],
      ['chunked, without Content-Length', true],
    ])(
      'a body over 1 MiB sent %s is 413, stores nothing, and leaves the connection usable or closed',
      async (_, chunked) => {
        const tenant = newTenant(chunked ? 'post-chunked' : 'post-sized');
        const connection = await openRawConnection(server.url);
        try {
          const body = Buffer.from(
            JSON.stringify({ action: 'auth.email.verified', user_agent: 'x'.repeat(2 * 1024 * 1024) }),
          );
          const head = [
            'POST /api/v1/activity HTTP/1.1',
            'Host: localhost',
            `Authorization: Bearer ${await tokenFor(tenant)}`,
            'Content-Type: application/json',
            chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`,
          ].join('\r\n');
          connection.write(`${head}\r\n\r\n`);
          if (chunked) {
            for (let offset = 0; offset < body.length; offset += 64 * 1024) {
              const part = body.subarray(offset, offset + 64 * 1024);
              connection.write(`${part.length.toString(16)}\r\n`);
              connection.write(part);
              connection.write('\r\n');
            }
            connection.write('0\r\n\r\n');
          } else {
            connection.write(body);
          }
          const response = await connection.nextResponse(5000);
          if (typeof response === 'string') throw new Error(`no response to the POST: ${response}`);
          const headers = new Headers(response.headers);
          expectProblem(
            { status: response.status, headers, text: response.body, json: JSON.parse(response.body) },
            413,
            'BODY_TOO_LARGE',
            tenant,
          );
          // A connection the server keeps alive must answer the next request; else it must close.
          connection.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n');
          const next = await connection.nextResponse(2000);
          if (/close/i.test(headers.get('connection') ?? '')) expect(next).toBe('closed');
          else expect(next, 'the next request on the kept-alive connection').toMatchObject({ status: 200 });
        } finally {
          connection.destroy();
        }
        expect((await server.app.service.query(tenant, {})).data).toEqual([]);
      },
    );

    it('a body that is not JSON is 400 INPUT_UNREADABLE', async () => {
      const tenant = newTenant('post-not-json');
      expectProblem(
        await api('/api/v1/activity', { token: await tokenFor(tenant), body: '{"action": "auth.' }),
        400,
        'INPUT_UNREADABLE',
        tenant,
      );
      expect((await list(tenant)).data).toEqual([]);
    });

    it('an unknown action is 422 ACTION_UNKNOWN naming it', async () => {
      const tenant = newTenant('post-unknown');
      const problem = expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: { action: 'auth.teleport.done' },
        }),
        422,
        'ACTION_UNKNOWN',
        tenant,
      );
      expect(problem.detail).toContain('auth.teleport.done');
      // An API client is pointed at the route that lists the registry, not only a CLI command.
      expect(problem.detail).toContain('GET /api/v1/activity/actions');
    });

    it('invalid metadata is 422 VALIDATION_FAILED naming the field', async () => {
      const tenant = newTenant('post-metadata');
      const problem = expectProblem(
        await api('/api/v1/activity', {
          token: await tokenFor(tenant),
          body: { action: 'auth.login.failure', metadata: { reason: 'invalid_credentials', shoe_size: 44 } },
        }),
        422,
        'VALIDATION_FAILED',
        tenant,
      );
      expect(problem.detail).toContain('metadata.shoe_size');
    });

    it.each([
      [
        'a __proto__ key',
        '{"action":"auth.login.success","metadata":{"context":{"__proto__":{"admin":true},"a":1}}}',
        'metadata.context',
      ],
      [
        'an integer beyond 2^53',
        '{"action":"auth.login.success","metadata":{"context":{"n":12345678901234567890}}}',
        'metadata.context.n',
      ],
      ['1e400', '{"action":"auth.login.success","metadata":{"context":{"n":1e400}}}', 'metadata.context.n'],
      [
        'a number in a batch',
        '[{"action":"auth.login.success"},{"action":"auth.login.success","metadata":{"context":{"n":-1e999}}}]',
        '[1].metadata.context.n',
      ],
      [
        'a key given twice',
        '{"action":"auth.login.success","actor_id":"u_1","actor_id":"u_2"}',
        '(root): has a key given twice',
      ],
      [
        'a metadata key given twice in a batch',
        '[{"action":"auth.login.success"},{"action":"auth.login.success","metadata":{"method":"sso","method":"password"}}]',
        '[1].metadata: has a key given twice',
      ],
    ])('%s is refused with 422 naming its path, never stored altered', async (_, body, path) => {
      const tenant = newTenant('post-exact');
      const problem = expectProblem(
        await api('/api/v1/activity', { token: await tokenFor(tenant), body }),
        422,
        'VALIDATION_FAILED',
        tenant,
      );
      expect(problem.detail).toContain(path);
      expect((await list(tenant)).data).toEqual([]);
    });

    it('a retry with the same id returns the first event and stores it once', async () => {
      const tenant = newTenant('post-retry');
      const id = '0190a0c4-7b7e-7000-8000-000000000001';
      const body = { id, action: 'auth.login.success', actor_id: 'u1' };
      const first = await api<ActivityEvent>('/api/v1/activity', { token: await tokenFor(tenant), body });
      expect(first.status, first.text).toBe(201);
      const again = await api<ActivityEvent>('/api/v1/activity', { token: await tokenFor(tenant), body });
      expect(again.status, again.text).toBe(201);
      expect(again.json).toEqual(first.json);
      expect(first.json).toMatchObject({ id, seq: 1 });
      expect((await list(tenant)).data.map((event) => event.id)).toEqual([id]);
      // An event stored a minute ago and retried keeps its time: a retry never stamps it anew.
      const older = '0190a0c4-7b7e-7000-8000-000000000002';
      const other = newTenant('post-retry-old');
      const createdAt = new Date(Date.now() - 60_000);
      await server.database.repository.append(other, [newEvent(other, { id: older })], { createdAt });
      const retried = await api<ActivityEvent>('/api/v1/activity', {
        token: await tokenFor(other),
        body: { id: older, action: 'auth.login.success', actor_id: 'u_1' },
      });
      expect(retried.status, retried.text).toBe(201);
      expect(retried.json).toMatchObject({ id: older, seq: 1, created_at: createdAt.toISOString() });
      expect((await list(other)).data).toEqual([retried.json]);
    });

    it('writes a structured "recorded" log line with activity_event_id for each event written', async () => {
      const tenant = newTenant('post-log');
      const single = await api<ActivityEvent>('/api/v1/activity', {
        token: await tokenFor(tenant),
        body: { action: 'auth.logout.completed' },
      });
      const batch = await record(tenant, [
        { action: 'auth.email.verified' },
        { action: 'auth.email.verified' },
      ]);
      const ids = [single.json.id, ...batch.map((event) => event.id)];
      const logged = server.logs
        .filter((line) => line.msg === 'recorded')
        .map((line) => line.activity_event_id);
      for (const id of ids) expect(logged).toContain(id);
    });
  });

  describe('GET /api/v1/activity/actions', () => {
    it('is 200 {"actions":[…]} with each action as a JSON Schema', async () => {
      const response = await api<{
        actions: { name: string; namespace: string; description: string; schema: Record<string, unknown> }[];
      }>('/api/v1/activity/actions', { token: await tokenFor(newTenant('actions-list')) });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(Object.keys(response.json)).toEqual(['actions']);
      const names = response.json.actions.map((action) => action.name);
      expect(names).toEqual(expect.arrayContaining(['auth.login.success', 'storage.file.deleted']));
      for (const action of response.json.actions) {
        expect(action).toMatchObject({
          name: expect.stringMatching(/^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/),
          namespace: action.name.split('.')[0],
          description: expect.any(String),
          schema: expect.objectContaining({ type: 'object' }),
        });
      }
      const failure = response.json.actions.find((action) => action.name === 'auth.login.failure');
      expect(failure?.schema).toMatchObject({
        properties: expect.objectContaining({ reason: expect.any(Object), context: expect.any(Object) }),
        required: ['reason'],
        additionalProperties: false,
      });
    });

    it('refuses a parameter, as every route does: 400', async () => {
      const response = await api('/api/v1/activity/actions?namespace=auth', {
        token: await tokenFor(newTenant('actions-params')),
      });
      expectProblem(response, 400, 'PARAMETER_INVALID');
    });
  });

  describe('GET /metrics', () => {
    const metrics = async () => {
      const response = await api('/metrics');
      expect(response.status).toBe(200);
      return response;
    };

    it('is 200 Prometheus text declaring every metric of the contract', async () => {
      const response = await metrics();
      expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
      for (const name of contractMetrics) {
        expect(response.text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'));
      }
      expect(response.text).toMatch(/^# TYPE activity_record_duration_seconds histogram$/m);
      expect(response.text).toMatch(/^# TYPE activity_stream_connections gauge$/m);
    });

    it('counts recorded events by namespace and status, and their duration', async () => {
      // The reads and denials of the tests before are written in the background: not
      // while this one counts write statements.
      await server.app.service.audit.flush();
      const before = (await metrics()).text;
      await record(newTenant('metrics-recorded'), [
        { action: 'workflows.run.started', metadata: { workflow_id: 'w1', run_id: 'r1' } },
        { action: 'workflows.run.started', metadata: { workflow_id: 'w1', run_id: 'r2' }, status: 'pending' },
      ]);
      const after = (await metrics()).text;
      const recorded = (text: string, status: string) =>
        metricValue(text, 'activity_events_recorded_total', { namespace: 'workflows', status });
      expect(recorded(after, 'success') - recorded(before, 'success')).toBe(1);
      expect(recorded(after, 'pending') - recorded(before, 'pending')).toBe(1);
      expect(
        metricValue(after, 'activity_record_duration_seconds_count') -
          metricValue(before, 'activity_record_duration_seconds_count'),
      ).toBe(1);
    });

    it('counts failed records by reason', async () => {
      const before = (await metrics()).text;
      await api('/api/v1/activity', {
        token: await tokenFor(newTenant('metrics-failure')),
        body: { action: 'auth.teleport.done' },
      });
      const after = (await metrics()).text;
      const failures = (text: string) =>
        metricValue(text, 'activity_record_failures_total', { reason: 'ACTION_UNKNOWN' });
      expect(failures(after) - failures(before)).toBe(1);
    });

    it('counts HTTP requests by route and status', async () => {
      const tenant = newTenant('metrics-http');
      const requests = (text: string, route: string, status: string) =>
        metricValue(text, 'activity_http_requests_total', { route, status });
      const before = (await metrics()).text;
      await api('/api/v1/activity', {
        token: await tokenFor(tenant),
        body: { action: 'auth.email.verified' },
      });
      await api('/api/v1/activity', { token: await tokenFor(tenant) });
      await api('/api/v1/activity');
      await api('/api/v1/activity');
      const after = (await metrics()).text;
      expect(requests(after, '/api/v1/activity', '201') - requests(before, '/api/v1/activity', '201')).toBe(
        1,
      );
      expect(requests(after, '/api/v1/activity', '200') - requests(before, '/api/v1/activity', '200')).toBe(
        1,
      );
      expect(requests(after, '/api/v1/activity', '401') - requests(before, '/api/v1/activity', '401')).toBe(
        2,
      );
      expect(
        metricValue(after, 'activity_http_request_duration_seconds_count', { route: '/api/v1/activity' }) -
          metricValue(before, 'activity_http_request_duration_seconds_count', { route: '/api/v1/activity' }),
      ).toBe(4);
    });
  });

  describe('the OpenAPI document', () => {
    it('GET /api/v1/openapi.json serves it without a token, as docs/openapi.json holds it', async () => {
      const response = await api('/api/v1/openapi.json');
      expect(response.status).toBe(200);
      expect(response.json).toEqual(openApi);
    });

    it('a POST to it is 405, as to any route without that method', async () => {
      const response = await api('/api/v1/openapi.json', { method: 'POST', body: {} });
      expectProblem(response, 405, 'METHOD_NOT_ALLOWED');
    });
  });

  describe('health', () => {
    it('GET /healthz is 200', async () => {
      const response = await api('/healthz');
      expect(response.status).toBe(200);
    });

    it('GET /readyz is 200 while the database answers', async () => {
      const response = await api('/readyz');
      expect(response.status).toBe(200);
    });

    it('GET /readyz is 503 DB_NOT_MIGRATED on a database without the schema', async () => {
      const empty = await createTestDatabase({ migrated: false });
      const unmigrated = await startTestServer({ databaseUrl: empty.url, waitForStream: false });
      try {
        expectProblem(await call(unmigrated.url, '/readyz'), 503, 'DB_NOT_MIGRATED');
      } finally {
        await unmigrated.close();
        await empty.drop();
      }
    });

    describe('with the database down', () => {
      let down: TestServer;

      beforeAll(async () => {
        // `serve` must start even while its database is unreachable.
        down = await startTestServer({
          databaseUrl: 'postgres://postgres@127.0.0.1:1/x',
          waitForStream: false,
        });
      });
      afterAll(async () => {
        await down?.close();
      });

      it('the server starts, and /healthz is 200', async () => {
        expect((await call(down.url, '/healthz')).status).toBe(200);
      });

      it('GET /readyz is 503 DB_UNAVAILABLE without SQL or the host in the body', async () => {
        const response = await call(down.url, '/readyz');
        const problem = expectProblem(response, 503, 'DB_UNAVAILABLE');
        expect(response.text).not.toContain('127.0.0.1');
        expect(response.text).not.toMatch(/postgres|ECONNREFUSED|:1\b/i);
        expect(problem.detail).not.toBe('');
      });

      it('reads and writes are 503 DB_UNAVAILABLE, without the host', async () => {
        const token = await down.token('down-tenant');
        for (const response of [
          await call(down.url, '/api/v1/activity', { token }),
          await call(down.url, '/api/v1/activity', { token, body: { action: 'auth.email.verified' } }),
        ]) {
          expectProblem(response, 503, 'DB_UNAVAILABLE', 'down-tenant');
          expect(response.text).not.toContain('127.0.0.1');
          expect(response.text).not.toMatch(/ECONNREFUSED/i);
        }
      });
    });
  });

  describe('routing', () => {
    it.each(['/', '/api/v1/activities', '/api/v2/activity', '/api/v1/activity/123', '/metrics/x'])(
      '%s is 404',
      async (path) => {
        expectProblem(await api(path, { token: await tokenFor(newTenant('not-found')) }), 404, 'NOT_FOUND');
      },
    );

    it.each([
      ['DELETE', '/api/v1/activity', ['GET', 'POST', 'HEAD']],
      ['PUT', '/api/v1/activity', ['GET', 'POST', 'HEAD']],
      ['POST', '/api/v1/activity/actions', ['GET', 'HEAD']],
      ['POST', '/healthz', ['GET', 'HEAD']],
      ['DELETE', '/metrics', ['GET', 'HEAD']],
    ])('%s %s is 405 with an Allow header', async (method, path, allowed) => {
      const response = await api(path, { method, token: await tokenFor(newTenant('method')) });
      expectProblem(response, 405, 'METHOD_NOT_ALLOWED');
      const allow = (response.headers.get('allow') ?? '').split(',').map((part) => part.trim());
      expect(allow.sort()).toEqual([...allowed].sort());
    });
  });

  describe('HEAD', () => {
    it('answers as GET does, headers only: health, metrics, a page, a refusal', async () => {
      const token = await tokenFor(newTenant('head'));
      for (const path of ['/healthz', '/readyz', '/metrics', '/api/v1/openapi.json']) {
        const response = await api(path, { method: 'HEAD' });
        expect([path, response.status, response.text]).toEqual([path, 200, '']);
      }
      const page = await api('/api/v1/activity?limit=1', { method: 'HEAD', token });
      expect(page.status).toBe(200);
      expect(page.headers.get('content-type')).toMatch(/^application\/json/);
      expect(page.text).toBe('');
      const refused = await api('/api/v1/activity?limit=0', { method: 'HEAD', token });
      expect([refused.status, refused.headers.get('content-type'), refused.text]).toEqual([
        400,
        'application/problem+json',
        '',
      ]);
    });

    it('is 405 on the stream, which has no end to send the headers of', async () => {
      const response = await api('/api/v1/activity/stream', {
        method: 'HEAD',
        token: await tokenFor(newTenant('head-stream')),
      });
      expect([response.status, response.headers.get('allow'), response.text]).toEqual([405, 'GET', '']);
    });
  });

  describe('answers to bad requests', () => {
    const secret = 'sk_live_abcdefghijklmnop1234';

    it.each([
      ['an unknown route', 'GET', `/api/v1/${secret}`, undefined, 404],
      ['an unknown query parameter', 'GET', `/api/v1/activity?${secret}=1`, undefined, 400],
      [
        'an unknown body field',
        'POST',
        '/api/v1/activity',
        { action: 'auth.login.success', [secret]: 1 },
        422,
      ],
      [
        'a key given twice under a secret key',
        'POST',
        '/api/v1/activity',
        `{"action":"auth.login.success","metadata":{"context":{"${secret}":{"a":1,"a":2}}}}`,
        422,
      ],
    ] as const)('to %s never quote a secret back', async (_, method, path, body, status) => {
      const tenant = newTenant('no-echo');
      const response = await api(path, { method, token: await tokenFor(tenant), ...(body ? { body } : {}) });
      expect(response.status, response.text).toBe(status);
      expect(response.text).not.toContain('abcdefghijklmnop');
    });
  });

  describe('authentication and scopes', () => {
    const otherSecret = 'another-jwt-secret-0123456789abcdef0123456';
    const secretKey = new TextEncoder().encode(testJwtSecret);
    const hour = () => Math.floor(Date.now() / 1000) + 3600;
    const tenant = newTenant('auth');

    it('no token is 401 UNAUTHORIZED with WWW-Authenticate: Bearer', async () => {
      for (const path of ['/api/v1/activity', '/api/v1/activity/actions', '/api/v1/activity/stream']) {
        const response = await api(path);
        expectProblem(response, 401, 'UNAUTHORIZED');
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      }
      const post = await api('/api/v1/activity', { body: { action: 'auth.email.verified' } });
      expectProblem(post, 401, 'UNAUTHORIZED');
    });

    const badCredentials: [string, () => Promise<Record<string, string>>][] = [
      ['a Basic authorization header', async () => ({ authorization: 'Basic dXNlcjpwYXNz' })],
      ['"Bearer" with no token', async () => ({ authorization: 'Bearer' })],
      ['a bearer value that is not a JWT', async () => ({ authorization: 'Bearer not-a-jwt' })],
      [
        'a token with two values',
        async () => ({ authorization: `Bearer ${await server.token(tenant)} ${await server.token(tenant)}` }),
      ],
      [
        'an expired token',
        async () => ({
          authorization: `Bearer ${await server.token(tenant, { now: new Date(Date.now() - 7200_000), ttlSeconds: 60 })}`,
        }),
      ],
      [
        'a token signed with another secret',
        async () => ({
          authorization: `Bearer ${await new SignJWT({
            tenant_id: tenant,
            scope: 'activity:read activity:write',
          })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('mallory')
            .setExpirationTime(hour())
            .sign(new TextEncoder().encode(otherSecret))}`,
        }),
      ],
      [
        'an alg "none" token',
        async () => ({
          authorization: `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({
            tenant_id: tenant,
            sub: 'mallory',
            scope: 'activity:read activity:write',
            exp: hour(),
          })}.`,
        }),
      ],
      [
        'a token with a tampered payload',
        async () => {
          const [header, , signature] = (await server.token('someone-else')).split('.');
          const payload = base64url({ tenant_id: tenant, sub: 'x', scope: 'activity:read', exp: hour() });
          return { authorization: `Bearer ${header}.${payload}.${signature}` };
        },
      ],
      [
        'a token without tenant_id',
        async () => ({
          authorization: `Bearer ${await new SignJWT({ scope: 'activity:read activity:write' })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('svc')
            .setExpirationTime(hour())
            .sign(secretKey)}`,
        }),
      ],
      [
        'a token without exp',
        async () => ({
          authorization: `Bearer ${await new SignJWT({ tenant_id: tenant, scope: 'activity:read' })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('svc')
            .sign(secretKey)}`,
        }),
      ],
      [
        'a token without sub',
        async () => ({
          authorization: `Bearer ${await new SignJWT({ tenant_id: tenant, scope: 'activity:read' })
            .setProtectedHeader({ alg: 'HS256' })
            .setExpirationTime(hour())
            .sign(secretKey)}`,
        }),
      ],
      [
        'a token with an invalid tenant_id',
        async () => ({
          authorization: `Bearer ${await new SignJWT({ tenant_id: 'a b/c', scope: 'activity:read' })
            .setProtectedHeader({ alg: 'HS256' })
            .setSubject('svc')
            .setExpirationTime(hour())
            .sign(secretKey)}`,
        }),
      ],
    ];

    it.each(badCredentials)('%s is 401 UNAUTHORIZED', async (_, headers) => {
      const stored = (await list(tenant)).data.length;
      const sent = await headers();
      for (const request of [
        { headers: sent },
        { headers: sent, body: { action: 'auth.email.verified' } },
      ] satisfies ApiRequest[]) {
        const response = await api('/api/v1/activity', request);
        expectProblem(response, 401, 'UNAUTHORIZED');
        expect(response.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
        const token = sent.authorization?.split(' ')[1];
        if (token && token.length > 20) expect(response.text).not.toContain(token);
      }
      expect((await list(tenant)).data).toHaveLength(stored);
    });

    it.each(['admin', 'owner'])('role %s can read but not write (403 FORBIDDEN)', async (role) => {
      const tenant = newTenant(`role-${role}`);
      await record(tenant, [{ action: 'auth.email.verified' }]);
      const token = await server.token(tenant, { role, scopes: [] });
      const read = await api<Page>('/api/v1/activity', { token });
      expect(read.status, read.text).toBe(200);
      expect(read.json.data).toHaveLength(1);
      expect((await api('/api/v1/activity/actions', { token })).status).toBe(200);
      const problem = expectProblem(
        await api('/api/v1/activity', { token, body: { action: 'auth.email.verified' } }),
        403,
        'FORBIDDEN',
        tenant,
      );
      expect(problem.detail).toContain('activity:write');
      expect((await list(tenant)).data).toHaveLength(1);
    });

    it('scope activity:write without read can write but not read (403 FORBIDDEN)', async () => {
      const tenant = newTenant('write-only');
      const token = await server.token(tenant, { scopes: ['activity:write'] });
      const written = await api<ActivityEvent>('/api/v1/activity', {
        token,
        body: { action: 'auth.email.verified' },
      });
      expect(written.status, written.text).toBe(201);
      for (const path of ['/api/v1/activity', '/api/v1/activity/actions', '/api/v1/activity/stream']) {
        const problem = expectProblem(await api(path, { token }), 403, 'FORBIDDEN', tenant);
        expect(problem.detail).toContain('activity:read');
      }
      expect((await list(tenant)).data.map((event) => event.id)).toEqual([written.json.id]);
    });

    it('a token with neither scope nor a reading role is 403 on every route', async () => {
      const tenant = newTenant('no-scope');
      const token = await server.token(tenant, { role: 'viewer', scopes: ['other:thing'] });
      expectProblem(await api('/api/v1/activity', { token }), 403, 'FORBIDDEN', tenant);
      expectProblem(
        await api('/api/v1/activity', { token, body: { action: 'auth.email.verified' } }),
        403,
        'FORBIDDEN',
        tenant,
      );
      expectProblem(await api('/api/v1/activity/actions', { token }), 403, 'FORBIDDEN', tenant);
    });

    it('?access_token= is not taken in place of the header off the stream route', async () => {
      const token = await server.token(tenant, { role: 'admin', scopes: [] });
      expectProblem(await api(`/api/v1/activity?access_token=${token}&limit=5`), 401, 'UNAUTHORIZED');
      expectProblem(await api(`/api/v1/activity/actions?access_token=${token}`), 401, 'UNAUTHORIZED');
    });
  });

  describe('GET /api/v1/activity/stream', () => {
    it('sends headers at once, replays after Last-Event-ID oldest first, then goes live', async () => {
      const tenant = newTenant('stream');
      const token = await tokenFor(tenant);
      await record(tenant, [
        { action: 'auth.login.success' },
        { action: 'auth.logout.completed' },
        { action: 'auth.email.verified' },
      ]);
      // openSse resolves on the headers: nothing live is recorded before they came.
      const stream = await openSse(`${server.url}/api/v1/activity/stream`, {
        authorization: `Bearer ${token}`,
        'last-event-id': '1',
      });
      let frames: typeof stream.messages = [];
      let liveSeq = 0;
      try {
        expect(stream.status).toBe(200);
        expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
        await stream.waitFor('the replay of seq 2 and 3', (s) => s.seqs().includes(3));
        const live = await record(tenant, [{ action: 'auth.token.refreshed' }]);
        liveSeq = live[0]?.seq ?? 0;
        await stream.waitFor('the live event', (s) => s.seqs().includes(liveSeq));
        frames = stream.messages.filter((frame) => frame.event === 'activity');
        expect(JSON.parse(frames.at(-1)?.data ?? 'null')).toEqual(live[0]);
      } finally {
        await stream.close();
      }
      // The stream's own activity.stream.opened may take a seq before the live event's:
      // it is the tool's own, left out of the stream.
      expect(frames.map((frame) => frame.id)).toEqual(['2', '3', String(liveSeq)]);
      const events = frames.map((frame) => JSON.parse(frame.data) as ActivityEvent);
      expect(events.map((event) => [event.seq, event.action])).toEqual([
        [2, 'auth.logout.completed'],
        [3, 'auth.email.verified'],
        [liveSeq, 'auth.token.refreshed'],
      ]);
    });

    it('?after=N resumes like Last-Event-ID, and filters apply', async () => {
      const tenant = newTenant('stream-after');
      await record(tenant, [
        { action: 'auth.login.success' },
        { action: 'storage.file.deleted', metadata: { file_id: 'f1' } },
        { action: 'auth.logout.completed' },
        { action: 'auth.email.verified' },
      ]);
      const stream = await openSse(
        `${server.url}/api/v1/activity/stream?after=1&action=auth.*&access_token=${await tokenFor(tenant)}`,
      );
      try {
        expect(stream.status).toBe(200);
        // Seq 4 is the last that matches: all that comes before it is in.
        await stream.waitFor('the replay up to seq 4', (s) => s.seqs().includes(4));
        expect(stream.messages.map((frame) => frame.id)).toEqual(['3', '4']);
      } finally {
        await stream.close();
      }
    });

    it.each([
      ['Last-Event-ID: abc', { 'last-event-id': 'abc' }, ''],
      ['?after=-1', {}, '?after=-1'],
      ['?limit=5', {}, '?limit=5'],
      ['?cursor=x', {}, '?cursor=x'],
    ])('%s is 400 PARAMETER_INVALID', async (_, headers, query) => {
      const tenant = newTenant('stream-bad');
      const response = await api(`/api/v1/activity/stream${query}`, {
        token: await tokenFor(tenant),
        headers,
      });
      expectProblem(response, 400, 'PARAMETER_INVALID', tenant);
    });

    it('activity_stream_connections counts open streams and the lag is observed', async () => {
      const tenant = newTenant('stream-gauge');
      const connections = async () =>
        metricValue((await api('/metrics')).text, 'activity_stream_connections');
      // Streams of earlier tests end when the server notices their client left.
      await eventually('the streams of earlier tests to be closed', async () => (await connections()) === 0);
      const before = (await api('/metrics')).text;
      expect(metricValue(before, 'activity_stream_connections')).toBe(0);
      let during = '';
      const stream = await openSse(`${server.url}/api/v1/activity/stream`, {
        authorization: `Bearer ${await tokenFor(tenant)}`,
      });
      try {
        await record(tenant, [{ action: 'auth.email.verified' }]);
        // The server observes the lag as it writes the event, before the client has it.
        await stream.waitFor('the live event', (s) => s.seqs().length === 1);
        during = (await api('/metrics')).text;
      } finally {
        await stream.close();
      }
      expect(
        metricValue(during, 'activity_stream_connections') -
          metricValue(before, 'activity_stream_connections'),
      ).toBe(1);
      expect(
        metricValue(during, 'activity_stream_lag_seconds_count') -
          metricValue(before, 'activity_stream_lag_seconds_count'),
      ).toBe(1);
      // The gauge falls once the server notices the client left: no event says when.
      await eventually(
        'activity_stream_connections to fall back after the client left',
        async () => (await connections()) === metricValue(before, 'activity_stream_connections'),
      );
    });

    describe('with ENABLE_ACTIVITY_STREAM=false', () => {
      let noStream: TestServer;

      beforeAll(async () => {
        noStream = await startTestServer({
          databaseUrl: database.url,
          env: { ENABLE_ACTIVITY_STREAM: 'false' },
        });
      });
      afterAll(async () => {
        await noStream?.close();
      });

      it('GET /api/v1/activity/stream is 404, and the rest of the API still works', async () => {
        const tenant = newTenant('no-stream');
        const token = await noStream.token(tenant);
        expectProblem(
          await call(noStream.url, '/api/v1/activity/stream', { token }),
          404,
          'NOT_FOUND',
          tenant,
        );
        expect(
          (await call(noStream.url, '/api/v1/activity', { token, body: { action: 'auth.email.verified' } }))
            .status,
        ).toBe(201);
        expect((await call(noStream.url, '/api/v1/activity', { token })).status).toBe(200);
      });
    });
  });

  it('/metrics never names a tenant, after every request above', async () => {
    const tenant = newTenant('metrics-tenant');
    await record(tenant, [{ action: 'auth.email.verified' }]);
    await api('/api/v1/activity?colour=red', { token: await tokenFor(tenant) });
    const { text } = await api('/metrics');
    expect(tenantsUsed.size).toBeGreaterThan(30);
    for (const used of tenantsUsed) expect(text).not.toContain(used);
    expect(text).not.toMatch(/tenant[a-z_]*="/);
  });
});
