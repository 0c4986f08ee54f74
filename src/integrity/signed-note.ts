import { createHash, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';

/**
 * C2SP signed notes with Ed25519 (https://c2sp.org/signed-note): a text ending in a
 * newline, a blank line, then signature lines `— <key name> <base64(key id ‖
 * signature)>`. The key id is the first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public
 * key); a verifier key is shared as `<name>+<hex key id>+<base64(0x01 ‖ public key)>`.
 */

const ed25519Type = 0x01;
const signaturePrefix = '— ';
/** As the reference implementation: more lines than this is not a note. */
const maxSignatures = 100;

/** An Ed25519 public key under its name, as a verifier key names it. */
export interface NoteVerifier {
  name: string;
  keyId: Uint8Array;
  publicKey: KeyObject;
}

/** Why a key name, a text or a verifier key is not usable, or undefined when it is. */
function keyNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (/[\s+]/u.test(name)) return 'holds a space or a "+"';
  if (!name.isWellFormed()) return 'is not valid UTF-8';
  return undefined;
}

/** The raw 32 bytes of an Ed25519 public key. */
function rawPublicKey(publicKey: KeyObject): Buffer {
  const x = publicKey.export({ format: 'jwk' }).x;
  if (publicKey.asymmetricKeyType !== 'ed25519' || x === undefined) {
    throw new TypeError('the key is not an Ed25519 key');
  }
  return Buffer.from(x, 'base64url');
}

export function keyIdOf(name: string, publicKey: KeyObject): Buffer {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Uint8Array.of(0x0a, ed25519Type))
    .update(rawPublicKey(publicKey))
    .digest()
    .subarray(0, 4);
}

/** The verifier key text of `publicKey` under `name`. */
export function verifierKeyText(name: string, publicKey: KeyObject): string {
  const typed = Buffer.concat([Uint8Array.of(ed25519Type), rawPublicKey(publicKey)]);
  return `${name}+${keyIdOf(name, publicKey).toString('hex')}+${typed.toString('base64')}`;
}

/** Parses a verifier key text; throws a RangeError that says what is wrong with it. */
export function parseVerifierKey(text: string): NoteVerifier {
  // The base64 key may hold "+" itself: only the first two split.
  const [name = '', hexId = '', ...rest] = text.trim().split('+');
  const encoded = rest.join('+');
  if (rest.length === 0) throw new RangeError('a verifier key is <name>+<hex key id>+<base64 key>');
  const nameProblem = keyNameProblem(name);
  if (nameProblem) throw new RangeError(`the verifier key's name ${nameProblem}`);
  if (!/^[0-9a-f]{8}$/.test(hexId)) throw new RangeError('the verifier key id is not 8 hex digits');
  const typed = strictBase64(encoded);
  if (typed?.length !== 33 || typed[0] !== ed25519Type) {
    throw new RangeError('the verifier key is not a base64 Ed25519 key (type 0x01 and 32 bytes)');
  }
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'Ed25519', x: typed.subarray(1).toString('base64url') },
    format: 'jwk',
  });
  const keyId = keyIdOf(name, publicKey);
  if (keyId.toString('hex') !== hexId) throw new RangeError('the verifier key id does not match its key');
  return { name, keyId, publicKey };
}

/** `text` (one or more lines, each ending in a newline, none empty) signed by `privateKey` under `name`. */
export function signNote(text: string, name: string, privateKey: KeyObject): string {
  const problem = textProblem(text) ?? keyNameProblem(name);
  if (problem) throw new RangeError(`cannot sign: the ${problem}`);
  const publicKey = createPublicKey(privateKey);
  const signature = sign(null, Buffer.from(text, 'utf8'), privateKey);
  const encoded = Buffer.concat([keyIdOf(name, publicKey), signature]).toString('base64');
  return `${text}\n${signaturePrefix}${name} ${encoded}\n`;
}

/** What opening a note found: its text, or why it is not a note signed by the verifier. */
export type OpenedNote = { ok: true; text: string } | { ok: false; reason: string };

/**
 * Opens a signed note with one verifier: well formed, and the first signature line of
 * the verifier's name and key id verifies over the text. Lines of other keys are
 * ignored, as the spec requires; a note with none of the verifier's is refused.
 */
export function openNote(note: string, verifier: NoteVerifier): OpenedNote {
  if (!note.endsWith('\n')) return { ok: false, reason: 'the note does not end in a newline' };
  const split = note.lastIndexOf('\n\n');
  if (split === -1) return { ok: false, reason: 'the note has no blank line before its signatures' };
  const text = note.slice(0, split + 1);
  const textIssue = textProblem(text);
  if (textIssue) return { ok: false, reason: `the note's ${textIssue}` };
  const lines = note.slice(split + 2, -1).split('\n');
  if (lines.length > maxSignatures) return { ok: false, reason: 'the note has too many signatures' };
  const signatures: Array<{ name: string; decoded: Buffer }> = [];
  for (const line of lines) {
    const match = /^— (\S+) (\S+)$/u.exec(line);
    const decoded = match && strictBase64(match[2] as string);
    if (!match || !decoded || decoded.length < 5) {
      return { ok: false, reason: 'the note has a malformed signature line' };
    }
    signatures.push({ name: match[1] as string, decoded });
  }
  const own = signatures.find(
    ({ name, decoded }) => name === verifier.name && decoded.subarray(0, 4).equals(verifier.keyId),
  );
  if (own) {
    const signed = verify(null, Buffer.from(text, 'utf8'), verifier.publicKey, own.decoded.subarray(4));
    return signed ? { ok: true, text } : { ok: false, reason: 'the signature does not verify' };
  }
  const byName = signatures.find(({ name }) => name === verifier.name);
  return {
    ok: false,
    reason: byName
      ? `the note is signed by ${verifier.name} with key id ${Buffer.from(byName.decoded.subarray(0, 4)).toString('hex')}, not ${Buffer.from(verifier.keyId).toString('hex')}: another key (a rotated key is trusted again with ACTIVITY_PREVIOUS_PUBLIC_KEYS, or --public-key)`
      : `the note has no signature by ${verifier.name}`,
  };
}

function textProblem(text: string): string | undefined {
  if (text.length === 0 || !text.endsWith('\n')) return 'text does not end in a newline';
  if (text.includes('\n\n')) return 'text holds a blank line';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) return 'text holds a control character';
  if (!text.isWellFormed()) return 'text is not valid UTF-8';
  return undefined;
}

/** Standard base64 with padding, or undefined: Buffer.from would skip what is not base64. */
function strictBase64(text: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}
