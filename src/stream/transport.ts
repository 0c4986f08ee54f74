/** That a tenant's events up to `seq` are committed. Pub/sub carries only this pointer. */
export interface StreamNotice {
  tenantId: string;
  seq: number;
}

export interface TransportListener {
  onNotice(notice: StreamNotice): void;
  /** After a reconnect: notices may have been missed, so every tenant should catch up. */
  onResync(): void;
}

/**
 * How processes tell each other that events were committed: Redis pub/sub, PostgreSQL
 * LISTEN/NOTIFY, or in-process. Delivery is at most once; the database stays the
 * source of truth (see stream-hub.ts).
 */
export interface StreamTransport {
  readonly name: 'redis' | 'postgres' | 'in-process';
  publish(notice: StreamNotice): Promise<void>;
  /** Starts listening and keeps at it across outages; resolves once first listening. */
  listen(listener: TransportListener): Promise<void>;
  close(): Promise<void>;
}

export function encodeNotice(notice: StreamNotice): string {
  return JSON.stringify([notice.tenantId, notice.seq]);
}

export function decodeNotice(text: string): StreamNotice | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (Array.isArray(value) && typeof value[0] === 'string' && Number.isInteger(value[1])) {
      return { tenantId: value[0], seq: value[1] as number };
    }
  } catch {}
  return undefined;
}
