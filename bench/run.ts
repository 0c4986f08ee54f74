import { type BenchContext, openContext } from './lib/context.js';
import { machine, textTable, writeResults } from './lib/report.js';
import type { BenchRow, Workload } from './lib/workload.js';
import { workloads } from './workloads/index.js';

/**
 * `npm run bench [-- --quick] [-- --only B1,B5]`: every workload against its raw
 * baseline in the same run, on the same PostgreSQL, schema and data. Prints a table,
 * writes bench/results/latest.{json,md}, and exits 1 if a workload could not run
 * (never because of a figure: the targets are reported, not asserted).
 */
async function main(argv: readonly string[]): Promise<number> {
  const quick = argv.includes('--quick');
  const onlyIndex = argv.indexOf('--only');
  const only = onlyIndex === -1 ? undefined : new Set((argv[onlyIndex + 1] ?? '').split(','));
  const selected = workloads.filter((workload) => !only || workload.ids.some((id) => only.has(id)));
  const started = Date.now();
  const context = await openContext(quick);
  const rows: BenchRow[] = [];
  let failed = false;
  try {
    for (const workload of selected) {
      rows.push(...(await runOne(workload, context)));
      if (rows.some((row) => row.notes?.startsWith('failed:'))) failed = true;
    }
  } finally {
    await context.close();
  }
  rows.sort((a, b) => Number(a.id.slice(1)) - Number(b.id.slice(1)));
  process.stdout.write(textTable(rows));
  const directory = await writeResults(rows, {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    seconds: Math.round((Date.now() - started) / 1000),
    machine: machine(),
  });
  process.stderr.write(`[bench] results in ${directory}/latest.json and latest.md\n`);
  return failed ? 1 : 0;
}

async function runOne(workload: Workload, context: BenchContext): Promise<BenchRow[]> {
  context.log(`${workload.ids.join(', ')}: running`);
  const started = Date.now();
  try {
    const rows = await workload.run(context);
    context.log(`${workload.ids.join(', ')}: done in ${Math.round((Date.now() - started) / 1000)} s`);
    return rows;
  } catch (error) {
    context.log(
      `${workload.ids.join(', ')}: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return workload.ids.map((id) => ({
      id,
      workload: '(failed to run)',
      tool: '—',
      baseline: '—',
      ratio: null,
      target: '—',
      met: null,
      figures: {},
      notes: `failed: ${error instanceof Error ? error.message : String(error)}`,
    }));
  }
}

process.exitCode = await main(process.argv.slice(2));
