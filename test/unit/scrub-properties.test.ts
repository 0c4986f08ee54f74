import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { credentialIn, ipIn, isSecretKey, scrubMetadata, scrubText } from '../../src/privacy/scrub.js';
import { secretCorpus as corpus } from '../helpers/secret-corpus.js';

/** `::1` is too short to tell the planted address from one that random text spells. */
const canaries = corpus.filter((entry) => (entry.address ?? entry.value).length >= 8);

/**
 * Text that often comes close to a secret or an address: arbitrary strings mixed with
 * the pieces the patterns look for, so that the properties meet near misses, not only
 * random noise.
 */
const fragments = [
  '198.18.7.1',
  '2001:db8:ff::1',
  '::ffff:',
  '[',
  ']',
  ':443',
  '%eth0',
  '.',
  ':',
  '::',
  '1',
  '255',
  ' ',
  '-',
  '4111',
  '1111 ',
  'Bearer ',
  'Basic ',
  'Token ',
  'password=',
  'token: ',
  '://',
  'user:',
  '@',
  'eyJ',
  'AKIA',
  'ghp_',
  '-----BEGIN ',
  'PRIVATE KEY-----',
  'aws ',
];
const textish = fc
  .array(fc.oneof(fc.string(), fc.constantFrom(...fragments)), { maxLength: 8 })
  .map((parts) => parts.join(''));

const jsonLike = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    textish,
    fc.integer(),
    fc.constantFrom(4111111111111111, 4111111111111112, 1e12, -1, 0.5),
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(textish, tie('value'), { maxKeys: 4 }),
  ),
}));
const metadata = fc.dictionary(textish, jsonLike.value, { maxKeys: 6 });

/** How a value appears in JSON text, so that a PEM's newlines are looked for escaped. */
const asJson = (text: string) => JSON.stringify(text).slice(1, -1);

/**
 * Puts `text` somewhere in `value`: into the `at`-th string met, or as a new entry.
 * Says whether it went under a secret-named key, whose whole value is redacted unread.
 */
function plant(value: unknown, text: string, at: number, asKey: boolean) {
  let seen = 0;
  let planted = false;
  let underSecretKey = false;
  let secretDepth = 0;
  const visit = (node: unknown): unknown => {
    if (typeof node === 'string' && !asKey && !planted && seen++ === at) {
      planted = true;
      underSecretKey = secretDepth > 0;
      const cut = at % (node.length + 1);
      return `${node.slice(0, cut)} ${text} ${node.slice(cut)}`;
    }
    if (Array.isArray(node)) return node.map(visit);
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(node)) {
        const secret = isSecretKey(key);
        if (secret) secretDepth++;
        out[key] = visit(inner);
        if (secret) secretDepth--;
      }
      if (!planted && seen++ === at) {
        planted = true;
        underSecretKey = secretDepth > 0;
        if (asKey) out[`k ${text} k`] = 1;
        else out.planted = `before ${text} after`;
      }
      return out;
    }
    return node;
  };
  const result = visit(value) as Record<string, unknown>;
  if (!planted) {
    if (asKey) result[`${text}`] = 1;
    else result.planted = text;
  }
  return { metadata: result, underSecretKey };
}

describe('scrubbing properties', () => {
  it('is idempotent: scrubbing a scrubbed copy changes nothing and finds no issue', () => {
    fc.assert(
      fc.property(metadata, (input) => {
        const first = scrubMetadata(input);
        const second = scrubMetadata(first.value);
        expect(second.value).toEqual(first.value);
        expect(second.issues).toEqual([]);
      }),
      { numRuns: 500 },
    );
  });

  it('never lets a planted credential or IP address through, at any depth or position', () => {
    fc.assert(
      fc.property(
        metadata,
        fc.constantFrom(...canaries),
        fc.nat({ max: 50 }),
        fc.boolean(),
        (input, canary, at, asKey) => {
          const planted = plant(input, canary.value, at, asKey);
          const result = scrubMetadata(planted.metadata);
          const stored = JSON.stringify(result.value);
          expect(stored).not.toContain(asJson(canary.address ?? canary.value));
          // A key under a secret-named key is redacted with its value, never read.
          if (asKey && !planted.underSecretKey) expect(result.issues.length).toBeGreaterThan(0);
          // Issues never echo what they report.
          expect(JSON.stringify(result.issues)).not.toContain(asJson(canary.value));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('leaves text with no digits unchanged', () => {
    // Every credential that needs no digit has a fixed frame (a scheme name, `://…@`,
    // `password=`, a PEM header); random text does not build one, and an IP address
    // always has a digit.
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }).filter((text) => !/[0-9]/.test(text)),
        (text) => {
          expect(scrubText(text)).toBe(text);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('leaves digit-free text of hex letters and separators unchanged', () => {
    // The characters of IPv6 addresses, times, MAC addresses and key=value text:
    // without a digit none of them is an address or a credential.
    const near = fc.string({
      unit: fc.constantFrom(...'abcdefABCDEF:.-=/@[]%, '.split('')),
      maxLength: 120,
    });
    fc.assert(
      fc.property(near, (text) => {
        expect(ipIn(text)).toBe(false);
        expect(credentialIn(text)).toBeUndefined();
        expect(scrubText(text)).toBe(text);
      }),
      { numRuns: 2000 },
    );
  });

  it('leaves no IP address behind in any text it keeps', () => {
    fc.assert(
      fc.property(textish, (text) => {
        expect(ipIn(scrubText(text))).toBe(false);
      }),
      { numRuns: 2000 },
    );
  });

  it('never takes a UUID, bare or in an id, for a secret: ids are everywhere in audit events', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.constantFrom('', 'req_', 'tenant-', 'user:', 'doc/'), (uuid, prefix) => {
        const id = `${prefix}${uuid}`;
        expect(credentialIn(id)).toBeUndefined();
        expect(ipIn(id)).toBe(false);
        expect(scrubText(`request ${id} done`)).toBe(`request ${id} done`);
      }),
      { numRuns: 20_000 },
    );
  });
});
