import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import {
  cliFor,
  expectExit,
  expectJsonError,
  inProcessCliFor,
  parseJson,
  testSecret,
} from '../helpers/run-cli.js';

interface Report {
  ok: boolean;
  tenants: Array<{ tenant_id: string; problems: Array<{ seq: number; kind: string }> }>;
}

/** The README's promise, through the built CLI on PostgreSQL: tamper in SQL, and verify names the row. */
describe('activity checkpoint, verify and export, as an operator runs them', () => {
  let database: { url: string; drop(): Promise<void> };
  let scratch: string;
  let cli: ReturnType<typeof cliFor>;
  let cliInProcess: ReturnType<typeof inProcessCliFor>;
  const sql = async (text: string) => {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    scratch = await mkdtemp(join(tmpdir(), 'activity-verify-'));
    const keyFile = join(scratch, 'signing-key.pem');
    await writeFile(
      keyFile,
      generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }),
      { mode: 0o600 },
    );
    const env = {
      ACTIVITY_DATABASE_URL: database.url,
      ACTIVITY_SECRET: testSecret,
      ACTIVITY_SIGNING_KEY_FILE: keyFile,
    };
    cli = cliFor(env);
    cliInProcess = inProcessCliFor(env);
  });
  afterAll(async () => {
    await database?.drop();
    await rm(scratch, { recursive: true, force: true });
  });

  it('names the row edited in SQL after a checkpoint, and a bundle checks with the public key alone', async () => {
    const lines = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ tenant_id: 'acme', action: 'auth.login.success', actor_id: `u_${i}` }),
    );
    expectExit(await cli(['record', '--file', '-'], { input: `${lines.join('\n')}\n` }), 0);
    const outside = join(scratch, 'checkpoints');
    const signed = await cli(['checkpoint', '--out-dir', outside, '--format', 'json']);
    expectExit(signed, 0);
    const { public_key: publicKey } = parseJson<{ public_key: string }>(signed.stdout);
    const keyFile = join(scratch, 'activity.pub');
    await writeFile(keyFile, `${publicKey}\n`);
    expect(await readFile(join(outside, 'acme.6.checkpoint'), 'utf8')).toMatch(/^[^\n]+\/tenants\/acme\n6\n/);
    expectExit(await cli(['verify', '--format', 'json']), 0);

    const bundle = join(scratch, 'bundle');
    expectExit(await cli(['export', '--tenant', 'acme', '--out', bundle]), 0);
    const offline = await cli(['verify', '--bundle', bundle, '--public-key', keyFile, '--format', 'json'], {
      env: {
        ACTIVITY_DATABASE_URL: undefined,
        ACTIVITY_SECRET: undefined,
        ACTIVITY_SIGNING_KEY_FILE: undefined,
      },
    });
    expectExit(offline, 0);

    await sql("update activity_events set actor_id = 'mallory' where tenant_id = 'acme' and seq = 4");
    const tampered = await cli(['verify', '--format', 'json']);
    expectExit(tampered, 4);
    expect(parseJson<Report>(tampered.stdout).tenants[0]?.problems).toEqual([
      { seq: 4, kind: 'modified', message: expect.stringContaining('event 4') },
    ]);
    const table = await cli(['verify', '--tenant', 'acme', '--format', 'table']);
    expectExit(table, 4);
    expect(table.stdout).toContain('seq 4 modified');

    // The bundle exported before the edit still holds; the one exported after it does not verify.
    expectExit(await cli(['verify', '--bundle', bundle, '--public-key', publicKey]), 0);
    const after = join(scratch, 'bundle-after');
    expectExit(await cli(['export', '--tenant', 'acme', '--out', after]), 0);
    expectExit(await cli(['verify', '--bundle', after, '--public-key', keyFile]), 4);
  });

  it('refuses to sign a tree with its tail deleted, against the checkpoints kept outside too', async () => {
    const lines = Array.from({ length: 5 }, (_, i) =>
      JSON.stringify({ tenant_id: 'globex', action: 'auth.login.success', actor_id: `u_${i}` }),
    );
    expectExit(await cli(['record', '--file', '-'], { input: `${lines.join('\n')}\n` }), 0);
    const outside = join(scratch, 'checkpoints-globex');
    expectExit(await cli(['checkpoint', '--tenant', 'globex', '--out-dir', outside]), 0);
    await sql("delete from activity_events where tenant_id = 'globex' and seq > 3");
    await sql("update activity_tenants set last_seq = 3 where tenant_id = 'globex'");
    await sql("delete from activity_checkpoints where tenant_id = 'globex'");
    const refused = await cli(['checkpoint', '--tenant', 'globex', '--out-dir', outside, '--format', 'json']);
    expect(expectJsonError(refused, 4, 'INTEGRITY_FAILED').message).toContain('kept outside the database');
    const verified = await cli([
      'verify',
      '--tenant',
      'globex',
      '--checkpoint',
      join(outside, 'globex.5.checkpoint'),
      '--format',
      'json',
    ]);
    expectExit(verified, 4);
    expect(parseJson<Report>(verified.stdout).tenants[0]?.problems.map((problem) => problem.kind)).toContain(
      'truncated',
    );
  });

  it('says what is wrong with bad input, in-process', async () => {
    expectJsonError(await cliInProcess(['verify', '--tenant', 'nobody', '--format', 'json']), 2, 'NOT_FOUND');
    expectJsonError(
      await cliInProcess(['proof', '--tenant', 'acme', '--seq', '0', '--format', 'json']),
      2,
      'USAGE_INVALID',
    );
    expectJsonError(
      await cliInProcess(['verify', '--bundle', scratch, '--format', 'json']),
      2,
      'USAGE_INVALID',
    );
    expectJsonError(
      await cliInProcess(['verify', '--public-key', 'not-a-key', '--format', 'json']),
      2,
      'USAGE_INVALID',
    );
    expectJsonError(
      await cliInProcess([
        'export',
        '--tenant',
        'acme',
        '--out',
        join(scratch, 'activity.pub'),
        '--format',
        'json',
      ]),
      2,
      'USAGE_INVALID',
    );
  });
});
