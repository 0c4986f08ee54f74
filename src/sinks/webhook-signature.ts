import { createHmac, randomBytes } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): each delivery carries
 * `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature`
 * (`v1,` + base64 HMAC-SHA256 of `id.timestamp.body`), keyed with the bytes of a
 * `whsec_`-prefixed base64 secret. A receiver that checks them rejects forgeries, and
 * replays older than the time it allows.
 */
const secretPrefix = 'whsec_';

/** A new signing secret: 32 random bytes, as receivers' libraries read it. */
export function newWebhookSecret(): string {
  return `${secretPrefix}${randomBytes(32).toString('base64')}`;
}

/** Why `secret` cannot sign, or undefined when it can: `whsec_` and base64 of 24 to 64 bytes. */
export function webhookSecretProblem(secret: string): string | undefined {
  if (!secret.startsWith(secretPrefix)) return `must start with ${secretPrefix}`;
  const encoded = secret.slice(secretPrefix.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded) || encoded.length % 4 !== 0) {
    return `must be ${secretPrefix} followed by base64`;
  }
  const bytes = Buffer.from(encoded, 'base64').length;
  return bytes >= 24 && bytes <= 64 ? undefined : `must hold 24 to 64 bytes (it holds ${bytes})`;
}

/** The `webhook-signature` of one delivery. */
export function webhookSignature(
  secret: string,
  id: string,
  timestamp: number,
  body: string | Buffer,
): string {
  const problem = webhookSecretProblem(secret);
  if (problem !== undefined) throw new RangeError(`webhook secret ${problem}`);
  const mac = createHmac('sha256', Buffer.from(secret.slice(secretPrefix.length), 'base64'));
  mac.update(`${id}.${timestamp}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}
