// p50/p99 of the service's query for a big tenant: node query-pages.mjs TENANT
import { loadConfig, openApp } from '../../dist/index.js';

const tenant = process.argv[2] ?? 'big';
const app = await openApp(loadConfig());
const { service } = app;

async function measure(label, input, runs = 200) {
  for (let i = 0; i < 20; i++) await service.query(tenant, input);
  const times = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await service.query(tenant, input);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q) => times[Math.min(runs - 1, Math.floor(q * runs))].toFixed(2);
  console.log(`${label.padEnd(34)} p50 ${at(0.5)} ms  p99 ${at(0.99)} ms`);
}

async function cursorAfter(rows) {
  let cursor;
  for (let read = 0; read < rows; read += 500) {
    const page = await service.query(tenant, { limit: 500, ...(cursor ? { cursor } : {}) });
    if (!page.next_cursor) break;
    cursor = page.next_cursor;
  }
  return cursor;
}

await measure('first page (50)', { limit: 50 });
await measure('page 10,000 events deep', { limit: 50, cursor: await cursorAfter(10_000) });
await measure('page 990,000 events deep', { limit: 50, cursor: await cursorAfter(990_000) });
await measure('action prefix auth.*', { limit: 50, action: 'auth.*' });
await measure('two actions', { limit: 50, action: 'auth.login.failure,workflows.run.started' });
await measure('actor', { limit: 50, actor_id: 'u42' });
await measure('object type and id', { limit: 50, object_type: 'file', object_id: 'o77' });
await measure('request id', { limit: 50, request_id: 'req-500000' });
await measure('since 1h', { limit: 50, since: '1h' });
await app.close();
