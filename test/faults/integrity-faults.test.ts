import { generateKeyPairSync } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointSigner } from '../../src/integrity/checkpoint-signer.js';
import { createRegistry } from '../../src/registry/registry.js';
import { ownEventsTrail } from '../../src/service/audit-trail.js';
import { IntegrityService } from '../../src/service/integrity-service.js';
import { type Database, openDatabase } from '../../src/store/open-database.js';
import { createTestDatabase } from '../helpers/databases.js';
import { newEvent } from '../helpers/new-event.js';

const signer = checkpointSigner('activity-test', generateKeyPairSync('ed25519').privateKey);

/** verify and checkpoint when PostgreSQL terminates their backend mid-run. */
describe('the verifiable log when PostgreSQL drops its connection', () => {
  let created: { url: string; drop(): Promise<void> };
  let database: Database;
  let admin: pg.Client;
  let integrity: IntegrityService;
  const tenant = 'faulted';

  beforeAll(async () => {
    created = await createTestDatabase();
    database = await openDatabase({ kind: 'postgres', url: created.url });
    admin = new pg.Client({ connectionString: created.url });
    await admin.connect();
    integrity = new IntegrityService({
      events: database.repository,
      integrity: database.integrity,
      signer: async () => signer,
      audit: ownEventsTrail(database.repository, createRegistry(), { auditReads: true }),
    });
    // More than two slices of verify, so that one is read while the next is in flight.
    for (let batch = 0; batch < 10; batch++) {
      await database.repository.appendGenerated(Array.from({ length: 1000 }, () => newEvent(tenant)));
    }
    // 10,000 events, then the checkpoint's own (activity.checkpoint.signed): 10,001.
    await integrity.checkpoint();
  });
  afterAll(async () => {
    await admin?.end();
    await database?.close();
    await created?.drop();
  });

  const terminateOthers = () =>
    admin.query(
      'select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()',
    );

  /** Checkpoints again until a run meets no connection the pool lost (it drops each as it hears of it). */
  const checkpointOnceConnected = async () => {
    for (let attempt = 0; attempt < 5; attempt++) {
      const signed = await integrity.checkpoint().catch((error: { code?: string }) => {
        expect(error.code).toBe('DB_UNAVAILABLE');
        return undefined;
      });
      if (signed) return;
    }
  };

  it('verify whose backends are terminated mid-run fails as unavailable or holds whole, never reports a false problem; then verifies', async () => {
    let terminating: Promise<unknown> | undefined;
    // Terminated after the first slice: the run meets the lost connection, or has read
    // everything before PostgreSQL's word of it arrives. Either way, nothing false.
    const outcome = await integrity
      .verify(undefined, {
        tenantId: tenant,
        onProgress: () => {
          terminating ??= terminateOthers();
        },
      })
      .then(
        (report) => ({ ok: report.ok, verified: report.tenants[0]?.verified }),
        (error: { code?: string }) => ({ code: error.code }),
      );
    expect([{ code: 'DB_UNAVAILABLE' }, { ok: true, verified: 10_001 }]).toContainEqual(outcome);
    await terminating;
    // The pool drops each connection it lost as it hears of it: a run may still meet
    // one (unavailable, never ok), and the next verifies everything.
    let report: Awaited<ReturnType<IntegrityService['verify']>> | undefined;
    for (let attempt = 0; attempt < 5 && !report; attempt++) {
      report = await integrity.verify(undefined, { tenantId: tenant }).catch((error: { code?: string }) => {
        expect(error.code).toBe('DB_UNAVAILABLE');
        return undefined;
      });
    }
    expect(report?.ok).toBe(true);
    expect(report?.tenants[0]?.verified).toBe(10_001);
  });

  it('a checkpoint whose connection was terminated signs on the next run, and stores it once', async () => {
    await database.repository.appendGenerated([newEvent(tenant)]);
    await terminateOthers();
    const outcome = await integrity.checkpoint().then(
      (signed) => signed.length,
      (error: { code?: string }) => error.code,
    );
    expect([1, 'DB_UNAVAILABLE']).toContain(outcome);
    await checkpointOnceConnected();
    const stored = await database.integrity.checkpoints(tenant);
    // The first checkpoint's own event, then the one appended here.
    expect(stored.map((checkpoint) => checkpoint.treeSize)).toEqual([10_000, 10_002]);
  });

  it('a seal whose backend is terminated while it waits for the seal row leaves the tree as it was; writers never wait for it; the next run seals and signs', async () => {
    const holder = new pg.Client({ connectionString: created.url });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('select * from activity_tree_seals where tenant_id = $1 for update', [tenant]);
      const before = await database.integrity.head(tenant);
      // The sealer's lock is not the head row's: appends go on while it is held.
      await database.repository.appendGenerated(Array.from({ length: 70 }, () => newEvent(tenant)));
      const checkpoint = integrity.checkpoint().then(
        () => 'signed',
        (error: { code?: string }) => error.code,
      );
      const deadline = Date.now() + 30_000;
      let sealer: number | undefined;
      while (sealer === undefined && Date.now() < deadline) {
        const { rows } = await admin.query<{ pid: number }>(
          `select pid from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock' and query like '%activity_tree_seals%'`,
        );
        sealer = rows[0]?.pid;
      }
      expect(sealer).toBeDefined();
      await admin.query('select pg_terminate_backend($1)', [sealer]);
      expect(await checkpoint).toBe('DB_UNAVAILABLE');
      await holder.query('rollback');
      expect((await database.integrity.head(tenant))?.sealedSize).toBe(before?.sealedSize);
      await checkpointOnceConnected();
      // Sealed and signed up to the checkpoint's own event, which follows it.
      const head = await database.integrity.head(tenant);
      expect(head?.sealedSize).toBe((head?.lastSeq ?? 0) - 1);
      expect((await database.integrity.checkpoint(tenant))?.treeSize).toBe((head?.lastSeq ?? 0) - 1);
      expect((await integrity.verify(undefined, { tenantId: tenant })).ok).toBe(true);
    } finally {
      await holder.end();
    }
  });
});
