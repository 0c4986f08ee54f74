import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ActivityApp, openAppWithDatabase } from '../../src/app/open-app.js';
import { followLocal } from '../../src/cli/follow-local.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { ActivityRepository } from '../../src/domain/activity-repository.js';
import { ActivityError } from '../../src/domain/errors.js';
import type { ActivityEvent } from '../../src/domain/event.js';
import { createInProcessTransport } from '../../src/stream/in-process-transport.js';
import { StreamHub } from '../../src/stream/stream-hub.js';
import { Conditions } from '../helpers/conditions.js';

/**
 * `tail`'s follow loop over a real hub and embedded database, whose reads fail on
 * cue: whichever read of the stream fails, it subscribes again from the last event
 * printed, and only an outage is followed through.
 */
describe('followLocal', { timeout: 60_000 }, () => {
  let app: ActivityApp;
  let repository: ActivityRepository;
  const transport = createInProcessTransport();

  beforeAll(async () => {
    const opened = await openAppWithDatabase(
      loadConfig(
        { dataDir: 'memory://' },
        { ACTIVITY_SECRET: 'x'.repeat(32), ACTIVITY_AUDIT_READS: 'false' },
      ),
      {
        observers: [
          {
            recorded(events) {
              for (const event of events)
                void transport.publish({ tenantId: event.tenant_id, seq: event.seq });
            },
          },
        ],
      },
    );
    app = opened.app;
    repository = opened.database.repository;
  });
  afterAll(async () => {
    await app?.close();
  });

  /** Follows `tenantId` from its latest event on a hub whose reads number `failing` throw `failure`. */
  async function follow(tenantId: string, failing: readonly number[], failure: Error) {
    let reads = 0;
    const conditions = new Conditions();
    const flaky = new Proxy(repository, {
      get(target, property) {
        const value = Reflect.get(target, property);
        if (property !== 'page') return typeof value === 'function' ? value.bind(target) : value;
        return (...args: Parameters<ActivityRepository['page']>) => {
          reads++;
          conditions.changed();
          if (failing.includes(reads)) return Promise.reject(failure);
          return target.page(...args);
        };
      },
    });
    const hub = new StreamHub({ repository: flaky, transport, pollIntervalMs: 3_600_000 });
    await hub.start();
    const printed: ActivityEvent[] = [];
    const retried: unknown[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((resolve) => (stop = resolve));
    const following = followLocal({
      hub,
      tenantId,
      filter: {},
      afterSeq: (await repository.page(tenantId, {}, { limit: 1 }))[0]?.seq ?? 0,
      print: async (event) => {
        printed.push(event);
        conditions.changed();
      },
      stop: stopped,
      onRetry: (error) => {
        retried.push(error);
        conditions.changed();
      },
    });
    return {
      printed,
      retried,
      following,
      async until(what: string, check: () => boolean) {
        await conditions.waitFor(check, 20_000, () => what);
      },
      async stop() {
        stop();
        const delivered = await following;
        await hub.close();
        return delivered;
      },
      get reads() {
        return reads;
      },
    };
  }

  const outage = new ActivityError('DB_UNAVAILABLE', 'cannot use PostgreSQL: terminating connection');
  const record = (tenantId: string) =>
    app.service.record({ tenant_id: tenantId, action: 'auth.login.success' });

  it.each([
    ['the read that opens the feed', [1]],
    ['the replay after it', [2]],
    ['both, and the retried replay', [1, 3, 4]],
  ])('follows on when %s fails, and prints each later event once', async (_, failing) => {
    const tenantId = `follow-${failing.join('-')}`;
    await record(tenantId);
    const follower = await follow(tenantId, failing, outage);
    await follower.until('every failing read made', () => follower.reads > Math.max(...failing));
    const recorded = [await record(tenantId), await record(tenantId)];
    await follower.until('both events printed', () => follower.printed.length === 2);
    expect(follower.printed.map((event) => event.seq)).toEqual(recorded.map((event) => event.seq));
    expect(await follower.stop()).toBe(2);
  });

  it('reports a failed subscribe it follows through', async () => {
    await record('told');
    const follower = await follow('told', [1], outage);
    await follower.until('the failed subscribe reported', () => follower.retried.length === 1);
    expect(follower.retried).toEqual([outage]);
    expect(await follower.stop()).toBe(0);
  });

  it('ends with any error that is not an outage', async () => {
    await record('broken');
    const bug = new TypeError('a bug, not an outage');
    const follower = await follow('broken', [1], bug);
    await expect(follower.following).rejects.toBe(bug);
    expect(follower.retried).toEqual([]);
  });

  it('stops at once when told to while it waits to try again', async () => {
    await record('stopped');
    const follower = await follow('stopped', [1, 2, 3, 4, 5, 6], outage);
    await follower.until('a failure reported', () => follower.retried.length >= 1);
    expect(await follower.stop()).toBe(0);
  });
});
