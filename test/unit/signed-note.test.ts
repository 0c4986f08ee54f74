import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkpointText, parseCheckpointText } from '../../src/integrity/checkpoint.js';
import {
  keyIdOf,
  openNote,
  parseVerifierKey,
  signNote,
  verifierKeyText,
} from '../../src/integrity/signed-note.js';

const vectors = JSON.parse(
  readFileSync(new URL('../fixtures/signed-note/vectors.json', import.meta.url), 'utf8'),
) as {
  notes: Array<{
    verifier: string;
    note: string;
    checkpoint?: { origin: string; size: number; root: string };
  }>;
};

/** An Ed25519 key from a 32-byte seed (PKCS#8 DER: a fixed prefix, then the seed). */
function keyFromSeed(seed: number) {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, seed)]);
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
}

const { privateKey } = generateKeyPairSync('ed25519');
const name = 'activity';
const verifier = parseVerifierKey(verifierKeyText(name, createPublicKey(privateKey)));
const text = 'activity/tenants/acme\n12\nq0eOTNn7wc5A0cX+s1cWwmeN+yfr9Ihe9Y2JrH+0/5o=\n';

describe('signed notes (C2SP signed-note, Ed25519)', () => {
  it.each(vectors.notes.map((vector, index) => [index, vector] as const))(
    'opens the published note %i with its published verifier key',
    (_, vector) => {
      const opened = openNote(vector.note, parseVerifierKey(vector.verifier));
      expect(opened.ok).toBe(true);
      if (vector.checkpoint && opened.ok) {
        const checkpoint = parseCheckpointText(opened.text);
        expect(checkpoint.origin).toBe(vector.checkpoint.origin);
        expect(checkpoint.size).toBe(vector.checkpoint.size);
        expect(Buffer.from(checkpoint.rootHash).toString('base64')).toBe(vector.checkpoint.root);
      }
    },
  );

  it('refuses each published note with one byte of its text changed', () => {
    for (const vector of vectors.notes) {
      const edited = vector.note.replace(/[a-z]/, (letter) => (letter === 'a' ? 'b' : 'a'));
      expect(openNote(edited, parseVerifierKey(vector.verifier))).toMatchObject({ ok: false });
    }
  });

  it('round-trips: what it signs opens with its verifier key', () => {
    const note = signNote(text, name, privateKey);
    expect(openNote(note, verifier)).toEqual({ ok: true, text });
    expect(note.split('\n').at(-2)).toMatch(/^— activity [A-Za-z0-9+/]{91}=$/);
  });

  it('refuses an edited body, a signature by another key, and a note without its signature', () => {
    const note = signNote(text, name, privateKey);
    expect(openNote(note.replace('\n12\n', '\n13\n'), verifier)).toMatchObject({
      ok: false,
      reason: 'the signature does not verify',
    });
    const other = generateKeyPairSync('ed25519').privateKey;
    expect(openNote(signNote(text, name, other), verifier)).toMatchObject({ ok: false });
    expect(openNote(signNote(text, 'another-log', privateKey), verifier)).toMatchObject({
      ok: false,
      reason: 'the note has no signature by activity',
    });
    expect(openNote(text, verifier)).toMatchObject({ ok: false });
  });

  it('ignores signature lines of unknown keys, before or after its own', () => {
    const note = signNote(text, name, privateKey);
    const stranger = `— witness.example ${Buffer.alloc(68, 7).toString('base64')}\n`;
    expect(openNote(note + stranger, verifier)).toEqual({ ok: true, text });
    const [body, signature] = note.split('\n\n') as [string, string];
    expect(openNote(`${body}\n\n${stranger}${signature}`, verifier)).toEqual({ ok: true, text });
  });

  it('refuses malformed signature lines rather than skipping them', () => {
    const note = signNote(text, name, privateKey);
    expect(openNote(`${note}— witness.example not!base64\n`, verifier)).toMatchObject({ ok: false });
    expect(openNote(`${note}-- activity AAAA\n`, verifier)).toMatchObject({ ok: false });
    expect(openNote(note.slice(0, -1), verifier)).toMatchObject({ ok: false });
  });

  it('derives key ids as SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key), first 4 bytes, as the published keys carry', () => {
    for (const vector of vectors.notes) {
      const parsed = parseVerifierKey(vector.verifier);
      expect(keyIdOf(parsed.name, parsed.publicKey).toString('hex')).toBe(vector.verifier.split('+')[1]);
    }
  });

  it('reads verifier keys whose base64 holds "+", and refuses keys that do not add up', () => {
    let seed = 0;
    let withPlus = '';
    while (!withPlus.split('+').slice(2).join('+').includes('+')) {
      withPlus = verifierKeyText(name, createPublicKey(keyFromSeed(++seed)));
    }
    expect(parseVerifierKey(withPlus).name).toBe(name);
    const note = signNote(text, name, keyFromSeed(seed));
    expect(openNote(note, parseVerifierKey(withPlus)).ok).toBe(true);
    const [keyName, id, key] = [
      name,
      withPlus.split('+')[1] as string,
      withPlus.split('+').slice(2).join('+'),
    ];
    expect(() => parseVerifierKey(`${keyName}+00000000+${key}`)).toThrow(/does not match/);
    expect(() => parseVerifierKey(`${keyName}+${id}`)).toThrow(RangeError);
    expect(() => parseVerifierKey(`${keyName}+${id}+${key.slice(4)}`)).toThrow(RangeError);
    expect(() => parseVerifierKey(`other+${id}+${key}`)).toThrow(/does not match/);
  });

  it('refuses to sign a text that could not be opened again', () => {
    expect(() => signNote('no newline', name, privateKey)).toThrow(RangeError);
    expect(() => signNote('a\n\nb\n', name, privateKey)).toThrow(RangeError);
    expect(() => signNote(text, 'has space', privateKey)).toThrow(RangeError);
    expect(() => signNote(text, 'has+plus', privateKey)).toThrow(RangeError);
  });
});

describe('checkpoint text (C2SP tlog-checkpoint)', () => {
  it('is origin, size and base64 root, a line each, and reads back', () => {
    const checkpoint = { origin: 'activity/tenants/acme', size: 12, rootHash: Buffer.alloc(32, 9) };
    const written = checkpointText(checkpoint);
    expect(written).toBe(`activity/tenants/acme\n12\n${Buffer.alloc(32, 9).toString('base64')}\n`);
    expect(parseCheckpointText(written)).toEqual(checkpoint);
  });

  it('refuses sizes and roots that are not exactly what the format says', () => {
    const root = Buffer.alloc(32, 9).toString('base64');
    for (const bad of [
      `o\n012\n${root}\n`,
      `o\n-1\n${root}\n`,
      `o\n1e3\n${root}\n`,
      `o\n1\n${root.slice(4)}\n`,
      '\n1\nx\n',
    ]) {
      expect(() => parseCheckpointText(bad)).toThrow(RangeError);
    }
  });
});
