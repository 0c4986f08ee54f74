import type { BenchContext } from './context.js';

/** One line of the results: the tool's figure, the baseline's, their ratio and the target. */
export interface BenchRow {
  id: string;
  workload: string;
  /** The tool's figure, formatted with its unit. */
  tool: string;
  /** The baseline's figure, or '—' where there is none. */
  baseline: string;
  /** How the tool compares, in the target's terms (e.g. tool/baseline throughput). */
  ratio: number | null;
  target: string;
  /** Whether the target is met; null where the row is only reported. */
  met: boolean | null;
  /** Raw figures, for latest.json. */
  figures: Record<string, number>;
  /** The Node CPU per operation of the tool and its baseline, where measured (B1–B3). */
  nodeCpu?: string;
  notes?: string;
}

export interface Workload {
  /** The ids of the rows it produces, e.g. ['B5', 'B6']. */
  ids: readonly string[];
  run(context: BenchContext): Promise<BenchRow[]>;
}

export function formatNumber(value: number, digits = 0): string {
  return value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

export const perSecond = (value: number, unit = 'events/s') => `${formatNumber(value)} ${unit}`;
export const microseconds = (value: number) => `${formatNumber(value)} µs`;
export const milliseconds = (value: number) => `${formatNumber(value, value < 10 ? 2 : 1)} ms`;
