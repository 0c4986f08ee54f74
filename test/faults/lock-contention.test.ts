import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { faultSecrets, readWriteTokens } from '../helpers/fault-fixture.js';
import { killAllCli, type RunningServe, startServe } from '../helpers/running-cli.js';

/**
 * `serve` while another session holds a lock its requests need, as a long
 * transaction, a migration or an operator's `SELECT … FOR UPDATE` would.
 */
describe('serve behind a held lock', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let serve: RunningServe;
  let holder: pg.Client;
  let tokens: Map<string, string>;

  beforeAll(async () => {
    database = await createTestDatabase();
    serve = await startServe({
      ACTIVITY_DATABASE_URL: database.url,
      ...faultSecrets,
      ACTIVITY_LOCK_TIMEOUT: '5s',
    });
    tokens = await readWriteTokens(['holx', 'other-1', 'other-2', 'other-3']);
    for (const tenant of tokens.keys()) expect((await post(tenant)).status).toBe(201);
    holder = new pg.Client({ connectionString: database.url });
    await holder.connect();
  });
  afterAll(async () => {
    await holder?.query('rollback').catch(() => {});
    await holder?.end();
    await killAllCli();
    await database?.drop();
  });

  const post = (tenant: string) =>
    fetch(`${serve.url}/api/v1/activity`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.get(tenant)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'auth.login.success' }),
    });

  it("one tenant's locked head row holds up no other tenant, and its own write ends in 503 with Retry-After", async () => {
    await holder.query('begin');
    await holder.query(`select * from activity_tenants where tenant_id = 'holx' for update`);
    let holxSettled = false;
    const holx = post('holx').finally(() => {
      holxSettled = true;
    });
    for (const tenant of ['other-1', 'other-2', 'other-3']) {
      const response = await post(tenant);
      expect(response.status).toBe(201);
      expect(holxSettled, `${tenant} waited for holx`).toBe(false);
    }
    const refused = await holx;
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(await refused.json()).toMatchObject({
      code: 'DB_TIMEOUT',
      detail: expect.stringContaining('busy'),
    });
    await holder.query('rollback');
    expect((await post('holx')).status).toBe(201);
  });

  it('a lock on the events table makes /readyz 503 and reads 503, not a hang', async () => {
    expect((await fetch(`${serve.url}/readyz`)).status).toBe(200);
    await holder.query('begin');
    await holder.query('lock table activity_events in access exclusive mode');
    const ready = await fetch(`${serve.url}/readyz`);
    expect(ready.status).toBe(503);
    const read = await fetch(`${serve.url}/api/v1/activity`, {
      headers: { authorization: `Bearer ${tokens.get('other-1')}` },
    });
    expect(read.status).toBe(503);
    expect(((await read.json()) as { code: string }).code).toBe('DB_TIMEOUT');
    await holder.query('rollback');
    expect((await fetch(`${serve.url}/readyz`)).status).toBe(200);
  });
});
