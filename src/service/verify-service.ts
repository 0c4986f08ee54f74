import { ActivityError } from '../domain/errors.js';
import type { IntegrityRepository, PurgeRecord, TreeHead, TreeRow } from '../domain/integrity-repository.js';
import {
  type Checkpoint,
  parseCheckpointText,
  signsAsStored,
  tenantOrigin,
} from '../integrity/checkpoint.js';
import { openCheckpoint } from '../integrity/checkpoint-signer.js';
import { eventLeafHash } from '../integrity/leaf.js';
import { hashSize } from '../integrity/merkle.js';
import type {
  ProblemKind,
  TenantVerification,
  UnverifiedRange,
  VerifyProblem,
  VerifyReport,
} from '../integrity/report.js';
import type { NoteVerifier } from '../integrity/signed-note.js';
import { keptCount, TreeBuilder } from '../integrity/tree.js';

/** A checkpoint kept outside the database (`--checkpoint FILE`). */
export interface ExternalCheckpoint {
  source: string;
  note: string;
}

export interface VerifyOptions {
  tenantId?: string;
  checkpoints?: readonly ExternalCheckpoint[];
  /** Called as events are checked, with the running count and about how many there are. */
  onProgress?: (events: number, total: number) => void;
}

/** Seqs read per statement: memory stays constant however large a tenant. */
const seqsPerRead = 4000;
const tenantsPerPage = 1000;

/**
 * `activity verify`: recomputes every leaf from the stored rows, and the tree from
 * them, and checks them against what the rows and head rows keep and against every
 * checkpoint (stored ones, and those given from outside). Problems are named by
 * tenant and seq; the report is ok only when there are none.
 */
export async function verifyLog(
  repository: IntegrityRepository,
  verifiers: readonly NoteVerifier[],
  options: VerifyOptions = {},
): Promise<VerifyReport> {
  const external = groupByTenant(options.checkpoints ?? [], verifiers);
  if (options.tenantId !== undefined) {
    const others = [...external.keys()].filter((tenant) => tenant !== options.tenantId);
    if (others.length > 0) {
      throw new ActivityError(
        'USAGE_INVALID',
        `--checkpoint names tenant ${others[0]}, not --tenant ${options.tenantId}`,
      );
    }
  }
  const onProgress = options.onProgress;
  const total = onProgress ? await repository.seqsGiven(options.tenantId) : 0;
  const progress = { events: 0, report: onProgress && ((events: number) => onProgress(events, total)) };
  const tenants: TenantVerification[] = [];
  const verify = async (tenantId: string) => {
    const given = external.get(tenantId);
    external.delete(tenantId);
    const { head, tenant } = await verifyTenant(repository, verifiers, tenantId, given, progress);
    tenants.push(tenant);
    return { head, given, tenant };
  };
  if (options.tenantId !== undefined) {
    const { head, given, tenant } = await verify(options.tenantId);
    // No head row, checkpoint, purge record or row (any of them would be a problem or a purge).
    if (!head && !given && tenant.problems.length === 0 && tenant.purged.length === 0) {
      throw new ActivityError(
        'NOT_FOUND',
        `tenant ${options.tenantId} has no events, checkpoints or purge records here: nothing to verify`,
      );
    }
  } else {
    let after: string | undefined;
    for (;;) {
      const page = await repository.tenants(after, tenantsPerPage);
      for (const tenantId of page) await verify(tenantId);
      if (page.length < tenantsPerPage) break;
      after = page[page.length - 1];
    }
  }
  // Checkpoints of tenants the database no longer has: every one of their events is gone.
  for (const [tenantId, checkpoints] of external) {
    tenants.push((await verifyTenant(repository, verifiers, tenantId, checkpoints, progress)).tenant);
  }
  return { ok: tenants.every((tenant) => tenant.problems.length === 0), tenants };
}

/** Whole milliseconds of a time given in microseconds as decimal text; -1n for what is not a finite time. */
function floorMillis(micros: string): bigint {
  const whole = /^(-?\d+)(?:\.\d*)?$/.exec(micros)?.[1];
  if (whole === undefined) return -1n;
  const value = BigInt(whole);
  // BigInt division truncates toward zero; times before 1970 round down like the API's.
  return value >= 0n ? value / 1000n : -((-value + 999n) / 1000n);
}

/** A checkpoint to hold the tree to, with where it came from. */
interface HeldCheckpoint extends Checkpoint {
  source: string;
}

/** External checkpoints by tenant; one that does not open is held as a signature problem. */
function groupByTenant(
  checkpoints: readonly ExternalCheckpoint[],
  verifiers: readonly NoteVerifier[],
): Map<string, Array<HeldCheckpoint | VerifyProblem>> {
  const byTenant = new Map<string, Array<HeldCheckpoint | VerifyProblem>>();
  for (const { source, note } of checkpoints) {
    let checkpoint: Checkpoint;
    try {
      checkpoint = parseCheckpointText(note);
    } catch (error) {
      throw new ActivityError(
        'INPUT_UNREADABLE',
        `${source} is not a checkpoint: ${(error as Error).message}`,
      );
    }
    const verifier = verifiers.find((each) => checkpoint.origin.startsWith(tenantOrigin(each.name, '')));
    if (!verifier) {
      throw new ActivityError(
        'INPUT_UNREADABLE',
        `${source} is a checkpoint of ${checkpoint.origin}, not of a tenant of the log ${verifiers[0]?.name ?? ''}`,
      );
    }
    const tenantId = checkpoint.origin.slice(tenantOrigin(verifier.name, '').length);
    const opened = openCheckpoint(note, verifiers, tenantId);
    const entry: HeldCheckpoint | VerifyProblem = opened.ok
      ? { ...opened, source }
      : { seq: checkpoint.size, kind: 'signature', message: `${source}: ${opened.reason}` };
    byTenant.set(tenantId, [...(byTenant.get(tenantId) ?? []), entry]);
  }
  return byTenant;
}

async function verifyTenant(
  repository: IntegrityRepository,
  verifiers: readonly NoteVerifier[],
  tenantId: string,
  external: Array<HeldCheckpoint | VerifyProblem> = [],
  progress: { events: number; report: ((events: number) => void) | undefined },
): Promise<{ head: TreeHead | undefined; tenant: TenantVerification }> {
  const problems: VerifyProblem[] = [];
  const held: HeldCheckpoint[] = [];
  for (const entry of external) {
    if ('kind' in entry) problems.push(entry);
    else held.push(entry);
  }
  for (const stored of await repository.checkpoints(tenantId)) {
    const opened = openCheckpoint(stored.note, verifiers, tenantId);
    const source = `the stored checkpoint of ${stored.treeSize} events`;
    if (!opened.ok) {
      problems.push({
        seq: stored.treeSize,
        kind: 'signature',
        message: `tenant ${tenantId}: ${source}: ${opened.reason}`,
      });
      continue;
    }
    if (!signsAsStored(opened, stored)) {
      problems.push({
        seq: opened.size,
        kind: 'signature',
        message: `tenant ${tenantId}: ${source} is not what its signed note says (${opened.size} events, another root): its columns were edited`,
      });
    }
    held.push({ origin: opened.origin, size: opened.size, rootHash: opened.rootHash, source });
  }
  // The head after the checkpoints: a checkpoint signed meanwhile was sealed before the head is read.
  const head = await repository.head(tenantId);
  const lastSeq = head?.lastSeq ?? 0;
  const purges = await repository.purges(tenantId);
  const walk = new TreeWalk(tenantId, head, held, problems, purges);
  walk.beforeFirst(await repository.treeRows(tenantId, Number.MIN_SAFE_INTEGER, 0));
  const upper = Math.max(lastSeq, ...held.map((checkpoint) => checkpoint.size));
  const slice = async (after: number) => {
    const through = Math.min(after + seqsPerRead, upper);
    const purged = purges.some((purge) => purge.fromSeq <= through && purge.throughSeq > after);
    const [rows, archived] = await Promise.all([
      repository.treeRows(tenantId, after, through),
      purged ? repository.archivedHashes(tenantId, after, through) : new Map<number, Uint8Array>(),
    ]);
    return { rows, archived, count: through - after };
  };
  // The next slice is read while this one is hashed: two slices in memory at most.
  let reading = upper > 0 ? slice(0) : undefined;
  for (let after = 0; reading; after += seqsPerRead) {
    const { rows, archived, count } = await reading;
    reading = after + seqsPerRead < upper ? slice(after + seqsPerRead) : undefined;
    walk.rows(rows, archived);
    progress.events += count;
    progress.report?.(progress.events);
  }
  // Rows past every seq handed out, if someone inserted them; not those appended since
  // the head was read.
  const past = await repository.treeRows(tenantId, upper, undefined);
  const appended = past.length > 0 ? ((await repository.head(tenantId))?.lastSeq ?? 0) : 0;
  walk.rows(
    past.filter((row) => row.seq > appended),
    new Map(),
  );
  walk.end(head);
  const tenant = {
    tenant_id: tenantId,
    size: lastSeq,
    verified: walk.verified,
    problems: problems.sort((a, b) => a.seq - b.seq),
    unverified: walk.unverified,
    purged: purges.map((purge) => ({
      from_seq: purge.fromSeq,
      through_seq: purge.throughSeq,
      rule: purge.rule,
      cutoff: purge.cutoff.toISOString(),
      purged_at: purge.purgedAt.toISOString(),
    })),
  };
  return { head, tenant };
}

/**
 * The two trees of a walk (see TreeWalk): one tree while every leaf pushed is the
 * same in both, as in an untouched log, so that each hash is computed once; two from
 * the first leaf that differs.
 */
class TwinTrees {
  #shared: TreeBuilder | undefined = new TreeBuilder();
  #recomputed: TreeBuilder | undefined;
  #kept: TreeBuilder | undefined;

  /** Pushes a leaf on each; returns what the kept tree says the row keeps. */
  push(recomputedLeaf: Uint8Array, keptLeaf: Uint8Array): Uint8Array {
    if (this.#shared && Buffer.compare(recomputedLeaf, keptLeaf) === 0) return this.#shared.push(keptLeaf);
    this.recomputed.push(recomputedLeaf);
    return this.kept.push(keptLeaf);
  }

  recomputedRoot(): Uint8Array {
    return (this.#shared ?? this.recomputed).root();
  }

  replaceKeptNewest(hash: Uint8Array): void {
    this.kept.replaceNewest(hash);
  }

  get recomputed(): TreeBuilder {
    this.#split();
    return this.#recomputed as TreeBuilder;
  }

  get kept(): TreeBuilder {
    this.#split();
    return this.#kept as TreeBuilder;
  }

  #split(): void {
    if (!this.#shared) return;
    this.#recomputed = new TreeBuilder(this.#shared.size, this.#shared.range);
    this.#kept = this.#shared;
    this.#shared = undefined;
  }
}

/**
 * One pass over a tenant's rows in seq order. Two trees are grown: one from the
 * leaves recomputed from the events (what the checkpoints must match) and one from the
 * leaf hashes the rows keep (what the hashes kept above them must match), so that one
 * altered row is named once, not again at every hash above it.
 */
class TreeWalk {
  verified = 0;
  readonly unverified: UnverifiedRange[] = [];
  readonly #tenantId: string;
  /** Up to where the sealer says it kept the inner nodes: what is kept for a seq is whole up to it. */
  readonly #sealedSize: number;
  /** The leaf the sealer says seq #sealedSize had. */
  readonly #sealedLeaf: Uint8Array | null;
  readonly #lastSeq: number;
  readonly #checkpoints: Map<number, HeldCheckpoint[]>;
  readonly #problems: VerifyProblem[];
  readonly #purges: readonly PurgeRecord[];
  readonly #trees = new TwinTrees();
  #expected = 1;
  /** The first seq whose leaf is unknown (a missing row): no root can be recomputed past it. */
  #brokenAt: number | undefined;
  /** The size of the last checkpoint found to hold: where an altered range starts. */
  #lastHeld = 0;
  /** Whether a checkpoint was found not to hold. */
  #diverged = false;
  /** The largest size a checkpoint signed: events up to it must be in the tree. */
  readonly #signedSize: number;

  constructor(
    tenantId: string,
    head: TreeHead | undefined,
    checkpoints: readonly HeldCheckpoint[],
    problems: VerifyProblem[],
    purges: readonly PurgeRecord[],
  ) {
    this.#purges = purges;
    this.#tenantId = tenantId;
    this.#sealedSize = head?.sealedSize ?? 0;
    this.#sealedLeaf = head?.sealedLeaf ?? null;
    this.#lastSeq = head?.lastSeq ?? 0;
    this.#problems = problems;
    this.#checkpoints = new Map();
    this.#signedSize = Math.max(0, ...checkpoints.map((checkpoint) => checkpoint.size));
    for (const checkpoint of checkpoints) {
      this.#checkpoints.set(checkpoint.size, [...(this.#checkpoints.get(checkpoint.size) ?? []), checkpoint]);
    }
  }

  /** Rows with a seq below 1, which the tool never hands out. */
  beforeFirst(rows: readonly TreeRow[]): void {
    for (const { seq, event } of rows) {
      this.#problem(
        seq,
        'inserted',
        `seq ${seq} is not a seq the tool hands out (they start at 1)${event ? ` (event ${event.id})` : ''}: inserted by hand`,
      );
    }
  }

  /** The rows of a slice of seqs, and what purge kept of the events gone from it, merged in seq order. */
  rows(rows: readonly TreeRow[], archived: ReadonlyMap<number, Uint8Array>): void {
    const stored = new Set(rows.map((row) => row.seq));
    const purgedSeqs = [...archived.keys()].filter((seq) => !stored.has(seq)).sort((a, b) => a - b);
    let next = 0;
    for (const row of rows) {
      for (; next < purgedSeqs.length && (purgedSeqs[next] as number) < row.seq; next++) {
        this.#archived(purgedSeqs[next] as number, archived.get(purgedSeqs[next] as number) as Uint8Array);
      }
      this.#row(row);
    }
    for (; next < purgedSeqs.length; next++) {
      this.#archived(purgedSeqs[next] as number, archived.get(purgedSeqs[next] as number) as Uint8Array);
    }
  }

  /**
   * A purged event: only what purge kept of it is left, so its leaf is the one kept;
   * the hashes above it must still add up, and the checkpoints still match.
   */
  #archived(seq: number, kept: Uint8Array): void {
    if (seq > this.#expected) this.#missing(this.#expected, seq - 1);
    this.#expected = seq + 1;
    const storedLeaf = kept.subarray(0, hashSize);
    this.#checkSealedLeaf(seq, storedLeaf);
    if (this.#brokenAt === undefined) {
      const keptByTree = this.#trees.push(storedLeaf, storedLeaf);
      if (this.#holdsNodes(seq, kept) && Buffer.compare(keptByTree, kept) !== 0) {
        this.#keptAltered(seq, kept);
        this.#problem(
          seq,
          'modified',
          `the tree hashes kept for purged events up to ${seq} do not add up: one of them was altered`,
        );
      }
    }
    this.#checkpointsAt(seq);
  }

  #row({ seq, event, createdMicros, keptHashes }: TreeRow): void {
    const named = event ? ` (event ${event.id})` : '';
    if (seq < this.#expected) {
      this.#problem(seq, 'inserted', `a second row holds seq ${seq}${named}`);
      return;
    }
    if (seq > this.#lastSeq) {
      this.#problem(
        seq,
        'inserted',
        `seq ${seq} is past the last seq handed out (${this.#lastSeq})${named}: inserted by hand`,
      );
      return;
    }
    if (seq > this.#expected) this.#missing(this.#expected, seq - 1);
    this.#expected = seq + 1;
    const storedLeaf =
      keptHashes && keptHashes.length >= hashSize ? keptHashes.subarray(0, hashSize) : undefined;
    // A time the API cannot show as stored (out of its range: before year 1, BC,
    // infinite) was not written by the tool: the event is not what it was. Within the
    // millisecond it shows, finer digits are not covered: events stored before
    // migration 0004 have them.
    const timeProblem =
      !event || BigInt(Date.parse(event.created_at)) !== floorMillis(createdMicros)
        ? `event ${seq}'s stored created_at is not a time the tool writes (it was edited)`
        : undefined;
    const leaf = event ? eventLeafHash(event) : (storedLeaf ?? new Uint8Array(hashSize));
    this.#checkSealedLeaf(seq, storedLeaf);
    if (keptHashes === null) {
      if (seq <= this.#signedSize || seq <= this.#sealedSize) {
        this.#problem(
          seq,
          'modified',
          `event ${seq} is in ${seq <= this.#signedSize ? 'a signed checkpoint' : 'the sealed tree'}, but its row's leaf hash was removed`,
        );
      } else {
        this.#outside(seq);
      }
      if (timeProblem) this.#problem(seq, 'modified', timeProblem);
      // Its leaf stands in for the one kept, so that the hashes kept above it are still checked.
      if (this.#brokenAt === undefined) this.#trees.push(leaf, leaf);
      this.#checkpointsAt(seq);
      return;
    }
    const keptByTree = this.#brokenAt === undefined ? this.#trees.push(leaf, storedLeaf ?? leaf) : undefined;
    if (timeProblem) {
      this.#problem(seq, 'modified', timeProblem);
    } else if (!storedLeaf) {
      this.#problem(seq, 'modified', `event ${seq}'s stored leaf hash was cut short`);
    } else if (Buffer.compare(storedLeaf, leaf) !== 0) {
      this.#problem(
        seq,
        'modified',
        `event ${seq}${named} is not the event its tree leaf was made from: a column was changed`,
      );
    } else if (
      keptByTree &&
      this.#holdsNodes(seq, keptHashes) &&
      Buffer.compare(keptByTree, keptHashes) !== 0
    ) {
      this.#keptAltered(seq, keptHashes);
      this.#problem(seq, 'modified', `the tree hashes kept for event ${seq} were altered or removed`);
    } else {
      this.verified++;
    }
    this.#checkpointsAt(seq);
  }

  /**
   * The sealer continues from the leaf it says it sealed last: one that is not the
   * leaf now stored at that seq (its state edited, or rows replaced under it) would
   * stop every checkpoint from then on.
   */
  #checkSealedLeaf(seq: number, storedLeaf: Uint8Array | undefined): void {
    if (seq !== this.#sealedSize) return;
    if (this.#sealedLeaf && storedLeaf && Buffer.compare(this.#sealedLeaf, storedLeaf) === 0) return;
    this.#problem(
      seq,
      'inconsistent',
      `the sealer's state says it sealed the tree up to event ${seq} with another leaf than the one stored for it: the state or the row was edited`,
    );
  }

  /**
   * Whether what is kept for a seq must hold its inner nodes: up to the sealed size,
   * or wherever a block holds them (past it only when the sealer's state was rolled back).
   */
  #holdsNodes(seq: number, kept: Uint8Array): boolean {
    return seq <= this.#sealedSize || kept.length > hashSize;
  }

  /**
   * Follows the kept tree from an altered row on (see TreeBuilder.replaceNewest): its
   * last hash is the newest subtree's root, except for a seq of 2 mod 4, whose pair
   * of leaves is kept as leaves only.
   */
  #keptAltered(seq: number, kept: Uint8Array): void {
    if (seq % 4 === 2 || kept.length !== keptCount(seq) * hashSize) return;
    this.#trees.replaceKeptNewest(kept.subarray(kept.length - hashSize));
  }

  /**
   * Holds the recomputed root to the checkpoints of this size. The first that differs
   * is reported, unless a problem already reported since the last one that held
   * explains it; every root after it differs too, and says nothing new.
   */
  #checkpointsAt(size: number): void {
    const checkpoints = this.#checkpoints.get(size);
    if (!checkpoints || this.#brokenAt !== undefined || this.#diverged) return;
    this.#checkpoints.delete(size);
    const root = this.#trees.recomputedRoot();
    const differing = checkpoints.find((checkpoint) => Buffer.compare(root, checkpoint.rootHash) !== 0);
    if (!differing) {
      this.#lastHeld = size;
      return;
    }
    this.#diverged = true;
    const explained = this.#problems.some((problem) => problem.seq > this.#lastHeld && problem.seq <= size);
    if (explained) return;
    this.#problem(
      this.#lastHeld + 1,
      'inconsistent',
      `${differing.source} does not match the events: one or more of seq ${this.#lastHeld + 1}..${size} differ from what it signed (altered along with their tree hashes, reordered or replaced)`,
    );
  }

  #missing(from: number, to: number): void {
    this.#brokenAt ??= from;
    // A purge keeps the leaf hashes of what it removes once they exist: a gap with no
    // archive can only be events purged before they were hashed, never sealed nor signed.
    const hashedOnce = from <= Math.max(this.#signedSize, this.#sealedSize);
    const purge = hashedOnce
      ? undefined
      : this.#purges.find((record) => record.fromSeq <= from && record.throughSeq >= to);
    if (purge) {
      // Purged by policy before they were in the tree: nothing of them is left to check.
      this.unverified.push({
        from_seq: from,
        to_seq: to,
        reason: `purged (rule ${purge.rule}, cutoff ${purge.cutoff.toISOString()}, at ${purge.purgedAt.toISOString()}) before they were brought into the tree`,
      });
      return;
    }
    this.#problem(
      from,
      'missing',
      from === to ? `event ${from} is missing` : `events ${from}..${to} are missing`,
    );
  }

  #outside(seq: number): void {
    const last = this.unverified[this.unverified.length - 1];
    if (last && last.to_seq === seq - 1) {
      last.to_seq = seq;
      return;
    }
    this.unverified.push({
      from_seq: seq,
      to_seq: seq,
      reason: 'stored before the tree existed and not yet brought into it',
    });
  }

  #problem(seq: number, kind: ProblemKind, message: string): void {
    this.#problems.push({ seq, kind, message: `tenant ${this.#tenantId}: ${message}` });
  }

  end(head: TreeHead | undefined): void {
    if (this.#expected <= this.#lastSeq) this.#missing(this.#expected, this.#lastSeq);
    for (const [size, checkpoints] of this.#checkpoints) {
      // not checkable past a missing row or a root that differed: already reported
      if (size < this.#expected) continue;
      for (const checkpoint of checkpoints) {
        this.#problem(
          this.#expected,
          'truncated',
          `${checkpoint.source} signed ${size} events; the tenant has ${this.#expected - 1}: events ${this.#expected}..${size} were removed`,
        );
      }
    }
    if (head && head.sealedSize < this.#signedSize) {
      this.#problem(
        head.sealedSize + 1,
        'inconsistent',
        `the sealer's state says ${head.sealedSize} leaves are sealed, fewer than the ${this.#signedSize} a checkpoint signed: it was rolled back or cleared`,
      );
    }
    if (head && head.sealedSize > head.lastSeq) {
      this.#problem(
        head.lastSeq + 1,
        'inconsistent',
        `the sealer's state says ${head.sealedSize} leaves are sealed, but only ${head.lastSeq} seqs were handed out`,
      );
    }
  }
}
