import { isUtf8 } from 'node:buffer';
import { containsCardNumber } from './card-numbers.js';
import { isSecretKey, mayNameSecret } from './secret-keys.js';

/**
 * Credentials found by their shape inside free text. (Over 350 lines on purpose: the
 * one-pass scan of signs and the detectors that read them are one mechanism, and
 * split they would share a dozen private constants.) Every pattern here is linear: no
 * quantified group holds another quantifier that could match the same characters. One
 * pass over the text first notes the signs each detector needs (a space, an `=`, a run
 * of token characters…), so that ordinary text is read once, not once per detector.
 */

export interface CredentialOptions {
  /**
   * 'grouped' takes only a card number printed in groups (`4111 1111 1111 1111`,
   * dashes or dots), for an identifier, where 16 digits in a row are far more often an
   * id: one in ten passes the Luhn check. false skips card numbers altogether.
   */
  cards?: boolean | 'grouped';
}

/**
 * The kind of credential the text holds ("bearer token", "JWT", "card number"…), or
 * undefined. The kind names a shape, never a part of the text, so it is safe to log.
 *
 * @example credentialIn('Authorization: Bearer abc.def-ghi_jkl') // 'bearer token'
 */
export function credentialIn(text: string, options?: CredentialOptions): string | undefined {
  // One word of lower-case letters (an enum value, a word of prose) has none of what
  // any shape below needs: a digit, a capital, a separator or a symbol.
  if (lowerCaseWord.test(text)) return undefined;
  const signs = signsOf(text);
  const has = (sign: number) => (signs.found & sign) !== 0;
  return (
    (has(blank) ? schemeCredential(text) : undefined) ??
    (has(dash) ? privateKey(text) : undefined) ??
    (has(dot) && signs.longTokenRunAt >= 0 ? jwt(text) : undefined) ??
    (has(at) && has(colon) ? urlPassword(text) : undefined) ??
    (has(equals) || has(colon) ? keyValueSecret(text) : undefined) ??
    (signs.longTokenRunAt >= 0 ? tokenShape(text, signs.longTokenRunAt) : undefined) ??
    (signs.base64RunOf40 ? awsSecretAccessKey(text) : undefined) ??
    (options?.cards !== false &&
    signs.digits >= 13 &&
    containsCardNumber(text, { grouped: options?.cards === 'grouped' })
      ? 'card number'
      : undefined)
  );
}

const lowerCaseWord = /^[a-z]*$/;

// ─── Signs: one pass over the text ────────────────────────────────────────────────

const token = 1;
const base64 = 2;
const digit = 4;
const blank = 8;
const equals = 16;
const colon = 32;
const at = 64;
const dash = 128;
const dot = 256;

/** The signs of each ASCII character; other characters have none. */
const charSigns = new Uint16Array(128);
const mark = (chars: string, sign: number) => {
  for (const char of chars) {
    const code = char.charCodeAt(0);
    charSigns[code] = (charSigns[code] ?? 0) | sign;
  }
};
const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
mark(`${letters}0123456789_.$/+:~=@-`, token);
mark(`${letters}0123456789+/`, base64);
mark('0123456789', digit);
mark(' \t', blank);
mark('=', equals);
mark(':', colon);
mark('@', at);
mark('-', dash);
mark('.', dot);

/**
 * Every token shape is a run of at least this many token characters, and has a
 * character other than a lower-case letter in it: prose has no such run, and a long
 * lower-case word is not one either.
 */
const shortestToken = 15;

interface Signs {
  /** The union of the signs of every character. */
  found: number;
  digits: number;
  /** Where the first run that can hold a token shape starts, or -1 (see shortestToken). */
  longTokenRunAt: number;
  /** A run of exactly 40 base64 characters, the length of an AWS secret access key. */
  base64RunOf40: boolean;
}

function signsOf(text: string): Signs {
  let found = 0;
  let digits = 0;
  let tokenRun = 0;
  let tokenRunLowerOnly = true;
  let longTokenRunAt = -1;
  let base64Run = 0;
  let base64RunOf40 = false;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const signs = code < 128 ? (charSigns[code] as number) : 0;
    found |= signs;
    if (signs & digit) digits++;
    if (signs & token) {
      if (tokenRun === 0) tokenRunLowerOnly = true;
      tokenRun++;
      if (code < 97 || code > 122) tokenRunLowerOnly = false;
      if (tokenRun >= shortestToken && !tokenRunLowerOnly && longTokenRunAt < 0)
        longTokenRunAt = i + 1 - tokenRun;
    } else {
      tokenRun = 0;
    }
    if (signs & base64) {
      base64Run++;
    } else {
      if (base64Run === 40) base64RunOf40 = true;
      base64Run = 0;
    }
  }
  if (base64Run === 40) base64RunOf40 = true;
  return { found, digits, longTokenRunAt, base64RunOf40 };
}

// ─── Authorization schemes ────────────────────────────────────────────────────────

const schemePattern = /\b(bearer|dpop|basic|token|apikey|api-key|ssws|digest|negotiate|ntlm)[ \t]+/gi;
/** The credential after a scheme name: token68 characters and the few that tokens add. */
const credentialRun = /[A-Za-z0-9._~+/=-]+/y;
const base64Text = /^[A-Za-z0-9+/]+={0,2}$/;
const digitOrSymbol = /[0-9._~+/=-]/;
const digitPattern = /[0-9]/;
const letterPattern = /[A-Za-z]/;
const digestResponse = /\bresponse[ \t]*=[ \t]*"?[0-9a-fA-F]{32}/i;

/**
 * `Bearer`/`DPoP` and 8+ credential characters with a digit or a symbol (so that prose
 * such as "bearer bonds" is kept), or 20+ of any; `Basic` and base64 that decodes to
 * `user:password` text (RFC 7617), so "basic authentication" is kept; `Token`, `ApiKey`,
 * `SSWS` and 16+ characters with a letter and a digit; `Digest` with a `response=` hash;
 * `Negotiate`/`NTLM` and a SPNEGO or NTLMSSP blob. `Bot` is left to the Discord token
 * shape: "Bot" followed by a word is common prose.
 */
function schemeCredential(text: string): string | undefined {
  schemePattern.lastIndex = 0;
  for (let match = schemePattern.exec(text); match; match = schemePattern.exec(text)) {
    credentialRun.lastIndex = schemePattern.lastIndex;
    const run = credentialRun.exec(text)?.[0] ?? '';
    switch ((match[1] as string).toLowerCase()) {
      case 'bearer':
      case 'dpop':
        if ((run.length >= 8 && digitOrSymbol.test(run)) || run.length >= 20) return 'bearer token';
        break;
      case 'basic':
        if (isBasicCredentials(run)) return 'Basic credentials';
        break;
      case 'token':
      case 'apikey':
      case 'api-key':
      case 'ssws':
        if (run.length >= 16 && digitPattern.test(run) && letterPattern.test(run))
          return 'API token credentials';
        break;
      case 'digest':
        if (digestResponse.test(text)) return 'Digest credentials';
        break;
      default:
        if (run.length >= 20 && (run.startsWith('TlRMTVNT') || run.startsWith('YI')))
          return 'Negotiate/NTLM token';
    }
  }
  return undefined;
}

function isBasicCredentials(run: string): boolean {
  if (run.length < 4 || !base64Text.test(run)) return false;
  const bytes = Buffer.from(run, 'base64');
  if (!bytes.includes(58) || !isUtf8(bytes)) return false;
  for (const byte of bytes) if (byte < 32 || byte === 127) return false;
  return true;
}

// ─── Keys and tokens with a fixed frame ───────────────────────────────────────────

/**
 * PEM, PGP and SSH2 private keys, encrypted or not (a public key or a certificate is
 * kept). One open run before `PRIVATE KEY`, none after, so a failed start costs one
 * pass over the run.
 */
const pemPrivateKey = /-{4,5} ?BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)? ?-{4,5}/;

function privateKey(text: string): string | undefined {
  if (text.includes('BEGIN ') && pemPrivateKey.test(text)) return 'PEM private key';
  if (text.includes('PuTTY-User-Key-File-') && text.includes('Private-Lines')) return 'PuTTY private key';
  return undefined;
}

/**
 * Three base64url parts, the first a JSON header (`eyJ` is `{"`). Starting only where a
 * run of base64url starts keeps `eyJeyJeyJ…` linear; prefixed tokens that wrap a JWT
 * (`sntrys_eyJ…`) have their own shapes.
 */
const jwtPattern = /(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./;

function jwt(text: string): string | undefined {
  return text.includes('eyJ') && jwtPattern.test(text) ? 'JWT' : undefined;
}

/**
 * `scheme://user:password@host`, an empty user allowed (`redis://:pw@host`). The part
 * before the colon cannot hold one, so the split is found in one pass.
 */
const userInfoWithPassword = /[^\s/?#@:]*:[^\s/?#@]+@/y;

function urlPassword(text: string): string | undefined {
  if (!text.includes('@')) return undefined;
  for (let at = text.indexOf('://'); at !== -1; at = text.indexOf('://', at + 3)) {
    userInfoWithPassword.lastIndex = at + 3;
    if (userInfoWithPassword.test(text)) return 'password in a URL';
  }
  return undefined;
}

// ─── key=value text: DSNs, connection strings, query strings, headers, JSON ───────

/**
 * A key and what follows its `=` or `:`: `password=pw` (DSN), `Password=pw;` (ADO),
 * `?access_token=…`, `X-Api-Key: …`, `"secret": "…"` or `\"secret\": \"…\"` (JSON in a
 * string, escaped or not), `--token=…`, `Cookie: sid=…`.
 * The key is bounded, so a failed start costs at most 64 characters. The value is only
 * looked at (a lookahead), never consumed, so that the next search starts inside it:
 * in `denied: client_secret: …` the key `client_secret` is found after `denied`. A
 * value stops at the next `=` or `:`, so the lookaheads never scan a character twice.
 */
const keyValuePattern =
  /(?<![A-Za-z0-9_.])([A-Za-z][A-Za-z0-9_.-]{0,63})((?:\\)?["']|)[ \t]{0,3}([=:])[ \t]{0,3}(?=((?:\\)?["']|)([^\s"'&;,<>()[\]=:\\]*))/g;
/** A cookie after its header's name (`Cookie: sid=…`): the pair's value is the secret. */
const cookiePair = /=[^\s;,"']{2}/y;
/** `Authorization: SharedKey account:signature` — a scheme, then a credential. */
const schemeThenCredential = /[ \t]+[A-Za-z0-9._~+/=:-]{8}/y;
const alphanumeric = /[A-Za-z0-9]/;
const nonLetter = /[^A-Za-z]/;
/** Values that say something about a secret without being one ("token=expired"). */
const placeholderValues = new Set([
  'null',
  'none',
  'nil',
  'true',
  'false',
  'undefined',
  'redacted',
  'hidden',
  'masked',
  'empty',
  'required',
  'missing',
  'invalid',
  'expired',
  'revoked',
  'unset',
  'set',
  'yes',
  'no',
  'ok',
]);

/**
 * A secret-named key (the same rule as metadata keys) with a value. After `=`, or a
 * quoted key or value, any value of 2+ characters counts (`password=pw`); after a bare
 * `:` (a header or YAML line) the value needs 6+ characters with a digit or a symbol,
 * or a scheme and a credential after it, so that "token: expired" is kept.
 */
function keyValueSecret(text: string): string | undefined {
  if ((!text.includes('=') && !text.includes(':')) || !mayNameSecret(text)) return undefined;
  keyValuePattern.lastIndex = 0;
  for (let match = keyValuePattern.exec(text); match; match = keyValuePattern.exec(text)) {
    const [, key = '', closingQuote, separator, openingQuote, value = ''] = match;
    if (value.length < 2 || !alphanumeric.test(value)) continue;
    let secretValue: boolean;
    if (separator === '=' || closingQuote !== '' || openingQuote !== '') {
      secretValue = !placeholderValues.has(value.toLowerCase());
    } else {
      schemeThenCredential.lastIndex = keyValuePattern.lastIndex + value.length;
      cookiePair.lastIndex = keyValuePattern.lastIndex + value.length;
      secretValue =
        (value.length >= 6 && nonLetter.test(value)) ||
        schemeThenCredential.test(text) ||
        cookiePair.test(text);
    }
    if (secretValue && isSecretKey(key)) return 'secret in key=value text';
  }
  return undefined;
}

// ─── Well-known token shapes (gitleaks and trufflehog rule sets) ──────────────────

/**
 * Each shape is a prefix that vendors chose so that tokens can be found, then the
 * token's alphabet and its least length: a bound, never `{n,}`, so that no start scans
 * to the end of a long run. Publishable keys (Stripe `pk_`, Twilio account SIDs, Square
 * application ids) are public by design and left out.
 */
const tokenShapes: ReadonlyArray<readonly [kind: string, pattern: RegExp]> = [
  ['AWS access key id', /(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Za-z0-9])/],
  ['Google API key', /AIza[0-9A-Za-z_-]{35}/],
  ['Google OAuth client secret', /GOCSPX-[0-9A-Za-z_-]{28}/],
  ['Google OAuth access token', /ya29\.[0-9A-Za-z_-]{20}/],
  ['GitHub token', /gh[pousr]_[A-Za-z0-9]{36}/],
  ['GitHub token', /github_pat_[A-Za-z0-9_]{50}/],
  ['GitLab token', /gl(?:pat|dt|ptt|rt|cbt|soat|ffct|oas|imt|agent)-[A-Za-z0-9_-]{20}/],
  ['GitLab token', /GR1348941[A-Za-z0-9_-]{20}/],
  ['Slack token', /xox[abposer]-[A-Za-z0-9-]{10}/],
  ['Slack token', /xapp-[0-9]-[A-Za-z0-9-]{20}/],
  ['Slack webhook URL', /hooks\.slack\.com\/(?:services|workflows|triggers)\/[A-Za-z0-9_/+-]{20}/],
  ['Discord webhook URL', /discord(?:app)?\.com\/api\/webhooks\/[0-9]+\/[A-Za-z0-9_-]{20}/],
  ['Microsoft Teams webhook URL', /webhook\.office\.com\/webhookb2\/[A-Za-z0-9@/_-]{20}/],
  ['Stripe secret key', /(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{10}/],
  ['Stripe webhook secret', /whsec_[A-Za-z0-9]{24}/],
  ['Twilio API key', /SK[0-9a-fA-F]{32}(?![A-Za-z0-9])/],
  ['SendGrid API key', /SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}/],
  ['Mailgun API key', /key-[0-9a-zA-Z]{32}(?![A-Za-z0-9])/],
  ['Mailchimp API key', /[0-9a-f]{32}-us[0-9]{1,2}(?![A-Za-z0-9])/],
  ['npm token', /npm_[A-Za-z0-9]{36}/],
  ['PyPI token', /pypi-Ag[A-Za-z0-9_-]{50}/],
  ['Docker Hub token', /dckr_(?:pat|oat)_[A-Za-z0-9_-]{20}/],
  ['Shopify token', /shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}/],
  ['Anthropic API key', /sk-ant-[a-z]+[0-9]{2}-[A-Za-z0-9_-]{20}/],
  ['OpenAI API key', /sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20}/],
  ['OpenAI API key', /sk-[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}/],
  ['OpenAI API key', /sk-[A-Za-z0-9]{48}(?![A-Za-z0-9])/],
  ['Hugging Face token', /(?:hf_|api_org_)[A-Za-z0-9]{34}/],
  ['DigitalOcean token', /do[opr]_v1_[a-f0-9]{64}/],
  ['Heroku API key', /HRKU-[A-Za-z0-9_-]{20}/],
  ['Square token', /sq0(?:atp|csp)-[0-9A-Za-z_-]{22}/],
  ['Square token', /EAAA[A-Za-z0-9_-]{60}/],
  ['Braintree access token', /access_token\$production\$[0-9a-z]{16}\$[0-9a-f]{32}/],
  ['Discord bot token', /[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}/],
  ['Telegram bot token', /[0-9]{5,16}:A[A-Za-z0-9_-]{34}(?![A-Za-z0-9_-])/],
  ['Atlassian API token', /ATATT3[A-Za-z0-9_=-]{50}/],
  ['Linear API key', /lin_api_[A-Za-z0-9]{40}/],
  ['Notion token', /(?:ntn_|secret_)[A-Za-z0-9]{43}/],
  ['Postman API key', /PMAK-[a-f0-9]{24}-[a-f0-9]{34}/],
  ['Vault token', /hv[sb]\.[A-Za-z0-9_-]{24}/],
  ['Terraform Cloud token', /[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{60}/],
  ['Doppler token', /dp\.(?:pt|st|sa|ct|scim|audit)\.[A-Za-z0-9]{40}/],
  ['Grafana token', /(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32})/],
  ['New Relic API key', /NRAK-[A-Z0-9]{27}/],
  ['Sentry token', /sntry[su]_[A-Za-z0-9_=+/-]{30}/],
  ['Databricks token', /dapi[a-f0-9]{32}/],
  ['Supabase token', /sbp_[a-f0-9]{40}/],
  ['age secret key', /AGE-SECRET-KEY-1[0-9A-Z]{58}/],
  ['Firebase Cloud Messaging server key', /AAAA[A-Za-z0-9_-]{7}:[A-Za-z0-9_-]{140}/],
  ['Azure AD client secret', /[A-Za-z0-9_~.]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}/],
  ['private key (base64 DER)', /MII[A-Za-z0-9+/]{3}(?:IBADAN|IBAAK)/],
  ['bcrypt password hash', /\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}/],
  ['Argon2 password hash', /\$argon2(?:id|i|d)\$v=[0-9]+\$/],
];

/**
 * All shapes in one regex, each in its own group, behind one boundary and a check of the
 * first character (every shape starts with a letter, a digit or `$`): one scan of the
 * text instead of fifty, from the first run of token characters long enough to hold a
 * shape. The group that matched names the kind.
 */
const tokenShapePattern = new RegExp(
  `(?<![A-Za-z0-9])(?=[A-Za-z0-9$])(?:${tokenShapes.map(([, pattern]) => `(${pattern.source})`).join('|')})`,
  'g',
);

function tokenShape(text: string, from: number): string | undefined {
  tokenShapePattern.lastIndex = from;
  const match = tokenShapePattern.exec(text);
  if (!match) return undefined;
  const group = match.findIndex((part, index) => index > 0 && part !== undefined);
  return tokenShapes[group - 1]?.[0];
}

// ─── AWS secret access keys ───────────────────────────────────────────────────────

/** 40 characters of the base64 alphabet, not part of a longer base64 run. */
const base64Run40 = /(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{40}(?![A-Za-z0-9+/=])/g;
const awsContext = /aws|amazon|secret/i;
const upperPattern = /[A-Z]/;
const lowerPattern = /[a-z]/;

/**
 * An AWS secret access key has no prefix: it is 40 random characters of the base64
 * alphabet. A run of exactly 40 counts when it mixes upper case, lower case and digits,
 * has at least 22 distinct characters (random keys have about 30; a path such as
 * `src/Components/Button2/ButtonGroupIcon99` about 17), and either holds a `/` or `+`
 * inside or stands in text that says aws, amazon or secret. So a random 40-character
 * base64 string with a `/` or `+` is taken for a key even with no context: such a string
 * in an audit record is far more often a credential than anything else. A key with no
 * `/` or `+` (about a quarter of them) under a neutral key and with no such word is
 * missed: it cannot be told from a random identifier.
 */
function awsSecretAccessKey(text: string): string | undefined {
  if (!text.includes('/') && !text.includes('+') && !awsContext.test(text)) return undefined;
  base64Run40.lastIndex = 0;
  for (let match = base64Run40.exec(text); match; match = base64Run40.exec(text)) {
    const run = match[0];
    if (!upperPattern.test(run) || !lowerPattern.test(run) || !digitPattern.test(run)) continue;
    if (new Set(run).size < 22) continue;
    const inner = run.slice(1, -1);
    if (inner.includes('/') || inner.includes('+') || awsContext.test(text)) return 'AWS secret access key';
  }
  return undefined;
}
