import { readdir, readFile, readlink } from 'node:fs/promises';
import { type Kysely, sql } from 'kysely';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { openDatabase } from '../../src/store/open-database.js';
import type { StoreSchema } from '../../src/store/schema.js';
import { createPostgresTransport } from '../../src/stream/postgres-transport.js';
import { createTestDatabase } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

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

it('keeps its connections through a quiet spell: the reads and writes after it need no new connection', async () => {
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

it('sends TCP keepalives on its connections, so that a NAT keeps the idle ones', async () => {
  const earlier = await socketTimers();
  const database = await openDatabase({ kind: 'postgres', url });
  try {
    await backendPid(database.pages);
    await backendPid(database.db);
    expect(newTimers(earlier, await socketTimers())).toEqual(['02', '02']);
  } finally {
    await database.close();
  }
});

it("the live stream's LISTEN connection sends keepalives too", async () => {
  const earlier = await socketTimers();
  const transport = await createPostgresTransport(url);
  try {
    await transport.listen({ onNotice() {}, onResync() {} });
    expect(newTimers(earlier, await socketTimers())).toEqual(['02']);
  } finally {
    await transport.close();
  }
});

it('closes every connection it opened, when all it did was record single events (sent around Kysely)', async () => {
  const tenant = 'closes_after_records';
  // The tenant's head row, made elsewhere: the append below then needs nothing but its one statement.
  const first = await openDatabase({ kind: 'postgres', url });
  await first.repository.appendGenerated([newEvent(tenant)]);
  await first.close();
  const earlier = await socketTimers();
  const database = await openDatabase({ kind: 'postgres', url });
  const [appended] = await database.repository.appendUnlocked([newEvent(tenant)]);
  expect(appended?.event.seq).toBe(2);
  expect(newTimers(earlier, await socketTimers())).toHaveLength(1);
  await database.close();
  expect(newTimers(earlier, await socketTimers())).toEqual([]);
});

/**
 * The kernel's timer kind of each TCP connection this process has to the test
 * database, by socket (/proc/net/tcp's `tr`). Linux runs the keepalive timer (02)
 * on an idle connection that asked for keepalives, and none (00) on another.
 */
async function socketTimers(): Promise<Map<string, string>> {
  const port = Number(new URL(url).port);
  const ownSockets = new Set<string>();
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode) ownSockets.add(inode);
  }
  const timers = new Map<string, string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of (await readFile(table, 'utf8')).trim().split('\n').slice(1)) {
      const [, , remote = '', , , timer = '', , , , inode = ''] = line.trim().split(/\s+/);
      if (Number.parseInt(remote.split(':')[1] ?? '', 16) === port && ownSockets.has(inode)) {
        timers.set(inode, timer.split(':')[0] ?? '');
      }
    }
  }
  return timers;
}

/** The timers of the connections opened since `earlier` (an earlier test's may still be closing). */
function newTimers(earlier: Map<string, string>, now: Map<string, string>): string[] {
  return [...now].filter(([inode]) => !earlier.has(inode)).map(([, timer]) => timer);
}
