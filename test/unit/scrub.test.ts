import { describe, expect, it } from 'vitest';
import {
  credentialIn,
  ipIn,
  isSecretKey,
  REDACTED,
  scrubMetadata,
  scrubText,
} from '../../src/privacy/scrub.js';

const scrubbed = (value: unknown) => scrubMetadata(value).value;

const secretKeys = [
  'password',
  'Password',
  'PASSWORD',
  'new_password',
  'password2',
  'passwd',
  'secret',
  'token',
  'access_token',
  'refreshToken',
  'id_token',
  'api_key',
  'apiKey',
  'APIKey',
  'api-key',
  'x-api-key',
  'X-API-Key',
  'Authorization',
  'authorization',
  'cookie',
  'Cookie',
  'set-cookie',
  'Set-Cookie',
  'private_key',
  'privateKey',
  'client_secret',
  'clientSecret',
  'session',
  'session_id',
  'sessionId',
  'sessionToken',
  'SESSION_KEY',
  'credentials',
  'credential',
  'aws_secret_access_key',
  'otp',
  'pin_code',
  'cvv2',
];

/** Keys the scrubber missed (issue 17). */
const missedSecretKeys = [
  'accesstoken',
  'ACCESSTOKEN',
  'clientsecret',
  'apitoken',
  'secretkey',
  'auth',
  'pass',
  'refresh_tokens',
  'ssh_key',
  'signature',
];

const harmlessKeys = [
  'tokens_in',
  'tokens_out',
  'max_tokens',
  'input_tokens',
  'output_tokens',
  'prompt_tokens',
  'completion_tokens',
  'total_tokens',
  'tokenizer',
  'author',
  'passage',
  'keyboard',
  'keys_count',
  'spinner',
  'impression',
  'auth_method',
  'signature_algorithm',
  'description',
  'method',
  'reason',
  'user_id',
  'oauth',
  'public_key',
  'primary_key',
  'pass_count',
  'passwordless',
  'secretary',
  'maxTokens',
  'MAX_TOKENS',
  'tokens',
  'key',
];

describe('shapes found in review', () => {
  it.each([
    [
      'an unbracketed IPv6 address with a port',
      'client 2001:db8::1:54321 connected',
      'client [IP]:54321 connected',
    ],
    ['a full IPv6 address with a port', '2001:db8:85a3:8d3:1319:8a2e:370:7348:443', '[IP]:443'],
    ['a full IPv6 address after a letter', 'x2001:db8:85a3:8d3:1319:8a2e:370:7348', 'x[IP]'],
    // Nine groups: one too many, taken for a port.
    ['a full IPv6 address after a hex word', 'bad:2001:db8:85a3:8d3:1319:8a2e:370:7348', '[IP]:7348'],
    [
      'an IPv4 address after a URL escape',
      '/search?q=login%20from%20203.0.113.7%20blocked',
      '/search?q=login%20from%20[IP]%20blocked',
    ],
    ['an IPv4 address in an escaped quote', 'redirect=%2210.0.0.1%22', 'redirect=%22[IP]%22'],
  ])('%s becomes [IP]', (_, text, expected) => {
    expect(scrubText(text)).toBe(expected);
    expect(ipIn(text)).toBe(true);
  });

  it.each([
    ['a Cookie header line', 'Cookie: sid=abc123def456'],
    ['a JSESSIONID cookie', 'Cookie: JSESSIONID=ABC123DEF456'],
    ['a Set-Cookie header line', 'Set-Cookie: sid=abc123def456; HttpOnly'],
    ['escaped JSON inside a string', '{\\"password\\":\\"hunter2\\"}'],
  ])('%s is redacted', (_, text) => {
    expect(credentialIn(text)).toEqual(expect.any(String));
    expect(scrubText(text)).toBe(REDACTED);
  });

  it('refuses a metadata key that is a cookie header line', () => {
    expect(scrubMetadata({ context: { 'Cookie: sid=abc123def456': 1 } }).issues).toEqual([
      { path: 'metadata.context.[key]', message: expect.stringContaining('credential') },
    ]);
  });

  it.each([
    ['a millisecond timestamp', 1796629272313],
    ['a large byte count', 1099511627776],
  ])('keeps %s, though it may pass the Luhn check', (_, value) => {
    expect(scrubMetadata({ n: value, text: `at ${value}` }).value).toEqual({ n: value, text: `at ${value}` });
  });

  it('keeps a snowflake id in text', () => {
    expect(scrubText('message 1796629272313046528 deleted')).toBe('message 1796629272313046528 deleted');
  });
});

describe('what scrubMetadata reports', () => {
  it('says whether anything changed, so that an unchanged copy need not be measured again', () => {
    expect(scrubMetadata({ note: 'nothing to see', n: 1 }).changed).toBe(false);
    expect(scrubMetadata({ note: 'from 203.0.113.7' }).changed).toBe(true);
    expect(scrubMetadata({ password: 'x' }).changed).toBe(true);
    expect(scrubMetadata({ card: 4111111111111111 }).changed).toBe(true);
    expect(scrubMetadata({ 'Bearer abcdefgh.ijklmnop-qrstu': 1 }).changed).toBe(true);
  });
});

describe('secret keys', () => {
  it.each([...secretKeys, ...missedSecretKeys])('%s is redacted', (key) => {
    expect(isSecretKey(key)).toBe(true);
    expect(scrubbed({ [key]: 'hunter2' })).toEqual({ [key]: REDACTED });
  });

  it.each(harmlessKeys)('%s is kept', (key) => {
    expect(isSecretKey(key)).toBe(false);
    expect(scrubbed({ [key]: 'plain value' })).toEqual({ [key]: 'plain value' });
  });

  it.each([
    [
      'access token',
      ['accesstoken', 'access_token', 'AccessToken', 'ACCESS-TOKEN', 'ACCESSTOKEN', 'access.token'],
    ],
    ['client secret', ['clientsecret', 'client_secret', 'ClientSecret', 'CLIENT-SECRET']],
    ['ssh key', ['sshkey', 'ssh_key', 'SshKey', 'SSH-KEY', 'SSHKEY']],
    ['refresh tokens', ['refreshtokens', 'refresh_tokens', 'RefreshTokens', 'REFRESH-TOKENS']],
  ])('%s is one key whatever its separators and case', (_name, spellings) => {
    for (const key of spellings) expect(isSecretKey(key), key).toBe(true);
  });

  it.each([
    ['auth', true],
    ['basic_auth', true],
    ['BasicAuth', true],
    ['user_pass', true],
    ['db_pw', true],
    ['request_signature', true],
    ['sig', true],
    ['auth_method', false],
    ['auth_provider', false],
    ['pass_count', false],
    ['signature_algorithm', false],
    ['sig_alg', false],
  ])('the ambiguous word in %s names a secret only as the last word: %s', (key, secret) => {
    expect(isSecretKey(key)).toBe(secret);
  });

  it.each([
    ['refresh_tokens', true],
    ['access_tokens', true],
    ['api_tokens', true],
    ['refreshtokens', true],
    ['idTokens', true],
    ['tokens', false],
    ['max_tokens', false],
    ['input_tokens', false],
    ['total_tokens', false],
    ['user_tokens', false],
  ])('plural tokens in %s holds credentials only after a credential word: %s', (key, secret) => {
    expect(isSecretKey(key)).toBe(secret);
  });

  it.each(['passwords', 'api_keys', 'apiKeys'])('the plural %s is redacted like its singular', (key) => {
    expect(scrubbed({ [key]: ['hunter2'] })).toEqual({ [key]: REDACTED });
  });

  it('redacts the whole value under a secret key, whatever its type', () => {
    expect(
      scrubbed({ password: { nested: 'x' }, token: ['a', 'b'], pin: 1234, session: null, secret: true }),
    ).toEqual({ password: REDACTED, token: REDACTED, pin: REDACTED, session: REDACTED, secret: REDACTED });
  });

  it('redacts secret keys at any depth, including inside arrays', () => {
    const input = {
      request: {
        headers: { Authorization: 'Basic dXNlcjpwYXNz', 'content-type': 'application/json' },
        attempts: [{ user: 'ann', password: 'a' }, [{ deeper: { api_key: 'k' } }]],
      },
      context: { oauth: { client_secret: 's', client_id: 'c' } },
    };
    expect(scrubbed(input)).toEqual({
      request: {
        headers: { Authorization: REDACTED, 'content-type': 'application/json' },
        attempts: [{ user: 'ann', password: REDACTED }, [{ deeper: { api_key: REDACTED } }]],
      },
      context: { oauth: { client_secret: REDACTED, client_id: 'c' } },
    });
  });

  it('does not mutate its input', () => {
    const input = { password: 'p', nested: { token: 't', list: [{ apiKey: 'k' }, 'Bearer abcdefghijkl'] } };
    const before = structuredClone(input);
    const output = scrubbed(input);
    expect(input).toEqual(before);
    expect(output).not.toBe(input);
  });

  it('keeps numbers, booleans and null under harmless keys', () => {
    expect(scrubbed({ tokens_in: 1200, ok: true, gone: null, list: [1, 2] })).toEqual({
      tokens_in: 1200,
      ok: true,
      gone: null,
      list: [1, 2],
    });
  });

  it('judges a key the same however often it is seen, past the cache of verdicts', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5000; i++) {
        expect(scrubbed({ [`field_${i}`]: 'kept' })).toEqual({ [`field_${i}`]: 'kept' });
      }
      expect(scrubbed({ api_key: 'k', sessionId: 's' })).toEqual({ api_key: REDACTED, sessionId: REDACTED });
    }
  });
});

describe('credentials in text', () => {
  const jwt =
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

  it.each([
    ['a bearer token', 'Bearer abcdef0123456789', 'bearer token'],
    ['a lower-case bearer token', 'bearer abcdef0123456789', 'bearer token'],
    ['a bearer token inside text', 'sent header Authorization: Bearer abc.def-ghi_jkl', 'bearer token'],
    ['Basic credentials', 'Basic dXNlcjpwYXNz', 'Basic credentials'],
    ['the Token scheme', 'Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b', 'API token credentials'],
    ['the ApiKey scheme', 'Authorization: ApiKey 0f3c9a7e51d24b8c9e6a1d2f3b4c5d6e', 'API token credentials'],
    ['a JWT', jwt, 'JWT'],
    ['a JWT inside text', `token was ${jwt} yesterday`, 'JWT'],
    [
      'a PEM private key',
      '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----',
      'PEM private key',
    ],
    [
      'a PEM RSA private key',
      '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----',
      'PEM private key',
    ],
    [
      'a PEM OpenSSH private key',
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----',
      'PEM private key',
    ],
    [
      'a PEM encrypted private key',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----',
      'PEM private key',
    ],
    ['a password in a postgres URL', 'postgres://admin:pw@db.internal/app', 'password in a URL'],
    ['a password in an https URL', 'https://user:pass@host/', 'password in a URL'],
    ['a password in a libpq DSN', 'host=db user=app password=pw dbname=x', 'secret in key=value text'],
    ['a password in an ADO connection string', 'Server=x;User Id=a;Password=pw;', 'secret in key=value text'],
    ['a pwd in an ODBC connection string', 'Driver=x;Uid=a;Pwd=pw;', 'secret in key=value text'],
    ['an AWS secret access key, bare', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', 'AWS secret access key'],
    ['an AWS access key id', 'AKIAIOSFODNN7EXAMPLE', 'AWS access key id'],
    ['a Stripe secret key', 'sk_live_abcdefghijklmnop', 'Stripe secret key'],
    ['a GitHub token', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'GitHub token'],
    ['a card number', '4111111111111111', 'card number'],
    ['a card number with spaces', '4111 1111 1111 1111', 'card number'],
    ['a card number with dashes', '4111-1111-1111-1111', 'card number'],
    ['a card number with dots', '4111.1111.1111.1111', 'card number'],
    ['a card number inside text', 'paid with 5500 0000 0000 0004 today', 'card number'],
    ['a 15-digit Amex number', '3782 822463 10005', 'card number'],
    ['a card number preceded by another group of digits', 'order 2024 4111 1111 1111 1111', 'card number'],
  ])('%s is redacted', (_what, value, kind) => {
    expect(credentialIn(value)).toBe(kind);
    expect(scrubText(value)).toBe(REDACTED);
    expect(scrubbed({ note: value })).toEqual({ note: REDACTED });
  });

  it('takes an AWS secret access key under a neutral key', () => {
    expect(scrubbed({ note: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' })).toEqual({ note: REDACTED });
  });

  it('skips card numbers when told to', () => {
    expect(credentialIn('4111111111111111', { cards: false })).toBeUndefined();
    expect(credentialIn('Bearer abcdef0123456789', { cards: false })).toBe('bearer token');
  });

  it('for identifiers, takes only card numbers printed in groups', () => {
    for (const id of ['4111111111111111', 'order-4111111111111111', '378282246310005']) {
      expect(credentialIn(id, { cards: 'grouped' }), id).toBeUndefined();
    }
    for (const card of [
      '4111 1111 1111 1111',
      '4111-1111-1111-1111',
      '5105.1051.0510.5100',
      '3782 822463 10005',
    ]) {
      expect(credentialIn(card, { cards: 'grouped' }), card).toBe('card number');
    }
  });

  it.each([
    ['a 16-digit number that fails Luhn', '4111111111111112'],
    ['a 16-digit number with spaces that fails Luhn', '4111 1111 1111 1112'],
    ['a decimal with 15 digits', '3.14159265358979'],
    ['a short number', '12345678'],
    ['a public certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'],
    ['a public key', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----'],
    ['an ordinary sentence', 'the user changed the plan to pro'],
    ['a UUID', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'],
    ['an ISO timestamp', '2026-01-31T12:00:00.000Z'],
    ['prose about basic authentication', 'login used basic authentication'],
    ['prose about a token', 'the token expired'],
    ['a header line saying a token expired', 'token: expired'],
    ['a placeholder password', 'password=[REDACTED]'],
    ['a masked password', 'Password: ********'],
    ['a URL with a user and no password', 'ssh://git@github.com/org/repo.git'],
    ['a Stripe publishable key (public by design)', 'pk_live_51H8aBcDeFgHiJkLmNoPqRsTuV'],
    ['a 40-character path', 'src/Components/Button2/ButtonGroupIcon99'],
  ])('%s is kept', (_what, value) => {
    expect(credentialIn(value)).toBeUndefined();
    expect(scrubText(value)).toBe(value);
  });

  it('redacts credentials at any depth, including inside arrays', () => {
    expect(scrubbed({ a: [{ b: ['ok', jwt] }], c: { d: { e: '4111 1111 1111 1111' } } })).toEqual({
      a: [{ b: ['ok', REDACTED] }],
      c: { d: { e: REDACTED } },
    });
  });

  it('redacts a card number stored as a JSON number', () => {
    expect(scrubbed({ reference: 4111111111111111 })).toEqual({ reference: REDACTED });
  });

  it('keeps a number that is not a card number', () => {
    expect(scrubbed({ amount_minor: 1999, big: 4111111111111112 })).toEqual({
      amount_minor: 1999,
      big: 4111111111111112,
    });
  });
});

describe('IP addresses in text', () => {
  it.each([
    ['an address inside a sentence', 'login from 203.0.113.91 blocked', 'login from [IP] blocked'],
    ['an address with a port', '203.0.113.92:51234', '[IP]:51234'],
    ['a bracketed IPv6 address with a port', '[2001:db8::92]:443', '[IP]:443'],
    ['an X-Forwarded-For header', 'X-Forwarded-For: 203.0.113.93', 'X-Forwarded-For: [IP]'],
    ['a Forwarded header', 'for=203.0.113.94', 'for=[IP]'],
    [
      'a Forwarded header with IPv6',
      'Forwarded: for="[2001:db8:cafe::17]:4711"',
      'Forwarded: for="[IP]:4711"',
    ],
    ['an address alone', '203.0.113.7', '[IP]'],
    ['a forwarded-for list', '203.0.113.7, 10.0.0.1', '[IP], [IP]'],
    ['an IPv6 address', '2001:db8::1', '[IP]'],
    ['a bracketed IPv6 address', '[2001:db8::1]', '[IP]'],
    ['an IPv6 address with a zone', 'fe80::1%eth0', '[IP]'],
    ['an IPv4-mapped IPv6 address', '::ffff:192.0.2.1', '[IP]'],
    ['a list separated by spaces only', '192.0.2.1 192.0.2.2', '[IP] [IP]'],
    ['a list with a bracketed IPv6 address', '203.0.113.7,[2001:db8::2]', '[IP],[IP]'],
    ['IPv6 glued to a header name', 'X-Forwarded-For:2001:db8::1', 'X-Forwarded-For:[IP]'],
    ['IPv6 at the end of a sentence', 'blocked 2001:db8::1.', 'blocked [IP].'],
    ['an address in a URL', 'http://[::1]:8080/health', 'http://[IP]:8080/health'],
  ])('%s becomes [IP]', (_what, text, expected) => {
    expect(ipIn(text)).toBe(true);
    expect(scrubText(text)).toBe(expected);
  });

  it.each([
    ['a version with three parts', 'v1.2.3'],
    ['a five-part dotted number', '1.2.3.4.5'],
    ['a Windows build number', '10.0.19041.1'],
    ['an octet over 255', '256.1.1.1'],
    ['a browser version that names a network', 'Chrome/126.0.0.0 Safari/537.36'],
    ['a time', '12:30:45'],
    ['a time with milliseconds', 'at 12:30:45.123'],
    ['a time glued to am', '12:30:45am'],
    ['a pair with one colon', 'a:b'],
    ['hex words around two colons without a digit', 'Cafe::Bad'],
    ['a C++ name', 'std::vector<int>'],
    ['a MAC address', '00:1a:2b:3c:4d:5e'],
    ['an ISO timestamp', '2026-01-31T12:00:00.000Z'],
    ['a host and port', 'localhost:3000'],
  ])('%s is kept', (_what, text) => {
    expect(ipIn(text)).toBe(false);
    expect(scrubText(text)).toBe(text);
  });

  it('replaces IP addresses in metadata values at any depth', () => {
    expect(
      scrubbed({
        context: {
          client: '203.0.113.7',
          forwarded: '203.0.113.7, 10.0.0.1',
          v6: '2001:db8::1',
          note: 'v1.2.3',
        },
      }),
    ).toEqual({ context: { client: '[IP]', forwarded: '[IP], [IP]', v6: '[IP]', note: 'v1.2.3' } });
  });
});

describe('keys that hold a credential or an IP address', () => {
  it.each([
    ['a bearer token', 'Bearer abcdef0123456789', 'bearer token'],
    ['a JWT', 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTYifQ.c2lnbmF0dXJlc2ln', 'JWT'],
    ['a GitHub token', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'GitHub token'],
    ['a card number', '4111 1111 1111 1111', 'card number'],
  ])('a key that is %s is reported without the key, and left out', (_what, key, kind) => {
    const result = scrubMetadata({ context: { [key]: 'x', kept: 'y' } });
    expect(result.value).toEqual({ context: { kept: 'y' } });
    expect(result.issues).toEqual([
      {
        path: 'metadata.context.[key]',
        message: `is a key that holds a credential (${kind}); credentials are never stored`,
      },
    ]);
    expect(JSON.stringify(result)).not.toContain(key);
  });

  it('reports a key that holds an IP address', () => {
    const result = scrubMetadata({ hits: [{ '203.0.113.9': 3 }] });
    expect(result.value).toEqual({ hits: [{}] });
    expect(result.issues).toEqual([
      {
        path: 'metadata.hits.0.[key]',
        message: 'is a key that holds an IP address; raw IP addresses are never stored',
      },
    ]);
  });

  it('checks a secret-named key for a credential before redacting its value', () => {
    const result = scrubMetadata({ 'password Bearer abcdef0123456789': 'x' });
    expect(result.value).toEqual({});
    expect(result.issues).toHaveLength(1);
  });

  it('reports the same problem in one object once', () => {
    const result = scrubMetadata({ '203.0.113.1': 1, '203.0.113.2': 2 });
    expect(result.issues).toHaveLength(1);
  });

  it('reports at most ten problems, as the caps do', () => {
    const many = Object.fromEntries(
      Array.from({ length: 30 }, (_, i) => [`n${i}`, { [`203.0.113.${i}`]: 1 }]),
    );
    expect(scrubMetadata(many).issues).toHaveLength(10);
  });

  it('does not report a key under a secret-named key: it is redacted with its value', () => {
    expect(scrubMetadata({ password: { '203.0.113.9': 'x' } })).toEqual({
      value: { password: REDACTED },
      issues: [],
      changed: true,
    });
  });

  it('has no issues for ordinary metadata', () => {
    expect(scrubMetadata({ method: 'password', mfa: true, context: { path: '/login' } }).issues).toEqual([]);
  });
});

describe('hostile input', () => {
  // Each of these once cost a scan per start position or per window; the answers must
  // stay right. The scans are linear by construction (see card-numbers.ts and the
  // comments on each pattern); timings are not asserted here.
  it.each([
    ['single digits separated by spaces', '1 '.repeat(450)],
    ['single digits separated by spaces, longer', '1 '.repeat(1024)],
    ['single digits separated by dashes', '1-'.repeat(1024)],
    ['single digits separated by dots', '1.'.repeat(1000)],
    ['single digits separated by colons', '1:'.repeat(1000)],
    ['a long digit run', '7'.repeat(2048)],
    ['a long run of colons', ':'.repeat(2048)],
    ['alternating dots and colons', '1.1:'.repeat(500)],
    ['hex words and colons', 'ab:'.repeat(680)],
    ['repeated JWT headers', 'eyJ'.repeat(680)],
    ['repeated token prefixes', 'sk-ant-'.repeat(290)],
    ['repeated GitHub prefixes', 'ghp_'.repeat(500)],
    ['repeated PEM headers', `-----BEGIN ${'PRIVATE KEY '.repeat(150)}`],
    ['repeated URL schemes', 'a://b:'.repeat(340)],
    ['repeated scheme names', 'Bearer '.repeat(290)],
    ['repeated key-value separators', 'a='.repeat(1000)],
    ['dashed words', 'a-'.repeat(1000)],
  ])('%s are kept as they are', (_what, text) => {
    expect(scrubText(text)).toBe(text);
  });

  it('finds a card number at the end of a long run of single digits', () => {
    expect(scrubText(`${'1 '.repeat(450)}4111 1111 1111 1111`)).toBe(REDACTED);
  });

  it('finds an IP address after a long run of dotted digits', () => {
    expect(scrubText(`${'1.'.repeat(1000)} 203.0.113.9`)).toBe(`${'1.'.repeat(1000)} [IP]`);
  });
});
