import { randomUUID } from 'node:crypto';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bulkEventsSql } from '../helpers/bulk-events.js';
import { createTestDatabase } from '../helpers/databases.js';
import { binPath, cleanEnvironment, cliFor, expectExit, repoRoot, testSecret } from '../helpers/run-cli.js';

/**
 * The CLI in a real terminal: a tmux pane of 80 columns, as an operator has it. tmux
 * gives the command a pty, keys and a screen to read back, escapes included.
 */
describe('the CLI in an 80-column terminal (tmux)', { timeout: 90_000 }, () => {
  const socket = `activity-test-${randomUUID().slice(0, 8)}`;
  let database: { url: string; drop(): Promise<void> };
  let env: Record<string, string | undefined>;

  const tmux = (args: readonly string[]) =>
    execa('tmux', ['-L', socket, '-f', '/dev/null', ...args], {
      env: cleanEnvironment(),
      extendEnv: false,
      cwd: repoRoot,
    });

  /**
   * Runs `script` in bash in a new window of 80×40, and resolves once it has ended
   * (tmux wait-for: no polling). The window stays, for its screen to be read.
   */
  async function inTerminal(name: string, script: string): Promise<void> {
    const assignments = Object.entries(env)
      .map(([key, value]) => (value === undefined ? `-u ${key}` : `${key}=${shellQuoted(value)}`))
      .join(' ');
    const line = `env -i ${assignments} bash -c ${shellQuoted(script)}; tmux wait-for -S ${name}-done; sleep 3600`;
    await tmux(['new-window', '-d', '-n', name, line]);
  }

  const ended = (name: string) => tmux(['wait-for', `${name}-done`]);

  /** The window's screen, lines without their trailing blanks; with `escapes`, colours kept. */
  async function screen(name: string, escapes = false): Promise<string[]> {
    const { stdout } = await tmux(['capture-pane', '-p', '-t', name, ...(escapes ? ['-e'] : [])]);
    return stdout.split('\n').map((each) => each.trimEnd());
  }

  /** Resolves once the window's screen shows what `shows` looks for; a screen tells of no change, so it is read again and again. */
  async function untilScreen(name: string, shows: (lines: string[]) => boolean): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!shows(await screen(name))) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for the screen of ${name}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  beforeAll(async () => {
    database = await createTestDatabase();
    env = {
      // A terminal as an operator's: colours not turned off.
      ...cleanEnvironment({
        ACTIVITY_DATABASE_URL: database.url,
        ACTIVITY_SECRET: testSecret,
        NO_COLOR: undefined,
        FORCE_COLOR: undefined,
      }),
      TERM: 'tmux-256color',
    };
    const cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    for (const n of [1, 2, 3]) {
      expectExit(
        await cli([
          'record',
          '--tenant',
          'wide',
          '--action',
          'storage.file.uploaded',
          '--actor-id',
          `user-with-a-rather-long-identifier-${n}`,
          '--object-type',
          'file',
          '--object-id',
          `f_${n}`,
          '--metadata',
          '{"file_id":"f_42","size_bytes":1024}',
          '--user-agent',
          'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
        ]),
        0,
      );
    }
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(bulkEventsSql('bulk', 200_000));
    await admin.end();
    // The server lives as long as its first session: one that waits for nothing.
    await tmux(['new-session', '-d', '-s', 'main', '-x', '80', '-y', '40', 'sleep 3600']);
  });
  afterAll(async () => {
    await tmux(['kill-server']).catch(() => {});
    await database?.drop();
  });

  const activity = `${shellQuoted(process.execPath)} ${shellQuoted(binPath)}`;

  it('query draws one line per event within 80 columns, in colour, and plain under NO_COLOR', async () => {
    await inTerminal('table', `${activity} query --tenant wide; echo "EXIT=$?"`);
    await ended('table');
    const lines = await screen('table');
    expect(lines).toContain('EXIT=0');
    const table = lines.slice(0, lines.indexOf('EXIT=0'));
    // Top border, header, one line per event, bottom border: no row wrapped.
    expect(table, table.join('\n')).toHaveLength(6);
    for (const each of table) expect([...each].length, each).toBeLessThanOrEqual(80);
    expect(table.filter((each) => each.includes('user:user-wit'))).toHaveLength(3);
    // Green status, dim times: escapes on the screen.
    expect((await screen('table', true)).join('\n')).toContain(`${escapeCharacter}[32msuccess`);

    await inTerminal('plain', `NO_COLOR=1 ${activity} query --tenant wide; echo "EXIT=$?"`);
    await ended('plain');
    const plain = await screen('plain', true);
    expect(plain).toContain('EXIT=0');
    expect(plain.join('\n')).not.toContain(`${escapeCharacter}[`);
  });

  it('Ctrl-C ends query --all with exit 0 and no error', async () => {
    await inTerminal('interrupted', `${activity} query --tenant bulk --all --format ndjson; echo "EXIT=$?"`);
    await untilScreen('interrupted', (lines) => lines.some((each) => each.includes('"tenant_id":"bulk"')));
    await tmux(['send-keys', '-t', 'interrupted', 'C-c']);
    await ended('interrupted');
    const lines = await screen('interrupted');
    // On a line of its own: the output ended with a whole line, not cut mid-event.
    expect(lines).toContain('EXIT=0');
    // Interrupted, not finished: the oldest event (seq 1, printed last) never came.
    expect(lines.join('')).not.toContain('"seq":1,');
    expect(lines.join('\n')).not.toMatch(/error|Error|at .*\.js:\d+/);
  });

  it('help piped into head ends quietly: exit 0, one line, no EPIPE', async () => {
    await inTerminal('piped', `${activity} --help | head -1; echo "STATUS=\${PIPESTATUS[0]}"`);
    await ended('piped');
    const lines = (await screen('piped')).filter((each) => each !== '');
    expect(lines).toEqual(['Usage: activity [options] [command]', 'STATUS=0']);
  });
});

/** ESC, which starts each colour sequence. */
const escapeCharacter = String.fromCharCode(27);

function shellQuoted(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}
