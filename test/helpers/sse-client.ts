import type { ActivityEvent } from '../../src/domain/event.js';
import { createSseParser, type SseMessage } from '../../src/stream/sse-frames.js';
import { Conditions } from './conditions.js';

/** An open SSE response, read in the background as it arrives. */
export interface SseTestStream {
  status: number;
  headers: Headers;
  /** Everything received so far, comments included. */
  readonly text: string;
  /** Complete messages received so far. */
  readonly messages: readonly SseMessage[];
  /** True once the server ended the body (or the connection broke). */
  readonly ended: boolean;
  /** True once the server ended the body as it should (a chunked body's last chunk), not by a broken connection. */
  readonly endedCleanly: boolean;
  /** The parsed `data` of every `activity` message so far. */
  events(): ActivityEvent[];
  /** The seq of every `activity` message so far. */
  seqs(): number[];
  /** Resolves once `check` holds; fails after `timeoutMs`, saying what was awaited and what arrived. */
  waitFor(what: string, check: (stream: SseTestStream) => boolean, timeoutMs?: number): Promise<void>;
  /** Resolves once the server has ended the body. */
  waitForEnd(timeoutMs?: number): Promise<void>;
  /** Disconnects (idempotent). */
  close(): Promise<void>;
}

/**
 * Opens `url` with fetch and reads the body in the background, with the parser that
 * `tail --url` uses. The tests that check the server's framing read `text`, and the
 * parser is held to the spec by hand-written streams in test/unit/sse-frames.test.ts,
 * so sharing it cannot hide a framing bug in the server.
 */
export async function openSse(url: string, headers: Record<string, string> = {}): Promise<SseTestStream> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  let text = '';
  let ended = false;
  let endedCleanly = false;
  const messages: SseMessage[] = [];
  const parse = createSseParser();
  const conditions = new Conditions();
  const wake = () => conditions.changed();

  const take = (chunk: string) => {
    text += chunk;
    messages.push(...parse(chunk));
  };

  const reading = (async () => {
    if (!response.body) return;
    const decoder = new TextDecoder();
    try {
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        take(decoder.decode(chunk, { stream: true }));
        wake();
      }
      endedCleanly = true;
    } catch {
      // An abort (our close) or a broken connection: either way the stream is over.
    } finally {
      ended = true;
      wake();
    }
  })();

  const stream: SseTestStream = {
    status: response.status,
    headers: response.headers,
    get text() {
      return text;
    },
    get messages() {
      return messages;
    },
    get ended() {
      return ended;
    },
    get endedCleanly() {
      return endedCleanly;
    },
    events() {
      return messages
        .filter((message) => message.event === 'activity')
        .map((message) => JSON.parse(message.data) as ActivityEvent);
    },
    seqs() {
      return stream.events().map((event) => event.seq);
    },
    waitFor(what, check, timeoutMs = 5000) {
      return conditions.waitFor(
        () => check(stream),
        timeoutMs,
        () =>
          `${what}; ended=${ended}, seqs=[${stream.seqs().join(',')}], received: ${JSON.stringify(text.slice(-600))}`,
      );
    },
    waitForEnd(timeoutMs = 5000) {
      return stream.waitFor('the server to end the stream', () => ended, timeoutMs);
    },
    async close() {
      abort.abort();
      await reading;
    },
  };
  return stream;
}

/** The value of a metric without labels in Prometheus text, or undefined when absent. */
export function metricValue(metricsText: string, name: string): number | undefined {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(metricsText);
  return match ? Number(match[1]) : undefined;
}

/** Polls `check` until it holds, for state that no event announces. */
export async function eventually(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  intervalMs = 20,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
