import { createHash } from 'node:crypto';
import type { PostgresPool, PostgresPoolClient } from 'kysely';
import type pg from 'pg';

/**
 * Each connection keeps at most this many prepared statements. Page statements differ
 * by filter shape and page size; past the cap a new text runs unprepared, so a client
 * that varies them cannot grow the server's memory without bound.
 */
const maxPreparedStatements = 200;

/**
 * The pg pool as Kysely sees it, with every parameterised statement prepared once per
 * connection (named by a hash of its text): the append and page statements are then
 * planned once, not on every call. Kysely itself only sends unnamed statements.
 */
export function createPreparingPool(pool: pg.Pool): PostgresPool {
  const names = new Map<string, string>();
  const nameOf = (text: string) => {
    let name = names.get(text);
    if (name === undefined && names.size < maxPreparedStatements) {
      name = `activity_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
      names.set(text, name);
    }
    return name;
  };
  return {
    async connect() {
      const client = await pool.connect();
      const query = (text: unknown, values?: readonly unknown[]) => {
        const name =
          typeof text === 'string' && values !== undefined && values.length > 0 ? nameOf(text) : undefined;
        return name === undefined
          ? client.query(text as string, values as unknown[])
          : client.query({ name, text: text as string, values: [...(values as unknown[])] });
      };
      return { query: query as unknown as PostgresPoolClient['query'], release: () => client.release() };
    },
    end: () => pool.end(),
  };
}
