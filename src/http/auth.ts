import { createSecretKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
  SignJWT,
} from 'jose';
import { ActivityError } from '../domain/errors.js';
import { tenantIdSchema } from '../domain/inputs.js';
import { identifierProblem } from '../privacy/scrub.js';

export const activityScopes = ['activity:read', 'activity:write'] as const;
export type ActivityScope = (typeof activityScopes)[number];

/** Who a verified bearer token speaks for. */
export interface Principal {
  tenantId: string;
  subject: string;
  scopes: ReadonlySet<string>;
  expiresAt: Date;
}

export interface TokenVerifier {
  /** Verifies signature, algorithm and claims; throws UNAUTHORIZED with a reason that never echoes the token. */
  verify(token: string): Promise<Principal>;
}

export interface TokenVerifierOptions {
  jwtSecret?: string | undefined;
  jwksFile?: string | undefined;
  /** ACTIVITY_JWT_ISSUER: the `iss` every token must carry. Required with a JWKS file. */
  issuer?: string | undefined;
  /** ACTIVITY_JWT_AUDIENCE: the `aud` every token must be for. Required with a JWKS file. */
  audience?: string | undefined;
  clock?: (() => Date) | undefined;
}

/** The only algorithm for ACTIVITY_JWT_SECRET. */
const secretAlgorithms = ['HS256'] as const;
/** Asymmetric algorithms for keys from ACTIVITY_JWKS_FILE; never HS*, so a public key cannot be used as an HMAC secret. */
const jwksAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;

/** Roles that imply a scope. `activity:write` is deliberately granted by explicit scope only. */
const roleScopes: Readonly<Record<string, readonly ActivityScope[]>> = {
  owner: ['activity:read'],
  admin: ['activity:read'],
};

/**
 * Seconds of clock skew tolerated on every time claim (exp, nbf, iat and the lifetime
 * limit). Hosts kept in time by NTP agree within a second; 30 s absorbs an identity
 * provider or a resumed VM whose clock runs ahead, without which a token it has just
 * issued is refused as "issued in the future", while giving an expired token at most
 * half a minute more (Envoy and Spring Security allow a full minute).
 */
const clockToleranceSeconds = 30;
/**
 * The longest a token may still have to live when it is presented: a year, the
 * longest a service token should last (`activity token --ttl` stops here too). It keeps
 * `exp` within what a Date and a timer can hold: an `exp` of 1e20 would have made a
 * stream's expiry timer fire every millisecond and never close the stream.
 */
export const maxTokenLifetimeSeconds = 365 * 86_400;
const maxTokenLifetimeDays = maxTokenLifetimeSeconds / 86_400;
/** Far above any real JWT; stops a crafted giant token from costing parse time. */
const maxTokenLength = 8_192;
const requiredClaims = ['exp', 'sub', 'tenant_id'] as const;
/** Verified tokens remembered until they expire; the oldest is forgotten first. */
const maxVerifiedTokens = 10_000;

/**
 * Builds a verifier for bearer tokens: HS256 with ACTIVITY_JWT_SECRET and/or the
 * asymmetric algorithms with the public keys of ACTIVITY_JWKS_FILE (read once, here).
 * When both are configured the token's `alg` header picks the key. With an issuer or
 * an audience, every token must carry it, whatever its algorithm; a JWKS needs both.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const clock = options.clock ?? (() => new Date());
  const { issuer, audience } = options;
  // Keys from a JWKS usually belong to an identity provider that signs tokens for other
  // services too: without iss and aud, a token minted for any of them would be accepted.
  if (options.jwksFile !== undefined) {
    const missing =
      issuer === undefined
        ? 'ACTIVITY_JWT_ISSUER'
        : audience === undefined
          ? 'ACTIVITY_JWT_AUDIENCE'
          : undefined;
    if (missing !== undefined) {
      throw new ActivityError('CONFIG_INVALID', `${missing} is required when ACTIVITY_JWKS_FILE is set`);
    }
  }
  // A key object, imported once: jose would import raw bytes again on every verify.
  const secret =
    options.jwtSecret === undefined ? undefined : createSecretKey(Buffer.from(options.jwtSecret, 'utf8'));
  const jwks = options.jwksFile === undefined ? undefined : loadJwks(options.jwksFile);
  if (secret === undefined && jwks === undefined) {
    throw new ActivityError(
      'CONFIG_INVALID',
      'ACTIVITY_JWT_SECRET or ACTIVITY_JWKS_FILE is required to verify bearer tokens',
    );
  }

  // Clients send the same token on request after request. Everything but time is
  // fixed by the token's bytes and this verifier's keys, issuer and audience, so a token
  // once verified needs only its time window checked again; outside it, the token is
  // verified afresh, which says which check failed.
  const verified = new Map<string, VerifiedToken>();
  return {
    async verify(token) {
      if (token === '') throw unauthorized('missing bearer token');
      if (token.length > maxTokenLength) throw unauthorized('token is too long');
      const now = clock();
      const known = verified.get(token);
      if (known !== undefined) {
        if (isWithin(known.window, now)) return known.principal;
        verified.delete(token);
      }
      const alg = headerAlgorithm(token);
      const verifyOptions = {
        clockTolerance: clockToleranceSeconds,
        currentDate: now,
        requiredClaims: [...requiredClaims],
        ...(issuer === undefined ? {} : { issuer }),
        ...(audience === undefined ? {} : { audience }),
      };
      let payload: JWTPayload;
      try {
        if (secret !== undefined && isOneOf(alg, secretAlgorithms)) {
          ({ payload } = await jwtVerify(token, secret, {
            ...verifyOptions,
            algorithms: [...secretAlgorithms],
          }));
        } else if (jwks !== undefined && isOneOf(alg, jwksAlgorithms)) {
          payload = await verifyWithKeySet(token, jwks, {
            ...verifyOptions,
            algorithms: [...jwksAlgorithms],
          });
        } else {
          throw unauthorized(`unsupported token algorithm${describeAlgorithm(alg)}`);
        }
      } catch (error) {
        throw toUnauthorized(error);
      }
      const window = toTimeWindow(payload, now);
      const principal = toPrincipal(payload);
      if (verified.size >= maxVerifiedTokens) verified.delete(verified.keys().next().value as string);
      verified.set(token, { principal, window });
      return principal;
    },
  };
}

/** Throws FORBIDDEN unless the principal holds `scope`. */
export function requireScope(principal: Principal, scope: ActivityScope): void {
  if (!principal.scopes.has(scope)) throw new ActivityError('FORBIDDEN', `token lacks the ${scope} scope`);
}

/**
 * The token from `Authorization: Bearer <token>`, else from `?access_token=` (for
 * EventSource clients, which cannot set headers). A header in another form is
 * refused rather than skipped, so a typo cannot silently fall back to the query.
 */
export function bearerToken(
  authorizationHeader: string | undefined,
  queryAccessToken: string | undefined,
): string {
  if (authorizationHeader !== undefined && authorizationHeader.trim() !== '') {
    const match = /^[ \t]*bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorizationHeader);
    if (!match?.[1]) throw unauthorized('authorization header must be "Bearer <token>"');
    return match[1];
  }
  if (queryAccessToken !== undefined && queryAccessToken !== '') return queryAccessToken;
  throw unauthorized('missing bearer token');
}

export interface TokenSignerOptions {
  jwtSecret?: string | undefined;
  /** ACTIVITY_JWT_ISSUER, put in `iss` so that `serve` accepts the token. */
  issuer?: string | undefined;
  /** ACTIVITY_JWT_AUDIENCE, put in `aud`. */
  audience?: string | undefined;
  clock?: (() => Date) | undefined;
}

export interface TokenClaims {
  tenantId: string;
  subject: string;
  role?: string | undefined;
  scopes: readonly string[];
  ttlSeconds: number;
}

export interface SignedToken {
  token: string;
  expiresAt: Date;
}

export interface TokenSigner {
  sign(claims: TokenClaims): Promise<SignedToken>;
}

/** Mints HS256 tokens with ACTIVITY_JWT_SECRET, as `activity token` does. */
export function createTokenSigner(options: TokenSignerOptions): TokenSigner {
  if (options.jwtSecret === undefined) {
    throw new ActivityError(
      'CONFIG_INVALID',
      'ACTIVITY_JWT_SECRET is required to mint tokens (a JWKS file holds public keys only)',
    );
  }
  const secret = new TextEncoder().encode(options.jwtSecret);
  const clock = options.clock ?? (() => new Date());
  return {
    async sign(claims) {
      assertSignable(claims);
      const issuedAt = Math.floor(clock().getTime() / 1000);
      const expiresAt = issuedAt + claims.ttlSeconds;
      const payload: JWTPayload = { tenant_id: claims.tenantId };
      if (claims.scopes.length > 0) payload.scope = claims.scopes.join(' ');
      if (claims.role !== undefined) payload.role = claims.role;
      const jwt = new SignJWT(payload)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(claims.subject)
        .setIssuedAt(issuedAt)
        .setExpirationTime(expiresAt);
      if (options.issuer !== undefined) jwt.setIssuer(options.issuer);
      if (options.audience !== undefined) jwt.setAudience(options.audience);
      const token = await jwt.sign(secret);
      return { token, expiresAt: new Date(expiresAt * 1000) };
    },
  };
}

function assertSignable(claims: TokenClaims): void {
  const problem = !tenantIdSchema.safeParse(claims.tenantId).success
    ? 'tenant id must be 1–128 characters of A-Z a-z 0-9 . _ : -'
    : identifierProblem(claims.tenantId) !== undefined
      ? `tenant id ${identifierProblem(claims.tenantId)}`
      : claims.subject.trim() === ''
        ? 'subject must not be empty'
        : claims.role !== undefined && !/^\S+$/.test(claims.role)
          ? 'role must be one word'
          : claims.scopes.some((scope) => !/^\S+$/.test(scope))
            ? 'each scope must be one word (scopes are joined with spaces)'
            : !Number.isSafeInteger(claims.ttlSeconds) ||
                claims.ttlSeconds <= 0 ||
                claims.ttlSeconds > maxTokenLifetimeSeconds
              ? `ttl must be a positive whole number of seconds, at most ${maxTokenLifetimeDays} days`
              : undefined;
  if (problem !== undefined) throw new ActivityError('VALIDATION_FAILED', problem);
}

function loadJwks(path: string): JWTVerifyGetKey {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    const reason = error instanceof SyntaxError ? 'is not valid JSON' : 'cannot be read';
    throw new ActivityError('CONFIG_INVALID', `ACTIVITY_JWKS_FILE ${reason}`, { cause: error });
  }
  const keys = (json as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ActivityError(
      'CONFIG_INVALID',
      'ACTIVITY_JWKS_FILE must be a JWKS: {"keys":[…]} with at least one key',
    );
  }
  // Refused up front: a private or symmetric key here means a secret was deployed where
  // only public keys belong.
  for (const key of keys) {
    if (typeof key !== 'object' || key === null) {
      throw new ActivityError('CONFIG_INVALID', 'ACTIVITY_JWKS_FILE keys must be JSON objects');
    }
    if ('d' in key || 'k' in key || (key as { kty?: unknown }).kty === 'oct') {
      throw new ActivityError(
        'CONFIG_INVALID',
        'ACTIVITY_JWKS_FILE must hold public keys only (found private or symmetric key material)',
      );
    }
  }
  try {
    return createLocalJWKSet(json as JSONWebKeySet);
  } catch (error) {
    throw new ActivityError('CONFIG_INVALID', 'ACTIVITY_JWKS_FILE is not a valid JWKS', { cause: error });
  }
}

/**
 * Verifies against a key set. Without a `kid`, several keys may fit the algorithm
 * (during a rotation, say); jose then hands back the candidates and each is tried.
 */
async function verifyWithKeySet(
  token: string,
  jwks: JWTVerifyGetKey,
  options: Parameters<typeof jwtVerify>[2],
): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, jwks, options)).payload;
  } catch (error) {
    if (!(error instanceof errors.JWKSMultipleMatchingKeys)) throw error;
    for await (const key of error) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (attempt) {
        if (!(attempt instanceof errors.JWSSignatureVerificationFailed)) throw attempt;
      }
    }
    throw new errors.JWSSignatureVerificationFailed();
  }
}

function headerAlgorithm(token: string): unknown {
  try {
    return decodeProtectedHeader(token).alg;
  } catch (error) {
    throw unauthorized('token is malformed', error);
  }
}

function isOneOf<T extends string>(value: unknown, list: readonly T[]): value is T {
  return typeof value === 'string' && (list as readonly string[]).includes(value);
}

/** The header's alg for the message, only when it is a plain short name (it is attacker input). */
function describeAlgorithm(alg: unknown): string {
  return typeof alg === 'string' && /^[A-Za-z0-9+_-]{1,16}$/.test(alg) ? ` ${alg}` : '';
}

/** When a verified token may be used, in seconds since the epoch: from ≤ now < until. */
interface TimeWindow {
  from: number;
  until: number;
}

interface VerifiedToken {
  principal: Principal;
  window: TimeWindow;
}

/**
 * The time checks jose leaves to us, and the window they and jose's (exp, nbf) allow,
 * tolerance included. jose has checked that exp, nbf and iat are numbers; it accepts a
 * future iat and any exp, which a Date cannot always hold.
 */
function toTimeWindow(payload: JWTPayload, now: Date): TimeWindow {
  const { exp, nbf, iat } = payload as { exp: number; nbf?: number; iat?: number };
  const nowSeconds = Math.floor(now.getTime() / 1000);
  if (!Number.isInteger(exp)) throw unauthorized('token claim exp must be a whole number of seconds');
  if (exp - nowSeconds > maxTokenLifetimeSeconds + clockToleranceSeconds) {
    throw unauthorized(`token expires too far in the future (more than ${maxTokenLifetimeDays} days)`);
  }
  if (nbf !== undefined && !Number.isFinite(nbf)) throw unauthorized('token claim nbf is invalid');
  if (iat !== undefined && !Number.isFinite(iat)) throw unauthorized('token claim iat is invalid');
  if (iat !== undefined && iat > nowSeconds + clockToleranceSeconds) {
    throw unauthorized('token was issued in the future');
  }
  return {
    from: Math.max(nbf ?? -Infinity, iat ?? -Infinity, exp - maxTokenLifetimeSeconds) - clockToleranceSeconds,
    until: exp + clockToleranceSeconds,
  };
}

/** The same comparisons as the checks above and jose's, on the same whole seconds. */
function isWithin(window: TimeWindow, now: Date): boolean {
  const nowSeconds = Math.floor(now.getTime() / 1000);
  return window.from <= nowSeconds && nowSeconds < window.until;
}

function toPrincipal(payload: JWTPayload): Principal {
  const { sub, tenant_id: tenantId, scope, role, exp } = payload;
  if (typeof sub !== 'string' || sub.trim() === '')
    throw unauthorized('token claim sub must be a non-empty string');
  if (!tenantIdSchema.safeParse(tenantId).success) {
    throw unauthorized('token claim tenant_id must be 1–128 characters of A-Z a-z 0-9 . _ : -');
  }
  // No event of such a tenant can be stored, and the request log would hold it in clear.
  const tenantProblem = identifierProblem(tenantId as string);
  if (tenantProblem !== undefined) throw unauthorized(`token claim tenant_id ${tenantProblem}`);
  if (scope !== undefined && typeof scope !== 'string') {
    throw unauthorized('token claim scope must be a space-separated string');
  }
  const roles = role === undefined ? [] : Array.isArray(role) ? role : [role];
  if (!roles.every((r): r is string => typeof r === 'string')) {
    throw unauthorized('token claim role must be a string or an array of strings');
  }
  const scopes = new Set(scope?.split(/\s+/).filter((s) => s !== '') ?? []);
  for (const r of roles) for (const granted of roleScopes[r] ?? []) scopes.add(granted);
  return {
    tenantId: tenantId as string,
    subject: sub,
    scopes,
    // A whole number of seconds at most a year away (toTimeWindow): a valid Date.
    expiresAt: new Date((exp as number) * 1000),
  };
}

/** Maps jose's failures to a reason a client can act on; the token itself is never echoed. */
function toUnauthorized(error: unknown): ActivityError {
  if (error instanceof ActivityError) return error;
  if (error instanceof errors.JWTExpired) return unauthorized('token expired', error);
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return unauthorized(`token is missing the ${error.claim} claim`, error);
    if (error.claim === 'nbf') return unauthorized('token is not valid yet', error);
    if (error.claim === 'iss') return unauthorized('token issuer is not accepted', error);
    if (error.claim === 'aud') return unauthorized('token audience is not accepted', error);
    return unauthorized(`token claim ${error.claim} is invalid`, error);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return unauthorized('token signature is invalid', error);
  }
  if (error instanceof errors.JWKSNoMatchingKey) return unauthorized('token signed by an unknown key', error);
  if (error instanceof errors.JOSEAlgNotAllowed || error instanceof errors.JOSENotSupported) {
    return unauthorized('unsupported token algorithm', error);
  }
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid) {
    return unauthorized('token is malformed', error);
  }
  // Anything else (a bad key in the set, say) still fails closed.
  return unauthorized('token could not be verified', error);
}

function unauthorized(message: string, cause?: unknown): ActivityError {
  return new ActivityError('UNAUTHORIZED', message, cause === undefined ? {} : { cause });
}
