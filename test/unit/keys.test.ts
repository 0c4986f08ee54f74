import { describe, expect, it } from 'vitest';
import { deriveKeys } from '../../src/privacy/keys.js';

describe('deriveKeys', () => {
  const secret = 's'.repeat(40);

  it('derives 32-byte keys, the same each time for one secret', () => {
    const first = deriveKeys(secret);
    const second = deriveKeys(secret);
    expect(first.ipHash.length).toBe(32);
    expect(first.cursor.length).toBe(32);
    expect(first.ipHash.equals(second.ipHash)).toBe(true);
    expect(first.cursor.equals(second.cursor)).toBe(true);
  });

  it('derives a different key for each purpose', () => {
    const keys = deriveKeys(secret);
    expect(keys.ipHash.equals(keys.cursor)).toBe(false);
  });

  it('derives different keys from different secrets', () => {
    const a = deriveKeys(secret);
    const b = deriveKeys(`${secret}x`);
    expect(a.ipHash.equals(b.ipHash)).toBe(false);
    expect(a.cursor.equals(b.cursor)).toBe(false);
  });

  it('never uses the secret itself as a key', () => {
    const keys = deriveKeys('k'.repeat(32));
    expect(keys.ipHash.equals(Buffer.from('k'.repeat(32)))).toBe(false);
    expect(keys.cursor.equals(Buffer.from('k'.repeat(32)))).toBe(false);
  });
});
