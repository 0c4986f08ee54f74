import { createHmac } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { exportJWK, type GenerateKeyPairResult, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenVerifier, type TokenVerifier } from '../../src/auth/verify-token.js';
import { activityErrorFrom, activityErrorFromAsync } from './thrown.js';

// The documented limits: clock skew tolerated on every time claim, and the longest a
// token may still have to live.
const toleranceSeconds = 30;
const maxLifetimeSeconds = 365 * 86_400;

const secret = 'claims-jwt-secret-0123456789abcdef0123456789';
const issuer = 'https://idp.example.com/';
const audience = 'activity-api';
const now = new Date('2026-03-01T12:00:00Z');
const nowSeconds = Math.floor(now.getTime() / 1000);
const clock = () => now;

/** Our claims; overrides may give a claim any type, as a forger would. */
function claims(overrides: Record<string, unknown> = {}): JWTPayload {
  return {
    sub: 'u_1',
    tenant_id: 'acme',
    iss: issuer,
    aud: audience,
    iat: nowSeconds,
    exp: nowSeconds + 600,
    ...overrides,
  } as JWTPayload;
}

function without(payload: JWTPayload, ...names: string[]): JWTPayload {
  return Object.fromEntries(Object.entries(payload).filter(([name]) => !names.includes(name)));
}

async function refused(verifier: TokenVerifier, token: string, message: RegExp): Promise<void> {
  const error = await activityErrorFromAsync(verifier.verify(token));
  expect(error.code).toBe('UNAUTHORIZED');
  expect(error.httpStatus).toBe(401);
  expect(error.message).toMatch(message);
  expect(error.message).not.toContain(token);
  expect(error.message).not.toContain(token.split('.')[1]);
}

interface Algorithm {
  /** The token's payload, signed as given (no claim added). */
  sign(payload: JWTPayload): Promise<string>;
  verifier: TokenVerifier;
}

const algorithms = ['HS256', 'RS256', 'ES256', 'EdDSA'] as const;
const setups = {} as Record<(typeof algorithms)[number], Algorithm>;
let directory: string;
let jwksFile: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), 'activity-auth-claims-'));
  jwksFile = join(directory, 'jwks.json');
  const pairs: [string, GenerateKeyPairResult][] = [];
  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) pairs.push([alg, await generateKeyPair(alg)]);
  const keys = await Promise.all(
    pairs.map(async ([alg, pair]) => ({ ...(await exportJWK(pair.publicKey)), kid: alg, alg, use: 'sig' })),
  );
  await writeFile(jwksFile, JSON.stringify({ keys }));
  const fromJwks = createTokenVerifier({ jwksFile, issuer, audience, clock });
  for (const [alg, pair] of pairs) {
    setups[alg as 'RS256'] = {
      sign: (payload) => new SignJWT(payload).setProtectedHeader({ alg, kid: alg }).sign(pair.privateKey),
      verifier: fromJwks,
    };
  }
  setups.HS256 = {
    sign: (payload) =>
      new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret)),
    verifier: createTokenVerifier({ jwtSecret: secret, issuer, audience, clock }),
  };
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe.each(algorithms)('a %s token with ACTIVITY_JWT_ISSUER and ACTIVITY_JWT_AUDIENCE set', (alg) => {
  const check = async (payload: JWTPayload, message: RegExp) => {
    const { sign, verifier } = setups[alg];
    await refused(verifier, await sign(payload), message);
  };
  const accept = async (payload: JWTPayload) => {
    const { sign, verifier } = setups[alg];
    return verifier.verify(await sign(payload));
  };

  it('with our issuer and audience is accepted', async () => {
    const principal = await accept(claims());
    expect(principal).toMatchObject({ tenantId: 'acme', subject: 'u_1' });
    expect(principal.expiresAt).toEqual(new Date((nowSeconds + 600) * 1000));
  });

  it('with an audience array that contains ours is accepted (RFC 7519 §4.1.3)', async () => {
    await expect(accept(claims({ aud: ['billing', audience] }))).resolves.toMatchObject({ tenantId: 'acme' });
  });

  it.each(['10.0.0.7', 'ip-2001:db8::7', 'sk_live_abcdefghijklmnop1234'])(
    'naming a tenant %s, which holds an IP address or a credential, is refused',
    async (tenant) => {
      await check(claims({ tenant_id: tenant }), /^token claim tenant_id holds /);
    },
  );

  it('from another issuer is refused', async () => {
    await check(claims({ iss: 'https://evil.example.com/' }), /^token issuer is not accepted$/);
  });

  it('whose issuer differs only by a trailing slash is refused', async () => {
    await check(claims({ iss: issuer.slice(0, -1) }), /^token issuer is not accepted$/);
  });

  it('for another audience is refused', async () => {
    await check(claims({ aud: 'billing-api' }), /^token audience is not accepted$/);
  });

  it('with an audience array that does not contain ours is refused', async () => {
    await check(claims({ aud: ['billing-api', 'reports'] }), /^token audience is not accepted$/);
  });

  it('without iss is refused', async () => {
    await check(without(claims(), 'iss'), /missing the iss claim/);
  });

  it('without aud is refused', async () => {
    await check(without(claims(), 'aud'), /missing the aud claim/);
  });

  it('issued an hour in the future is refused', async () => {
    await check(claims({ iat: nowSeconds + 3600 }), /^token was issued in the future$/);
  });

  it('issued just beyond the clock tolerance in the future is refused', async () => {
    await check(claims({ iat: nowSeconds + toleranceSeconds + 1 }), /issued in the future/);
  });

  it('issued within the clock tolerance in the future is accepted', async () => {
    await expect(accept(claims({ iat: nowSeconds + toleranceSeconds }))).resolves.toMatchObject({
      tenantId: 'acme',
    });
  });

  it('with exp 1e20 is refused', async () => {
    await check(claims({ exp: 1e20 }), /^token expires too far in the future/);
  });

  it('with exp a string is refused', async () => {
    await check(claims({ exp: String(nowSeconds + 600) }), /exp/);
  });

  it('with exp not a whole number of seconds is refused', async () => {
    await check(claims({ exp: nowSeconds + 600.5 }), /exp/);
  });

  it('that expires more than the maximum lifetime from now is refused', async () => {
    await check(
      claims({ exp: nowSeconds + maxLifetimeSeconds + toleranceSeconds + 1 }),
      /expires too far in the future/,
    );
  });

  it('that expires exactly the maximum lifetime from now is accepted', async () => {
    const principal = await accept(claims({ exp: nowSeconds + maxLifetimeSeconds }));
    expect(principal.expiresAt.getTime()).toBe((nowSeconds + maxLifetimeSeconds) * 1000);
  });
});

describe('ACTIVITY_JWT_ISSUER and ACTIVITY_JWT_AUDIENCE with ACTIVITY_JWT_SECRET alone', () => {
  const sign = (payload: JWTPayload) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

  it('are optional: unset, any iss and aud are accepted', async () => {
    const verifier = createTokenVerifier({ jwtSecret: secret, clock });
    await expect(
      verifier.verify(await sign(claims({ iss: 'anyone', aud: ['whoever'] }))),
    ).resolves.toMatchObject({ tenantId: 'acme' });
    await expect(verifier.verify(await sign(without(claims(), 'iss', 'aud')))).resolves.toMatchObject({
      tenantId: 'acme',
    });
  });

  it('an issuer alone is checked, and the audience left free', async () => {
    const verifier = createTokenVerifier({ jwtSecret: secret, issuer, clock });
    await expect(verifier.verify(await sign(claims({ aud: 'anything' })))).resolves.toMatchObject({
      tenantId: 'acme',
    });
    await refused(verifier, await sign(claims({ iss: 'other' })), /issuer is not accepted/);
  });

  it('an audience alone is checked, and the issuer left free', async () => {
    const verifier = createTokenVerifier({ jwtSecret: secret, audience, clock });
    await expect(verifier.verify(await sign(claims({ iss: 'anyone' })))).resolves.toMatchObject({
      tenantId: 'acme',
    });
    await refused(verifier, await sign(claims({ aud: 'other' })), /audience is not accepted/);
  });

  it('the future iat and the exp limits apply without them too', async () => {
    const verifier = createTokenVerifier({ jwtSecret: secret, clock });
    await refused(verifier, await sign(claims({ iat: nowSeconds + 3600 })), /issued in the future/);
    await refused(verifier, await sign(claims({ exp: 1e20 })), /too far in the future/);
  });

  it('an exp that parses to Infinity (1e400) is refused', async () => {
    // SignJWT refuses to encode it, so the token is put together by hand.
    const encode = (text: string) => Buffer.from(text).toString('base64url');
    const header = encode('{"alg":"HS256"}');
    const payload = encode(`{"sub":"u_1","tenant_id":"acme","exp":1e400}`);
    const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
    const verifier = createTokenVerifier({ jwtSecret: secret, clock });
    await refused(verifier, `${header}.${payload}.${signature}`, /exp/);
  });

  it('every accepted exp gives a valid expiry within the maximum lifetime', async () => {
    const verifier = createTokenVerifier({ jwtSecret: secret, clock });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.integer({ min: nowSeconds - 100, max: nowSeconds + 2 * maxLifetimeSeconds }),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, 8.64e12, 8.64e12 + 1, 2 ** 53),
        ),
        async (exp) => {
          let principal: Awaited<ReturnType<TokenVerifier['verify']>>;
          try {
            principal = await verifier.verify(await sign(claims({ exp })));
          } catch (error) {
            expect((error as { code?: string }).code).toBe('UNAUTHORIZED');
            return;
          }
          const expiresAt = principal.expiresAt.getTime();
          expect(Number.isNaN(expiresAt)).toBe(false);
          expect(expiresAt).toBeGreaterThan(now.getTime() - toleranceSeconds * 1000);
          expect(expiresAt).toBeLessThanOrEqual(
            now.getTime() + (maxLifetimeSeconds + toleranceSeconds) * 1000,
          );
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('the verified-token cache', () => {
  const sign = (payload: JWTPayload) =>
    new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret));

  it('a cached token is refused when the clock goes back before its iat', async () => {
    let time = now;
    const verifier = createTokenVerifier({ jwtSecret: secret, clock: () => time });
    const token = await sign(claims());
    await expect(verifier.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
    time = new Date(now.getTime() - 3600_000);
    await refused(verifier, token, /issued in the future/);
  });

  it('a cached token is refused when the clock goes back before its nbf', async () => {
    let time = now;
    const verifier = createTokenVerifier({ jwtSecret: secret, clock: () => time });
    const token = await sign(claims({ nbf: nowSeconds }));
    await expect(verifier.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
    time = new Date(now.getTime() - 3600_000);
    await refused(verifier, token, /not valid yet/);
  });

  it('a cached token expires exactly when a fresh verification would say so', async () => {
    let time = now;
    const verifier = createTokenVerifier({ jwtSecret: secret, clock: () => time });
    const token = await sign(claims({ exp: nowSeconds + 60 }));
    await verifier.verify(token);
    time = new Date((nowSeconds + 60 + toleranceSeconds) * 1000 - 1);
    await expect(verifier.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
    time = new Date((nowSeconds + 60 + toleranceSeconds) * 1000);
    await refused(verifier, token, /expired/);
  });

  it('the same token verified by two verifiers with different issuers is judged by each', async () => {
    const token = await sign(claims());
    const ours = createTokenVerifier({ jwtSecret: secret, issuer, clock });
    const theirs = createTokenVerifier({ jwtSecret: secret, issuer: 'https://other.example.com/', clock });
    await expect(ours.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
    await refused(theirs, token, /issuer is not accepted/);
    await expect(ours.verify(token)).resolves.toMatchObject({ tenantId: 'acme' });
  });
});

describe('createTokenVerifier configuration of issuer and audience', () => {
  it.each([
    ['ACTIVITY_JWT_ISSUER', { audience }],
    ['ACTIVITY_JWT_AUDIENCE', { issuer }],
    ['ACTIVITY_JWT_ISSUER', {}],
  ])('a JWKS without %s is a configuration error naming it', async (variable, options) => {
    const error = activityErrorFrom(() => createTokenVerifier({ jwksFile, ...options }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toContain(variable);
  });
});
