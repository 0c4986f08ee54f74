import { defaultBatchSize, purgeExpired } from 'activity';
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
async function load(context: BenchContext, name: string, monthEvents: number, now: Date): Promise<string> {
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
  return url;
}

/**
 * Runs `purge` while a second connection records single events back to back; returns
 * the purge's time and the slowest record during it (and before it, for reference).
 */
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

    context.log(`drop: loading ${formatNumber(monthEvents)} events in one month`);
    let url = await load(context, 'bench_purge_drop', monthEvents, now);
    let app = await openTool(url);
    const drop = await timed(url, () =>
      purgeExpired({ events: app.database.repository, retention: app.database.retention }, purgeOptions),
    );
    await app.close();

    context.log('batched: loading again');
    url = await load(context, 'bench_purge_batched', monthEvents, now);
    app = await openTool(url);
    const tenants = await app.database.repository.tenants(undefined, 1000);
    // --tenant never drops a month: one run per tenant is the batched path alone.
    const batched = await timed(url, async () => {
      for (const tenantId of tenants) {
        await purgeExpired(
          { events: app.database.repository, retention: app.database.retention },
          { ...purgeOptions, tenantId },
        );
      }
    });
    await app.close();

    context.log('raw DELETE: loading again');
    url = await load(context, 'bench_purge_raw', monthEvents, now);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const raw = await timed(url, () =>
      client.query('delete from activity_events where created_at < $1', [
        new Date(now.getTime() - cutoffAge),
      ]),
    );
    await client.end();

    const batchedRatio = raw.seconds / batched.seconds;
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
          drop_max_insert_ms: drop.maxInsertMs,
          batched_max_insert_ms: batched.maxInsertMs,
          raw_max_insert_ms: raw.maxInsertMs,
          max_insert_before_ms: Math.max(drop.maxBeforeMs, batched.maxBeforeMs, raw.maxBeforeMs),
        },
        notes: `slowest concurrent record: during drop ${milliseconds(drop.maxInsertMs)}, batched ${milliseconds(batched.maxInsertMs)}, raw ${milliseconds(raw.maxInsertMs)}; before any purge ${milliseconds(Math.max(drop.maxBeforeMs, batched.maxBeforeMs, raw.maxBeforeMs))}. Ratio = raw time / batched time.`,
      } satisfies BenchRow,
    ];
  },
};
