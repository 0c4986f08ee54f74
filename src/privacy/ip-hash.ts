import { hash } from 'node:crypto';
import { isIP } from 'node:net';

/**
 * The canonical text of an IP address, so that every spelling of one address hashes
 * alike: IPv6 compressed and lower case, IPv4-mapped IPv6 as plain IPv4, no zone id.
 * Returns undefined when the text is not an IP address.
 */
export function normalizeIp(raw: string): string | undefined {
  const text = raw.trim();
  const withoutZone = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  const version = isIP(withoutZone);
  // isIP takes IPv4 in dotted decimal without leading zeros only: already canonical.
  if (version === 4) return withoutZone;
  if (version !== 6) return undefined;
  // The WHATWG URL parser prints IPv6 in the RFC 5952 canonical form.
  const canonical = new URL(`http://[${withoutZone}]/`).hostname.slice(1, -1);
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(canonical);
  if (mapped?.[1] && mapped[2]) {
    const high = Number.parseInt(mapped[1], 16);
    const low = Number.parseInt(mapped[2], 16);
    return [high >> 8, high & 255, low >> 8, low & 255].join('.');
  }
  return canonical;
}

/** Addresses whose hash is remembered: a server sees the same few clients again and again. */
const rememberedAddresses = 1024;

/**
 * Keyed HMAC-SHA256 of the normalised address, hex (the raw address is never stored),
 * under one key, remembering the hashes of the latest addresses as given: a
 * normalise and an HMAC cost more than the rest of recording a read.
 */
export class IpHasher {
  readonly #pads: HmacPads;
  readonly #hashes = new Map<string, string>();

  constructor(key: Buffer) {
    this.#pads = hmacPads(key);
  }

  /** The hash of `raw`, or undefined when it is not an IP address. */
  hash(raw: string): string | undefined {
    const remembered = this.#hashes.get(raw);
    if (remembered !== undefined) return remembered;
    const normalized = normalizeIp(raw);
    if (normalized === undefined) return undefined;
    const hashed = hmacSha256Hex(this.#pads, normalized);
    if (this.#hashes.size >= rememberedAddresses)
      this.#hashes.delete(this.#hashes.keys().next().value as string);
    this.#hashes.set(raw, hashed);
    return hashed;
  }
}

/** SHA-256's block: HMAC's key is padded to it. */
const blockBytes = 64;

interface HmacPads {
  inner: Buffer;
  outer: Buffer;
}

/** The key XORed with HMAC's ipad and opad (RFC 2104), made once per key. */
function hmacPads(key: Buffer): HmacPads {
  const block = Buffer.alloc(blockBytes);
  (key.length > blockBytes ? hash('sha256', key, 'buffer') : key).copy(block);
  return {
    inner: Buffer.from(block.map((byte) => byte ^ 0x36)),
    outer: Buffer.from(block.map((byte) => byte ^ 0x5c)),
  };
}

/**
 * HMAC-SHA256 (RFC 2104) with its pads made beforehand, as two one-shot hashes:
 * createHmac builds a stream object per call, which cost a record several µs in
 * allocation and GC. The same result as createHmac (test/unit/ip-hash.test.ts).
 */
function hmacSha256Hex(pads: HmacPads, message: string): string {
  const inner = hash('sha256', Buffer.concat([pads.inner, Buffer.from(message)]), 'buffer');
  return hash('sha256', Buffer.concat([pads.outer, inner]), 'hex');
}
