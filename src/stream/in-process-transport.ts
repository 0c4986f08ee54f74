import type { StreamNotice, StreamTransport, TransportListener } from './transport.js';

/** One process only: the embedded database serves no other. */
export function createInProcessTransport(): StreamTransport {
  const listeners = new Set<TransportListener>();
  return {
    name: 'in-process',
    async publish(notice: StreamNotice) {
      for (const listener of listeners) queueMicrotask(() => listener.onNotice(notice));
    },
    async listen(listener) {
      listeners.add(listener);
    },
    async close() {
      listeners.clear();
    },
  };
}
