import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BenchUsageError, parseBenchArgs } from '../../bench/lib/args.js';

const rows = ['B1', 'B2', 'B5', 'B14', 'B19', 'B22'];

describe('the bench command line', () => {
  it('runs everything at full size by default', () => {
    expect(parseBenchArgs([], rows)).toEqual({ quick: false, only: undefined, help: false });
  });

  it('takes --quick, --help and -h', () => {
    expect(parseBenchArgs(['--quick'], rows).quick).toBe(true);
    expect(parseBenchArgs(['--help'], rows).help).toBe(true);
    expect(parseBenchArgs(['-h'], rows).help).toBe(true);
  });

  it('takes --only as a comma list of row ids, in any case and spacing', () => {
    expect(parseBenchArgs(['--only', 'b1, B14'], rows).only).toEqual(new Set(['B1', 'B14']));
    expect(parseBenchArgs(['--quick', '--only=B5'], rows)).toEqual({
      quick: true,
      only: new Set(['B5']),
      help: false,
    });
  });

  it('refuses an unknown option instead of starting the full run', () => {
    expect(() => parseBenchArgs(['--quik'], rows)).toThrow(BenchUsageError);
    expect(() => parseBenchArgs(['--quik'], rows)).toThrow(/--quik/);
    expect(() => parseBenchArgs(['quick'], rows)).toThrow(BenchUsageError);
  });

  it('refuses a row that does not exist, naming the rows that do', () => {
    expect(() => parseBenchArgs(['--only', 'B1,B55'], rows)).toThrow(
      'no row B55: the rows are B1, B2, B5, B14',
    );
  });

  it('refuses --only without ids', () => {
    expect(() => parseBenchArgs(['--only'], rows)).toThrow(BenchUsageError);
    expect(() => parseBenchArgs(['--only', ','], rows)).toThrow('--only needs row ids');
  });

  describe('--tree-off, the build B19–B22 compare with', () => {
    const build = mkdtempSync(join(tmpdir(), 'activity-tree-off-'));
    mkdirSync(join(build, 'dist'));
    writeFileSync(join(build, 'dist', 'index.js'), '');
    afterAll(() => rmSync(build, { recursive: true, force: true }));

    it('takes the directory of a built tool', () => {
      expect(parseBenchArgs(['--only', 'B19,B22', '--tree-off', build], rows)).toEqual({
        quick: false,
        only: new Set(['B19', 'B22']),
        treeOff: build,
        help: false,
      });
    });

    it('refuses a directory with no build, saying how to make one', () => {
      expect(() => parseBenchArgs(['--tree-off', tmpdir()], rows)).toThrow(
        /no dist\/index\.js there; build it/,
      );
    });

    it('refuses B19–B22 without it, instead of running nothing', () => {
      expect(() => parseBenchArgs(['--only', 'B1,B19'], rows)).toThrow(
        '--only B19: B19–B22 compare with a build without the verifiable log; give --tree-off DIR',
      );
      expect(parseBenchArgs(['--only', 'B1'], rows).treeOff).toBeUndefined();
    });
  });
});
