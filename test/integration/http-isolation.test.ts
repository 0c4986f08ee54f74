import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createTestDatabase } from '../helpers/databases.js';
import {
  type ApiRequest,
  type ApiResponse,
  call,
  readStream,
  startTestServer,
  type TestServer,
} from '../helpers/http-server.js';

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

/** One exchange of tenant A's: what it sent, and what it got back. */
interface Seen {
  sent: string;
  received: string;
}

describe('HTTP tenant isolation', () => {
  const suffix = randomUUID().slice(0, 8);
  const tenantA = `iso-a-${suffix}`;
  const tenantB = `iso-b-${suffix}`;
  /** B's identifying values: A must never receive one it did not send itself. */
  const bValues = {
    actorId: `b-actor-${suffix}`,
    objectType: `b_type_${suffix}`,
    objectId: `b-object-${suffix}`,
    requestId: `b-request-${suffix}`,
  };
  let database: { url: string; drop(): Promise<void> };
  let server: TestServer;
  let tokenA: string;
  let tokenB: string;
  let eventsB: ActivityEvent[] = [];
  /** One of B's ids that A reuses for its own event (so A legitimately sees it). */
  let sharedId = '';
  const seenByA: Seen[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startTestServer({ databaseUrl: database.url });
    tokenA = await server.token(tenantA);
    tokenB = await server.token(tenantB);
    eventsB = await record(tokenB, 3, 'b');
    await record(tokenA, 3, 'a');
  });
  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  /** Records `count` events whose identifying fields carry `who`'s values. */
  async function record(token: string, count: number, who: 'a' | 'b'): Promise<ActivityEvent[]> {
    const values =
      who === 'b'
        ? bValues
        : { actorId: 'a-actor', objectType: 'a_type', objectId: 'a-object', requestId: 'a-request' };
    const response = await call<{ data: ActivityEvent[] }>(server.url, '/api/v1/activity', {
      token,
      body: Array.from({ length: count }, () => ({
        action: 'auth.login.success',
        actor_id: values.actorId,
        object_type: values.objectType,
        object_id: values.objectId,
        request_id: values.requestId,
        ip: '198.51.100.4',
        metadata: { context: { owner: who } },
      })),
    });
    expect(response.status, response.text).toBe(201);
    return response.json.data;
  }

  /** A request with A's credentials, kept for the final leak check. */
  async function asA<T = unknown>(path: string, request: ApiRequest = {}): Promise<ApiResponse<T>> {
    const response = await call<T>(server.url, path, { token: tokenA, ...request });
    seenByA.push({
      sent: `${path} ${JSON.stringify(request.body ?? null)} ${JSON.stringify(request.headers ?? {})}`,
      received: response.text,
    });
    return response;
  }

  async function allOf(token: string): Promise<ActivityEvent[]> {
    const response = await call<Page>(server.url, '/api/v1/activity?limit=200', { token });
    expect(response.status, response.text).toBe(200);
    expect(response.json.next_cursor).toBeNull();
    return response.json.data;
  }

  function expectProblem(response: ApiResponse<unknown>, status: number, code: string): Problem {
    expect(response.status, response.text).toBe(status);
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(response.json).toMatchObject({ status, code, detail: expect.any(String) });
    return response.json as Problem;
  }

  it("A's list holds A's events only", async () => {
    const response = await asA<Page>('/api/v1/activity?limit=200');
    expect(response.status).toBe(200);
    expect(response.json.data.length).toBeGreaterThanOrEqual(3);
    expect(response.json.data.every((event) => event.tenant_id === tenantA)).toBe(true);
    expect(response.json.data.every((event) => event.actor_id === 'a-actor')).toBe(true);
  });

  it.each([
    `tenant_id=${tenantB}`,
    `tenant=${tenantB}`,
    `tenantId=${tenantB}`,
    `tenant_id=${tenantA}`,
    `tenant_id=${tenantB}&action=auth.*`,
  ])('there is no tenant parameter: ?%s is 400', async (query) => {
    for (const path of ['/api/v1/activity', '/api/v1/activity/stream']) {
      const response = await asA(`${path}?${query}`);
      expectProblem(response, 400, 'PARAMETER_INVALID');
      expect(response.text).not.toContain('"data"');
    }
  });

  it.each([
    ['actor_id', bValues.actorId],
    ['object_type', bValues.objectType],
    ['object_id', bValues.objectId],
    ['request_id', bValues.requestId],
  ])("filtering by B's %s finds nothing for A", async (name, value) => {
    const response = await asA<Page>(`/api/v1/activity?${name}=${encodeURIComponent(value)}`);
    expect(response.status, response.text).toBe(200);
    expect(response.json).toEqual({ data: [], next_cursor: null });
    // The same filter with B's own token does find B's events: the filter itself works.
    const forB = await call<Page>(server.url, `/api/v1/activity?${name}=${encodeURIComponent(value)}`, {
      token: tokenB,
    });
    expect(forB.json.data.map((event) => event.id).sort()).toEqual(eventsB.map((event) => event.id).sort());
  });

  it.each([
    () => `/api/v1/tenants/${tenantB}/activity`,
    () => `/api/v1/activity/${tenantB}`,
    () => `/api/v1/${tenantB}/activity`,
    () => `/api/v1/activity/${eventsB[0]?.id}`,
    () => `/api/v1/activity/${encodeURIComponent(`../${tenantB}`)}`,
  ])('a path naming B is 404 (%#)', async (path) => {
    expectProblem(await asA(path()), 404, 'NOT_FOUND');
  });

  it("A's header token wins over B's ?access_token=", async () => {
    const response = await asA<Page>(`/api/v1/activity?limit=200&access_token=${tokenB}`);
    expect(response.status, response.text).toBe(200);
    expect(response.json.data.length).toBeGreaterThan(0);
    expect(response.json.data.every((event) => event.tenant_id === tenantA)).toBe(true);
  });

  it('a POST naming B in tenant_id is 403 and stores nothing in B', async () => {
    const beforeA = (await allOf(tokenA)).length;
    const beforeB = await allOf(tokenB);
    for (const body of [
      { tenant_id: tenantB, action: 'auth.login.success', actor_id: 'intruder' },
      [{ tenant_id: tenantB, action: 'auth.login.success', actor_id: 'intruder' }],
    ]) {
      expectProblem(await asA('/api/v1/activity', { body }), 403, 'FORBIDDEN');
    }
    expect(await allOf(tokenB)).toEqual(beforeB);
    expect(await allOf(tokenA)).toHaveLength(beforeA);
  });

  it('a batch with one item for B is 403 and stores nothing at all', async () => {
    const beforeA = (await allOf(tokenA)).length;
    const beforeB = await allOf(tokenB);
    const problem = expectProblem(
      await asA('/api/v1/activity', {
        body: [
          { action: 'auth.login.success', actor_id: 'a-actor' },
          { tenant_id: tenantA, action: 'auth.login.success', actor_id: 'a-actor' },
          { tenant_id: tenantB, action: 'auth.login.success', actor_id: 'intruder' },
          { action: 'auth.login.success', actor_id: 'a-actor' },
        ],
      }),
      403,
      'FORBIDDEN',
    );
    expect(problem.detail).toContain('2');
    expect(await allOf(tokenB)).toEqual(beforeB);
    expect(await allOf(tokenA)).toHaveLength(beforeA);
  });

  it('A may name its own tenant in the body', async () => {
    const response = await asA<ActivityEvent>('/api/v1/activity', {
      body: { tenant_id: tenantA, action: 'auth.login.success', actor_id: 'a-actor' },
    });
    expect(response.status, response.text).toBe(201);
    expect(response.json.tenant_id).toBe(tenantA);
  });

  it("reusing one of B's event ids gives A its own event, never B's", async () => {
    const [shared] = await record(tokenB, 1, 'b');
    const id = shared?.id as string;
    sharedId = id;
    const beforeA = await allOf(tokenA);
    const response = await asA<ActivityEvent>('/api/v1/activity', {
      body: { id, action: 'auth.logout.completed', actor_id: 'a-actor' },
    });
    expect(response.status, response.text).toBe(201);
    expect(response.json).toMatchObject({
      id,
      tenant_id: tenantA,
      action: 'auth.logout.completed',
      actor_id: 'a-actor',
    });
    // A's own seq, after A's (the read of A's page just made took one too).
    expect(response.json.seq).toBeGreaterThan(beforeA[0]?.seq ?? 0);
    expect(response.text).not.toContain(bValues.actorId);
    const forB = await allOf(tokenB);
    expect(forB.find((event) => event.id === id)).toEqual(shared);
    eventsB = forB;
  });

  it("a cursor obtained with B's token is 400 CURSOR_INVALID for A", async () => {
    for (const filters of ['', '&action=auth.*']) {
      const pageB = await call<Page>(server.url, `/api/v1/activity?limit=1${filters}`, { token: tokenB });
      const cursorB = pageB.json.next_cursor;
      expect(cursorB).toEqual(expect.any(String));
      const response = await asA(
        `/api/v1/activity?limit=1${filters}&cursor=${encodeURIComponent(cursorB ?? '')}`,
      );
      expectProblem(response, 400, 'CURSOR_INVALID');
      // A's own cursor for the same query works.
      const pageA = await asA<Page>(`/api/v1/activity?limit=1${filters}`);
      const nextA = await asA<Page>(
        `/api/v1/activity?limit=1${filters}&cursor=${encodeURIComponent(pageA.json.next_cursor ?? '')}`,
      );
      expect(nextA.status, nextA.text).toBe(200);
      expect(nextA.json.data[0]?.tenant_id).toBe(tenantA);
    }
  });

  it("A's stream never delivers B's events, replayed or live", async () => {
    let liveA: ActivityEvent[] = [];
    let liveB: ActivityEvent[] = [];
    const stream = await readStream(server.url, '/api/v1/activity/stream', {
      headers: { authorization: `Bearer ${tokenA}`, 'last-event-id': '0' },
      forMs: 1000,
      during: async () => {
        liveB = await record(tokenB, 2, 'b');
        liveA = await record(tokenA, 2, 'a');
        liveB.push(...(await record(tokenB, 1, 'b')));
      },
    });
    seenByA.push({ sent: '/api/v1/activity/stream Last-Event-ID: 0', received: stream.text });
    eventsB = await allOf(tokenB);
    expect(eventsB.map((event) => event.id)).toEqual(expect.arrayContaining(liveB.map((event) => event.id)));
    expect(stream.status).toBe(200);
    const delivered = stream.frames
      .filter((frame) => frame.event === 'activity')
      .map((frame) => JSON.parse(frame.data) as ActivityEvent);
    expect(delivered.every((event) => event.tenant_id === tenantA)).toBe(true);
    // Every A event arrives, oldest first: the replay and the live ones.
    const allA = (await allOf(tokenA)).reverse();
    expect(delivered.map((event) => event.id)).toEqual(allA.map((event) => event.id));
    expect(delivered.map((event) => event.id)).toEqual(
      expect.arrayContaining(liveA.map((event) => event.id)),
    );
    for (const event of eventsB) if (event.id !== sharedId) expect(stream.text).not.toContain(event.id);
    expect(stream.text).not.toContain(tenantB);
  });

  it("A's stream with B's values as filters stays silent while B writes", async () => {
    const stream = await readStream(
      server.url,
      `/api/v1/activity/stream?after=0&actor_id=${bValues.actorId}&access_token=${tokenA}`,
      {
        forMs: 500,
        during: async () => {
          await record(tokenB, 1, 'b');
        },
      },
    );
    seenByA.push({ sent: `/api/v1/activity/stream?actor_id=${bValues.actorId}`, received: stream.text });
    expect(stream.status).toBe(200);
    expect(stream.frames).toEqual([]);
    eventsB = await allOf(tokenB);
  });

  it("no response A received holds B's tenant id, event ids, or B's values it did not send", async () => {
    eventsB = await allOf(tokenB);
    const secrets = [
      tenantB,
      ...Object.values(bValues),
      ...eventsB.map((event) => event.id).filter((id) => id !== sharedId),
    ];
    expect(seenByA.length).toBeGreaterThan(25);
    for (const { sent, received } of seenByA) {
      for (const secret of secrets) {
        if (sent.includes(secret)) continue;
        expect(received, `response to ${sent.slice(0, 120)}`).not.toContain(secret);
      }
    }
  });
});
