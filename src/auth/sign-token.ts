import { type JWTPayload, SignJWT } from 'jose';
import { ActivityError } from '../domain/errors.js';
import { tenantIdProblem } from '../domain/tenant-id.js';
import { isOneWord, maxTokenLifetimeDays, maxTokenLifetimeSeconds, secretAlgorithm } from './token-claims.js';

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
        .setProtectedHeader({ alg: secretAlgorithm, typ: 'JWT' })
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
  const tenantProblem = tenantIdProblem(claims.tenantId);
  const problem =
    tenantProblem !== undefined
      ? `tenant id ${tenantProblem}`
      : claims.subject.trim() === ''
        ? 'subject must not be empty'
        : claims.role !== undefined && !isOneWord(claims.role)
          ? 'role must be one word'
          : claims.scopes.some((scope) => !isOneWord(scope))
            ? 'each scope must be one word (scopes are joined with spaces)'
            : !Number.isSafeInteger(claims.ttlSeconds) ||
                claims.ttlSeconds <= 0 ||
                claims.ttlSeconds > maxTokenLifetimeSeconds
              ? `ttl must be a positive whole number of seconds, at most ${maxTokenLifetimeDays} days`
              : undefined;
  if (problem !== undefined) throw new ActivityError('VALIDATION_FAILED', problem);
}
