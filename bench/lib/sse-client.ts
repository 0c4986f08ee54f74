import { type ClientRequest, request } from 'node:http';
import { createSseParser, type SseMessage } from '../../src/stream/sse-frames.js';

export interface SseStream {
  /** Ends the stream (destroys its socket); idempotent. */
  close(): void;
  /** Whether the server ended it (or the socket failed) before `close`. */
  readonly ended: boolean;
}

/**
 * Opens `GET url` as an SSE stream on a socket of its own (no agent: a thousand
 * streams need a thousand sockets) and resolves once the 200 and its headers arrive;
 * rejects with the server's answer otherwise.
 */
export function openSseStream(
  url: string,
  headers: Record<string, string>,
  onMessage: (message: SseMessage) => void,
): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    let ended = false;
    const req: ClientRequest = request(
      url,
      { agent: false, headers: { accept: 'text/event-stream', ...headers } },
      (response) => {
        if (response.statusCode !== 200) {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            text += chunk;
          });
          response.once('end', () => reject(new Error(`GET ${url}: ${response.statusCode} ${text}`)));
          response.once('error', reject);
          return;
        }
        response.setEncoding('utf8');
        const parse = createSseParser();
        response.on('data', (chunk: string) => {
          for (const message of parse(chunk)) onMessage(message);
        });
        response.once('end', () => {
          ended = true;
        });
        response.once('error', () => {
          ended = true;
        });
        resolve({
          close: () => req.destroy(),
          get ended() {
            return ended;
          },
        });
      },
    );
    req.once('error', (error) => {
      ended = true;
      reject(error);
    });
    req.end();
  });
}
