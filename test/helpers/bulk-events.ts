/**
 * SQL that stores `count` events of `tenant` at once, seqs 1 to `count`, each with some
 * 200 characters of metadata: far more NDJSON than a pipe holds. They have no leaf hash
 * (as if stored before the tree), which reading them does not need.
 */
export function bulkEventsSql(tenant: string, count: number): string {
  return `
    insert into activity_tenants values ('${tenant}', ${count}, now());
    insert into activity_events (tenant_id, seq, id, action, actor_type, actor_id, status, metadata, created_at)
      select '${tenant}', g, gen_random_uuid(), 'auth.login.success', 'user', 'user-' || g, 'success',
        jsonb_build_object('context', jsonb_build_object('note', repeat('x', 200))),
        now() - interval '1 hour' + g * interval '1 ms'
      from generate_series(1, ${count}) g;`;
}
