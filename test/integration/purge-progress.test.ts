import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../src/cli/context.js';
import { runCli } from '../../src/cli/main.js';
import { createTestDatabase } from '../helpers/databases.js';

/** A process's streams in memory; stderr answers as a terminal when `tty` (cursor moves are no-ops). */
function memoryIo(tty: boolean, env: NodeJS.ProcessEnv) {
  const captured = { stdout: '', stderr: '' };
  const stdout = new PassThrough();
  const stderr = Object.assign(new PassThrough(), {
    isTTY: tty,
    columns: 80,
    cursorTo: () => true,
    moveCursor: () => true,
    clearLine: () => true,
  });
  stdout.on('data', (chunk: Buffer) => {
    captured.stdout += chunk.toString();
  });
  stderr.on('data', (chunk: Buffer) => {
    captured.stderr += chunk.toString();
  });
  const io: CliIo = { stdin: new PassThrough(), stdout, stderr, env };
  return { io, captured };
}

describe('purge progress', () => {
  let database: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => database?.drop());

  it('shows a spinner on stderr when it is a terminal, and nothing when it is not', async () => {
    const env = { ACTIVITY_DATABASE_URL: database.url, NO_COLOR: '1' };
    const terminal = memoryIo(true, env);
    const code = await runCli(['node', 'activity', 'purge', '--format', 'json'], terminal.io);
    expect(code, terminal.captured.stderr).toBe(0);
    expect(terminal.captured.stderr).toContain('purging expired events');
    expect(JSON.parse(terminal.captured.stdout)).toMatchObject({ deleted: 0, dry_run: false });

    const piped = memoryIo(false, env);
    expect(await runCli(['node', 'activity', 'purge', '--format', 'json'], piped.io)).toBe(0);
    expect(piped.captured.stderr).toBe('');
    expect(JSON.parse(piped.captured.stdout)).toMatchObject({ deleted: 0 });
  });
});
