import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { type ActivityApp, defaultBatchSize } from 'activity';
import pg from 'pg';
import type { BenchContext } from '../lib/context.js';
import { benchActions, eventInput, skewedTenants } from '../lib/dataset.js';
import { percentile } from '../lib/stats.js';
import { migrate, openTool } from '../lib/tool.js';
import { type BenchRow, formatNumber, milliseconds, type Workload } from '../lib/workload.js';

/** Month M began four months ago; the cutoff is its end, so M is the one expired month. */
function months(now: Date) {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 4, 1));
  const end = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 3, 1));
  return { start, end };
}

/**
 * A fresh database with `monthEvents` events in month M over 50 tenants (skewed) and a
 * twentieth of that after M, up to now; each tenant's seq and time rise together.
 */
async function load(context: BenchContext, name: string, monthEvents: number, now: Date): Promise<void> {
  const url = await context.createDatabase(name);
  await migrate(url);
  const { start, end } = months(now);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('select activity_ensure_partitions($1, $2)', [start, now]);
    const runs = skewedTenants('t', monthEvents, 50).flatMap(([tenant, count]) => {
      const later = Math.max(1, Math.round(count / 20));
      return [
        { tenant, first: 1, count, from: start.getTime(), step: (end.getTime() - start.getTime()) / count },
        {
          tenant,
          first: count + 1,
          count: later,
          from: end.getTime(),
          step: (now.getTime() - 60_000 - end.getTime()) / later,
        },
      ];
    });
    await client.query(
      `insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
         status, source, request_id, ip_hash, user_agent, metadata, created_at)
       select r.tenant, r.first + g - 1, gen_random_uuid(),
         (array[${benchActions.map((a) => `'${a}'`).join(',')}])[1 + g % ${benchActions.length}],
         'user', 'user_' || g % 5000, 'document', 'doc_' || g % 20000, 'success', 'api', 'req_' || r.tenant || '_' || g,
         md5(g::text), 'Mozilla/5.0 (X11; Linux x86_64) bench',
         jsonb_build_object('run_id', 'run_' || g, 'context', jsonb_build_object('note', repeat('x', 150 + g % 100))),
         to_timestamp((r.from_ms + (g - 1) * r.step) / 1000.0)
       from jsonb_to_recordset($1::jsonb) as r(tenant text, first bigint, count int, from_ms float8, step float8)
         cross join lateral generate_series(1, r.count) g`,
      [JSON.stringify(runs.map(({ from, ...run }) => ({ ...run, from_ms: from })))],
    );
    await client.query(`insert into activity_tenants (tenant_id, last_seq, last_created_at)
      select tenant_id, max(seq), max(created_at) from activity_events group by tenant_id`);
    await client.query('vacuum analyze activity_events');
    await client.query('checkpoint');
  } finally {
    await client.end();
  }
}

/**
 * Runs `purge` while a second connection records single events back to back; returns
 * the purge's time and the slowest record during it (and before it, for reference).
 */
/** The tenants of the database at `url`, each with its head row. */
async function tenantsOf(url: string): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ tenant_id: string }>(
      'select tenant_id from activity_tenants order by 1',
    );
    return rows.map((row) => row.tenant_id);
  } finally {
    await client.end();
  }
}

async function timed(url: string, purge: () => Promise<unknown>) {
  const writer = await openTool(url);
  try {
    let stop = false;
    const latencies: number[] = [];
    // Settled at once, so that a failing record cannot go unhandled while purge runs.
    const recording = (async () => {
      for (let i = 0; !stop; i++) {
        const started = performance.now();
        await writer.service.record(eventInput('live', i));
        latencies.push(performance.now() - started);
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = latencies.splice(0);
    const started = performance.now();
    await purge();
    const seconds = (performance.now() - started) / 1000;
    stop = true;
    const failure = await recording;
    if (failure) throw failure;
    return {
      seconds,
      maxInsertMs: Math.max(...latencies),
      p99InsertMs: percentile(latencies, 99),
      maxBeforeMs: Math.max(...before),
    };
  } finally {
    await writer.close();
  }
}

/** B12: one month purged by partition drop, by batched delete, and by one raw DELETE. */
export const purgeWorkload: Workload = {
  ids: ['B12'],
  async run(context) {
    const now = new Date();
    const cutoffAge = now.getTime() - months(now).end.getTime();
    const monthEvents = context.sizes.purgeMonth;
    const purgeOptions = { now, defaultRetentionMs: cutoffAge, batchSize: defaultBatchSize, dryRun: false };

    context.log(`loading ${formatNumber(monthEvents)} events in one month, once; each purge runs on a copy`);
    await load(context, 'bench_purge_source', monthEvents, now);
    // The copy's gigabyte is written back to disk before the clock starts, so that the
    // kernel flushing it is not timed as the purge (or as a concurrent record's wait).
    const copy = async (name: string) => {
      const url = await context.createDatabase(name, 'bench_purge_source');
      await promisify(execFile)('sync');
      return url;
    };

    const withTool = async <T>(url: string, use: (app: ActivityApp) => Promise<T>) => {
      const app = await openTool(url);
      try {
        return await use(app);
      } finally {
        await app.close();
      }
    };
    const dropOnce = async () => {
      const url = await copy('bench_purge_drop');
      return withTool(url, (app) => timed(url, () => app.retention.purge(purgeOptions)));
    };
    const batchedOnce = async () => {
      const url = await copy('bench_purge_batched');
      return withTool(url, async (app) => {
        const tenants = await tenantsOf(url);
        // --tenant never drops a month: one run per tenant is the batched path alone.
        return timed(url, async () => {
          for (const tenantId of tenants) {
            await app.retention.purge({ ...purgeOptions, tenantId });
          }
        });
      });
    };
    const rawOnce = async () => {
      const url = await copy('bench_purge_raw');
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return await timed(url, () =>
          client.query('delete from activity_events where created_at < $1', [
            new Date(now.getTime() - cutoffAge),
          ]),
        );
      } finally {
        await client.end();
      }
    };

    // Batched and raw take turns, so that a noisy moment falls on both alike.
    const drops: Timed[] = [];
    const batches: Timed[] = [];
    const raws: Timed[] = [];
    for (let round = 1; round <= context.sizes.repetitions; round++) {
      context.log(`round ${round} of ${context.sizes.repetitions}: drop, batched, raw DELETE`);
      drops.push(await dropOnce());
      batches.push(await batchedOnce());
      raws.push(await rawOnce());
    }
    const drop = medianRun(drops);
    const batched = medianRun(batches);
    const raw = medianRun(raws);
    const slowest = (runs: Timed[]) => Math.max(...runs.map((run) => run.maxInsertMs));
    const before = Math.max(...[...drops, ...batches, ...raws].map((run) => run.maxBeforeMs));

    const batchedRatio = raw.seconds / batched.seconds;
    const seconds = (runs: Timed[]) => runs.map((run) => formatNumber(run.seconds, 2)).join(', ');
    return [
      {
        id: 'B12',
        workload: `purge one month of ${formatNumber(monthEvents)} events`,
        tool: `drop ${formatNumber(drop.seconds * 1000)} ms; batched ${formatNumber(batched.seconds, 2)} s`,
        baseline: `${formatNumber(raw.seconds, 2)} s (one raw DELETE)`,
        ratio: batchedRatio,
        target: 'drop ≤ 1 s; batched ≥ 0.8× raw',
        met: drop.seconds <= 1 && batchedRatio >= 0.8,
        figures: {
          drop_seconds: drop.seconds,
          batched_seconds: batched.seconds,
          raw_seconds: raw.seconds,
          drop_max_insert_ms: slowest(drops),
          batched_max_insert_ms: slowest(batches),
          raw_max_insert_ms: slowest(raws),
          max_insert_before_ms: before,
        },
        notes: `medians of ${context.sizes.repetitions} round(s), each on a fresh copy of the same data (seconds: drop ${seconds(drops)}; batched ${seconds(batches)}; raw ${seconds(raws)}); slowest concurrent record: during drop ${milliseconds(slowest(drops))}, batched ${milliseconds(slowest(batches))}, raw ${milliseconds(slowest(raws))}; before any purge ${milliseconds(before)}. Ratio = raw time / batched time.`,
      } satisfies BenchRow,
    ];
  },
};

type Timed = Awaited<ReturnType<typeof timed>>;

/** The run of median duration. */
function medianRun(runs: readonly Timed[]): Timed {
  return [...runs].sort((a, b) => a.seconds - b.seconds)[Math.floor((runs.length - 1) / 2)] as Timed;
}
