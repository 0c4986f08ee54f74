import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createTestDatabase } from '../helpers/databases.js';
import { call, startTestServer, type TestServer, testJwtSecret } from '../helpers/http-server.js';
import { newEvent } from '../helpers/new-event.js';
import { eventually, openSse } from '../helpers/sse-client.js';

/** What `serve` records of its own use: reads, streams and denials, in the tenant a token names. */
describe('serve accounts for itself', () => {
  let database: { url: string; drop(): Promise<void> };
  let server: TestServer;

  beforeAll(async () => {
    database = await createTestDatabase();
    server = await startTestServer({ databaseUrl: database.url });
  });
  afterAll(async () => {
    await server?.close();
    await database?.drop();
  });

  const tenant = () => `http-audit-${randomUUID().slice(0, 8)}`;
  /** The tenant's own events of `action`, oldest first, once those written in the background are in. */
  const recorded = async (tenantId: string, action: string): Promise<ActivityEvent[]> => {
    await server.app.service.audit.flush();
    return server.database.repository.page(tenantId, { actions: [action] }, { limit: 1000, order: 'asc' });
  };

  it('a page read is one activity.events.read, naming the token, the address hashed', async () => {
    const a = tenant();
    await server.database.repository.append(a, [newEvent(a), newEvent(a)]);
    const token = await server.token(a, { subject: 'svc-reports', scopes: ['activity:read'] });
    const page = await call<{ data: ActivityEvent[] }>(
      server.url,
      '/api/v1/activity?limit=1&status=success',
      {
        token,
        headers: { 'user-agent': 'reports/1.0', 'x-request-id': 'req-42' },
      },
    );
    expect(page.status).toBe(200);
    expect(page.json.data).toHaveLength(1);
    const [read, ...more] = await recorded(a, 'activity.events.read');
    expect(more).toEqual([]);
    expect(read).toMatchObject({
      actor_type: 'service_account',
      actor_id: 'svc-reports',
      source: 'api',
      user_agent: 'reports/1.0',
      request_id: 'req-42',
      ip_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      metadata: { kind: 'page', filters: { status: 'success' }, cursor: false, returned: 1 },
    });
    // The read left itself out of the next page.
    const again = await call<{ data: ActivityEvent[] }>(server.url, '/api/v1/activity', { token });
    expect(again.json.data.map((event) => event.action)).toEqual([
      'auth.login.success',
      'auth.login.success',
    ]);
  });

  it('a read is recorded whatever the caller sends: what an event cannot store is left out', async () => {
    const a = tenant();
    const token = await server.token(a, { subject: 'svc-2001:db8::1', scopes: ['activity:read'] });
    const page = await call(server.url, '/api/v1/activity', {
      token,
      // Within its cap as sent, over it once the address in it is replaced.
      headers: { 'user-agent': `${'a'.repeat(508)} ::1`, 'x-request-id': 'x'.repeat(129) },
    });
    expect(page.status).toBe(200);
    const [read] = await recorded(a, 'activity.events.read');
    expect(read).toMatchObject({ actor_id: null, user_agent: null, request_id: null });
    const tooLong = await call(server.url, `/api/v1/activity?action=auth.*,${'a'.repeat(200)}.b.c`, {
      token,
    });
    expect(tooLong.status).toBe(400);
  });

  it('a caller cannot record an activity.* event: 422, one event or in a batch, and nothing is stored', async () => {
    const a = tenant();
    const token = await server.token(a, { scopes: ['activity:write'] });
    const reserved = {
      action: 'activity.retention.changed',
      metadata: { retention_days: 1, previous_days: null },
    };
    const single = await call<{ code: string }>(server.url, '/api/v1/activity', {
      method: 'POST',
      token,
      body: reserved,
    });
    expect(single.status).toBe(422);
    expect(single.json.code).toBe('ACTION_RESERVED');
    const batch = await call<{ detail: string }>(server.url, '/api/v1/activity', {
      method: 'POST',
      token,
      body: [{ action: 'auth.login.success' }, reserved],
    });
    expect(batch.status).toBe(422);
    expect(batch.json.detail).toContain('[1].action');
    expect(await server.database.repository.page(a, {}, { limit: 10 })).toEqual([]);
  });

  it('a stream is opened and closed once, with what it delivered', async () => {
    const a = tenant();
    await server.database.repository.append(a, [newEvent(a), newEvent(a)]);
    const token = await server.token(a, { scopes: ['activity:read'] });
    const stream = await openSse(`${server.url}/api/v1/activity/stream?after=0`, {
      authorization: `Bearer ${token}`,
    });
    await stream.waitFor('the 2 events', () => stream.events().length >= 2);
    await stream.close();
    // Recorded once the server sees the connection gone.
    let closed: ActivityEvent[] = [];
    await eventually('the stream to be recorded as closed', async () => {
      closed = await recorded(a, 'activity.stream.closed');
      return closed.length > 0;
    });
    const opened = await recorded(a, 'activity.stream.opened');
    expect(opened.map((event) => event.metadata)).toEqual([{ filters: {}, after_seq: 0 }]);
    expect(closed.map((event) => event.metadata)).toEqual([
      { filters: {}, duration_ms: expect.any(Number), delivered: 2 },
    ]);
  });

  describe('denials', () => {
    it('a token without the scope is recorded in its own tenant, never in the one it reached for', async () => {
      const a = tenant();
      const b = tenant();
      const writeOnly = await server.token(a, { subject: 'svc-ingest', scopes: ['activity:write'] });
      expect((await call(server.url, '/api/v1/activity', { token: writeOnly })).status).toBe(403);
      const crossTenant = await call(server.url, '/api/v1/activity', {
        method: 'POST',
        token: writeOnly,
        body: { tenant_id: b, action: 'auth.login.success' },
      });
      expect(crossTenant.status).toBe(403);
      const denied = await recorded(a, 'activity.access.denied');
      expect(denied.map((event) => [event.actor_id, event.status, event.metadata])).toEqual([
        [
          'svc-ingest',
          'failure',
          {
            http_status: 403,
            reason: 'token lacks the activity:read scope',
            method: 'GET',
            route: '/api/v1/activity',
            suppressed: 0,
          },
        ],
        [
          'svc-ingest',
          'failure',
          expect.objectContaining({ http_status: 403, method: 'POST', route: '/api/v1/activity' }),
        ],
      ]);
      expect(await server.database.repository.page(b, {}, { limit: 10 })).toEqual([]);
    });

    it('an expired token of ours names its tenant; a forged or absent one writes nothing anywhere', async () => {
      const a = tenant();
      const expired = await server.token(a, { ttlSeconds: 60, now: new Date(Date.now() - 3_600_000) });
      expect((await call(server.url, '/api/v1/activity', { token: expired })).status).toBe(401);
      expect((await recorded(a, 'activity.access.denied')).map((event) => event.metadata)).toEqual([
        expect.objectContaining({ http_status: 401, reason: 'token expired' }),
      ]);

      const c = tenant();
      const forged = await new SignJWT({ tenant_id: c, scope: 'activity:read' })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject('mallory')
        .setExpirationTime('1h')
        .sign(new TextEncoder().encode(`not-${testJwtSecret}`));
      expect((await call(server.url, '/api/v1/activity', { token: forged })).status).toBe(401);
      expect((await call(server.url, '/api/v1/activity', {})).status).toBe(401);
      expect((await call(server.url, `/api/v1/activity?access_token=${forged}`, {})).status).toBe(401);
      await server.app.service.audit.flush();
      expect(await server.database.repository.page(c, {}, { limit: 10 })).toEqual([]);
    });

    it('a flood writes a bounded number of events and counts the rest, in the next event and the metric', async () => {
      // A clock of the test's: the allowance grows back only when the test says so.
      let now = new Date('2026-12-01T00:00:00.000Z');
      const flooded = await startTestServer({ databaseUrl: database.url, clock: () => now });
      try {
        const a = tenant();
        const token = await flooded.token(a, { scopes: ['activity:write'] });
        const suppressedTotal = async () => {
          const text = (await call(flooded.url, '/metrics')).text;
          return Number(/^activity_audit_events_suppressed_total (\d+)/m.exec(text)?.[1]);
        };
        const requests = 2000;
        for (let sent = 0; sent < requests; sent += 50) {
          const answers = await Promise.all(
            Array.from({ length: 50 }, () => call(flooded.url, '/api/v1/activity', { token })),
          );
          for (const answer of answers) expect(answer.status).toBe(403);
        }
        await flooded.app.service.audit.flush();
        const denied = () =>
          flooded.database.repository.page(
            a,
            { actions: ['activity.access.denied'] },
            { limit: 100, order: 'asc' },
          );
        expect(await denied()).toHaveLength(10);
        expect(await suppressedTotal()).toBe(requests - 10);
        // Once the allowance has grown back, the next denial says how many went unrecorded.
        now = new Date(now.getTime() + 6_000);
        expect((await call(flooded.url, '/api/v1/activity', { token })).status).toBe(403);
        await flooded.app.service.audit.flush();
        expect((await denied()).map((event) => event.metadata.suppressed)).toEqual([
          ...Array(10).fill(0),
          requests - 10,
        ]);
      } finally {
        await flooded.close();
      }
    });
  });

  it('/metrics counts the events purged by any process, from the database', async () => {
    const scrape = async () => {
      const text = (await call(server.url, '/metrics')).text;
      return Number(/^activity_events_purged_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
    };
    const before = await scrape();
    const a = tenant();
    await server.database.repository.append(
      a,
      Array.from({ length: 4 }, () => newEvent(a)),
      { createdAt: new Date('2020-01-01T00:00:00.000Z') },
    );
    // Another process's purge: a store of its own on the same database.
    await server.app.retention.purge({
      now: new Date(),
      defaultRetentionMs: 86_400_000,
      tenantId: a,
      batchSize: 100,
      dryRun: false,
    });
    expect((await scrape()) - before).toBe(4);
  });
});
