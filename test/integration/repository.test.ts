import { randomUUID } from 'node:crypto';
import { type CompiledQuery, Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventFields, type NewActivityEvent } from '../../src/domain/event.js';
import { KyselyActivityRepository } from '../../src/store/events/repository.js';
import type { Database } from '../../src/store/open-database.js';
import { openDatabase } from '../../src/store/open-database.js';
import type { StoreSchema } from '../../src/store/schema.js';
import { createTestDatabase, openTestStore, storeKinds } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

/** The events of an export, each line parsed, with the keys of each line in order. */
async function exported(
  repository: Database['repository'],
  ...args: Parameters<Database['repository']['exportJson']>
): Promise<{ events: unknown[]; keys: string[][] }> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of repository.exportJson(...args)) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text !== '' && !text.endsWith('\n')) throw new Error('an export ends in the middle of a line');
  const events = text
    .split('\n')
    .slice(0, -1)
    .map((line) => JSON.parse(line) as object);
  return { events, keys: events.map((event) => Object.keys(event)) };
}

describe.each(storeKinds)('repository on %s', (kind) => {
  let database: Database;
  let dispose: () => Promise<void>;
  const at = new Date('2026-01-01T00:00:00.000Z');

  beforeAll(async () => {
    ({ database, dispose } = await openTestStore(kind));
  });
  afterAll(async () => dispose?.());

  const tenant = () => `t-${randomUUID()}`;
  /** An event with every field set, each to a value no other field has. */
  const withEveryField = (tenantId: string, overrides: Partial<NewActivityEvent> = {}) =>
    newEvent(tenantId, {
      action: 'storage.file.uploaded',
      actor_type: 'service_account',
      actor_id: 'svc-1',
      object_type: 'file',
      object_id: 'f_9',
      status: 'pending',
      source: 'worker',
      request_id: 'req-1',
      ip_hash: 'ab'.repeat(32),
      user_agent: 'curl/8',
      metadata: { file_id: 'f_9', nested: { list: [1, 'two', null] }, text: 'é "q" \\ \u2028' },
      ...overrides,
    });

  it('hands out seq 1, 2, 3… per tenant in input order', async () => {
    const a = tenant();
    const b = tenant();
    const first = await database.repository.append(a, [newEvent(a), newEvent(a)], { createdAt: at });
    const other = await database.repository.append(b, [newEvent(b)], { createdAt: at });
    const second = await database.repository.append(a, [newEvent(a, { action: 'auth.logout.completed' })], {
      createdAt: at,
    });
    expect(first.map((entry) => entry.event.seq)).toEqual([1, 2]);
    expect(other.map((entry) => entry.event.seq)).toEqual([1]);
    expect(second.map((entry) => [entry.event.seq, entry.event.action])).toEqual([
      [3, 'auth.logout.completed'],
    ]);
  });

  it('appends new events of several tenants in one call, each tenant counting on from its own head', async () => {
    const a = tenant();
    const b = tenant();
    await database.repository.append(a, [newEvent(a)], { createdAt: at });
    const input = [newEvent(b), newEvent(a), newEvent(b), newEvent(a, { action: 'auth.logout.completed' })];
    const appended = await database.repository.appendGenerated(input, { createdAt: at });
    expect(appended.map((entry) => [entry.event.id, entry.event.tenant_id, entry.event.seq])).toEqual([
      [input[0]?.id, b, 1],
      [input[1]?.id, a, 2],
      [input[2]?.id, b, 2],
      [input[3]?.id, a, 3],
    ]);
    const pageOfA = await database.repository.page(a, {}, { limit: 10 });
    expect(pageOfA.map((event) => [event.seq, event.action])).toEqual([
      [3, 'auth.logout.completed'],
      [2, input[1]?.action],
      [1, input[1]?.action],
    ]);
    const [next] = await database.repository.append(b, [newEvent(b)], { createdAt: at });
    expect(next?.event.seq).toBe(3);
  });

  it('appends several tenants in one transaction: all of them, or none when one fails', async () => {
    const a = tenant();
    const b = tenant();
    const together = await database.repository.appendAll([
      { tenantId: b, events: [newEvent(b), newEvent(b)] },
      { tenantId: a, events: [newEvent(a, { id: '0190c6a0-0000-7000-8000-00000000000a' })] },
    ]);
    expect(
      together.map((entries) => entries.map((entry) => [entry.event.tenant_id, entry.event.seq])),
    ).toEqual([
      [
        [b, 1],
        [b, 2],
      ],
      [[a, 1]],
    ]);
    // The check constraint refuses the second tenant's event: the first's are not kept either.
    const refused = database.repository.appendAll([
      { tenantId: a, events: [newEvent(a)] },
      { tenantId: b, events: [newEvent(b, { actor_type: 'robot' as never })] },
    ]);
    await expect(refused).rejects.toMatchObject({ code: 'INTERNAL' });
    expect((await database.repository.page(a, {}, { limit: 10 })).map((event) => event.seq)).toEqual([1]);
    expect((await database.repository.page(b, {}, { limit: 10 })).map((event) => event.seq)).toEqual([2, 1]);
  });

  it('an unlocked append advances the heads of known tenants, and skips a tenant with none yet', async () => {
    const known = tenant();
    const other = tenant();
    const fresh = tenant();
    await database.repository.append(known, [newEvent(known)]);
    await database.repository.append(other, [newEvent(other)]);
    const several = await database.repository.appendUnlocked([
      newEvent(other),
      newEvent(known),
      newEvent(fresh),
      newEvent(other),
    ]);
    expect(several.map((entry) => entry && [entry.event.tenant_id, entry.event.seq])).toEqual([
      [other, 2],
      [known, 2],
      undefined,
      [other, 3],
    ]);
    const [one] = await database.repository.appendUnlocked([newEvent(known)]);
    expect(one?.event.seq).toBe(3);
    expect(await database.repository.appendUnlocked([newEvent(fresh)])).toEqual([undefined]);
    expect(await database.repository.page(fresh, {}, { limit: 1 })).toEqual([]);
  });

  it('a retry with the same id returns the stored event and consumes no seq', async () => {
    const a = tenant();
    const original = newEvent(a, { metadata: { method: 'password' } });
    const [stored] = await database.repository.append(a, [original], { createdAt: at });
    const retry = await database.repository.append(
      a,
      [{ ...original, metadata: { method: 'sso' } }, newEvent(a)],
      { createdAt: at },
    );
    expect(retry[0]).toEqual({ event: stored?.event, duplicate: true });
    expect(retry[1]?.duplicate).toBe(false);
    expect(retry[1]?.event.seq).toBe(2);
    const page = await database.repository.page(a, {}, { limit: 10 });
    expect(page.map((event) => event.seq)).toEqual([2, 1]);
    expect(page[1]?.metadata).toEqual({ method: 'password' });
  });

  it('a retry months later is still a duplicate, though the first is in another partition', async () => {
    const a = tenant();
    const now = new Date();
    const later = new Date(now.getTime() + 62 * 86_400_000);
    const original = newEvent(a);
    const [stored] = await database.repository.append(a, [original], { createdAt: now });
    const [retry] = await database.repository.append(a, [original], { createdAt: later });
    expect(retry).toEqual({ event: stored?.event, duplicate: true });
    const [next] = await database.repository.append(a, [newEvent(a)], { createdAt: later });
    expect(next?.event.seq).toBe(2);
  });

  it('the same id in two tenants is two events', async () => {
    const id = uuidv7();
    const a = tenant();
    const b = tenant();
    await database.repository.append(a, [newEvent(a, { id })], { createdAt: at });
    const [inB] = await database.repository.append(b, [newEvent(b, { id })], { createdAt: at });
    expect(inB?.duplicate).toBe(false);
    expect(inB?.event.tenant_id).toBe(b);
  });

  it('stores every field and returns it in the contract shape', async () => {
    const a = tenant();
    const event = withEveryField(a);
    const [stored] = await database.repository.append(a, [event], {
      createdAt: new Date('2026-02-03T04:05:06.789Z'),
    });
    expect(stored?.event).toEqual({ ...event, seq: 1, created_at: '2026-02-03T04:05:06.789Z' });
  });

  it('an export writes each field as JSON that parses back to the stored event, keys in contract order', async () => {
    const a = `${tenant()}.x:y_z`;
    const tricky =
      'quote " backslash \\ newline \n tab \t \u0001 \u001f del \u007f é 🎉 \u2028 </script> ": ';
    const events = [
      newEvent(a, {
        actor_id: tricky,
        object_type: 'o"t',
        object_id: '\\',
        source: 'line\nbreak',
        request_id: "it's",
        ip_hash: 'ab'.repeat(32),
        user_agent: tricky,
        metadata: {
          [tricky]: tricky,
          '10': 1,
          '2': [true, false, null, 0.1, -5, 1e21, 1.5e-7, Number.MAX_SAFE_INTEGER],
          nested: { '': {}, deep: [[[]]] },
        },
      }),
      newEvent(a, {
        actor_id: null,
        object_type: null,
        object_id: null,
        source: null,
        request_id: null,
        ip_hash: null,
        user_agent: null,
        metadata: {},
      }),
    ];
    await database.repository.append(a, events, { createdAt: at });
    const page = await database.repository.page(a, {}, { limit: 10 });
    const { events: lines, keys } = await exported(database.repository, a, {}, {});
    expect(lines).toEqual(page);
    expect(keys).toEqual([eventFields, eventFields]);
  });

  it('an export longer than a page holds every event once, in order', async () => {
    const a = tenant();
    const count = 1001;
    await database.repository.appendGenerated(
      Array.from({ length: count }, () => newEvent(a)),
      { createdAt: at },
    );
    const { events } = await exported(database.repository, a, {}, {});
    expect(events.map((event) => (event as { seq: number }).seq)).toEqual(
      Array.from({ length: count }, (_, i) => count - i),
    );
  });

  it('each append statement stores every field as given and takes the next seq', async () => {
    const a = tenant();
    const event = (overrides: Partial<NewActivityEvent> = {}) => withEveryField(a, overrides);
    const appended = [
      // One event of a generated id, several, one whose id is looked up, and one again.
      ...(await database.repository.appendGenerated([event()], { createdAt: at })),
      ...(await database.repository.appendGenerated(
        [event({ actor_id: null }), event({ object_id: 'f_10' })],
        { createdAt: at },
      )),
      ...(await database.repository.append(a, [event({ source: null })], { createdAt: at })),
      ...(await database.repository.appendGenerated([event({ user_agent: null, metadata: {} })], {
        createdAt: at,
      })),
    ].map((entry) => entry.event);
    expect(appended.map((stored) => stored.seq)).toEqual([1, 2, 3, 4, 5]);
    const page = await database.repository.page(a, {}, { limit: 10 });
    expect(page.reverse()).toEqual(appended);
  });

  it('time never runs backwards within a tenant, whichever statement appends', async () => {
    const a = tenant();
    const march = '2026-03-01T00:00:00.000Z';
    await database.repository.append(a, [newEvent(a)], { createdAt: new Date(march) });
    const [late] = await database.repository.append(a, [newEvent(a)], {
      createdAt: new Date('2026-02-01T00:00:00.000Z'),
    });
    const [alone] = await database.repository.appendGenerated([newEvent(a)], {
      createdAt: new Date('2026-02-02T00:00:00.000Z'),
    });
    const batch = await database.repository.appendGenerated([newEvent(a), newEvent(a)], {
      createdAt: new Date('2026-02-03T00:00:00.000Z'),
    });
    expect([late, alone, ...batch].map((entry) => entry?.event.created_at)).toEqual([
      march,
      march,
      march,
      march,
    ]);
  });

  describe('pages', () => {
    const a = `pages-${randomUUID()}`;
    const b = `pages-other-${randomUUID()}`;
    const day = (n: number) => new Date(Date.UTC(2026, 0, n));

    beforeAll(async () => {
      const rows: Array<[Partial<NewActivityEvent>, Date]> = [
        [{ action: 'auth.login.success', actor_id: 'alice' }, day(1)],
        [{ action: 'auth.login.failure', actor_id: 'bob', status: 'failure' }, day(2)],
        [{ action: 'storage.file.uploaded', object_type: 'file', object_id: 'f1', request_id: 'r1' }, day(3)],
        [{ action: 'storage.file.deleted', object_type: 'file', object_id: 'f1' }, day(4)],
        [{ action: 'auth.account.locked', actor_id: 'bob', status: 'failure' }, day(5)],
        [
          { action: 'workflows.run.started', object_type: 'workflow', object_id: 'w1', request_id: 'r1' },
          day(6),
        ],
      ];
      for (const [overrides, time] of rows)
        await database.repository.append(a, [newEvent(a, overrides)], { createdAt: time });
      await database.repository.append(b, [newEvent(b, { actor_id: 'alice' })], { createdAt: day(3) });
    });

    const seqs = async (
      filter: Parameters<Database['repository']['page']>[1],
      beforeSeq?: number,
      limit = 50,
    ) =>
      (await database.repository.page(a, filter, { limit, ...(beforeSeq ? { beforeSeq } : {}) })).map(
        (e) => e.seq,
      );

    it('lists newest first and continues below a seq', async () => {
      expect(await seqs({})).toEqual([6, 5, 4, 3, 2, 1]);
      expect(await seqs({}, 4, 2)).toEqual([3, 2]);
    });

    it('filters by each field', async () => {
      expect(await seqs({ actorId: 'bob' })).toEqual([5, 2]);
      expect(await seqs({ objectType: 'file' })).toEqual([4, 3]);
      expect(await seqs({ objectId: 'f1' })).toEqual([4, 3]);
      expect(await seqs({ objectType: 'workflow', objectId: 'w1' })).toEqual([6]);
      expect(await seqs({ requestId: 'r1' })).toEqual([6, 3]);
      expect(await seqs({ status: 'failure' })).toEqual([5, 2]);
      expect(await seqs({ actions: ['auth.login.failure'] })).toEqual([2]);
    });

    it('matches action prefixes and lists, each event once', async () => {
      expect(await seqs({ actionPrefixes: ['auth.'] })).toEqual([5, 2, 1]);
      expect(await seqs({ actionPrefixes: ['auth.login.'] })).toEqual([2, 1]);
      expect(await seqs({ actions: ['storage.file.deleted'], actionPrefixes: ['auth.login.'] })).toEqual([
        4, 2, 1,
      ]);
      expect(
        await seqs({ actions: ['auth.login.success'], actionPrefixes: ['auth.', 'auth.login.'] }),
      ).toEqual([5, 2, 1]);
      expect(await seqs({ actionPrefixes: ['auth.', 'storage.'] }, 5, 2)).toEqual([4, 3]);
    });

    it('maps a time window to since (inclusive) and until (exclusive)', async () => {
      expect(await seqs({ since: day(3) })).toEqual([6, 5, 4, 3]);
      expect(await seqs({ until: day(3) })).toEqual([2, 1]);
      expect(await seqs({ since: day(2), until: day(5) })).toEqual([4, 3, 2]);
      expect(await seqs({ since: new Date(day(3).getTime() + 1), until: day(5) })).toEqual([4]);
      expect(await seqs({ since: day(7) })).toEqual([]);
      expect(await seqs({ since: day(2), until: day(5), actorId: 'bob' })).toEqual([2]);
    });

    it('a page of the same shape as an earlier one reads with its own values and tenant', async () => {
      // Page statements are compiled once per shape; only the values differ.
      expect(await seqs({ actorId: 'bob' })).toEqual([5, 2]);
      expect(await seqs({ actorId: 'alice' })).toEqual([1]);
      const other = await database.repository.page(b, { actorId: 'alice' }, { limit: 50 });
      expect(other.map((event) => [event.tenant_id, event.seq])).toEqual([[b, 1]]);
      expect(await seqs({ actionPrefixes: ['auth.'] })).toEqual([5, 2, 1]);
      expect(await seqs({ actionPrefixes: ['storage.'] })).toEqual([4, 3]);
      expect(await seqs({ actionPrefixes: ['auth.login.'] })).toEqual([2, 1]);
      expect(await seqs({ actionPrefixes: ['auth.account.'] })).toEqual([5]);
      expect(await seqs({ since: day(3) })).toEqual([6, 5, 4, 3]);
      expect(await seqs({ since: day(5) })).toEqual([6, 5]);
    });

    it("never returns another tenant's events", async () => {
      const events = await database.repository.page(a, { actorId: 'alice' }, { limit: 50 });
      expect(events.map((event) => event.tenant_id)).toEqual([a]);
    });

    it('an export holds what a page without a limit holds, for each filter, position and order', async () => {
      const filters: Parameters<Database['repository']['page']>[1][] = [
        {},
        { actorId: 'alice' },
        { actorId: 'bob', status: 'failure' },
        { objectType: 'workflow', objectId: 'w1' },
        { requestId: 'r1' },
        { actions: ['auth.login.failure'] },
        { actionPrefixes: ['auth.login.'] },
        { actions: ['storage.file.deleted'], actionPrefixes: ['auth.', 'auth.login.'] },
        { since: day(2), until: day(5) },
        { since: day(7) },
      ];
      const positions = [{}, { beforeSeq: 5 }, { order: 'asc', afterSeq: 2 }] as const;
      for (const filter of filters) {
        for (const position of positions) {
          const page = await database.repository.page(a, filter, { limit: 50, ...position });
          expect((await exported(database.repository, a, filter, position)).events).toEqual(page);
        }
      }
    });
  });
});

describe('repository on postgres, concurrently', () => {
  let url: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
  });
  afterAll(async () => drop?.());

  /** Runs `use` with `count` databases open on pools of their own, then closes them. */
  const usingWriters = async (count: number, use: (writers: Database[]) => Promise<void>) => {
    const writers = await Promise.all(
      Array.from({ length: count }, () => openDatabase({ kind: 'postgres', url })),
    );
    try {
      await use(writers);
    } finally {
      await Promise.all(writers.map((writer) => writer.close()));
    }
  };
  /** The seqs of what the appends returned, lowest first. */
  const sortedSeqs = (entries: Array<{ event: { seq: number } }>) =>
    entries.map((entry) => entry.event.seq).sort((x, y) => x - y);

  it('writers of one tenant on separate connections get gapless seqs in commit order', async () => {
    await usingWriters(6, async (writers) => {
      const a = `busy-${randomUUID()}`;
      const appended = await Promise.all(
        writers.flatMap((writer) =>
          Array.from({ length: 20 }, () => writer.repository.append(a, [newEvent(a), newEvent(a)])),
        ),
      );
      const seqs = sortedSeqs(appended.flat());
      expect(seqs).toEqual(Array.from({ length: 240 }, (_, i) => i + 1));
      // Each batch holds consecutive seqs: one lock per batch, not per event.
      for (const batch of appended) expect((batch[1]?.event.seq ?? 0) - (batch[0]?.event.seq ?? 0)).toBe(1);
    });
  });

  it('writers of one event at a time and of batches share the head row: gapless seqs', async () => {
    await usingWriters(6, async (writers) => {
      const a = `mixed-${randomUUID()}`;
      const appended = await Promise.all(
        writers.flatMap((writer) =>
          Array.from({ length: 20 }, (_, call) =>
            writer.repository.appendGenerated(call % 2 === 0 ? [newEvent(a)] : [newEvent(a), newEvent(a)]),
          ),
        ),
      );
      const seqs = sortedSeqs(appended.flat());
      expect(seqs).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));
      const stored = await writers[0]?.repository.page(a, {}, { limit: 200 });
      expect(stored?.map((event) => event.seq)).toEqual(seqs.toReversed());
    });
  });

  it('writers of several tenants each, in crossing orders, neither deadlock nor leave gaps', async () => {
    await usingWriters(6, async (writers) => {
      const tenants = Array.from({ length: 4 }, (_, n) => `cross-${n}-${randomUUID()}`);
      // Each call names the tenants in another order; head rows must still be locked in one order.
      const appended = await Promise.all(
        writers.flatMap((writer, w) =>
          Array.from({ length: 15 }, (_, call) => {
            const turn = (w + call) % tenants.length;
            const rotated = [...tenants.slice(turn), ...tenants.slice(0, turn)];
            const order = call % 2 === 0 ? rotated : rotated.reverse();
            return writer.repository.appendGenerated(
              order.flatMap((tenantId) => [newEvent(tenantId), newEvent(tenantId)]),
            );
          }),
        ),
      );
      for (const tenantId of tenants) {
        const seqs = sortedSeqs(appended.flat().filter((entry) => entry.event.tenant_id === tenantId));
        expect(seqs).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));
      }
    });
  });

  it('an unlocked append skips a tenant whose head row another session holds, and waits for nothing', async () => {
    await usingWriters(1, async ([writer]) => {
      const held = `held-${randomUUID()}`;
      const free = `free-${randomUUID()}`;
      await writer?.repository.append(held, [newEvent(held)]);
      await writer?.repository.append(free, [newEvent(free)]);
      const holder = await writer?.db.connection().execute(async (connection) => {
        await sql`begin`.execute(connection);
        await sql`select 1 from activity_tenants where tenant_id = ${held} for update`.execute(connection);
        const appended = await writer.repository.appendUnlocked([newEvent(held), newEvent(free)]);
        const alone = await writer.repository.appendUnlocked([newEvent(held)]);
        await sql`commit`.execute(connection);
        return { appended, alone };
      });
      expect(holder?.appended.map((entry) => entry && [entry.event.tenant_id, entry.event.seq])).toEqual([
        undefined,
        [free, 2],
      ]);
      expect(holder?.alone).toEqual([undefined]);
      const [after] = (await writer?.repository.appendUnlocked([newEvent(held)])) ?? [];
      expect(after?.event.seq).toBe(2);
    });
  });

  it('unlocked and waiting writers of several tenants, racing, store every event once with no gap', async () => {
    await usingWriters(6, async (writers) => {
      const tenants = Array.from({ length: 3 }, (_, n) => `race-${n}-${randomUUID()}`);
      const appended = await Promise.all(
        writers.flatMap((writer, w) =>
          Array.from({ length: 15 }, async (_, call) => {
            const events = tenants.flatMap((tenantId) => [newEvent(tenantId), newEvent(tenantId)]);
            if ((w + call) % 2 === 0) return writer.repository.appendGenerated(events);
            const entries = await writer.repository.appendUnlocked(events);
            // What was skipped is appended as the service hands it on: waiting, per tenant.
            const skipped = events.filter((_, index) => entries[index] === undefined);
            const later = await Promise.all(
              tenants.map((tenantId) =>
                writer.repository.appendGenerated(skipped.filter((event) => event.tenant_id === tenantId)),
              ),
            );
            return [...entries.filter((entry) => entry !== undefined), ...later.flat()];
          }),
        ),
      );
      for (const tenantId of tenants) {
        const seqs = sortedSeqs(appended.flat().filter((entry) => entry.event.tenant_id === tenantId));
        expect(seqs).toEqual(Array.from({ length: 180 }, (_, i) => i + 1));
      }
    });
  });

  it('concurrent retries of one id store it once', async () => {
    await usingWriters(4, async (writers) => {
      const a = `retry-${randomUUID()}`;
      const event = newEvent(a);
      const results = await Promise.all(
        writers.flatMap((writer) => [1, 2, 3].map(() => writer.repository.append(a, [event]))),
      );
      expect(results.filter(([entry]) => entry?.duplicate === false)).toHaveLength(1);
      expect(new Set(results.map(([entry]) => entry?.event.seq))).toEqual(new Set([1]));
      const head = await writers[0]?.repository.append(a, [newEvent(a)]);
      expect(head?.[0]?.event.seq).toBe(2);
    });
  });
});

// PGlite plans each statement for the values it is given (its statements are never
// prepared), so only PostgreSQL can cache a plan made for no value in particular.
describe('repository on postgres, pages of a busy value', () => {
  let database: Database;
  let dispose: () => Promise<void>;
  beforeAll(async () => {
    ({ database, dispose } = await openTestStore('postgres'));
  });
  afterAll(async () => dispose?.());

  it('reads a page of a busy object in index order, never every event of it then sorted', async () => {
    const a = `busy-object-${randomUUID()}`;
    // Half the events are of one object, the rest of objects seen once: an average
    // object has about one event, which is what a plan made without the value assumes.
    for (let batch = 0; batch < 3; batch++) {
      const events = Array.from({ length: 1000 }, (_, i) =>
        newEvent(a, { object_type: 'doc', object_id: i % 2 === 0 ? 'busy' : `doc-${batch}-${i}` }),
      );
      await database.repository.append(a, events);
    }
    await sql`analyze activity_events`.execute(database.db);
    // A plan made once for any value, as PostgreSQL caches for a prepared page, on one of
    // the connections the tool reads pages on (their settings are what is being tested).
    const plan = await database.pages.connection().execute(async (connection) => {
      await sql`set plan_cache_mode = force_generic_plan`.execute(connection);
      await sql
        .raw(`prepare busy_page(text, text) as select * from activity_events
          where tenant_id = $1 and object_id = $2 order by seq desc limit 51`)
        .execute(connection);
      try {
        const { rows } = await sql<Record<string, unknown>>`explain (format json)
          execute busy_page(${sql.lit(a)}, 'busy')`.execute(connection);
        return planValues(rows[0]?.['QUERY PLAN'], 'Node Type');
      } finally {
        await sql`deallocate busy_page`.execute(connection);
        await sql`reset plan_cache_mode`.execute(connection);
      }
    });
    expect(plan).toContain('Merge Append');
    expect(plan).not.toContain('Sort');
    const page = await database.repository.page(a, { objectId: 'busy' }, { limit: 3 });
    expect(page.map((event) => event.seq)).toEqual([2999, 2997, 2995]);
  });
});

describe('repository on postgres, a time window', () => {
  let url: string;
  let drop: () => Promise<void>;
  let pool: pg.Pool;
  const statements: CompiledQuery[] = [];
  let repository: KyselyActivityRepository;
  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    pool = new pg.Pool({ connectionString: url });
    const db = new Kysely<StoreSchema>({
      dialect: new PostgresDialect({ pool }),
      log: (event) => {
        if (event.level === 'query') statements.push(event.query);
      },
    });
    repository = new KyselyActivityRepository(db, 'the test database');
  });
  afterAll(async () => {
    await pool?.end();
    await drop?.();
  });

  it('reads only the months a window covers, not every month of the tenant', async () => {
    const a = `window-${randomUUID()}`;
    await pool.query("select activity_ensure_partitions('2025-01-01', '2025-03-31')");
    await repository.append(a, [newEvent(a), newEvent(a)], {
      createdAt: new Date('2025-01-10T00:00:00.000Z'),
    });
    await repository.append(a, [newEvent(a), newEvent(a)], {
      createdAt: new Date('2025-03-10T00:00:00.000Z'),
    });
    statements.length = 0;
    const page = await repository.page(
      a,
      { since: new Date('2025-03-01T00:00:00.000Z'), until: new Date('2025-04-01T00:00:00.000Z') },
      { limit: 10 },
    );
    expect(page.map((event) => event.seq)).toEqual([4, 3]);
    const [statement] = statements;
    if (!statement) throw new Error('the page ran no statement');
    const { rows } = await pool.query({
      text: `explain (format json) ${statement.sql}`,
      values: [...statement.parameters],
    });
    // The window's bounds are found on the created_at index, which may look in any
    // earlier month; the page itself is read on the primary key of March alone.
    const scanned = planValues(rows[0]?.['QUERY PLAN'], 'Index Name').filter((index) =>
      index.endsWith('_pkey'),
    );
    expect(scanned).toEqual(['activity_events_y2025m03_pkey']);
  });
});

describe('repository on postgres, exports', () => {
  let url: string;
  let drop: () => Promise<void>;
  let database: Database;
  beforeAll(async () => {
    ({ url, drop } = await createTestDatabase());
    database = await openDatabase({ kind: 'postgres', url });
  });
  afterAll(async () => {
    await database?.close();
    await drop?.();
  });
  const at = new Date('2026-01-01T00:00:00.000Z');

  it('a filter value goes into the statement as a literal, never as SQL', async () => {
    // COPY takes no parameters: each value is written into the statement, escaped.
    const a = `literal-${randomUUID()}`;
    const values = ["x' or '1'='1", "back\\' or true --", '$1', "e'\\x41'", 'plain'];
    await database.repository.append(
      a,
      values.map((objectId) => newEvent(a, { object_id: objectId })),
      { createdAt: at },
    );
    for (const objectId of values) {
      const { events } = await exported(database.repository, a, { objectId }, {});
      expect(events.map((event) => (event as { object_id: string }).object_id)).toEqual([objectId]);
    }
  });

  it("an export over COPY writes the bytes of the database's own JSON, every character escaped alike", async () => {
    // The JSON that PGlite's export builds in SQL, on the same rows: the two stores print the same bytes.
    const pool = new pg.Pool({ connectionString: url });
    const inSql = new KyselyActivityRepository(
      new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool }) }),
      'the test database',
    );
    try {
      const everyCharacter = `${Array.from({ length: 0x7f }, (_, code) => String.fromCharCode(code + 1)).join('')} é 🎉 \u2028 \\N`;
      const a = `bytes-${randomUUID()}${everyCharacter}`;
      await database.repository.append(
        a,
        [
          newEvent(a, {
            action: everyCharacter,
            actor_id: everyCharacter,
            object_type: everyCharacter,
            object_id: everyCharacter,
            source: everyCharacter,
            request_id: everyCharacter,
            ip_hash: everyCharacter,
            user_agent: everyCharacter,
            metadata: { [everyCharacter]: [everyCharacter, 1e21, -0.5, null, { '': {} }] },
          }),
          newEvent(a, { actor_id: null, object_type: null, object_id: null, source: null, request_id: null }),
        ],
        { createdAt: at },
      );
      const bytes = async (repository: Database['repository']) => {
        const chunks: Uint8Array[] = [];
        for await (const chunk of repository.exportJson(a, {}, {})) chunks.push(chunk);
        return Buffer.concat(chunks).toString('utf8');
      };
      const copied = await bytes(database.repository);
      expect(copied.split('\n')).toHaveLength(3);
      expect(copied).toBe(await bytes(inSql));
    } finally {
      await pool.end();
    }
  });

  it('a reader that leaves an export early ends its statement; the database still answers', async () => {
    const a = `early-${randomUUID()}`;
    await database.repository.appendGenerated(
      Array.from({ length: 2000 }, () => newEvent(a, { user_agent: 'x'.repeat(400) })),
      { createdAt: at },
    );
    for await (const chunk of database.repository.exportJson(a, {}, {})) {
      expect(chunk.length).toBeGreaterThan(0);
      break;
    }
    const observer = new pg.Client({ connectionString: url });
    await observer.connect();
    try {
      await expect
        .poll(async () => {
          const { rows } = await observer.query(
            "select count(*)::int as copying from pg_stat_activity where query like 'copy (%' and pid <> pg_backend_pid()",
          );
          return rows[0]?.copying;
        })
        .toBe(0);
    } finally {
      await observer.end();
    }
    const page = await database.repository.page(a, {}, { limit: 1 });
    expect(page.map((event) => event.seq)).toEqual([2000]);
  });

  it('closing the database closes the connection of an export that read no page', async () => {
    const sockets = () => process.getActiveResourcesInfo().filter((name) => name === 'TCPSocketWrap').length;
    const before = sockets();
    const own = await openDatabase({ kind: 'postgres', url });
    const { events } = await exported(own.repository, `nobody-${randomUUID()}`, {}, {});
    expect(events).toEqual([]);
    await own.close();
    // pg's pool would keep the connection for its idle timeout (10 s) and the process alive.
    await expect.poll(sockets).toBe(before);
  });
});

/** Every value of `key` (a node's type, the index it reads…) in an `explain (format json)` plan, given as text or parsed. */
function planValues(plan: unknown, key: 'Node Type' | 'Index Name'): string[] {
  const values: string[] = [];
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      for (const [name, value] of Object.entries(node)) {
        if (name === key) values.push(String(value));
        else visit(value);
      }
    }
  };
  visit(typeof plan === 'string' ? JSON.parse(plan) : plan);
  return values;
}
