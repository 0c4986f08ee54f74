import { describe, expect, it } from 'vitest';
import { runCliInProcess } from '../helpers/run-cli.js';

/** A database nothing listens on: each command fails at once, after its hooks have run. */
const nowhere = ['--database-url', 'postgres://activity@127.0.0.1:1/none'];

async function isBrief(args: string[]): Promise<boolean> {
  let told = 0;
  await runCliInProcess([...args, ...nowhere], {
    env: { ACTIVITY_SECRET: 'brief-commands-secret-0123456789abcdef' },
    briefCommand: () => told++,
  });
  expect(told).toBeLessThanOrEqual(1);
  return told === 1;
}

describe('brief commands', () => {
  it('tell the process when they do one small thing and exit, and only then', async () => {
    const brief = [
      ['query', '--tenant', 'acme', '--limit', '5'],
      ['record', '--tenant', 'acme', '--action', 'auth.login.success'],
      ['retention', 'list'],
      ['hold', 'list'],
    ];
    const long = [
      ['query', '--tenant', 'acme', '--all'],
      ['record', '--file', '-'],
      ['purge', '--dry-run'],
      ['verify', '--tenant', 'acme'],
      ['migrate'],
      ['export', '--tenant', 'acme'],
    ];
    for (const args of brief) expect([args.join(' '), await isBrief(args)]).toEqual([args.join(' '), true]);
    for (const args of long) expect([args.join(' '), await isBrief(args)]).toEqual([args.join(' '), false]);
  });
});
