import { binPath, repoRoot } from '../lib/context.js';
import { runProcess } from '../lib/process.js';
import { median } from '../lib/stats.js';
import { type BenchRow, milliseconds, type Workload } from '../lib/workload.js';

/** B13: how long the CLI takes to start, against Node starting and doing nothing. */
export const startupWorkload: Workload = {
  ids: ['B13'],
  async run(context) {
    const time = async (args: string[]) => {
      const seconds: number[] = [];
      for (let i = 0; i < context.sizes.startups + 1; i++) {
        const run = await runProcess(process.execPath, args, { cwd: repoRoot });
        if (run.exitCode !== 0) throw new Error(`${args.join(' ')} exited ${run.exitCode}: ${run.stderr}`);
        // the first start warms the file cache
        if (i > 0) seconds.push(run.seconds * 1000);
      }
      return median(seconds);
    };
    const node = await time(['-e', '0']);
    const rows: BenchRow[] = [];
    for (const args of [['--version'], ['query', '--help']]) {
      const tool = await time([binPath, ...args]);
      rows.push({
        id: 'B13',
        workload: `activity ${args.join(' ')} start-up`,
        tool: milliseconds(tool),
        baseline: `${milliseconds(node)} (node -e 0)`,
        ratio: tool / node,
        target: '≤ 2×',
        met: tool / node <= 2,
        figures: { tool_ms: tool, baseline_ms: node },
      });
    }
    return rows;
  },
};
