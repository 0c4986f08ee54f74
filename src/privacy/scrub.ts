/**
 * Secret scrubbing: values under secret-looking keys, and values that look like
 * secrets wherever they are, become "[REDACTED]" before anything is stored.
 */
export const REDACTED = '[REDACTED]';

/** Single words that name a secret. */
const secretWords = new Set([
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'apikey',
  'authorization',
  'cookie',
  'cookies',
  'credential',
  'credentials',
  'privatekey',
  'otp',
  'pin',
  'cvv',
  'cvc',
]);

/** Two adjacent words that name a secret together ("api key", "private key"…). */
const secretPairs = new Set([
  'api key',
  'private key',
  'access key',
  'secret key',
  'client secret',
  'set cookie',
]);

/** Splits `x-API_key`, `apiKey`, `privateKey.pem` into lower-case words. */
function keyWords(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((word) => word.length > 0);
}

export function isSecretKey(key: string): boolean {
  const words = keyWords(key);
  if (words.join('').startsWith('session')) return true;
  for (let i = 0; i < words.length; i++) {
    const word = words[i] as string;
    if (secretWords.has(word) || word.startsWith('session')) return true;
    const next = words[i + 1];
    if (next !== undefined && secretPairs.has(`${word} ${next}`)) return true;
  }
  return false;
}

const bearerPattern = /\b(?:bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}/i;
const jwtPattern = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/;
const pemPattern = /-----BEGIN [A-Z0-9 ]*(?:PRIVATE KEY|CERTIFICATE REQUEST|ENCRYPTED)[A-Z ]*-----/;
const wellKnownTokenPattern =
  /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abpr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b/;
const cardCandidatePattern = /\b\d(?:[ -]?\d){12,18}\b/g;

function passesLuhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let digit = digits.charCodeAt(i) - 48;
    if (double) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    double = !double;
  }
  return sum % 10 === 0;
}

function containsCardNumber(value: string): boolean {
  for (const match of value.matchAll(cardCandidatePattern)) {
    const digits = match[0].replace(/[ -]/g, '');
    if (digits.length >= 13 && digits.length <= 19 && passesLuhn(digits)) return true;
  }
  return false;
}

export function isSecretValue(value: string): boolean {
  return (
    bearerPattern.test(value) ||
    jwtPattern.test(value) ||
    pemPattern.test(value) ||
    wellKnownTokenPattern.test(value) ||
    containsCardNumber(value)
  );
}

/**
 * A copy of `value` with secrets replaced. Callers check the depth cap first
 * (caps.ts), so this recursion is bounded.
 */
export function scrubSecrets(value: unknown): unknown {
  if (typeof value === 'string') return isSecretValue(value) ? REDACTED : value;
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, child] of Object.entries(value)) {
      out[key] = isSecretKey(key) ? REDACTED : scrubSecrets(child);
    }
    return out;
  }
  return value;
}
