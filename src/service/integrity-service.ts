import type { ActivityRepository } from '../domain/activity-repository.js';
import type { IntegrityRepository } from '../domain/integrity-repository.js';
import type { CheckpointSigner } from '../integrity/checkpoint-signer.js';
import type { VerifyReport } from '../integrity/report.js';
import type { NoteVerifier } from '../integrity/signed-note.js';
import { type AuditActor, type AuditTrail, libraryActor } from './audit-trail.js';
import { type BundleContents, bundleOf } from './bundle-service.js';
import { type SignedCheckpoint, signCheckpoints } from './checkpoint-service.js';
import {
  type ConsistencyProof,
  consistencyProofOf,
  type InclusionProof,
  inclusionProofOf,
  signedCheckpoint,
} from './proof-service.js';
import { type VerifyOptions, verifyLog } from './verify-service.js';

/**
 * The verifiable log's use cases behind one object for the shells: checkpoints
 * (checkpoint-service.ts), proofs (proof-service.ts) and verification
 * (verify-service.ts). The signing key is loaded only by what needs it.
 */
export class IntegrityService {
  readonly #events: ActivityRepository;
  readonly #integrity: IntegrityRepository;
  readonly #signer: () => Promise<CheckpointSigner>;
  readonly #audit: AuditTrail;

  constructor(options: {
    events: ActivityRepository;
    integrity: IntegrityRepository;
    /** Loads the signing key; fails with CONFIG_INVALID when there is none. */
    signer: () => Promise<CheckpointSigner>;
    /** Records checkpoints signed and bundles exported in the tenants' logs. */
    audit: AuditTrail;
  }) {
    this.#events = options.events;
    this.#integrity = options.integrity;
    this.#signer = options.signer;
    this.#audit = options.audit;
  }

  signer(): Promise<CheckpointSigner> {
    return this.#signer();
  }

  /**
   * See signCheckpoints; `outside`: each tenant's latest checkpoint kept outside the
   * database. Each checkpoint is recorded in its tenant's log (`activity.checkpoint.signed`).
   */
  async checkpoint(
    options: { tenantId?: string; outside?: ReadonlyMap<string, string> } = {},
    actor: AuditActor = libraryActor,
  ): Promise<SignedCheckpoint[]> {
    return signCheckpoints(this.#integrity, await this.#signer(), {
      ...options,
      onSaved: (checkpoints) => this.#audit.checkpointsSigned(actor, checkpoints),
    });
  }

  /** The tenant's latest signed note (NOT_FOUND before its first checkpoint). */
  async latestCheckpoint(tenantId: string): Promise<string> {
    return (await signedCheckpoint(this.#integrity, tenantId)).note;
  }

  proof(tenantId: string, seq: number, size?: number): Promise<InclusionProof> {
    return inclusionProofOf(this.#integrity, tenantId, seq, size);
  }

  consistency(tenantId: string, from: number, to: number): Promise<ConsistencyProof> {
    return consistencyProofOf(this.#integrity, tenantId, from, to);
  }

  /**
   * The bundle of a tenant's events in a window (`activity export --out`), recorded in
   * its log (`activity.events.exported`) once its events have all been read.
   */
  async bundle(
    tenantId: string,
    window: { since?: Date; until?: Date } = {},
    actor: AuditActor = libraryActor,
  ): Promise<BundleContents> {
    const bundle = await bundleOf({ events: this.#events, integrity: this.#integrity }, tenantId, window);
    const audit = this.#audit;
    const { first_seq: fromSeq, last_seq: throughSeq, tree_size: treeSize } = bundle.proof;
    async function* recorded() {
      let events = 0;
      for await (const event of bundle.events) {
        events++;
        yield event;
      }
      await audit.eventsExported(actor, tenantId, { fromSeq, throughSeq, events, treeSize });
    }
    return { ...bundle, events: recorded() };
  }

  /** Verifies with these keys (the log's, then any it replaced), or the signer's trusted keys. */
  async verify(verifiers?: readonly NoteVerifier[], options: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyLog(this.#integrity, verifiers ?? (await this.#signer()).trusted, options);
  }
}
