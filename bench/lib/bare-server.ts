import { createServer } from 'node:http';
import pg from 'pg';

/**
 * The B9 baseline: the least a server can do to answer `GET /api/v1/activity` —
 * node:http and a pg Pool of 10 (as serve's), the same keyset SQL prepared once per
 * connection with the same session settings (PGOPTIONS, set by the bench, as serve's
 * page connections), rows mapped to the same JSON shape; no auth, no parameter
 * validation, no metrics, no logs, no signed cursor. It serves one tenant, named on
 * the command line, where serve takes it from the token.
 *
 * Run as a process of its own: `node bare-server.js DATABASE_URL TENANT PORT`.
 */
const [databaseUrl, tenantId, portText] = process.argv.slice(2);
if (!databaseUrl || !tenantId || !portText) {
  process.stderr.write('usage: node bare-server.js DATABASE_URL TENANT PORT\n');
  process.exit(2);
}

const columns =
  'id, tenant_id, seq, action, actor_type, actor_id, object_type, object_id, status, source, request_id, ip_hash, user_agent, metadata, created_at';
const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
pool.on('error', () => {});

interface Row {
  [column: string]: unknown;
  seq: string | number;
  created_at: Date;
}

const server = createServer(async (request, response) => {
  try {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (url.pathname === '/readyz') {
      await pool.query('select 1');
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end('{"status":"ready"}');
      return;
    }
    if (url.pathname !== '/api/v1/activity' || request.method !== 'GET') {
      response.writeHead(404);
      response.end();
      return;
    }
    const limit = Math.min(200, Math.max(1, Math.trunc(Number(url.searchParams.get('limit') ?? 50)) || 50));
    // The limit as a literal, as the tool sends it, so both keep one plan per statement.
    const { rows } = await pool.query<Row>({
      name: `bare_first_page_${limit}`,
      text: `select ${columns} from activity_events where tenant_id = $1 order by seq desc limit ${limit + 1}`,
      values: [tenantId],
    });
    const data = rows.slice(0, limit).map((row) => ({
      ...row,
      seq: Number(row.seq),
      created_at: row.created_at.toISOString(),
    }));
    const last = data.at(-1);
    // Same shape as serve's page; the cursor is the bare seq, not a signed one.
    const body = JSON.stringify({
      data,
      next_cursor: rows.length > limit && last ? String(last.seq) : null,
    });
    response.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    response.end(body);
  } catch (error) {
    response.writeHead(500);
    response.end(String(error));
  }
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portText), '127.0.0.1');

const stop = () => {
  server.close();
  server.closeAllConnections();
  void pool.end().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
