import { readFileSync } from 'node:fs';
import {
  createLocalJWKSet,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  jwtVerify,
} from 'jose';
import { ActivityError } from '../domain/errors.js';

/** The public keys of ACTIVITY_JWKS_FILE, refused with CONFIG_INVALID unless they are public keys only. */
export function loadJwks(path: string): JWTVerifyGetKey {
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
export async function verifyWithKeySet(
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
