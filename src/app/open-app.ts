import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/load-config.js';
import { ActivityError } from '../domain/errors.js';
import { type ActivityMetrics, createMetrics } from '../metrics/metrics.js';
import { deriveKeys } from '../privacy/keys.js';
import { createRegistry, type Registry } from '../registry/registry.js';
import { loadRegistryFile } from '../registry/registry-file.js';
import { type ActivityObserver, ActivityService } from '../service/activity-service.js';
import { type Database, type OpenDatabaseOptions, openDatabase } from '../store/open-database.js';

/** Everything a shell needs, built from one validated config; `close()` releases it all. */
export interface ActivityApp {
  config: Config;
  database: Database;
  service: ActivityService;
  metrics: ActivityMetrics;
  close(): Promise<void>;
}

export interface OpenAppOptions {
  /** More observers of the service (structured logs, a test's probe). */
  observers?: readonly ActivityObserver[];
  clock?: () => Date;
}

/** The composition root: registry, database, keys, metrics and the service. */
export async function openApp(config: Config, options: OpenAppOptions = {}): Promise<ActivityApp> {
  const registry = await loadRegistry(config);
  if (config.database.kind === 'postgres' && config.secret === undefined) {
    throw new ActivityError(
      'CONFIG_INVALID',
      'ACTIVITY_SECRET is required with PostgreSQL: at least 32 bytes, e.g. `openssl rand -hex 32` (it keys IP hashes and cursors)',
    );
  }
  const database = await openDatabase(config.database);
  try {
    const secret = config.secret ?? (await embeddedSecret(config.database));
    const metrics = createMetrics();
    const service = new ActivityService({
      repository: database.repository,
      registry,
      keys: deriveKeys(secret),
      observers: [metrics.observer, ...(options.observers ?? [])],
      ...(options.clock ? { clock: options.clock } : {}),
    });
    return { config, database, service, metrics, close: () => database.close() };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** Opens the app, runs `use`, and closes the app whatever happens. */
export async function usingApp<T>(
  config: Config,
  use: (app: ActivityApp) => Promise<T>,
  options?: OpenAppOptions,
) {
  const app = await openApp(config, options);
  try {
    return await use(app);
  } finally {
    await app.close();
  }
}

/** Opens only the database (for `migrate`), and closes it whatever happens. */
export async function usingDatabase<T>(
  config: Config,
  use: (database: Database) => Promise<T>,
  options?: OpenDatabaseOptions,
): Promise<T> {
  const database = await openDatabase(config.database, options);
  try {
    return await use(database);
  } finally {
    await database.close();
  }
}

export async function loadRegistry(config: Config): Promise<Registry> {
  return createRegistry(config.registryFile ? await loadRegistryFile(config.registryFile) : []);
}

/** The embedded default keeps its own secret beside its data, created on first use. */
async function embeddedSecret(target: Config['database']): Promise<string> {
  if (target.kind !== 'pglite') throw new ActivityError('CONFIG_INVALID', 'ACTIVITY_SECRET is required');
  const path = join(target.dataDir, 'secret');
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const secret = randomBytes(32).toString('hex');
  await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}
