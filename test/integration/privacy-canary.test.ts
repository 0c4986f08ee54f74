import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { startTestServer, type TestServer } from '../helpers/http-server.js';
import { postgresBin } from '../helpers/postgres-server.js';
import { type RedisServer, startRedis } from '../helpers/redis-server.js';
import { type CorpusEntry, secretCorpus as corpus } from '../helpers/secret-corpus.js';
import { openSse, type SseTestStream } from '../helpers/sse-client.js';

/** Where a canary is planted in an event: every string the caller controls. */
const placements = [
  'metadata value',
  'metadata array',
  'metadata key',
  'actor_id',
  'object_type',
  'object_id',
  'request_id',
  'source',
  'user_agent',
] as const;
type Placement = (typeof placements)[number];

function eventWith(placement: Placement, text: string): Record<string, unknown> {
  const event: Record<string, unknown> = { action: 'auth.login.success' };
  switch (placement) {
    case 'metadata value':
      event.metadata = { context: { note: text } };
      break;
    case 'metadata array':
      event.metadata = { context: { lines: ['first', { deeper: [text] }] } };
      break;
    case 'metadata key':
      event.metadata = { context: { [text]: true } };
      break;
    default:
      event[placement] = text;
  }
  return event;
}

/**
 * The privacy promise end to end: a secret or an IP address planted anywhere in an
 * event, among any text, never reaches the database (pg_dump), the live stream, Redis,
 * the server's log, or an answer of the API, whether the event is stored scrubbed or
 * refused.
 */
describe('a planted secret or IP address never leaves the request', { timeout: 120_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let redis: RedisServer;
  let monitor: Redis;
  let server: TestServer;
  let stream: SseTestStream;
  const redisTraffic: string[] = [];
  const answers: string[] = [];
  const tenant = 'canary';

  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await startRedis();
    monitor = new Redis(redis.url);
    const monitoring = await monitor.monitor();
    monitoring.on('monitor', (_time: string, args: string[]) => redisTraffic.push(args.join(' ')));
    server = await startTestServer({ databaseUrl: database.url, env: { ACTIVITY_REDIS_URL: redis.url } });
    stream = await openSse(`${server.url}/api/v1/activity/stream`, {
      authorization: `Bearer ${await server.token(tenant)}`,
    });
  });
  afterAll(async () => {
    await stream?.close();
    await server?.close();
    monitor?.disconnect();
    await redis?.stop();
    await database?.drop();
  });

  it('in any field, among any text', async () => {
    const token = await server.token(tenant);
    const planted: CorpusEntry[] = [];
    let stored = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...placements),
        fc.constantFrom(...corpus),
        fc.string({ maxLength: 20 }),
        fc.string({ maxLength: 20 }),
        async (placement, canary, before, after) => {
          // The one documented exception: in an identifier, a run of digits is an id
          // (one in ten 16-digit ids passes the Luhn check); grouped, it is a card number.
          fc.pre(
            !(/^\d+$/.test(canary.value) && !placement.startsWith('metadata') && placement !== 'user_agent'),
          );
          planted.push(canary);
          // Separated by spaces: the canary stands as a word among the text around it.
          const text = `${before} ${canary.value} ${after}`;
          const response = await fetch(`${server.url}/api/v1/activity`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify(eventWith(placement, text)),
          });
          const body = await response.text();
          answers.push(body);
          expect([201, 422]).toContain(response.status);
          if (response.status === 201) stored++;
          expect(leaksOf(canary, body)).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
    // Every stored event has reached the stream, and every notice Redis.
    await stream.waitFor(
      `${stored} events`,
      (s) => s.messages.filter((m) => m.event === 'activity').length === stored,
      15_000,
    );
    const dump = execFileSync(join(postgresBin(), 'pg_dump'), ['--dbname', database.url], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
    const everywhere = [
      dump,
      stream.text,
      redisTraffic.join('\n'),
      JSON.stringify(server.logs),
      answers.join('\n'),
    ].join('\n');
    expect(dump).toContain('activity_events');
    expect(redisTraffic.some((command) => command.startsWith('publish'))).toBe(true);
    const leaks = planted.flatMap((canary) =>
      leaksOf(canary, everywhere).map((leak) => `${canary.name}: ${leak}`),
    );
    expect(leaks).toEqual([]);
  });
});

/** What of the canary shows in `text`: its value, or for an IP shape the address itself. */
function leaksOf(canary: CorpusEntry, text: string): string[] {
  return [canary.value, canary.address].filter(
    (needle): needle is string => needle !== undefined && needle.length >= 8 && text.includes(needle),
  );
}
