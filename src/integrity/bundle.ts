import { z } from 'zod';
import type { ActivityEvent } from '../domain/event.js';
import { jsonTextIssue } from '../domain/json-text.js';
import { openCheckpoint } from './checkpoint-signer.js';
import { eventLeafHash } from './leaf.js';
import type { Subtree } from './merkle.js';
import { RangeMerger, rangeProofSubtrees } from './range-proof.js';
import type { TenantVerification, VerifyProblem } from './report.js';
import type { NoteVerifier } from './signed-note.js';

/**
 * An offline bundle (`activity export --out DIR`; docs/integrity.md): a directory of
 * three files that prove a contiguous run of one tenant's events against a signed
 * checkpoint, checkable with nothing but the log's public key.
 */
export const bundleFiles = {
  /** The events, one JSON object a line, in seq order, every event of the run. */
  events: 'events.ndjson',
  /** The signed note (C2SP tlog-checkpoint) of the tenant's tree. */
  checkpoint: 'checkpoint',
  /** The range proof (BundleProof) of the events against that checkpoint. */
  proof: 'proof.json',
} as const;

/** proof.json: the run, the tree it is proved against, and the hashes left and right of it (rangeProofSubtrees). */
export interface BundleProof {
  version: 1;
  tenant_id: string;
  first_seq: number;
  last_seq: number;
  tree_size: number;
  left: string[];
  right: string[];
}

const base64Hash = z
  .string()
  .regex(/^[A-Za-z0-9+/]{43}=$/, 'must be a 32-byte hash in base64')
  .transform((text) => Buffer.from(text, 'base64'));
const seqNumber = z.number().int().min(1).max(Number.MAX_SAFE_INTEGER);
const bundleProofSchema = z.strictObject({
  version: z.literal(1),
  tenant_id: z.string().min(1),
  first_seq: seqNumber,
  last_seq: seqNumber,
  tree_size: seqNumber,
  left: z.array(base64Hash),
  right: z.array(base64Hash),
});

/** The hashes as proof.json writes them. */
export function encodeHashes(hashes: readonly Uint8Array[]): string[] {
  return hashes.map((hash) => Buffer.from(hash).toString('base64'));
}

/**
 * Checks a bundle: the checkpoint's signature and origin, then each event in turn
 * (its seq the next of the run, its tenant the bundle's), then the root the events'
 * leaves and the proof's hashes make against the checkpoint's. `lines` are the lines
 * of events.ndjson; memory stays constant however many.
 */
export async function verifyBundle(
  files: { checkpoint: string; proof: string; lines: AsyncIterable<string> },
  verifiers: readonly NoteVerifier[],
): Promise<TenantVerification> {
  const parsed = bundleProofSchema.safeParse(parseJson(files.proof));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RangeError(
      `${bundleFiles.proof}: ${issue?.path.join('.') || 'the file'} ${issue?.message ?? ''}`.trim(),
    );
  }
  const proof = parsed.data;
  const problems: VerifyProblem[] = [];
  const report = (verified: number): TenantVerification => ({
    tenant_id: proof.tenant_id,
    size: proof.tree_size,
    verified,
    problems,
    unverified: [],
    purged: [],
  });
  const checkpoint = openCheckpoint(files.checkpoint, verifiers, proof.tenant_id);
  if (!checkpoint.ok) {
    problems.push({
      seq: proof.tree_size,
      kind: 'signature',
      message: `${bundleFiles.checkpoint}: ${checkpoint.reason}`,
    });
    return report(0);
  }
  if (checkpoint.size !== proof.tree_size) {
    throw new RangeError(
      `${bundleFiles.checkpoint} signs ${checkpoint.size} events; ${bundleFiles.proof} proves against ${proof.tree_size}`,
    );
  }
  const { left, right } = rangeProofSubtrees(proof.first_seq, proof.last_seq, proof.tree_size);
  if (proof.left.length !== left.length || proof.right.length !== right.length) {
    throw new RangeError(
      `${bundleFiles.proof} holds ${proof.left.length} left and ${proof.right.length} right hashes; a run of seq ${proof.first_seq}..${proof.last_seq} in ${proof.tree_size} needs ${left.length} and ${right.length}`,
    );
  }
  const merger = new RangeMerger();
  const pushAll = (subtrees: Subtree[], hashes: Uint8Array[]) => {
    subtrees.forEach((subtree, index) => {
      merger.push(subtree, hashes[index] as Uint8Array);
    });
  };
  pushAll(left, proof.left);
  let expected = proof.first_seq;
  let lineNumber = 0;
  for await (const line of files.lines) {
    lineNumber++;
    if (line.trim() === '') continue;
    const event = eventOf(line);
    const where = `${bundleFiles.events} line ${lineNumber}`;
    if (!event) {
      problems.push({ seq: expected, kind: 'modified', message: `${where} is not an event` });
      return report(expected - proof.first_seq);
    }
    if (event.tenant_id !== proof.tenant_id || event.seq < expected || event.seq > proof.last_seq) {
      problems.push({
        seq: event.seq,
        kind: 'inserted',
        message: `${where}: event ${event.seq} of tenant ${event.tenant_id} is not the next of the run (seq ${expected} of ${proof.tenant_id})`,
      });
      return report(expected - proof.first_seq);
    }
    if (event.seq > expected) {
      problems.push({
        seq: expected,
        kind: 'missing',
        message: `${where}: events ${expected}..${event.seq - 1} are missing`,
      });
      return report(expected - proof.first_seq);
    }
    merger.push({ level: 0, index: event.seq - 1 }, eventLeafHash(event));
    expected++;
  }
  if (expected <= proof.last_seq) {
    problems.push({
      seq: expected,
      kind: 'truncated',
      message: `${bundleFiles.events} ends at seq ${expected - 1}; the run goes to ${proof.last_seq}`,
    });
    return report(expected - proof.first_seq);
  }
  pushAll(right, proof.right);
  if (Buffer.compare(merger.root(), checkpoint.rootHash) !== 0) {
    problems.push({
      seq: proof.first_seq,
      kind: 'inconsistent',
      message: `the events and proof do not make the signed root: one or more of seq ${proof.first_seq}..${proof.last_seq} (or a hash of ${bundleFiles.proof}) were altered`,
    });
    return report(0);
  }
  return report(proof.last_seq - proof.first_seq + 1);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const nullableText = z.string().nullable();
const eventSchema = z.strictObject({
  id: z.string(),
  tenant_id: z.string(),
  seq: seqNumber,
  action: z.string(),
  actor_type: z.enum(['user', 'service_account', 'system', 'api_key']),
  actor_id: nullableText,
  object_type: nullableText,
  object_id: nullableText,
  status: z.enum(['success', 'failure', 'pending']),
  source: nullableText,
  request_id: nullableText,
  ip_hash: nullableText,
  user_agent: nullableText,
  metadata: z.record(z.string(), z.unknown()),
  created_at: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
});

/**
 * An events.ndjson line as an event, or undefined when it is not one exactly: JSON
 * that two readers could read differently (a key twice, a number a double does not
 * hold) or a time that is not the one it names is refused, as the tool refuses it when
 * recording, so that what is checked is what any reader sees.
 */
function eventOf(line: string): ActivityEvent | undefined {
  // The parsed object itself, not zod's copy: the leaf is of the values exactly as read.
  const raw = parseJson(line);
  if (raw === undefined || jsonTextIssue(line, raw) !== undefined) return undefined;
  if (!eventSchema.safeParse(raw).success) return undefined;
  const event = raw as ActivityEvent;
  const time = Date.parse(event.created_at);
  return Number.isNaN(time) || new Date(time).toISOString() !== event.created_at ? undefined : event;
}
