import { containsCardNumber } from './card-numbers.js';
import { ipIn, replaceIps } from './ip-in-text.js';
import { isSecretKey } from './secret-keys.js';
import { credentialIn } from './secret-patterns.js';

/**
 * Secret scrubbing: values under secret-looking keys, and text that holds a credential
 * wherever it is, become "[REDACTED]" before anything is stored; IP addresses inside
 * text become "[IP]".
 */
export const REDACTED = '[REDACTED]';

export { IP_PLACEHOLDER, ipIn } from './ip-in-text.js';
export { isSecretKey } from './secret-keys.js';
export { type CredentialOptions, credentialIn } from './secret-patterns.js';

/**
 * A free-text value as it may be stored: "[REDACTED]" if it holds a credential
 * anywhere, else the text with each IP address replaced by "[IP]", else the same text.
 *
 * @example scrubText('login from 203.0.113.91 blocked') // 'login from [IP] blocked'
 */
export function scrubText(text: string): string {
  if (credentialIn(text) !== undefined) return REDACTED;
  const out = replaceIps(text);
  if (out === text) return text;
  // Taking an address out can uncover what was glued to it: a credential
  // (`1.2.3.4AKIA…` has no word boundary before AKIA until the address goes), or an
  // address that hostile text nests deeper than replaceIps looks.
  return credentialIn(out) === undefined && !ipIn(out) ? out : REDACTED;
}

/** A key that cannot be stored, by where it is: the shape of the core's field issues. */
export interface KeyIssue {
  path: string;
  message: string;
}

export interface ScrubbedMetadata {
  value: unknown;
  /** Keys that cannot be stored; the path names where, never the key itself. */
  issues: KeyIssue[];
  /** Whether the copy differs from the value at all (most metadata holds nothing to scrub). */
  changed: boolean;
}

/**
 * A scrubbed copy of event metadata: the value under a secret key becomes
 * "[REDACTED]" whatever its type, strings go through scrubText, an integer that is a
 * card number becomes "[REDACTED]". A key that holds a credential or an IP address can
 * neither be stored nor redacted (two redacted keys would collide), so it is left out
 * of the copy and reported as an issue: once per path and problem, at most ten, as
 * caps.ts reports. Callers check the depth cap first (caps.ts), so the recursion is
 * bounded.
 *
 * @example scrubMetadata({ context: { 'Bearer abc.def-ghi_jkl': 1 } }).issues
 * // [{ path: 'metadata.context.[key]', message: 'is a key that holds a credential (bearer token); …' }]
 */
export function scrubMetadata(value: unknown): ScrubbedMetadata {
  const scrub = new Scrub();
  const scrubbed = scrubValue(value, ['metadata'], scrub);
  return { value: scrubbed, issues: scrub.issues, changed: scrub.changed };
}

function scrubValue(value: unknown, path: Array<string | number>, scrub: Scrub): unknown {
  if (typeof value === 'string') {
    const text = scrubText(value);
    if (text !== value) scrub.changed = true;
    return text;
  }
  if (typeof value === 'number') {
    if (keepsNumber(value)) return value;
    scrub.changed = true;
    return REDACTED;
  }
  if (Array.isArray(value)) {
    const out: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      out[i] = scrubValue(value[i], path, scrub);
      path.pop();
    }
    return out;
  }
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(record)) {
    const verdict = keyVerdict(key);
    if (verdict === 'secret') {
      out[key] = REDACTED;
      scrub.changed = true;
    } else if (verdict === 'plain') {
      path.push(key);
      out[key] = scrubValue(record[key], path, scrub);
      path.pop();
    } else {
      scrub.addIssue(`${path.join('.')}.[key]`, verdict.issue);
      scrub.changed = true;
    }
  }
  return out;
}

/** Whether scrubText leaves the text as it is. */
export function keepsText(text: string): boolean {
  return scrubText(text) === text;
}

/** Whether scrubbing keeps a number: a card number sent as a JSON number is still a card number. */
export function keepsNumber(value: number): boolean {
  return !(Number.isInteger(value) && value >= 1e12 && containsCardNumber(String(value)));
}

/** Whether scrubbing keeps a key and scrubs its value as any other (not a secret key, not one refused). */
export function scrubsNoKey(key: string): boolean {
  return keyVerdict(key) === 'plain';
}

const maxIssues = 10;

/** One scrub's findings: the keys that cannot be stored, and whether anything changed. */
class Scrub {
  readonly issues: KeyIssue[] = [];
  changed = false;
  readonly #seen = new Set<string>();

  addIssue(path: string, message: string): void {
    const id = `${path}\n${message}`;
    if (this.issues.length >= maxIssues || this.#seen.has(id)) return;
    this.#seen.add(id);
    this.issues.push({ path, message });
  }
}

/** What to do with a key: redact its value, scrub its value, or report the key. */
type KeyVerdict = 'secret' | 'plain' | { issue: string };

/**
 * Metadata repeats the same few keys from event to event, and judging each again was
 * most of what scrubbing cost; the cache is emptied when full, so hostile keys cannot
 * grow it.
 */
const keyVerdicts = new Map<string, KeyVerdict>();
const maxCachedKeys = 4096;

function keyVerdict(key: string): KeyVerdict {
  let verdict = keyVerdicts.get(key);
  if (verdict === undefined) {
    verdict = judgeKey(key);
    if (keyVerdicts.size >= maxCachedKeys) keyVerdicts.clear();
    keyVerdicts.set(key, verdict);
  }
  return verdict;
}

function judgeKey(key: string): KeyVerdict {
  const credential = credentialIn(key);
  if (credential !== undefined) {
    return { issue: `is a key that holds a credential (${credential}); credentials are never stored` };
  }
  if (ipIn(key)) return { issue: 'is a key that holds an IP address; raw IP addresses are never stored' };
  return isSecretKey(key) ? 'secret' : 'plain';
}

const plainWord = /^\w*$/;

/**
 * Why an identifier cannot be stored, or undefined: it holds a credential or an IP
 * address. Identifiers are refused, not scrubbed: a redacted id would make unrelated
 * records look alike. Only card numbers printed in groups count: one 16-digit id in
 * ten passes the Luhn check. The message never quotes the value.
 *
 * @example identifierProblem('10.0.0.7') // 'holds an IP address; …'
 */
export function identifierProblem(value: string): string | undefined {
  // Under 13 letters, digits and underscores there is room for neither a credential
  // (13 digits, 15 token characters, or a separator) nor an IP address.
  if (value.length < 13 && plainWord.test(value)) return undefined;
  const credential = credentialIn(value, { cards: 'grouped' });
  if (credential !== undefined) return `holds a credential (${credential}); credentials are never stored`;
  return ipIn(value)
    ? 'holds an IP address; an event keeps an IP only in its ip field, as a keyed hash'
    : undefined;
}

/**
 * A key as an error's path may name it: "[key]" when the key holds a credential or an
 * IP address, which no message quotes.
 *
 * @example keyInPath('sk_live_abcdefghijklmnop1234') // '[key]'
 */
export function keyInPath(key: string): string {
  return identifierProblem(key) === undefined ? key : '[key]';
}
