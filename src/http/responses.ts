import type { ServerResponse } from 'node:http';
import { type ActivityError, errorCodes, retryAfterSeconds } from '../domain/errors.js';

export function sendJson(response: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

/** RFC 9457 problem details; never SQL, a stack trace, or another tenant's data. */
export function sendProblem(
  response: ServerResponse,
  error: ActivityError,
  log: (record: Record<string, unknown>) => void,
) {
  if (errorCodes[error.code].http >= 500) {
    log({ msg: 'request failed', code: error.code, error: String(error.cause ?? error.message) });
  }
  if (response.headersSent) {
    response.end();
    return;
  }
  const { http: status, title } = errorCodes[error.code];
  // Server-side failures are described in the log, never to the client.
  const detail =
    status < 500 || error.code === 'SHUTTING_DOWN'
      ? error.message
      : error.code === 'DB_TIMEOUT'
        ? 'the database is busy (a lock or a slow statement); try again shortly'
        : error.exitCode === 3
          ? 'the database is unavailable; try again shortly'
          : 'an unexpected error occurred';
  const text = JSON.stringify({ type: 'about:blank', title, status, detail, code: error.code });
  const retryAfter = retryAfterSeconds(error.code);
  response.writeHead(status, {
    'content-type': 'application/problem+json',
    'content-length': Buffer.byteLength(text),
    ...(status === 401 ? { 'www-authenticate': 'Bearer' } : {}),
    ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }),
  });
  response.end(text);
}
