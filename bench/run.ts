import { type BenchArgs, BenchUsageError, benchUsage, parseBenchArgs, treeOffRows } from './lib/args.js';
import { type BenchContext, openContext } from './lib/context.js';
import { machine, textTable, writeResults } from './lib/report.js';
import type { BenchRow, Workload } from './lib/workload.js';
import { workloads } from './workloads/index.js';

/**
 * `npm run bench [-- --quick] [-- --only B1,B5]`: every workload against its raw
 * baseline in the same run, on the same PostgreSQL, schema and data. Prints a table,
 * writes bench/results/latest.{json,md}, and exits 1 if a workload could not run
 * (never because of a figure: the targets are reported, not asserted), 2 on a bad
 * command line.
 */
async function main(argv: readonly string[]): Promise<number> {
  let args: BenchArgs;
  try {
    args = parseBenchArgs(argv, workloads.flatMap((workload) => workload.ids).sort(byRowNumber));
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    process.stderr.write(`error: ${error.message}\n\n${benchUsage}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(benchUsage);
    return 0;
  }
  const { quick, only, treeOff } = args;
  const selected = workloads.filter(
    (workload) =>
      (!only || workload.ids.some((id) => only.has(id))) &&
      (treeOff !== undefined || !workload.ids.some((id) => treeOffRows.includes(id))),
  );
  const started = Date.now();
  const context = await openContext(quick, treeOff);
  if (treeOff === undefined && !only)
    context.log(`${treeOffRows.join(', ')}: not run (they need --tree-off DIR)`);
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
  rows.sort((a, b) => byRowNumber(a.id, b.id));
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

/** B2 before B10: rows in the order of the table. */
function byRowNumber(a: string, b: string): number {
  return Number(a.slice(1)) - Number(b.slice(1));
}

process.exitCode = await main(process.argv.slice(2));
