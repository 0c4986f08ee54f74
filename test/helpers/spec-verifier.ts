/**
 * A verifier for the activity log written from the specifications alone, as a customer
 * would write one: nothing here comes from `src/` (or from the `canonicalize` package),
 * so a bug shared by the tool and its own checks cannot hide behind it.
 *
 * - RFC 8785 (JCS) canonical JSON.
 * - The leaf (v1) of DESIGN.md "Integrity: a verifiable log per tenant".
 * - RFC 9162 §2.1.1 tree hash, §2.1.3.2 inclusion and §2.1.4.2 consistency verification.
 * - C2SP signed-note (Ed25519) and tlog-checkpoint.
 * - The offline bundle (checkpoint, events.ndjson, proof.json) and its range proof.
 *
 * Every check that fails throws a `SpecViolation` naming what did not hold; the proof
 * verifiers return a boolean, as the RFC's algorithms do.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export class SpecViolation extends Error {
  override name = 'SpecViolation';
}

function fail(message: string): never {
  throw new SpecViolation(message);
}

function sha256(...parts: readonly Uint8Array[]): Buffer {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

// ---------------------------------------------------------------------------------------
// RFC 8785: JSON Canonicalization Scheme
// ---------------------------------------------------------------------------------------

/** Throws on a string holding an unpaired UTF-16 surrogate (JCS §3.2.2.2: not I-JSON). */
function assertWellFormed(text: string, where: string): void {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = i + 1 < text.length ? text.charCodeAt(i + 1) : -1;
      if (next < 0xdc00 || next > 0xdfff) fail(`${where}: lone high surrogate at index ${i}`);
      i++;
    } else if (unit >= 0xdc00 && unit <= 0xdfff) {
      fail(`${where}: lone low surrogate at index ${i}`);
    }
  }
}

/** Orders property names by their UTF-16 code units, as JCS §3.2.3 requires. */
export function compareUtf16(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a.charCodeAt(i) - b.charCodeAt(i);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/**
 * The RFC 8785 canonical form of a JSON value (as JSON.parse gives it): no whitespace,
 * object members sorted by UTF-16 code units, numbers as ECMAScript's Number-to-String
 * (what JSON.stringify prints for a finite number, "0" for -0), strings as JSON.stringify
 * escapes them. Non-finite numbers, lone surrogates and non-JSON values are refused.
 */
export function canonicalJson(value: unknown, where = '$'): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) fail(`${where}: ${value} is not a JSON number`);
      return JSON.stringify(value);
    case 'string':
      assertWellFormed(value, where);
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((item, index) => canonicalJson(item, `${where}[${index}]`)).join(',')}]`;
      }
      const prototype = Object.getPrototypeOf(value);
      if (prototype !== Object.prototype && prototype !== null) fail(`${where}: not a plain JSON object`);
      const record = value as Record<string, unknown>;
      const names = Object.keys(record).sort(compareUtf16);
      return `{${names
        .map((name) => {
          assertWellFormed(name, `${where} (a property name)`);
          return `${JSON.stringify(name)}:${canonicalJson(record[name], `${where}.${name}`)}`;
        })
        .join(',')}}`;
    }
    default:
      return fail(`${where}: a ${typeof value} is not a JSON value`);
  }
}

// ---------------------------------------------------------------------------------------
// The leaf (v1), DESIGN.md "Integrity"
// ---------------------------------------------------------------------------------------

/** The fields that go into the digest: the event model's, except seq and created_at. */
export const digestFields = [
  'id',
  'tenant_id',
  'action',
  'actor_type',
  'actor_id',
  'object_type',
  'object_id',
  'status',
  'source',
  'request_id',
  'ip_hash',
  'user_agent',
  'metadata',
] as const;

/** An event as the API returns it (extra fields are ignored). */
export type ApiEvent = Record<string, unknown>;

/** The canonical JSON whose SHA-256 is the leaf's digest. */
export function digestInput(event: ApiEvent): string {
  const selected: Record<string, unknown> = {};
  for (const field of digestFields) {
    if (!Object.hasOwn(event, field) || event[field] === undefined) fail(`event has no ${field}`);
    selected[field] = event[field];
  }
  return canonicalJson(selected);
}

const rfc3339Utc = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?Z$/;

/** `created_at` (RFC 3339, UTC, up to microseconds) in microseconds since the Unix epoch. */
export function microsecondsSinceEpoch(createdAt: string): bigint {
  const match = rfc3339Utc.exec(createdAt);
  if (!match) fail(`created_at ${JSON.stringify(createdAt)} is not RFC 3339 UTC`);
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (
    date.getUTCFullYear() !== year ||
    date.getUTCMonth() !== month - 1 ||
    date.getUTCDate() !== day ||
    date.getUTCHours() !== hour ||
    date.getUTCMinutes() !== minute ||
    date.getUTCSeconds() !== second
  ) {
    fail(`created_at ${createdAt} is not a calendar time`);
  }
  const fraction = BigInt((match[7] ?? '').padEnd(6, '0'));
  return BigInt(date.getTime()) * 1000n + fraction;
}

/** The 48 leaf bytes: digest ‖ seq (u64 BE) ‖ created_at µs (i64 BE). */
export function leafBytes(event: ApiEvent): Buffer {
  const seq = event.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1)
    fail(`seq ${String(seq)} is not 1, 2…`);
  if (typeof event.created_at !== 'string') fail('event has no created_at string');
  const leaf = Buffer.alloc(48);
  sha256(Buffer.from(digestInput(event), 'utf8')).copy(leaf, 0);
  leaf.writeBigUInt64BE(BigInt(seq), 32);
  leaf.writeBigInt64BE(microsecondsSinceEpoch(event.created_at), 40);
  return leaf;
}

/** RFC 9162 §2.1.1: MTH({d}) = SHA-256(0x00 ‖ d). */
export function hashLeaf(leaf: Uint8Array): Buffer {
  return sha256(Uint8Array.of(0x00), leaf);
}

/** RFC 9162 §2.1.1: SHA-256(0x01 ‖ left ‖ right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  return sha256(Uint8Array.of(0x01), left, right);
}

export function eventLeafHash(event: ApiEvent): Buffer {
  return hashLeaf(leafBytes(event));
}

// ---------------------------------------------------------------------------------------
// RFC 9162 §2.1: tree hash and proofs
// ---------------------------------------------------------------------------------------

/** The largest power of two smaller than n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH(D[n]) of §2.1.1, from leaf hashes, by its recursive definition. */
export function treeHash(leafHashes: readonly Uint8Array[]): Buffer {
  if (leafHashes.length === 0) return sha256();
  if (leafHashes.length === 1) return Buffer.from(leafHashes[0] as Uint8Array);
  const k = splitPoint(leafHashes.length);
  return hashChildren(treeHash(leafHashes.slice(0, k)), treeHash(leafHashes.slice(k)));
}

function isPowerOfTwo(n: number): boolean {
  let x = n;
  while (x > 1 && x % 2 === 0) x /= 2;
  return x === 1;
}

function isHash(value: Uint8Array): boolean {
  return value.length === 32;
}

/** §2.1.3.2: does `path` prove `leafHash` at `leafIndex` in the tree of `treeSize` with `root`? */
export function verifyInclusion(
  leafIndex: number,
  treeSize: number,
  leafHash: Uint8Array,
  path: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(leafIndex) || !Number.isSafeInteger(treeSize) || leafIndex < 0) return false;
  if (!isHash(leafHash) || !isHash(root) || !path.every(isHash)) return false;
  // 1. leaf_index must be below tree_size.
  if (leafIndex >= treeSize) return false;
  // 2. fn = leaf_index, sn = tree_size - 1.
  let fn = BigInt(leafIndex);
  let sn = BigInt(treeSize - 1);
  // 3. r = hash.
  let r: Buffer = Buffer.from(leafHash);
  // 4. For each p in the path:
  for (const p of path) {
    // a. sn = 0: fail.
    if (sn === 0n) return false;
    // b.
    if ((fn & 1n) === 1n || fn === sn) {
      r = hashChildren(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    // c.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. sn must be 0 and r the root.
  return sn === 0n && r.equals(root);
}

/**
 * §2.1.4.2: does `path` prove the tree of `first` leaves (root `firstHash`) a prefix of
 * the tree of `second` leaves (root `secondHash`)? §2.1.4.1 defines proofs for
 * 0 < first < second; for first = second the only proof is the empty one, with equal roots.
 */
export function verifyConsistency(
  first: number,
  second: number,
  path: readonly Uint8Array[],
  firstHash: Uint8Array,
  secondHash: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second)) return false;
  if (first < 1 || first > second) return false;
  // Equal sizes: nothing to hash; the proof is empty and the roots are the same bytes.
  if (first === second) return path.length === 0 && Buffer.from(firstHash).equals(secondHash);
  if (!isHash(firstHash) || !isHash(secondHash) || !path.every(isHash)) return false;
  // 1. An empty path fails.
  if (path.length === 0) return false;
  // 2. first an exact power of 2: prepend first_hash.
  const proof = isPowerOfTwo(first) ? [firstHash, ...path] : [...path];
  // 3. fn = first - 1, sn = second - 1.
  let fn = BigInt(first - 1);
  let sn = BigInt(second - 1);
  // 4. While LSB(fn) is set, shift both right.
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  // 5. fr = sr = the first value.
  let fr: Buffer = Buffer.from(proof[0] as Uint8Array);
  let sr: Buffer = Buffer.from(proof[0] as Uint8Array);
  // 6. For each later value c:
  for (const c of proof.slice(1)) {
    // a. sn = 0: fail.
    if (sn === 0n) return false;
    // b.
    if ((fn & 1n) === 1n || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    // c.
    fn >>= 1n;
    sn >>= 1n;
  }
  // 7. fr = first_hash, sr = second_hash, sn = 0.
  return fr.equals(firstHash) && sr.equals(secondHash) && sn === 0n;
}

// ---------------------------------------------------------------------------------------
// C2SP signed-note (Ed25519) and tlog-checkpoint
// ---------------------------------------------------------------------------------------

/** Strict standard base64 (padded): decoding, then encoding again, gives the same text. */
export function decodeBase64(text: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) fail(`${what} is not base64`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.toString('base64') !== text) fail(`${what} is not canonical base64`);
  return bytes;
}

export interface NoteVerifier {
  name: string;
  keyId: Buffer;
  publicKey: Buffer;
}

const ed25519Algorithm = 0x01;

function isKeyName(name: string): boolean {
  return name.length > 0 && !/[\s+]/u.test(name);
}

/** key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4]. */
export function keyIdOf(name: string, publicKey: Uint8Array): Buffer {
  return sha256(Buffer.from(name, 'utf8'), Uint8Array.of(0x0a, ed25519Algorithm), publicKey).subarray(0, 4);
}

/** The verifier-key text `<name>+<hex key id>+<base64(0x01 ‖ public key)>`. */
export function verifierKeyText(name: string, publicKey: Uint8Array): string {
  if (!isKeyName(name)) fail(`${JSON.stringify(name)} is not a key name`);
  if (publicKey.length !== 32) fail('an Ed25519 public key is 32 bytes');
  const keyData = Buffer.concat([Uint8Array.of(ed25519Algorithm), publicKey]);
  return `${name}+${keyIdOf(name, publicKey).toString('hex')}+${keyData.toString('base64')}`;
}

/** Parses `<name>+<hex key id>+<base64 key data>`; the base64 may itself hold "+". */
export function parseVerifierKey(text: string): NoteVerifier {
  const trimmed = text.replace(/\n$/, '');
  const firstPlus = trimmed.indexOf('+');
  const secondPlus = firstPlus < 0 ? -1 : trimmed.indexOf('+', firstPlus + 1);
  if (firstPlus < 0 || secondPlus < 0) fail('a verifier key is <name>+<hex id>+<base64 key>');
  const name = trimmed.slice(0, firstPlus);
  const hexId = trimmed.slice(firstPlus + 1, secondPlus);
  if (!isKeyName(name)) fail(`verifier key name ${JSON.stringify(name)} is empty or holds a space`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) fail(`verifier key id ${JSON.stringify(hexId)} is not 8 hex digits`);
  const keyData = decodeBase64(trimmed.slice(secondPlus + 1), 'verifier key data');
  if (keyData.length !== 33 || keyData[0] !== ed25519Algorithm)
    fail('verifier key is not 0x01 ‖ 32-byte Ed25519 key');
  const publicKey = keyData.subarray(1);
  const keyId = keyIdOf(name, publicKey);
  if (keyId.toString('hex') !== hexId) fail(`verifier key id ${hexId} is not the hash of its name and key`);
  return { name, keyId, publicKey };
}

function ed25519Verify(publicKey: Buffer, message: Buffer, signature: Buffer): boolean {
  const key = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: publicKey.toString('base64url') },
    format: 'jwk',
  });
  return verify(null, message, key, signature);
}

export interface VerifiedNote {
  /** The signed text, with its final newline. */
  text: string;
  /** Names of the known keys whose signatures verified. */
  signers: string[];
}

/**
 * Verifies a signed note: text ending in "\n", a blank line, then lines
 * `— <name> <base64(key id ‖ signature)>`. A signature by a key we do not know is skipped;
 * one by a key we know must verify, and at least one must.
 */
export function verifyNote(note: string, verifiers: readonly NoteVerifier[]): VerifiedNote {
  assertWellFormed(note, 'note');
  const split = note.lastIndexOf('\n\n');
  if (split < 0) fail('note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const signatureBlock = note.slice(split + 2);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the note's text forbids them
  if (/[\u0000-\u0009\u000b-\u001f\u007f]/.test(text)) fail('note text holds a control character');
  if (signatureBlock === '' || !signatureBlock.endsWith('\n'))
    fail('note signatures do not end in a newline');
  const signers: string[] = [];
  for (const line of signatureBlock.slice(0, -1).split('\n')) {
    const match = /^\u2014 (\S+) (\S+)$/u.exec(line);
    if (!match) fail(`note signature line ${JSON.stringify(line)} is not "— <name> <base64>"`);
    const [, name, encoded] = match as unknown as [string, string, string];
    const signature = decodeBase64(encoded, `signature of ${name}`);
    if (signature.length < 5) fail(`signature of ${name} is too short`);
    const keyId = signature.subarray(0, 4);
    const verifier = verifiers.find((known) => known.name === name && known.keyId.equals(keyId));
    if (!verifier) continue;
    if (signature.length !== 4 + 64) fail(`signature of ${name} is not 64 bytes of Ed25519`);
    if (!ed25519Verify(verifier.publicKey, Buffer.from(text, 'utf8'), signature.subarray(4))) {
      fail(`signature of ${name} (key ${keyId.toString('hex')}) does not verify`);
    }
    signers.push(name);
  }
  if (signers.length === 0) fail('note carries no signature by a known key');
  return { text, signers };
}

export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Buffer;
  extensions: string[];
}

/** C2SP tlog-checkpoint body: `<origin>\n<size>\n<base64 root>\n[extension lines\n]`. */
export function parseCheckpointText(text: string): Checkpoint {
  if (!text.endsWith('\n')) fail('checkpoint text does not end in a newline');
  const [origin = '', sizeText = '', rootText = '', ...extensions] = text.slice(0, -1).split('\n');
  if (origin === '') fail('checkpoint has no origin');
  if (!/^(0|[1-9][0-9]*)$/.test(sizeText)) fail(`checkpoint size ${JSON.stringify(sizeText)} is not decimal`);
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) fail(`checkpoint size ${sizeText} is too large`);
  const rootHash = decodeBase64(rootText, 'checkpoint root hash');
  if (rootHash.length !== 32) fail('checkpoint root hash is not 32 bytes');
  if (extensions.some((line) => line === '')) fail('checkpoint has an empty extension line');
  return { origin, size, rootHash, extensions };
}

/**
 * A tenant's checkpoint note, verified: signed by `verifierKey` (whose name is the log's
 * name), origin `<log name>/tenants/<tenant id>`.
 */
export function verifyTenantCheckpoint(note: string, verifierKey: string, tenantId: string): Checkpoint {
  const verifier = parseVerifierKey(verifierKey);
  const { text } = verifyNote(note, [verifier]);
  const checkpoint = parseCheckpointText(text);
  const origin = `${verifier.name}/tenants/${tenantId}`;
  if (checkpoint.origin !== origin) {
    fail(`checkpoint origin ${JSON.stringify(checkpoint.origin)} is not ${JSON.stringify(origin)}`);
  }
  return checkpoint;
}

// ---------------------------------------------------------------------------------------
// The offline bundle
// ---------------------------------------------------------------------------------------

/** A perfect subtree of the tree: leaves [start, start + 2^level). */
export interface Subtree {
  start: number;
  level: number;
}

/** The perfect subtrees covering [0, count), largest first: the binary decomposition of count. */
export function leftSubtrees(count: number): Subtree[] {
  const subtrees: Subtree[] = [];
  let start = 0;
  for (let level = 52; level >= 0; level--) {
    const size = 2 ** level;
    if (count - start >= size) {
      subtrees.push({ start, level });
      start += size;
    }
  }
  return subtrees;
}

/** The aligned perfect subtrees covering [from, to), left to right, each the largest that fits. */
export function rightSubtrees(from: number, to: number): Subtree[] {
  const subtrees: Subtree[] = [];
  let start = from;
  while (start < to) {
    let level = 0;
    while (start % 2 ** (level + 1) === 0 && start + 2 ** (level + 1) <= to) level++;
    subtrees.push({ start, level });
    start += 2 ** level;
  }
  return subtrees;
}

interface RangeNode extends Subtree {
  hash: Buffer;
}

/**
 * A compact range being built left to right: each node is appended where the last ends;
 * two neighbours of equal level, the left one at an even index, merge into their parent.
 */
class CompactRange {
  readonly nodes: RangeNode[] = [];

  get end(): number {
    const last = this.nodes.at(-1);
    return last ? last.start + 2 ** last.level : 0;
  }

  append(node: RangeNode): void {
    if (node.start !== this.end)
      fail(`subtree at ${node.start} does not follow the range ending at ${this.end}`);
    if (node.start % 2 ** node.level !== 0)
      fail(`subtree at ${node.start} of level ${node.level} is not aligned`);
    this.nodes.push(node);
    for (;;) {
      const right = this.nodes.at(-1);
      const left = this.nodes.at(-2);
      if (!left || !right || left.level !== right.level) return;
      if ((left.start / 2 ** left.level) % 2 !== 0) return;
      this.nodes.splice(-2, 2, {
        start: left.start,
        level: left.level + 1,
        hash: hashChildren(left.hash, right.hash),
      });
    }
  }

  /** The tree hash of [0, end): the nodes folded from the right, H(a, H(b, c)). */
  root(): Buffer {
    const expected = leftSubtrees(this.end);
    const actual = this.nodes.map(({ start, level }) => ({ start, level }));
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      fail(`compact range ${JSON.stringify(actual)} is not the decomposition of ${this.end}`);
    }
    let root = this.nodes.at(-1)?.hash ?? sha256();
    for (let i = this.nodes.length - 2; i >= 0; i--)
      root = hashChildren((this.nodes[i] as RangeNode).hash, root);
    return root;
  }
}

export interface BundleProof {
  version: 1;
  tenant_id: string;
  first_seq: number;
  last_seq: number;
  tree_size: number;
  left: string[];
  right: string[];
}

export interface VerifiedBundle {
  tenantId: string;
  firstSeq: number;
  lastSeq: number;
  treeSize: number;
  rootHash: Buffer;
  checkpointNote: string;
  events: ApiEvent[];
  proof: BundleProof;
}

function parseBundleProof(text: string): BundleProof {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    fail('proof.json is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    fail('proof.json is not an object');
  const proof = parsed as Record<string, unknown>;
  const keys = Object.keys(proof).sort();
  const wanted = ['first_seq', 'last_seq', 'left', 'right', 'tenant_id', 'tree_size', 'version'];
  if (JSON.stringify(keys) !== JSON.stringify(wanted)) fail(`proof.json has keys ${keys.join(',')}`);
  if (proof.version !== 1) fail(`proof.json version ${String(proof.version)} is not 1`);
  if (typeof proof.tenant_id !== 'string') fail('proof.json tenant_id is not a string');
  for (const field of ['first_seq', 'last_seq', 'tree_size'] as const) {
    const value = proof[field];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      fail(`proof.json ${field} is not a whole number from 1`);
    }
  }
  for (const field of ['left', 'right'] as const) {
    const value = proof[field];
    if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
      fail(`proof.json ${field} is not a list of base64 hashes`);
    }
  }
  return proof as unknown as BundleProof;
}

/**
 * Checks a bundle directory with nothing but the verifier key: the note's signature and
 * origin, the events' contiguity and tenant, and that the events' leaves with the given
 * left and right subtrees make exactly the signed root.
 */
export async function verifyBundle(directory: string, verifierKey: string): Promise<VerifiedBundle> {
  const [note, eventsText, proofText] = await Promise.all(
    ['checkpoint', 'events.ndjson', 'proof.json'].map((file) => readFile(join(directory, file), 'utf8')),
  );
  const proof = parseBundleProof(proofText as string);
  const tenantId = proof.tenant_id;
  const checkpoint = verifyTenantCheckpoint(note as string, verifierKey, tenantId);
  const { first_seq: firstSeq, last_seq: lastSeq, tree_size: treeSize } = proof;
  if (checkpoint.size !== treeSize) fail(`checkpoint size ${checkpoint.size} is not tree_size ${treeSize}`);
  if (firstSeq > lastSeq || lastSeq > treeSize) fail(`seq ${firstSeq}..${lastSeq} is not within ${treeSize}`);

  const text = eventsText as string;
  if (!text.endsWith('\n')) fail('events.ndjson does not end in a newline');
  const events = text
    .slice(0, -1)
    .split('\n')
    .map((line, index) => {
      try {
        return JSON.parse(line) as ApiEvent;
      } catch {
        return fail(`events.ndjson line ${index + 1} is not JSON`);
      }
    });
  if (events.length !== lastSeq - firstSeq + 1) {
    fail(`events.ndjson holds ${events.length} events, not seq ${firstSeq}..${lastSeq}`);
  }
  events.forEach((event, index) => {
    if (event.seq !== firstSeq + index) fail(`events.ndjson line ${index + 1} is seq ${String(event.seq)}`);
    if (event.tenant_id !== tenantId) fail(`events.ndjson line ${index + 1} is of another tenant`);
  });

  const leftShape = leftSubtrees(firstSeq - 1);
  const rightShape = rightSubtrees(lastSeq, treeSize);
  if (proof.left.length !== leftShape.length)
    fail(`left holds ${proof.left.length} hashes, not ${leftShape.length}`);
  if (proof.right.length !== rightShape.length) {
    fail(`right holds ${proof.right.length} hashes, not ${rightShape.length}`);
  }
  const hashAt = (list: string[], index: number, what: string) => {
    const hash = decodeBase64(list[index] as string, `${what}[${index}]`);
    if (hash.length !== 32) fail(`${what}[${index}] is not 32 bytes`);
    return hash;
  };
  const range = new CompactRange();
  leftShape.forEach((subtree, index) => {
    range.append({ ...subtree, hash: hashAt(proof.left, index, 'left') });
  });
  for (const event of events) {
    range.append({ start: (event.seq as number) - 1, level: 0, hash: eventLeafHash(event) });
  }
  rightShape.forEach((subtree, index) => {
    range.append({ ...subtree, hash: hashAt(proof.right, index, 'right') });
  });
  if (range.end !== treeSize) fail(`the bundle covers ${range.end} leaves, not ${treeSize}`);
  const root = range.root();
  if (!root.equals(checkpoint.rootHash)) {
    fail(
      `bundle root ${root.toString('base64')} is not the signed root ${checkpoint.rootHash.toString('base64')}`,
    );
  }
  return {
    tenantId,
    firstSeq,
    lastSeq,
    treeSize,
    rootHash: root,
    checkpointNote: note as string,
    events,
    proof,
  };
}
