/**
 * How a column of a `COPY … TO STDOUT` in text format becomes a value of a JSON line:
 * a JSON string, a number as it is, or JSON text (a jsonb column).
 */
export type CopyColumnKind = 'string' | 'number' | 'json';

const tab = 0x09;
const newline = 0x0a;
const quote = 0x22;
const backslash = 0x5c;
const hexDigits = '0123456789abcdef';
/** The most a byte of a field can become in a line (`\u00XX`). */
const maxGrowth = 6;
/** Bytes a buffer of lines gets beyond what it is expected to need. */
const slack = 4096;
/** What COPY writes as a backslash and a letter, by letter; any other byte stands for itself. */
const copyEscapes: Partial<Record<number, number>> = {
  98: 0x08, // \b
  102: 0x0c, // \f
  110: 0x0a, // \n
  114: 0x0d, // \r
  116: 0x09, // \t
  118: 0x0b, // \v
};

/**
 * Turns the rows of a `COPY … TO STDOUT` in text format into JSON lines, one object per
 * row with the columns' keys in order, each string as `JSON.stringify` writes it.
 *
 * COPY's text format already escapes most of what JSON does, in the same way (`\\`,
 * `\n`, `\r`, `\t`, `\b`, `\f`), so a field's bytes mostly pass as they are: only `"`,
 * `\v` and the control characters COPY sends raw are rewritten. Node does this while
 * the database reads on; building the JSON in SQL kept the database's core busy and
 * Node's idle.
 */
export async function* copyTextToJsonLines(
  columns: ReadonlyArray<{ key: string; kind: CopyColumnKind }>,
  chunks: AsyncIterable<Uint8Array>,
): AsyncGenerator<Uint8Array> {
  const writer = new JsonLineWriter(columns);
  let partial: Buffer | undefined;
  for await (const chunk of chunks) {
    let rows = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (partial !== undefined) {
      // A row split between chunks: finished alone, then this chunk's own rows.
      const end = rows.indexOf(newline);
      if (end < 0) {
        partial = Buffer.concat([partial, rows]);
        continue;
      }
      yield* writer.writeRows(Buffer.concat([partial, rows.subarray(0, end + 1)]));
      rows = rows.subarray(end + 1);
      partial = undefined;
    }
    const whole = rows.lastIndexOf(newline) + 1;
    if (whole < rows.length) partial = Buffer.from(rows.subarray(whole));
    if (whole > 0) yield* writer.writeRows(rows.subarray(0, whole));
  }
  if (partial !== undefined) throw new Error('a COPY ended in the middle of a row');
}

/**
 * Writes the lines of whole rows into a buffer and hands them on; the next rows go on in
 * the same buffer while it has room.
 */
class JsonLineWriter {
  readonly #kinds: readonly CopyColumnKind[];
  /** What goes before each value: `{"key":` or `,"key":`. */
  readonly #prefixes: readonly Buffer[];
  /** The most a line adds to its row's bytes besides maxGrowth. */
  readonly #overhead: number;
  /** How many bytes of lines the last rows made per byte. */
  #growth = 2;
  #out = Buffer.alloc(0);
  #at = 0;
  #row: Buffer = Buffer.alloc(0);
  #index = 0;
  /** Where the row being written ends: its newline. */
  #rowEnd = 0;
  /** The first backslash at or after #index in #row (its length if none): looked up once for many rows. */
  #backslashAt = -1;

  constructor(columns: ReadonlyArray<{ key: string; kind: CopyColumnKind }>) {
    this.#kinds = columns.map((column) => column.kind);
    this.#prefixes = columns.map((column, index) =>
      Buffer.from(`${index === 0 ? '{' : ','}${JSON.stringify(column.key)}:`),
    );
    // Each value's prefix, its quotes or `null` for `\N`, then `}` and a newline.
    this.#overhead = this.#prefixes.reduce((sum, prefix) => sum + prefix.length + 4, 2);
  }

  /** The lines of `rows`, which holds whole rows, each ending in a newline; seldom in more than one buffer. */
  writeRows(rows: Buffer): Buffer[] {
    const lines: Buffer[] = [];
    let first = this.#at;
    let written = 0;
    this.#row = rows;
    this.#index = 0;
    this.#backslashAt = -1;
    while (this.#index < rows.length) {
      this.#rowEnd = rows.indexOf(newline, this.#index);
      const room = (this.#rowEnd - this.#index) * maxGrowth + this.#overhead;
      if (this.#at + room > this.#out.length) {
        if (this.#at > first) lines.push(this.#out.subarray(first, this.#at));
        // Room for the rest if it grows as the last rows did, and a little more: no
        // more memory in flight than the lines need.
        const rest = Math.ceil((rows.length - this.#index) * this.#growth * 1.1);
        this.#out = Buffer.allocUnsafe(rest + room + slack);
        this.#at = first = 0;
      }
      this.#writeRow();
    }
    if (this.#at > first) lines.push(this.#out.subarray(first, this.#at));
    for (const part of lines) written += part.length;
    this.#growth = written / rows.length;
    return lines;
  }

  #writeRow(): void {
    const row = this.#row;
    const count = this.#kinds.length;
    for (let column = 0; column < count; column++) {
      const prefix = this.#prefixes[column] as Buffer;
      this.#out.set(prefix, this.#at);
      this.#at += prefix.length;
      const kind = this.#kinds[column];
      if (row[this.#index] === backslash && row[this.#index + 1] === 0x4e) {
        // `\N` is a null; a text that is `\N` comes as `\\N`.
        this.#at += this.#out.write('null', this.#at, 'latin1');
        this.#index += 2;
      } else if (kind === 'string') this.#writeString();
      else if (kind === 'json') this.#writeJson();
      else this.#writeAsIs();
      if (row[this.#index++] !== (column === count - 1 ? newline : tab)) {
        throw new Error(`a COPY row does not have ${count} fields`);
      }
    }
    this.#out[this.#at++] = 0x7d; // }
    this.#out[this.#at++] = newline;
  }

  /** A text field as a JSON string, COPY's escapes kept where JSON has the same. */
  #writeString(): void {
    const row = this.#row;
    const out = this.#out;
    let index = this.#index;
    let at = this.#at;
    out[at++] = quote;
    // Bounded by the buffer too: a malformed row ends in an error, not a loop.
    while (index < row.length) {
      const byte = row[index] as number;
      if (byte === tab || byte === newline) break;
      index++;
      if (byte === backslash) {
        const escaped = row[index++] as number;
        if (escaped === 0x76)
          at = writeUnicodeEscape(out, at, 0x0b); // JSON has no `\v`
        else {
          out[at++] = backslash;
          out[at++] = escaped;
        }
      } else if (byte === quote) {
        out[at++] = backslash;
        out[at++] = quote;
      } else if (byte < 0x20) at = writeUnicodeEscape(out, at, byte);
      else out[at++] = byte;
    }
    out[at++] = quote;
    this.#index = index;
    this.#at = at;
  }

  /** JSON text as it was before COPY escaped it, copied natively: it is the longest field. */
  #writeJson(): void {
    const row = this.#row;
    let end = row.indexOf(tab, this.#index);
    if (end < 0 || end > this.#rowEnd) end = this.#rowEnd;
    let from = this.#index;
    for (;;) {
      if (this.#backslashAt < from) {
        const found = row.indexOf(backslash, from);
        this.#backslashAt = found < 0 ? row.length : found;
      }
      if (this.#backslashAt >= end) break;
      this.#at += row.copy(this.#out, this.#at, from, this.#backslashAt);
      const escaped = row[this.#backslashAt + 1] as number;
      this.#out[this.#at++] = copyEscapes[escaped] ?? escaped;
      from = this.#backslashAt + 2;
    }
    this.#at += row.copy(this.#out, this.#at, from, end);
    this.#index = end;
  }

  #writeAsIs(): void {
    const row = this.#row;
    const out = this.#out;
    let index = this.#index;
    let at = this.#at;
    while (index < row.length) {
      const byte = row[index] as number;
      if (byte === tab || byte === newline) break;
      out[at++] = byte;
      index++;
    }
    this.#index = index;
    this.#at = at;
  }
}

function writeUnicodeEscape(out: Buffer, at: number, code: number): number {
  return at + out.write(`\\u00${hexDigits[code >> 4]}${hexDigits[code & 15]}`, at, 'latin1');
}
