import { createConnection, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import {
  openRawConnection,
  type RawConnection,
  startTestServer,
  type TestServer,
} from '../helpers/http-server.js';

/** Requests that arrive slowly, or not at all: none may hold a connection for long. */
describe('slow and abandoned requests', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let server: TestServer | undefined;
  const connections: RawConnection[] = [];
  const sockets: Socket[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    for (const connection of connections.splice(0)) connection.destroy();
    for (const socket of sockets.splice(0)) socket.destroy();
    await server?.close();
    server = undefined;
  });
  afterAll(async () => {
    await database?.drop();
  });

  async function raw(url: string): Promise<RawConnection> {
    const connection = await openRawConnection(url);
    connections.push(connection);
    return connection;
  }

  it('an unauthenticated POST that declares a large body gets 401 at once, and its connection is closed', async () => {
    server = await startTestServer({ databaseUrl: database.url });
    const connection = await raw(server.url);
    connection.write('POST /api/v1/activity HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n{');
    const response = await connection.nextResponse(10_000);
    expect(response).toMatchObject({ status: 401, headers: { connection: 'close' } });
    // The rest of the body is never waited for.
    expect(await connection.nextResponse(10_000)).toBe('closed');
  });

  it('a request whose body stops arriving is answered 408 after the request timeout, and closed', async () => {
    server = await startTestServer({ databaseUrl: database.url, server: { requestTimeoutMs: 1000 } });
    const token = await server.token('slow-body');
    const connection = await raw(server.url);
    connection.write(
      `POST /api/v1/activity HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"action"`,
    );
    const answer = await connection.nextResponse(20_000);
    expect(answer).toMatchObject({ status: 408, headers: { 'content-type': 'application/problem+json' } });
    expect(JSON.parse((answer as { body: string }).body)).toMatchObject({
      status: 408,
      code: 'REQUEST_TIMEOUT',
    });
    expect(await connection.nextResponse(10_000)).toBe('closed');
  });

  it.each([
    ['not HTTP at all', 'GET / HTTP/1.1\r\nHost x\r\n\r\n', 400, 'INPUT_UNREADABLE'],
    ['a request line it cannot read', 'GET /api/v1/activity HTTP/9\r\n\r\n', 400, 'INPUT_UNREADABLE'],
    [
      'headers over 16 KiB',
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(17 * 1024)}\r\n\r\n`,
      431,
      'HEADERS_TOO_LARGE',
    ],
  ])('a request that is %s is answered with a problem, and closed', async (_, request, status, code) => {
    server = await startTestServer({ databaseUrl: database.url });
    const connection = await raw(server.url);
    connection.write(request);
    const answer = await connection.nextResponse(10_000);
    expect(answer).toMatchObject({ status, headers: { 'content-type': 'application/problem+json' } });
    expect(JSON.parse((answer as { body: string }).body)).toMatchObject({ status, code });
    expect(await connection.nextResponse(10_000)).toBe('closed');
  });

  it('a body the client abandons is logged as a 400, not as a server error', async () => {
    server = await startTestServer({ databaseUrl: database.url });
    const token = await server.token('abandoned');
    const connection = await raw(server.url);
    // Expect: 100-continue: the server says when it takes the request, then the client leaves.
    connection.write(
      `POST /api/v1/activity HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect(await connection.nextResponse(10_000)).toMatchObject({ status: 100 });
    connection.write('{"action"');
    connection.destroy();
    const logs = server.logs;
    await waitUntil(() => logs.some((line) => line.msg === 'request'));
    expect(logs.filter((line) => line.msg === 'request')).toEqual([
      expect.objectContaining({ method: 'POST', status: 400 }),
    ]);
    expect(logs.filter((line) => line.msg === 'request failed')).toEqual([]);
  });

  it('connections past the cap are answered 503 at once, and served again once others are gone', async () => {
    server = await startTestServer({ databaseUrl: database.url, server: { maxConnections: 3 } });
    const { port } = new URL(server.url);
    for (let i = 0; i < 3; i++) {
      const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
      sockets.push(socket);
      await new Promise((resolve) => socket.once('connect', resolve));
    }
    const refused = await raw(server.url);
    const response = await refused.nextResponse(10_000);
    expect(response).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
    expect(JSON.parse((response as { body: string }).body)).toMatchObject({ code: 'TOO_MANY_CONNECTIONS' });
    expect(await refused.nextResponse(10_000)).toBe('closed');
    for (const socket of sockets.splice(0)) socket.destroy();
    await waitUntil(async () => (await fetch(`${server?.url}/healthz`)).status === 200);
  });

  it('?access_token= is taken on the stream only, as EventSource needs it; not on other routes', async () => {
    server = await startTestServer({ databaseUrl: database.url });
    const token = await server.token('query-token');
    const post = await fetch(`${server.url}/api/v1/activity?access_token=${token}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'auth.login.success' }),
    });
    expect(post.status).toBe(401);
    expect((await fetch(`${server.url}/api/v1/activity?access_token=${token}`)).status).toBe(401);
    const abort = new AbortController();
    const stream = await fetch(`${server.url}/api/v1/activity/stream?access_token=${token}`, {
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    abort.abort();
  });
});

/** Polls `check` until it holds; bounded. */
async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (
    !(await Promise.resolve()
      .then(check)
      .catch(() => false))
  ) {
    if (Date.now() > deadline) throw new Error(`not so after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
