import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  exportJWK,
  type GenerateKeyPairResult,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTokenSigner } from '../../src/auth/sign-token.js';
import { maxTokenLifetimeSeconds } from '../../src/auth/token-claims.js';
import { createTokenVerifier, type Principal, requireScope } from '../../src/auth/verify-token.js';
import type { ActivityError } from '../../src/domain/errors.js';
import { bearerToken } from '../../src/http/bearer-token.js';
import { activityErrorFrom, activityErrorFromAsync } from './thrown.js';

const secret = 'unit-jwt-secret-0123456789abcdef0123456789';
const otherSecret = 'another-jwt-secret-0123456789abcdef012345';
const issuer = 'https://idp.example.com/';
const audience = 'activity-api';
const now = new Date('2026-03-01T12:00:00Z');
const nowSeconds = Math.floor(now.getTime() / 1000);
const clock = () => now;

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

function claims(overrides: JWTPayload = {}): JWTPayload {
  return {
    sub: 'u_1',
    tenant_id: 'acme',
    iss: issuer,
    aud: audience,
    exp: nowSeconds + 600,
    iat: nowSeconds,
    ...overrides,
  };
}

/** Signs `payload` as given (no claim is added), so tests can leave claims out. */
function signHs256(payload: JWTPayload, key = secret): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(key));
}

function without(payload: JWTPayload, claim: string): JWTPayload {
  const { [claim]: _removed, ...rest } = payload;
  return rest;
}

async function unauthorized(promise: Promise<unknown>, message: RegExp): Promise<ActivityError> {
  const error = await activityErrorFromAsync(promise);
  expect(error.code).toBe('UNAUTHORIZED');
  expect(error.httpStatus).toBe(401);
  expect(error.message).toMatch(message);
  return error;
}

describe('createTokenVerifier with ACTIVITY_JWT_SECRET (HS256)', () => {
  const verifier = createTokenVerifier({ jwtSecret: secret, clock });

  it('a valid token yields the tenant, subject, scopes and expiry', async () => {
    const token = await signHs256(claims({ scope: 'activity:read  activity:write' }));
    const principal = await verifier.verify(token);
    expect(principal.tenantId).toBe('acme');
    expect(principal.subject).toBe('u_1');
    expect([...principal.scopes].sort()).toEqual(['activity:read', 'activity:write']);
    expect(principal.expiresAt).toEqual(new Date((nowSeconds + 600) * 1000));
  });

  it.each([
    ['owner', 'owner'],
    ['admin', 'admin'],
    ['admin in an array', ['viewer', 'admin']],
  ])('role %s grants activity:read but not activity:write', async (_name, role) => {
    const principal = await verifier.verify(await signHs256(claims({ role })));
    expect(principal.scopes.has('activity:read')).toBe(true);
    expect(principal.scopes.has('activity:write')).toBe(false);
  });

  it('another role grants nothing', async () => {
    const principal = await verifier.verify(await signHs256(claims({ role: 'member' })));
    expect(principal.scopes.size).toBe(0);
  });

  it('activity:write comes from an explicit scope', async () => {
    const principal = await verifier.verify(await signHs256(claims({ scope: 'activity:write' })));
    expect(principal.scopes.has('activity:write')).toBe(true);
    expect(principal.scopes.has('activity:read')).toBe(false);
  });

  it('an expired token is refused', async () => {
    const token = await signHs256(claims({ exp: nowSeconds - 60 }));
    const error = await unauthorized(verifier.verify(token), /expired/);
    expect(error.message).not.toContain(token);
  });

  it('a token expired within the clock tolerance is still accepted', async () => {
    await expect(verifier.verify(await signHs256(claims({ exp: nowSeconds - 2 })))).resolves.toMatchObject({
      tenantId: 'acme',
    });
  });

  it.each(['exp', 'sub', 'tenant_id'])('a token without %s is refused, naming the claim', async (claim) => {
    await unauthorized(
      verifier.verify(await signHs256(without(claims(), claim))),
      new RegExp(`missing.*${claim}`),
    );
  });

  it.each([
    ['a character outside the allowed set', 'acme corp'],
    ['an empty string', ''],
    ['a number', 42],
    ['129 characters', 'a'.repeat(129)],
  ])('a tenant_id with %s is refused', async (_name, tenantId) => {
    await unauthorized(verifier.verify(await signHs256(claims({ tenant_id: tenantId }))), /tenant_id/);
  });

  it('a non-string scope claim is refused', async () => {
    await unauthorized(verifier.verify(await signHs256(claims({ scope: ['activity:read'] }))), /scope/);
  });

  it('a token signed with another secret is refused', async () => {
    await unauthorized(verifier.verify(await signHs256(claims(), otherSecret)), /signature/);
  });

  it('a token whose payload was altered is refused', async () => {
    const [header, , signature] = (await signHs256(claims())).split('.');
    const forged = `${header}.${base64url(claims({ tenant_id: 'globex' }))}.${signature}`;
    await unauthorized(verifier.verify(forged), /signature/);
  });

  it('an unsigned token (alg none) is refused', async () => {
    const token = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims({ scope: 'activity:write' }))}.`;
    await unauthorized(verifier.verify(token), /unsupported token algorithm/);
  });

  it('HS384 and HS512 are refused even with the right secret', async () => {
    for (const alg of ['HS384', 'HS512']) {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg })
        .sign(new TextEncoder().encode(secret));
      await unauthorized(verifier.verify(token), /unsupported token algorithm/);
    }
  });

  it.each([
    ['empty', ''],
    ['garbage', 'not-a-jwt'],
    ['two parts', 'abc.def'],
    ['a bad header', `${Buffer.from('{').toString('base64url')}.e30.sig`],
  ])('a malformed token (%s) is refused', async (_name, token) => {
    const error = await activityErrorFromAsync(verifier.verify(token));
    expect(error.code).toBe('UNAUTHORIZED');
  });

  it('a token that is not valid yet (nbf) is refused', async () => {
    await unauthorized(verifier.verify(await signHs256(claims({ nbf: nowSeconds + 3600 }))), /not valid yet/);
  });

  it('the clock decides expiry', async () => {
    const token = await signHs256(claims({ exp: nowSeconds + 60 }));
    const later = createTokenVerifier({ jwtSecret: secret, clock: () => new Date(now.getTime() + 120_000) });
    await unauthorized(later.verify(token), /expired/);
  });

  it('a token verified once is still refused once it expires', async () => {
    let time = now;
    const remembering = createTokenVerifier({ jwtSecret: secret, clock: () => time });
    const token = await signHs256(claims({ exp: nowSeconds + 60 }));
    expect((await remembering.verify(token)).tenantId).toBe('acme');
    time = new Date(now.getTime() + 89_000); // within the 30 s tolerance
    expect((await remembering.verify(token)).tenantId).toBe('acme');
    time = new Date(now.getTime() + 91_000);
    await unauthorized(remembering.verify(token), /expired/);
  });

  it('a token with a forged signature is refused even after the genuine one was verified', async () => {
    const token = await signHs256(claims());
    await verifier.verify(token);
    const [header, payload] = token.split('.');
    const forged = `${header}.${payload}.${Buffer.from('forged-signature').toString('base64url')}`;
    await unauthorized(verifier.verify(forged), /signature/);
  });
});

describe('createTokenVerifier with ACTIVITY_JWKS_FILE', () => {
  let directory: string;
  const jwksPath = () => join(directory, 'jwks.json');
  const keys = {} as Record<'rs256' | 'eddsa' | 'es256' | 'stranger', GenerateKeyPairResult>;

  async function writeJwks(name: string, jwks: unknown): Promise<string> {
    const path = join(directory, name);
    await writeFile(path, JSON.stringify(jwks));
    return path;
  }

  async function publicJwk(pair: GenerateKeyPairResult, kid: string, alg: string): Promise<JWK> {
    return { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  }

  function signWith(
    pair: GenerateKeyPairResult,
    alg: string,
    kid?: string,
    payload = claims(),
  ): Promise<string> {
    return new SignJWT(payload)
      .setProtectedHeader(kid === undefined ? { alg } : { alg, kid })
      .sign(pair.privateKey);
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), 'activity-auth-'));
    keys.rs256 = await generateKeyPair('RS256');
    keys.eddsa = await generateKeyPair('EdDSA');
    keys.es256 = await generateKeyPair('ES256');
    keys.stranger = await generateKeyPair('RS256');
    await writeJwks('jwks.json', {
      keys: [
        await publicJwk(keys.rs256, 'rsa-1', 'RS256'),
        await publicJwk(keys.eddsa, 'ed-1', 'EdDSA'),
        await publicJwk(keys.es256, 'ec-1', 'ES256'),
      ],
    });
  });
  afterAll(async () => {
    await rm(directory, { recursive: true, force: true });
  });

  it.each([
    ['RS256', 'rs256', 'rsa-1'],
    ['EdDSA', 'eddsa', 'ed-1'],
    ['ES256', 'es256', 'ec-1'],
  ] as const)('an %s token is verified with the public key from the file', async (alg, key, kid) => {
    const verifier = createTokenVerifier({ jwksFile: jwksPath(), issuer, audience, clock });
    const principal: Principal = await verifier.verify(
      await signWith(keys[key], alg, kid, claims({ role: 'owner' })),
    );
    expect(principal).toMatchObject({ tenantId: 'acme', subject: 'u_1' });
    expect(principal.scopes.has('activity:read')).toBe(true);
  });

  it('a token without kid finds its key among several of the same type', async () => {
    const second = await generateKeyPair('RS256');
    const path = await writeJwks('rotation.json', {
      keys: [await publicJwk(keys.rs256, 'old', 'RS256'), await publicJwk(second, 'new', 'RS256')],
    });
    const verifier = createTokenVerifier({ jwksFile: path, issuer, audience, clock });
    await expect(verifier.verify(await signWith(second, 'RS256'))).resolves.toMatchObject({
      tenantId: 'acme',
    });
    await unauthorized(verifier.verify(await signWith(keys.stranger, 'RS256')), /signature/);
  });

  it('a token signed by a key that is not in the file is refused', async () => {
    const verifier = createTokenVerifier({ jwksFile: jwksPath(), issuer, audience, clock });
    await unauthorized(verifier.verify(await signWith(keys.stranger, 'RS256', 'rsa-1')), /signature/);
    await unauthorized(verifier.verify(await signWith(keys.stranger, 'RS256', 'unknown-kid')), /unknown key/);
  });

  it('an HS256 token is refused when only a JWKS is configured (algorithm confusion)', async () => {
    const verifier = createTokenVerifier({ jwksFile: jwksPath(), issuer, audience, clock });
    // The classic attack: the public key itself used as the HMAC secret.
    const publicKeyText = JSON.stringify(await exportJWK(keys.rs256.publicKey));
    const token = await new SignJWT(claims({ scope: 'activity:write' }))
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .sign(new TextEncoder().encode(publicKeyText));
    await unauthorized(verifier.verify(token), /unsupported token algorithm/);
  });

  it('an alg none token is refused with a JWKS too', async () => {
    const verifier = createTokenVerifier({ jwksFile: jwksPath(), issuer, audience, clock });
    const token = `${base64url({ alg: 'none', kid: 'rsa-1' })}.${base64url(claims())}.`;
    await unauthorized(verifier.verify(token), /unsupported token algorithm/);
  });

  it('with a secret and a JWKS, the header alg picks the key', async () => {
    const verifier = createTokenVerifier({
      jwtSecret: secret,
      jwksFile: jwksPath(),
      issuer,
      audience,
      clock,
    });
    await expect(verifier.verify(await signHs256(claims()))).resolves.toMatchObject({ tenantId: 'acme' });
    await expect(verifier.verify(await signWith(keys.eddsa, 'EdDSA', 'ed-1'))).resolves.toMatchObject({
      tenantId: 'acme',
    });
    await unauthorized(verifier.verify(await signHs256(claims(), otherSecret)), /signature/);
  });

  it('the required claims are enforced for JWKS tokens too', async () => {
    const verifier = createTokenVerifier({ jwksFile: jwksPath(), issuer, audience, clock });
    await unauthorized(
      verifier.verify(await signWith(keys.rs256, 'RS256', 'rsa-1', without(claims(), 'exp'))),
      /exp/,
    );
    await unauthorized(
      verifier.verify(await signWith(keys.rs256, 'RS256', 'rsa-1', claims({ exp: nowSeconds - 60 }))),
      /expired/,
    );
  });

  it.each([
    ['a missing file', 'missing.json', undefined, /cannot be read/],
    ['invalid JSON', 'invalid.json', '{', /not valid JSON/],
    ['no keys', 'empty.json', { keys: [] }, /JWKS/],
    ['a private key', 'private.json', 'private', /public keys only/],
    ['a symmetric key', 'oct.json', { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }, /public keys only/],
  ])('a JWKS file with %s is a configuration error', async (_name, file, content, message) => {
    if (content === 'private') {
      const extractable = await generateKeyPair('ES256', { extractable: true });
      await writeJwks(file, { keys: [await exportJWK(extractable.privateKey)] });
    } else if (typeof content === 'string') {
      await writeFile(join(directory, file), content);
    } else if (content !== undefined) {
      await writeJwks(file, content);
    }
    const error = activityErrorFrom(() =>
      createTokenVerifier({ jwksFile: join(directory, file), issuer, audience }),
    );
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(message);
  });
});

describe('createTokenVerifier configuration', () => {
  it('needs a secret or a JWKS file', () => {
    expect(activityErrorFrom(() => createTokenVerifier({})).code).toBe('CONFIG_INVALID');
  });
});

describe('requireScope', () => {
  const principal: Principal = {
    tenantId: 'acme',
    subject: 'u_1',
    scopes: new Set(['activity:read']),
    expiresAt: now,
  };

  it('passes when the scope is held', () => {
    expect(() => requireScope(principal, 'activity:read')).not.toThrow();
  });

  it('throws FORBIDDEN (403) naming the missing scope', () => {
    const error = activityErrorFrom(() => requireScope(principal, 'activity:write'));
    expect(error.code).toBe('FORBIDDEN');
    expect(error.httpStatus).toBe(403);
    expect(error.message).toContain('activity:write');
  });
});

describe('bearerToken', () => {
  it.each([
    ['Bearer abc.def.ghi', 'abc.def.ghi'],
    ['bearer abc.def.ghi', 'abc.def.ghi'],
    ['BEARER   abc.def.ghi  ', 'abc.def.ghi'],
  ])('reads the token from %j', (header, token) => {
    expect(bearerToken(header, undefined)).toBe(token);
  });

  it('prefers the header over ?access_token=', () => {
    expect(bearerToken('Bearer from-header', 'from-query')).toBe('from-header');
  });

  it('falls back to ?access_token= without a header', () => {
    expect(bearerToken(undefined, 'from-query')).toBe('from-query');
  });

  it.each([
    [undefined, undefined],
    ['', ''],
    [undefined, ''],
  ])('without a token (header %j, query %j) it is UNAUTHORIZED', (header, query) => {
    const error = activityErrorFrom(() => bearerToken(header, query));
    expect(error.code).toBe('UNAUTHORIZED');
    expect(error.message).toBe('missing bearer token');
  });

  it.each(['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', 'Bearer a b', 'Token abc'])(
    'a malformed header %j is refused, not skipped for the query token',
    (header) => {
      const error = activityErrorFrom(() => bearerToken(header, 'from-query'));
      expect(error.code).toBe('UNAUTHORIZED');
      expect(error.message).not.toContain('dXNlcjpwYXNz');
    },
  );
});

describe('createTokenSigner', () => {
  it('mints a token the verifier accepts, with the claims asked for', async () => {
    const signer = createTokenSigner({ jwtSecret: secret, clock });
    const { token, expiresAt } = await signer.sign({
      tenantId: 'acme',
      subject: 'ci',
      role: 'admin',
      scopes: ['activity:write'],
      ttlSeconds: 3600,
    });
    expect(expiresAt).toEqual(new Date((nowSeconds + 3600) * 1000));
    const [header, payload] = token
      .split('.')
      .slice(0, 2)
      .map((part) => JSON.parse(Buffer.from(part, 'base64url').toString()));
    expect(header).toMatchObject({ alg: 'HS256' });
    expect(payload).toEqual({
      tenant_id: 'acme',
      sub: 'ci',
      role: 'admin',
      scope: 'activity:write',
      iat: nowSeconds,
      exp: nowSeconds + 3600,
    });
    const principal = await createTokenVerifier({ jwtSecret: secret, clock }).verify(token);
    expect(principal).toEqual({
      tenantId: 'acme',
      subject: 'ci',
      scopes: new Set(['activity:read', 'activity:write']),
      expiresAt,
    });
  });

  it('leaves scope and role out when none are given', async () => {
    const { token } = await createTokenSigner({ jwtSecret: secret, clock }).sign({
      tenantId: 'acme',
      subject: 'cli',
      scopes: [],
      ttlSeconds: 60,
    });
    const payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
    expect(Object.keys(payload).sort()).toEqual(['exp', 'iat', 'sub', 'tenant_id']);
  });

  it('puts the configured issuer and audience in the token, so that a verifier requiring them accepts it', async () => {
    const { token } = await createTokenSigner({ jwtSecret: secret, issuer, audience, clock }).sign({
      tenantId: 'acme',
      subject: 'cli',
      scopes: ['activity:read'],
      ttlSeconds: 60,
    });
    const payload = JSON.parse(Buffer.from(token.split('.')[1] as string, 'base64url').toString());
    expect(payload).toMatchObject({ iss: issuer, aud: audience });
    const verifier = createTokenVerifier({ jwtSecret: secret, issuer, audience, clock });
    await expect(verifier.verify(token)).resolves.toMatchObject({ tenantId: 'acme', subject: 'cli' });
  });

  it('a token minted without the issuer and audience is refused by a verifier that requires them', async () => {
    const { token } = await createTokenSigner({ jwtSecret: secret, clock }).sign({
      tenantId: 'acme',
      subject: 'cli',
      scopes: ['activity:read'],
      ttlSeconds: 60,
    });
    await unauthorized(
      createTokenVerifier({ jwtSecret: secret, issuer, audience, clock }).verify(token),
      /missing the (iss|aud) claim/,
    );
  });

  it('mints a token for the whole maximum lifetime, and the verifier accepts it', async () => {
    const { token, expiresAt } = await createTokenSigner({ jwtSecret: secret, clock }).sign({
      tenantId: 'acme',
      subject: 'cli',
      scopes: [],
      ttlSeconds: maxTokenLifetimeSeconds,
    });
    expect(maxTokenLifetimeSeconds).toBe(365 * 86_400);
    expect(expiresAt).toEqual(new Date((nowSeconds + maxTokenLifetimeSeconds) * 1000));
    const principal = await createTokenVerifier({ jwtSecret: secret, clock }).verify(token);
    expect(principal.expiresAt).toEqual(expiresAt);
  });

  it('a token from another secret does not verify', async () => {
    const { token } = await createTokenSigner({ jwtSecret: otherSecret, clock }).sign({
      tenantId: 'acme',
      subject: 'cli',
      scopes: ['activity:read'],
      ttlSeconds: 60,
    });
    await unauthorized(createTokenVerifier({ jwtSecret: secret, clock }).verify(token), /signature/);
  });

  it('refuses claims it cannot encode faithfully', async () => {
    const signer = createTokenSigner({ jwtSecret: secret, clock });
    const base = { tenantId: 'acme', subject: 'cli', scopes: [] as string[], ttlSeconds: 60 };
    for (const bad of [
      { ...base, tenantId: 'acme corp' },
      { ...base, scopes: ['activity:read activity:write'] },
      { ...base, ttlSeconds: 0 },
      { ...base, ttlSeconds: 365 * 86_400 + 1 },
      { ...base, ttlSeconds: 1.5 },
      { ...base, subject: ' ' },
    ]) {
      expect((await activityErrorFromAsync(signer.sign(bad))).code).toBe('VALIDATION_FAILED');
    }
  });

  it('without ACTIVITY_JWT_SECRET it is a configuration error', () => {
    const error = activityErrorFrom(() => createTokenSigner({ jwtSecret: undefined }));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toBe(
      'ACTIVITY_JWT_SECRET is required to mint tokens (a JWKS file holds public keys only)',
    );
  });
});
