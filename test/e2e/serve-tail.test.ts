import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenSigner } from '../../src/auth/sign-token.js';
import { createTokenVerifier } from '../../src/auth/verify-token.js';
import { createTestDatabase } from '../helpers/databases.js';
import { type EventJson, expectEventShape } from '../helpers/event-shape.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { cliFor, expectExit, parseJson } from '../helpers/run-cli.js';
import {
  killAllCli,
  type RunningServe,
  spawnCli,
  startServe as startServeProcess,
} from '../helpers/running-cli.js';
import { openSse, type SseTestStream } from '../helpers/sse-client.js';

const secret = 'e2e-serve-secret-0123456789abcdef0123456789';
const jwtSecret = 'e2e-serve-jwt-secret-0123456789abcdef012345';
/**
 * How long serve may take to exit after SIGTERM: under the 10 s after which its drain
 * closes every connection by force, so that a serve that waits for the drain fails.
 */
const serveStopMs = 9_000;

describe('serve and tail, as processes', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let redis: RedisServer;
  let env: Record<string, string>;
  let cli: ReturnType<typeof cliFor>;
  const streams: SseTestStream[] = [];
  const signer = createTokenSigner({ jwtSecret });

  beforeAll(async () => {
    database = await createTestDatabase();
    try {
      redis = await startRedis();
    } catch (error) {
      throw new Error(`serve and tail across processes need a redis-server: ${String(error)}`);
    }
    env = {
      ACTIVITY_DATABASE_URL: database.url,
      ACTIVITY_REDIS_URL: redis.url,
      ACTIVITY_SECRET: secret,
      ACTIVITY_JWT_SECRET: jwtSecret,
      // These tests follow seqs across restarts; with reads recorded, the streams' own
      // activity.stream.* events would take seqs between them (self-audit.test.ts).
      ACTIVITY_AUDIT_READS: 'false',
    };
    cli = cliFor(env);
  });
  afterAll(async () => {
    for (const stream of streams) await stream.close();
    await killAllCli();
    await redis?.stop();
    await database?.drop();
  });

  const tenant = () => `e2e-live-${randomUUID()}`;
  const readWriteToken = async (tenantId: string) =>
    (
      await signer.sign({
        tenantId,
        subject: 'e2e',
        scopes: ['activity:read', 'activity:write'],
        ttlSeconds: 600,
      })
    ).token;

  async function startServe(port = 0): Promise<RunningServe> {
    const serve = await startServeProcess(env, port);
    expect(serve.stream).toBe('redis');
    return serve;
  }

  async function post(baseUrl: string, token: string, body: unknown): Promise<EventJson[]> {
    const response = await fetch(`${baseUrl}/api/v1/activity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as EventJson | { data: EventJson[] };
    expect(response.status, JSON.stringify(json)).toBe(201);
    return 'data' in json ? json.data : [json];
  }

  async function openStream(baseUrl: string, token: string): Promise<SseTestStream> {
    const stream = await openSse(`${baseUrl}/api/v1/activity/stream`, { authorization: `Bearer ${token}` });
    streams.push(stream);
    expect(stream.status).toBe(200);
    await stream.waitFor('the first bytes', (s) => s.text.length > 0);
    return stream;
  }

  it('two serve processes share one Redis: a stream on each gets an event POSTed to the other once', async () => {
    const [first, second] = await Promise.all([startServe(), startServe()]);
    expect(first.url).not.toBe(second.url);
    const t = tenant();
    const token = await readWriteToken(t);
    const onFirst = await openStream(first.url, token);
    const onSecond = await openStream(second.url, token);

    const [one] = await post(second.url, token, { action: 'auth.login.success', actor_id: 'u_1' });
    const [two] = await post(first.url, token, { action: 'auth.logout.completed', actor_id: 'u_1' });
    const [three] = await post(second.url, token, { action: 'auth.login.success', actor_id: 'u_2' });
    for (const stream of [onFirst, onSecond]) {
      await stream.waitFor('seq 3', (s) => s.seqs().includes(3));
      expect(stream.seqs()).toEqual([1, 2, 3]);
      expect(stream.events()).toEqual([one, two, three]);
    }

    // SIGTERM with streams open: each process ends its streams and exits 0, without
    // waiting out its 10 s drain (the deadline below is under it).
    const stopped = await Promise.all([
      first.stop('SIGTERM', serveStopMs),
      second.stop('SIGTERM', serveStopMs),
    ]);
    for (const stream of [onFirst, onSecond]) {
      await stream.waitForEnd();
      expect(stream.endedCleanly, 'serve ended the stream itself, not by dying or by its drain').toBe(true);
    }
    for (const { exitCode } of stopped) expect(exitCode).toBe(0);
    expect(first.stderr()).toContain('"msg":"stopped"');
  });

  it('tail (local) prints the last N oldest first, then what `activity record` adds, and exits 0 on SIGINT', async () => {
    const t = tenant();
    const seeded = await cli(['record', '--file', '-', '--format', 'json'], {
      input: [1, 2, 3]
        .map((n) => JSON.stringify({ tenant_id: t, action: 'auth.login.success', actor_id: `u_${n}` }))
        .join('\n'),
    });
    expectExit(seeded, 0);
    expect(parseJson(seeded.stdout)).toMatchObject({ recorded: 3 });

    const tail = spawnCli(['tail', '--tenant', t, '-n', '2', '--format', 'ndjson'], env);
    await tail.waitFor('the last 2 events', () => tail.ndjson().length >= 2, 15_000);
    expect(tail.ndjson().map((event) => event.seq)).toEqual([2, 3]);

    const added = await Promise.all(
      ['auth.logout.completed', 'auth.token.refreshed'].map((action) =>
        cli(['record', '--tenant', t, '--action', action, '--format', 'json']),
      ),
    );
    for (const run of added) expectExit(run, 0);
    await tail.waitFor('the 2 recorded events', () => tail.ndjson().length >= 4, 15_000);

    const { exitCode } = await tail.stop('SIGINT');
    expect(exitCode).toBe(0);
    const printed = tail.ndjson();
    expect(printed.map((event) => event.seq)).toEqual([2, 3, 4, 5]);
    for (const event of printed) {
      expectEventShape(event);
      expect(event.tenant_id).toBe(t);
    }
    expect(
      printed
        .slice(2)
        .map((event) => event.id)
        .sort(),
    ).toEqual(added.map((run) => parseJson<EventJson>(run.stdout).id).sort());
  });

  it('tail --url follows serve over SSE and resumes without duplicates after serve restarts on the same port', async () => {
    const t = tenant();
    const [serve, minted] = await Promise.all([
      startServe(),
      cli(['token', '--tenant', t, '--role', 'admin', '--format', 'json']),
    ]);
    expectExit(minted, 0);
    const readToken = parseJson<{ token: string }>(minted.stdout).token;
    const writeToken = await readWriteToken(t);
    await post(serve.url, writeToken, [
      { action: 'auth.login.success', actor_id: 'u_1' },
      { action: 'auth.login.success', actor_id: 'u_2' },
    ]);

    // No database in its environment: it reads through the server only.
    const tail = spawnCli(
      ['tail', '--url', serve.url, '--token', readToken, '-n', '1', '--format', 'ndjson'],
      {},
    );
    await tail.waitFor('the last event', () => tail.ndjson().length >= 1);
    expect(tail.ndjson().map((event) => event.seq)).toEqual([2]);
    await post(serve.url, writeToken, { action: 'auth.logout.completed', actor_id: 'u_1' });
    await tail.waitFor('seq 3 over SSE', () => tail.ndjson().length >= 2);

    // SIGTERM with tail's stream open: serve exits 0 before its 10 s drain would force it,
    // even though tail reconnects at once (it must not get a new stream from a closing server).
    const stopped = await serve.stop('SIGTERM', serveStopMs);
    expect(stopped.exitCode).toBe(0);

    // Recorded while no server runs; the restarted one must replay it from the database.
    const whileDown = await cli([
      'record',
      '--tenant',
      t,
      '--action',
      'auth.token.refreshed',
      '--format',
      'json',
    ]);
    expectExit(whileDown, 0);
    expect(parseJson<EventJson>(whileDown.stdout).seq).toBe(4);

    const restarted = await startServe(serve.port);
    expect(restarted.port).toBe(serve.port);
    await post(restarted.url, writeToken, { action: 'auth.login.success', actor_id: 'u_3' });
    await tail.waitFor('seqs 4 and 5 after the restart', () => tail.ndjson().length >= 4, 25_000);
    expect(tail.ndjson().map((event) => event.seq)).toEqual([2, 3, 4, 5]);
    // A sentinel: a duplicate of anything already printed would show up before it.
    await post(restarted.url, writeToken, { action: 'auth.logout.completed', actor_id: 'u_3' });
    await tail.waitFor('seq 6', () => tail.ndjson().length >= 5);

    const { exitCode } = await tail.stop('SIGINT');
    expect(exitCode).toBe(0);
    expect(tail.ndjson().map((event) => event.seq)).toEqual([2, 3, 4, 5, 6]);
    expect(tail.stderr()).toBe('');
    expect((await restarted.stop('SIGTERM')).exitCode).toBe(0);
  });

  it('activity token --format json prints a token that verifies with the same secret', async () => {
    const t = tenant();
    const run = await cli(['token', '--tenant', t, '--role', 'admin', '--format', 'json']);
    expectExit(run, 0);
    const body = parseJson<{ token: string; expires_at: string }>(run.stdout);
    expect(Object.keys(body).sort()).toEqual(['expires_at', 'token']);
    const principal = await createTokenVerifier({ jwtSecret }).verify(body.token);
    expect(principal.tenantId).toBe(t);
    expect(principal.scopes.has('activity:read')).toBe(true);
    expect(principal.scopes.has('activity:write')).toBe(false);
    expect(principal.expiresAt.toISOString()).toBe(new Date(body.expires_at).toISOString());
    await expect(
      createTokenVerifier({ jwtSecret: 'another-secret-0123456789abcdef0123' }).verify(body.token),
    ).rejects.toMatchObject({
      code: 'UNAUTHORIZED',
    });
  });
});
