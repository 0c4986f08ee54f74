import { Agent } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import pg from 'pg';
import type { BenchContext } from '../lib/context.js';
import { eventInput } from '../lib/dataset.js';
import { getText, postJson } from '../lib/http-load.js';
import { histogramBounds, mintToken, mintTokens, type ServedProcess, startServe } from '../lib/serve.js';
import { openSseStream, type SseStream } from '../lib/sse-client.js';
import { percentile } from '../lib/stats.js';
import { migrate, openTool, rawInsert } from '../lib/tool.js';
import { type BenchRow, formatNumber, milliseconds, type Workload } from '../lib/workload.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** How long one event may take to arrive before it counts as lost. */
const arrivalTimeoutMs = 10_000;
/** The pause between two timed events (of either side). */
const pauseMs = 5;

/** Waits for keys to arrive: `expect(key)` before the write, `arrived(key)` from the receiver. */
function createArrivals() {
  const waiting = new Map<string, (at: number) => void>();
  return {
    expect(key: string): Promise<number | undefined> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          waiting.delete(key);
          resolve(undefined);
        }, arrivalTimeoutMs);
        // A probe that failed must not hold the process open for its events.
        timer.unref();
        waiting.set(key, (at) => {
          clearTimeout(timer);
          waiting.delete(key);
          resolve(at);
        });
      });
    },
    arrived(key: string) {
      waiting.get(key)?.(performance.now());
    },
  };
}

interface Timing {
  /** Milliseconds from just before the write to the receipt, per arrived event. */
  latencies: number[];
  lost: number;
}

type Transport = 'redis' | 'postgres';

/** A raw insert, then a publish on the transport, received by a subscriber in this process. */
async function openBaseline(url: string, transport: Transport, redisUrl: string) {
  const arrivals = createArrivals();
  const writer = new pg.Client({ connectionString: url });
  await writer.connect();
  const closers: Array<() => Promise<unknown>> = [() => writer.end()];
  try {
    let publish: (key: string) => Promise<unknown>;
    if (transport === 'redis') {
      const subscriber = new Redis(redisUrl);
      const publisher = new Redis(redisUrl);
      closers.push(
        async () => subscriber.disconnect(),
        async () => publisher.disconnect(),
      );
      subscriber.on('message', (_channel: string, message: string) => arrivals.arrived(message));
      await subscriber.subscribe('bench:latency');
      publish = (key) => publisher.publish('bench:latency', key);
    } else {
      const listener = new pg.Client({ connectionString: url });
      await listener.connect();
      closers.push(() => listener.end());
      listener.on('notification', (message) => {
        if (message.payload) arrivals.arrived(message.payload);
      });
      await listener.query('LISTEN bench_latency');
      publish = (key) =>
        writer.query({
          name: 'bench_notify',
          text: 'select pg_notify($1, $2)',
          values: ['bench_latency', key],
        });
    }
    // Seqs of their own tenant, so they never meet the tool's.
    let seq = 0;
    return {
      async once(i: number): Promise<number | undefined> {
        const key = `raw-${i}`;
        const arrived = arrivals.expect(key);
        const started = performance.now();
        await rawInsert(writer, { ...eventInput('raw', i), request_id: key }, ++seq);
        await publish(key);
        const at = await arrived;
        return at === undefined ? undefined : at - started;
      },
      async close() {
        for (const close of closers.reverse()) await close().catch(() => {});
      },
    };
  } catch (error) {
    for (const close of closers.reverse()) await close().catch(() => {});
    throw error;
  }
}

/** One SSE stream on serve, and POSTs timed from just before the request to their frame. */
async function openToolProbe(serve: ServedProcess, token: string) {
  const arrivals = createArrivals();
  const headers = { authorization: `Bearer ${token}` };
  const stream = await openSseStream(`${serve.url}/api/v1/activity/stream`, headers, (message) => {
    if (message.event !== 'activity') return;
    const { request_id: requestId } = JSON.parse(message.data) as { request_id: string | null };
    if (requestId) arrivals.arrived(requestId);
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  /** Milliseconds to the POST's 201, per event: the record's share of the latency. */
  const postTimes: number[] = [];
  return {
    postTimes,
    async once(i: number): Promise<number | undefined> {
      const key = `lat-${i}`;
      const { tenant_id: _tenant, ip: _ip, ...input } = eventInput('lat', i);
      const arrived = arrivals.expect(key);
      const started = performance.now();
      const posted = await postJson(agent, `${serve.url}/api/v1/activity`, headers, {
        ...input,
        request_id: key,
      });
      if (posted.status !== 201) throw new Error(`POST /api/v1/activity: ${posted.status} ${posted.text}`);
      postTimes.push(performance.now() - started);
      const at = await arrived;
      return at === undefined ? undefined : at - started;
    },
    async close() {
      stream.close();
      agent.destroy();
    },
  };
}

/**
 * The tool and the baseline in turn, event by event (so that both see the same
 * moments of a noisy machine), after a few unmeasured events of each.
 */
async function timeInTurn(
  tool: { once(i: number): Promise<number | undefined> },
  baseline: { once(i: number): Promise<number | undefined> },
  count: number,
): Promise<{ tool: Timing; baseline: Timing }> {
  const warmup = Math.min(20, Math.ceil(count / 5));
  const result = {
    tool: { latencies: [], lost: 0 } as Timing,
    baseline: { latencies: [], lost: 0 } as Timing,
  };
  for (let i = 0; i < warmup + count; i++) {
    for (const [side, probe] of [
      ['tool', tool],
      ['baseline', baseline],
    ] as const) {
      const latency = await probe.once(i);
      if (i >= warmup) {
        if (latency === undefined) result[side].lost++;
        else result[side].latencies.push(latency);
      }
      await sleep(pauseMs);
    }
  }
  return result;
}

async function latencyRow(context: BenchContext, transport: Transport): Promise<BenchRow> {
  const count = context.sizes.streamEvents;
  const url = await context.createDatabase(`bench_stream_${transport}`);
  await migrate(url);
  const token = await mintToken(url, 'lat', ['activity:read', 'activity:write']);
  const serve = await startServe({
    databaseUrl: url,
    redisUrl: transport === 'redis' ? context.redis.url : undefined,
    scratch: context.scratch,
    name: `b10-serve-${transport}`,
  });
  const closers: Array<() => Promise<unknown>> = [() => serve.stop()];
  let timing: Awaited<ReturnType<typeof timeInTurn>>;
  let postTimes: number[] = [];
  try {
    const tool = await openToolProbe(serve, token);
    closers.push(() => tool.close());
    const baseline = await openBaseline(url, transport, context.redis.url);
    closers.push(() => baseline.close());
    context.log(`B10: ${formatNumber(count)} events each, serve on ${transport}`);
    timing = await timeInTurn(tool, baseline, count);
    // The warm-up's POSTs are not counted, as their frames are not.
    postTimes = tool.postTimes.slice(-count);
  } finally {
    for (const close of closers.reverse()) await close();
  }
  const tool = { p50: percentile(timing.tool.latencies, 50), p99: percentile(timing.tool.latencies, 99) };
  const base = {
    p50: percentile(timing.baseline.latencies, 50),
    p99: percentile(timing.baseline.latencies, 99),
  };
  const publishing = transport === 'redis' ? 'INSERT + PUBLISH → SUBSCRIBE' : 'INSERT + pg_notify → LISTEN';
  const lost = timing.tool.lost + timing.baseline.lost;
  return {
    id: 'B10',
    workload: `record → SSE client latency, ${formatNumber(count)} events, serve on ${transport === 'redis' ? 'Redis' : 'LISTEN/NOTIFY'}`,
    tool: `p50 ${milliseconds(tool.p50)}, p99 ${milliseconds(tool.p99)}`,
    baseline: `p50 ${milliseconds(base.p50)}, p99 ${milliseconds(base.p99)} (${publishing})`,
    ratio: tool.p99 / base.p99,
    target: 'p99 ≤ baseline p99 + 10 ms',
    met: tool.p99 <= base.p99 + 10 && timing.tool.lost === 0,
    figures: {
      tool_p50_ms: tool.p50,
      tool_p99_ms: tool.p99,
      tool_max_ms: Math.max(...timing.tool.latencies),
      tool_lost: timing.tool.lost,
      tool_post_p50_ms: percentile(postTimes, 50),
      tool_post_p99_ms: percentile(postTimes, 99),
      baseline_p50_ms: base.p50,
      baseline_p99_ms: base.p99,
      baseline_max_ms: Math.max(...timing.baseline.latencies),
      baseline_lost: timing.baseline.lost,
    },
    notes:
      `tool: POST /api/v1/activity → its frame on one open SSE stream; baseline: ${publishing} in the bench process; ` +
      `timed in turn with ${pauseMs} ms pauses; ratio = p99 / baseline p99; p99 gap ${milliseconds(tool.p99 - base.p99)}; ` +
      `the POST alone (to its 201): p50 ${milliseconds(percentile(postTimes, 50))}, p99 ${milliseconds(percentile(postTimes, 99))}` +
      (lost > 0
        ? `; lost (not arrived in ${arrivalTimeoutMs / 1000} s): tool ${timing.tool.lost}, baseline ${timing.baseline.lost}`
        : ''),
  };
}

/** One fan-out client: the seqs it received, in order, and when. */
interface FanoutClient {
  tenant: string;
  seqs: number[];
  times: number[];
  /** `event: close` frames (cut off as slow, or the token expired). */
  closes: number;
  stream?: SseStream | undefined;
}

async function openClients(
  serve: ServedProcess,
  clients: FanoutClient[],
  tokens: Map<string, string>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  // A few dozen connects at a time: the listen backlog is not what is measured. On a
  // failure the others stop, so that every stream opened is known (and closed) after.
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < clients.length && failure === undefined) {
        const client = clients[next++] as FanoutClient;
        client.stream = await openSseStream(
          `${serve.url}/api/v1/activity/stream`,
          { authorization: `Bearer ${tokens.get(client.tenant)}` },
          (message) => {
            if (message.event === 'activity') {
              client.seqs.push(Number(message.id));
              client.times.push(performance.now());
            } else if (message.event === 'close') client.closes++;
          },
        ).catch((error: unknown) => {
          failure ??= error;
          return undefined;
        });
      }
    }),
  );
  if (failure !== undefined) throw failure;
}

/**
 * B11: `fanoutClients` SSE streams over `fanoutTenants` tenants on one serve (live
 * stream on LISTEN/NOTIFY), while the service in this process records
 * `fanoutRate` events/s spread over the tenants (each append NOTIFYs as it commits).
 * Checks that every client received exactly its tenant's events, once each, in
 * order; and samples serve's peak RSS.
 */
async function fanoutRow(context: BenchContext): Promise<BenchRow> {
  const { fanoutClients, fanoutTenants, fanoutRate, fanoutSeconds } = context.sizes;
  if (Math.ceil(fanoutClients / fanoutTenants) > 100) {
    throw new Error('more than 100 streams per tenant: over serve per-tenant cap');
  }
  const warmup = Math.round(fanoutRate * Math.min(2, fanoutSeconds / 5));
  const url = await context.createDatabase('bench_fanout');
  await migrate(url);
  const tenants = Array.from({ length: fanoutTenants }, (_, i) => `fan_${i}`);
  const tokens = await mintTokens(url, tenants, ['activity:read']);
  const clients: FanoutClient[] = Array.from({ length: fanoutClients }, (_, i) => ({
    tenant: tenants[i % fanoutTenants] as string,
    seqs: [],
    times: [],
    closes: 0,
  }));
  const serve = await startServe({ databaseUrl: url, scratch: context.scratch, name: 'b11-serve' });
  let peakRssKb = 0;
  const sampleRss = async () => {
    peakRssKb = Math.max(peakRssKb, (await serve.peakRssMb()) * 1024);
  };
  const sampler = setInterval(() => void sampleRss(), 250);
  let writer: Awaited<ReturnType<typeof openTool>> | undefined;
  const expected = new Map<string, number[]>(tenants.map((tenant) => [tenant, []]));
  const sentAt = new Map<string, number>();
  let writeSeconds = 0;
  let settleSeconds = 0;
  let serveCpuSeconds = 0;
  let serveLagP50 = Number.NaN;
  let serveLagP99 = Number.NaN;
  // The clients and the writer share this process: its own load shows in the latency.
  let benchCpuSeconds = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  let openSeconds = 0;
  let exitCode: number | null = null;
  let endedEarly = 0;
  try {
    const app = await openTool(url);
    writer = app;
    // Warms the writer's pool and serve's statements; these events precede every stream.
    for (let round = 0; round < 2; round++) {
      await Promise.all(tenants.map((tenant, i) => app.service.record(eventInput(tenant, 1_000_000 + i))));
    }
    const openStarted = performance.now();
    await openClients(serve, clients, tokens);
    openSeconds = (performance.now() - openStarted) / 1000;
    context.log(
      `B11: ${formatNumber(fanoutClients)} streams open in ${openSeconds.toFixed(1)} s; writing ${fanoutRate}/s for ${(warmup / fanoutRate).toFixed(1)} s of warm-up + ${fanoutSeconds} s`,
    );

    // Paced writes, each started on time whether or not the last has returned. The
    // first `warmup` of them are delivered and checked like the rest, but their
    // latency is not counted (the delivery path of serve and of this process is cold).
    const total = fanoutRate * fanoutSeconds;
    const writes: Array<Promise<void>> = [];
    const started = performance.now();
    let cpuBefore = 0;
    let benchCpuBefore = process.cpuUsage();
    let measuredFrom = started;
    for (let k = 0; k < warmup + total; k++) {
      if (k === warmup) {
        cpuBefore = await serve.cpuSeconds();
        benchCpuBefore = process.cpuUsage();
        loopDelay.enable();
        measuredFrom = performance.now();
      }
      const due = started + (k * 1000) / fanoutRate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const tenant = tenants[k % fanoutTenants] as string;
      const begun = performance.now();
      const measured = k >= warmup;
      writes.push(
        app.service.record(eventInput(tenant, k)).then((event) => {
          expected.get(tenant)?.push(event.seq);
          if (measured) sentAt.set(`${tenant}:${event.seq}`, begun);
        }),
      );
    }
    await Promise.all(writes);
    writeSeconds = (performance.now() - measuredFrom) / 1000;

    // Settle: until every client has as many events as its tenant got, or a deadline
    // past serve's 5 s safety poll.
    const complete = () =>
      clients.every((client) => client.seqs.length >= (expected.get(client.tenant)?.length ?? 0));
    const settleStarted = performance.now();
    while (!complete() && performance.now() - settleStarted < 15_000) await sleep(50);
    settleSeconds = (performance.now() - settleStarted) / 1000;
    serveCpuSeconds = (await serve.cpuSeconds()) - cpuBefore;
    const benchCpu = process.cpuUsage(benchCpuBefore);
    benchCpuSeconds = (benchCpu.user + benchCpu.system) / 1e6;
    loopDelay.disable();
    endedEarly = clients.filter((client) => client.stream?.ended).length;
    // Anything late (a duplicate after the last expected event) has a moment to show.
    await sleep(500);
    await sampleRss();
    // Serve's own record → written lag (its histogram), apart from this process's load.
    [serveLagP50, serveLagP99] = histogramBounds(
      await getText(`${serve.url}/metrics`),
      'activity_stream_lag_seconds',
      [0.5, 0.99],
    ).map((seconds) => seconds * 1000) as [number, number];
  } finally {
    clearInterval(sampler);
    for (const client of clients) client.stream?.close();
    await writer?.close();
    exitCode = await serve.stop();
  }

  let delivered = 0;
  let expectedTotal = 0;
  let duplicates = 0;
  let missing = 0;
  let unexpected = 0;
  let outOfOrder = 0;
  let exactClients = 0;
  let closes = 0;
  const latencies: number[] = [];
  for (const client of clients) {
    const want = new Set(expected.get(client.tenant));
    const seen = new Set<number>();
    let clientDuplicates = 0;
    let clientUnexpected = 0;
    for (const [n, seq] of client.seqs.entries()) {
      if (n > 0 && seq <= (client.seqs[n - 1] as number)) outOfOrder++;
      if (seen.has(seq)) {
        clientDuplicates++;
        continue;
      }
      seen.add(seq);
      if (!want.has(seq)) {
        clientUnexpected++;
        continue;
      }
      delivered++;
      const begun = sentAt.get(`${client.tenant}:${seq}`);
      if (begun !== undefined) latencies.push((client.times[n] as number) - begun);
    }
    const clientMissing = [...want].filter((seq) => !seen.has(seq)).length;
    expectedTotal += want.size;
    duplicates += clientDuplicates;
    unexpected += clientUnexpected;
    missing += clientMissing;
    closes += client.closes;
    if (clientDuplicates === 0 && clientMissing === 0 && clientUnexpected === 0) exactClients++;
  }
  const peakRssMb = peakRssKb / 1024;
  const exactlyOnce =
    duplicates === 0 && missing === 0 && unexpected === 0 && outOfOrder === 0 && endedEarly === 0;
  const p50 = percentile(latencies, 50);
  const p99 = percentile(latencies, 99);
  const recorded = [...expected.values()].reduce((sum, seqs) => sum + seqs.length, 0);
  return {
    id: 'B11',
    workload: `${formatNumber(fanoutClients)} SSE clients over ${fanoutTenants} tenants, ${fanoutRate} events/s for ${fanoutSeconds} s (LISTEN/NOTIFY)`,
    tool: `${formatNumber(delivered)}/${formatNumber(expectedTotal)} delivered, ${duplicates} dup, ${missing} missing; serve peak RSS ${formatNumber(peakRssMb)} MB; latency p50 ${milliseconds(p50)}, p99 ${milliseconds(p99)}`,
    baseline: '—',
    ratio: null,
    target: 'exactly once to every client; RSS ≤ 300 MB',
    met: exactlyOnce && peakRssMb <= 300,
    figures: {
      clients: fanoutClients,
      tenants: fanoutTenants,
      events_recorded: recorded,
      frames_expected: expectedTotal,
      frames_delivered: delivered,
      duplicates,
      missing,
      unexpected,
      out_of_order: outOfOrder,
      clients_exact: exactClients,
      close_frames: closes,
      streams_ended_early: endedEarly,
      serve_peak_rss_mb: peakRssMb,
      serve_cpu_seconds: serveCpuSeconds,
      bench_cpu_seconds: benchCpuSeconds,
      bench_loop_delay_p99_ms: loopDelay.percentile(99) / 1e6,
      latency_p50_ms: p50,
      latency_p99_ms: p99,
      serve_lag_p50_at_most_ms: serveLagP50,
      serve_lag_p99_at_most_ms: serveLagP99,
      open_seconds: openSeconds,
      write_seconds: writeSeconds,
      settle_seconds: settleSeconds,
      serve_exit_code: exitCode ?? -1,
    },
    notes:
      `events recorded by the service in this process (each append NOTIFYs at commit): ${formatNumber(recorded)}, of which the first ${formatNumber(warmup)} (${(warmup / fanoutRate).toFixed(1)} s at the same rate) are a warm-up, delivered and checked but left out of the latency; ` +
      `${exactClients}/${fanoutClients} clients got exactly their tenant's events, in order (out of order: ${outOfOrder}, unexpected: ${unexpected}, streams ended by serve: ${endedEarly}); ` +
      `latency from before record() to the frame parsed here; serve's own lag (activity_stream_lag_seconds, record → written, warm-up included) p50 ≤ ${formatNumber(serveLagP50)} ms, p99 ≤ ${formatNumber(serveLagP99)} ms (bucket bounds); settled ${settleSeconds.toFixed(1)} s after the last write; ` +
      `CPU over the measured writes and settle: serve ${serveCpuSeconds.toFixed(1)} s, the bench process (clients and writer) ${benchCpuSeconds.toFixed(1)} s, ` +
      `its event-loop delay p99 ${milliseconds(loopDelay.percentile(99) / 1e6)}; serve exited ${exitCode ?? 'on SIGKILL'} on SIGTERM`,
  };
}

/** B10 (both transports) and B11. */
export const streamWorkload: Workload = {
  ids: ['B10', 'B11'],
  async run(context) {
    const rows: BenchRow[] = [];
    rows.push(await latencyRow(context, 'redis'));
    rows.push(await latencyRow(context, 'postgres'));
    rows.push(await fanoutRow(context));
    return rows;
  },
};
