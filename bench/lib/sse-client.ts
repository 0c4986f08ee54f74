import { type ClientRequest, request } from 'node:http';

/** One message of an SSE stream: its `id:`, `event:` (default "message") and `data:` lines. */
export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

export interface SseStream {
  /** Ends the stream (destroys its socket); idempotent. */
  close(): void;
  /** Whether the server ended it (or the socket failed) before `close`. */
  readonly ended: boolean;
}

/**
 * Parses a stream's messages as their text arrives. Serve frames with LF only (see
 * src/http/sse.ts); CR LF is tolerated too. Comments (heartbeats) are skipped.
 */
function createParser(onMessage: (message: SseMessage) => void): (chunk: string) => void {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\n\n'); end !== -1; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let id: string | undefined;
      let event = 'message';
      const data: string[] = [];
      for (const raw of block.split('\n')) {
        const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + (line[colon + 1] === ' ' ? 2 : 1));
        if (field === 'id') id = value;
        else if (field === 'event') event = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length > 0) onMessage({ id, event, data: data.join('\n') });
    }
  };
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
        response.on('data', createParser(onMessage));
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
