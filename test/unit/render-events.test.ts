import { describe, expect, it } from 'vitest';
import { createNdjsonToArrayElements } from '../../src/cli/render/events.js';

const events = [
  { seq: 3, note: 'a line\nbreak, "quoted", back\\slash' },
  { seq: 2, metadata: { nested: [1, { deeper: 'é 🎉' }] } },
  { seq: 1, metadata: {} },
];
const ndjson = Buffer.from(events.map((event) => `${JSON.stringify(event)}\n`).join(''));

/** The JSON array the chunks make, as `query --all --format json` prints its data. */
function arrayOf(chunks: readonly Uint8Array[]): unknown {
  const toElements = createNdjsonToArrayElements();
  const elements = Buffer.concat(chunks.map((chunk) => toElements(chunk)));
  return JSON.parse(`[${elements.toString('utf8')}]`);
}

describe('NDJSON to the elements of a JSON array', () => {
  it('gives the same events whole or split at any byte, even inside a character', () => {
    expect(arrayOf([ndjson])).toEqual(events);
    for (let at = 0; at <= ndjson.length; at++) {
      expect(arrayOf([ndjson.subarray(0, at), ndjson.subarray(at)])).toEqual(events);
    }
  });

  it('gives the same events split into one-byte chunks', () => {
    const bytes = Array.from(ndjson, (byte) => Uint8Array.of(byte));
    expect(arrayOf(bytes)).toEqual(events);
  });

  it('gives an empty array for no events', () => {
    expect(arrayOf([])).toEqual([]);
    expect(arrayOf([new Uint8Array(0)])).toEqual([]);
  });
});
