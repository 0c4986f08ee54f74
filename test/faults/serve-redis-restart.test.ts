import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { faultSecrets, readWriteTokens } from '../helpers/fault-fixture.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { killAllCli, type RunningServe, startServe } from '../helpers/running-cli.js';
import { openSse, type SseTestStream } from '../helpers/sse-client.js';

/** `serve` with its live stream on Redis, while Redis goes away and comes back. */
describe('serve through a Redis restart', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let redis: RedisServer;
  let serve: RunningServe;
  let stream: SseTestStream;
  let token: string;

  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await startRedis();
    serve = await startServe({
      ACTIVITY_DATABASE_URL: database.url,
      ACTIVITY_REDIS_URL: redis.url,
      ...faultSecrets,
    });
    token = (await readWriteTokens(['redis-fault'])).get('redis-fault') as string;
    stream = await openSse(`${serve.url}/api/v1/activity/stream`, { authorization: `Bearer ${token}` });
  });
  afterAll(async () => {
    await stream?.close();
    await killAllCli();
    await redis?.stop();
    await database?.drop();
  });

  const post = async () => {
    const response = await fetch(`${serve.url}/api/v1/activity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'auth.login.success' }),
    });
    return { status: response.status, seq: ((await response.json()) as { seq: number }).seq };
  };

  it('records while Redis is down, and the stream delivers every event once it is back', async () => {
    expect((await post()).status).toBe(201);
    await stream.waitFor('seq 1', (s) => s.seqs().includes(1));
    await redis.halt();
    // A record never fails for want of pub/sub.
    const whileDown = [await post(), await post()];
    expect(whileDown.map((answer) => answer.status)).toEqual([201, 201]);
    await redis.start();
    const after = await post();
    expect(after.status).toBe(201);
    await stream.waitFor(`seq ${after.seq}`, (s) => s.seqs().includes(after.seq), 20_000);
    expect(stream.seqs()).toEqual([1, 2, 3, 4]);
    expect(serve.exited).toBe(false);
  });
});
