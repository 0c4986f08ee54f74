import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { IpHasher, normalizeIp } from '../../src/privacy/ip-hash.js';
import { deriveKeys } from '../../src/privacy/keys.js';

describe('normalizeIp', () => {
  it.each([
    ['203.0.113.7', '203.0.113.7'],
    ['  203.0.113.7 ', '203.0.113.7'],
    ['2001:DB8::1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['FE80::1%25en0', 'fe80::1'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::FFFF:cb00:7107', '203.0.113.7'],
    ['0:0:0:0:0:ffff:203.0.113.7', '203.0.113.7'],
  ])('%s is normalised to %s', (raw, expected) => {
    expect(normalizeIp(raw)).toBe(expected);
  });

  it('gives an IPv4 address as its four numbers, and refuses one spelled with leading zeros', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(255), fc.nat(2)), { minLength: 4, maxLength: 4 }), (parts) => {
        const spelled = parts.map(([n, zeros]) => `${'0'.repeat(zeros)}${n}`).join('.');
        const numbers = parts.map(([n]) => n).join('.');
        expect(normalizeIp(spelled)).toBe(spelled === numbers ? numbers : undefined);
      }),
    );
  });

  it('treats an IPv4-mapped IPv6 address as the IPv4 address', () => {
    expect(normalizeIp('::ffff:10.0.0.1')).toBe(normalizeIp('10.0.0.1'));
  });

  it('keeps different addresses different', () => {
    expect(normalizeIp('2001:db8::1')).not.toBe(normalizeIp('2001:db8::2'));
    expect(normalizeIp('::ffff:10.0.0.1')).not.toBe(normalizeIp('::10.0.0.1'));
  });

  it.each([
    '',
    'localhost',
    'example.com',
    '256.1.1.1',
    '1.2.3',
    '1.2.3.4.5',
    '2001:db8::g',
    '2001:db8:::1',
    '[::1]',
    '1.2.3.4:80',
    '%eth0',
  ])('%j is not an IP address', (raw) => {
    expect(normalizeIp(raw)).toBeUndefined();
  });
});

describe('IP hashes', () => {
  const hashIp = (ip: string, hashKey: Buffer) => new IpHasher(hashKey).hash(ip) as string;
  const key = deriveKeys('a'.repeat(32)).ipHash;
  const otherKey = deriveKeys('b'.repeat(32)).ipHash;

  it('is deterministic for one key', () => {
    expect(hashIp('203.0.113.7', key)).toBe(hashIp('203.0.113.7', key));
    expect(hashIp('203.0.113.7', key)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('differs across keys', () => {
    expect(hashIp('203.0.113.7', key)).not.toBe(hashIp('203.0.113.7', otherKey));
  });

  it('differs across addresses', () => {
    expect(hashIp('203.0.113.7', key)).not.toBe(hashIp('203.0.113.8', key));
  });

  it('hashes every spelling of one address alike', () => {
    const spellings = ['::ffff:203.0.113.7', '203.0.113.7', ' 203.0.113.7', '::FFFF:CB00:7107'];
    const hashes = spellings.map((raw) => hashIp(normalizeIp(raw) as string, key));
    expect(new Set(hashes).size).toBe(1);
  });

  it('never contains the raw address', () => {
    for (const ip of ['203.0.113.7', '2001:db8::1', '10.0.0.1']) {
      const hash = hashIp(ip, key);
      expect(hash).not.toContain(ip);
      expect(hash).not.toContain(ip.replace(/[.:]/g, ''));
    }
  });
});

/** HMAC-SHA256 as node:crypto computes it: what IpHasher's pads must give. */
function nodeHmac(normalizedIp: string, key: Buffer): string {
  return createHmac('sha256', key).update(normalizedIp).digest('hex');
}

describe('IpHasher', () => {
  const key = deriveKeys('a'.repeat(32)).ipHash;

  it("gives node:crypto's HMAC of the normalised address, every spelling alike, whether remembered or not", () => {
    const hasher = new IpHasher(key);
    const spellings = ['::ffff:203.0.113.7', '203.0.113.7', ' 203.0.113.7', '::FFFF:CB00:7107'];
    for (let round = 0; round < 2; round++) {
      for (const raw of spellings) expect(hasher.hash(raw)).toBe(nodeHmac('203.0.113.7', key));
    }
  });

  it("gives node:crypto's HMAC, for keys shorter and longer than a block", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 130, size: 'max' }),
        fc.ipV4(),
        fc.ipV6(),
        (keyBytes, ipv4, ipv6) => {
          const anyKey = Buffer.from(keyBytes);
          const hasher = new IpHasher(anyKey);
          expect(hasher.hash(ipv4)).toBe(nodeHmac(normalizeIp(ipv4) as string, anyKey));
          expect(hasher.hash(ipv6)).toBe(nodeHmac(normalizeIp(ipv6) as string, anyKey));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('keeps its key: another hasher of another key gives other hashes', () => {
    const other = new IpHasher(deriveKeys('b'.repeat(32)).ipHash);
    expect(new IpHasher(key).hash('203.0.113.7')).not.toBe(other.hash('203.0.113.7'));
  });

  it('refuses what is not an address, the second time too', () => {
    const hasher = new IpHasher(key);
    expect(hasher.hash('not-an-ip')).toBeUndefined();
    expect(hasher.hash('not-an-ip')).toBeUndefined();
  });

  it('stays right past the addresses it remembers', () => {
    const hasher = new IpHasher(key);
    const addresses = Array.from({ length: 3000 }, (_, index) => `10.${index >> 8}.${index & 255}.1`);
    for (const address of [...addresses, ...addresses.slice(0, 10)]) {
      expect(hasher.hash(address)).toBe(nodeHmac(address, key));
    }
  });
});
