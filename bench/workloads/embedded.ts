import { join } from 'node:path';
import { type ActivityApp, loadConfig, openApp } from 'activity';
import { binPath, repoRoot } from '../lib/context.js';
import { eventInput } from '../lib/dataset.js';
import { runProcess } from '../lib/process.js';
import { median, throughput } from '../lib/stats.js';
import { benchSecret, migrate, openTool } from '../lib/tool.js';
import { type BenchRow, milliseconds, perSecond, type Workload } from '../lib/workload.js';

/** Records for `seconds`, then times first pages of the tenant recorded to. */
async function measure(app: ActivityApp, seconds: number, samples: number) {
  const recorded = await throughput((_, i) => app.service.record(eventInput('embedded', i)), {
    clients: 1,
    seconds,
  });
  const times: number[] = [];
  for (let i = 0; i < samples + 20; i++) {
    const started = performance.now();
    await app.service.query('embedded', { limit: 50 });
    if (i >= 20) times.push(performance.now() - started);
  }
  return { recorded, firstPageMs: median(times) };
}

/** The median wall time of `activity query --tenant embedded --limit 5`, a whole process, with `env`. */
async function queryCommandMs(env: Record<string, string>, runs: number): Promise<number> {
  const times: number[] = [];
  // The first run warms the file cache.
  for (let i = 0; i < runs + 1; i++) {
    const run = await runProcess(
      process.execPath,
      [binPath, 'query', '--tenant', 'embedded', '--limit', '5', '--format', 'json'],
      {
        cwd: repoRoot,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ACTIVITY_SECRET: benchSecret, ...env },
      },
    );
    if (run.exitCode !== 0) throw new Error(`query exited ${run.exitCode}: ${run.stderr}`);
    if (i > 0) times.push(run.seconds * 1000);
  }
  return median(times);
}

/**
 * B14: the embedded PGlite database against PostgreSQL, same service, same work (the
 * service rows reported only); and `activity query --limit 5` as a user runs it, a
 * whole process each, opening the database and closing it.
 */
export const embeddedWorkload: Workload = {
  ids: ['B14'],
  async run(context) {
    const { seconds, samples } = context.sizes;
    const embedded = await openApp(
      loadConfig({ dataDir: join(context.scratch, 'embedded') }, { ACTIVITY_SECRET: benchSecret }),
    );
    let pglite: Awaited<ReturnType<typeof measure>>;
    try {
      pglite = await measure(embedded, seconds, samples);
    } finally {
      await embedded.close();
    }
    const url = await context.createDatabase('bench_embedded_pg');
    await migrate(url);
    const server = await openTool(url);
    let postgres: Awaited<ReturnType<typeof measure>>;
    try {
      postgres = await measure(server, seconds, samples);
    } finally {
      await server.close();
    }
    const commandMs = {
      pglite: await queryCommandMs(
        { ACTIVITY_DATA_DIR: join(context.scratch, 'embedded') },
        context.sizes.startups,
      ),
      postgres: await queryCommandMs({ ACTIVITY_DATABASE_URL: url }, context.sizes.startups),
    };
    const rows: BenchRow[] = [
      {
        id: 'B14',
        workload: 'embedded PGlite: record, 1 client',
        tool: perSecond(pglite.recorded),
        baseline: `${perSecond(postgres.recorded)} (PostgreSQL)`,
        ratio: pglite.recorded / postgres.recorded,
        target: 'reported',
        met: null,
        figures: { pglite_events_per_second: pglite.recorded, postgres_events_per_second: postgres.recorded },
      },
      {
        id: 'B14',
        workload: 'embedded PGlite: first page (50)',
        tool: `p50 ${milliseconds(pglite.firstPageMs)}`,
        baseline: `p50 ${milliseconds(postgres.firstPageMs)} (PostgreSQL)`,
        ratio: pglite.firstPageMs / postgres.firstPageMs,
        target: 'reported',
        met: null,
        figures: { pglite_p50_ms: pglite.firstPageMs, postgres_p50_ms: postgres.firstPageMs },
      },
      {
        id: 'B14',
        workload: 'embedded PGlite: `activity query --limit 5`, the whole command',
        tool: milliseconds(commandMs.pglite),
        baseline: `${milliseconds(commandMs.postgres)} (PostgreSQL)`,
        ratio: commandMs.pglite / commandMs.postgres,
        target: '≤ 2×',
        met: commandMs.pglite / commandMs.postgres <= 2,
        figures: { pglite_ms: commandMs.pglite, postgres_ms: commandMs.postgres },
      },
    ];
    return rows;
  },
};
