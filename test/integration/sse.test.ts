import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ActivityApp, openApp } from '../../src/app/open-app.js';
import { createTokenSigner } from '../../src/auth/sign-token.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { ActivityEvent } from '../../src/domain/event.js';
import { type RunningServer, startServer } from '../../src/http/server.js';
import { createTestDatabase } from '../helpers/databases.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { eventually, metricValue, openSse, type SseTestStream } from '../helpers/sse-client.js';

// Seqs are asserted below: the streams' and reads' own activity.* events would take some (self-audit tests cover them).
const env = {
  ACTIVITY_SECRET: 'x'.repeat(32),
  ACTIVITY_JWT_SECRET: 'j'.repeat(32),
  ACTIVITY_AUDIT_READS: 'false',
};
const streamPath = '/api/v1/activity/stream';
const heartbeatMs = 200;

type Backend = 'postgres' | 'redis';

describe.each<Backend>(['postgres', 'redis'])('GET /api/v1/activity/stream with %s notices', (backend) => {
  let database: { url: string; drop(): Promise<void> } | undefined;
  let redis: RedisServer | undefined;
  let app: ActivityApp;
  let server: RunningServer;
  const logs: Record<string, unknown>[] = [];
  const streams: SseTestStream[] = [];
  const signer = createTokenSigner({ jwtSecret: env.ACTIVITY_JWT_SECRET });

  beforeAll(async () => {
    database = await createTestDatabase();
    if (backend === 'redis') {
      try {
        redis = await startRedis();
      } catch (error) {
        throw new Error(`the SSE tests on Redis need a redis-server: ${String(error)}`);
      }
    }
    app = await openApp(loadConfig({ databaseUrl: database.url, redisUrl: redis?.url }, env), {
      stream: true,
    });
    await app.hub?.start();
    expect(app.transport.name).toBe(backend);
    server = await startServer(app, {
      host: '127.0.0.1',
      port: 0,
      log: (record) => logs.push(record),
      heartbeatMs,
    });
  });
  afterAll(async () => {
    for (const stream of streams) await stream.close();
    await server?.close();
    await app?.close();
    await redis?.stop();
    await database?.drop();
  });

  const tenant = () => `sse-${backend}-${randomUUID()}`;
  const token = async (tenantId: string, options: { ttlSeconds?: number; scopes?: string[] } = {}) =>
    (
      await signer.sign({
        tenantId,
        subject: 'sse-test',
        role: options.scopes ? undefined : 'admin',
        scopes: options.scopes ?? [],
        ttlSeconds: options.ttlSeconds ?? 600,
      })
    ).token;
  const open = async (
    tenantId: string,
    query = '',
    headers: Record<string, string> = {},
    tokenText?: string,
  ) => {
    const stream = await openSse(`${server.url}${streamPath}${query}`, {
      authorization: `Bearer ${tokenText ?? (await token(tenantId))}`,
      ...headers,
    });
    streams.push(stream);
    return stream;
  };
  const record = (tenantId: string, fields: Record<string, unknown> = {}) =>
    app.service.record({ tenant_id: tenantId, action: 'auth.login.success', ...fields });
  const recordMany = async (tenantId: string, count: number) => {
    const events: ActivityEvent[] = [];
    for (let i = 0; i < count; i++) events.push(await record(tenantId));
    return events;
  };
  const untilSeq = (stream: SseTestStream, seq: number, timeoutMs = 5000) =>
    stream.waitFor(`event seq ${seq}`, (s) => s.seqs().includes(seq), timeoutMs);
  const connectionsGauge = async (url = server.url) =>
    metricValue(await (await fetch(`${url}/metrics`)).text(), 'activity_stream_connections');

  it('sends the headers and a first comment at once, before any event is recorded', async () => {
    const t = tenant();
    const stream = await open(t);
    expect(stream.status).toBe(200);
    expect(stream.headers.get('content-type')).toMatch(/^text\/event-stream/);
    expect(stream.headers.get('cache-control')).toContain('no-cache');
    await stream.waitFor('the first bytes', (s) => s.text.length > 0, 2000);
    expect(stream.text).toMatch(/^:/);
    expect(stream.messages).toEqual([]);
    expect((await app.service.query(t, {})).data).toEqual([]);
  });

  it('writes each event as id: seq, event: activity, data: the event JSON', async () => {
    const t = tenant();
    const stream = await open(t);
    const first = await record(t, { actor_id: 'u_1', metadata: { method: 'password' } });
    const second = await record(t, { action: 'auth.logout.completed' });
    await untilSeq(stream, 2);
    expect(stream.text).toContain(`id: 1\nevent: activity\ndata: ${JSON.stringify(first)}\n\n`);
    expect(stream.text).toContain(`id: 2\nevent: activity\ndata: ${JSON.stringify(second)}\n\n`);
    expect(stream.messages).toEqual([
      { id: '1', event: 'activity', data: JSON.stringify(first) },
      { id: '2', event: 'activity', data: JSON.stringify(second) },
    ]);
  });

  it('delivers an event POSTed over HTTP to an open stream of its tenant only', async () => {
    const t = tenant();
    const other = tenant();
    const mine = await open(t);
    const theirs = await open(other);
    const writer = await token(t, { scopes: ['activity:write'] });
    const posted = await fetch(`${server.url}/api/v1/activity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${writer}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'auth.login.success', actor_id: 'u_9' }),
    });
    expect(posted.status).toBe(201);
    const event = (await posted.json()) as ActivityEvent;
    await untilSeq(mine, 1);
    expect(mine.events()).toEqual([event]);
    await record(other);
    await untilSeq(theirs, 1);
    expect(theirs.events().map((e) => e.tenant_id)).toEqual([other]);
    expect(mine.events()).toHaveLength(1);
  });

  it('applies the filters of the query string', async () => {
    const t = tenant();
    const failures = await open(t, '?action=auth.*&status=failure');
    const actor = await open(t, '?actor_id=u_1');
    await record(t, { actor_id: 'u_1' }); // 1
    await record(t, {
      action: 'auth.login.failure',
      actor_id: 'u_2',
      status: 'failure',
      metadata: { reason: 'invalid_credentials' },
    }); // 2
    await record(t, { action: 'conversations.conversation.created', actor_id: 'u_1', status: 'failure' }); // 3
    await record(t, {
      action: 'auth.login.failure',
      actor_id: 'u_1',
      status: 'failure',
      metadata: { reason: 'other' },
    }); // 4
    await untilSeq(failures, 4);
    await untilSeq(actor, 4);
    expect(failures.seqs()).toEqual([2, 4]);
    expect(actor.seqs()).toEqual([1, 3, 4]);
  });

  it('an invalid filter is a 400 problem, not a stream', async () => {
    const response = await fetch(`${server.url}${streamPath}?status=maybe`, {
      headers: { authorization: `Bearer ${await token(tenant())}` },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 400, code: 'PARAMETER_INVALID' });
  });

  it('resumes after Last-Event-ID: replays the later events oldest first, then goes live', async () => {
    const t = tenant();
    await recordMany(t, 5);
    const stream = await open(t, '', { 'last-event-id': '2' });
    await untilSeq(stream, 5);
    expect(stream.seqs()).toEqual([3, 4, 5]);
    await recordMany(t, 2);
    await untilSeq(stream, 7);
    expect(stream.seqs()).toEqual([3, 4, 5, 6, 7]);
    expect(stream.messages.map((message) => message.id)).toEqual(['3', '4', '5', '6', '7']);
  });

  it('resumes after ?after=N, with filters', async () => {
    const t = tenant();
    for (let i = 1; i <= 6; i++) {
      await record(t, {
        action: i % 2 === 0 ? 'auth.logout.completed' : 'conversations.conversation.created',
      });
    }
    const all = await open(t, '?after=3');
    const filtered = await open(t, '?after=1&action=auth.logout.completed');
    await untilSeq(all, 6);
    await untilSeq(filtered, 6);
    expect(all.seqs()).toEqual([4, 5, 6]);
    expect(filtered.seqs()).toEqual([2, 4, 6]);
    await record(t, { action: 'auth.logout.completed' });
    await untilSeq(all, 7);
    await untilSeq(filtered, 7);
    expect(all.seqs()).toEqual([4, 5, 6, 7]);
    expect(filtered.seqs()).toEqual([2, 4, 6, 7]);
  });

  it('Last-Event-ID wins over ?after (a reconnecting EventSource keeps its URL)', async () => {
    const t = tenant();
    await recordMany(t, 5);
    const stream = await open(t, '?after=1', { 'last-event-id': '4' });
    await untilSeq(stream, 5);
    expect(stream.seqs()).toEqual([5]);
  });

  it.each([
    ['Last-Event-ID: abc', '', { 'last-event-id': 'abc' }],
    ['Last-Event-ID: -1', '', { 'last-event-id': '-1' }],
    ['Last-Event-ID: 1.5', '', { 'last-event-id': '1.5' }],
    ['Last-Event-ID: 10^20', '', { 'last-event-id': '100000000000000000000' }],
    ['?after=x', '?after=x', {}],
  ])('an invalid resume point (%s) is a 400 problem', async (_name, query, headers) => {
    const before = await connectionsGauge();
    const response = await fetch(`${server.url}${streamPath}${query}`, {
      headers: { authorization: `Bearer ${await token(tenant())}`, ...headers },
    });
    expect(response.status).toBe(400);
    expect(response.headers.get('content-type')).toBe('application/problem+json');
    expect(await response.json()).toMatchObject({ status: 400, code: 'PARAMETER_INVALID' });
    expect(await connectionsGauge()).toBe(before);
  });

  it('without a token it is 401; a token without activity:read is 403', async () => {
    const anonymous = await fetch(`${server.url}${streamPath}`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toMatchObject({ code: 'UNAUTHORIZED' });
    const writeOnly = await fetch(`${server.url}${streamPath}`, {
      headers: { authorization: `Bearer ${await token(tenant(), { scopes: ['activity:write'] })}` },
    });
    expect(writeOnly.status).toBe(403);
    expect(await writeOnly.json()).toMatchObject({ code: 'FORBIDDEN' });
  });

  it('accepts the token as ?access_token= (EventSource cannot set headers)', async () => {
    const t = tenant();
    const stream = await openSse(`${server.url}${streamPath}?access_token=${await token(t)}`);
    streams.push(stream);
    expect(stream.status).toBe(200);
    await record(t);
    await untilSeq(stream, 1);
  });

  it('sends a heartbeat comment every heartbeatMs', async () => {
    const stream = await open(tenant());
    await stream.waitFor(
      'two heartbeats',
      (s) => (s.text.match(/^: heartbeat$/gm) ?? []).length >= 2,
      heartbeatMs * 2 + 2000,
    );
    expect(stream.messages).toEqual([]);
  });

  it('closes a stream when its token expires, saying so in a close event', async () => {
    const t = tenant();
    // Recorded first and replayed at once: the event comes before the token runs out.
    await record(t);
    const { token: short, expiresAt } = await signer.sign({
      tenantId: t,
      subject: 'sse-test',
      role: 'admin',
      scopes: [],
      ttlSeconds: 2,
    });
    const stream = await open(t, '?after=0', {}, short);
    expect(stream.status).toBe(200);
    await untilSeq(stream, 1);
    // A deadline for the close to come at all, not a bound on how late it may be.
    await stream.waitForEnd(expiresAt.getTime() - Date.now() + 10_000);
    expect(Date.now(), 'the stream was closed no earlier than the token expired').toBeGreaterThanOrEqual(
      expiresAt.getTime(),
    );
    expect(stream.messages.at(-1)).toEqual({
      id: '1',
      event: 'close',
      data: JSON.stringify({ reason: 'expired' }),
    });
  });

  it('counts open streams in the activity_stream_connections gauge', async () => {
    const before = await connectionsGauge();
    expect(before).toBeTypeOf('number');
    const first = await open(tenant());
    const second = await open(tenant());
    await first.waitFor('the first bytes', (s) => s.text.length > 0);
    await second.waitFor('the first bytes', (s) => s.text.length > 0);
    expect(await connectionsGauge()).toBe((before as number) + 2);
    await first.close();
    await eventually(
      'the gauge to drop by one',
      async () => (await connectionsGauge()) === (before as number) + 1,
    );
    await second.close();
    await eventually('the gauge to drop back', async () => (await connectionsGauge()) === before);
  });

  it('server.close() ends open streams promptly and resolves', async () => {
    // A drain longer than any test: close() resolves only because its streams ended.
    const own = await startServer(app, {
      host: '127.0.0.1',
      port: 0,
      log: () => {},
      heartbeatMs,
      drainMs: 3_600_000,
    });
    const t = tenant();
    const hubSize = app.hub?.size ?? 0;
    const readers = await Promise.all(
      [0, 1].map(async () =>
        openSse(`${own.url}${streamPath}`, {
          authorization: `Bearer ${await token(t)}`,
        }),
      ),
    );
    streams.push(...readers);
    for (const reader of readers) await reader.waitFor('the first bytes', (s) => s.text.length > 0);
    expect(app.hub?.size).toBe(hubSize + 2);
    await record(t);
    for (const reader of readers) await untilSeq(reader, 1);

    const closing = own.close();
    // The clients see their bodies end, whatever the close then waits for.
    for (const reader of readers) await reader.waitForEnd(10_000);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error('server.close() did not resolve within 10 s of its streams ending')),
        10_000,
      );
    });
    try {
      await Promise.race([closing, deadline]);
    } finally {
      clearTimeout(timer);
    }
    expect(app.hub?.size).toBe(hubSize);
    await expect(fetch(`${own.url}/healthz`)).rejects.toThrow();
    // The app and the other server carry on.
    const stream = await open(t, '?after=1');
    await record(t);
    await untilSeq(stream, 2);
  });
});
