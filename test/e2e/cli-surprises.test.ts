import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { stripVTControlCharacters } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventFields } from '../../src/domain/event.js';
import { bulkEventsSql } from '../helpers/bulk-events.js';
import { createTestDatabase } from '../helpers/databases.js';
import {
  binPath,
  cleanEnvironment,
  expectExit,
  inProcessCliFor,
  parseJson,
  repoRoot,
  runCliInProcess,
  testSecret,
} from '../helpers/run-cli.js';

/** Events of the listed tenant: far more NDJSON than a pipe holds. */
const eventCount = 20_000;

/** `activity …` as a process of its own, its stdout a pipe the test reads (or closes). */
function spawnActivity(args: readonly string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [binPath, ...args], {
    cwd: repoRoot,
    env: cleanEnvironment(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = once(child, 'exit').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as string | null,
    stderr,
  }));
  return { child, exited };
}

/** What an operator meets at the terminal: the command ends as it says, and says what was wrong. */
describe('commands that never surprise', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof inProcessCliFor>;

  beforeAll(async () => {
    database = await createTestDatabase();
    cli = inProcessCliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(bulkEventsSql('listed', eventCount));
    } finally {
      await admin.end();
    }
  });
  afterAll(async () => database?.drop());

  it.each([[['--help']], [['query', '--help']], [['retention', 'set', '--help']]])(
    '`activity %s` to a reader that has gone (| head -1) exits 0 and prints no stack',
    async (args) => {
      const { child, exited } = spawnActivity(args);
      child.stdout.destroy();
      const { code, stderr } = await exited;
      expect(stderr).toBe('');
      expect(code).toBe(0);
    },
  );

  it.each(['ndjson', 'json'])(
    'Ctrl-C ends `query --all --format %s` with exit 0 and whole output, before the end',
    async (format) => {
      const { child, exited } = spawnActivity(['query', '--tenant', 'listed', '--all', '--format', format], {
        ACTIVITY_DATABASE_URL: database.url,
        ACTIVITY_SECRET: testSecret,
        ACTIVITY_AUDIT_READS: 'false',
      });
      // Nobody reads yet: the listing stalls on the full pipe, well before its end.
      child.stdout.pause();
      await once(child.stdout, 'readable');
      child.kill('SIGINT');
      let stdout = '';
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
      });
      child.stdout.resume();
      const { code, signal, stderr } = await exited;
      expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' });
      const events =
        format === 'json'
          ? parseJson<{ data: unknown[] }>(stdout).data
          : stdout
              .split('\n')
              .slice(0, -1)
              .map((line) => JSON.parse(line) as unknown);
      expect(stdout.endsWith('\n')).toBe(true);
      expect(events.length).toBeGreaterThan(0);
      expect(events.length).toBeLessThan(eventCount);
    },
  );

  it('names an unknown command or flag with what was meant, on one line', async () => {
    const cases = [
      [['qeury', '--tenant', 'a'], "unknown command 'qeury' (did you mean query?)"],
      [['query', '--tenat', 'acme'], "unknown option '--tenat' (did you mean --tenant?)"],
      [['query', '--tenant', 'acme', '--formt', 'json'], "unknown option '--formt' (did you mean --format?)"],
    ] as const;
    for (const [args, message] of cases) {
      const run = await cli(args);
      expectExit(run, 2);
      expect(run.stderr).toBe(`error: ${message}\n`);
    }
  });

  it('takes the common flags before the command as after it', async () => {
    expectExit(await cli(['record', '--tenant', 'early', '--action', 'auth.login.success']), 0);
    const run = await cli([
      '--format',
      'json',
      `--database-url=${database.url}`,
      'query',
      '--tenant',
      'early',
    ]);
    expectExit(run, 0);
    expect(parseJson<{ data: Array<{ seq: number }> }>(run.stdout).data.map((event) => event.seq)).toEqual([
      1,
    ]);
  });

  it('names the fix: the flag, what it takes, what was meant, what to check', async () => {
    const refusals = [
      [['query', '--tenant', 'a', '--limit', 'abc'], '--limit must be a whole number from 1 to 1000'],
      [
        ['query', '--tenant', 'a', '--action', 'auth.login'],
        '--action an exact action has three parts (namespace.object.verb); end a prefix with .*',
      ],
      [
        ['record', '--tenant', 'a', '--action', 'auth.login.sucess'],
        'unknown action "auth.login.sucess" (did you mean auth.login.success?); the registry: `activity actions`, GET /api/v1/activity/actions',
      ],
      [
        [
          'record',
          '--tenant',
          'a',
          '--action',
          'billing.payment.state_changed',
          '--metadata',
          '{"currency":"EUR"}',
        ],
        'metadata.payment_id: is required',
      ],
    ] as const;
    for (const [args, message] of refusals) {
      const run = await cli(args);
      expectExit(run, 2);
      expect(run.stderr).toContain(`error: ${message}`);
    }
    const refused = await inProcessCliFor({
      ACTIVITY_DATABASE_URL: 'postgres://activity@127.0.0.1:1/activity',
      ACTIVITY_SECRET: testSecret,
    })(['query', '--tenant', 'a']);
    expectExit(refused, 3);
    expect(refused.stderr).toContain('ECONNREFUSED (nothing listens there: is PostgreSQL running');
    const serve = await cli(['serve', '--port', '0']);
    expectExit(serve, 2);
    expect(serve.stderr).toContain('export ACTIVITY_JWT_SECRET="$(openssl rand -hex 32)"');
  });

  it('takes plain dates and years as time bounds', async () => {
    expectExit(await cli(['record', '--tenant', 'dated', '--action', 'auth.login.success']), 0);
    for (const since of ['2000-01-31', '1y']) {
      const run = await cli(['query', '--tenant', 'dated', '--since', since, '--format', 'json']);
      expectExit(run, 0);
      expect(parseJson<{ data: unknown[] }>(run.stdout).data).toHaveLength(1);
    }
    const future = await cli(['query', '--tenant', 'dated', '--since', '9999-01-01', '--format', 'json']);
    expect(parseJson<{ data: unknown[] }>(future.stdout).data).toEqual([]);
  });

  it('warns of a scope or role that serve does not know, with what was meant', async () => {
    const run = await inProcessCliFor({ ACTIVITY_JWT_SECRET: testSecret })([
      'token',
      '--tenant',
      'a',
      '--scope',
      'activity:wirte',
      '--role',
      'amdin',
    ]);
    expectExit(run, 0);
    expect(run.stderr).toBe(
      'warning: serve knows no scope activity:wirte (did you mean activity:write?): it grants nothing there\n' +
        'warning: serve knows no role amdin (did you mean admin?): it grants nothing there\n',
    );
  });

  it('every command and subcommand has examples in its help, and lists only the flags it takes', async () => {
    const helpOf = async (path: readonly string[]) => {
      const run = await cli([...path, '--help']);
      expectExit(run, 0);
      return run.stdout;
    };
    /** The subcommands a help lists under "Commands:" (a line of its own each; wrapped text is indented further), but `help`. */
    const subcommandsIn = (help: string) =>
      [...(help.split('\nCommands:\n')[1] ?? '').matchAll(/^ {2}([a-z]+)\b/gm)]
        .map((match) => match[1] as string)
        .filter((name) => name !== 'help');
    const seen: string[] = [];
    const visit = async (path: readonly string[]) => {
      expect(path.length, path.join(' ')).toBeLessThanOrEqual(2);
      const help = await helpOf(path);
      const subcommands = subcommandsIn(help);
      for (const name of subcommands) await visit([...path, name]);
      if (path.length > 0 && subcommands.length === 0) {
        seen.push(path.join(' '));
        expect(help, `activity ${path.join(' ')} --help`).toMatch(/\nExamples:\n {2}\$ (\S+=\S+ )?activity /);
      }
    };
    await visit([]);
    expect(seen).toEqual(
      expect.arrayContaining(['retention set', 'retention clear', 'hold add', 'hold remove']),
    );
    expect(seen.length).toBeGreaterThanOrEqual(17);
    for (const command of ['token', 'actions']) {
      expect(await helpOf([command])).not.toMatch(/--database-url|--data-dir|--redis-url/);
    }
    expect(await helpOf(['serve'])).not.toContain('--format');
    // Left out of the help, still accepted: every command takes the common flags (DESIGN.md).
    expectExit(
      await cli(['actions', '--database-url', database.url, '--data-dir', '/nowhere', '-o', 'json']),
      0,
    );
  });

  it('fits the table of a page to the terminal, unless --wide, and shows one event as a list; -o is --format', async () => {
    const terminal = (args: string[], terminalColumns: number) =>
      runCliInProcess(args, {
        env: {
          ACTIVITY_DATABASE_URL: database.url,
          ACTIVITY_SECRET: testSecret,
          ACTIVITY_AUDIT_READS: 'false',
        },
        terminalColumns,
      });
    const widest = (run: { stdout: string }) =>
      Math.max(...run.stdout.split('\n').map((line) => [...line].length));
    for (const columns of [80, 120]) {
      const fitted = await terminal(['query', '--tenant', 'listed', '--limit', '3'], columns);
      expectExit(fitted, 0);
      expect(fitted.stdout.split('\n')).toHaveLength(3 + 4);
      expect(widest(fitted)).toBeLessThanOrEqual(columns);
    }
    const wide = await terminal(['query', '--tenant', 'listed', '--limit', '3', '--wide'], 80);
    expect(widest(wide)).toBeGreaterThan(120);
    // One event (record's answer) is a list of its fields, one line each, not a box.
    const recorded = await terminal(['record', '--tenant', 'boxed', '--action', 'auth.login.success'], 80);
    expectExit(recorded, 0);
    const lines = recorded.stdout.trimEnd().split('\n');
    expect(lines.map((line) => line.split(/\s+/)[0])).toEqual([...eventFields]);
    expect(lines[1]).toBe('tenant_id    boxed');
    expect(lines[5]).toBe('actor_id     -');
    const registry = await terminal(['actions'], 80);
    expectExit(registry, 0);
    expect(widest(registry)).toBeLessThanOrEqual(80);
    expect(registry.stdout).toContain('billing.payment.state_changed');
    const json = await terminal(['query', '--tenant', 'listed', '--limit', '1', '-o', 'json'], 80);
    expect(parseJson<{ data: unknown[] }>(json.stdout).data).toHaveLength(1);
  });

  it('colours the table on a terminal, unless NO_COLOR or --no-color; never when piped', async () => {
    const env = {
      ACTIVITY_DATABASE_URL: database.url,
      ACTIVITY_SECRET: testSecret,
      ACTIVITY_AUDIT_READS: 'false',
      // The harness sets it for every run; a terminal left to itself has none.
      NO_COLOR: undefined,
    };
    const page = ['query', '--tenant', 'listed', '--limit', '2', '--format', 'table'];
    const sgr = '\u001b[';
    const coloured = await runCliInProcess(page, { env, terminalColumns: 120 });
    expect(coloured.stdout).toContain(`${sgr}32msuccess`);
    for (const run of [
      await runCliInProcess(page, { env: { ...env, NO_COLOR: '1' }, terminalColumns: 120 }),
      await runCliInProcess([...page, '--no-color'], { env, terminalColumns: 120 }),
      await runCliInProcess(page, { env }),
    ]) {
      expectExit(run, 0);
      expect(run.stdout).toContain('success');
      expect(run.stdout).not.toContain(sgr);
    }
    // Colours take no room: the coloured table is as wide as the plain one.
    const plain = await runCliInProcess([...page, '--no-color'], { env, terminalColumns: 120 });
    expect(stripVTControlCharacters(coloured.stdout)).toBe(plain.stdout);
  });

  it('shows the progress of record --file and query --all on stderr when it is a terminal, and nothing otherwise', async () => {
    const input = Array.from({ length: 2500 }, () =>
      JSON.stringify({ tenant_id: 'progress', action: 'auth.login.success' }),
    ).join('\n');
    const env = { ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret };
    const shown = await runCliInProcess(['record', '--file', '-', '--format', 'json'], {
      env,
      input,
      stderrIsTerminal: true,
    });
    expectExit(shown, 0);
    expect(shown.stderr).toContain('recording');
    expect(parseJson<{ recorded: number }>(shown.stdout).recorded).toBe(2500);
    const quiet = await runCliInProcess(['record', '--file', '-', '--format', 'json'], { env, input });
    expectExit(quiet, 0);
    expect(quiet.stderr).toBe('');
    // So does query --all writing to a file or a pipe.
    const listing = ['query', '--tenant', 'progress', '--all', '--format', 'ndjson'];
    const listed = await runCliInProcess(listing, { env, stderrIsTerminal: true });
    expectExit(listed, 0);
    expect(listed.stderr).toContain('reading');
    expect(listed.stdout.split('\n')).toHaveLength(5000 + 1);
    const listedQuietly = await runCliInProcess(listing, { env });
    expect(listedQuietly.stderr).toBe('');
  });

  it('refuses `tail -n` past its maximum naming -n', async () => {
    const run = await cli(['tail', '--tenant', 'listed', '-n', '2000']);
    expectExit(run, 2);
    expect(run.stderr).toBe('error: -n must be 0 to 1000\n');
  });
});
