import { describe, expect, it } from 'vitest';
import { withCommonFlagsAfterCommand } from '../../src/cli/arguments.js';
import { closest } from '../../src/domain/closest-names.js';

const argv = (...args: string[]) => ['node', 'activity', ...args];

describe('the common flags before the command', () => {
  it.each([
    [argv('--data-dir', 'X', 'tail', '--tenant', 'a'), argv('tail', '--data-dir', 'X', '--tenant', 'a')],
    // After the subcommand of a command that has them, from before or between the two.
    [argv('--format=json', 'retention', 'set'), argv('retention', 'set', '--format=json')],
    [argv('sink', '--data-dir', 'X', 'list'), argv('sink', 'list', '--data-dir', 'X')],
    [
      argv('--data-dir', 'X', 'sink', '--format', 'json', 'status', 'id'),
      argv('sink', 'status', '--data-dir', 'X', '--format', 'json', 'id'),
    ],
    [argv('--data-dir', 'X', 'sink'), argv('sink', '--data-dir', 'X')],
    [
      argv('--format', 'json', '--database-url', 'postgres://h/d', 'query'),
      argv('query', '--format', 'json', '--database-url', 'postgres://h/d'),
    ],
    // Left as given: nothing to move, a flag that is not common, or no command after them.
    [argv('query', '--format', 'json'), argv('query', '--format', 'json')],
    [argv('--tenant', 'a', 'query'), argv('--tenant', 'a', 'query')],
    [argv('--format', 'json'), argv('--format', 'json')],
  ])('%j becomes %j', (given, expected) => {
    expect(withCommonFlagsAfterCommand(given, new Set(['retention', 'hold', 'sink']))).toEqual(expected);
  });
});

describe('what was meant', () => {
  it('names the closest candidates within a few edits, and none when nothing is close', () => {
    const actions = ['auth.login.success', 'auth.login.failure', 'auth.logout.completed'];
    expect(closest('auth.login.sucess', actions)).toEqual(['auth.login.success']);
    expect(closest('--tenat', ['--tenant', '--limit', '--format'])).toEqual(['--tenant']);
    expect(closest('billing.refund', actions)).toEqual([]);
    expect(closest('auth.login.success', actions)).toEqual([]);
  });
});
