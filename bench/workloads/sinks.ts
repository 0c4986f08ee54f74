import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BenchContext } from '../lib/context.js';
import { binPath, repoRoot } from '../lib/context.js';
import { bulkLoad, eventInput } from '../lib/dataset.js';
import { runProcess } from '../lib/process.js';
import { median, percentile } from '../lib/stats.js';
import { cliEnvironment, migrate, openTool } from '../lib/tool.js';
import { type BenchRow, formatNumber, milliseconds, perSecond, type Workload } from '../lib/workload.js';

/**
 * B25: `activity deliver --once` of a tenant's backlog to a receiver on loopback that
 * accepts each POST at once (ndjson, batches of 500), against `activity query --all`
 * of the same tenant (B8's command): what delivering costs over reading. Its peak RSS
 * against the same delivery of a tenant a tenth the size: flat, as a backlog must not
 * grow memory.
 */
export const sinkWorkload: Workload = {
  ids: ['B25', 'B26'],
  async run(context) {
    return [...(await backlogRow(context)), ...(await latencyRow(context))];
  },
};

/** B25: the backlog delivered by `deliver --once`, against `query --all`. */
async function backlogRow(context: BenchContext): Promise<BenchRow[]> {
  const { sizes } = context;
  const url = await context.createDatabase('bench_sinks');
  await migrate(url);
  context.log(
    `loading ${formatNumber(sizes.importEvents)} + ${formatNumber(sizes.exportSmall)} events to deliver`,
  );
  await bulkLoad(url, [
    ['sink_big', sizes.importEvents],
    ['sink_small', sizes.exportSmall],
  ]);
  let received = 0;
  const receiver = createServer((request, response) => {
    request.on('data', (chunk: Buffer) => {
      for (let at = chunk.indexOf(0x0a); at >= 0; at = chunk.indexOf(0x0a, at + 1)) received++;
    });
    request.on('end', () => response.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
  const cli = (args: string[]) =>
    runProcess(process.execPath, [binPath, ...args], { env: cliEnvironment(url), cwd: repoRoot });
  try {
    const deliver = async (tenant: string, events: number) => {
      const added = await cli([
        'sink',
        'add',
        '--tenant',
        tenant,
        '--url',
        hook,
        '--payload',
        'ndjson',
        '--from-start',
      ]);
      if (added.exitCode !== 0) throw new Error(`sink add failed: ${added.stderr}`);
      received = 0;
      const run = await cli(['deliver', '--once']);
      if (run.exitCode !== 0 || received !== events) {
        throw new Error(`deliver --once delivered ${received} of ${events}: ${run.stderr.slice(-2000)}`);
      }
      return run;
    };
    context.log('delivering the small backlog, then the big one');
    const small = await deliver('sink_small', sizes.exportSmall);
    const big = await deliver('sink_big', sizes.importEvents);
    context.log('query --all of the big tenant');
    const read = await cli(['query', '--tenant', 'sink_big', '--all', '--format', 'ndjson']);
    if (read.exitCode !== 0) throw new Error(`query --all failed: ${read.stderr}`);
    const rate = sizes.importEvents / big.seconds;
    const readRate = sizes.importEvents / read.seconds;
    const ratio = rate / readRate;
    const flat = big.peakRssMb <= small.peakRssMb * 1.1;
    return [
      {
        id: 'B25',
        workload: `activity deliver --once of ${formatNumber(sizes.importEvents)} events (ndjson, batches of 500) to a receiver on loopback`,
        tool: `${perSecond(rate)}, peak RSS ${formatNumber(big.peakRssMb)} MB (${formatNumber(small.peakRssMb)} MB for ${formatNumber(sizes.exportSmall)})`,
        baseline: `${perSecond(readRate, 'rows/s')} (query --all of the same tenant)`,
        ratio,
        target: '≥ 20,000 events/s and ≥ 0.5×; RSS flat',
        met: rate >= 20_000 && ratio >= 0.5 && flat,
        figures: {
          tool_seconds: big.seconds,
          tool_peak_rss_mb: big.peakRssMb,
          tool_small_peak_rss_mb: small.peakRssMb,
          baseline_seconds: read.seconds,
        },
        notes: `both include the process's start; flat means the big backlog's peak RSS within 10% of the small one's`,
      } satisfies BenchRow,
    ];
  } finally {
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}

/**
 * B26: record → delivered at `fanoutRate` events/s (200 in a full run) over a few
 * tenants, with the library's delivery running in the same process as `serve` runs it
 * (one sink of every tenant, ndjson), to a receiver on loopback that notes when each
 * event arrives.
 */
async function latencyRow(context: BenchContext): Promise<BenchRow[]> {
  const { fanoutRate, fanoutSeconds } = context.sizes;
  const url = await context.createDatabase('bench_sink_latency');
  await migrate(url);
  const arrived = new Map<string, number>();
  const receiver = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const now = performance.now();
      for (const line of Buffer.concat(chunks).toString('utf8').split('\n')) {
        if (line !== '') arrived.set((JSON.parse(line) as { id: string }).id, now);
      }
      response.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/`;
  const app = await openTool(url);
  const stop = new AbortController();
  try {
    await app.sinks.add({ tenantId: null, url: hook, payload: 'ndjson' });
    const delivering = app.delivery.run(stop.signal);
    const total = fanoutRate * fanoutSeconds;
    const sentAt = new Map<string, number>();
    const writes: Array<Promise<void>> = [];
    const started = performance.now();
    context.log(`B26: recording ${fanoutRate}/s for ${fanoutSeconds} s with a sink of every tenant`);
    for (let k = 0; k < total; k++) {
      const wait = started + (k * 1000) / fanoutRate - performance.now();
      if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
      const begun = performance.now();
      writes.push(
        app.service.record(eventInput(`sink_t${k % 4}`, k)).then((event) => {
          sentAt.set(event.id, begun);
        }),
      );
    }
    await Promise.all(writes);
    const settled = performance.now();
    while (arrived.size < total && performance.now() - settled < 15_000) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    stop.abort();
    await delivering;
    const latencies = [...sentAt].flatMap(([id, begun]) => {
      const at = arrived.get(id);
      return at === undefined ? [] : [at - begun];
    });
    const missing = total - latencies.length;
    const p50 = median(latencies);
    const p99 = percentile(latencies, 99);
    return [
      {
        id: 'B26',
        workload: `record → delivered to a sink, ${fanoutRate} events/s for ${fanoutSeconds} s over 4 tenants`,
        tool: `p50 ${milliseconds(p50)}, p99 ${milliseconds(p99)}; ${formatNumber(latencies.length)}/${formatNumber(total)} delivered`,
        baseline: '—',
        ratio: null,
        target: 'p99 ≤ 1 s, none missing',
        met: p99 <= 1000 && missing === 0,
        figures: { p50_ms: p50, p99_ms: p99, missing },
        notes:
          "the library's delivery in the recording process, as serve runs it: a pass every 250 ms when idle",
      },
    ];
  } finally {
    stop.abort();
    await app.close();
    await new Promise<void>((resolve) => receiver.close(() => resolve()));
  }
}
