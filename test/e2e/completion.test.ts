import { chmod, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  binPath,
  cleanEnvironment,
  createTempDir,
  expectExit,
  repoRoot,
  runCliInProcess,
} from '../helpers/run-cli.js';

/** What `activity __complete …` offers, values only. */
async function offered(words: string[], env: Record<string, string> = {}): Promise<string[]> {
  const run = await runCliInProcess(['__complete', ...words], { env });
  expectExit(run, 0);
  expect(run.stderr).toBe('');
  return run.stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t')[0] as string);
}

describe('completion: what `activity __complete` offers', () => {
  it('the commands, with descriptions, before any', async () => {
    const run = await runCliInProcess(['__complete', '']);
    expect(run.stdout).toContain('query\tlist a tenant');
    const commands = await offered(['']);
    expect(commands).toEqual(
      expect.arrayContaining(['migrate', 'record', 'query', 'tail', 'verify', 'completion']),
    );
    expect(commands).not.toContain('__complete');
  });

  it("a command's flags, and before a command the flags every command takes", async () => {
    const flags = await offered(['query', '--']);
    expect(flags).toEqual(
      expect.arrayContaining(['--tenant', '--action', '--all', '--wide', '--format', '--data-dir']),
    );
    expect(await offered(['--'])).toEqual(
      expect.arrayContaining(['--data-dir', '--database-url', '--format']),
    );
    // After a common flag given before the command, the commands again.
    expect(await offered(['--data-dir', './x', ''])).toContain('tail');
  });

  it('the subcommands of one that has them', async () => {
    expect(await offered(['retention', ''])).toEqual(['set', 'clear', 'list']);
  });

  it("a flag's choices, after it or after its =, and an argument's", async () => {
    expect(await offered(['query', '--format', ''])).toEqual(['table', 'json', 'ndjson', 'csv']);
    expect(await offered(['query', '-o', ''])).toEqual(['table', 'json', 'ndjson', 'csv']);
    expect(await offered(['query', '--format='])).toEqual([
      '--format=table',
      '--format=json',
      '--format=ndjson',
      '--format=csv',
    ]);
    expect(await offered(['record', '--status', ''])).toEqual(['success', 'failure', 'pending']);
    expect(await offered(['completion', ''])).toEqual(['bash', 'zsh', 'fish']);
    expect(await offered(['token', '--scope', ''])).toEqual(['activity:read', 'activity:write']);
  });

  it('action names from the registry: record offers only those a caller may record', async () => {
    const recordable = await offered(['record', '--action', '']);
    expect(recordable).toContain('auth.login.success');
    expect(recordable.some((name) => name.startsWith('activity.'))).toBe(false);
    const filters = await offered(['query', '--tenant', 'acme', '--action', '']);
    expect(filters).toEqual(
      expect.arrayContaining(['auth.login.success', 'activity.events.read', 'auth.*', 'activity.*']),
    );
  });

  it('custom actions of ACTIVITY_REGISTRY_FILE; a broken file leaves the built-in ones, and no error', async () => {
    const registryFile = `${repoRoot}/test/fixtures/registry.json`;
    expect(await offered(['record', '--action', ''], { ACTIVITY_REGISTRY_FILE: registryFile })).toContain(
      'billing.invoice.sent',
    );
    const fallback = await offered(['record', '--action', ''], {
      ACTIVITY_REGISTRY_FILE: `${repoRoot}/package.json`,
    });
    expect(fallback).toContain('auth.login.success');
    expect(fallback).not.toContain('billing.invoice.sent');
  });

  it('a file name where a flag takes a path, and nothing where it takes free text', async () => {
    expect(await offered(['record', '--file', ''])).toEqual([':files']);
    expect(await offered(['--data-dir', ''])).toEqual([':files']);
    expect(await offered(['verify', '--bundle', ''])).toEqual([':files']);
    expect(await offered(['query', '--tenant', ''])).toEqual([]);
    // After `--`, operands only: no command takes any.
    expect(await offered(['query', '--tenant', 'acme', '--', ''])).toEqual([]);
  });

  it('`completion` refuses a shell it has no script for, naming those it has', async () => {
    const run = await runCliInProcess(['completion', 'powershell']);
    expectExit(run, 2);
    expect(run.stderr).toMatch(/bash, zsh, fish/);
  });
});

/** The scripts in the real shells, calling `activity` through PATH as an installed one would. */
describe('completion in bash, zsh and fish', { timeout: 60_000 }, () => {
  let dir: { path: string; remove(): Promise<void> };
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = await createTempDir('activity-completion-');
    await writeFile(`${dir.path}/activity`, `#!/bin/sh\nexec "${process.execPath}" "${binPath}" "$@"\n`);
    await chmod(`${dir.path}/activity`, 0o755);
    env = cleanEnvironment({ PATH: `${dir.path}:${process.env.PATH ?? '/usr/bin:/bin'}`, HOME: dir.path });
    for (const shell of ['bash', 'zsh', 'fish'] as const) {
      const script = await runCliInProcess(['completion', shell]);
      expectExit(script, 0);
      await writeFile(`${dir.path}/completion.${shell}`, script.stdout);
    }
  });
  afterAll(async () => {
    await dir?.remove();
  });

  const shell = async (program: string, script: string) => {
    const result = await execa(program, ['-c', script], {
      env,
      extendEnv: false,
      cwd: dir.path,
      reject: false,
    });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    return result.stdout.split('\n').filter((line) => line !== '');
  };

  it('bash: commands, choices, actions by prefix, and file names, after a space or an =', async () => {
    // COMP_WORDS as bash splits the line: at blanks, and at = and : too.
    const complete = (line: string, words: string) =>
      shell(
        'bash',
        `source ./completion.bash; COMP_LINE=${shellQuoted(line)}; COMP_POINT=\${#COMP_LINE};
         COMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1));
         _activity_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
      );
    expect(await complete('activity qu', 'activity qu')).toEqual(['query']);
    expect(await complete('activity query --format ', 'activity query --format ""')).toEqual([
      'table',
      'json',
      'ndjson',
      'csv',
    ]);
    expect(await complete('activity query --format=', 'activity query --format = ""')).toEqual([
      'table',
      'json',
      'ndjson',
      'csv',
    ]);
    expect(await complete('activity query --format=j', 'activity query --format = j')).toEqual(['json']);
    expect(
      await complete('activity record --action auth.login.', 'activity record --action auth.login.'),
    ).toEqual(['auth.login.failure', 'auth.login.success']);
    expect(
      await complete('activity record --file completion.b', 'activity record --file completion.b'),
    ).toEqual(['completion.bash']);
    expect(
      await complete('activity record --file=completion.b', 'activity record --file = completion.b'),
    ).toEqual(['completion.bash']);
  });

  it('zsh: loads under compinit, and offers candidates with their descriptions', async () => {
    expect(
      await shell(
        'zsh',
        `autoload -Uz compinit; compinit -u -d ./.zcompdump; source ./completion.zsh; print -r -- $_comps[activity]`,
      ),
    ).toEqual(['_activity']);
    // _describe and _files print what they were given: the widget machinery needs a terminal.
    const complete = (words: string, current: number) =>
      shell(
        'zsh',
        `compdef() { : }; compset() { : }; _describe() { print -rl -- "\${(@P)4}" }; _files() { print FILES }
         source ./completion.zsh; words=(${words}); CURRENT=${current}; _activity`,
      );
    expect(await complete('activity query --format ""', 4)).toEqual(['table', 'json', 'ndjson', 'csv']);
    expect(await complete('activity ""', 2)).toContain("query:list a tenant's events, newest first");
    expect(await complete('activity record --file ""', 4)).toEqual(['FILES']);
  });

  it('fish: complete -C gives the same', async () => {
    const complete = (line: string) =>
      shell('fish', `source ./completion.fish; complete -C ${JSON.stringify(line)}`);
    expect(await complete('activity qu')).toEqual(["query\tlist a tenant's events, newest first"]);
    expect(await complete('activity query --format ')).toEqual(['csv', 'json', 'ndjson', 'table']);
    expect(await complete('activity record --file ./completion.f')).toEqual(['./completion.fish']);
    expect(await complete('activity record --file=./completion.f')).toEqual(['--file=./completion.fish']);
    expect(await complete('activity query --format=j')).toEqual(['--format=json']);
  });
});

function shellQuoted(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
