import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ActivityApp } from 'activity';
import * as thisBuild from 'activity';
import { binPath, repoRoot } from '../lib/context.js';
import { eventInput, importTenant, writeLines } from '../lib/dataset.js';
import { runProcess } from '../lib/process.js';
import { mediansInTurn, throughput } from '../lib/stats.js';
import { benchSecret, cliEnvironment } from '../lib/tool.js';
import { type BenchRow, formatNumber, perSecond, type Workload } from '../lib/workload.js';
import { recordCases } from './record.js';

/** What the bench needs of a build: its library, its migrations and its CLI. */
interface Build {
  library: Pick<typeof thisBuild, 'loadConfig' | 'openApp' | 'usingMigrations'>;
  bin: string;
}

/**
 * B19–B22, what the verifiable log costs on writes: the shapes of B1–B4, recorded by
 * this build and by one without the tree (`--tree-off DIR`, e.g. a worktree of
 * 7e00d51, the commit before it, after `npm ci`), in turn in one run, each build on a
 * database its own migrations made. The ratio is this build's throughput over the
 * other's. Only with --tree-off.
 *
 * The two sides differ by a tenth or two, less than this machine drifts in a few
 * seconds: 3 rounds of 5 s gave B19 0.75× and 0.99× in two runs. So the rounds are
 * many and short, and each build's import is a tenth of B4's, run five times.
 */
export const treeCostWorkload: Workload = {
  ids: ['B19', 'B20', 'B21', 'B22'],
  async run(context) {
    if (context.treeOff === undefined) throw new Error('B19–B22 need --tree-off DIR');
    const builds = {
      on: { library: thisBuild, bin: binPath },
      off: {
        library: (await import(
          pathToFileURL(join(context.treeOff, 'dist', 'index.js')).href
        )) as Build['library'],
        bin: join(context.treeOff, 'bin', 'activity.js'),
      },
    } satisfies Record<string, Build>;
    const databaseOf = async (build: Build, name: string) => {
      const url = await context.createDatabase(name);
      const config = build.library.loadConfig({ databaseUrl: url }, { ACTIVITY_SECRET: benchSecret });
      await build.library.usingMigrations(config, (migrations) => migrations.up());
      return url;
    };
    const rounds = context.sizes.repetitions * 4;
    const seconds = context.sizes.seconds / 4;
    const rows: BenchRow[] = [];
    for (const [index, scenario] of recordCases.entries()) {
      const id = `B${19 + index}`;
      const apps: ActivityApp[] = [];
      try {
        const recorders = [];
        for (const [side, build] of Object.entries(builds)) {
          const url = await databaseOf(build, `bench_${id.toLowerCase()}_${side}`);
          const app = await build.library.openApp(
            build.library.loadConfig({ databaseUrl: url }, { ACTIVITY_SECRET: benchSecret }),
          );
          apps.push(app);
          recorders.push(() =>
            throughput(
              (client, i) =>
                app.service.record(eventInput(scenario.oneTenant ? 'acme' : `tenant_${client}`, i)),
              { clients: scenario.clients, seconds },
            ),
          );
        }
        const [on, off] = (await mediansInTurn(rounds, ...recorders)) as [number, number];
        rows.push(costRow(id, `${scenario.id}'s ${scenario.workload}`, on, off, 'events/s', 0.9));
      } finally {
        await Promise.all(apps.map((app) => app.close()));
      }
    }

    const events = Math.max(1000, Math.round(context.sizes.importEvents / 10));
    const ndjson = join(context.scratch, 'tree-cost.ndjson');
    await writeLines(ndjson, events, (i) => JSON.stringify(eventInput(importTenant(i), i)));
    let round = 0;
    const imports = Object.entries(builds).map(([side, build]) => async () => {
      const url = await databaseOf(build, `bench_b22_${side}_${round++}`);
      const run = await runProcess(
        process.execPath,
        [build.bin, 'record', '--file', ndjson, '--format', 'json'],
        {
          env: cliEnvironment(url),
          cwd: repoRoot,
        },
      );
      if (run.exitCode !== 0) throw new Error(`${side}: record --file exited ${run.exitCode}: ${run.stderr}`);
      return events / run.seconds;
    });
    const [on, off] = (await mediansInTurn(5, ...imports)) as [number, number];
    rows.push(
      costRow('B22', `B4's activity record --file, ${formatNumber(events)} events`, on, off, 'rows/s', 0.8),
    );
    return rows;
  },
};

function costRow(
  id: string,
  workload: string,
  on: number,
  off: number,
  unit: string,
  target: number,
): BenchRow {
  const ratio = on / off;
  return {
    id,
    workload: `${workload}: tree on ÷ off`,
    tool: perSecond(on, unit),
    baseline: `${perSecond(off, unit)} (the build without the tree)`,
    ratio,
    target: `≥ ${target}×`,
    met: ratio >= target,
    figures: { tree_on_per_second: on, tree_off_per_second: off },
  };
}
