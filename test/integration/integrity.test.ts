import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyBundle } from '../../src/integrity/bundle.js';
import { parseCheckpointText } from '../../src/integrity/checkpoint.js';
import { checkpointSigner } from '../../src/integrity/checkpoint-signer.js';
import { leafOf } from '../../src/integrity/leaf.js';
import {
  consistencyProof,
  leafHash,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from '../../src/integrity/merkle.js';
import { createRegistry } from '../../src/registry/registry.js';
import { ownEventsTrail } from '../../src/service/audit-trail.js';
import { signCheckpoints } from '../../src/service/checkpoint-service.js';
import { IntegrityService } from '../../src/service/integrity-service.js';
import { purgeExpired } from '../../src/service/purge.js';
import type { Database } from '../../src/store/open-database.js';
import { openTestStore, storeKinds } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

const signer = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey);

function integrityOf(database: Database) {
  return new IntegrityService({
    events: database.repository,
    integrity: database.integrity,
    signer: async () => signer,
    audit: ownEventsTrail(database.repository, createRegistry(), { auditReads: true }),
  });
}

async function allEvents(database: Database, tenant: string) {
  return database.repository.page(tenant, {}, { limit: 10_000, order: 'asc' });
}

describe.each(storeKinds)('the tree of each tenant on %s', (kind) => {
  let database: Database;
  let dispose: () => Promise<void>;
  let integrity: IntegrityService;

  beforeAll(async () => {
    ({ database, dispose } = await openTestStore(kind));
    integrity = integrityOf(database);
  });
  afterAll(async () => dispose?.());

  /** Appends events by every write path: one, batches, several tenants at once, checked ids, a transaction. */
  async function seed(tenant: string) {
    const other = `${tenant}-other`;
    await database.repository.append(tenant, [newEvent(tenant)]);
    await database.repository.append(tenant, [newEvent(tenant), newEvent(tenant), newEvent(tenant)]);
    await database.repository.appendGenerated([newEvent(tenant), newEvent(other), newEvent(tenant)]);
    await database.repository.appendGenerated([newEvent(tenant)]);
    await database.repository.appendUnlocked([newEvent(tenant), newEvent(other)]);
    await database.repository.appendAll([
      { tenantId: tenant, events: [newEvent(tenant), newEvent(tenant)] },
      { tenantId: other, events: [newEvent(other)] },
    ]);
    const generated = newEvent(tenant);
    await database.repository.append(tenant, [generated, newEvent(tenant)], {
      generatedIds: new Set([generated.id]),
    });
  }

  it('holds every event of every write path, its root the recomputed one', async () => {
    const tenant = `tree-${randomUUID()}`;
    await seed(tenant);
    const events = await allEvents(database, tenant);
    expect(events.map((event) => event.seq)).toEqual(events.map((_, index) => index + 1));
    const [checkpoint] = await integrity.checkpoint({ tenantId: tenant });
    expect(checkpoint?.size).toBe(events.length);
    const recomputed = treeHead(events.map((event) => leafHash(leafOf(event))));
    expect(Buffer.from(checkpoint?.rootHash as Uint8Array)).toEqual(Buffer.from(recomputed));
    expect((await integrity.verify([signer.verifier], { tenantId: tenant })).ok).toBe(true);
  });

  it('tells its progress against the seqs given, for one tenant and for all', async () => {
    const tenant = `progress-${kind}`;
    await database.repository.appendGenerated(Array.from({ length: 7 }, () => newEvent(tenant)));
    const calls: Array<[number, number]> = [];
    const report = await integrity.verify(undefined, {
      tenantId: tenant,
      onProgress: (events, total) => calls.push([events, total]),
    });
    expect(report.ok).toBe(true);
    expect(calls.at(-1)).toEqual([7, 7]);
    const all = await database.integrity.seqsGiven();
    expect(all).toBeGreaterThanOrEqual(7);
    const everyTenant: number[] = [];
    await integrity.verify(undefined, { onProgress: (_events, total) => everyTenant.push(total) });
    expect(new Set(everyTenant)).toEqual(new Set([all]));
  });

  it("computes a leaf hash inline in the append's plan, not by calling a function planned again each time", async () => {
    const { rows } = await sql<Record<string, string>>`explain (verbose, costs off)
      select activity_leaf_hash(''::bytea, ${1}::bigint, clock_timestamp())`.execute(database.db);
    const plan = rows.map((row) => Object.values(row).join('')).join('\n');
    expect(plan).toContain('sha256(');
    expect(plan).not.toContain('activity_leaf_hash(');
  });

  it('hands out inclusion and consistency proofs that verify against the signed roots', async () => {
    const tenant = `proofs-${randomUUID()}`;
    for (let round = 0; round < 3; round++) {
      await database.repository.appendGenerated(
        Array.from({ length: 5 + round * 4 }, () => newEvent(tenant)),
      );
      await integrity.checkpoint({ tenantId: tenant });
    }
    // Each checkpoint is followed by its own activity.checkpoint.signed event, in the tree.
    const events = (await allEvents(database, tenant)).slice(0, 29);
    const notes = await database.integrity.checkpoints(tenant);
    expect(notes.map((note) => note.treeSize)).toEqual([5, 5 + 1 + 9, 15 + 1 + 13]);
    expect(events.filter((event) => event.action === 'activity.checkpoint.signed')).toHaveLength(2);
    for (const event of events) {
      const proof = await integrity.proof(tenant, event.seq);
      const root = parseCheckpointText(proof.checkpoint).rootHash;
      const path = proof.proof.map((hash) => Buffer.from(hash, 'base64'));
      expect(verifyInclusion(event.seq - 1, 29, leafHash(leafOf(event)), path, root)).toBe(true);
    }
    const consistency = await integrity.consistency(tenant, 5, 29);
    const oldRoot = notes[0]?.rootHash as Uint8Array;
    const newRoot = notes[2]?.rootHash as Uint8Array;
    const proof = consistency.proof.map((hash) => Buffer.from(hash, 'base64'));
    expect(verifyConsistency(5, 29, proof, oldRoot, newRoot)).toBe(true);
    expect(proof).toEqual(
      consistencyProof(
        events.map((event) => leafHash(leafOf(event))),
        5,
      ).map((hash) => Buffer.from(hash)),
    );
  });

  it('keeps 8 concurrent writers of one tenant and of many in one tree each', async () => {
    const tenant = `writers-${randomUUID()}`;
    const tenants = Array.from({ length: 4 }, (_, index) => `${tenant}-${index}`);
    await Promise.all(
      Array.from({ length: 8 }, async (_, writer) => {
        for (let round = 0; round < 10; round++) {
          const target = writer % 2 === 0 ? tenant : (tenants[round % 4] as string);
          if (round % 3 === 0)
            await database.repository.appendGenerated([newEvent(target), newEvent(tenant)]);
          else await database.repository.append(target, [newEvent(target)]);
        }
      }),
    );
    for (const each of [tenant, ...tenants]) {
      const report = await integrity.verify([signer.verifier], { tenantId: each });
      expect(report.ok).toBe(true);
      const events = await allEvents(database, each);
      expect(report.tenants[0]?.verified).toBe(events.length);
      const [checkpoint] = await integrity.checkpoint({ tenantId: each });
      expect(Buffer.from(checkpoint?.rootHash as Uint8Array)).toEqual(
        Buffer.from(treeHead(events.map((event) => leafHash(leafOf(event))))),
      );
    }
  });

  it('signs checkpoints while 8 writers append, each the tree of the events it counts', async () => {
    const tenant = `sealing-${randomUUID()}`;
    let writing = true;
    const writers = Promise.all(
      Array.from({ length: 8 }, async (_, writer) => {
        for (let round = 0; round < 12; round++) {
          if (round % 3 === writer % 3)
            await database.repository.appendGenerated([newEvent(tenant), newEvent(tenant)]);
          else await database.repository.append(tenant, [newEvent(tenant)]);
        }
      }),
    ).finally(() => {
      writing = false;
    });
    const sealing = (async () => {
      let runs = 0;
      while (writing || runs < 3) {
        await integrity.checkpoint({ tenantId: tenant });
        runs++;
      }
    })();
    await Promise.all([writers, sealing]);
    await integrity.checkpoint({ tenantId: tenant });
    const events = await allEvents(database, tenant);
    const leaves = events.map((event) => leafHash(leafOf(event)));
    const checkpoints = await database.integrity.checkpoints(tenant);
    // The writers' events, and each checkpoint's own; the last checkpoint signed all but its own.
    const signedEvents = events.filter((event) => event.action === 'activity.checkpoint.signed');
    expect(leaves.length - signedEvents.length).toBe(8 * (4 * 2 + 8));
    expect(signedEvents.map((event) => event.metadata.tree_size)).toEqual(
      checkpoints.map((checkpoint) => checkpoint.treeSize),
    );
    expect(checkpoints.at(-1)?.treeSize).toBe(leaves.length - 1);
    for (const checkpoint of checkpoints) {
      expect(Buffer.from(checkpoint.rootHash)).toEqual(
        Buffer.from(treeHead(leaves.slice(0, checkpoint.treeSize))),
      );
    }
    expect((await integrity.verify([signer.verifier], { tenantId: tenant })).ok).toBe(true);
  });

  it('signs a tree another checkpoint run sealed past since its head was read', async () => {
    const tenant = `overtaken-${randomUUID()}`;
    await database.repository.appendGenerated(Array.from({ length: 12 }, () => newEvent(tenant)));
    await integrity.checkpoint({ tenantId: tenant });
    await database.repository.appendGenerated(Array.from({ length: 3 }, () => newEvent(tenant)));
    // This run read the head at 16 (12 events, the checkpoint's own, 3); another run
    // sealed up to 21 before this one sealed.
    const [read] = await database.integrity.uncheckpointed(undefined, 1, tenant);
    expect(read?.head.lastSeq).toBe(16);
    await database.repository.appendGenerated(Array.from({ length: 5 }, () => newEvent(tenant)));
    await database.integrity.seal([{ tenantId: tenant, through: 21 }]);
    const overtaken = new Proxy(database.integrity, {
      get: (target, key) =>
        key === 'uncheckpointed' ? async () => [read] : Reflect.get(target, key, target).bind(target),
    });
    const [signed] = await signCheckpoints(overtaken, signer, { tenantId: tenant });
    expect(signed?.size).toBe(16);
    const leaves = (await allEvents(database, tenant)).map((event) => leafHash(leafOf(event)));
    expect(Buffer.from(signed?.rootHash as Uint8Array)).toEqual(Buffer.from(treeHead(leaves.slice(0, 16))));
  });

  describe('purge keeps the tree', () => {
    const dayMs = 86_400_000;
    const now = new Date('2026-06-15T00:00:00.000Z');

    /**
     * Events a day apart from 2026-01-01, checkpointed every 7, then purged past 60 days.
     * The checkpoints are signed without recording them: their events would be stored
     * now, not on the days these events pretend to be.
     */
    async function purgedTenant(batchSize: number) {
      const tenant = `purged-${randomUUID()}`;
      for (let day = 0; day < 150; day += 1) {
        await database.repository.append(tenant, [newEvent(tenant)], {
          createdAt: new Date(Date.parse('2026-01-01T00:00:00.000Z') + day * dayMs),
        });
        if (day % 7 === 6) await signCheckpoints(database.integrity, signer, { tenantId: tenant });
      }
      const report = await purgeExpired(
        { events: database.repository, retention: database.retention, recordPurges: async () => {} },
        { now, defaultRetentionMs: 60 * dayMs, tenantId: tenant, batchSize, dryRun: false },
      );
      return { tenant, deleted: report.deleted };
    }

    it('verifies what is left, reports the purged range with its rule, and still proves against old checkpoints', async () => {
      const { tenant, deleted } = await purgedTenant(25);
      expect(deleted).toBe(105);
      const report = await integrity.verify([signer.verifier], { tenantId: tenant });
      expect(report.tenants[0]?.problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.tenants[0]).toMatchObject({
        verified: 45,
        purged: [{ from_seq: 1, through_seq: 105, rule: 'default', purged_at: now.toISOString() }],
        unverified: [],
      });
      for (const [seq, size] of [
        [106, 112],
        [112, 112],
        [120, undefined],
        [147, undefined],
      ] as const) {
        expect((await integrity.proof(tenant, seq, size)).tree_size).toBe(size ?? 147);
      }
      await expect(integrity.consistency(tenant, 7, 147)).resolves.toMatchObject({ from: 7, to: 147 });
      await database.repository.append(tenant, [newEvent(tenant)]);
      await expect(integrity.checkpoint({ tenantId: tenant })).resolves.toHaveLength(1);
    });

    it('keeps the hashes of whole months dropped as partitions', async () => {
      const tenant = `dropped-${randomUUID()}`;
      for (let day = 0; day < 90; day += 3) {
        await database.repository.append(tenant, [newEvent(tenant), newEvent(tenant)], {
          createdAt: new Date(Date.parse('2025-01-01T00:00:00.000Z') + day * dayMs),
        });
      }
      await integrity.checkpoint({ tenantId: tenant });
      const report = await purgeExpired(
        { events: database.repository, retention: database.retention, recordPurges: async () => {} },
        {
          now: new Date('2025-03-10T00:00:00.000Z'),
          defaultRetentionMs: 10 * dayMs,
          batchSize: 1000,
          dryRun: false,
        },
      );
      expect(report.partitions.map((partition) => partition.name)).toContain('activity_events_y2025m01');
      const verified = await integrity.verify([signer.verifier], { tenantId: tenant });
      expect(verified.ok).toBe(true);
      // January dropped whole, February deleted in batches: one record of the run; left,
      // March's 20 events and the checkpoint's own (stored today)
      expect(verified.tenants[0]?.purged).toMatchObject([{ from_seq: 1, through_seq: 40, rule: 'default' }]);
      expect(verified.tenants[0]?.verified).toBe(21);
      const { left } = await integrity.bundle(tenant).then((bundle) => bundle.proof);
      expect(left).toEqual([]);
    });

    it('names as missing an event deleted by hand after purged ones, and altered kept hashes as modified', async () => {
      const { tenant } = await purgedTenant(1000);
      await sql`delete from activity_events where tenant_id = ${tenant} and seq = 120`.execute(database.db);
      await sql`update activity_tree_archive set hashes = overlay(hashes placing '\xff'::bytea from 33)
        where tenant_id = ${tenant} and from_seq = 1`.execute(database.db);
      const report = await integrity.verify([signer.verifier], { tenantId: tenant });
      // The leaf of purged event 2 is gone with it: the first hash kept above it names the run.
      expect(report.tenants[0]?.problems.map(({ seq, kind }) => ({ seq, kind }))).toEqual([
        { seq: 4, kind: 'modified' },
        { seq: 120, kind: 'missing' },
      ]);
    });
  });

  describe('offline bundles', () => {
    async function bundleLines(tenant: string) {
      const bundle = await integrity.bundle(tenant);
      const lines: string[] = [];
      for await (const event of bundle.events) lines.push(JSON.stringify(event));
      return { checkpoint: bundle.checkpoint, proof: JSON.stringify(bundle.proof), lines };
    }
    const check = async (files: { checkpoint: string; proof: string; lines: string[] }) =>
      verifyBundle(
        {
          ...files,
          lines: (async function* () {
            yield* files.lines;
          })(),
        },
        [signer.verifier],
      );

    it('is refused before it is handed out when the stored tree does not make the signed root', async () => {
      const tenant = `bundle-${randomUUID()}`;
      await database.repository.appendGenerated(Array.from({ length: 70 }, () => newEvent(tenant)));
      await integrity.checkpoint({ tenantId: tenant });
      await expect(bundleLines(tenant)).resolves.toMatchObject({ lines: expect.any(Array) });
      // The root of seq 1..64, the last of the five hashes event 64 keeps, after the 26 of events 4..60.
      await sql`update activity_tree_blocks set hashes = overlay(hashes placing '\xff'::bytea from ${(26 + 4) * 32 + 1})
        where tenant_id = ${tenant} and block = 0`.execute(database.db);
      await expect(integrity.bundle(tenant)).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    });

    it('verify whole, and each text a reader could read otherwise is refused', async () => {
      const tenant = `bundle-${randomUUID()}`;
      await database.repository.appendGenerated(
        Array.from({ length: 6 }, (_, index) => ({
          ...newEvent(tenant),
          metadata: { big: 9007199254740991, small: 0.1, index },
        })),
      );
      await integrity.checkpoint({ tenantId: tenant });
      const files = await bundleLines(tenant);
      expect((await check(files)).problems).toEqual([]);
      const line = files.lines[2] as string;
      const created = (JSON.parse(line) as { created_at: string }).created_at;
      const forgeries = [
        line.replace('"actor_id":', '"actor_id":"mallory","actor_id":'),
        line.replace('9007199254740991', '9007199254740993'),
        line.replace('"small":0.1', '"small":0.1000000000000000000001'),
        line.replace(created, `${created.slice(0, 8)}31T24:00:00.000Z`),
        line.replace(created, '2026-02-30T00:00:00.000Z'),
      ];
      for (const forged of forgeries) {
        expect(forged).not.toBe(line);
        const report = await check({
          ...files,
          lines: files.lines.map((each, index) => (index === 2 ? forged : each)),
        });
        expect(report.problems.map((problem) => problem.kind)).toEqual(['modified']);
      }
    });
  });

  describe('caught when an insider edits the table with SQL', () => {
    /** A tenant of 12 events with a checkpoint of them all, then that checkpoint's own event (seq 13). */
    async function checkpointed() {
      const tenant = `tamper-${randomUUID()}`;
      await database.repository.appendGenerated(Array.from({ length: 12 }, () => newEvent(tenant)));
      await integrity.checkpoint({ tenantId: tenant });
      return tenant;
    }
    const problemsOf = async (tenant: string) => {
      const report = await integrity.verify([signer.verifier], { tenantId: tenant });
      expect(report.ok).toBe(false);
      return report.tenants[0]?.problems.map(({ seq, kind }) => ({ seq, kind }));
    };
    /** checkpoint refuses to sign the tenant's tree (INTEGRITY_FAILED). */
    const refusesToSign = (tenant: string) =>
      expect(integrity.checkpoint({ tenantId: tenant })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    const run = (tenant: string, statement: ReturnType<typeof sql>) =>
      statement.execute(database.db).then(() => tenant);

    const columns: Array<[string, ReturnType<typeof sql>]> = [
      ['id', sql`id = gen_random_uuid()`],
      ['action', sql`action = 'user.deleted'`],
      ['actor_type', sql`actor_type = 'system'`],
      ['actor_id', sql`actor_id = 'mallory'`],
      ['object_type', sql`object_type = 'invoice'`],
      ['object_id', sql`object_id = 'inv_9'`],
      ['status', sql`status = 'failure'`],
      ['source', sql`source = 'forged'`],
      ['request_id', sql`request_id = 'req-forged'`],
      ['ip_hash', sql`ip_hash = 'hmac-sha256:00'`],
      ['user_agent', sql`user_agent = 'curl/8'`],
      ['metadata', sql`metadata = metadata || '{"forged":true}'`],
      ['created_at', sql`created_at = created_at - interval '1 second'`],
    ];
    it.each(columns)('a changed %s is named as modified', async (_, change) => {
      const tenant = await checkpointed();
      await run(tenant, sql`update activity_events set ${change} where tenant_id = ${tenant} and seq = 7`);
      expect(await problemsOf(tenant)).toEqual([{ seq: 7, kind: 'modified' }]);
    });

    it('a deleted middle row is missing', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_events where tenant_id = ${tenant} and seq = 5`);
      expect(await problemsOf(tenant)).toEqual([{ seq: 5, kind: 'missing' }]);
    });

    it('a deleted tail after a checkpoint, the head moved back too, is truncated', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_events where tenant_id = ${tenant} and seq > 9`);
      await run(tenant, sql`update activity_tenants set last_seq = 9 where tenant_id = ${tenant}`);
      expect(await problemsOf(tenant)).toContainEqual({ seq: 10, kind: 'truncated' });
    });

    it('a row inserted with a forged seq is inserted', async () => {
      const tenant = await checkpointed();
      await run(
        tenant,
        sql`insert into activity_events (tenant_id, seq, id, action, actor_type, status, metadata, created_at)
          select tenant_id, 13, gen_random_uuid(), action, actor_type, status, metadata, created_at
          from activity_events where tenant_id = ${tenant} and seq = 12`,
      );
      await run(
        tenant,
        sql`insert into activity_events (tenant_id, seq, id, action, actor_type, status, metadata, created_at)
          select tenant_id, 4, gen_random_uuid(), action, actor_type, status, metadata, created_at + interval '1 ms'
          from activity_events where tenant_id = ${tenant} and seq = 4`,
      );
      expect(await problemsOf(tenant)).toEqual([
        { seq: 4, kind: 'inserted' },
        { seq: 13, kind: 'inserted' },
      ]);
    });

    it('two swapped rows are both modified', async () => {
      const tenant = await checkpointed();
      await run(
        tenant,
        sql`update activity_events e set id = o.id, action = o.action, metadata = o.metadata
          from activity_events o
          where e.tenant_id = ${tenant} and o.tenant_id = ${tenant}
            and ((e.seq = 3 and o.seq = 8) or (e.seq = 8 and o.seq = 3))`,
      );
      expect(await problemsOf(tenant)).toEqual([
        { seq: 3, kind: 'modified' },
        { seq: 8, kind: 'modified' },
      ]);
    });

    it('an edit with every stored hash recomputed is still caught by the signed checkpoint', async () => {
      const tenant = await checkpointed();
      const forged = { ...(await allEvents(database, tenant))[5], action: 'user.deleted' } as never;
      // The row, its leaf hash, and every inner node rebuilt by the sealer from the leaves,
      // as an insider with the code would.
      await run(
        tenant,
        sql`update activity_events set action = 'user.deleted', leaf_hash = ${Buffer.from(leafHash(leafOf(forged)))}
          where tenant_id = ${tenant} and seq = 6`,
      );
      await run(tenant, sql`delete from activity_tree_blocks where tenant_id = ${tenant}`);
      await run(tenant, sql`delete from activity_tree_seals where tenant_id = ${tenant}`);
      await database.integrity.seal([{ tenantId: tenant, through: 12 }]);
      expect(await problemsOf(tenant)).toEqual([{ seq: 1, kind: 'inconsistent' }]);
      await database.repository.append(tenant, [newEvent(tenant)]);
      await refusesToSign(tenant);
    });

    it('an edited block of inner nodes is named, and no proof is made from it', async () => {
      const tenant = await checkpointed();
      // Block 0 holds the hash event 4 keeps, then event 8's two: the third is the root of seq 1..8.
      await run(
        tenant,
        sql`update activity_tree_blocks set hashes = overlay(hashes placing '\xff'::bytea from 65)
          where tenant_id = ${tenant} and block = 0`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 8, kind: 'modified' }]);
      await expect(integrity.proof(tenant, 10)).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    });

    it('deleted blocks are named at every seq that kept a hash in them, and never signed over', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_tree_blocks where tenant_id = ${tenant}`);
      expect(await problemsOf(tenant)).toEqual([
        { seq: 4, kind: 'modified' },
        { seq: 8, kind: 'modified' },
        { seq: 12, kind: 'modified' },
      ]);
      await database.repository.appendGenerated(Array.from({ length: 5 }, () => newEvent(tenant)));
      await refusesToSign(tenant);
    });

    it("an older copy of the sealer's state and blocks restored is caught", async () => {
      const tenant = await checkpointed();
      const { rows: blocks } = await sql<{ hashes: Uint8Array }>`
        select hashes from activity_tree_blocks where tenant_id = ${tenant} and block = 0`.execute(
        database.db,
      );
      const older = await database.integrity.head(tenant);
      await database.repository.appendGenerated(Array.from({ length: 5 }, () => newEvent(tenant)));
      await integrity.checkpoint({ tenantId: tenant });
      await run(
        tenant,
        sql`update activity_tree_blocks set hashes = ${Buffer.from(blocks[0]?.hashes as Uint8Array)}
          where tenant_id = ${tenant} and block = 0`,
      );
      await run(
        tenant,
        sql`update activity_tree_seals set sealed_size = ${older?.sealedSize},
          sealed_leaf = ${Buffer.from(older?.sealedLeaf as Uint8Array)} where tenant_id = ${tenant}`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 13, kind: 'inconsistent' }]);
    });

    it("a sealer's state set past the last seq is caught, and never signed", async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`update activity_tree_seals set sealed_size = 40 where tenant_id = ${tenant}`);
      expect(await problemsOf(tenant)).toEqual([{ seq: 14, kind: 'inconsistent' }]);
      await database.repository.appendGenerated(Array.from({ length: 4 }, () => newEvent(tenant)));
      await refusesToSign(tenant);
    });

    it("a sealer's state naming another last leaf is caught, before it stops every checkpoint", async () => {
      const tenant = await checkpointed();
      await run(
        tenant,
        sql`update activity_tree_seals set sealed_leaf = decode('00', 'hex') where tenant_id = ${tenant}`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 12, kind: 'inconsistent' }]);
      await database.repository.appendGenerated([newEvent(tenant)]);
      await expect(integrity.checkpoint({ tenantId: tenant })).rejects.toThrow(
        /event 12 is not the event sealed/,
      );
    });

    it('a leaf hash removed from a sealed event no checkpoint signed yet is modified', async () => {
      const tenant = await checkpointed();
      await database.repository.appendGenerated(Array.from({ length: 3 }, () => newEvent(tenant)));
      await database.integrity.seal([{ tenantId: tenant, through: 15 }]);
      await run(
        tenant,
        sql`update activity_events set leaf_hash = null where tenant_id = ${tenant} and seq = 14`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 14, kind: 'modified' }]);
    });

    it('a row deleted under a forged purge record is missing, and the rest is still checked', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_events where tenant_id = ${tenant} and seq between 5 and 7`);
      await run(
        tenant,
        sql`insert into activity_purges (tenant_id, purged_at, from_seq, through_seq, rule, cutoff)
          values (${tenant}, now(), 5, 7, 'default', now())`,
      );
      await run(
        tenant,
        sql`update activity_events set action = 'user.deleted' where tenant_id = ${tenant} and seq = 10`,
      );
      expect(await problemsOf(tenant)).toEqual([
        { seq: 5, kind: 'missing' },
        { seq: 10, kind: 'modified' },
      ]);
    });

    it('a row inserted with a seq below 1 is inserted', async () => {
      const tenant = await checkpointed();
      await run(
        tenant,
        sql`insert into activity_events (tenant_id, seq, id, action, actor_type, status, metadata, created_at)
          select tenant_id, 0, gen_random_uuid(), action, actor_type, status, metadata, created_at
          from activity_events where tenant_id = ${tenant} and seq = 1`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 0, kind: 'inserted' }]);
    });

    it('a tree cleared after a checkpoint is caught, and never signed again', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_tree_blocks where tenant_id = ${tenant}`);
      await run(
        tenant,
        sql`update activity_tree_seals set sealed_size = 0, sealed_leaf = null where tenant_id = ${tenant}`,
      );
      await run(tenant, sql`update activity_events set leaf_hash = null where tenant_id = ${tenant}`);
      await database.repository.appendGenerated([newEvent(tenant), newEvent(tenant)]);
      const problems = await problemsOf(tenant);
      expect(problems).toContainEqual({ seq: 1, kind: 'inconsistent' });
      expect(problems).toContainEqual({ seq: 12, kind: 'modified' });
      await refusesToSign(tenant);
      await expect(integrity.checkpoint()).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    });

    it('a tenant whose head row was deleted is still verified, and its problems named', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_tenants where tenant_id = ${tenant}`);
      const report = await integrity.verify([signer.verifier]);
      expect(report.ok).toBe(false);
      expect(report.tenants.find((each) => each.tenant_id === tenant)?.problems.length).toBeGreaterThan(0);
    });

    it("a checkpoint's size column edited to hide a tenant from cron is caught, and refused", async () => {
      const tenant = await checkpointed();
      await run(
        tenant,
        sql`update activity_checkpoints set tree_size = 999999999999 where tenant_id = ${tenant}`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 12, kind: 'signature' }]);
      await database.repository.appendGenerated([newEvent(tenant)]);
      await expect(integrity.checkpoint()).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
      await expect(integrity.proof(tenant, 2)).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    });

    it('a head row that claims more than its rows keep is never signed', async () => {
      const tenant = `claims-${randomUUID()}`;
      await database.repository.appendGenerated([newEvent(tenant), newEvent(tenant), newEvent(tenant)]);
      await run(tenant, sql`update activity_tenants set last_seq = 8 where tenant_id = ${tenant}`);
      await refusesToSign(tenant);
      expect(await problemsOf(tenant)).toContainEqual({ seq: 4, kind: 'missing' });
    });

    it.each([
      ['a BC time', sql`created_at = created_at - interval '4052 years'`],
      ['a time moved by a millisecond', sql`created_at = created_at + interval '1 millisecond'`],
      ['an infinite time', sql`created_at = 'infinity'`],
    ])(
      '%s, which the API cannot show as stored, is modified, and the rest still verified',
      async (_, change) => {
        const tenant = await checkpointed();
        await run(tenant, sql`update activity_events set ${change} where tenant_id = ${tenant} and seq = 3`);
        expect(await problemsOf(tenant)).toEqual([{ seq: 3, kind: 'modified' }]);
      },
    );

    it('with its own checkpoints deleted, a forked tree is refused against the one kept outside', async () => {
      const tenant = await checkpointed();
      const [kept] = await database.integrity.checkpoints(tenant);
      await run(tenant, sql`delete from activity_events where tenant_id = ${tenant} and seq > 10`);
      // The head and the sealer's state moved back as if the tail had never been.
      await run(tenant, sql`update activity_tenants set last_seq = 10 where tenant_id = ${tenant}`);
      await run(
        tenant,
        sql`update activity_tree_seals s set sealed_size = 10, sealed_leaf = e.leaf_hash
          from activity_events e where s.tenant_id = ${tenant} and e.tenant_id = ${tenant} and e.seq = 10`,
      );
      await run(tenant, sql`delete from activity_checkpoints where tenant_id = ${tenant}`);
      await database.repository.appendGenerated(Array.from({ length: 4 }, () => newEvent(tenant)));
      const outside = new Map([[tenant, kept?.note as string]]);
      await expect(integrity.checkpoint({ tenantId: tenant, outside })).rejects.toMatchObject({
        code: 'INTEGRITY_FAILED',
      });
      await expect(integrity.checkpoint({ outside })).rejects.toMatchObject({ code: 'INTEGRITY_FAILED' });
    });

    it('a checkpoint whose note was edited has a bad signature', async () => {
      const tenant = await checkpointed();
      await run(
        tenant,
        sql`update activity_checkpoints set note = replace(note, E'\n12\n', E'\n11\n') where tenant_id = ${tenant}`,
      );
      expect(await problemsOf(tenant)).toEqual([{ seq: 12, kind: 'signature' }]);
    });

    it('a deleted tail with the head moved back is refused at the next checkpoint', async () => {
      const tenant = await checkpointed();
      await run(tenant, sql`delete from activity_events where tenant_id = ${tenant} and seq > 10`);
      const head = await database.integrity.head(tenant);
      expect(head?.sealedSize).toBe(12);
      await run(tenant, sql`update activity_tenants set last_seq = 10 where tenant_id = ${tenant}`);
      await database.repository.appendGenerated(Array.from({ length: 5 }, () => newEvent(tenant)));
      await refusesToSign(tenant);
    });
  });
});

describe('a rotated signing key', () => {
  it('signs on from checkpoints of the key it replaced, and verify trusts both', async () => {
    const { database, dispose } = await openTestStore('pglite');
    try {
      const old = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey);
      const next = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey, [
        old.verifier,
      ]);
      const serviceWith = (chosen: typeof signer) =>
        new IntegrityService({
          events: database.repository,
          integrity: database.integrity,
          signer: async () => chosen,
          audit: ownEventsTrail(database.repository, createRegistry(), { auditReads: true }),
        });
      const tenant = 'rotated';
      await database.repository.appendGenerated([newEvent(tenant), newEvent(tenant)]);
      await serviceWith(old).checkpoint();
      await database.repository.appendGenerated([newEvent(tenant)]);
      const alone = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey);
      await expect(serviceWith(alone).checkpoint()).rejects.toThrow(/another key/);
      await expect(serviceWith(next).checkpoint()).resolves.toHaveLength(1);
      expect((await serviceWith(next).verify()).ok).toBe(true);
      expect((await serviceWith(next).verify([next.verifier])).ok).toBe(false);
    } finally {
      await dispose();
    }
  });
});
