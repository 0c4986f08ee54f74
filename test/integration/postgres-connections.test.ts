import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/store/open-database.js';
import type { StoreSchema } from '../../src/store/schema.js';
import { createTestDatabase } from '../helpers/databases.js';

let url: string;
let drop: () => Promise<void>;

beforeAll(async () => {
  ({ url, drop } = await createTestDatabase());
});
afterAll(async () => {
  await drop?.();
});

async function backendPid(db: Kysely<StoreSchema>): Promise<number | undefined> {
  const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(db);
  return rows[0]?.pid;
}

it('keeps its connections through a quiet spell: the the reads and writes after it need no new connection', async () => {
  // pg's pool closes an idle connection on a timer: only timers are faked, sockets stay real.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  const database = await openDatabase({ kind: 'postgres', url });
  try {
    const backends = async () => ({
      pages: await backendPid(database.pages),
      writes: await backendPid(database.db),
    });
    const before = await backends();
    expect(before.pages).toEqual(expect.any(Number));
    vi.advanceTimersByTime(10 * 60_000);
    expect(await backends()).toEqual(before);
  } finally {
    vi.useRealTimers();
    await database.close();
  }
});
