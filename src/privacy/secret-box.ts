import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** A text sealed with AES-256-GCM: the nonce, and the ciphertext with its tag (base64). */
export interface Sealed {
  nonce: string;
  sealed: string;
}

const tagBytes = 16;

/**
 * Seals `text` under `key` for `context` (what it belongs to, e.g. a sink's id): the
 * sealed value opens only with the same key and context, so a value copied to another
 * row does not open there.
 */
export function seal(key: Buffer, text: string, context: string): Sealed {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: tagBytes });
  cipher.setAAD(Buffer.from(context, 'utf8'));
  const sealed = Buffer.concat([cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return { nonce: nonce.toString('base64'), sealed: sealed.toString('base64') };
}

/** The text `seal` sealed, or undefined when the key, the context or the value is not the one sealed. */
export function unseal(key: Buffer, value: Sealed, context: string): string | undefined {
  try {
    const sealed = Buffer.from(value.sealed, 'base64');
    if (sealed.length < tagBytes) return undefined;
    // The tag's length fixed: GCM would also take a tag of 4 bytes, which a forger can guess.
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(value.nonce, 'base64'), {
      authTagLength: tagBytes,
    });
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(sealed.subarray(sealed.length - tagBytes));
    return Buffer.concat([
      decipher.update(sealed.subarray(0, sealed.length - tagBytes)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    return undefined;
  }
}
