import { type KeyObject, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/load-config.js';
import { ActivityError } from '../domain/errors.js';
import { type CheckpointSigner, checkpointSigner } from '../integrity/checkpoint-signer.js';
import { type NoteVerifier, parseVerifierKey } from '../integrity/signed-note.js';
import { newSigningKeyPem, parseSigningKey } from '../integrity/signing-key.js';
import { type ActivityMetrics, createMetrics } from '../metrics/metrics.js';
import { deriveKeys } from '../privacy/keys.js';
import { createRegistry, type Registry } from '../registry/registry.js';
import { loadRegistryFile } from '../registry/registry-file.js';
import { type ActivityObserver, ActivityService } from '../service/activity-service.js';
import { type AuditTrail, ownEventsTrail } from '../service/audit-trail.js';
import { IntegrityService } from '../service/integrity-service.js';
import { MigrationService } from '../service/migration-service.js';
import { RetentionService } from '../service/retention-service.js';
import { SinkDelivery, type SinkDeliveryOptions } from '../service/sink-delivery.js';
import { SinkService } from '../service/sink-service.js';
import { type Database, type OpenDatabaseOptions, openDatabase } from '../store/open-database.js';
import { createInProcessTransport } from '../stream/in-process-transport.js';
import { createPostgresTransport, postgresNotifyChannel } from '../stream/postgres-transport.js';
import { createRedisTransport } from '../stream/redis-transport.js';
import { StreamHub, type StreamLimits } from '../stream/stream-hub.js';
import type { StreamTransport } from '../stream/transport.js';
import { toolVersion } from './tool-version.js';

/** Everything a shell needs, built from one validated config; `close()` releases it all. */
export interface ActivityApp {
  config: Config;
  service: ActivityService;
  /** Tenant policies, legal holds and purge. */
  retention: RetentionService;
  /** Checkpoints, proofs and verification of the tenants' trees. */
  integrity: IntegrityService;
  metrics: ActivityMetrics;
  /** Tells other processes of new events (Redis, LISTEN/NOTIFY, or in-process). */
  transport: StreamTransport;
  /** The live stream, when asked for with `stream: true`. */
  hub: StreamHub | undefined;
  /** Where each tenant's events are delivered (`sink …`). */
  sinks: SinkService;
  /** Delivers the sinks' events (run by `serve` and `deliver`). */
  delivery: SinkDelivery;
  close(): Promise<void>;
}

export interface OpenAppOptions {
  /** More observers of the service (structured logs, a test's probe). */
  observers?: readonly ActivityObserver[];
  clock?: () => Date;
  /** Build the live stream hub (serve, tail). */
  stream?: boolean;
  /** Its limits, when not the defaults (see StreamHubOptions). */
  streamLimits?: StreamLimits;
  /** Where background failures (a lost Redis, a failed publish) are reported. */
  onBackgroundError?: (error: unknown) => void;
  /** The command only reads: an embedded database that does not exist is not made (see OpenDatabaseOptions). */
  existing?: boolean;
  /** Delivery's settings, when not the defaults (see SinkDeliveryOptions). */
  delivery?: Partial<Omit<SinkDeliveryOptions, 'sinks' | 'service' | 'product'>>;
}

/** The composition root: registry, database, keys, metrics and the services. */
export async function openApp(config: Config, options: OpenAppOptions = {}): Promise<ActivityApp> {
  return (await openAppWithDatabase(config, options)).app;
}

/**
 * The app and the database under it, for the tests and the bench that reach storage
 * directly; the shells get services only. `app.close()` closes the database too.
 */
export async function openAppWithDatabase(
  config: Config,
  options: OpenAppOptions = {},
): Promise<{ app: ActivityApp; database: Database }> {
  const registry = await loadRegistry(config);

  const secretOf = secretFor(config);
  const database = await openDatabase(config.database, {
    ...streamNotice(config),
    existing: options.existing ?? false,
    timeouts: { lockMs: config.lockTimeoutMs, statementMs: config.statementTimeoutMs },
  });
  try {
    const keys = deriveKeys(await secretOf());
    const metrics = createMetrics({
      eventsPurged: () => database.retention.eventsPurged(),
      sinkLag: () => database.sinks.lag(),
    });
    const transport = await openTransport(config);
    const publisher = createPublisher(transport, options.onBackgroundError);
    const service = new ActivityService({
      repository: database.repository,
      registry,
      keys,
      observers: [metrics.observer, publisher.observer, ...(options.observers ?? [])],
      ...(options.clock ? { clock: options.clock } : {}),
      auditReads: config.auditReads,
      ...(options.onBackgroundError ? { onBackgroundError: options.onBackgroundError } : {}),
      onDenialSuppressed: () => metrics.auditEventsSuppressed.inc(),
    });
    const hub = options.stream
      ? new StreamHub({
          ...options.streamLimits,
          repository: database.repository,
          transport,
          ...(options.onBackgroundError ? { onError: options.onBackgroundError } : {}),
        })
      : undefined;
    const sinks = new SinkService({
      sinks: database.sinks,
      sealingKey: keys.sinkSecrets,
      registry,
      ...(options.clock ? { clock: options.clock } : {}),
    });
    let closing: Promise<void> | undefined;
    const app: ActivityApp = {
      config,
      service,
      retention: new RetentionService({
        events: database.repository,
        retention: database.retention,
        audit: service.audit,
      }),
      integrity: integrityServiceOf(config, database, service.audit),
      metrics,
      transport,
      hub,
      sinks,
      delivery: new SinkDelivery({
        sinks: database.sinks,
        service: sinks,
        product: { name: 'activity', vendor_name: 'activity', version: toolVersion() },
        ...options.delivery,
        onBatch: (report) => {
          metrics.sinkBatch(report);
          options.delivery?.onBatch?.(report);
        },
      }),
      close() {
        // Streams first, then pending publishes, then the transport, then the pool.
        closing ??= (async () => {
          await hub?.close();
          await service.audit.flush();
          await publisher.flush();
          await transport.close();
          await database.close();
        })();
        return closing;
      },
    };
    return { app, database };
  } catch (error) {
    await database.close();
    throw error;
  }
}

/** The integrity use cases on `database`, with the signing key loaded on first use. */
function integrityServiceOf(config: Config, database: Database, audit: AuditTrail): IntegrityService {
  let signer: Promise<CheckpointSigner> | undefined;
  return new IntegrityService({
    events: database.repository,
    integrity: database.integrity,
    audit,
    signer: () => {
      signer ??= loadSigningKey(config).then((key) =>
        checkpointSigner(config.logName, key, previousVerifiers(config.previousPublicKeys)),
      );
      return signer;
    },
  });
}

/** ACTIVITY_PREVIOUS_PUBLIC_KEYS, each a verifier key, or CONFIG_INVALID naming the one that is not. */
function previousVerifiers(keys: readonly string[]): NoteVerifier[] {
  return keys.map((key, index) => {
    try {
      return parseVerifierKey(key);
    } catch (error) {
      throw new ActivityError(
        'CONFIG_INVALID',
        `ACTIVITY_PREVIOUS_PUBLIC_KEYS: key ${index + 1} ${(error as Error).message.replace(/^the verifier key/, 'is not a verifier key:')}`,
      );
    }
  });
}

/**
 * ACTIVITY_SIGNING_KEY_FILE; the embedded default keeps its own beside its data,
 * created on first use (0600), as it does its secret.
 */
async function loadSigningKey(config: Config): Promise<KeyObject> {
  const { signingKeyFile, database } = config;
  const path =
    signingKeyFile ??
    (database.kind === 'pglite' && !database.dataDir.startsWith('memory://')
      ? join(database.dataDir, 'signing-key.pem')
      : undefined);
  if (path === undefined) {
    if (database.kind === 'pglite') return parseSigningKey(newSigningKeyPem());
    throw new ActivityError(
      'CONFIG_INVALID',
      'ACTIVITY_SIGNING_KEY_FILE is required with PostgreSQL to sign checkpoints: an Ed25519 private key in PKCS#8 PEM, e.g. `openssl genpkey -algorithm ed25519 -out signing-key.pem`',
    );
  }
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' || signingKeyFile !== undefined) {
      throw new ActivityError('CONFIG_INVALID', `ACTIVITY_SIGNING_KEY_FILE ${path} cannot be read (${code})`);
    }
    pem = newSigningKeyPem();
    try {
      await writeFile(path, pem, { mode: 0o600, flag: 'wx' });
    } catch (writeError) {
      // Another process made it first: use that one.
      if ((writeError as NodeJS.ErrnoException).code !== 'EEXIST') throw writeError;
      pem = await readFile(path, 'utf8');
    }
  }
  try {
    return parseSigningKey(pem);
  } catch (error) {
    // The message never quotes the file: it holds a private key.
    throw new ActivityError(
      'CONFIG_INVALID',
      `${signingKeyFile ? 'ACTIVITY_SIGNING_KEY_FILE ' : ''}${path} ${(error as Error).message}`,
    );
  }
}

/** Redis when configured; else LISTEN/NOTIFY on PostgreSQL; in-process when embedded. */
async function openTransport(config: Config): Promise<StreamTransport> {
  if (config.redisUrl) return createRedisTransport(config.redisUrl);
  if (config.database.kind === 'postgres') return createPostgresTransport(config.database.url);
  return createInProcessTransport();
}

/**
 * Publishes "tenant T has events up to N" after each write. Best effort: a record
 * never fails for want of pub/sub, and streams catch up by polling meanwhile.
 */
function createPublisher(transport: StreamTransport, onError: ((error: unknown) => void) | undefined) {
  const pending = new Set<Promise<void>>();
  return {
    observer: {
      recorded(events) {
        const latest = new Map<string, number>();
        for (const event of events)
          latest.set(event.tenant_id, Math.max(latest.get(event.tenant_id) ?? 0, event.seq));
        for (const [tenantId, seq] of latest) {
          const publishing = transport
            .publish({ tenantId, seq })
            .catch((error) => onError?.(error))
            .finally(() => pending.delete(publishing));
          pending.add(publishing);
        }
      },
    } satisfies ActivityObserver,
    async flush() {
      await Promise.all(pending);
    },
  };
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

/**
 * Retention alone (`retention`, `hold`, `purge`): opens the database and the registry,
 * without keys or stream, and closes them whatever happens.
 */
export function usingRetention<T>(
  config: Config,
  use: (retention: RetentionService) => Promise<T>,
): Promise<T> {
  return usingDatabase(config, streamNotice(config), async (database) =>
    use(
      new RetentionService({
        events: database.repository,
        retention: database.retention,
        audit: await ownEventsOf(config, database),
      }),
    ),
  );
}

/**
 * The self-audit of a command that opens no ActivityService: its events are recorded
 * as any event is, without keys (they carry no IP) or metrics. They are awaited by the
 * use cases that write them.
 */
async function ownEventsOf(config: Config, database: Database): Promise<AuditTrail> {
  return ownEventsTrail(database.repository, await loadRegistry(config), { auditReads: config.auditReads });
}

/** Without Redis, PostgreSQL carries the live stream: each append NOTIFYs as it commits. */
function streamNotice(config: Config): OpenDatabaseOptions {
  return config.redisUrl === undefined && config.database.kind === 'postgres'
    ? { notifyChannel: postgresNotifyChannel }
    : {};
}

/**
 * The verifiable log alone (`checkpoint`, `proof`, `verify`, `export --out`): opens
 * only the database, and closes it whatever happens.
 */
export function usingIntegrity<T>(
  config: Config,
  use: (integrity: IntegrityService) => Promise<T>,
  options: { existing?: boolean } = {},
): Promise<T> {
  return usingDatabase(config, { ...streamNotice(config), ...options }, async (database) =>
    use(integrityServiceOf(config, database, await ownEventsOf(config, database))),
  );
}

/**
 * Sinks alone (`sink …`): opens the database and the key that seals the sinks'
 * secrets, and closes them whatever happens.
 */
export function usingSinks<T>(
  config: Config,
  use: (sinks: SinkService) => Promise<T>,
  options: { existing?: boolean } = {},
): Promise<T> {
  const secretOf = secretFor(config);
  return usingDatabase(config, { ...streamNotice(config), ...options }, async (database) => {
    return use(
      new SinkService({
        sinks: database.sinks,
        sealingKey: deriveKeys(await secretOf()).sinkSecrets,
        registry: await loadRegistry(config),
      }),
    );
  });
}

/** The schema alone (`migrate`): opens the database without migrating it first. */
export function usingMigrations<T>(
  config: Config,
  use: (migrations: MigrationService) => Promise<T>,
): Promise<T> {
  return usingDatabase(config, { autoMigrate: false }, (database) =>
    use(
      new MigrationService({
        migrator: database.migrator,
        retention: database.retention,
        integrity: database.integrity,
      }),
    ),
  );
}

async function usingDatabase<T>(
  config: Config,
  options: OpenDatabaseOptions,
  use: (database: Database) => Promise<T>,
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

/**
 * ACTIVITY_SECRET, checked before anything opens (PostgreSQL has no place to keep one
 * of its own); read, once the database is open, from the embedded data directory.
 */
function secretFor(config: Config): () => Promise<string> {
  const { database, secret } = config;
  if (database.kind === 'postgres') {
    const required = requiredSecret(secret);
    return async () => required;
  }
  return () => embeddedSecret(database, secret);
}

function requiredSecret(secret: string | undefined): string {
  if (secret !== undefined) return secret;
  throw new ActivityError(
    'CONFIG_INVALID',
    'ACTIVITY_SECRET is required with PostgreSQL: at least 32 bytes, e.g. `openssl rand -hex 32` (it keys IP hashes and cursors)',
  );
}

/**
 * The embedded default keeps its secret beside its data: ACTIVITY_SECRET if given on
 * first use, else one made then. A given secret that is not the one kept is refused:
 * the same IP would hash differently and the cursors given out would stop working.
 */
async function embeddedSecret(target: { dataDir: string }, given: string | undefined): Promise<string> {
  // An in-memory database lives as long as the process: so does its secret.
  if (target.dataDir.startsWith('memory://')) return given ?? randomBytes(32).toString('hex');
  const path = join(target.dataDir, 'secret');
  let kept: string | undefined;
  try {
    kept = (await readFile(path, 'utf8')).trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  if (kept !== undefined) {
    if (given !== undefined && given !== kept) {
      throw new ActivityError(
        'CONFIG_INVALID',
        `ACTIVITY_SECRET is not the secret of the embedded database in ${target.dataDir} (kept in ${path}), which keyed its IP hashes and cursors: unset ACTIVITY_SECRET to use that one`,
      );
    }
    return kept;
  }
  const secret = given ?? randomBytes(32).toString('hex');
  await writeFile(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return secret;
}
