import type { Readable } from 'node:stream';
import { ActivityError } from '../domain/errors.js';
import { describeIssues } from '../domain/field-issues.js';
import { jsonSyntaxProblem, jsonTextIssue } from '../domain/json-text.js';
import type { ImportItem } from '../service/activity-service.js';

/** A line longer than this is rejected without being buffered whole. */
const maxLineBytes = 1024 * 1024;

/**
 * Reads NDJSON one line at a time with constant memory. Each non-blank line becomes a
 * parsed value or, when it is not valid UTF-8 or not JSON, an error for that line:
 * nothing is silently repaired.
 */
export async function* readNdjson(
  source: Readable,
  name: string,
  options: { firstLine?: number; onEnd?: (lines: number) => void } = {},
): AsyncGenerator<ImportItem> {
  // Lines before it are counted, not parsed: an import resumed after a failure.
  const firstLine = options.firstLine ?? 1;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let parts: Buffer[] = [];
  let size = 0;
  let oversize = false;
  let line = 0;

  const finish = (): ImportItem | undefined => {
    line++;
    if (line < firstLine) {
      parts = [];
      size = 0;
      oversize = false;
      return undefined;
    }
    // A line within one chunk is decoded in place, not copied first.
    const bytes = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size);
    const wasOversize = oversize;
    parts = [];
    size = 0;
    oversize = false;
    if (wasOversize) {
      return {
        line,
        error: new ActivityError('VALIDATION_FAILED', `line is longer than ${maxLineBytes} bytes`),
      };
    }
    let text: string;
    try {
      text = decoder.decode(bytes);
    } catch {
      return { line, error: new ActivityError('INPUT_UNREADABLE', 'line is not valid UTF-8') };
    }
    if (text.trim() === '') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      return {
        line,
        error: new ActivityError('INPUT_UNREADABLE', `line is not JSON${jsonSyntaxProblem(error)}`),
      };
    }
    const changed = jsonTextIssue(text, value);
    if (changed) {
      const issues = [changed];
      return { line, error: new ActivityError('VALIDATION_FAILED', describeIssues(issues), { issues }) };
    }
    return { line, value };
  };

  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      let start = 0;
      for (let newline = chunk.indexOf(10); newline !== -1; newline = chunk.indexOf(10, start)) {
        append(chunk.subarray(start, newline));
        const item = finish();
        if (item) yield item;
        start = newline + 1;
      }
      append(chunk.subarray(start));
    }
  } catch (error) {
    throw new ActivityError('INPUT_UNREADABLE', `cannot read ${name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (size > 0 || oversize) {
    const item = finish();
    if (item) yield item;
  }
  options.onEnd?.(line);

  function append(bytes: Buffer) {
    if (oversize || bytes.length === 0) return;
    if (size + bytes.length > maxLineBytes) {
      oversize = true;
      parts = [];
      size = 0;
      return;
    }
    parts.push(bytes);
    size += bytes.length;
  }
}
