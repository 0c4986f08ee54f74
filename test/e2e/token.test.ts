import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier } from '../../src/auth/verify-token.js';
import { createTempDir, expectExit, expectJsonError, parseJson, runCli } from '../helpers/run-cli.js';

const jwtSecret = 'e2e-jwt-secret-0123456789abcdef0123456789abcdef';

describe('activity token', () => {
  let workDir: { path: string; remove(): Promise<void> };
  // No database variables: minting a token must not need (or create) a database.
  const token = (args: readonly string[], env: Record<string, string | undefined> = {}) =>
    runCli(['token', ...args], { cwd: workDir.path, env: { ACTIVITY_JWT_SECRET: jwtSecret, ...env } });

  beforeAll(async () => {
    workDir = await createTempDir('token');
  });
  afterAll(async () => {
    await workDir?.remove();
  });

  it('--format json prints {token, expires_at} and the token verifies with the same secret', async () => {
    const started = Date.now();
    const run = await token([
      '--tenant',
      'acme',
      '--role',
      'admin',
      '--scope',
      'activity:write',
      '--sub',
      'ci',
      '--ttl',
      '15m',
      '--format',
      'json',
    ]);
    expectExit(run, 0);
    expect(run.stderr).toBe('');
    const body = parseJson<{ token: string; expires_at: string }>(run.stdout);
    expect(Object.keys(body).sort()).toEqual(['expires_at', 'token']);
    expect(body.expires_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/);
    const expiresAt = Date.parse(body.expires_at);
    expect(expiresAt).toBeGreaterThanOrEqual(Math.floor(started / 1000) * 1000 + 15 * 60_000);
    expect(expiresAt).toBeLessThanOrEqual(Date.now() + 15 * 60_000);

    const principal = await createTokenVerifier({ jwtSecret }).verify(body.token);
    expect(principal.tenantId).toBe('acme');
    expect(principal.subject).toBe('ci');
    expect([...principal.scopes].sort()).toEqual(['activity:read', 'activity:write']);
    expect(principal.expiresAt.toISOString()).toBe(new Date(expiresAt).toISOString());
    expect(await readdir(workDir.path)).toEqual([]);
  });

  it('--scope repeats, --sub defaults to cli, and other formats print the bare token', async () => {
    const run = await token(['--tenant', 'acme', '--scope', 'activity:read', '--scope', 'activity:write']);
    expectExit(run, 0);
    expect(run.stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const principal = await createTokenVerifier({ jwtSecret }).verify(run.stdout.trim());
    expect(principal.subject).toBe('cli');
    expect([...principal.scopes].sort()).toEqual(['activity:read', 'activity:write']);
  });

  it("with ACTIVITY_JWT_ISSUER and ACTIVITY_JWT_AUDIENCE set, the token carries them and passes serve's check", async () => {
    const issuer = 'https://idp.example.com/';
    const audience = 'activity-api';
    const run = await token(['--tenant', 'acme', '--role', 'admin', '--format', 'json'], {
      ACTIVITY_JWT_ISSUER: issuer,
      ACTIVITY_JWT_AUDIENCE: audience,
    });
    expectExit(run, 0);
    const body = parseJson<{ token: string }>(run.stdout);
    const payload = JSON.parse(Buffer.from(body.token.split('.')[1] as string, 'base64url').toString());
    expect(payload).toMatchObject({ iss: issuer, aud: audience, tenant_id: 'acme' });
    const verifier = createTokenVerifier({ jwtSecret, issuer, audience });
    expect((await verifier.verify(body.token)).tenantId).toBe('acme');
  });

  it('without ACTIVITY_JWT_ISSUER and ACTIVITY_JWT_AUDIENCE the token has no iss or aud', async () => {
    const run = await token(['--tenant', 'acme', '--role', 'admin']);
    expectExit(run, 0);
    const payload = JSON.parse(Buffer.from(run.stdout.split('.')[1] as string, 'base64url').toString());
    expect(payload).not.toHaveProperty('iss');
    expect(payload).not.toHaveProperty('aud');
  });

  it('a JWKS file without ACTIVITY_JWT_ISSUER exits 2 with CONFIG_INVALID naming the variable', async () => {
    const run = await token(['--tenant', 'acme', '--format', 'json'], {
      ACTIVITY_JWKS_FILE: '/nonexistent/jwks.json',
      ACTIVITY_JWT_AUDIENCE: 'activity-api',
    });
    expect(expectJsonError(run, 2, 'CONFIG_INVALID').message).toMatch(/^ACTIVITY_JWT_ISSUER /);
    expect(run.stdout).toBe('');
  });

  it('without ACTIVITY_JWT_SECRET it exits 2 with CONFIG_INVALID', async () => {
    const run = await token(['--tenant', 'acme', '--role', 'admin', '--format', 'json'], {
      ACTIVITY_JWT_SECRET: undefined,
    });
    const error = expectJsonError(run, 2, 'CONFIG_INVALID');
    expect(error.message).toContain('ACTIVITY_JWT_SECRET');
    expect(run.stdout).toBe('');
  });

  it('a JWKS file alone cannot mint tokens (it holds public keys only)', async () => {
    const run = await token(['--tenant', 'acme', '--format', 'json'], {
      ACTIVITY_JWT_SECRET: undefined,
      ACTIVITY_JWKS_FILE: '/nonexistent/jwks.json',
      ACTIVITY_JWT_ISSUER: 'https://idp.example.com/',
      ACTIVITY_JWT_AUDIENCE: 'activity-api',
    });
    expect(expectJsonError(run, 2, 'CONFIG_INVALID').message).toContain('public keys only');
  });

  it('a secret shorter than 32 bytes is refused', async () => {
    const run = await token(['--tenant', 'acme', '--format', 'json'], { ACTIVITY_JWT_SECRET: 'short' });
    expect(expectJsonError(run, 2, 'CONFIG_INVALID').message).toContain('ACTIVITY_JWT_SECRET');
  });

  it('a ttl of exactly 365 days is accepted, and serve accepts the token', async () => {
    const run = await token(['--tenant', 'acme', '--role', 'admin', '--ttl', '365d', '--format', 'json']);
    expectExit(run, 0);
    const body = parseJson<{ token: string; expires_at: string }>(run.stdout);
    const principal = await createTokenVerifier({ jwtSecret }).verify(body.token);
    expect(principal.expiresAt.toISOString()).toBe(body.expires_at);
  });

  it.each([
    ['a zero ttl', ['--tenant', 'acme', '--ttl', '0s']],
    ['a ttl over 365 days', ['--tenant', 'acme', '--ttl', '366d']],
    ['a ttl one second over 365 days', ['--tenant', 'acme', '--ttl', `${365 * 86_400 + 1}s`]],
    ['a ttl far over the maximum', ['--tenant', 'acme', '--ttl', '99999999999w']],
    ['a ttl that is not a duration', ['--tenant', 'acme', '--ttl', 'soon']],
    ['an invalid tenant', ['--tenant', 'acme corp']],
    // No event can be recorded for such a tenant, and serve would log it in clear.
    ['a tenant that is an IP address', ['--tenant', '10.0.0.7']],
    ['a tenant that is a credential', ['--tenant', 'sk_live_abcdefghijklmnop1234']],
    ['no tenant', ['--role', 'admin']],
  ])('%s exits 2 with USAGE_INVALID and prints no token', async (_name, args) => {
    const run = await token([...args, '--format', 'json']);
    expectJsonError(run, 2, 'USAGE_INVALID');
    expect(run.stdout).toBe('');
  });
});
