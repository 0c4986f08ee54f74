import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

/** The rows that compare with a build without the verifiable log, and need --tree-off. */
export const treeOffRows = ['B19', 'B20', 'B21', 'B22'];

export const benchUsage = `Usage: npm run bench [-- options]

Runs every workload against its raw PostgreSQL baseline and prints the table;
writes bench/results/latest.json and latest.md.

Options:
  --quick        small sizes, under 2 minutes (CI runs this)
  --only IDS     the workloads of these rows only, e.g. --only B1,B5
  --tree-off DIR also B19–B22: B1–B4's writes against a build without the
                 verifiable log in DIR (e.g. a worktree of 7e00d51 after npm ci)
  -h, --help     this text

Examples:
  npm run bench
  npm run bench -- --quick
  npm run bench -- --only B5,B6
  npm run bench -- --only B19,B20,B21,B22 --tree-off ../activity-tree-off
`;

export interface BenchArgs {
  quick: boolean;
  /** The rows asked for with --only (upper case); undefined for all. */
  only: ReadonlySet<string> | undefined;
  /** The directory of a build without the verifiable log (--tree-off), which B19–B22 need. */
  treeOff: string | undefined;
  help: boolean;
}

/** A command line the bench cannot run: exit 2 with the usage, before anything starts. */
export class BenchUsageError extends Error {}

/**
 * Parses the bench's command line. An unknown option or row id is an error, not
 * ignored: `--quik` would otherwise start the 15-minute full run, and `--only B55`
 * run nothing and exit 0.
 */
export function parseBenchArgs(argv: readonly string[], knownIds: readonly string[]): BenchArgs {
  let values: { quick?: boolean; only?: string; 'tree-off'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        quick: { type: 'boolean' },
        only: { type: 'string' },
        'tree-off': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new BenchUsageError(error instanceof Error ? error.message : String(error));
  }
  let only: Set<string> | undefined;
  if (values.only !== undefined) {
    const ids = values.only
      .split(',')
      .map((id) => id.trim().toUpperCase())
      .filter((id) => id.length > 0);
    if (ids.length === 0) throw new BenchUsageError('--only needs row ids, e.g. --only B1,B5');
    const unknown = ids.filter((id) => !knownIds.includes(id));
    if (unknown.length > 0) {
      throw new BenchUsageError(`no row ${unknown.join(', ')}: the rows are ${knownIds.join(', ')}`);
    }
    only = new Set(ids);
  }
  const treeOff = values['tree-off'] === undefined ? undefined : resolve(values['tree-off']);
  if (treeOff !== undefined && !existsSync(join(treeOff, 'dist', 'index.js'))) {
    throw new BenchUsageError(
      `--tree-off ${values['tree-off']}: no dist/index.js there; build it first (npm ci builds it)`,
    );
  }
  const needTreeOff = [...(only ?? [])].filter((id) => treeOffRows.includes(id));
  if (treeOff === undefined && needTreeOff.length > 0) {
    throw new BenchUsageError(
      `--only ${needTreeOff.join(',')}: B19–B22 compare with a build without the verifiable log; give --tree-off DIR`,
    );
  }
  return { quick: values.quick ?? false, only, treeOff, help: values.help ?? false };
}
