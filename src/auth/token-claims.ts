// What `activity token` mints and `serve` accepts must agree: the rules both hold a
// token to live here, so that a minted token is never refused.

/** The scopes `serve` checks: reading and writing a tenant's events. */
export const activityScopes = ['activity:read', 'activity:write'] as const;

/** The algorithm of tokens made with ACTIVITY_JWT_SECRET, minted and verified alike. */
export const secretAlgorithm = 'HS256';

/**
 * The longest a token may still have to live when it is presented: a year, the
 * longest a service token should last (`activity token --ttl` stops here too). It keeps
 * `exp` within what a Date and a timer can hold: an `exp` of 1e20 would have made a
 * stream's expiry timer fire every millisecond and never close the stream.
 */
export const maxTokenLifetimeSeconds = 365 * 86_400;
export const maxTokenLifetimeDays = maxTokenLifetimeSeconds / 86_400;

/** A role or a scope is one word: scopes travel joined with spaces in the `scope` claim. */
export function isOneWord(value: string): boolean {
  return /^\S+$/.test(value);
}
