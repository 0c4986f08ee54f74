// Writes N NDJSON events for one tenant to stdout: node generate-events.mjs N TENANT
const count = Number(process.argv[2] ?? 1000);
const tenant = process.argv[3] ?? 'big';
const kinds = [
  ['auth.login.success', () => ({ method: 'password' })],
  ['auth.login.failure', () => ({ reason: 'invalid_credentials' })],
  ['storage.file.uploaded', (i) => ({ file_id: `f${i}`, size_bytes: i, content_type: 'text/plain' })],
  ['workflows.run.started', (i) => ({ workflow_id: `w${i % 100}`, run_id: `r${i}` })],
];
let buffered = '';
for (let i = 0; i < count; i++) {
  const [action, metadata] = kinds[i % kinds.length];
  buffered += `${JSON.stringify({
    tenant_id: tenant,
    action,
    actor_id: `u${i % 5000}`,
    object_type: 'file',
    object_id: `o${i % 20000}`,
    request_id: `req-${i}`,
    ip: `10.0.${(i >> 8) & 255}.${i & 255}`,
    metadata: { ...metadata(i), context: { note: 'x'.repeat(150) } },
  })}\n`;
  if (buffered.length > 1 << 20) {
    process.stdout.write(buffered);
    buffered = '';
  }
}
process.stdout.write(buffered);
