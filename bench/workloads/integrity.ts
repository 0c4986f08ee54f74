import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ActivityApp, loadConfig, openApp } from 'activity';
import pg from 'pg';
import { binPath, repoRoot } from '../lib/context.js';
import { bulkLoad, eventInput } from '../lib/dataset.js';
import { runLoad } from '../lib/http-load.js';
import { runProcess } from '../lib/process.js';
import { mintToken, startServe } from '../lib/serve.js';
import { median, percentile } from '../lib/stats.js';
import { benchSecret, cliEnvironment, migrate } from '../lib/tool.js';
import { type BenchRow, formatNumber, milliseconds, perSecond, type Workload } from '../lib/workload.js';

/**
 * B15–B18, the verifiable log: `activity verify` of a big tenant (throughput and peak
 * RSS, beside `query --all` of the same tenant in the same run), a proof's latency
 * from the library (beside a raw point read of one event), proofs over HTTP (beside
 * the same server's first page, B9's request), and `checkpoint` of many tenants with
 * new events. The events are bulk-loaded, then brought into their trees by `migrate`
 * as an upgraded database's are.
 */
export const integrityWorkload: Workload = {
  ids: ['B15', 'B16', 'B17', 'B18'],
  async run(context) {
    const { sizes } = context;
    const big = sizes.importEvents;
    const url = await context.createDatabase('bench_integrity');
    await migrate(url);
    context.log(`B15–B17: loading ${formatNumber(big)} events, then hashing them into their tree`);
    await bulkLoad(url, [
      ['verify_big', big],
      ['verify_small', sizes.exportSmall],
    ]);
    // Stored as before the tree: noted as migration 0004 notes the events it finds.
    await noteForBackfill(url, ['verify_big', 'verify_small']);
    const hashing = performance.now();
    await migrate(url);
    const hashedIn = (performance.now() - hashing) / 1000;
    const keyFile = join(context.scratch, 'signing-key.pem');
    writeFileSync(
      keyFile,
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }),
      {
        mode: 0o600,
      },
    );
    const env = { ...cliEnvironment(url), ACTIVITY_SIGNING_KEY_FILE: keyFile };
    const app = await openApp(
      loadConfig({ databaseUrl: url }, { ACTIVITY_SECRET: benchSecret, ACTIVITY_SIGNING_KEY_FILE: keyFile }),
    );
    const rows: BenchRow[] = [];
    try {
      await app.integrity.checkpoint();
      rows.push(await verifyRow(env, big, sizes.exportSmall, hashedIn));
      rows.push(await proofRow(app, url, big, sizes.samples));
      rows.push(await httpProofRow(context, url, big));
      rows.push(await checkpointRow(context, keyFile));
    } finally {
      await app.close();
    }
    return rows;
  },
};

async function verifyRow(
  env: Record<string, string>,
  big: number,
  small: number,
  hashedIn: number,
): Promise<BenchRow> {
  const cli = (args: string[]) => runProcess(process.execPath, [binPath, ...args], { env, cwd: repoRoot });
  const verifySmall = await cli(['verify', '--tenant', 'verify_small', '--format', 'json']);
  const verifyBig = await cli(['verify', '--tenant', 'verify_big', '--format', 'json']);
  const exportBig = await cli(['query', '--tenant', 'verify_big', '--all', '--format', 'ndjson']);
  for (const run of [verifySmall, verifyBig, exportBig]) {
    if (run.exitCode !== 0) throw new Error(`a command failed (exit ${run.exitCode}): ${run.stderr}`);
  }
  const rate = big / verifyBig.seconds;
  const exportRate = big / exportBig.seconds;
  const flat = verifyBig.peakRssMb <= verifySmall.peakRssMb * 1.1;
  return {
    id: 'B15',
    workload: `activity verify, a tenant of ${formatNumber(big)} events`,
    tool: `${perSecond(rate)}, peak RSS ${formatNumber(verifyBig.peakRssMb)} MB (${formatNumber(verifySmall.peakRssMb)} MB for ${formatNumber(small)})`,
    baseline: `${perSecond(exportRate)} (query --all of the same tenant, B8's command)`,
    ratio: rate / exportRate,
    target: '≥ 100,000 events/s; RSS flat',
    met: rate >= 100_000 && flat,
    figures: {
      verify_seconds: verifyBig.seconds,
      verify_peak_rss_mb: verifyBig.peakRssMb,
      verify_small_peak_rss_mb: verifySmall.peakRssMb,
      export_seconds: exportBig.seconds,
      migrate_hashing_seconds: hashedIn,
    },
    notes: `migrate hashed ${formatNumber(big + small)} stored events into their trees in ${formatNumber(hashedIn, 1)} s`,
  };
}

async function proofRow(app: ActivityApp, url: string, big: number, samples: number): Promise<BenchRow> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const seqOf = (i: number) => 1 + ((i * 7919) % big);
    const toolTimes: number[] = [];
    const rawTimes: number[] = [];
    for (let i = 0; i < Math.min(50, samples); i++) await app.integrity.proof('verify_big', seqOf(i));
    for (let i = 0; i < samples; i++) {
      let started = performance.now();
      await app.integrity.proof('verify_big', seqOf(i));
      toolTimes.push(performance.now() - started);
      started = performance.now();
      await client.query({
        name: 'bench_point_read',
        text: 'select * from activity_events where tenant_id = $1 and seq = $2',
        values: ['verify_big', seqOf(i)],
      });
      rawTimes.push(performance.now() - started);
    }
    const p50 = median(toolTimes);
    const raw = median(rawTimes);
    return {
      id: 'B16',
      workload: `inclusion proof from the library, a tenant of ${formatNumber(big)} events`,
      tool: `p50 ${milliseconds(p50)}, p99 ${milliseconds(percentile(toolTimes, 99))}`,
      baseline: `p50 ${milliseconds(raw)} (one event read by its key)`,
      ratio: p50 / raw,
      target: 'p50 ≤ 2 ms',
      met: p50 <= 2,
      figures: { tool_p50_ms: p50, tool_p99_ms: percentile(toolTimes, 99), baseline_p50_ms: raw },
    };
  } finally {
    await client.end();
  }
}

async function httpProofRow(
  context: Parameters<Workload['run']>[0],
  url: string,
  big: number,
): Promise<BenchRow> {
  const { sizes } = context;
  const token = await mintToken(url, 'verify_big', ['activity:read']);
  const headers = { authorization: `Bearer ${token}` };
  const serve = await startServe({ databaseUrl: url, scratch: context.scratch, name: 'b17-serve' });
  try {
    const load = (path: string) =>
      runLoad({
        url: `${serve.url}${path}`,
        headers,
        connections: 50,
        seconds: sizes.httpSeconds,
        warmupSeconds: Math.max(0.5, sizes.httpSeconds / 10),
      });
    const proofs: number[] = [];
    const pages: number[] = [];
    let errors = 0;
    for (let i = 0; i < sizes.repetitions; i++) {
      const proof = await load(`/api/v1/activity/proof?seq=${Math.ceil(big / 2)}`);
      const page = await load('/api/v1/activity');
      proofs.push(proof.requestsPerSecond);
      pages.push(page.requestsPerSecond);
      errors += proof.errors + page.errors;
    }
    const proofRate = median(proofs);
    const pageRate = median(pages);
    return {
      id: 'B17',
      workload: 'GET /api/v1/activity/proof, 50 connections',
      tool: perSecond(proofRate, 'req/s'),
      baseline: `${perSecond(pageRate, 'req/s')} (GET /api/v1/activity, B9's request, same server)`,
      ratio: proofRate / pageRate,
      target: '≥ 0.7×',
      met: proofRate / pageRate >= 0.7 && errors === 0,
      figures: { proof_rps: proofRate, page_rps: pageRate, errors },
      ...(errors > 0 ? { notes: `${errors} requests failed` } : {}),
    };
  } finally {
    await serve.stop();
  }
}

async function checkpointRow(context: Parameters<Workload['run']>[0], keyFile: string): Promise<BenchRow> {
  const tenants = context.quick ? 500 : 10_000;
  const url = await context.createDatabase('bench_checkpoints');
  await migrate(url);
  const app = await openApp(
    loadConfig({ databaseUrl: url }, { ACTIVITY_SECRET: benchSecret, ACTIVITY_SIGNING_KEY_FILE: keyFile }),
  );
  try {
    context.log(`B18: ${formatNumber(tenants)} tenants of 3 events`);
    const ids = Array.from({ length: tenants }, (_, i) => `cp_${i}`);
    // One event for every tenant, 500 at a time (the service batches them across tenants).
    const recordAll = async () => {
      for (let from = 0; from < ids.length; from += 500) {
        await Promise.all(
          ids
            .slice(from, from + 500)
            .map((tenantId, i) => app.service.record(eventInput(tenantId, from + i))),
        );
      }
    };
    for (let round = 0; round < 3; round++) await recordAll();
    let started = performance.now();
    const first = await app.integrity.checkpoint();
    const firstSeconds = (performance.now() - started) / 1000;
    await recordAll();
    started = performance.now();
    const next = await app.integrity.checkpoint();
    const nextSeconds = (performance.now() - started) / 1000;
    if (first.length !== tenants || next.length !== tenants) {
      throw new Error(`signed ${first.length} then ${next.length} checkpoints of ${tenants} tenants`);
    }
    return {
      id: 'B18',
      workload: `activity checkpoint, ${formatNumber(tenants)} tenants with new events`,
      tool: `${formatNumber(nextSeconds, 2)} s (each extending its last: a consistency proof checked)`,
      baseline: `${formatNumber(firstSeconds, 2)} s (first checkpoints, nothing to extend)`,
      ratio: null,
      target: '≤ 10 s',
      met: nextSeconds <= 10,
      figures: { first_seconds: firstSeconds, next_seconds: nextSeconds, tenants },
    };
  } finally {
    await app.close();
  }
}

/** Notes bulk-loaded tenants as migration 0004 does the tenants it finds, for `migrate` to hash. */
async function noteForBackfill(url: string, tenants: readonly string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(
      `insert into activity_tree_backfill (tenant_id, through_seq)
       select tenant_id, last_seq from activity_tenants where tenant_id = any($1::text[])`,
      [tenants],
    );
  } finally {
    await client.end();
  }
}
