import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  consistencyProof,
  inclusionProof,
  leafHash,
  treeHead,
  verifyConsistency,
  verifyInclusion,
} from '../../src/integrity/merkle.js';

/** The RFC 6962 vectors of transparency-dev/merkle (test/fixtures/rfc6962, never edited). */
const vectors = fileURLToPath(new URL('../fixtures/rfc6962/testdata', import.meta.url));

function jsonFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    return statSync(path).isDirectory() ? jsonFiles(path) : name.endsWith('.json') ? [path] : [];
  });
}

const bytes = (base64: string | null | undefined) => Buffer.from(base64 ?? '', 'base64');
const proofOf = (proof: string[] | null) => (proof ?? []).map(bytes);
const named = (path: string) => path.slice(vectors.length + 1);

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  wantErr: boolean;
}

describe('RFC 6962 vectors', () => {
  const inclusion = jsonFiles(join(vectors, 'inclusion'));
  const consistency = jsonFiles(join(vectors, 'consistency'));

  it('are all here', () => {
    expect(inclusion.length).toBeGreaterThan(90);
    expect(consistency.length).toBeGreaterThan(90);
  });

  it.each(inclusion.map((path) => [named(path), path]))('inclusion %s', (_, path) => {
    const v = JSON.parse(readFileSync(path, 'utf8')) as InclusionVector;
    const ok = verifyInclusion(v.leafIdx, v.treeSize, bytes(v.leafHash), proofOf(v.proof), bytes(v.root));
    expect(ok).toBe(!v.wantErr);
  });

  it.each(consistency.map((path) => [named(path), path]))('consistency %s', (_, path) => {
    const v = JSON.parse(readFileSync(path, 'utf8')) as ConsistencyVector;
    const ok = verifyConsistency(v.size1, v.size2, proofOf(v.proof), bytes(v.root1), bytes(v.root2));
    expect(ok).toBe(!v.wantErr);
  });
});

describe('proofs made here', () => {
  // Distinct leaves, as the log's are (each holds its seq): with two equal leaves, a
  // proof for one is rightly a proof for the other.
  const tree = fc
    .uniqueArray(fc.uint8Array({ maxLength: 8 }), {
      minLength: 1,
      maxLength: 70,
      selector: (leaf) => Buffer.from(leaf).toString('hex'),
    })
    .map((leaves) => leaves.map(leafHash));

  it('verify, for every leaf and every earlier size', () => {
    fc.assert(
      fc.property(tree, (hashes) => {
        const root = treeHead(hashes);
        for (const [index, hash] of hashes.entries()) {
          expect(verifyInclusion(index, hashes.length, hash, inclusionProof(hashes, index), root)).toBe(true);
        }
        for (let size1 = 1; size1 <= hashes.length; size1++) {
          const proof = consistencyProof(hashes, size1);
          expect(verifyConsistency(size1, hashes.length, proof, treeHead(hashes.slice(0, size1)), root)).toBe(
            true,
          );
        }
      }),
      { numRuns: 60 },
    );
  });

  // A tree's size and head travel together in a signed checkpoint: a size moved alone
  // is the signature's to catch (RFC 9162 proofs of a left-hand leaf can fit a larger
  // tree whose head they are not checked against).
  it('are rejected once forged: a bit flipped, an entry dropped or added, an index moved', () => {
    fc.assert(
      fc.property(tree, fc.nat(), fc.nat(), fc.nat({ max: 255 }), (hashes, pick, entry, bit) => {
        const size = hashes.length;
        const index = pick % size;
        const root = treeHead(hashes);
        const leaf = hashes[index] as Uint8Array;
        const proof = inclusionProof(hashes, index);
        const flipped = (value: Uint8Array) => {
          const copy = Uint8Array.from(value);
          copy[bit % 32] = (copy[bit % 32] as number) ^ (1 << (bit % 8));
          return copy;
        };
        expect(verifyInclusion(index, size, flipped(leaf), proof, root)).toBe(false);
        expect(verifyInclusion(index, size, leaf, proof, flipped(root))).toBe(false);
        if (proof.length > 0) {
          const at = entry % proof.length;
          expect(
            verifyInclusion(index, size, leaf, proof.with(at, flipped(proof[at] as Uint8Array)), root),
          ).toBe(false);
          expect(verifyInclusion(index, size, leaf, proof.toSpliced(at, 1), root)).toBe(false);
        }
        expect(verifyInclusion(index, size, leaf, [...proof, leaf], root)).toBe(false);
        if (index + 1 < size) expect(verifyInclusion(index + 1, size, leaf, proof, root)).toBe(false);

        if (size > 1) {
          const size1 = 1 + (entry % (size - 1));
          const root1 = treeHead(hashes.slice(0, size1));
          const consistency = consistencyProof(hashes, size1);
          const at = bit % consistency.length;
          expect(verifyConsistency(size1, size, consistency, flipped(root1), root)).toBe(false);
          expect(verifyConsistency(size1, size, consistency, root1, flipped(root))).toBe(false);
          expect(
            verifyConsistency(
              size1,
              size,
              consistency.with(at, flipped(consistency[at] as Uint8Array)),
              root1,
              root,
            ),
          ).toBe(false);
          expect(verifyConsistency(size1, size, consistency.toSpliced(at, 1), root1, root)).toBe(false);
          expect(verifyConsistency(size1, size, [...consistency, root], root1, root)).toBe(false);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('match the RFC 9162 tree head of a known tree', () => {
    // The eight leaves of the vectors' trees: inclusion/1/happy-path.json's root.
    const leaves = [
      '',
      '00',
      '10',
      '2021',
      '3031',
      '40414243',
      '5051525354555657',
      '606162636465666768696a6b6c6d6e6f',
    ];
    const root = treeHead(leaves.map((hex) => leafHash(Buffer.from(hex, 'hex'))));
    expect(Buffer.from(root).toString('base64')).toBe('XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=');
  });
});
