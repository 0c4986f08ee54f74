import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One POST a receiver got, whole. */
export interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  /** What the receiver answered (0: it closed the connection instead). */
  status: number;
}

/**
 * What the receiver does with the next request: answer a status (after `delayMs`), or
 * close the connection without answering.
 */
export type Behaviour = { status: number; delayMs?: number } | { close: true };

/**
 * A webhook receiver on loopback, as a SIEM's would be: it keeps every request, answers
 * as `behave` says (200 by default), and counts requests it is serving at once per
 * `webhook-id` and per sink tenant (`activity-tenant`).
 */
export async function startReceiver(behave: (request: number) => Behaviour = () => ({ status: 200 })) {
  const received: Received[] = [];
  let requests = 0;
  let inFlight = 0;
  let mostInFlight = 0;
  const waiters: Array<() => void> = [];
  const server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    const behaviour = behave(requests++);
    inFlight++;
    mostInFlight = Math.max(mostInFlight, inFlight);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if ('close' in behaviour) {
      inFlight--;
      received.push({ headers: request.headers, body, status: 0 });
      request.socket.destroy();
    } else {
      if (behaviour.delayMs) await new Promise((resolve) => setTimeout(resolve, behaviour.delayMs));
      inFlight--;
      received.push({ headers: request.headers, body, status: behaviour.status });
      response.writeHead(behaviour.status).end();
    }
    for (const waiter of waiters.splice(0)) waiter();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    /** The most requests served at once. */
    mostInFlight: () => mostInFlight,
    /** Resolves once `check` holds, checked after each request. */
    async until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
      const deadline = Date.now() + timeoutMs;
      while (!check()) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`the receiver did not get what was waited for in ${timeoutMs} ms`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/**
 * Whether `header` (space-separated `v1,…` signatures) holds a Standard Webhooks
 * signature of this delivery under `secret`: what a receiver checks, written here
 * from the specification rather than with the tool's own signer.
 */
export function hasWebhookSignature(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Buffer,
  header: string,
): boolean {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = Buffer.from(
    `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest('base64')}`,
  );
  return header
    .split(' ')
    .some(
      (candidate) =>
        candidate.length === expected.length && timingSafeEqual(Buffer.from(candidate), expected),
    );
}
