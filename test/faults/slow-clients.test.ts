import { randomUUID } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { openSse, type SseTestStream } from '../helpers/sse-client.js';
import { heldOnPort } from '../helpers/tcp-connections.js';

/** Each event's metadata: about 3.5 KB, as in the report. */
const bulky = { context: { a: 'x'.repeat(1750), b: 'y'.repeat(1750) } };
/** More than the loopback socket buffers of one connection hold (several MB). */
const eventCount = 5000;

describe('SSE clients that stop reading', { timeout: 90_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let server: TestServer | undefined;
  const sockets: Socket[] = [];
  const streams: SseTestStream[] = [];

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    for (const stream of streams.splice(0)) await stream.close();
    await server?.close();
    server = undefined;
  });
  afterAll(async () => {
    await database?.drop();
  });

  /** A client that sends the stream request and then never reads a byte. */
  async function openNonReader(url: string, token: string): Promise<Socket> {
    const { port } = new URL(url);
    const socket = createConnection({ host: '127.0.0.1', port: Number(port) });
    sockets.push(socket);
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write(
      `GET /api/v1/activity/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\n\r\n`,
    );
    socket.pause();
    return socket;
  }

  async function recordBulky(tenant: string) {
    for (let done = 0; done < eventCount; done += 1000) {
      await server?.app.service.recordBatch(
        Array.from({ length: 1000 }, () => ({
          tenant_id: tenant,
          action: 'auth.login.success',
          metadata: bulky,
        })),
      );
    }
  }

  /** Resolves once only `count` connections to the server remain; bounded. */
  async function untilConnections(url: string, count: number) {
    const port = Number(new URL(url).port);
    const deadline = Date.now() + 30_000;
    while ((await heldOnPort(port)) !== count) {
      if (Date.now() > deadline) {
        throw new Error(`${await heldOnPort(port)} connections to the server, not ${count}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('are cut off once their queue is full, their connections closed and places freed, while readers get everything', async () => {
    server = await startTestServer({
      databaseUrl: database.url,
      streamLimits: { maxStreamsPerTenant: 4, bytesPerStream: 256 * 1024 },
    });
    const tenant = `slow-${randomUUID()}`;
    const token = await server.token(tenant);
    for (let i = 0; i < 3; i++) await openNonReader(server.url, token);
    const reader = await openSse(`${server.url}/api/v1/activity/stream`, {
      authorization: `Bearer ${token}`,
    });
    streams.push(reader);
    await untilConnections(server.url, 4);
    await recordBulky(tenant);
    await untilConnections(server.url, 1);
    expect(server.app.hub?.size).toBe(1);
    // The streams' own activity.stream.* events (small) took seqs before and among the
    // bulky ones: the reader gets every other event, however small the page before.
    const expected = (
      await server.database.repository.page(
        tenant,
        { withoutReserved: true },
        { limit: 10_000, order: 'asc' },
      )
    ).map((event) => event.seq);
    expect(expected).toHaveLength(eventCount);
    // The last message's id, not every seq: parsing all 5,000 events on every chunk would be slow.
    await reader.waitFor(
      `seq ${expected.at(-1)}`,
      (stream) => stream.messages.at(-1)?.id === String(expected.at(-1)),
      30_000,
    );
    expect(reader.seqs()).toEqual(expected);
    // Their places are free again: three more streams are let in beside the reader.
    for (let i = 0; i < 3; i++) await openNonReader(server.url, token);
    await untilConnections(server.url, 4);
    expect(server.app.hub?.size).toBe(4);
  });

  it('are cut off when their socket stays full for the stall timeout, even with no more events', async () => {
    server = await startTestServer({
      databaseUrl: database.url,
      // A queue too large to fill: only the stall can cut the client off.
      streamLimits: { bytesPerStream: 1024 * 1024 * 1024, bufferPerStream: 1_000_000 },
      server: { heartbeatMs: 100, stallTimeoutMs: 500 },
    });
    const tenant = `stall-${randomUUID()}`;
    await openNonReader(server.url, await server.token(tenant));
    await untilConnections(server.url, 1);
    await recordBulky(tenant);
    await untilConnections(server.url, 0);
    expect(server.app.hub?.size).toBe(0);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^activity_stream_connections 0$/m);
  });
});
