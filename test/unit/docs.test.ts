import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { errorCodes } from '../../src/domain/errors.js';
import { builtinActions } from '../../src/registry/builtin-actions.js';
import { runCliInProcess } from '../helpers/run-cli.js';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

describe('the docs follow the code', () => {
  it('docs/activity-log.md lists every built-in action', () => {
    const doc = read('docs/activity-log.md');
    const missing = builtinActions
      .map((action) => action.name)
      .filter((name) => !doc.includes(`\`${name}\``));
    expect(missing).toEqual([]);
  });

  it('docs/cli.md has a row and a section for every command', async () => {
    const doc = read('docs/cli.md');
    const run = await runCliInProcess(['__complete', '']);
    const commands = run.stdout.split('\n').flatMap((line) => (line === '' ? [] : [line.split('\t')[0]]));
    expect(commands.length).toBeGreaterThan(10);
    expect(
      commands.filter((name) => !doc.includes(`| [\`${name}`) || !doc.includes(`\n## ${name}\n`)),
    ).toEqual([]);
  });

  it('docs/cli.md names every error code', () => {
    const doc = read('docs/cli.md');
    expect(Object.keys(errorCodes).filter((code) => !doc.includes(`\`${code}\``))).toEqual([]);
  });
});
