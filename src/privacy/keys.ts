import { hkdfSync } from 'node:crypto';

/** Separate keys for separate purposes, all derived from ACTIVITY_SECRET. */
export interface DerivedKeys {
  ipHash: Buffer;
  cursor: Buffer;
  /** Seals what a sink must keep secret: its headers and its signing secret (secret-box.ts). */
  sinkSecrets: Buffer;
}

export function deriveKeys(masterSecret: string): DerivedKeys {
  const derive = (purpose: string) =>
    Buffer.from(hkdfSync('sha256', masterSecret, 'activity', `activity ${purpose} v1`, 32));
  return { ipHash: derive('ip-hash'), cursor: derive('cursor'), sinkSecrets: derive('sink-secrets') };
}
