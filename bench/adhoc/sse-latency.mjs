// POSTs 1,000 events one at a time and times each from the POST to its SSE frame:
// node sse-latency.mjs SERVE_URL TOKEN (the token needs activity:read and activity:write)
const [url, token] = process.argv.slice(2);
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const total = 1000;
const sentAt = new Map();
const latencies = [];
let allArrived;
const arrived = new Promise((resolve) => {
  allArrived = resolve;
});

const stream = await fetch(`${url}/api/v1/activity/stream`, {
  headers: { authorization: headers.authorization },
});
const reader = stream.body.getReader();
const decoder = new TextDecoder();
void (async () => {
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = /^data: (.*)$/m.exec(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      const started = data ? sentAt.get(JSON.parse(data[1]).request_id) : undefined;
      if (started === undefined) continue;
      latencies.push(performance.now() - started);
      if (latencies.length === total) allArrived();
    }
  }
})();

await new Promise((resolve) => setTimeout(resolve, 300));
for (let i = 0; i < total; i++) {
  const requestId = `latency-${i}`;
  sentAt.set(requestId, performance.now());
  const response = await fetch(`${url}/api/v1/activity`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ action: 'auth.token.refreshed', request_id: requestId }),
  });
  await response.arrayBuffer();
  await new Promise((resolve) => setTimeout(resolve, 5));
}
await Promise.race([arrived, new Promise((resolve) => setTimeout(resolve, 10_000))]);
latencies.sort((a, b) => a - b);
const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(2);
console.log(`delivered ${latencies.length}/${total}  p50 ${at(0.5)} ms  p99 ${at(0.99)} ms`);
process.exit(0);
