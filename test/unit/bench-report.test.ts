import { describe, expect, it } from 'vitest';
import { textTable } from '../../bench/lib/report.js';
import type { BenchRow } from '../../bench/lib/workload.js';

const row = (fields: Partial<BenchRow>): BenchRow => ({
  id: 'B1',
  workload: 'record',
  tool: '1,000 events/s',
  baseline: '2,000 events/s',
  ratio: 0.5,
  target: '≥ 0.8×',
  met: false,
  figures: {},
  ...fields,
});

describe("the bench's table on stdout", () => {
  it('aligns the columns and spells out each ratio and verdict', () => {
    const lines = textTable([
      row({}),
      row({ id: 'B14', workload: 'embedded', ratio: null, target: 'reported', met: null }),
      row({ id: 'B3', ratio: 1.234, met: true }),
    ]).split('\n');
    expect(lines[0]).toMatch(/^# {4}workload {2}tool {12}baseline/);
    expect(lines[1]).toContain('0.50×  ≥ 0.8×    NO');
    expect(lines[2]).toContain('—      reported  reported');
    expect(lines[3]).toContain('1.23×  ≥ 0.8×    yes');
    const toolColumn = lines[0]?.indexOf('tool');
    for (const line of lines.slice(1, 4)) expect(line.indexOf('1,000 events/s')).toBe(toolColumn);
  });

  it("prints each row's notes below the table, since a row may refer to them", () => {
    const text = textTable([
      row({ tool: 'see notes', notes: 'p50 tool vs raw: actor 0.2 vs 0.1 ms' }),
      row({ id: 'B2' }),
    ]);
    expect(text.endsWith('\n\nB1: p50 tool vs raw: actor 0.2 vs 0.1 ms\n')).toBe(true);
    expect(text).not.toContain('B2:');
  });

  it('prints no notes section when no row has notes', () => {
    expect(textTable([row({})]).split('\n')).toHaveLength(3);
  });
});
