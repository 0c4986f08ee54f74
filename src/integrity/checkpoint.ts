import { hashSize } from './merkle.js';

/**
 * The body of a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the log's
 * origin, its size in decimal and its root hash in base64, a line each. A tenant's
 * origin is `<log name>/tenants/<tenant id>`.
 */
export interface Checkpoint {
  origin: string;
  size: number;
  rootHash: Uint8Array;
}

export function tenantOrigin(logName: string, tenantId: string): string {
  return `${logName}/tenants/${tenantId}`;
}

export function checkpointText({ origin, size, rootHash }: Checkpoint): string {
  return `${origin}\n${size}\n${Buffer.from(rootHash).toString('base64')}\n`;
}

/**
 * The checkpoint a note's text holds (its extension lines ignored), or a RangeError
 * that says what is wrong with it.
 */
export function parseCheckpointText(text: string): Checkpoint {
  const [origin, size, root] = text.split('\n');
  if (!origin) throw new RangeError('the checkpoint has no origin line');
  if (size === undefined || !/^(0|[1-9][0-9]*)$/.test(size) || !Number.isSafeInteger(Number(size))) {
    throw new RangeError('the checkpoint size is not a decimal number');
  }
  const rootHash = Buffer.from(root ?? '', 'base64');
  if (rootHash.length !== hashSize || rootHash.toString('base64') !== root) {
    throw new RangeError('the checkpoint root hash is not 32 bytes in base64');
  }
  return { origin, size: Number(size), rootHash };
}

/**
 * Whether a signed checkpoint is what its stored row says (size and root): the row's
 * columns are the database's, the note's text is what was signed.
 */
export function signsAsStored(
  checkpoint: Checkpoint,
  stored: { treeSize: number; rootHash: Uint8Array },
): boolean {
  return checkpoint.size === stored.treeSize && Buffer.compare(checkpoint.rootHash, stored.rootHash) === 0;
}
