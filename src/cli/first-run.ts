import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CliIo } from './context.js';

/**
 * On a terminal, while the first command in a data directory creates the embedded
 * database (seconds, once), a line says what the wait is. Not a spinner: PGlite's
 * set-up holds the event loop, which would freeze it and hold back Ctrl-C until the
 * end. `done` replaces the line with "✔ created …" once the database is there, and
 * clears it otherwise (the command failed, or refused to create it).
 */
export function announceEmbeddedCreation(io: CliIo, dataDir: string): { done(): void } | undefined {
  // PG_VERSION is written last: a directory left by an interrupted first run has none.
  const created = () => existsSync(join(dataDir, 'pgdata', 'PG_VERSION'));
  if (dataDir.startsWith('memory://') || io.stderr.isTTY !== true || created()) return undefined;
  io.stderr.write(`creating the embedded database in ${dataDir} (once: a few seconds)…`);
  let shown = true;
  return {
    done() {
      if (!shown) return;
      shown = false;
      // Back to the start of the line, and clear it.
      io.stderr.write('\r\u001b[2K');
      if (created()) io.stderr.write(`✔ created the embedded database in ${dataDir}\n`);
    },
  };
}
