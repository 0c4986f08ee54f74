/**
 * Whether a metadata key names a secret. A key is split into lower-case words by its
 * separators and case changes (`x-API_key`, `refreshToken`), and a word written without
 * separators (`accesstoken`, `CLIENTSECRET`) is split further into the known words it is
 * made of, so that `accesstoken`, `access_token`, `AccessToken` and `ACCESS-TOKEN` are
 * judged alike.
 */

/** Words that name a secret wherever they stand in a key. */
const secretWords = new Set([
  'password',
  'passwords',
  'passwd',
  'pwd',
  'passphrase',
  'passphrases',
  'passcode',
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
  'jwt',
  'otp',
  'totp',
  'pin',
  'cvv',
  'cvc',
]);

/**
 * Words that name a secret only as the last word of a key: `auth`, `basic_auth` and
 * `request_signature` hold one, `auth_method` and `signature_algorithm` describe one.
 */
const lastWordSecrets = new Set(['auth', 'pass', 'pw', 'signature', 'signatures', 'sig']);

/** Two adjacent words that name a secret together ("api key", "ssh key"…). */
const secretPairs = new Set([
  'api key',
  'api keys',
  'private key',
  'private keys',
  'access key',
  'access keys',
  'secret key',
  'secret keys',
  'ssh key',
  'ssh keys',
  'signing key',
  'signing keys',
  'encryption key',
  'encryption keys',
  'master key',
  'account key',
  'shared key',
  'auth key',
  'hmac key',
  'deploy key',
  'recovery code',
  'recovery codes',
  'backup code',
  'backup codes',
  'security code',
  'card number',
  'client secret',
  'set cookie',
]);

/**
 * Plural `tokens` usually counts (`max_tokens`, `input_tokens`); after one of these
 * words it holds credentials (`refresh_tokens`, `api_tokens`).
 */
const credentialQualifiers = new Set([
  'access',
  'api',
  'app',
  'auth',
  'bearer',
  'bot',
  'client',
  'csrf',
  'device',
  'id',
  'oauth',
  'personal',
  'refresh',
  'service',
  'session',
  'xsrf',
]);

/**
 * The words a key written without separators is split into. Only words that combine
 * with the secret words above belong here: a short common word ("or", "age", "board")
 * would split `author`, `passage` or `keyboard` into a secret.
 */
const compoundParts = new Set([
  ...secretWords,
  ...lastWordSecrets,
  ...credentialQualifiers,
  'tokens',
  'key',
  'keys',
  'private',
  'public',
  'ssh',
  'signing',
  'encryption',
  'master',
  'account',
  'shared',
  'hmac',
  'deploy',
  'recovery',
  'backup',
  'security',
  'code',
  'codes',
  'card',
  'number',
  'hash',
  'set',
  'new',
  'old',
  'current',
  'confirm',
  'user',
  'db',
  'aws',
  'basic',
  'webhook',
  'admin',
  'root',
  'login',
  'mfa',
  'x',
]);
const longestPart = Math.max(...[...compoundParts].map((part) => part.length));

/** Secret words that end a compound made of unknown words too (`mysqlpassword`, `githubtoken`). */
const secretEndings = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'token',
  'credential',
  'credentials',
  'apikey',
  'privatekey',
  'cookie',
  'passwords',
  'secrets',
  'cookies',
];

/**
 * A part of every word above that can make a key secret, in any case: a key without one
 * is judged at once, and text without one holds no secret-named key (see
 * secret-patterns.ts). A new secret word must have one of these in it.
 */
const secretStem =
  /pass|pw|secret|token|key|auth|cookie|credential|jwt|otp|pin|cvv|cvc|sig|session|code|number/i;

/** Whether the text could hold a secret-named key: a quick test before a closer look. */
export function mayNameSecret(text: string): boolean {
  return secretStem.test(text);
}

export function isSecretKey(key: string): boolean {
  if (!secretStem.test(key)) return false;
  const words = keyWords(key).flatMap(splitCompound);
  const last = words.length - 1;
  for (let i = 0; i <= last; i++) {
    const word = words[i] as string;
    if (secretWords.has(word) || word.startsWith('session')) return true;
    if (i === last && lastWordSecrets.has(word)) return true;
    const previous = words[i - 1];
    if (previous === undefined) continue;
    if (secretPairs.has(`${previous} ${word}`)) return true;
    if (word === 'tokens' && credentialQualifiers.has(previous)) return true;
  }
  return false;
}

const other = 0;
const lower = 1;
const upper = 2;
const digit = 3;

function charKind(code: number): number {
  if (code >= 97 && code <= 122) return lower;
  if (code >= 65 && code <= 90) return upper;
  if (code >= 48 && code <= 57) return digit;
  return other;
}

/**
 * Splits `x-API_key`, `apiKey`, `APIKey`, `privateKey.pem` into lower-case words: at
 * every character that is not a letter or digit, before an upper-case letter that
 * follows a lower-case letter or digit, and before the last capital of a run that
 * starts a capitalised word (`APIKey` → `api key`). Trailing digits are dropped
 * (`password2`, `cvv2`), and so are words that were only digits.
 */
function keyWords(key: string): string[] {
  const words: string[] = [];
  let start = 0;
  const flush = (end: number) => {
    let last = end;
    while (last > start && charKind(key.charCodeAt(last - 1)) === digit) last--;
    if (last > start) words.push(key.slice(start, last).toLowerCase());
  };
  for (let i = 0; i < key.length; i++) {
    const kind = charKind(key.charCodeAt(i));
    if (kind === other) {
      flush(i);
      start = i + 1;
      continue;
    }
    if (kind !== upper || i === start) continue;
    const previous = charKind(key.charCodeAt(i - 1));
    const next = i + 1 < key.length ? charKind(key.charCodeAt(i + 1)) : other;
    if (previous === lower || previous === digit || (previous === upper && next === lower)) {
      flush(i);
      start = i;
    }
  }
  flush(key.length);
  return words;
}

/**
 * `accesstoken` → [`access`, `token`]; a word that is not made of known parts stays
 * whole, unless it ends with a secret word (`mysqlpassword` → [`mysql`, `password`]).
 */
function splitCompound(word: string): string[] {
  if (compoundParts.has(word)) return [word];
  const parts = segment(word);
  if (parts) return parts;
  for (const ending of secretEndings) {
    if (word.length > ending.length && word.endsWith(ending)) {
      return [word.slice(0, -ending.length), ending];
    }
  }
  // `maxtokens` counts, `refreshtokens` does not: the qualifier rule needs the word before.
  if (word.endsWith('tokens')) {
    const head = word.slice(0, -'tokens'.length);
    for (const qualifier of credentialQualifiers) {
      if (head.endsWith(qualifier)) return [head, qualifier, 'tokens'];
    }
  }
  return [word];
}

/**
 * A split of `word` into known parts, or undefined. Dynamic programming over the end
 * positions, each trying parts of at most `longestPart` letters: linear in the word.
 */
function segment(word: string): string[] | undefined {
  const from: number[] = new Array(word.length + 1).fill(-1);
  from[0] = 0;
  for (let end = 1; end <= word.length; end++) {
    for (let start = Math.max(0, end - longestPart); start < end; start++) {
      if (from[start] !== -1 && compoundParts.has(word.slice(start, end))) {
        from[end] = start;
        break;
      }
    }
  }
  if (from[word.length] === -1) return undefined;
  const parts: string[] = [];
  for (let end = word.length; end > 0; end = from[end] as number) {
    parts.push(word.slice(from[end] as number, end));
  }
  return parts.reverse();
}
