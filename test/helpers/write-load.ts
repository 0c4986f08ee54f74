import { Conditions } from './conditions.js';

/** What concurrent POST loops saw: every acknowledged event, and every other answer. */
export interface WriteLoad {
  /** Acknowledged (201) events by id, with their tenant and seq. */
  readonly acked: ReadonlyMap<string, { tenant_id: string; seq: number }>;
  /** Answers other than 201, by status (0: the request itself failed). */
  readonly refused: ReadonlyMap<number, number>;
  /** Resolves once `count` more writes have been acknowledged than when called. */
  waitForMoreAcks(count: number, timeoutMs: number): Promise<void>;
  /** Ends the loops (each finishes its request in flight) and resolves when they have. */
  stop(): Promise<void>;
}

export interface WriteLoadOptions {
  url: string;
  /** The bearer token of each tenant written; loop `i` writes tenants[i % tenants.length]. */
  tokens: ReadonlyMap<string, string>;
  clients: number;
  /** A bound on the requests each loop sends, whatever happens (default 100,000). */
  maxRequestsPerClient?: number;
}

/**
 * `clients` loops, each POSTing one event at a time until stopped: the load of the
 * fault tests. Bounded in count; a request that fails is counted, never retried, so
 * that an acknowledged write is one the server stored exactly once.
 */
export function startWriteLoad(options: WriteLoadOptions): WriteLoad {
  const acked = new Map<string, { tenant_id: string; seq: number }>();
  const refused = new Map<number, number>();
  const tenants = [...options.tokens.keys()];
  const conditions = new Conditions();
  let stopping = false;
  const loop = async (client: number) => {
    const tenant = tenants[client % tenants.length] as string;
    const token = options.tokens.get(tenant) as string;
    for (let sent = 0; !stopping && sent < (options.maxRequestsPerClient ?? 100_000); sent++) {
      let status = 0;
      try {
        const response = await fetch(`${options.url}/api/v1/activity`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ action: 'auth.login.success', actor_id: `client-${client}` }),
        });
        status = response.status;
        const body = (await response.json()) as { id: string; tenant_id: string; seq: number };
        if (status === 201) acked.set(body.id, { tenant_id: body.tenant_id, seq: body.seq });
      } catch {
        // The server went away mid-request: counted under status 0.
      }
      if (status !== 201) refused.set(status, (refused.get(status) ?? 0) + 1);
      // Not a hot loop against a server that is gone: a short pause before the next try.
      if (status === 0) await new Promise((resolve) => setTimeout(resolve, 50));
      conditions.changed();
    }
  };
  const loops = Array.from({ length: options.clients }, (_, client) => loop(client));
  return {
    acked,
    refused,
    waitForMoreAcks(count, timeoutMs) {
      const target = acked.size + count;
      return conditions.waitFor(
        () => acked.size >= target,
        timeoutMs,
        () =>
          `${target} acknowledged writes (${acked.size} so far; other answers: ${JSON.stringify([...refused])})`,
      );
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
    },
  };
}
