/** What a receiver made of one POST. */
export type PostResult =
  | { ok: true; status: number }
  | { ok: false; reason: 'status'; status: number }
  | { ok: false; reason: 'timeout' | 'network'; message: string };

/**
 * Sends one POST and says how the receiver answered. It throws only when `stop`
 * aborts it (a server shutting down): the batch was not delivered, and is not a failure.
 */
export type PostBatch = (
  url: string,
  headers: Record<string, string>,
  body: string,
  options: { timeoutMs: number; stop?: AbortSignal | undefined },
) => Promise<PostResult>;

/**
 * POSTs with node's fetch. A redirect is not followed (a sink's URL is where its events
 * go, and a redirect could send them and their headers elsewhere): it counts as a
 * refusal. The answer's body is not read, only dropped, so the connection is reused.
 */
export const postBatch: PostBatch = async (url, headers, body, { timeoutMs, stop }) => {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
      signal: stop ? AbortSignal.any([timeout, stop]) : timeout,
    });
    await response.body?.cancel();
    return response.status >= 200 && response.status < 300
      ? { ok: true, status: response.status }
      : { ok: false, reason: 'status', status: response.status };
  } catch (error) {
    if (stop?.aborted) throw stop.reason;
    const name = error instanceof Error ? error.name : '';
    if (name === 'TimeoutError' || name === 'AbortError') {
      return { ok: false, reason: 'timeout', message: `no answer within ${timeoutMs} ms` };
    }
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const code = (cause as { code?: unknown }).code;
    return {
      ok: false,
      reason: 'network',
      message: typeof code === 'string' ? code : cause instanceof Error ? cause.message : String(cause),
    };
  }
};
