import type { Redis } from 'ioredis';
import { decodeNotice, encodeNotice, type StreamTransport } from './transport.js';

const channel = 'activity:events';

/**
 * Redis pub/sub: every `serve` replica sharing one Redis hears every notice. ioredis
 * reconnects and resubscribes by itself; each reconnect triggers a resync, since
 * notices published meanwhile are lost.
 */
export async function createRedisTransport(url: string): Promise<StreamTransport> {
  const { Redis: RedisClient } = await import('ioredis');
  const options = { lazyConnect: true, connectTimeout: 5000 };
  // The publisher never queues while disconnected: a record must not wait on Redis.
  const publisher: Redis = new RedisClient(url, {
    ...options,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
  });
  let subscriber: Redis | undefined;
  let connecting: Promise<void> | undefined;
  publisher.on('error', () => {});
  return {
    name: 'redis',
    async publish(notice) {
      // Connect on first use (concurrent publishes share the attempt); then ioredis reconnects by itself.
      if (publisher.status === 'wait') connecting ??= publisher.connect().catch(() => {});
      await connecting;
      await publisher.publish(channel, encodeNotice(notice));
    },
    async listen(listener) {
      // No retry limit: the subscription waits out any Redis outage.
      const client: Redis = new RedisClient(url, { ...options, maxRetriesPerRequest: null });
      subscriber = client;
      client.on('error', () => {});
      client.on('message', (_channel: string, message: string) => {
        const notice = decodeNotice(message);
        if (notice) listener.onNotice(notice);
      });
      let connectedBefore = false;
      client.on('ready', () => {
        if (connectedBefore) listener.onResync();
        connectedBefore = true;
      });
      // Resolves once subscribed; while Redis is away ioredis keeps retrying.
      client.connect().catch(() => {});
      await client.subscribe(channel);
    },
    async close() {
      publisher.disconnect();
      subscriber?.disconnect();
    },
  };
}
