import { describe, expect, it } from 'vitest';
import { createCopyBinaryLines } from '../../src/store/copy-out.js';

const values = ['{"a":"é 🎉"}', '', 'line "two" with \\ and \n inside', '{"z":1}'];

/** What `COPY … TO STDOUT (FORMAT binary)` sends for one text column of `rows`. */
function copyBinary(rows: readonly string[], extension = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(8);
  header.writeInt32BE(extension.length, 4);
  const tuples = rows.map((row) => {
    const data = Buffer.from(row, 'utf8');
    const prefix = Buffer.alloc(6);
    prefix.writeInt16BE(1, 0);
    prefix.writeInt32BE(data.length, 2);
    return Buffer.concat([prefix, data]);
  });
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1, 0);
  return Buffer.concat([Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), header, extension, ...tuples, trailer]);
}

function linesOf(chunks: readonly Uint8Array[]): string {
  const toLines = createCopyBinaryLines();
  return Buffer.concat(chunks.map((chunk) => toLines(chunk))).toString('utf8');
}

describe('binary COPY rows to lines', () => {
  const expected = values.map((value) => `${value}\n`).join('');

  it('gives each value as it was sent, whole or split at any byte', () => {
    const bytes = copyBinary(values);
    expect(linesOf([bytes])).toBe(expected);
    for (let at = 0; at <= bytes.length; at++) {
      expect(linesOf([bytes.subarray(0, at), bytes.subarray(at)])).toBe(expected);
    }
    expect(linesOf(Array.from(bytes, (byte) => Uint8Array.of(byte)))).toBe(expected);
  });

  it('skips a header extension', () => {
    expect(linesOf([copyBinary(values, Buffer.from('ext!'))])).toBe(expected);
  });

  it('gives nothing for no rows', () => {
    expect(linesOf([copyBinary([])])).toBe('');
  });

  it('refuses what is not binary COPY', () => {
    expect(() => linesOf([Buffer.from('{"id":1}\n'.repeat(4))])).toThrow('COPY sent no binary header');
  });
});
