import { describe, expect, it } from 'vitest';
import { isSecretKey, isSecretValue, REDACTED, scrubSecrets } from '../../src/privacy/scrub.js';

const secretKeys = [
  'password',
  'Password',
  'PASSWORD',
  'new_password',
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
];

const harmlessKeys = [
  'tokens_in',
  'tokens_out',
  'max_tokens',
  'author',
  'description',
  'method',
  'reason',
  'user_id',
  'keyboard',
  'keys_count',
  'passage',
  'tokenizer',
  'spinner',
  'impression',
];

describe('secret keys', () => {
  it.each(secretKeys)('%s is redacted', (key) => {
    expect(isSecretKey(key)).toBe(true);
    expect(scrubSecrets({ [key]: 'hunter2' })).toEqual({ [key]: REDACTED });
  });

  it.each(harmlessKeys)('%s is kept', (key) => {
    expect(isSecretKey(key)).toBe(false);
    expect(scrubSecrets({ [key]: 'plain value' })).toEqual({ [key]: 'plain value' });
  });

  it.each(['passwords', 'api_keys', 'apiKeys'])('the plural %s is redacted like its singular', (key) => {
    expect(scrubSecrets({ [key]: ['hunter2'] })).toEqual({ [key]: REDACTED });
  });

  it('redacts the whole value under a secret key, whatever its type', () => {
    expect(
      scrubSecrets({ password: { nested: 'x' }, token: ['a', 'b'], pin: 1234, session: null, secret: true }),
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
    expect(scrubSecrets(input)).toEqual({
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
    const output = scrubSecrets(input);
    expect(input).toEqual(before);
    expect(output).not.toBe(input);
  });

  it('keeps numbers, booleans and null under harmless keys', () => {
    expect(scrubSecrets({ tokens_in: 1200, ok: true, gone: null, list: [1, 2] })).toEqual({
      tokens_in: 1200,
      ok: true,
      gone: null,
      list: [1, 2],
    });
  });
});

describe('secret values', () => {
  const jwt =
    'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';

  it.each([
    ['a bearer token', 'Bearer abcdef0123456789'],
    ['a lower-case bearer token', 'bearer abcdef0123456789'],
    ['a bearer token inside text', 'sent header Authorization: Bearer abc.def-ghi_jkl'],
    ['a JWT', jwt],
    ['a JWT inside text', `token was ${jwt} yesterday`],
    ['a PEM private key', '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----'],
    ['a PEM RSA private key', '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----'],
    [
      'a PEM OpenSSH private key',
      '-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----',
    ],
    [
      'a PEM encrypted private key',
      '-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIF\n-----END ENCRYPTED PRIVATE KEY-----',
    ],
    ['a card number', '4111111111111111'],
    ['a card number with spaces', '4111 1111 1111 1111'],
    ['a card number with dashes', '4111-1111-1111-1111'],
    ['a card number inside text', 'paid with 5500 0000 0000 0004 today'],
    ['a 15-digit Amex number', '3782 822463 10005'],
    ['a Stripe secret key', 'sk_live_abcdefghijklmnop'],
    ['a GitHub token', 'ghp_abcdefghijklmnopqrstuvwxyz0123456789'],
    ['an AWS access key id', 'AKIAIOSFODNN7EXAMPLE'],
  ])('%s is redacted', (_what, value) => {
    expect(isSecretValue(value)).toBe(true);
    expect(scrubSecrets({ note: value })).toEqual({ note: REDACTED });
  });

  it.each([
    ['a 16-digit number that fails Luhn', '4111111111111112'],
    ['a 16-digit number with spaces that fails Luhn', '4111 1111 1111 1112'],
    ['a short number', '12345678'],
    ['a public certificate', '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----'],
    ['a public key', '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----'],
    ['an ordinary sentence', 'the user changed the plan to pro'],
    ['a UUID', '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b'],
    ['an ISO timestamp', '2026-01-31T12:00:00.000Z'],
    ['prose about basic authentication', 'login used basic authentication'],
  ])('%s is kept', (_what, value) => {
    expect(isSecretValue(value)).toBe(false);
    expect(scrubSecrets({ note: value })).toEqual({ note: value });
  });

  it('redacts secret values at any depth, including inside arrays', () => {
    expect(scrubSecrets({ a: [{ b: ['ok', jwt] }], c: { d: { e: '4111 1111 1111 1111' } } })).toEqual({
      a: [{ b: ['ok', REDACTED] }],
      c: { d: { e: REDACTED } },
    });
  });

  it('redacts raw IP addresses and forwarded-for lists copied into metadata', () => {
    expect(
      scrubSecrets({
        context: {
          client: '203.0.113.7',
          forwarded: '203.0.113.7, 10.0.0.1',
          v6: '2001:db8::1',
          note: 'v1.2.3',
        },
      }),
    ).toEqual({ context: { client: REDACTED, forwarded: REDACTED, v6: REDACTED, note: 'v1.2.3' } });
  });

  it.each([
    ['a bracketed IPv6 address', '[2001:db8::1]'],
    ['an IPv6 address with a zone', 'fe80::1%eth0'],
    ['an IPv4-mapped IPv6 address', '::ffff:192.0.2.1'],
    ['a list separated by spaces only', '192.0.2.1 192.0.2.2'],
    ['a list with a bracketed IPv6 address', '203.0.113.7,[2001:db8::2]'],
  ])('%s is redacted', (_what, value) => {
    expect(isSecretValue(value)).toBe(true);
  });

  it('judges a key the same however often it is seen, past the cache of verdicts', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5000; i++) expect(isSecretKey(`field_${i}`)).toBe(false);
      expect(isSecretKey('api_key')).toBe(true);
      expect(isSecretKey('sessionId')).toBe(true);
    }
  });

  it('redacts a card number preceded by another group of digits', () => {
    expect(isSecretValue('order 2024 4111 1111 1111 1111')).toBe(true);
  });

  it('redacts a card number stored as a JSON number', () => {
    expect(scrubSecrets({ reference: 4111111111111111 })).toEqual({ reference: REDACTED });
  });

  it('keeps a number that is not a card number', () => {
    expect(scrubSecrets({ amount_minor: 1999, big: 4111111111111112 })).toEqual({
      amount_minor: 1999,
      big: 4111111111111112,
    });
  });
});
