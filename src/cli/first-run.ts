import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIo } from './context.js';
import { startProgress } from './progress.js';

/**
 * On a terminal, while the first command in a data directory creates the embedded
 * database (seconds, once), a spinner says what the wait is. `done` stops it: with
 * "created …" once the database is there, silently otherwise (the command failed, or
 * refused to create it).
 */
export async function announceEmbeddedCreation(
  io: CliIo,
  dataDir: string,
): Promise<{ done(): void } | undefined> {
  const database = join(dataDir, 'pgdata');
  if (dataDir.startsWith('memory://') || io.stderr.isTTY !== true || existsSync(database)) return undefined;
  const spinner = await startProgress(
    io,
    `creating the embedded database in ${dataDir} (once: a few seconds)`,
  );
  return {
    done() {
      if (!spinner.isSpinning) return;
      if (existsSync(database)) spinner.succeed(`created the embedded database in ${dataDir}`);
      else spinner.stop();
    },
  };
}
