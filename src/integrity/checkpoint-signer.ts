import { createPublicKey, type KeyObject } from 'node:crypto';
import { type NoteVerifier, parseVerifierKey, signNote, verifierKeyText } from './signed-note.js';

/** Signs checkpoint notes under the log's name with its Ed25519 key. */
export interface CheckpointSigner {
  logName: string;
  /** The public key, as a verifier key text. */
  publicKey: string;
  sign(text: string): string;
  verifier: NoteVerifier;
}

export function checkpointSigner(logName: string, privateKey: KeyObject): CheckpointSigner {
  const publicKey = verifierKeyText(logName, createPublicKey(privateKey));
  return {
    logName,
    publicKey,
    sign: (text) => signNote(text, logName, privateKey),
    verifier: parseVerifierKey(publicKey),
  };
}
