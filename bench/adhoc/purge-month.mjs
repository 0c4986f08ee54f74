// Purging one month of 1,000,000 events three ways (drop the partition, batched
// deletes, one raw DELETE), each timed while a second connection appends single
// events back to back: node bench/adhoc/purge-month.mjs [POSTGRES_URL] [REPETITIONS]
// POSTGRES_URL names a database to connect to for CREATE/DROP DATABASE; the data goes
// into a scratch database beside it, reloaded for every run and dropped at the end.
// Progress goes to stderr, one JSON object with every figure to stdout.
import { sql } from 'kysely';
import pg from 'pg';
import { v7 } from 'uuid';
import { purgeExpired } from '../../dist/service/purge.js';
import { openDatabase } from '../../dist/store/open-database.js';

const baseUrl = process.argv[2] ?? 'postgres://postgres@127.0.0.1:55432/postgres';
const repetitions = Number(process.argv[3] ?? 3);
const scratchDatabase = 'purge_bench';
const monthEvents = 1_000_000;
const laterEvents = 50_000;
const tenantCount = 50;
const batchSize = 1000;
const warmupMs = 1000;
const baselineMs = 3000;
const sampleEveryMs = 5;
// Application names tell the sampler which backend waits on a lock.
const apps = { purge: 'purge-bench-purge', insert: 'purge-bench-insert' };

// Month M started four months before this one; the cutoff is its end, so M is the only
// expired month and everything after it, up to now, is kept.
const startedAt = new Date();
const monthStart = new Date(Date.UTC(startedAt.getUTCFullYear(), startedAt.getUTCMonth() - 4, 1));
const cutoff = new Date(Date.UTC(startedAt.getUTCFullYear(), startedAt.getUTCMonth() - 3, 1));

// Sizes proportional to 1/rank: a few big tenants and a long tail of small ones.
function skewedSizes(total) {
  const weights = Array.from({ length: tenantCount }, (_, rank) => 1 / (rank + 1));
  const weightSum = weights.reduce((sum, weight) => sum + weight, 0);
  const sizes = weights.map((weight) => Math.floor((total * weight) / weightSum));
  sizes[0] += total - sizes.reduce((sum, size) => sum + size, 0);
  return sizes;
}
const monthSizes = skewedSizes(monthEvents);
const laterSizes = skewedSizes(laterEvents);
const tenants = monthSizes.map((_, rank) => `t${String(rank + 1).padStart(2, '0')}`);
// The inserter writes to the biggest tenant, the one most likely to be busy in production.
const liveTenant = tenants[0];

const log = (message) => process.stderr.write(`${message}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const round = (ms) => Math.round(ms * 100) / 100;

function urlFor(database, application) {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  // pg lets parameters in the URL override the pool's own application_name.
  url.searchParams.set('application_name', application);
  return url.toString();
}

async function admin(statement) {
  const client = new pg.Client({ connectionString: baseUrl });
  await client.connect();
  try {
    return await client.query(statement);
  } finally {
    await client.end();
  }
}

/** A fresh scratch database with month M and the months after it; returns how long it took. */
async function load() {
  const started = performance.now();
  await admin(`drop database if exists ${scratchDatabase}`);
  await admin(`create database ${scratchDatabase}`);
  const database = await openDatabase({ kind: 'postgres', url: urlFor(scratchDatabase, 'purge-bench-load') });
  try {
    const { db } = database;
    await database.migrator.up();
    // Every month from M to the ones purge makes ahead exists before any row, so M's rows
    // land in their own partition and purge's ensurePartitions has nothing to do.
    await sql`select activity_ensure_partitions(${monthStart}::timestamptz, ${startedAt}::timestamptz + interval '3 months')`.execute(
      db,
    );
    // Per tenant, a run of seqs spread evenly over a time span: M from seq 1, then the
    // months after M up to a minute ago; created_at never decreases with seq.
    const laterSpanMs = startedAt.getTime() - 60_000 - cutoff.getTime();
    const runs = tenants.flatMap((tenant, rank) => [
      {
        tenant_id: tenant,
        first_seq: 1,
        events: monthSizes[rank],
        start: monthStart.toISOString(),
        step_ms: (cutoff.getTime() - monthStart.getTime()) / monthSizes[rank],
      },
      {
        tenant_id: tenant,
        first_seq: monthSizes[rank] + 1,
        events: laterSizes[rank],
        start: cutoff.toISOString(),
        step_ms: laterSpanMs / laterSizes[rank],
      },
    ]);
    await sql`
      insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
          status, source, request_id, ip_hash, user_agent, metadata, created_at)
      select r.tenant_id, r.first_seq + g - 1,
        -- time-ordered like the UUIDv7 the service generates, so the id index grows as it would
        overlay(overlay(md5(r.tenant_id || ':' || g) placing lpad(to_hex((extract(epoch from c.at) * 1000)::bigint), 12, '0') from 1)
          placing '7' from 13)::uuid,
        (array['auth.login.success', 'auth.login.failure', 'storage.file.uploaded', 'storage.file.downloaded',
          'workflows.run.started', 'workflows.run.finished', 'members.role.changed', 'billing.invoice.paid'])[1 + g % 8],
        case when g % 10 = 0 then 'service_account' else 'user' end,
        'u' || (g * 7919) % 5000,
        (array['file', 'document', 'project'])[1 + g % 3],
        'o' || (g * 104729) % 20000,
        case when g % 20 = 0 then 'failure' else 'success' end,
        case when g % 3 = 0 then 'api' else 'web' end,
        'req_' || md5(r.tenant_id || ':req:' || g),
        encode(sha256(convert_to('10.0.' || (g % 3000), 'UTF8')), 'hex'),
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
        jsonb_build_object(
          'method', 'password',
          'session_id', md5(r.tenant_id || ':session:' || (g / 50)),
          'path', '/api/v1/projects/p' || (g % 500) || '/files/f' || g,
          'size_bytes', (g * 37) % 10000000,
          'content_type', 'application/pdf',
          'client', jsonb_build_object('name', 'web-app', 'version', '4.12.' || (g % 30)),
          'labels', jsonb_build_array('finance', 'q3-report', 'external'),
          'reason', case when g % 20 = 0 then 'invalid_credentials' end),
        c.at
      from jsonb_to_recordset(${JSON.stringify(runs)}::jsonb)
          as r(tenant_id text, first_seq bigint, events int, start timestamptz, step_ms float8)
        cross join lateral generate_series(1, r.events::bigint) as g
        cross join lateral (select r.start + (g - 1) * r.step_ms * interval '1 millisecond' as at) c`.execute(
      db,
    );
    await sql`
      insert into activity_tenants (tenant_id, last_seq, last_created_at)
      select tenant_id, max(seq), max(created_at) from activity_events group by tenant_id`.execute(db);
    await sql`vacuum (analyze) activity_events, activity_tenants`.execute(db);
    const { rows } = await sql`
      select (select count(*) from activity_events_default)::int as in_default,
        (select count(*) from ${sql.id(partitionOf(monthStart))})::int as in_month,
        (select avg(length(metadata::text)) from activity_events)::int as metadata_bytes`.execute(db);
    const [{ in_default, in_month, metadata_bytes }] = rows;
    if (in_default !== 0 || in_month !== monthEvents) {
      throw new Error(`month M holds ${in_month} events and the default partition ${in_default}`);
    }
    // Each purge starts from the same clean slate rather than behind the load's writes.
    await sql`checkpoint`.execute(db);
    return { load_ms: round(performance.now() - started), metadata_bytes };
  } finally {
    await database.close();
  }
}

function partitionOf(month) {
  return `activity_events_y${month.getUTCFullYear()}m${String(month.getUTCMonth() + 1).padStart(2, '0')}`;
}

function percentiles(values) {
  const sorted = values.toSorted((a, b) => a - b);
  const at = (quantile) => round(sorted[Math.max(0, Math.ceil(quantile * sorted.length) - 1)] ?? 0);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: at(1) };
}

/** Percentiles of the appends' latencies, and when the slowest started. */
function summarizeInserts(latencies) {
  const slowest = latencies.reduce((max, latency) => (latency.ms > max.ms ? latency : max), latencies[0]);
  return { ...percentiles(latencies.map((latency) => latency.ms)), max_started_at_ms: round(slowest.at) };
}

/** Single-event appends back to back until `stop.done`, each with its latency and start (ms since `origin`). */
async function insertUntil(writer, stop, origin) {
  const latencies = [];
  while (!stop.done) {
    const event = {
      id: v7(),
      tenant_id: liveTenant,
      action: 'auth.login.success',
      actor_type: 'user',
      actor_id: 'u1',
      object_type: null,
      object_id: null,
      status: 'success',
      source: null,
      request_id: null,
      ip_hash: null,
      user_agent: null,
      metadata: {},
    };
    const started = performance.now();
    await writer.repository.append(liveTenant, [event], new Date());
    latencies.push({ at: started - origin, ms: performance.now() - started });
  }
  return latencies;
}

/**
 * The longest lock wait seen per application until `stop.done`. A backend's wait is
 * counted from the start of its statement, so it is an upper bound, sampled every few ms.
 */
async function sampleLockWaits(sampler, stop) {
  const longest = { insert: 0, purge: 0 };
  while (!stop.done) {
    const { rows } = await sampler.query(
      `select application_name, extract(epoch from clock_timestamp() - query_start) * 1000 as waited_ms
       from pg_stat_activity
       where datname = current_database() and wait_event_type = 'Lock' and application_name = any($1)`,
      [[apps.insert, apps.purge]],
    );
    for (const row of rows) {
      const key = row.application_name === apps.insert ? 'insert' : 'purge';
      longest[key] = Math.max(longest[key], round(Number(row.waited_ms)));
    }
    await sleep(sampleEveryMs);
  }
  return longest;
}

/** Runs `task` with the inserter and the lock sampler going; returns its result and theirs. */
async function withInserter(writer, sampler, task) {
  const stop = { done: false };
  const origin = performance.now();
  const inserting = insertUntil(writer, stop, origin);
  const sampling = sampleLockWaits(sampler, stop);
  try {
    const result = await task();
    const ms = round(performance.now() - origin);
    stop.done = true;
    return { result, ms, latencies: await inserting, lockWaits: await sampling };
  } finally {
    stop.done = true;
    await Promise.allSettled([inserting, sampling]);
  }
}

const scenarios = {
  // purge as `activity purge` runs it: M's partition goes whole.
  async drop(purger) {
    const now = new Date();
    const started = performance.now();
    let droppedAfterMs;
    const report = await purgeExpired(
      { events: purger.repository, retention: purger.retention },
      { now, defaultRetentionMs: now.getTime() - cutoff.getTime(), batchSize, dryRun: false },
      // The rest of the run is the sweep of the tenants for expired rows outside M.
      (progress) => {
        if (progress.step === 'partition') droppedAfterMs = round(performance.now() - started);
      },
    );
    const dropped = report.partitions.map((partition) => partition.name);
    // A drop that ran out of lock_timeout leaves M to the batched delete: not this scenario.
    if (dropped.join() !== partitionOf(monthStart)) throw new Error(`drop dropped [${dropped}]`);
    return { deleted: report.deleted, partition_dropped_after_ms: droppedAfterMs };
  },

  // The batched path alone (with a tenant, purge never drops a partition): one call per
  // tenant, back to back, so the elapsed time is the sum of the calls.
  async batched(purger) {
    const now = new Date();
    const batchMs = new Map();
    let deleted = 0;
    for (const tenantId of tenants) {
      // Each batch timed from the end of the previous one; a tenant's first batch would
      // also count the purge call's own queries, so it is left out.
      const times = [];
      let previous;
      const report = await purgeExpired(
        { events: purger.repository, retention: purger.retention },
        { now, defaultRetentionMs: now.getTime() - cutoff.getTime(), tenantId, batchSize, dryRun: false },
        () => {
          const at = performance.now();
          if (previous !== undefined) times.push(at - previous);
          previous = at;
        },
      );
      batchMs.set(tenantId, times);
      deleted += report.deleted;
    }
    // Whether batches slow down as the deleted rows pile up at the front of the tenant's
    // index: the biggest tenant's first and last batches compared.
    const biggest = batchMs.get(tenants[0]);
    return {
      deleted,
      batch_ms: percentiles([...batchMs.values()].flat()),
      biggest_tenant: {
        batches: biggest.length,
        first_20_p50_ms: percentiles(biggest.slice(0, 20)).p50,
        last_20_p50_ms: percentiles(biggest.slice(-20)).p50,
      },
    };
  },

  // The baseline: one statement, one transaction, however many rows.
  async raw(purger) {
    const result = await sql`delete from activity_events where created_at < ${cutoff}::timestamptz`.execute(
      purger.db,
    );
    return { deleted: Number(result.numAffectedRows) };
  },
};

async function run(name) {
  log(`${name}: loading`);
  const loaded = await load();
  log(`${name}: loaded in ${(loaded.load_ms / 1000).toFixed(1)} s; purging`);
  const purger = await openDatabase({ kind: 'postgres', url: urlFor(scratchDatabase, apps.purge) });
  const writer = await openDatabase({ kind: 'postgres', url: urlFor(scratchDatabase, apps.insert) });
  const sampler = new pg.Client({ connectionString: urlFor(scratchDatabase, 'purge-bench-sampler') });
  await sampler.connect();
  try {
    // Connections open and the append planned before anything is timed.
    await sql`select 1`.execute(purger.db);
    await withInserter(writer, sampler, () => sleep(warmupMs));
    const baseline = await withInserter(writer, sampler, () => sleep(baselineMs));
    const purge = await withInserter(writer, sampler, () => scenarios[name](purger));
    const { rows } = await sql`
      select count(*) filter (where created_at < ${cutoff}::timestamptz)::int as expired from activity_events`.execute(
      purger.db,
    );
    if (purge.result.deleted !== monthEvents || rows[0].expired !== 0) {
      throw new Error(`${name} deleted ${purge.result.deleted} events and left ${rows[0].expired} expired`);
    }
    const figures = {
      ...loaded,
      purge_ms: purge.ms,
      ...purge.result,
      insert_during_purge: summarizeInserts(purge.latencies),
      insert_baseline: summarizeInserts(baseline.latencies),
      lock_wait_during_purge_ms: purge.lockWaits,
      lock_wait_baseline_ms: baseline.lockWaits,
    };
    log(
      `${name}: ${figures.purge_ms} ms; inserts p50/p99/max ${figures.insert_during_purge.p50}/` +
        `${figures.insert_during_purge.p99}/${figures.insert_during_purge.max} ms ` +
        `(baseline ${figures.insert_baseline.p50}/${figures.insert_baseline.p99}/${figures.insert_baseline.max})`,
    );
    return figures;
  } finally {
    await sampler.end();
    await writer.close();
    await purger.close();
  }
}

const median = (values) => {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : round((sorted[middle - 1] + sorted[middle]) / 2);
};

/** The median of every number in the runs' figures, nested as they are. */
function medians(runs) {
  return Object.fromEntries(
    Object.entries(runs[0]).flatMap(([key, value]) => {
      if (typeof value === 'number') return [[key, median(runs.map((figures) => figures[key]))]];
      if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
        return [[key, medians(runs.map((figures) => figures[key]))]];
      }
      return [];
    }),
  );
}

const results = Object.fromEntries(Object.keys(scenarios).map((name) => [name, []]));
try {
  // Scenarios take turns, so a drift of the machine spreads over all three.
  for (let repetition = 1; repetition <= repetitions; repetition++) {
    for (const name of Object.keys(scenarios)) {
      log(`repetition ${repetition}/${repetitions}`);
      results[name].push(await run(name));
    }
  }
} finally {
  await admin(`drop database if exists ${scratchDatabase}`);
}

const { rows: server } = await admin('show server_version');
process.stdout.write(
  `${JSON.stringify(
    {
      setup: {
        server_version: server[0].server_version,
        month: partitionOf(monthStart),
        cutoff: cutoff.toISOString(),
        month_events: monthEvents,
        later_events: laterEvents,
        tenants: tenantCount,
        biggest_tenants_in_month: monthSizes.slice(0, 5),
        insert_tenant: liveTenant,
        batch_size: batchSize,
        baseline_ms: baselineMs,
        lock_sample_every_ms: sampleEveryMs,
        repetitions,
      },
      median: Object.fromEntries(Object.entries(results).map(([name, runs]) => [name, medians(runs)])),
      runs: results,
    },
    null,
    2,
  )}\n`,
);
