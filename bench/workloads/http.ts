import { bulkLoad } from '../lib/dataset.js';
import { getJson, type LoadResult, runLoad } from '../lib/http-load.js';
import { mintToken, type ServedProcess, startBareServer, startServe } from '../lib/serve.js';
import { median } from '../lib/stats.js';
import { migrate } from '../lib/tool.js';
import { type BenchRow, formatNumber, milliseconds, perSecond, type Workload } from '../lib/workload.js';

const tenantId = 'http';
const connections = 50;
/** B24's back-to-back pairs: two for each repetition of B9. */
const pairsFor = (repetitions: number) => 2 * repetitions;

/** The first page's shape: 50 events with the contract's fields, in the same order. */
function describePage(page: unknown): string {
  const { data } = page as { data: Array<Record<string, unknown>> };
  return `${data.length} × ${Object.keys(data[0] ?? {}).join(',')}`;
}

/**
 * B9: `GET /api/v1/activity` (first page of 50) under 50 keep-alive connections,
 * `activity serve` (bearer token verified on every request, parameters validated,
 * cursor signed, request logged and counted) against a bare node:http + pg server
 * running the same keyset SQL with no auth. One load generator (in this process)
 * drives both; each side's process runs alone while it is measured, the two
 * alternating when there are several repetitions.
 */
export const httpWorkload: Workload = {
  ids: ['B9', 'B24'],
  async run(context) {
    const { sizes } = context;
    const events = context.quick ? 5000 : 100_000;
    const url = await context.createDatabase('bench_http');
    await migrate(url);
    context.log(`B9: loading ${formatNumber(events)} events for one tenant`);
    await bulkLoad(url, [[tenantId, events]]);
    const token = await mintToken(url, tenantId, ['activity:read']);
    const toolHeaders = { authorization: `Bearer ${token}` };

    const servers: ServedProcess[] = [];
    try {
      const serve = await startServe({ databaseUrl: url, scratch: context.scratch, name: 'b9-serve' });
      servers.push(serve);
      const bare = await startBareServer({ databaseUrl: url, tenantId, scratch: context.scratch });
      servers.push(bare);
      // B24: the same serve with its reads not recorded.
      const quiet = await startServe({
        databaseUrl: url,
        scratch: context.scratch,
        name: 'b24-serve',
        env: { ACTIVITY_AUDIT_READS: 'false' },
      });
      servers.push(quiet);
      const quietUrl = `${quiet.url}/api/v1/activity`;
      const toolUrl = `${serve.url}/api/v1/activity`;
      const bareUrl = `${bare.url}/api/v1/activity`;

      // Both answer the same page before either is timed.
      const toolShape = describePage(await getJson(toolUrl, toolHeaders));
      const bareShape = describePage(await getJson(bareUrl));
      if (toolShape !== bareShape) throw new Error(`the pages differ: serve ${toolShape}, bare ${bareShape}`);

      const measure = async (
        server: ServedProcess,
        target: string,
        headers?: Record<string, string>,
        seconds = sizes.httpSeconds,
      ) => {
        const cpuBefore = await server.cpuSeconds();
        const result = await runLoad({
          url: target,
          ...(headers ? { headers } : {}),
          connections,
          seconds,
          warmupSeconds: Math.max(0.5, seconds / 10),
        });
        const cpu = (await server.cpuSeconds()) - cpuBefore;
        return { ...result, cpuMsPerRequest: (cpu * 1000) / (result.ok + result.warmupRequests) };
      };
      const toolRuns: Array<LoadResult & { cpuMsPerRequest: number }> = [];
      const bareRuns: Array<LoadResult & { cpuMsPerRequest: number }> = [];
      const quietRuns: Array<LoadResult & { cpuMsPerRequest: number }> = [];
      for (let i = 0; i < sizes.repetitions; i++) {
        context.log(`B9: serve, ${sizes.httpSeconds} s (${i + 1}/${sizes.repetitions})`);
        toolRuns.push(await measure(serve, toolUrl, toolHeaders));
        context.log(`B9: bare server, ${sizes.httpSeconds} s (${i + 1}/${sizes.repetitions})`);
        bareRuns.push(await measure(bare, bareUrl));
        context.log(`B24: serve, reads not recorded, ${sizes.httpSeconds} s (${i + 1}/${sizes.repetitions})`);
        quietRuns.push(await measure(quiet, quietUrl, toolHeaders));
      }
      // B24 compares two servers a few percent apart, while this machine's throughput
      // drifts more than that from one run to the next: it takes the median ratio of
      // back-to-back pairs, in alternating order (recorded first, then not first).
      const pairRatios: number[] = [];
      for (let i = 0; i < pairsFor(sizes.repetitions); i++) {
        context.log(`B24: pair ${i + 1}/${pairsFor(sizes.repetitions)}, ${sizes.httpSeconds / 2} s each`);
        const order = i % 2 === 0 ? ['recorded', 'not'] : ['not', 'recorded'];
        const rates: Record<string, number> = {};
        for (const side of order) {
          const run =
            side === 'recorded'
              ? await measure(serve, toolUrl, toolHeaders, sizes.httpSeconds / 2)
              : await measure(quiet, quietUrl, toolHeaders, sizes.httpSeconds / 2);
          rates[side] = run.requestsPerSecond;
        }
        pairRatios.push((rates.recorded as number) / (rates.not as number));
      }
      const pick = (runs: typeof toolRuns) => {
        const rps = median(runs.map((run) => run.requestsPerSecond));
        return runs.find((run) => run.requestsPerSecond === rps) as (typeof runs)[number];
      };
      const tool = pick(toolRuns);
      const base = pick(bareRuns);
      const unrecorded = pick(quietRuns);
      const errors = [...toolRuns, ...bareRuns].reduce((sum, run) => sum + run.errors, 0);
      const quietErrors = quietRuns.reduce((sum, run) => sum + run.errors, 0);
      const readCost = median(pairRatios);
      const ratio = tool.requestsPerSecond / base.requestsPerSecond;
      return [
        {
          id: 'B9',
          workload: `GET /api/v1/activity first page, ${connections} connections, ${sizes.httpSeconds} s (tenant of ${formatNumber(events)})`,
          tool: `${perSecond(tool.requestsPerSecond, 'req/s')}, p50 ${milliseconds(tool.p50Ms)}, p99 ${milliseconds(tool.p99Ms)}`,
          baseline: `${perSecond(base.requestsPerSecond, 'req/s')}, p50 ${milliseconds(base.p50Ms)}, p99 ${milliseconds(base.p99Ms)} (bare node:http + pg)`,
          ratio,
          target: '≥ 0.7×',
          met: ratio >= 0.7 && errors === 0,
          figures: {
            tool_requests_per_second: tool.requestsPerSecond,
            tool_p50_ms: tool.p50Ms,
            tool_p99_ms: tool.p99Ms,
            tool_cpu_ms_per_request: tool.cpuMsPerRequest,
            baseline_requests_per_second: base.requestsPerSecond,
            baseline_p50_ms: base.p50Ms,
            baseline_p99_ms: base.p99Ms,
            baseline_cpu_ms_per_request: base.cpuMsPerRequest,
            errors,
            repetitions: sizes.repetitions,
          },
          notes:
            `bare: the same keyset SQL, prepared, on a pg Pool of 10, no auth, a plain seq as next_cursor; ` +
            `median of ${sizes.repetitions} run(s) per side, in turn; server CPU per request: serve ${milliseconds(tool.cpuMsPerRequest)}, bare ${milliseconds(base.cpuMsPerRequest)}; ` +
            `the load generator shares the machine's cores with the server${errors > 0 ? `; ${errors} non-200 responses` : ''}`,
        } satisfies BenchRow,
        {
          id: 'B24',
          workload:
            "B9's pages with each read recorded (activity.events.read), over ACTIVITY_AUDIT_READS=false",
          tool: `${perSecond(tool.requestsPerSecond, 'req/s')}, p50 ${milliseconds(tool.p50Ms)}, p99 ${milliseconds(tool.p99Ms)}`,
          baseline: `${perSecond(unrecorded.requestsPerSecond, 'req/s')}, p50 ${milliseconds(unrecorded.p50Ms)}, p99 ${milliseconds(unrecorded.p99Ms)} (reads not recorded)`,
          ratio: readCost,
          target: '≥ 0.9×',
          met: readCost >= 0.9 && errors + quietErrors === 0,
          figures: {
            tool_requests_per_second: tool.requestsPerSecond,
            unrecorded_requests_per_second: unrecorded.requestsPerSecond,
            tool_cpu_ms_per_request: tool.cpuMsPerRequest,
            unrecorded_cpu_ms_per_request: unrecorded.cpuMsPerRequest,
            pairs: pairRatios.length,
            lowest_pair_ratio: Math.min(...pairRatios),
            highest_pair_ratio: Math.max(...pairRatios),
          },
          notes:
            `the ratio is the median of ${pairRatios.length} back-to-back pairs (${pairRatios.map((each) => each.toFixed(2)).join(', ')}), ` +
            `the rates shown those of the runs of B9; server CPU per request: recorded ${milliseconds(tool.cpuMsPerRequest)}, not ${milliseconds(unrecorded.cpuMsPerRequest)}`,
        } satisfies BenchRow,
      ];
    } finally {
      for (const server of servers.reverse()) await server.stop();
    }
  },
};
