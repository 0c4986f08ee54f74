import type { Redis } from 'ioredis';
import { decodeNotice, encodeNotice, type StreamNotice, type StreamTransport } from './transport.js';

const channel = 'activity:events';

/** Tenants whose failed notice is kept to publish after a reconnect; past this, the poll covers them. */
const maxUnsentNotices = 10_000;

/**
 * Redis pub/sub: every `serve` replica sharing one Redis hears every notice. ioredis
 * reconnects and resubscribes by itself; each reconnect of the subscriber triggers a
 * resync, since notices published meanwhile are lost. A notice that could not be
 * published (Redis away) is published again when the publisher reconnects, so that
 * a subscriber which reconnected first still hears of it.
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
  // The latest unsent seq per tenant: a notice covers every earlier event.
  const unsent = new Map<string, number>();
  const publish = async (notice: StreamNotice) => {
    try {
      await publisher.publish(channel, encodeNotice(notice));
    } catch (error) {
      if (unsent.size < maxUnsentNotices || unsent.has(notice.tenantId)) {
        unsent.set(notice.tenantId, Math.max(notice.seq, unsent.get(notice.tenantId) ?? 0));
      }
      throw error;
    }
  };
  publisher.on('error', () => {});
  publisher.on('ready', () => {
    const notices = [...unsent].map(([tenantId, seq]) => ({ tenantId, seq }));
    unsent.clear();
    for (const notice of notices) publish(notice).catch(() => {});
  });
  return {
    name: 'redis',
    async publish(notice) {
      // Connect on first use (concurrent publishes share the attempt); then ioredis reconnects by itself.
      if (publisher.status === 'wait') connecting ??= publisher.connect().catch(() => {});
      await connecting;
      await publish(notice);
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
