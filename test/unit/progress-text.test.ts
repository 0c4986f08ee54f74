import { describe, expect, it } from 'vitest';
import { progressText } from '../../src/cli/progress.js';

describe('progressText', () => {
  it('gives the count and the rate', () => {
    expect(progressText(12_000, 'lines read', 0, undefined, 4_000)).toBe('12,000 lines read (3,000/s)');
  });

  it('adds the share done and the time left when the share is known', () => {
    expect(progressText(2_500, 'lines read', 0, 0.25, 10_000)).toBe(
      '2,500 lines read (250/s), 25 %, about 30 s left',
    );
    expect(progressText(100, 'lines read', 0, 0.01, 60_000)).toBe(
      '100 lines read (2/s), 1 %, about 99 min left',
    );
  });

  it('says nothing of what is left before anything is done, or once all is', () => {
    expect(progressText(0, 'lines read', 0, 0, 1_000)).toBe('0 lines read (0/s)');
    expect(progressText(10, 'lines read', 0, 1, 1_000)).toBe('10 lines read (10/s)');
  });
});
