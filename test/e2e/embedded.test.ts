import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventJson, expectEventShape } from '../helpers/event-shape.js';
import { createTempDir, expectExit, parseJson, parseNdjson, runCli } from '../helpers/run-cli.js';

/**
 * The zero-setup default: no database URL and no secret, only a data directory.
 * PGlite allows one process per directory, so these run one after another.
 */
describe('embedded default (PGlite, no database URL)', { timeout: 60_000 }, () => {
  let dataDir: { path: string; remove(): Promise<void> };
  let workDir: { path: string; remove(): Promise<void> };
  const run = (args: readonly string[]) =>
    runCli(args, { env: { ACTIVITY_DATA_DIR: dataDir.path }, cwd: workDir.path, timeoutMs: 60_000 });
  let first: EventJson;

  beforeAll(async () => {
    [dataDir, workDir] = await Promise.all([createTempDir('embedded-data'), createTempDir('embedded-cwd')]);
  });
  afterAll(async () => {
    await Promise.all([dataDir?.remove(), workDir?.remove()]);
  });

  it('record works on a fresh data directory with no database URL and no secret', async () => {
    const recorded = await run([
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
    ]);
    expectExit(recorded, 0);
    first = parseJson<EventJson>(recorded.stdout);
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
    const info = await stat(join(dataDir.path, 'secret'));
    expect(info.isFile()).toBe(true);
    expect(info.mode & 0o777).toBe(0o600);
    expect(info.size).toBeGreaterThanOrEqual(32);
  });

  it('a later process reuses the secret (same IP, same hash) and query returns both events', async () => {
    const second = await run([
      'record',
      '--tenant',
      'local',
      '--action',
      'auth.logout.completed',
      '--ip',
      '203.0.113.9',
      '--format',
      'json',
    ]);
    expectExit(second, 0);
    const event = parseJson<EventJson>(second.stdout);
    expect(event.seq).toBe(2);
    expect(event.ip_hash).toBe(first.ip_hash);

    const queried = await run(['query', '--tenant', 'local']);
    expectExit(queried, 0);
    const events = parseNdjson<EventJson>(queried.stdout);
    expect(events.map((e) => e.seq)).toEqual([2, 1]);
    expect(events[1]).toEqual(first);
    expect(queried.stdout).not.toContain('203.0.113.9');
  });

  it('writes nothing to the working directory (no stray ./.activity)', async () => {
    expect(await readdir(workDir.path)).toEqual([]);
  });
});
