import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ActivityEvent } from '../../src/domain/event.js';
import { checkpointSigner } from '../../src/integrity/checkpoint-signer.js';
import { deriveKeys } from '../../src/privacy/keys.js';
import { createRegistry } from '../../src/registry/registry.js';
import { ActivityService, type ImportItem } from '../../src/service/activity-service.js';
import type { AuditActor } from '../../src/service/audit-trail.js';
import { IntegrityService } from '../../src/service/integrity-service.js';
import { RetentionService } from '../../src/service/retention-service.js';
import type { Database } from '../../src/store/open-database.js';
import { openTestStore, storeKinds } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';
import { activityErrorFromAsync } from '../unit/thrown.js';

const dayMs = 86_400_000;
const alice: AuditActor = { type: 'user', id: 'alice', via: 'cli' };

async function* items(values: unknown[]): AsyncGenerator<ImportItem> {
  for (const [index, value] of values.entries()) yield { line: index + 1, value };
}

describe.each(storeKinds)('the log accounts for itself on %s', (kind) => {
  let database: Database;
  let dispose: () => Promise<void>;
  let service: ActivityService;
  let retention: RetentionService;

  beforeAll(async () => {
    ({ database, dispose } = await openTestStore(kind));
    service = new ActivityService({
      repository: database.repository,
      registry: createRegistry(),
      keys: deriveKeys('x'.repeat(32)),
    });
    retention = new RetentionService({
      events: database.repository,
      retention: database.retention,
      audit: service.audit,
    });
  });
  afterAll(async () => dispose?.());

  const tenant = () => `audit-${randomUUID()}`;
  /** The tenant's own events, oldest first: those a read leaves out included. */
  /** The tool's own events of the tenant but reads (which the test's own reads add), oldest first. */
  const ownEvents = async (tenantId: string) =>
    (
      await database.repository.page(
        tenantId,
        { actionPrefixes: ['activity.'] },
        { limit: 1000, order: 'asc' },
      )
    ).filter((event) => event.action !== 'activity.events.read');
  /** The reads recorded of the tenant, oldest first, once those in the background are written. */
  const readEvents = async (tenantId: string) => {
    await service.audit.flush();
    return database.repository.page(
      tenantId,
      { actions: ['activity.events.read'] },
      { limit: 1000, order: 'asc' },
    );
  };
  const allEvents = (tenantId: string) =>
    database.repository.page(tenantId, {}, { limit: 1000, order: 'asc' });

  describe('the activity.* namespace is reserved', () => {
    const reserved = (tenantId: string) => ({
      tenant_id: tenantId,
      action: 'activity.hold.lifted',
      metadata: { placed_at: '2026-01-01T00:00:00.000Z' },
    });

    it('refuses it from record, a batch and an import, and stores nothing', async () => {
      const a = tenant();
      const single = await activityErrorFromAsync(service.record(reserved(a)));
      expect(single.code).toBe('ACTION_RESERVED');
      expect(single.httpStatus).toBe(422);
      expect(single.exitCode).toBe(2);
      expect(single.issues).toEqual([{ path: 'action', message: expect.stringMatching(/reserved/) }]);
      const batch = await activityErrorFromAsync(
        service.recordBatch([{ tenant_id: a, action: 'auth.login.success' }, reserved(a)]),
      );
      expect(batch.issues.map((issue) => issue.path)).toEqual(['[1].action']);
      const imported = await service.recordMany(
        items([reserved(a), { tenant_id: a, action: 'auth.logout.completed' }]),
      );
      expect(imported.rejected).toEqual([{ line: 1, code: 'ACTION_RESERVED', message: expect.any(String) }]);
      expect((await allEvents(a)).map((event) => event.action)).toEqual(['auth.logout.completed']);
    });

    it('lists the reserved actions as such', () => {
      const described = service.registry.describe();
      const reservedNames = described.filter((action) => action.reserved).map((action) => action.name);
      expect(reservedNames).toContain('activity.events.read');
      expect(reservedNames.every((name) => name.startsWith('activity.'))).toBe(true);
      expect(
        described.filter((action) => !action.reserved).every((a) => !a.name.startsWith('activity.')),
      ).toBe(true);
    });
  });

  describe('retention and holds', () => {
    it('records each change of a policy once, with what it replaced and who made it', async () => {
      const a = tenant();
      await retention.setPolicy(a, 30, alice);
      await retention.setPolicy(a, 60, { type: 'user', id: 'bob', via: 'cli' });
      await retention.setPolicy(a, 60, alice); // the same again: nothing changed, nothing recorded
      expect(await retention.clearPolicy(a, alice)).toBe(true);
      expect(await retention.clearPolicy(a, alice)).toBe(false);
      const events = await ownEvents(a);
      expect(events.map((event) => [event.action, event.actor_id, event.metadata])).toEqual([
        ['activity.retention.changed', 'alice', { retention_days: 30, previous_days: null }],
        ['activity.retention.changed', 'bob', { retention_days: 60, previous_days: 30 }],
        ['activity.retention.changed', 'alice', { retention_days: null, previous_days: 60 }],
      ]);
      expect(events.every((event) => event.source === 'cli' && event.actor_type === 'user')).toBe(true);
    });

    it('records a hold placed, its reason changed, and lifted; nothing for a tenant that was not on hold', async () => {
      const a = tenant();
      const placed = await retention.placeHold(a, 'case 7', alice);
      await retention.placeHold(a, 'case 8', alice);
      // Placed again with the same reason, or with none: nothing changed, nothing recorded.
      await retention.placeHold(a, 'case 8', alice);
      await retention.placeHold(a, null, alice);
      expect(await retention.releaseHold(a, alice)).toBe(true);
      expect(await retention.releaseHold(a, alice)).toBe(false);
      expect((await ownEvents(a)).map((event) => [event.action, event.metadata])).toEqual([
        ['activity.hold.placed', { reason: 'case 7', placed_at: placed.placed_at }],
        ['activity.hold.placed', { reason: 'case 8', placed_at: placed.placed_at }],
        ['activity.hold.lifted', { placed_at: placed.placed_at }],
      ]);
    });

    it('a library call names no one: the system', async () => {
      const a = tenant();
      await retention.setPolicy(a, 7);
      expect((await ownEvents(a)).map((event) => [event.actor_type, event.actor_id, event.source])).toEqual([
        ['system', null, 'library'],
      ]);
    });
  });

  describe('reads leave them out unless an action filter names them', () => {
    let a: string;
    beforeAll(async () => {
      a = tenant();
      await service.record({ tenant_id: a, action: 'auth.login.success' });
      await retention.placeHold(a, null, alice);
      await service.record({ tenant_id: a, action: 'auth.logout.completed' });
    });
    const actions = (events: readonly ActivityEvent[]) => events.map((event) => event.action);

    it('a page, a whole listing and an export', async () => {
      expect(actions((await service.query(a, {})).data)).toEqual([
        'auth.logout.completed',
        'auth.login.success',
      ]);
      const all: ActivityEvent[] = [];
      for await (const event of service.queryAll(a, {})) all.push(event);
      expect(actions(all)).toEqual(['auth.logout.completed', 'auth.login.success']);
      let text = '';
      for await (const chunk of service.queryAllJson(a, {})) text += Buffer.from(chunk).toString();
      expect(
        text
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line).action),
      ).toEqual(['auth.logout.completed', 'auth.login.success']);
    });

    it('named by a prefix, an exact action or in a list', async () => {
      const named = async (action: string) => actions((await service.query(a, { action })).data);
      expect(await named('activity.hold.*')).toEqual(['activity.hold.placed']);
      expect(await named('activity.hold.placed')).toEqual(['activity.hold.placed']);
      expect(await named('auth.logout.*,activity.hold.*')).toEqual([
        'auth.logout.completed',
        'activity.hold.placed',
      ]);
      await service.audit.flush();
      // The reads just made are events of the log too: named by the namespace's prefix.
      expect(await named('activity.*')).toEqual(
        expect.arrayContaining(['activity.events.read', 'activity.hold.placed']),
      );
      let text = '';
      for await (const chunk of service.queryAllJson(a, { action: 'activity.hold.*' }))
        text += Buffer.from(chunk);
      expect(
        text
          .trim()
          .split('\n')
          .map((line) => JSON.parse(line).action),
      ).toEqual(['activity.hold.placed']);
    });

    it("`*` is every event, the tool's own included: what a verifier recomputing the tree reads", async () => {
      const every = (await service.query(a, { action: '*', limit: 1000 })).data.reverse();
      expect(every.map((event) => event.seq)).toEqual(every.map((_, index) => index + 1));
      expect(actions(every)).toEqual(expect.arrayContaining(['auth.login.success', 'activity.hold.placed']));
      // Beside anything else, `*` still means every event.
      expect(actions((await service.query(a, { action: 'auth.login.*,*', limit: 1000 })).data)).toEqual(
        expect.arrayContaining(['activity.hold.placed', 'auth.logout.completed']),
      );
    });

    it('they keep their place in the seqs: nothing else is renumbered', async () => {
      const unread = (await allEvents(a)).filter((event) => event.action !== 'activity.events.read');
      expect(unread.map((event) => [event.seq, event.action])).toEqual([
        [1, 'auth.login.success'],
        [2, 'activity.hold.placed'],
        [3, 'auth.logout.completed'],
      ]);
    });
  });

  describe('reads', () => {
    const reader: AuditActor = { type: 'service_account', id: 'svc-reports', via: 'api', ip: '203.0.113.9' };
    let a: string;
    beforeAll(async () => {
      a = tenant();
      for (let i = 0; i < 5; i++)
        await service.record({ tenant_id: a, action: 'auth.login.success', actor_id: `u_${i}` });
    });

    it('one event per page, with who, through what, the filters and how many it returned', async () => {
      const before = (await readEvents(a)).length;
      const first = await service.query(
        a,
        { limit: 2, actor_id: 'u_1', since: '2020-01-01T00:00:00Z' },
        reader,
      );
      const all = await service.query(a, { limit: 2 }, reader);
      await service.query(a, { limit: 2, cursor: all.next_cursor as string }, reader);
      const reads = (await readEvents(a)).slice(before);
      expect(reads.map((event) => [event.actor_type, event.actor_id, event.source, event.metadata])).toEqual([
        [
          'service_account',
          'svc-reports',
          'api',
          {
            kind: 'page',
            filters: { actor_id: 'u_1', since: '2020-01-01T00:00:00.000Z' },
            cursor: false,
            returned: first.data.length,
          },
        ],
        ['service_account', 'svc-reports', 'api', { kind: 'page', filters: {}, cursor: false, returned: 2 }],
        ['service_account', 'svc-reports', 'api', { kind: 'page', filters: {}, cursor: true, returned: 2 }],
      ]);
      expect(reads[0]?.ip_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(reads)).not.toContain('203.0.113.9');
    });

    it('one event per listing, counting what the reader took, even when it stopped early', async () => {
      const before = (await readEvents(a)).length;
      let taken = 0;
      for await (const _ of service.queryAll(a, {}, reader)) if (++taken === 3) break;
      let lines = 0;
      for await (const chunk of service.queryAllJson(a, { action: 'auth.*' }, reader)) {
        lines += Buffer.from(chunk).toString().split('\n').length - 1;
      }
      const reads = (await readEvents(a)).slice(before);
      expect(reads.map((event) => event.metadata)).toEqual([
        { kind: 'all', filters: {}, cursor: false, returned: 3 },
        { kind: 'all', filters: { action: ['auth.*'] }, cursor: false, returned: lines },
      ]);
      expect(lines).toBe(5);
    });

    it("a stream's backlog is part of the stream: not a read", async () => {
      const before = (await readEvents(a)).length;
      const { events, afterSeq } = await service.backlog(a, {}, 2);
      expect(events.map((event) => event.actor_id)).toEqual(['u_3', 'u_4']);
      expect(afterSeq).toBe(events.at(-1)?.seq);
      expect(await readEvents(a)).toHaveLength(before);
    });

    it('ACTIVITY_AUDIT_READS=false records no read, and still records the rest', async () => {
      const quiet = new ActivityService({
        repository: database.repository,
        registry: createRegistry(),
        keys: deriveKeys('x'.repeat(32)),
        auditReads: false,
      });
      const b = tenant();
      await service.record({ tenant_id: b, action: 'auth.login.success' });
      await quiet.query(b, {}, reader);
      for await (const _ of quiet.queryAll(b, {}, reader));
      quiet.audit.streamOpened(reader, b, {}, 0)(1);
      await new RetentionService({
        events: database.repository,
        retention: database.retention,
        audit: quiet.audit,
      }).placeHold(b, null, alice);
      await quiet.audit.flush();
      expect((await ownEvents(b)).map((event) => event.action)).toEqual(['activity.hold.placed']);
      expect(await readEvents(b)).toEqual([]);
    });
  });

  describe('checkpoints and exports', () => {
    const signer = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey);
    let integrity: IntegrityService;
    beforeAll(() => {
      integrity = new IntegrityService({
        events: database.repository,
        integrity: database.integrity,
        signer: async () => signer,
        audit: service.audit,
      });
    });

    it('records each checkpoint once in its tenant’s log, and does not sign a tree for that event alone', async () => {
      const a = tenant();
      for (let i = 0; i < 2; i++) await service.record({ tenant_id: a, action: 'auth.login.success' });
      const [first] = await integrity.checkpoint({ tenantId: a }, alice);
      expect(first?.size).toBe(2);
      const recorded = () =>
        ownEvents(a).then((events) =>
          events.map((event) => [event.seq, event.actor_id, event.source, event.metadata]),
        );
      const rootOf = (checkpoint: typeof first) =>
        Buffer.from(checkpoint?.rootHash as Uint8Array).toString('base64');
      expect(await recorded()).toEqual([[3, 'alice', 'cli', { tree_size: 2, root_hash: rootOf(first) }]]);
      // Its own event is all that is new: neither this tenant's run nor every tenant's signs it.
      await expect(integrity.checkpoint({ tenantId: a }, alice)).resolves.toEqual([]);
      expect((await integrity.checkpoint({}, alice)).map((each) => each.tenantId)).not.toContain(a);
      await service.record({ tenant_id: a, action: 'auth.login.success' });
      const [second] = await integrity
        .checkpoint({}, alice)
        .then((signed) => signed.filter((each) => each.tenantId === a));
      expect(second?.size).toBe(4);
      expect(await recorded()).toEqual([
        [3, 'alice', 'cli', { tree_size: 2, root_hash: rootOf(first) }],
        [5, 'alice', 'cli', { tree_size: 4, root_hash: rootOf(second) }],
      ]);
      const report = await integrity.verify([signer.verifier], { tenantId: a });
      expect([report.ok, report.tenants[0]?.verified]).toEqual([true, 5]);
    });

    it('records a bundle once its events have all been read, with its range', async () => {
      const a = tenant();
      for (let i = 0; i < 3; i++) await service.record({ tenant_id: a, action: 'auth.login.success' });
      await integrity.checkpoint({ tenantId: a });
      const bundle = await integrity.bundle(a, {}, alice);
      const read: number[] = [];
      for await (const event of bundle.events) read.push(event.seq);
      expect(read).toEqual([1, 2, 3]);
      expect(
        (await ownEvents(a)).filter((e) => e.action === 'activity.events.exported').map((e) => e.metadata),
      ).toEqual([{ from_seq: 1, through_seq: 3, events: 3, tree_size: 3 }]);
    });
  });

  describe('purge', () => {
    const cutoff = new Date('2026-06-01T00:00:00.000Z');
    const options = {
      now: new Date(cutoff.getTime() + dayMs),
      defaultRetentionMs: dayMs,
      batchSize: 2,
      dryRun: false,
    };

    async function seedOld(tenantId: string, count: number) {
      await database.repository.append(
        tenantId,
        Array.from({ length: count }, () => newEvent(tenantId)),
        { createdAt: new Date(cutoff.getTime() - 10 * dayMs) },
      );
    }
    const purgedEvents = async (tenantId: string) =>
      (await service.query(tenantId, { action: 'activity.events.purged' })).data.reverse();

    it('records one event per tenant per run, with the range, the rule, the cutoff and the count', async () => {
      const a = tenant();
      const b = tenant();
      await seedOld(a, 5);
      await seedOld(b, 3);
      await retention.setPolicy(b, 3, alice);
      for (const tenantId of [a, b]) await retention.purge({ ...options, tenantId }, undefined, alice);
      expect((await purgedEvents(a)).map((event) => [event.actor_id, event.source, event.metadata])).toEqual([
        [
          'alice',
          'cli',
          {
            from_seq: 1,
            through_seq: 5,
            deleted: 5,
            rule: 'default',
            cutoff: cutoff.toISOString(),
            purged_at: options.now.toISOString(),
          },
        ],
      ]);
      expect((await purgedEvents(b)).map((event) => event.metadata)).toEqual([
        expect.objectContaining({ from_seq: 1, through_seq: 3, deleted: 3, rule: 'policy' }),
      ]);
      // Run again: nothing left to delete, nothing more recorded.
      await retention.purge({ ...options, tenantId: a }, undefined, alice);
      expect(await purgedEvents(a)).toHaveLength(1);
    });

    it('a run killed before it recorded its event leaves it to the next run, which records both', async () => {
      const a = tenant();
      await seedOld(a, 6);
      // What a run killed after two batches leaves: the rows gone, its record, no event.
      const killedAt = new Date(options.now.getTime() - 60_000);
      for (const fromSeq of [1, 3]) {
        await database.retention.deleteExpired(a, cutoff, fromSeq, 2, { at: killedAt, rule: 'default' });
      }
      expect(await purgedEvents(a)).toEqual([]);
      await retention.purge({ ...options, tenantId: a }, undefined, alice);
      expect((await purgedEvents(a)).map((event) => event.metadata)).toEqual([
        expect.objectContaining({
          from_seq: 1,
          through_seq: 4,
          deleted: 4,
          purged_at: killedAt.toISOString(),
        }),
        expect.objectContaining({
          from_seq: 5,
          through_seq: 6,
          deleted: 2,
          purged_at: options.now.toISOString(),
        }),
      ]);
    });

    it('an event recorded whose record was not marked (killed in between) is not recorded twice', async () => {
      const a = tenant();
      await seedOld(a, 2);
      await retention.purge({ ...options, tenantId: a }, undefined, alice);
      await sql`update activity_purges set recorded = false where tenant_id = ${a}`.execute(database.db);
      await retention.purge({ ...options, tenantId: a }, undefined, alice);
      const events = await purgedEvents(a);
      expect(events).toHaveLength(1);
      // Under the id its record keeps, chosen at random before it was written: no caller
      // could have taken it first.
      const { rows: ids } = await sql<{ event_id: string }>`
        select event_id from activity_purges where tenant_id = ${a}`.execute(database.db);
      expect(ids.map((row) => row.event_id)).toEqual([events[0]?.id]);
      const { rows } = await sql<{ recorded: boolean }>`
        select recorded from activity_purges where tenant_id = ${a}`.execute(database.db);
      expect(rows).toEqual([{ recorded: true }]);
    });

    it('counts every event purged in the database, for any process to report', async () => {
      const before = await database.retention.eventsPurged();
      const a = tenant();
      await seedOld(a, 7);
      await retention.purge({ ...options, tenantId: a }, undefined, alice);
      expect((await database.retention.eventsPurged()) - before).toBe(7);
    });

    it('a dry run records nothing', async () => {
      const a = tenant();
      await seedOld(a, 2);
      await retention.purge({ ...options, tenantId: a, dryRun: true }, undefined, alice);
      expect(await ownEvents(a)).toEqual([]);
    });
  });
});
