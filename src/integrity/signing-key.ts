import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';

/** An Ed25519 private key from PKCS#8 PEM text; a RangeError when it is not one. */
export function parseSigningKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw new RangeError('is not a PEM private key (PKCS#8)');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new RangeError(`holds a ${key.asymmetricKeyType} key, not an Ed25519 one`);
  }
  return key;
}

/** A new Ed25519 private key as PKCS#8 PEM. */
export function newSigningKeyPem(): string {
  const { privateKey } = generateKeyPairSync('ed25519');
  return privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
}
