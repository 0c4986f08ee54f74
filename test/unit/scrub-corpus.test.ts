import { describe, expect, it } from 'vitest';
import { credentialIn, ipIn, REDACTED, scrubMetadata, scrubText } from '../../src/privacy/scrub.js';
import { secretCorpus as corpus } from '../helpers/secret-corpus.js';

const credentials = corpus.filter((entry) => entry.kind === 'credential');
const addresses = corpus.filter((entry) => entry.kind === 'ip');

/** How a value appears in JSON text, so that a PEM's newlines are looked for escaped. */
const asJson = (text: string) => JSON.stringify(text).slice(1, -1);

describe('the secret corpus', () => {
  it('holds at least 100 secret shapes, each with a source', () => {
    expect(credentials.length).toBeGreaterThanOrEqual(100);
    for (const entry of corpus)
      expect(entry.source, entry.name).toMatch(/^(gitleaks rule |trufflehog detector |RFC |issue 17)/);
  });

  describe.each(credentials)('$name ($source)', ({ value }) => {
    it('is named by credentialIn, bare and inside longer text', () => {
      expect(credentialIn(value)).toEqual(expect.any(String));
      expect(credentialIn(`seen ${value} in the log`)).toEqual(expect.any(String));
    });

    it('is redacted as a top-level, nested or embedded metadata value', () => {
      const result = scrubMetadata({
        note: value,
        context: { request: { headers: [{ value }] } },
        line: `2026-01-31 denied: ${value} (retry)`,
      });
      expect(result.value).toEqual({
        note: REDACTED,
        context: { request: { headers: [{ value: REDACTED }] } },
        line: REDACTED,
      });
      expect(result.issues).toEqual([]);
    });

    it('is reported, never echoed, when used as a key', () => {
      const result = scrubMetadata({ context: { [value]: true } });
      expect(result.value).toEqual({ context: {} });
      expect(result.issues).toEqual([
        {
          path: 'metadata.context.[key]',
          message: expect.stringMatching(/^is a key that holds a credential \(/),
        },
      ]);
      expect(JSON.stringify(result)).not.toContain(asJson(value));
    });
  });

  describe.each(addresses)('$name ($source)', ({ value, address }) => {
    it('becomes [IP] wherever it is, and is not taken for a credential', () => {
      expect(ipIn(value)).toBe(true);
      expect(credentialIn(value)).toBeUndefined();
      for (const text of [value, `seen ${value} in the log`]) {
        const out = scrubText(text);
        expect(out).toContain('[IP]');
        expect(out).not.toContain(address);
        expect(ipIn(out)).toBe(false);
      }
    });

    it('is reported when used as a key', () => {
      const result = scrubMetadata({ [value]: 1 });
      expect(result.value).toEqual({});
      expect(result.issues).toEqual([
        {
          path: 'metadata.[key]',
          message: 'is a key that holds an IP address; raw IP addresses are never stored',
        },
      ]);
    });
  });
});

/** Strings an audit record holds every day: none may be redacted or changed. */
const harmlessValues = [
  'the user changed the plan to pro',
  'user clicked the button',
  'login used basic authentication',
  'bearer of bad news',
  'the token was revoked',
  'password reset requested',
  'Token of appreciation',
  'Digest of the week',
  'negotiate the contract',
  'Bot 2 joined the channel',
  '0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  '550e8400-e29b-41d4-a716-446655440000',
  '018f3e2a-7b4c-7d21-9a3e-5f6b7c8d9e0f',
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  'da39a3ee5e6b4b0d3255bfef95601890afd80709',
  'sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg==',
  '2026-01-31T12:00:00.000Z',
  '2026-01-31 12:30:45+01:00',
  'Mon, 31 Jan 2026 12:00:00 GMT',
  '12:30:45',
  'ratio 16:9',
  '1.2.3',
  'v1.2.3',
  '1.2.3-beta.4',
  'node v20.19.43',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'System.Runtime, Version=4.0.0.0, Culture=neutral',
  '/app/projects/17/documents',
  'src/components/Button/Button.test.tsx',
  'C:\\Users\\ann\\Documents\\report.pdf',
  'https://example.com/a?b=c',
  'https://example.com/callback?code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&state=xyz',
  'http://localhost:8080/',
  'localhost:3000',
  'ann@example.com',
  'mailto:ann@example.com',
  'git@github.com:org/repo.git',
  'ssh://git@github.com/org/repo.git',
  '42',
  '12345678',
  'order 1234567890123',
  'invoice 4111111111111112',
  'amount 1999.00 EUR',
  '+1 415 555 2671',
  '3.14159265358979',
  'aGVsbG8gd29ybGQ=',
  'VGhlIHF1aWNrIGJyb3duIGZveCBqdW1wcyBvdmVy',
  'std::vector<int>',
  'Foo::Bar::baz',
  'a:b',
  '00:1a:2b:3c:4d:5e',
  'user_id=u_123 action=login',
  'auth_method=password',
  'max_tokens=4096',
  'token: expired',
  'password: required',
  'session: 2 hours',
  'name: Ann Example',
  'API key rotation policy',
  'The ApiKey header is missing',
  'sk-short',
  'ghp_short',
  'AKIA is a prefix',
  '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
  '-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----',
  'pk_live_51H8aBcDeFgHiJkLmNoPqRsTuV',
  '10.0.0.0/8 is private',
];

describe('harmless text', () => {
  it.each(harmlessValues)('%s is kept', (value) => {
    expect(credentialIn(value)).toBeUndefined();
    expect(ipIn(value)).toBe(false);
    expect(scrubMetadata({ note: value })).toEqual({ value: { note: value }, issues: [], changed: false });
    // As a key it may name a secret (`password reset requested`), but it is no credential.
    const asKey = scrubMetadata({ [value]: 1 });
    expect(Object.keys(asKey.value as object)).toEqual([value]);
    expect(asKey.issues).toEqual([]);
  });

  // Accepted false positives, kept visible here rather than hidden.
  it('takes a random 40-character base64 string with a slash for an AWS secret key, even with no context', () => {
    // Such a string cannot be told from an AWS secret access key; in an audit record it
    // is far more often a credential than anything else.
    expect(credentialIn('q8ZrT1vXyB3nLmW5pK7sJ9dF2gH4jA6cE0uI/oPb')).toBe('AWS secret access key');
  });

  it('takes a dotted quad of small numbers for an IP address, whatever it means', () => {
    expect(scrubText('upgraded to 1.2.3.4')).toBe('upgraded to [IP]');
  });

  it('takes a 13–19 digit number that passes Luhn for a card number, even when it is an id', () => {
    expect(scrubText('order 4000000000000002')).toBe(REDACTED);
  });
});
