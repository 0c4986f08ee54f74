import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * Streams the values of a compiled one-column SELECT of text, one per line, through
 * `COPY (…) TO STDOUT` on a client of `pool`. The stream holds the socket while the
 * reader is slow, so memory stays bounded however much the statement returns.
 */
export async function* copyLines(pool: pg.Pool, select: CompiledQuery): AsyncGenerator<Uint8Array> {
  const text = `copy (${withLiterals(select.sql, select.parameters)}) to stdout (format binary)`;
  const toLines = createCopyBinaryLines();
  const client = await pool.connect();
  let finished = false;
  try {
    for await (const chunk of client.query(copyTo(text))) {
      const lines = toLines(chunk as Uint8Array);
      if (lines.length > 0) yield lines;
    }
    finished = true;
  } finally {
    // A COPY stopped halfway (an error, or a reader that left) leaves the connection
    // mid-protocol: it is closed, which also ends the statement on the server.
    client.release(!finished);
  }
}

/**
 * COPY takes no parameters, so each `$n` becomes its value as a literal, escaped by pg.
 * The statement is Kysely's, whose SQL holds `$n` only where it placed a parameter.
 */
function withLiterals(sql: string, values: readonly unknown[]): string {
  return sql.replace(/\$(\d+)/g, (_, position: string) => toLiteral(values[Number(position) - 1]));
}

function toLiteral(value: unknown): string {
  if (typeof value === 'string') return pg.escapeLiteral(value);
  if (typeof value === 'number' && Number.isSafeInteger(value)) return String(value);
  if (value instanceof Date) return `${pg.escapeLiteral(value.toISOString())}::timestamptz`;
  throw new TypeError(`no SQL literal for a value of type ${typeof value}`);
}

/** What a binary COPY starts with: its signature, then flags and a header extension's length. */
const binarySignature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const newline = Buffer.of(0x0a);

/**
 * Turns the bytes of `COPY (…) TO STDOUT (FORMAT binary)` of one text column, in
 * chunks split anywhere, into that column's values, one per line. Binary COPY sends
 * each value's bytes as they are, length first: no character is escaped or quoted.
 */
export function createCopyBinaryLines(): (chunk: Uint8Array) => Uint8Array {
  let pending: Buffer = Buffer.alloc(0);
  let inHeader = true;
  return (chunk) => {
    const bytes =
      pending.length > 0
        ? Buffer.concat([pending, chunk])
        : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let at = 0;
    if (inHeader) {
      const signed = bytes.subarray(0, binarySignature.length);
      if (!binarySignature.subarray(0, signed.length).equals(signed))
        throw new Error('COPY sent no binary header');
      const fixed = binarySignature.length + 8;
      const end = bytes.length < fixed ? fixed : fixed + bytes.readInt32BE(binarySignature.length + 4);
      if (bytes.length < end) {
        pending = bytes;
        return new Uint8Array(0);
      }
      at = end;
      inHeader = false;
    }
    const lines: Buffer[] = [];
    while (bytes.length - at >= 2) {
      const fields = bytes.readInt16BE(at);
      if (fields === -1) {
        at += 2;
        break;
      }
      if (fields !== 1) throw new Error(`COPY sent a row of ${fields} columns, not 1`);
      if (bytes.length - at < 6) break;
      const length = bytes.readInt32BE(at + 2);
      if (length < 0) throw new Error('COPY sent a null line');
      if (bytes.length - at < 6 + length) break;
      lines.push(bytes.subarray(at + 6, at + 6 + length), newline);
      at += 6 + length;
    }
    pending = bytes.subarray(at);
    return Buffer.concat(lines);
  };
}
