import type pg from 'pg';
import { tcpKeepAlive } from '../config/connections.js';
import { decodeNotice, type StreamTransport } from './transport.js';

/** The channel each append NOTIFYs (see the repository's `notifyChannel`). */
export const postgresNotifyChannel = 'activity_events';
const reconnectDelaysMs = [250, 500, 1000, 2000, 5000];

/**
 * PostgreSQL LISTEN/NOTIFY: no other server needed. The listener holds one dedicated
 * connection; when it drops (or cannot be made), it retries with backoff and asks for
 * a resync once back, since notifications sent meanwhile are lost. Publishing is the
 * append statement's own NOTIFY, sent when it commits, so `publish` has nothing to do.
 */
export async function createPostgresTransport(url: string): Promise<StreamTransport> {
  const { default: pgModule } = await import('pg');
  let client: pg.Client | undefined;
  let closed = false;
  let reconnectTimer: NodeJS.Timeout | undefined;

  return {
    name: 'postgres',
    publish: async () => {},
    listen(listener) {
      return new Promise<void>((listening) => {
        let attempt = 0;
        let everConnected = false;
        const connect = async () => {
          const next = new pgModule.Client({
            connectionString: url,
            connectionTimeoutMillis: 5000,
            ...tcpKeepAlive,
            // Named like the pools' sessions, so that an operator finds every session of the tool.
            application_name: 'activity',
          });
          next.on('notification', (message) => {
            const notice = message.payload === undefined ? undefined : decodeNotice(message.payload);
            if (notice) listener.onNotice(notice);
          });
          next.on('error', () => {});
          try {
            await next.connect();
            await next.query(`LISTEN ${postgresNotifyChannel}`);
          } catch {
            await next.end().catch(() => {});
            scheduleReconnect();
            return;
          }
          if (closed) {
            await next.end().catch(() => {});
            return;
          }
          next.on('end', () => {
            if (client === next) scheduleReconnect();
          });
          client = next;
          attempt = 0;
          if (everConnected) listener.onResync();
          everConnected = true;
          listening();
        };
        const scheduleReconnect = () => {
          if (closed || reconnectTimer) return;
          client = undefined;
          const delay = reconnectDelaysMs[Math.min(attempt++, reconnectDelaysMs.length - 1)];
          reconnectTimer = setTimeout(() => {
            reconnectTimer = undefined;
            void connect();
          }, delay);
          reconnectTimer.unref();
        };
        void connect();
      });
    },
    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      const current = client;
      client = undefined;
      await current?.end().catch(() => {});
    },
  };
}
