import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './context.js';
import type { BenchRow } from './workload.js';

const columns = ['#', 'workload', 'tool', 'baseline', 'ratio', 'target', 'met', 'Node CPU/op'] as const;

function cells(row: BenchRow): string[] {
  return [
    row.id,
    row.workload,
    row.tool,
    row.baseline,
    row.ratio === null ? '—' : `${row.ratio.toFixed(2)}×`,
    row.target,
    row.met === null ? 'reported' : row.met ? 'yes' : 'NO',
    row.nodeCpu ?? '—',
  ];
}

/** The rows as an aligned text table, for stdout, with each row's notes below it. */
export function textTable(rows: readonly BenchRow[]): string {
  const table = [columns.slice(), ...rows.map(cells)];
  const widths = columns.map((_, i) => Math.max(...table.map((line) => (line[i] ?? '').length)));
  const lines = table.map((line) =>
    line
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd(),
  );
  const notes = notesOf(rows, (row) => `${row.id}: ${row.notes}`);
  return `${lines.join('\n')}\n${notes}`;
}

/** The rows' notes, a line each, after a blank line; empty when no row has one. */
function notesOf(rows: readonly BenchRow[], line: (row: BenchRow) => string): string {
  const lines = rows.filter((row) => row.notes).map(line);
  return lines.length > 0 ? `\n${lines.join('\n')}\n` : '';
}

function markdownTable(rows: readonly BenchRow[]): string {
  const escapeCell = (text: string) => text.replaceAll('|', '\\|');
  const lines = [
    `| ${columns.join(' | ')} |`,
    `|${columns.map(() => '---').join('|')}|`,
    ...rows.map((row) => `| ${cells(row).map(escapeCell).join(' | ')} |`),
  ];
  return `${lines.join('\n')}\n${notesOf(rows, (row) => `- **${row.id}**: ${row.notes}`)}`;
}

/** The machine the figures come from. */
export function machine() {
  return {
    node: process.version,
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gib: Math.round(totalmem() / 2 ** 30),
    platform: `${process.platform} ${process.arch}`,
  };
}

/** Writes bench/results/latest.json and latest.md. */
export async function writeResults(
  rows: readonly BenchRow[],
  meta: Record<string, unknown>,
): Promise<string> {
  const directory = join(repoRoot, 'bench', 'results');
  await mkdir(directory, { recursive: true });
  await writeFile(join(directory, 'latest.json'), `${JSON.stringify({ ...meta, rows }, null, 2)}\n`);
  const header = `# Benchmark results\n\n${Object.entries(meta)
    .map(([key, value]) => `- ${key}: ${typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join('\n')}\n\n`;
  await writeFile(join(directory, 'latest.md'), header + markdownTable(rows));
  return directory;
}
