import { describe, expect, it } from 'vitest';
import { type CopyColumnKind, copyTextToJsonLines } from '../../src/store/copy-text-json.js';

const columns: Array<{ key: string; kind: CopyColumnKind }> = [
  { key: 'id', kind: 'string' },
  { key: 'seq', kind: 'number' },
  { key: 'note', kind: 'string' },
  { key: 'metadata', kind: 'json' },
  { key: 'created_at', kind: 'string' },
];

/** Every character a text column can hold below DEL (all but NUL), and some above. */
const everyAscii = Array.from({ length: 0x7f }, (_, code) => String.fromCharCode(code + 1)).join('');
const tricky = `${everyAscii} é 🎉 \u2028 \\N \\\\ "\\" </script>`;

type Row = { id: string; seq: number; note: string | null; metadata: object; created_at: string };
const rows: Row[] = [
  { id: 'a', seq: 3, note: tricky, metadata: { [tricky]: tricky, list: [1, null, '\\'] }, created_at: 't3' },
  { id: 'b', seq: 2, note: null, metadata: {}, created_at: 't2' },
  { id: 'c', seq: 1, note: '\\N', metadata: { n: 1.5e-7 }, created_at: '' },
];

/** A value as COPY's text format writes it: PostgreSQL's CopyAttributeOutText, with a tab between fields. */
function copyField(value: string | null): string {
  if (value === null) return '\\N';
  const escapes: Record<string, string> = {
    '\\': '\\\\',
    '\b': '\\b',
    '\f': '\\f',
    '\n': '\\n',
    '\r': '\\r',
    '\t': '\\t',
    '\v': '\\v',
  };
  return value.replace(/[\\\b\f\n\r\t\v]/g, (character) => escapes[character] as string);
}

const copyText = Buffer.from(
  rows
    .map((row) =>
      [row.id, String(row.seq), row.note, JSON.stringify(row.metadata), row.created_at]
        .map(copyField)
        .join('\t'),
    )
    .map((line) => `${line}\n`)
    .join(''),
);
/** What the rows must become: JSON.stringify's bytes, line by line. */
const expected = rows.map((row) => `${JSON.stringify(row)}\n`).join('');

async function transcode(chunks: readonly Uint8Array[]): Promise<string> {
  const out: Uint8Array[] = [];
  async function* source() {
    yield* chunks;
  }
  for await (const chunk of copyTextToJsonLines(columns, source())) out.push(chunk);
  return Buffer.concat(out).toString('utf8');
}

describe('COPY text rows to JSON lines', () => {
  it("writes each row as JSON.stringify does, every character of a text escaped as JSON's", async () => {
    expect(await transcode([copyText])).toBe(expected);
  });

  it('writes the same lines from chunks split at any byte, even inside a character', async () => {
    for (let at = 0; at <= copyText.length; at++) {
      expect(await transcode([copyText.subarray(0, at), copyText.subarray(at)])).toBe(expected);
    }
    expect(await transcode(Array.from(copyText, (byte) => Uint8Array.of(byte)))).toBe(expected);
  });

  it('passes JSON text on as it was, its whitespace and escapes included', async () => {
    const json = '{\n\t"a": "x\\ny \\"q\\"",\r\n "b": [ ]}';
    const text = Buffer.from(`${['a', '1', 'n', json, 't'].map(copyField).join('\t')}\n`);
    expect(await transcode([text])).toBe(
      `{"id":"a","seq":1,"note":"n","metadata":${json},"created_at":"t"}\n`,
    );
  });

  it('writes nothing for no rows', async () => {
    expect(await transcode([])).toBe('');
    expect(await transcode([new Uint8Array(0)])).toBe('');
  });

  it('outgrows its buffer for rows of any length', async () => {
    const long = { ...(rows[0] as Row), note: '\u0001'.repeat(200_000) };
    const text = Buffer.from(`${['a', '3', long.note, '{}', 't'].join('\t')}\n`.repeat(3));
    const line = `${JSON.stringify({ ...long, metadata: {}, created_at: 't' })}\n`;
    expect(await transcode([text])).toBe(line.repeat(3));
  });

  it('fails on a row with too few or too many fields, or a COPY that ends inside a row', async () => {
    await expect(transcode([Buffer.from('a\t1\tn\t{}\n')])).rejects.toThrow('does not have 5 fields');
    await expect(transcode([Buffer.from('a\t1\tn\t{}\tt\textra\n')])).rejects.toThrow(
      'does not have 5 fields',
    );
    await expect(transcode([copyText.subarray(0, -1)])).rejects.toThrow('in the middle of a row');
    // A backslash that escapes the row's newline, which PostgreSQL never sends.
    await expect(transcode([Buffer.from('a\t1\tn\t{}\tt\\\n')])).rejects.toThrow('does not have 5 fields');
  });
});
