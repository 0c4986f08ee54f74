import { describe, expect, it } from 'vitest';
import { seal, unseal } from '../../src/privacy/secret-box.js';
import {
  newWebhookSecret,
  webhookSecretProblem,
  webhookSignature,
} from '../../src/sinks/webhook-signature.js';
import { hasWebhookSignature } from '../helpers/receiver.js';

describe('Standard Webhooks signatures', () => {
  // The reference vector of the Standard Webhooks libraries (libraries/javascript/src/webhook.test.ts).
  const secret = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
  const id = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
  const body = '{"test": 2432232314}';

  it('signs as the specification does', () => {
    expect(webhookSignature(secret, id, 1614265330, body)).toBe(
      'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
    );
  });

  it('a receiver finds the signature among others, and no forgery', () => {
    const signature = webhookSignature(secret, id, 1614265330, body);
    expect(
      hasWebhookSignature(
        secret,
        id,
        1614265330,
        body,
        `v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= ${signature}`,
      ),
    ).toBe(true);
    for (const [forgedId, time, forgedBody, header] of [
      [id, 1614265331, body, signature],
      ['msg_other', 1614265330, body, signature],
      [id, 1614265330, '{"test": 2432232315}', signature],
      [id, 1614265330, body, signature.slice(0, 10)],
      [id, 1614265330, body, 'v1,'],
      [id, 1614265330, body, ''],
    ] as const) {
      expect(hasWebhookSignature(secret, forgedId, time, forgedBody, header)).toBe(false);
    }
    expect(hasWebhookSignature(newWebhookSecret(), id, 1614265330, body, signature)).toBe(false);
  });

  it('makes secrets receivers can read, and refuses those they could not', () => {
    expect(webhookSecretProblem(newWebhookSecret())).toBeUndefined();
    expect(newWebhookSecret()).not.toBe(newWebhookSecret());
    for (const bad of [
      'MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'whsec_',
      'whsec_c2hvcnQ=',
      'whsec_not base64!',
      `whsec_${'A'.repeat(100)}`,
    ]) {
      expect(webhookSecretProblem(bad), bad).toBeDefined();
    }
  });
});

describe('sealed secrets', () => {
  const key = Buffer.alloc(32, 7);

  it('open with the key and the context they were sealed for, and only so', () => {
    const sealed = seal(key, 'Authorization: Splunk token', 'sink-1');
    expect(unseal(key, sealed, 'sink-1')).toBe('Authorization: Splunk token');
    expect(unseal(key, sealed, 'sink-2')).toBeUndefined();
    expect(unseal(Buffer.alloc(32, 8), sealed, 'sink-1')).toBeUndefined();
    expect(seal(key, 'same', 'sink-1')).not.toEqual(seal(key, 'same', 'sink-1'));
  });

  it('refuse every tampered value: a changed byte, a cut tag, a short one', () => {
    const sealed = seal(key, 'secret value', 'sink-1');
    const bytes = Buffer.from(sealed.sealed, 'base64');
    for (let i = 0; i < bytes.length; i++) {
      const changed = Buffer.from(bytes);
      changed[i] = (changed[i] as number) ^ 1;
      expect(unseal(key, { ...sealed, sealed: changed.toString('base64') }, 'sink-1')).toBeUndefined();
    }
    for (const length of [0, 4, 12, bytes.length - 1]) {
      expect(
        unseal(key, { ...sealed, sealed: bytes.subarray(0, length).toString('base64') }, 'sink-1'),
      ).toBeUndefined();
    }
    expect(unseal(key, { ...sealed, nonce: Buffer.alloc(12).toString('base64') }, 'sink-1')).toBeUndefined();
  });
});
