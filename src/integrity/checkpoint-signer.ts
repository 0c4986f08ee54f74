import { createPublicKey, type KeyObject } from 'node:crypto';
import { type Checkpoint, parseCheckpointText, tenantOrigin } from './checkpoint.js';
import { type NoteVerifier, openNote, parseVerifierKey, signNote, verifierKeyText } from './signed-note.js';

/** Signs checkpoint notes under the log's name with its Ed25519 key. */
export interface CheckpointSigner {
  logName: string;
  /** The public key, as a verifier key text. */
  publicKey: string;
  sign(text: string): string;
  verifier: NoteVerifier;
  /**
   * The keys earlier checkpoints may be signed with: this one, then those it replaced
   * (ACTIVITY_PREVIOUS_PUBLIC_KEYS), so that a rotated key still extends the old tree.
   */
  trusted: readonly NoteVerifier[];
}

export function checkpointSigner(
  logName: string,
  privateKey: KeyObject,
  previous: readonly NoteVerifier[] = [],
): CheckpointSigner {
  const publicKey = verifierKeyText(logName, createPublicKey(privateKey));
  const verifier = parseVerifierKey(publicKey);
  return {
    logName,
    publicKey,
    sign: (text) => signNote(text, logName, privateKey),
    verifier,
    trusted: [verifier, ...previous],
  };
}

/** A tenant's checkpoint opened with one of the trusted keys, or why it cannot be. */
export type OpenedCheckpoint = ({ ok: true } & Checkpoint) | { ok: false; reason: string };

/**
 * Opens a note as a checkpoint of `tenantId`: signed by one of `verifiers`, and its
 * origin that tenant's under the name of the key that signed it.
 */
export function openCheckpoint(
  note: string,
  verifiers: readonly NoteVerifier[],
  tenantId: string,
): OpenedCheckpoint {
  let reason = 'no key is trusted';
  for (const verifier of verifiers) {
    const opened = openNote(note, verifier);
    if (!opened.ok) {
      if (verifier === verifiers[0]) reason = opened.reason;
      continue;
    }
    let checkpoint: Checkpoint;
    try {
      checkpoint = parseCheckpointText(opened.text);
    } catch (error) {
      return { ok: false, reason: (error as Error).message };
    }
    const origin = tenantOrigin(verifier.name, tenantId);
    if (checkpoint.origin !== origin) {
      return { ok: false, reason: `it is a checkpoint of ${checkpoint.origin}, not of ${origin}` };
    }
    return { ok: true, ...checkpoint };
  }
  return { ok: false, reason };
}
