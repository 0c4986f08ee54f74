import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import pg from 'pg';

/**
 * Realistic events: actions drawn from the built-in registry with valid metadata of
 * 200–400 bytes (declared fields plus a `context`), actors, objects and request ids
 * spread the way a product's traffic is.
 */
const actionShapes: Array<[string, (i: number) => Record<string, unknown>]> = [
  ['auth.login.success', (i) => ({ method: i % 3 === 0 ? 'sso' : 'password', mfa: i % 2 === 0 })],
  ['auth.login.failure', () => ({ method: 'password', reason: 'invalid_credentials' })],
  ['auth.token.refreshed', (i) => ({ client_id: `web-${i % 7}` })],
  [
    'storage.file.uploaded',
    (i) => ({ file_id: `f_${i}`, size_bytes: 1000 + (i % 100_000), content_type: 'application/pdf' }),
  ],
  ['workflows.run.started', (i) => ({ workflow_id: `wf_${i % 50}`, run_id: `run_${i}` })],
  ['agents.run.started', (i) => ({ agent_id: `agent_${i % 20}`, run_id: `run_${i}` })],
  ['conversations.conversation.created', (i) => ({ agent_id: `agent_${i % 20}`, channel: 'web' })],
  ['containers.container.created', (i) => ({ container_id: `ctr_${i}` })],
];

export const benchActions = actionShapes.map(([action]) => action);

/** The i-th event of a tenant, as `record` takes it (with `ip`, never `ip_hash`). */
export function eventInput(tenantId: string, i: number): Record<string, unknown> {
  const [action, metadata] = actionShapes[i % actionShapes.length] as (typeof actionShapes)[number];
  return {
    tenant_id: tenantId,
    action,
    actor_id: `user_${i % 5000}`,
    object_type: 'document',
    object_id: `doc_${i % 20_000}`,
    source: 'api',
    request_id: `req_${tenantId}_${i}`,
    ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) bench',
    metadata: {
      ...metadata(i),
      context: { path: `/app/projects/${i % 300}/documents`, note: 'x'.repeat(120 + ((i * 37) % 170)) },
    },
  };
}

/** Tenant sizes with a skew (a few huge tenants, a long tail) summing to about `total`. */
export function skewedTenants(prefix: string, total: number, count: number): Array<[string, number]> {
  const weights = Array.from({ length: count }, (_, i) => 1 / (i + 1));
  const sum = weights.reduce((a, b) => a + b, 0);
  return weights.map((weight, i) => [`${prefix}${i}`, Math.max(1, Math.round((total * weight) / sum))]);
}

/**
 * Loads events straight into the schema with SQL (generate_series), far faster than
 * any client, for the data that a workload reads but does not measure writing: each
 * tenant gets seq 1..N and created_at rising by a second per event, ending now.
 */
export async function bulkLoad(url: string, tenants: ReadonlyArray<[string, number]>): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    // Every month the events span gets its partition, so that none lands in the default.
    const longest = Math.max(...tenants.map(([, count]) => count));
    await client.query("select activity_ensure_partitions(now() - $1::int * interval '1 second', now())", [
      longest,
    ]);
    for (const [tenantId, count] of tenants) {
      for (let from = 1; from <= count; from += 250_000) {
        const to = Math.min(count, from + 249_999);
        await client.query(
          `insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, object_type, object_id,
             status, source, request_id, ip_hash, user_agent, metadata, created_at)
           select $1, g, gen_random_uuid(), (array[${benchActions.map((a) => `'${a}'`).join(',')}])[1 + g % ${benchActions.length}],
             'user', 'user_' || (g % 5000), 'document', 'doc_' || (g % 20000),
             case when g % 10 = 0 then 'failure' else 'success' end, 'api', 'req_' || $1 || '_' || g,
             md5(g::text), 'Mozilla/5.0 (X11; Linux x86_64) bench',
             jsonb_build_object('run_id', 'run_' || g, 'context', jsonb_build_object('path', '/app/projects/' || (g % 300), 'note', repeat('x', 120 + g % 100))),
             now() - ($2::int - g) * interval '1 second'
           from generate_series($3::int, $4::int) g`,
          [tenantId, count, from, to],
        );
      }
      await client.query(
        `insert into activity_tenants (tenant_id, last_seq, last_created_at) values ($1, $2, now())
         on conflict (tenant_id) do update set last_seq = excluded.last_seq, last_created_at = excluded.last_created_at`,
        [tenantId, count],
      );
    }
    await client.query('vacuum analyze activity_events');
  } finally {
    await client.end();
  }
}

/** Writes lines to a file with backpressure (constant memory for a million events). */
export async function writeLines(path: string, count: number, line: (i: number) => string): Promise<void> {
  const out = createWriteStream(path);
  for (let i = 0; i < count; i++) {
    if (!out.write(`${line(i)}\n`)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

/** The tenant of the i-th event of an import (B4): runs of 1,000 over 5 tenants. */
export const importTenant = (i: number) => `import_${Math.floor(i / 1000) % 5}`;
