import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDurableDatabase, withClient } from '../helpers/fault-fixture.js';
import type { PostgresServer } from '../helpers/postgres-server.js';
import { cliFor, createTempDir, expectExit, parseJson, testSecret } from '../helpers/run-cli.js';
import { killAllCli, spawnCli } from '../helpers/running-cli.js';

const lineCount = 20_000;

interface ImportReport {
  recorded: number;
  duplicates: number;
  rejected_total: number;
  committed_through_line: number;
  resume_from?: number;
}

/**
 * `record --file` of events without ids, stopped by a PostgreSQL outage part way:
 * it must say how far it got, and a run resumed from there must store the rest
 * without storing any line twice.
 */
describe('an import interrupted by a database outage', { timeout: 120_000 }, () => {
  let postgres: PostgresServer;
  let databaseUrl: string;
  let directory: { path: string; remove(): Promise<void> };
  const lines = Array.from({ length: lineCount }, (_, index) =>
    // Every tenth line is invalid: rejected lines must not confuse the count.
    index % 10 === 9
      ? JSON.stringify({ tenant_id: 'import', action: 'no.such.action' })
      : JSON.stringify({
          tenant_id: index % 3 === 0 ? 'import-b' : 'import',
          action: 'auth.login.success',
          actor_id: `line-${index + 1}`,
        }),
  );

  beforeAll(async () => {
    ({ postgres, url: databaseUrl } = await startDurableDatabase());
    directory = await createTempDir('import');
    await writeFile(join(directory.path, 'events.ndjson'), `${lines.join('\n')}\n`);
  });
  afterAll(async () => {
    await killAllCli();
    postgres?.stop();
    await directory?.remove();
  });

  const storedActors = () =>
    withClient(databaseUrl, async (client) =>
      (await client.query<{ actor_id: string }>('select actor_id from activity_events')).rows.map(
        (row) => row.actor_id,
      ),
    );

  it('reports the line through which it committed, and --resume-from stores the rest exactly once', async () => {
    const env = { ACTIVITY_DATABASE_URL: databaseUrl, ACTIVITY_SECRET: testSecret };
    const importing = spawnCli(['record', '--file', '-', '--format', 'json'], env, { stdin: 'pipe' });
    const stdin = importing.child.stdin;
    if (!stdin) throw new Error('the import has no stdin');
    // The first half, then an outage before the rest arrives.
    stdin.write(`${lines.slice(0, lineCount / 2).join('\n')}\n`);
    await waitForRows(databaseUrl, 5_000);
    postgres.halt();
    stdin.end(`${lines.slice(lineCount / 2).join('\n')}\n`);
    const { exitCode } = await importing.finished;
    expect(exitCode, importing.stderr()).toBe(3);
    const interrupted = parseJson<ImportReport>(importing.stdout());
    expect(importing.stderr()).toMatch(/--resume-from \d+/);
    postgres.start();

    const afterOutage = await storedActors();
    expect(afterOutage.length).toBe(interrupted.recorded);
    const through = interrupted.committed_through_line;
    expect(through).toBeGreaterThanOrEqual(5_000);
    expect(interrupted.resume_from).toBe(through + 1);
    // Exactly the valid lines up to `through` are stored.
    const validUpTo = (last: number) =>
      lines.slice(0, last).filter((line) => !line.includes('no.such.action')).length;
    expect(interrupted.recorded).toBe(validUpTo(through));

    const resumed = await cliFor(env)([
      'record',
      '--file',
      join(directory.path, 'events.ndjson'),
      '--resume-from',
      String(through + 1),
      '--format',
      'json',
    ]);
    expectExit(resumed, 2); // the invalid lines after `through` are rejected again
    const report = parseJson<ImportReport>(resumed.stdout);
    expect(report).toMatchObject({ recorded: validUpTo(lineCount) - validUpTo(through), duplicates: 0 });
    expect(report.committed_through_line).toBe(lineCount);

    const stored = await storedActors();
    expect(stored.length).toBe(validUpTo(lineCount));
    expect(new Set(stored).size).toBe(stored.length);
  });
});

/** Resolves once the database holds at least `count` events; bounded wait. */
async function waitForRows(url: string, count: number): Promise<void> {
  await withClient(url, async (client) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await client.query<{ n: string }>('select count(*) as n from activity_events');
      if (Number(rows[0]?.n) >= count) return;
      if (Date.now() > deadline) throw new Error(`fewer than ${count} events after 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
}
