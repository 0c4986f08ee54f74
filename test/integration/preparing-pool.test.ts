import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createPreparingPool } from '../../src/store/preparing-pool.js';
import { createTestDatabase } from '../helpers/databases.js';

let pool: pg.Pool;
let drop: () => Promise<void>;

beforeAll(async () => {
  const created = await createTestDatabase({ migrated: false });
  drop = created.drop;
  pool = new pg.Pool({ connectionString: created.url, max: 1 });
});
afterAll(async () => {
  await pool?.end();
  await drop?.();
});

it('prepares each parameterised statement once per connection, up to a cap, and still runs the rest', async () => {
  const preparing = createPreparingPool(pool);
  const client = await preparing.connect();
  try {
    for (let i = 0; i < 250; i++) {
      const { rows } = await client.query(`select $1::int + ${i} as n`, [1]);
      expect(rows).toEqual([{ n: i + 1 }]);
    }
    // The same text again reuses its statement.
    await client.query('select $1::int + 0 as n', [1]);
    const { rows } = await client.query(
      "select count(*)::int as prepared from pg_prepared_statements where name like 'activity_%'",
      [],
    );
    expect(rows).toEqual([{ prepared: 200 }]);
  } finally {
    client.release();
  }
});

it('closes a connection released to be destroyed (a failed ROLLBACK), and reuses the others', async () => {
  const preparing = createPreparingPool(pool);
  const backendPid = async () => {
    const client = await preparing.connect();
    const { rows } = await client.query('select pg_backend_pid() as pid', []);
    return { pid: (rows[0] as { pid: number }).pid, client };
  };
  const first = await backendPid();
  first.client.release();
  const second = await backendPid();
  expect(second.pid).toBe(first.pid);
  second.client.release(true);
  const third = await backendPid();
  expect(third.pid).not.toBe(first.pid);
  third.client.release();
});

it('passes a failed query on as the server reported it', async () => {
  const client = await createPreparingPool(pool).connect();
  try {
    await expect(client.query('select $1::int / 0', [1])).rejects.toMatchObject({ code: '22012' });
  } finally {
    client.release();
  }
});

it('runs a statement without Kysely under the same prepared name, and passes a failure on with the connection released', async () => {
  const preparing = createPreparingPool(pool);
  const text = 'select $1::int * 2 as n';
  expect(await preparing.run(text, [21])).toEqual([{ n: 42 }]);
  await expect(preparing.run('select $1::int / 0', [1])).rejects.toMatchObject({ code: '22012' });
  // The pool holds one connection: it was released after the failure, and the text
  // is the one statement prepared on it under this name.
  expect(await preparing.run(text, [5])).toEqual([{ n: 10 }]);
  const client = await preparing.connect();
  try {
    const { rows } = await client.query(
      'select count(*)::int as prepared from pg_prepared_statements where statement = $1',
      [text],
    );
    expect(rows).toEqual([{ prepared: 1 }]);
  } finally {
    client.release();
  }
});
