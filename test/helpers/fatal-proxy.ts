import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of PostgreSQL that ends some connections the moment they are
 * ready: the server's messages up to its first ReadyForQuery, and with them, in the
 * same write, a FATAL "terminating connection" error, as a backend terminated just
 * then would send. The client sees its connection made and lost in one read.
 */
export interface FatalProxy {
  url: string;
  /** Connections ended so far. */
  readonly ended: number;
  close(): Promise<void>;
}

/** Proxies to `target` (a postgres:// URL on loopback); ends every `everyNth` connection. */
export async function startFatalProxy(target: string, everyNth: number): Promise<FatalProxy> {
  const upstream = new URL(target);
  const sockets = new Set<Socket>();
  let connections = 0;
  let ended = 0;
  const server: Server = createServer((client) => {
    connections++;
    const doomed = connections % everyNth === 0;
    const backend = createConnection({ host: upstream.hostname, port: Number(upstream.port) });
    for (const socket of [client, backend]) {
      sockets.add(socket);
      socket.on('error', () => {});
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        backend.destroy();
      });
    }
    client.pipe(backend);
    if (!doomed) {
      backend.pipe(client);
      return;
    }
    let pending = Buffer.alloc(0);
    backend.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const end = endOfFirstReadyForQuery(pending);
      if (end === undefined) return;
      ended++;
      client.end(Buffer.concat([pending.subarray(0, end), adminShutdownError]));
      backend.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const url = new URL(target);
  url.port = String(typeof address === 'object' && address ? address.port : 0);
  return {
    url: url.toString(),
    get ended() {
      return ended;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Where the first ReadyForQuery ('Z') message ends in the backend's bytes, if it has come. */
function endOfFirstReadyForQuery(bytes: Buffer): number | undefined {
  let at = 0;
  while (bytes.length - at >= 5) {
    const type = bytes[at];
    const length = bytes.readInt32BE(at + 1);
    if (bytes.length - at < 1 + length) return undefined;
    at += 1 + length;
    if (type === 0x5a) return at;
  }
  return undefined;
}

/** ErrorResponse: FATAL 57P01, as pg_terminate_backend makes a backend send. */
const adminShutdownError = (() => {
  const fields = Buffer.from(
    'SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0',
    'latin1',
  );
  const header = Buffer.alloc(5);
  header.write('E', 0, 'latin1');
  header.writeInt32BE(fields.length + 4, 1);
  return Buffer.concat([header, fields]);
})();
