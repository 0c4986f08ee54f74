import { createSecretKey } from 'node:crypto';
import { decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import { ActivityError } from '../domain/errors.js';
import { tenantIdProblem } from '../domain/tenant-id.js';
import { loadJwks, verifyWithKeySet } from './jwks.js';
import {
  type activityScopes,
  maxTokenLifetimeDays,
  maxTokenLifetimeSeconds,
  secretAlgorithm,
} from './token-claims.js';

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
  /**
   * Whom a refused token speaks for, when it is one of ours all the same: signed by a
   * trusted key, for this issuer and audience, but outside its time (expired, not yet
   * valid). Undefined for anything else: an unauthenticated caller names no tenant.
   */
  claimant(token: string): Promise<{ tenantId: string; subject: string } | undefined>;
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
const secretAlgorithms = [secretAlgorithm] as const;
/** Asymmetric algorithms for keys from ACTIVITY_JWKS_FILE; never HS*, so a public key cannot be used as an HMAC secret. */
const jwksAlgorithms = ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'] as const;

/** Roles that imply a scope. `activity:write` is deliberately granted by explicit scope only. */
const roleScopes: Readonly<Record<string, readonly ActivityScope[]>> = {
  owner: ['activity:read'],
  admin: ['activity:read'],
};
/** The roles that grant something. */
export const knownRoles = Object.keys(roleScopes);

/**
 * Seconds of clock skew tolerated on every time claim (exp, nbf, iat and the lifetime
 * limit). Hosts kept in time by NTP agree within a second; 30 s absorbs an identity
 * provider or a resumed VM whose clock runs ahead, without which a token it has just
 * issued is refused as "issued in the future", while giving an expired token at most
 * half a minute more (Envoy and Spring Security allow a full minute).
 */
const clockToleranceSeconds = 30;
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
      const payload = await verifiedPayload(token, now, clockToleranceSeconds);
      const window = toTimeWindow(payload, now);
      const principal = toPrincipal(payload);
      if (verified.size >= maxVerifiedTokens) verified.delete(verified.keys().next().value as string);
      verified.set(token, { principal, window });
      return principal;
    },
    async claimant(token) {
      if (token === '' || token.length > maxTokenLength) return undefined;
      try {
        const { tenantId, subject } = toPrincipal(
          // Any time at all (jose takes no infinite tolerance): only the signature and claims count.
          await verifiedPayload(token, clock(), Number.MAX_SAFE_INTEGER),
        );
        return { tenantId, subject };
      } catch {
        return undefined;
      }
    },
  };

  /** The token's claims once its signature, algorithm, issuer, audience and time (within `tolerance` s) hold. */
  async function verifiedPayload(token: string, now: Date, tolerance: number): Promise<JWTPayload> {
    const alg = headerAlgorithm(token);
    const verifyOptions = {
      clockTolerance: tolerance,
      currentDate: now,
      requiredClaims: [...requiredClaims],
      ...(issuer === undefined ? {} : { issuer }),
      ...(audience === undefined ? {} : { audience }),
    };
    try {
      if (secret !== undefined && isOneOf(alg, secretAlgorithms)) {
        return (await jwtVerify(token, secret, { ...verifyOptions, algorithms: [...secretAlgorithms] }))
          .payload;
      }
      if (jwks !== undefined && isOneOf(alg, jwksAlgorithms)) {
        return await verifyWithKeySet(token, jwks, { ...verifyOptions, algorithms: [...jwksAlgorithms] });
      }
      throw unauthorized(`unsupported token algorithm${describeAlgorithm(alg)}`);
    } catch (error) {
      throw toUnauthorized(error);
    }
  }
}

/** Throws FORBIDDEN unless the principal holds `scope`. */
export function requireScope(principal: Principal, scope: ActivityScope): void {
  if (!principal.scopes.has(scope)) throw new ActivityError('FORBIDDEN', `token lacks the ${scope} scope`);
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
  const tenantProblem = tenantIdProblem(tenantId);
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
