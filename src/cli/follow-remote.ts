import { ActivityError, type ErrorCode, errorCodes } from '../domain/errors.js';
import type { ActivityEvent } from '../domain/event.js';
import { createSseParser } from '../stream/sse-frames.js';
import { pauseUnlessStopped, retryDelayMs } from './retry-schedule.js';

export interface FollowRemoteOptions {
  url: string;
  token: string;
  filters: Record<string, string>;
  lines: number;
  print(event: ActivityEvent): Promise<void>;
  stop: Promise<void>;
}

/**
 * `tail --url`: the last N events from the list route, then the SSE stream, resumed
 * with Last-Event-ID after any disconnect, so no event is lost or printed twice.
 */
export async function followRemote(options: FollowRemoteOptions): Promise<void> {
  const base = options.url.replace(/\/+$/, '');
  const headers = { authorization: `Bearer ${options.token}` };
  const abort = new AbortController();
  void options.stop.then(() => abort.abort());

  // Where the past ends and the stream begins: the newest event printed, or with
  // -n 0 the tenant's latest event, so nothing is printed twice or skipped.
  const listParams =
    options.lines > 0 ? new URLSearchParams({ ...options.filters, limit: String(options.lines) }) : 'limit=1';
  const { data } = (await requestJson(`${base}/api/v1/activity?${listParams}`, headers, abort.signal)) as {
    data: ActivityEvent[];
  };
  let lastSeq = options.lines > 0 ? 0 : (data[0]?.seq ?? 0);
  if (options.lines > 0) {
    for (const event of data.reverse()) await options.print(event);
    lastSeq = data.at(-1)?.seq ?? 0;
  }

  let attempt = 0;
  while (!abort.signal.aborted) {
    try {
      const streamParams = new URLSearchParams(options.filters);
      const response = await fetch(`${base}/api/v1/activity/stream?${streamParams}`, {
        headers: { ...headers, accept: 'text/event-stream', 'last-event-id': String(lastSeq) },
        signal: abort.signal,
      });
      if (!response.ok || !response.body) throw await problemOf(response);
      attempt = 0;
      const parse = createSseParser();
      const decoder = new TextDecoder();
      for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
        for (const message of parse(decoder.decode(chunk, { stream: true }))) {
          if (message.event === 'activity') {
            const event = JSON.parse(message.data) as ActivityEvent;
            if (event.seq <= lastSeq) continue;
            await options.print(event);
            lastSeq = event.seq;
          } else if (message.event === 'close' && message.data.includes('expired')) {
            throw new ActivityError(
              'UNAUTHORIZED',
              'the token expired; mint a new one with `activity token`',
            );
          }
        }
      }
    } catch (error) {
      if (abort.signal.aborted) return;
      if (error instanceof ActivityError && error.exitCode !== 3) throw error;
    }
    await pauseUnlessStopped(retryDelayMs(attempt++), options.stop);
  }
}

async function requestJson(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, { headers, signal });
  } catch (error) {
    // fetch's messages can hold the whole URL: the system's error code says enough.
    const cause = (error as Error).cause as NodeJS.ErrnoException | undefined;
    throw new ActivityError(
      'DEPENDENCY_UNAVAILABLE',
      `cannot reach ${new URL(url).origin}: ${cause?.code ?? cause?.message ?? (error as Error).message}${
        cause?.code === 'ECONNREFUSED' ? ' (is `activity serve` running there, and is --url right?)' : ''
      }`,
      { cause: error },
    );
  }
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

/** The server's problem+json as an ActivityError with the same code. */
async function problemOf(response: Response): Promise<ActivityError> {
  const body = (await response.json().catch(() => ({}))) as { code?: string; detail?: string };
  const fallback = response.status >= 500 ? 'DEPENDENCY_UNAVAILABLE' : 'USAGE_INVALID';
  const code =
    body.code !== undefined && Object.hasOwn(errorCodes, body.code) ? (body.code as ErrorCode) : fallback;
  return new ActivityError(code, `${response.status} from the server: ${body.detail ?? response.statusText}`);
}
