import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { createTokenSigner } from '../../src/auth/sign-token.js';
import { openDatabase } from '../../src/store/open-database.js';
import { type PostgresServer, startPostgres } from './postgres-server.js';

/** ACTIVITY_SECRET and ACTIVITY_JWT_SECRET of the fault tests' `serve` processes. */
export const faultSecrets = {
  ACTIVITY_SECRET: 'fault-secret-0123456789abcdef0123456789abcd',
  ACTIVITY_JWT_SECRET: 'fault-jwt-secret-0123456789abcdef0123456789',
  // The fault tests count seqs; the streams' and reads' own activity.* events would take
  // some (they are tested in self-audit*.test.ts).
  ACTIVITY_AUDIT_READS: 'false',
} as const;

/**
 * A migrated database on a PostgreSQL of the test's own, durable as in production
 * (fsync and synchronous commit on), which the test may restart or crash.
 */
export async function startDurableDatabase(): Promise<{ postgres: PostgresServer; url: string }> {
  const postgres = await startPostgres({ durable: true });
  const name = `activity_fault_${randomUUID().replaceAll('-', '')}`;
  await withClient(postgres.adminUrl, (client) => client.query(`create database ${name}`));
  const url = postgres.urlFor(name);
  const database = await openDatabase({ kind: 'postgres', url });
  await database.migrator.up();
  await database.close();
  return { postgres, url };
}

/** A token that reads and writes each tenant, signed with faultSecrets' key. */
export async function readWriteTokens(tenants: readonly string[]): Promise<Map<string, string>> {
  const signer = createTokenSigner({ jwtSecret: faultSecrets.ACTIVITY_JWT_SECRET });
  const tokens = new Map<string, string>();
  for (const tenant of tenants) {
    const { token } = await signer.sign({
      tenantId: tenant,
      subject: 'fault-test',
      scopes: ['activity:read', 'activity:write'],
      ttlSeconds: 3600,
    });
    tokens.set(tenant, token);
  }
  return tokens;
}

/** A client of `url`, retried while the server is still recovering from a fault. */
export async function connectWhenBack(url: string): Promise<pg.Client> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const client = new pg.Client({ connectionString: url });
    // Its session may be ended by the test's own faults: an error is not a crash.
    client.on('error', () => {});
    try {
      await client.connect();
      return client;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Runs `use` on a new client of `url` (see connectWhenBack), then ends it. */
export async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = await connectWhenBack(url);
  try {
    return await use(client);
  } finally {
    await client.end().catch(() => {});
  }
}
