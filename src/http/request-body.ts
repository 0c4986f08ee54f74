import type { IncomingMessage } from 'node:http';
import { ActivityError } from '../domain/errors.js';
import { describeIssues } from '../domain/field-issues.js';
import { jsonTextIssue } from '../domain/json-text.js';

const maxBodyBytes = 1024 * 1024;

/** `application/json`, or a JSON type of its own (`application/…+json`), in UTF-8 if a charset is named. */
const jsonMediaType = /^application\/(?:[\w.+-]+\+)?json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/**
 * Refuses a body that says it is not JSON (a form, text) before it is read: 415
 * naming the header to send. A body without a Content-Type is read as JSON.
 */
export function assertJsonBody(request: IncomingMessage): void {
  const type = request.headers['content-type'];
  if (type === undefined || jsonMediaType.test(type.trim())) return;
  // Quoted only when it is a plain media type: a header is the client's, not ours to echo.
  const named = /^[\w.+/-]{1,100}(?:;[\w =".-]{0,100})?$/.test(type) ? ` (${type})` : '';
  throw new ActivityError(
    'UNSUPPORTED_MEDIA_TYPE',
    `the body must be JSON, not this Content-Type${named}: send Content-Type: application/json`,
  );
}

/**
 * The request's body as JSON, refused when it is over 1 MiB, not UTF-8, not JSON, or
 * when JSON.parse would change what it says (see jsonTextIssue).
 */
export async function readJsonBody(request: IncomingMessage): Promise<unknown> {
  const declared = Number(request.headers['content-length'] ?? 0);
  if (declared > maxBodyBytes)
    throw new ActivityError('BODY_TOO_LARGE', `the body is over ${maxBodyBytes} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of request as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > maxBodyBytes)
        throw new ActivityError('BODY_TOO_LARGE', `the body is over ${maxBodyBytes} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof ActivityError) throw error;
    // The client went away mid-body: its fault, not the server's.
    throw new ActivityError(
      'INPUT_UNREADABLE',
      'the client closed the connection before the whole body arrived',
      {
        cause: error,
      },
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new ActivityError('INPUT_UNREADABLE', 'the body is not valid UTF-8');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ActivityError('INPUT_UNREADABLE', 'the body is not JSON');
  }
  const changed = jsonTextIssue(text, body);
  if (changed) throw new ActivityError('VALIDATION_FAILED', describeIssues([changed]), { issues: [changed] });
  return body;
}
