import { cp, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type EventJson, expectEventShape } from '../helpers/event-shape.js';
import {
  createTempDir,
  expectExit,
  expectJsonError,
  parseJson,
  parseNdjson,
  runCli,
  runCliInProcess,
} from '../helpers/run-cli.js';

/**
 * The zero-setup default: no database URL and no secret, only a data directory.
 * Each test stands alone: the costly first `record` on a fresh directory runs once, for
 * whichever test needs it first, and a test that writes more works on a copy of it.
 */
describe('embedded default (PGlite, no database URL)', { timeout: 60_000 }, () => {
  const removals: (() => Promise<void>)[] = [];
  afterAll(async () => {
    await Promise.all(removals.map((remove) => remove()));
  });

  async function tempDir(prefix: string): Promise<string> {
    const dir = await createTempDir(prefix);
    removals.push(dir.remove);
    return dir.path;
  }

  const run = (args: readonly string[], dirs: { dataDir: string; workDir: string }) =>
    runCli(args, { env: { ACTIVITY_DATA_DIR: dirs.dataDir }, cwd: dirs.workDir, timeoutMs: 60_000 });

  interface Fresh {
    dataDir: string;
    workDir: string;
    /** What `record` printed, or the run itself when it failed. */
    recorded: Awaited<ReturnType<typeof run>>;
  }
  let fresh: Promise<Fresh> | undefined;
  /** One `record` on a fresh data directory, from a fresh working directory. */
  function freshRecord(): Promise<Fresh> {
    fresh ??= (async () => {
      const [dataDir, workDir] = await Promise.all([tempDir('embedded-data'), tempDir('embedded-cwd')]);
      const recorded = await run(
        [
          'record',
          '--tenant',
          'local',
          '--action',
          'auth.login.success',
          '--actor-id',
          'u_1',
          '--ip',
          '203.0.113.9',
          '--format',
          'json',
        ],
        { dataDir, workDir },
      );
      return { dataDir, workDir, recorded };
    })();
    return fresh;
  }
  async function firstEvent(): Promise<EventJson> {
    const { recorded } = await freshRecord();
    expectExit(recorded, 0);
    return parseJson<EventJson>(recorded.stdout);
  }

  it('record works on a fresh data directory with no database URL and no secret', async () => {
    const first = await firstEvent();
    expectEventShape(first);
    expect(first).toMatchObject({
      tenant_id: 'local',
      seq: 1,
      actor_id: 'u_1',
      action: 'auth.login.success',
    });
    expect(first.ip_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('creates its secret in the data directory, readable by the owner only (0600)', async () => {
    await firstEvent();
    const info = await stat(join((await freshRecord()).dataDir, 'secret'));
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    expect(info.size).toBeGreaterThanOrEqual(32);
  });

  it('a later process reuses the secret (same IP, same hash) and query returns both events', async () => {
    const first = await firstEvent();
    // A copy, so that the first directory stays as one record left it.
    const dataDir = await tempDir('embedded-later');
    await cp((await freshRecord()).dataDir, dataDir, { recursive: true });
    const dirs = { dataDir, workDir: await tempDir('embedded-later-cwd') };
    const second = await run(
      [
        'record',
        '--tenant',
        'local',
        '--action',
        'auth.logout.completed',
        '--ip',
        '203.0.113.9',
        '--format',
        'json',
      ],
      dirs,
    );
    expectExit(second, 0);
    const event = parseJson<EventJson>(second.stdout);
    expect(event.seq).toBe(2);
    expect(event.ip_hash).toBe(first.ip_hash);

    const queried = await run(['query', '--tenant', 'local'], dirs);
    expectExit(queried, 0);
    const events = parseNdjson<EventJson>(queried.stdout);
    expect(events.map((e) => e.seq)).toEqual([2, 1]);
    expect(events[1]).toEqual(first);
    expect(queried.stdout).not.toContain('203.0.113.9');
  });

  it('a command that only reads refuses a data directory with no database, and makes none', async () => {
    const dirs = {
      dataDir: join(await tempDir('embedded-none'), 'nothing-here'),
      workDir: await tempDir('cwd'),
    };
    for (const args of [
      ['query', '--tenant', 'local', '--format', 'json'],
      ['verify', '--format', 'json'],
    ]) {
      const error = expectJsonError(await run(args, dirs), 2, 'CONFIG_INVALID');
      expect(error.message).toContain(`there is no embedded database in ${dirs.dataDir}`);
    }
    await expect(stat(dirs.dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('on a terminal, the first command in a data directory says it is creating the database; no other does', async () => {
    const record = ['record', '--tenant', 'local', '--action', 'auth.login.success', '--format', 'json'];
    const dataDir = join(await tempDir('embedded-spinner'), 'data');
    const first = await runCliInProcess(record, {
      env: { ACTIVITY_DATA_DIR: dataDir },
      stderrIsTerminal: true,
    });
    expectExit(first, 0);
    expect(first.stderr).toContain(`creating the embedded database in ${dataDir} (once: a few seconds)`);
    expect(first.stderr).toContain(`✔ created the embedded database in ${dataDir}\n`);
    const second = await runCliInProcess(record, {
      env: { ACTIVITY_DATA_DIR: dataDir },
      stderrIsTerminal: true,
    });
    expectExit(second, 0);
    expect(second.stderr).toBe('');
    // Not a terminal (a script, cron): nothing.
    const piped = await runCliInProcess(record, {
      env: { ACTIVITY_DATA_DIR: join(await tempDir('embedded-piped'), 'data') },
    });
    expectExit(piped, 0);
    expect(piped.stderr).toBe('');
    // A command that refuses to create one says nothing of creating it.
    const refused = await runCliInProcess(['query', '--tenant', 'local'], {
      env: { ACTIVITY_DATA_DIR: join(await tempDir('embedded-refused'), 'none') },
      stderrIsTerminal: true,
    });
    expectExit(refused, 2);
    expect(refused.stderr).not.toContain('created the embedded database');
  });

  it('an ACTIVITY_SECRET that is not the one the data directory keeps is refused; the same one is used', async () => {
    await firstEvent();
    // A copy: a query records its read in the log.
    const dataDir = await tempDir('embedded-secret');
    await cp((await freshRecord()).dataDir, dataDir, { recursive: true });
    const dirs = { dataDir, workDir: await tempDir('embedded-secret-cwd') };
    const query = ['query', '--tenant', 'local', '--format', 'json'];
    const other = await runCli(query, {
      env: { ACTIVITY_DATA_DIR: dataDir, ACTIVITY_SECRET: 'another-secret-0123456789abcdef0123456789' },
      cwd: dirs.workDir,
      timeoutMs: 60_000,
    });
    const error = expectJsonError(other, 2, 'CONFIG_INVALID');
    expect(error.message).toContain('ACTIVITY_SECRET is not the secret of the embedded database');
    const kept = (await readFile(join(dataDir, 'secret'), 'utf8')).trim();
    const same = await runCli(query, {
      env: { ACTIVITY_DATA_DIR: dataDir, ACTIVITY_SECRET: kept },
      cwd: dirs.workDir,
      timeoutMs: 60_000,
    });
    expectExit(same, 0);
  });

  it('tail prints the last events, then says why nothing new can come and exits 0 (it never hangs or ends unsettled)', async () => {
    await firstEvent();
    // A copy: tail records its stream in the log.
    const dataDir = await tempDir('embedded-tail');
    await cp((await freshRecord()).dataDir, dataDir, { recursive: true });
    const tailed = await run(['tail', '--tenant', 'local', '--format', 'ndjson'], {
      dataDir,
      workDir: await tempDir('embedded-tail-cwd'),
    });
    expectExit(tailed, 0);
    expect(parseNdjson<EventJson>(tailed.stdout).map((event) => event.seq)).toEqual([1]);
    expect(tailed.stderr).toMatch(/embedded database serves one process at a time.*activity tail --url/s);
  });

  it('writes nothing to the working directory (no stray ./.activity)', async () => {
    await firstEvent();
    expect(await readdir((await freshRecord()).workDir)).toEqual([]);
  });
});
