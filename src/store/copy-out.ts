import type { CompiledQuery } from 'kysely';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/**
 * Runs a compiled `COPY (…) TO STDOUT` on a client of `pool` and yields its bytes as
 * they arrive. The stream holds the socket while the reader is slow, so memory stays
 * bounded however much the statement returns.
 */
export async function* copyOut(pool: pg.Pool, statement: CompiledQuery): AsyncGenerator<Uint8Array> {
  const text = withLiterals(statement.sql, statement.parameters);
  const client = await pool.connect();
  let finished = false;
  try {
    // An export reads a whole tenant and may rightly take longer than a page may.
    await client.query('set statement_timeout = 0');
    for await (const chunk of client.query(copyTo(text))) yield chunk as Uint8Array;
    await client.query('reset statement_timeout');
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
