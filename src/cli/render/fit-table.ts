import { stripVTControlCharacters } from 'node:util';
import Table from 'cli-table3';

/** One column of a table for people. */
export interface Column {
  head: string;
  /** Narrowest it may be shrunk to, cells cut with `…`. */
  min: number;
  /** Widest it is ever drawn (its cells cut past it), terminal or not. */
  max?: number;
}

/** How to make a table narrower, tried in order until it fits: shrink columns to their `min`, or drop one. */
export type FitStep = { shrink: string[] } | { drop: string };

/**
 * A table that fits `width` characters (a terminal's columns): each step, in order,
 * shrinks or drops columns until it fits; rows are never wrapped, long cells end with
 * `…`. Without a width (output piped, or `--wide`), every column at its natural width.
 */
export function fitTable(
  columns: readonly Column[],
  rows: readonly string[][],
  width: number | undefined,
  steps: readonly FitStep[],
): string {
  let shown = columns.map((column, index) => ({
    column,
    index,
    width: Math.min(
      column.max ?? Number.POSITIVE_INFINITY,
      Math.max(displayWidth(column.head), ...rows.map((row) => displayWidth(row[index] ?? ''))),
    ),
  }));
  // Each cell is padded by a space on each side, and every column ends with a border.
  const total = () => shown.reduce((sum, each) => sum + each.width + 3, 1);
  const fits = () => width === undefined || total() <= width;
  for (const step of steps) {
    if (fits()) break;
    if ('drop' in step) {
      shown = shown.filter((each) => each.column.head !== step.drop);
      continue;
    }
    // Shrink the widest of them first, one character at a time, down to their minimums.
    const shrinkable = shown.filter((each) => step.shrink.includes(each.column.head));
    while (!fits()) {
      const widest = shrinkable
        .filter((each) => each.width > each.column.min)
        .sort((a, b) => b.width - a.width)[0];
      if (!widest) break;
      widest.width--;
    }
  }
  const table = new Table({
    head: shown.map((each) => each.column.head),
    colWidths: shown.map((each) => each.width + 2),
    style: { head: [], border: [] },
    // One line per row: no rule between rows.
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: false,
  });
  for (const row of rows) table.push(shown.map((each) => row[each.index] ?? ''));
  return `${table.toString()}\n`;
}

/**
 * Columns a text takes on a terminal: one per character, colours left out (wide
 * characters are cut by cli-table3 as it draws).
 */
function displayWidth(text: string): number {
  return [...stripVTControlCharacters(text)].length;
}
