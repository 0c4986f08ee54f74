import { isIP } from 'node:net';

/**
 * Secret scrubbing: values under secret-looking keys, and values that look like
 * secrets wherever they are, become "[REDACTED]" before anything is stored.
 */
export const REDACTED = '[REDACTED]';

/** Single words that name a secret. */
const secretWords = new Set([
  'password',
  'passwords',
  'passwd',
  'pwd',
  'passphrase',
  'passphrases',
  'secret',
  'secrets',
  'token',
  'apikey',
  'apikeys',
  'authorization',
  'cookie',
  'cookies',
  'credential',
  'credentials',
  'privatekey',
  'privatekeys',
  'otp',
  'pin',
  'cvv',
  'cvc',
]);

/** Two adjacent words that name a secret together ("api key", "private key"…). */
const secretPairs = new Set([
  'api key',
  'api keys',
  'private key',
  'private keys',
  'access key',
  'access keys',
  'secret key',
  'secret keys',
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

/**
 * Verdicts on keys seen before. Metadata repeats the same few keys from event to event,
 * and splitting each into words again was most of what scrubbing cost; the cache is
 * emptied when full, so hostile keys cannot grow it.
 */
const secretKeyVerdicts = new Map<string, boolean>();
const maxCachedKeys = 4096;

export function isSecretKey(key: string): boolean {
  let verdict = secretKeyVerdicts.get(key);
  if (verdict === undefined) {
    verdict = nameSecret(key);
    if (secretKeyVerdicts.size >= maxCachedKeys) secretKeyVerdicts.clear();
    secretKeyVerdicts.set(key, verdict);
  }
  return verdict;
}

function nameSecret(key: string): boolean {
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

// A credential after the scheme name: 8+ token characters with a digit or a symbol, so
// that prose such as "basic authentication" is kept.
const bearerPattern =
  /\b(?:Bearer|bearer|BEARER|Basic|basic)\s+(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,}/;
const jwtPattern = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*/;
const pemPattern = /-----BEGIN [A-Z0-9 ]*(?:PRIVATE KEY|CERTIFICATE REQUEST|ENCRYPTED)[A-Z ]*-----/;
const wellKnownTokenPattern =
  /\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10,}|\bgh[pousr]_[A-Za-z0-9]{30,}|\bxox[abpr]-[A-Za-z0-9-]{10,}|\bAKIA[0-9A-Z]{16}\b/;
/** Digits in groups separated by single spaces or dashes ("4111 1111-1111 1111"). */
const digitRunPattern = /\d+(?:[ -]\d+)*/g;
/** Cheap tests first, so that ordinary text costs no splitting (see isSecretValue). */
const thirteenDigitsPattern = /\d(?:[ -]?\d){12}/;
const ipListCharacters = /^[\w.:%[\],\s-]+$/;
const ipSeparator = /[.:]/;

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

/**
 * Whole groups of a digit run that total 13–19 digits and pass Luhn: in
 * "order 2024 4111 1111 1111 1111" the last four groups are a card number. Windows
 * never split a group, so an ordinary long number is not taken for a card.
 */
function containsCardNumber(value: string): boolean {
  if (!thirteenDigitsPattern.test(value)) return false;
  for (const match of value.matchAll(digitRunPattern)) {
    const groups = match[0].split(/[ -]/);
    for (let first = 0; first < groups.length; first++) {
      let digits = '';
      for (let last = first; last < groups.length && digits.length < 19; last++) {
        digits += groups[last];
        if (digits.length >= 13 && digits.length <= 19 && passesLuhn(digits)) return true;
      }
    }
  }
  return false;
}

/** An IP address, or a list of them (an X-Forwarded-For header): raw IPs are never stored. */
function isIpAddressList(value: string): boolean {
  if (!ipSeparator.test(value) || !ipListCharacters.test(value)) return false;
  const parts = value.split(/[\s,]+/).filter((part) => part.length > 0);
  return (
    parts.length > 0 && parts.length <= 32 && parts.every((part) => isIP(part.replace(/^\[|\]$/g, '')) !== 0)
  );
}

export function isSecretValue(value: string): boolean {
  return (
    isIpAddressList(value) ||
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
  // A card number sent as a JSON number is still a card number.
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1e12) {
    return isSecretValue(String(value)) ? REDACTED : value;
  }
  if (Array.isArray(value)) return value.map(scrubSecrets);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      out[key] = isSecretKey(key) ? REDACTED : scrubSecrets((value as Record<string, unknown>)[key]);
    }
    return out;
  }
  return value;
}
