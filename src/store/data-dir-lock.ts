import { open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ActivityError } from '../domain/errors.js';

/** How long a second process waits for the embedded database before giving up. */
const waitMs = 5000;
const retryMs = 100;

/**
 * PGlite is one process's database: two processes on one data directory would corrupt
 * it. A lock file holding the owner's pid keeps a second process out; a lock whose
 * owner has died is taken over. Returns the release function.
 */
export async function lockDataDirectory(dataDir: string): Promise<() => Promise<void>> {
  const lockPath = join(dataDir, 'activity.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockPath, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const owner = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(owner) && owner > 0 && !isAlive(owner)) {
      await rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new ActivityError(
        'DATA_DIR_LOCKED',
        `the embedded database in ${dataDir} is in use by process ${owner || '?'}; ` +
          'PGlite serves one process at a time (set ACTIVITY_DATABASE_URL to share a PostgreSQL)',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, retryMs));
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
