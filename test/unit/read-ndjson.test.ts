import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readNdjson } from '../../src/cli/read-ndjson.js';
import { ActivityError } from '../../src/domain/errors.js';
import type { ImportItem } from '../../src/service/activity-service.js';
import { activityErrorFromAsync } from './thrown.js';

async function readAll(...chunks: Array<Buffer | string>): Promise<ImportItem[]> {
  const source = Readable.from(
    chunks.map((chunk) => (typeof chunk === 'string' ? Buffer.from(chunk) : chunk)),
  );
  const items: ImportItem[] = [];
  for await (const item of readNdjson(source, 'input.ndjson')) items.push(item);
  return items;
}

/** Items as `{line, value}` or `{line, code}`, for readable assertions. */
function summary(items: ImportItem[]) {
  return items.map((item) => ('error' in item ? { line: item.line, code: item.error.code } : item));
}

describe('readNdjson', () => {
  it('reads one value per line, numbered from 1', async () => {
    expect(await readAll('{"a":1}\n{"a":2}\n')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, value: { a: 2 } },
    ]);
  });

  it('reads a last line without a trailing newline', async () => {
    expect(await readAll('{"a":1}\n{"a":2}')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, value: { a: 2 } },
    ]);
  });

  it('reads nothing from empty input', async () => {
    expect(await readAll()).toEqual([]);
    expect(await readAll('')).toEqual([]);
  });

  it('skips blank lines but keeps the line numbers of the file', async () => {
    expect(await readAll('\n{"a":1}\n\n   \n\t\n{"a":2}\n\n')).toEqual([
      { line: 2, value: { a: 1 } },
      { line: 6, value: { a: 2 } },
    ]);
  });

  it('from a first line, skips the lines before it unparsed, keeping the line numbers of the file', async () => {
    const source = Readable.from([
      Buffer.from('not json\n{"a":2}\n'),
      Buffer.from('x'.repeat(2_000_000)),
      Buffer.from('\n{"a":4}\n'),
    ]);
    const items: ImportItem[] = [];
    for await (const item of readNdjson(source, 'input.ndjson', { firstLine: 4 })) items.push(item);
    expect(items).toEqual([{ line: 4, value: { a: 4 } }]);
  });

  it('accepts CRLF line endings', async () => {
    expect(await readAll('{"a":1}\r\n\r\n{"a":"x"}\r\n')).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 3, value: { a: 'x' } },
    ]);
  });

  it('joins a line split across chunks', async () => {
    expect(await readAll('{"tenant', '_id":"ac', 'me"}\n{"b"', ':2}')).toEqual([
      { line: 1, value: { tenant_id: 'acme' } },
      { line: 2, value: { b: 2 } },
    ]);
  });

  it('decodes a multi-byte UTF-8 character split across chunks', async () => {
    const bytes = Buffer.from('{"name":"Zoë 🎉"}\n');
    const e = bytes.indexOf(0xc3);
    const emoji = bytes.indexOf(0xf0);
    const chunks = [bytes.subarray(0, e + 1), bytes.subarray(e + 1, emoji + 2), bytes.subarray(emoji + 2)];
    expect(await readAll(...chunks)).toEqual([{ line: 1, value: { name: 'Zoë 🎉' } }]);
  });

  it('handles one byte per chunk', async () => {
    const bytes = Buffer.from('{"a":"é"}\n\n{"b":1}\n');
    const chunks = [...bytes].map((byte) => Buffer.from([byte]));
    expect(await readAll(...chunks)).toEqual([
      { line: 1, value: { a: 'é' } },
      { line: 3, value: { b: 1 } },
    ]);
  });

  it('ignores a UTF-8 byte order mark at the start of the input', async () => {
    expect(await readAll(Buffer.from([0xef, 0xbb, 0xbf]), '{"a":1}\n')).toEqual([
      { line: 1, value: { a: 1 } },
    ]);
  });

  it('reports invalid UTF-8 as INPUT_UNREADABLE for that line only', async () => {
    const items = await readAll(
      Buffer.concat([
        Buffer.from('{"a":1}\n{"a":"'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}\n{"a":"'),
        Buffer.from([0xc3]),
        Buffer.from('"}\n{"a":3}\n'),
      ]),
    );
    expect(summary(items)).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, code: 'INPUT_UNREADABLE' },
      { line: 3, code: 'INPUT_UNREADABLE' },
      { line: 4, value: { a: 3 } },
    ]);
  });

  it('reports a truncated multi-byte character at the end of input as INPUT_UNREADABLE', async () => {
    const items = await readAll(Buffer.from('{"a":1}\n"'), Buffer.from([0xe2, 0x82]));
    expect(summary(items)).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, code: 'INPUT_UNREADABLE' },
    ]);
  });

  it('reports bad JSON as INPUT_UNREADABLE for that line only', async () => {
    const items = await readAll('{"a":1}\n{"a":\nnot json\n{"a":4}\n');
    expect(summary(items)).toEqual([
      { line: 1, value: { a: 1 } },
      { line: 2, code: 'INPUT_UNREADABLE' },
      { line: 3, code: 'INPUT_UNREADABLE' },
      { line: 4, value: { a: 4 } },
    ]);
    const error = (items[1] as { error: ActivityError }).error;
    expect(error).toBeInstanceOf(ActivityError);
    expect(error.message).toContain('not JSON');
  });

  it('passes JSON values that are not objects through for the caller to reject', async () => {
    expect(await readAll('[1]\n"text"\n3\n')).toEqual([
      { line: 1, value: [1] },
      { line: 2, value: 'text' },
      { line: 3, value: 3 },
    ]);
  });

  it('accepts a line of exactly 1 MiB', async () => {
    const line = `"${'x'.repeat(1024 * 1024 - 2)}"`;
    expect(Buffer.byteLength(line)).toBe(1024 * 1024);
    const items = await readAll(`${line}\n{"a":2}\n`);
    expect(items.map((item) => item.line)).toEqual([1, 2]);
    expect('value' in (items[0] as ImportItem)).toBe(true);
  });

  it('rejects a line over 1 MiB and goes on with the next lines', async () => {
    const big = `{"a":"${'x'.repeat(1024 * 1024)}"}`;
    const items = await readAll(`{"a":1}\n${big}\n\n{"a":4}\n`);
    expect(items).toHaveLength(3);
    expect(items[0]).toEqual({ line: 1, value: { a: 1 } });
    expect(items[1]?.line).toBe(2);
    expect((items[1] as { error: ActivityError }).error).toBeInstanceOf(ActivityError);
    expect((items[1] as { error: ActivityError }).error.message).toContain('longer than');
    expect(items[2]).toEqual({ line: 4, value: { a: 4 } });
  });

  it('rejects an oversized line that arrives in many chunks, and an oversized last line', async () => {
    const piece = 'x'.repeat(256 * 1024);
    const items = await readAll(
      '{"a":1}\n"',
      piece,
      piece,
      piece,
      piece,
      piece,
      '"\n{"a":3}\n"',
      piece,
      piece,
      piece,
      piece,
      piece,
    );
    expect(items.map((item) => [item.line, 'error' in item])).toEqual([
      [1, false],
      [2, true],
      [3, false],
      [4, true],
    ]);
  });

  it('fails with INPUT_UNREADABLE naming the input when the source itself fails', async () => {
    async function* failing() {
      yield Buffer.from('{"a":1}\n');
      throw new Error('disk on fire');
    }
    const items: ImportItem[] = [];
    const error = await activityErrorFromAsync(
      (async () => {
        for await (const item of readNdjson(Readable.from(failing()), 'events.ndjson')) items.push(item);
      })(),
    );
    expect(error.code).toBe('INPUT_UNREADABLE');
    expect(error.message).toContain('events.ndjson');
    expect(items).toEqual([{ line: 1, value: { a: 1 } }]);
  });
});
