import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { chmod, cp, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { call, startTestServer, type TestServer } from '../helpers/http-server.js';
import { type CliRun, cliFor, createTempDir, runCli, testSecret } from '../helpers/run-cli.js';
import {
  type ApiEvent,
  type BundleProof,
  canonicalJson,
  digestInput,
  eventLeafHash,
  leafBytes,
  leftSubtrees,
  microsecondsSinceEpoch,
  parseCheckpointText,
  parseVerifierKey,
  rightSubtrees,
  SpecViolation,
  treeHash,
  verifierKeyText,
  verifyBundle,
  verifyConsistency,
  verifyInclusion,
  verifyNote,
  verifyTenantCheckpoint,
} from '../helpers/spec-verifier.js';

/**
 * A customer's own verifier (test/helpers/spec-verifier.ts, written from RFC 8785,
 * RFC 9162, C2SP signed-note / tlog-checkpoint and DESIGN.md alone) checks what the
 * built CLI and the HTTP API hand out: signed notes, roots recomputed from the events
 * as the API returns them, inclusion and consistency proofs, and offline bundles.
 *
 * Three scenarios start together (before the first test) and run side by side: the CLI
 * on PostgreSQL (processes in parallel), the CLI on a fresh embedded data directory (one
 * process at a time: PGlite serves one), and `serve` on PostgreSQL in this process.
 */

// ----------------------------------------------------------------------------------------
// Small tools
// ----------------------------------------------------------------------------------------

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');
const unb64 = (text: string) => Buffer.from(text, 'base64');

/** A copy of `hash` with one bit flipped. */
function flipBit(hash: Uint8Array, byte = 0): Buffer {
  const copy = Buffer.from(hash);
  copy[byte % copy.length] = (copy[byte % copy.length] as number) ^ 0x01;
  return copy;
}

function lazily<T>(start: () => Promise<T>): () => Promise<T> {
  let running: Promise<T> | undefined;
  return () => {
    running ??= start();
    return running;
  };
}

/** Runs `tasks` with at most `limit` at a time; results in order. */
async function inParallel<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await (tasks[index] as () => Promise<T>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results;
}

/** The run's stdout as JSON, or an error that shows what the CLI said. */
function jsonOf<T>(run: CliRun, what: string): T {
  if (run.exitCode !== 0) {
    throw new Error(
      `${what}: exit ${run.exitCode}, stdout ${run.stdout.slice(0, 2000)} stderr ${run.stderr}`,
    );
  }
  return JSON.parse(run.stdout) as T;
}

function ndjsonOf(run: CliRun, what: string): ApiEvent[] {
  if (run.exitCode !== 0) throw new Error(`${what}: exit ${run.exitCode}, stderr ${run.stderr}`);
  return run.stdout === ''
    ? []
    : run.stdout
        .slice(0, -1)
        .split('\n')
        .map((line) => JSON.parse(line) as ApiEvent);
}

/** A fresh Ed25519 key: its PKCS#8 PEM for the tool, its raw 32 bytes for us. */
function newSigningKey(): { pem: string; publicKey: Buffer } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicKey: Buffer.from(jwk.x as string, 'base64url'),
  };
}

/** What the customer can say about one event when its leaf hash is not the tool's. */
function leafDiagnosis(event: ApiEvent): string {
  return [
    `seq ${String(event.seq)} created_at ${String(event.created_at)} (µs ${microsecondsSinceEpoch(String(event.created_at))})`,
    `digest input (JCS): ${digestInput(event)}`,
    `leaf bytes: ${leafBytes(event).toString('hex')}`,
    `our leaf hash: ${b64(eventLeafHash(event))}`,
  ].join('\n');
}

interface CheckpointRow {
  tenant_id: string;
  size: number;
  root_hash: string;
  note: string;
}
interface CheckpointOutput {
  public_key: string;
  checkpoints: CheckpointRow[];
}
interface InclusionJson {
  tenant_id: string;
  seq: number;
  tree_size: number;
  leaf_hash: string;
  proof: string[];
  checkpoint: string;
}
interface ConsistencyJson {
  from: number;
  to: number;
  proof: string[];
}

/**
 * Checks one inclusion proof as a customer would: the note is signed and names the
 * tenant, its size is tree_size, leaf_hash is the hash we compute from the event, and
 * the path takes that leaf hash to the signed root.
 */
function checkInclusion(proof: InclusionJson, event: ApiEvent, verifierKey: string, tenantId: string) {
  expect(proof.tenant_id).toBe(tenantId);
  expect(proof.seq).toBe(event.seq);
  const checkpoint = verifyTenantCheckpoint(proof.checkpoint, verifierKey, tenantId);
  expect(checkpoint.size, 'the note is of tree_size').toBe(proof.tree_size);
  expect(proof.leaf_hash, `leaf hash of seq ${proof.seq}\n${leafDiagnosis(event)}`).toBe(
    b64(eventLeafHash(event)),
  );
  const path = proof.proof.map(unb64);
  expect(
    verifyInclusion(
      (event.seq as number) - 1,
      proof.tree_size,
      eventLeafHash(event),
      path,
      checkpoint.rootHash,
    ),
    `inclusion of seq ${proof.seq} in ${proof.tree_size}`,
  ).toBe(true);
}

/** Roots of the first `size` events, by RFC 9162's definition, compared to a signed checkpoint. */
function expectRoot(events: readonly ApiEvent[], size: number, rootBase64: string, what: string) {
  expect(events.length, `${what}: events for size ${size}`).toBeGreaterThanOrEqual(size);
  const prefix = events.slice(0, size);
  expect(prefix.map((event) => event.seq)).toEqual(Array.from({ length: size }, (_, i) => i + 1));
  const root = treeHash(prefix.map(eventLeafHash));
  if (b64(root) !== rootBase64) {
    // Every leaf's inputs, so that a difference can be traced to the bytes.
    throw new Error(
      `${what}: root of ${size} recomputed from the events is ${b64(root)}, the checkpoint says ${rootBase64}\n` +
        prefix.map(leafDiagnosis).join('\n---\n'),
    );
  }
}

// ----------------------------------------------------------------------------------------
// Events with varied content
// ----------------------------------------------------------------------------------------

/** Numbers as spelled in the JSON text (not as JSON.stringify would write them). */
const spelledNumbers =
  '[1.5e-7, 1e21, -0, 4.50, 2e-3, 1E30, 0.000001, 1e-7, 123456789012, 9007199254740991, ' +
  '-9007199254740991, 5e-324, 1.7976931348623157e308, 0.1, 100, -1.25E-10, 0.30000000000000004, 1e+2]';

/** Keys whose UTF-16 order differs from their code-point order, and other oddities. */
const oddKeys = {
  '\ufb33': 'Hebrew dalet with dagesh (U+FB33)',
  '😀': 'astral (surrogates D83D DE00)',
  '｡': 'halfwidth full stop (U+FF61)',
  '\u20ac': 'euro',
  '\r': 'carriage return',
  '1': 'one',
  '10': 'ten',
  '9': 'nine',
  '\u0080': 'C1 control',
  '\u00f6': 'o umlaut',
  e: 'plain e',
  é: 'e acute, composed',
  'e\u0301': 'e acute, decomposed',
  B: 'capital',
  b: 'small',
  _: 'underscore',
  '': 'the empty key',
};

const escapes =
  'quote " backslash \\ slash / newline \n tab \t cr \r backspace \b formfeed \f ' +
  'ctl \u0001 \u001f del \u007f line-sep \u2028 para-sep \u2029 bom \ufeff nbsp \u00a0';

/**
 * NDJSON lines for `activity record --file`: batch 1 (`main` 1..4, `other` 1..2),
 * batch 2 (`main` 5..7, `other` 3) or batch 3 (`main` 8..9).
 */
function cliBatch(batch: 1 | 2 | 3, main: string, other: string): string {
  const lines: string[] = [];
  const add = (event: Record<string, unknown>) => lines.push(JSON.stringify(event));
  if (batch === 1) {
    add({
      tenant_id: main,
      action: 'auth.login.success',
      actor_id: 'u_1',
      ip: '203.0.113.9',
      user_agent: 'Mozilla/5.0 (X11; Linux x86_64) “quoted” — ünïcödé 😀',
      source: 'cli',
      request_id: 'req-1',
      metadata: {
        mfa: true,
        method: 'password',
        context: { z: 1, a: { y: [1, 2, { b: null, a: false }], x: 'x' }, ...oddKeys },
      },
    });
    add({ tenant_id: other, action: 'auth.logout.completed', actor_id: 'someone-else' });
    // Spelled by hand, keys in odd orders: the tool must hash the values, not the spelling.
    lines.push(
      `{"metadata":{"size_bytes":9007199254740991,"context":{"n":${spelledNumbers},"odd":{"b":2,"a":1,"B":3,"10":10,"9":9,"_":0}},"file_id":"f-1"},"action":"storage.file.uploaded","tenant_id":"${main}","actor_id":"u_2","object_type":"file","object_id":"f-1"}`,
    );
    add({
      tenant_id: main,
      action: 'agents.run.ended',
      actor_type: 'service_account',
      actor_id: 'sa-9',
      status: 'failure',
      ip: '2001:db8::42',
      object_type: 'agent',
      object_id: 'agt/1 with spaces',
      metadata: {
        outcome: 'failed',
        run_id: 'r1',
        agent_id: 'a1',
        duration_ms: 0,
        // "api_key" is scrubbed: the leaf holds what the API returns, "[REDACTED]".
        context: { escapes, api_key: 'sk_live_0123456789abcdef', list: [[], {}, [[[]]], ''] },
      },
    });
    add({
      tenant_id: other,
      action: 'billing.payment.state_changed',
      actor_type: 'system',
      metadata: {
        payment_id: 'pay_9',
        to_state: 'failed',
        from_state: null,
        currency: 'USD',
        amount_minor: 1,
      },
    });
    add({
      tenant_id: main,
      action: 'billing.payment.state_changed',
      actor_type: 'system',
      metadata: {
        to_state: 'paid',
        payment_id: 'pay_1',
        from_state: null,
        amount_minor: 4503599627370497,
        currency: 'EUR',
        context: { deep: { l1: { l2: { l3: { l4: 'deep' } } } } },
      },
    });
  } else if (batch === 2) {
    add({
      tenant_id: main,
      id: randomUUID(),
      action: 'storage.file.uploaded',
      actor_type: 'api_key',
      actor_id: 'key_𝔘𝔫𝔦𝔠𝔬𝔡𝔢',
      status: 'pending',
      metadata: { file_id: 'f-2', filename: 'naïve résumé — final (2).pdf', content_type: 'application/pdf' },
    });
    add({ tenant_id: other, action: 'auth.email.verified', metadata: { context: { at: -1.25e-10 } } });
    lines.push(
      `{"tenant_id":"${main}","action":"auth.token.refreshed","request_id":"req 2 / \\u00fc","metadata":{"context":{"b":{"z":[3,2,1],"a":"\\u00e9\\ud83d\\ude00\\u000b"},"a":1E-7,"A":-0.0}},"source":"worker"}`,
    );
    add({
      tenant_id: main,
      action: 'workflows.run.started',
      object_type: 'workflow',
      object_id: 'wf-1',
      metadata: { workflow_id: 'wf-1', run_id: 'run-1', context: { n: 1e21, m: 1.5e-7, k: -0 } },
    });
  } else {
    add({
      tenant_id: main,
      action: 'conversations.conversation.created',
      metadata: {
        context: {
          long: 'ä'.repeat(1000),
          nested: [{ b: 1, a: [{ d: 4, c: 3 }] }],
          keys: { '\u00e9': 1, 'e\u0301': 2, '\ud83d\ude00': 3, '\uff61': 4 },
        },
      },
    });
    add({
      tenant_id: main,
      action: 'vector.sync.state_changed',
      user_agent: 'curl/8.5.0',
      ip: '198.51.100.1',
      metadata: {
        vector_store_id: 'vs-1',
        to_state: 'synced',
        document_count: 123456789012,
        error: 'timeout: “upstream” \\ 503',
      },
    });
  }
  return `${lines.join('\n')}\n`;
}

// ----------------------------------------------------------------------------------------
// Scenario 1: the built CLI on PostgreSQL
// ----------------------------------------------------------------------------------------

const logName = 'audit.example.com/activity-log';
const cliMain = 'acme.eu-1:prod';
const cliOther = 'other-tenant';

interface Export {
  name: string;
  dir: string;
  summary: { first_seq: number; last_seq: number; tree_size: number; events: number };
}

interface CliScenario {
  /** The verifier key derived by us from the signing key we gave the tool. */
  expectedKey: string;
  /** What `checkpoint --public-key` printed. */
  printedKey: string;
  /** The printed key, as a customer would keep it: what every check below uses. */
  verifierKey: string;
  checkpointRuns: CheckpointOutput[];
  events: { main: ApiEvent[]; other: ApiEvent[] };
  proofs: { seq: number; size: number | undefined; json: InclusionJson }[];
  exports: Export[];
  tampered: { dir: string; editedSeq: number };
  toolVerifyTampered: CliRun;
}

const removals: (() => Promise<unknown>)[] = [];

/**
 * Three batches with a checkpoint after each (every tenant, then `main` only, then every
 * tenant), then, in parallel: the verifier key, the events, a proof of every event (and
 * two against older checkpoints), and two bundles (whole, and batch 2 alone by time).
 */
async function runCliScenario(): Promise<CliScenario> {
  const [database, temp] = await Promise.all([createTestDatabase(), createTempDir('independent-verifier')]);
  removals.push(database.drop, temp.remove);
  const key = newSigningKey();
  const keyFile = join(temp.path, 'signing-key.pem');
  await writeFile(keyFile, key.pem);
  await chmod(keyFile, 0o600);
  const cli = cliFor({
    ACTIVITY_DATABASE_URL: database.url,
    ACTIVITY_SECRET: testSecret,
    ACTIVITY_SIGNING_KEY_FILE: keyFile,
    ACTIVITY_LOG_NAME: logName,
  });

  const checkpointRuns: CheckpointOutput[] = [];
  const recordBatch = async (batch: 1 | 2 | 3, expected: number) => {
    const file = join(temp.path, `batch-${batch}.ndjson`);
    await writeFile(file, cliBatch(batch, cliMain, cliOther));
    const result = jsonOf<{ recorded: number; rejected: unknown[] }>(
      await cli(['record', '--file', file, '--format', 'json']),
      `record batch ${batch}`,
    );
    if (result.recorded !== expected || result.rejected.length > 0) {
      throw new Error(`record batch ${batch}: ${JSON.stringify(result)}`);
    }
  };
  const checkpoint = async (args: string[]) => {
    checkpointRuns.push(
      jsonOf<CheckpointOutput>(await cli(['checkpoint', ...args, '--format', 'json']), 'checkpoint'),
    );
  };
  await recordBatch(1, 6);
  await checkpoint([]);
  await recordBatch(2, 4);
  await checkpoint(['--tenant', cliMain]);
  await recordBatch(3, 2);
  await checkpoint([]);

  const [mainRun, otherRun] = await Promise.all(
    [cliMain, cliOther].map((tenant) =>
      cli(['query', '--tenant', tenant, '--action', '*', '--all', '--format', 'ndjson']),
    ),
  );
  const events = {
    main: ndjsonOf(mainRun as CliRun, 'query main').reverse(),
    other: ndjsonOf(otherRun as CliRun, 'query other').reverse(),
  };
  const createdAt = (seq: number) => String(events.main[seq - 1]?.created_at);

  // Every event the latest checkpoint signed: the tool's own that follows it is in none yet.
  const signedSize = Math.max(
    ...checkpointRuns
      .flatMap((run) => run.checkpoints)
      .flatMap((row) => (row.tenant_id === cliMain ? [row.size] : [])),
  );
  const proofRequests: { seq: number; size: number | undefined }[] = [
    ...Array.from({ length: signedSize }, (_, i) => ({ seq: i + 1, size: undefined })),
    { seq: 4, size: 4 },
    { seq: 2, size: 8 },
  ];
  const exportRequests: { name: string; window: string[] }[] = [
    { name: 'whole', window: [] },
    // The second batch's events of the main tenant.
    { name: 'middle', window: ['--since', createdAt(6), '--until', createdAt(9)] },
  ];
  const runs = await inParallel(4, [
    ...exportRequests.map(
      ({ name, window }) =>
        () =>
          cli([
            'export',
            '--tenant',
            cliMain,
            ...window,
            '--out',
            join(temp.path, `bundle-${name}`),
            '--format',
            'json',
          ]),
    ),
    () => cli(['checkpoint', '--public-key']),
    ...proofRequests.map(
      ({ seq, size }) =>
        () =>
          cli([
            'proof',
            '--tenant',
            cliMain,
            '--seq',
            String(seq),
            ...(size === undefined ? [] : ['--size', String(size)]),
            '--format',
            'json',
          ]),
    ),
  ]);
  const exports = exportRequests.map(({ name }, i) => ({
    name,
    dir: join(temp.path, `bundle-${name}`),
    summary: jsonOf<Export['summary']>(runs[i] as CliRun, `export ${name}`),
  }));
  const publicKeyRun = runs[exportRequests.length] as CliRun;
  if (publicKeyRun.exitCode !== 0) throw new Error(`checkpoint --public-key: ${publicKeyRun.stderr}`);
  const proofs = proofRequests.map((request, i) => ({
    ...request,
    json: jsonOf<InclusionJson>(
      runs[exportRequests.length + 1 + i] as CliRun,
      `proof ${JSON.stringify(request)}`,
    ),
  }));

  // One event's metadata edited in a copy of the middle bundle; the tool's own check of it.
  const middle = exports.find((bundle) => bundle.name === 'middle') as Export;
  const tamperedDir = join(temp.path, 'bundle-tampered');
  await cp(middle.dir, tamperedDir, { recursive: true });
  const lines = (await readFile(join(tamperedDir, 'events.ndjson'), 'utf8')).slice(0, -1).split('\n');
  const edited = JSON.parse(lines[1] as string) as ApiEvent;
  const metadata = edited.metadata as Record<string, unknown>;
  edited.metadata = { ...metadata, context: { ...(metadata.context as object), edited: true } };
  lines[1] = JSON.stringify(edited);
  await writeFile(join(tamperedDir, 'events.ndjson'), `${lines.join('\n')}\n`);
  const toolVerifyTampered = await cli([
    'verify',
    '--bundle',
    tamperedDir,
    '--public-key',
    publicKeyRun.stdout.trim(),
    '--format',
    'json',
  ]);
  return {
    expectedKey: verifierKeyText(logName, key.publicKey),
    printedKey: publicKeyRun.stdout,
    verifierKey: publicKeyRun.stdout.trim(),
    checkpointRuns,
    events,
    proofs,
    exports,
    tampered: { dir: tamperedDir, editedSeq: edited.seq as number },
    toolVerifyTampered,
  };
}

// ----------------------------------------------------------------------------------------
// Scenario 2: the built CLI on a fresh embedded (PGlite) data directory
// ----------------------------------------------------------------------------------------

const embeddedTenant = 'local';

interface EmbeddedScenario {
  checkpoint: CheckpointOutput;
  events: ApiEvent[];
  bundleDir: string;
  proof: InclusionJson;
}

/** One process at a time: record, checkpoint, query, export, proof. */
async function runEmbeddedScenario(): Promise<EmbeddedScenario> {
  const [data, work] = await Promise.all([createTempDir('verifier-data'), createTempDir('verifier-cwd')]);
  removals.push(data.remove, work.remove);
  const run = (args: readonly string[]) =>
    runCli(args, { env: { ACTIVITY_DATA_DIR: data.path }, cwd: work.path, timeoutMs: 60_000 });
  const file = join(work.path, 'events.ndjson');
  await writeFile(file, cliBatch(1, embeddedTenant, embeddedTenant));
  const recorded = jsonOf<{ recorded: number }>(
    await run(['record', '--file', file, '--format', 'json']),
    'record',
  );
  if (recorded.recorded !== 6) throw new Error(`embedded record: ${JSON.stringify(recorded)}`);
  const checkpoint = jsonOf<CheckpointOutput>(await run(['checkpoint', '--format', 'json']), 'checkpoint');
  const events = ndjsonOf(
    await run(['query', '--tenant', embeddedTenant, '--action', '*', '--all', '--format', 'ndjson']),
    'query',
  ).reverse();
  const bundleDir = join(work.path, 'bundle');
  jsonOf(await run(['export', '--tenant', embeddedTenant, '--out', bundleDir, '--format', 'json']), 'export');
  const proof = jsonOf<InclusionJson>(
    await run(['proof', '--tenant', embeddedTenant, '--seq', '3', '--format', 'json']),
    'proof',
  );
  return { checkpoint, events, bundleDir, proof };
}

// ----------------------------------------------------------------------------------------
// Scenario 3: `serve` on PostgreSQL
// ----------------------------------------------------------------------------------------

const httpTenant = 'http.tenant:42';

interface HttpScenario {
  /** Derived by us from the signing key we gave the server. */
  verifierKey: string;
  /** The key the server's signer reports. */
  serverKey: string;
  signed: { size: number; rootHash: string; note: string }[];
  latestNote: { status: number; contentType: string | null; text: string };
  events: ApiEvent[];
  proofs: { seq: number; size: number | undefined; status: number; json: InclusionJson }[];
  consistency: { from: number; to: number; status: number; json: ConsistencyJson }[];
}

/** Request bodies, one per checkpoint: a single event, or a batch (JSON array). */
function httpBodies(): string[] {
  const one = (event: Record<string, unknown>) => JSON.stringify(event);
  const many = (...events: Record<string, unknown>[]) => JSON.stringify(events);
  return [
    one({
      action: 'auth.signup.completed',
      actor_id: 'u_1',
      ip: '192.0.2.1',
      metadata: { context: oddKeys },
    }),
    `{"action":"auth.login.success","metadata":{"context":{"n":${spelledNumbers}}},"actor_id":"u_1"}`,
    one({ action: 'auth.login.failure', status: 'failure', metadata: { reason: 'rate_limited' } }),
    one({ action: 'auth.logout.completed', user_agent: 'Agent/1 “ü” 😀', request_id: 'r-4' }),
    many(
      { action: 'storage.file.uploaded', metadata: { file_id: 'f', size_bytes: 0, context: { s: escapes } } },
      {
        action: 'storage.file.deleted',
        actor_type: 'api_key',
        metadata: { file_id: 'f', context: { k: -0 } },
      },
    ),
    one({ action: 'auth.token.refreshed', source: 'api', metadata: { context: { token: 'secret-value' } } }),
    `{"metadata":{"context":{"z":{"b":[1E30,2e-3],"a":"\\u0041\\u00df\\ud834\\udd1e"}}},"action":"auth.email.verified"}`,
    many(
      { action: 'auth.password.changed', actor_id: 'u_2' },
      { action: 'auth.password_reset.requested', metadata: { context: { when: 1.5e-7 } } },
      { action: 'auth.password_reset.completed', object_type: 'user', object_id: 'u 2' },
    ),
    many(
      ...Array.from({ length: 5 }, (_, i) => ({
        action: 'workflows.step.ended',
        actor_type: 'system',
        metadata: {
          workflow_id: 'wf',
          run_id: `run-${i}`,
          step_id: `step-${i}`,
          outcome: 'completed',
          duration_ms: 9007199254740991 - i,
          context: { i, big: 1e21 * (i + 1), tiny: 5e-324 * (i + 1) },
        },
      })),
    ),
    one({
      action: 'containers.container.created',
      metadata: { container_id: 'c-1', image: 'img@sha256:00' },
    }),
  ];
}

async function runHttpScenario(): Promise<HttpScenario> {
  const [database, temp] = await Promise.all([createTestDatabase(), createTempDir('verifier-http')]);
  removals.push(database.drop, temp.remove);
  const key = newSigningKey();
  const keyFile = join(temp.path, 'signing-key.pem');
  await writeFile(keyFile, key.pem);
  await chmod(keyFile, 0o600);
  const server: TestServer = await startTestServer({
    databaseUrl: database.url,
    env: { ACTIVITY_SIGNING_KEY_FILE: keyFile, ACTIVITY_LOG_NAME: logName },
  });
  // Before the database goes: the server holds connections to it.
  removals.push(() => server.close());
  const token = await server.token(httpTenant);
  const get = <T>(path: string) => call<T>(server.url, path, { token });

  const signed: HttpScenario['signed'] = [];
  for (const body of httpBodies()) {
    const response = await call(server.url, '/api/v1/activity', { token, body });
    if (response.status !== 201) throw new Error(`POST ${body}: ${response.status} ${response.text}`);
    const checkpoints = await server.app.integrity.checkpoint({ tenantId: httpTenant });
    for (const checkpoint of checkpoints) {
      signed.push({ size: checkpoint.size, rootHash: b64(checkpoint.rootHash), note: checkpoint.note });
    }
  }
  const latest = await call(server.url, '/api/v1/activity/checkpoint', { token });
  // Every event, the tool's own included (`action=*`), up to the latest checkpoint: the
  // read of this page is recorded after it, past what was signed.
  const everything = await get<{ data: ApiEvent[]; next_cursor: string | null }>(
    '/api/v1/activity?limit=200&action=*',
  );
  if (everything.status !== 200 || everything.json.next_cursor !== null)
    throw new Error(`GET /api/v1/activity?action=*: ${everything.text}`);
  const sizes = signed.map((checkpoint) => checkpoint.size);
  const proofRequests = [
    ...sizes.flatMap((size) => Array.from({ length: size }, (_, i) => ({ seq: i + 1, size }))),
    ...Array.from({ length: sizes.at(-1) ?? 0 }, (_, i) => ({ seq: i + 1, size: undefined })),
  ];
  const proofs = await inParallel(
    8,
    proofRequests.map(({ seq, size }) => async () => {
      const response = await get<InclusionJson>(
        `/api/v1/activity/proof?seq=${seq}${size === undefined ? '' : `&size=${size}`}`,
      );
      return { seq, size, status: response.status, json: response.json };
    }),
  );
  const pairs = sizes.flatMap((from) => sizes.filter((to) => to >= from).map((to) => ({ from, to })));
  const consistency = await inParallel(
    8,
    pairs.map(({ from, to }) => async () => {
      const response = await get<ConsistencyJson>(`/api/v1/activity/consistency?from=${from}&to=${to}`);
      return { from, to, status: response.status, json: response.json };
    }),
  );
  return {
    verifierKey: verifierKeyText(logName, key.publicKey),
    serverKey: (await server.app.integrity.signer()).publicKey,
    signed,
    latestNote: { status: latest.status, contentType: latest.headers.get('content-type'), text: latest.text },
    events: everything.json.data.filter((event) => (event.seq as number) <= (sizes.at(-1) ?? 0)).reverse(),
    proofs,
    consistency,
  };
}

// ----------------------------------------------------------------------------------------
// The tests
// ----------------------------------------------------------------------------------------

const scenarios = {
  cli: lazily(runCliScenario),
  embedded: lazily(runEmbeddedScenario),
  http: lazily(runHttpScenario),
};

beforeAll(() => {
  // Started together, awaited by the tests that need them.
  for (const start of Object.values(scenarios)) start().catch(() => {});
});

afterAll(async () => {
  await Promise.allSettled(Object.values(scenarios).map((start) => start()));
  for (const remove of removals.reverse()) await remove().catch(() => {});
}, 60_000);

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));

describe('the spec verifier itself, on published vectors', () => {
  it('canonicalises JSON as RFC 8785 (its examples, number forms, refusals)', () => {
    const example = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(example)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
    const sorting = JSON.parse(
      '{"\\u20ac":1,"\\r":2,"\\ufb33":3,"1":4,"\\ud83d\\ude00":5,"\\u0080":6,"\\u00f6":7}',
    ) as Record<string, number>;
    expect(canonicalJson(sorting)).toBe('{"\\r":2,"1":4,"\u0080":6,"ö":7,"€":1,"😀":5,"\ufb33":3}');
    expect(canonicalJson([-0, 1e21, 1.5e-7, 2 ** 53 - 1, 1e-7, 0.1])).toBe(
      '[0,1e+21,1.5e-7,9007199254740991,1e-7,0.1]',
    );
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, '\ud800', { '\udc00': 1 }, [undefined]]) {
      expect(() => canonicalJson(bad)).toThrow(SpecViolation);
    }
  });

  it('verifies the RFC 6962 / 9162 proof vectors of transparency-dev/merkle, and rejects the forged ones', async () => {
    interface InclusionVector {
      leafIdx: number;
      treeSize: number;
      root: string;
      leafHash: string;
      proof: string[] | null;
      wantErr: boolean;
    }
    interface ConsistencyVector {
      size1: number;
      size2: number;
      root1: string;
      root2: string;
      proof: string[] | null;
      wantErr: boolean;
    }
    const root = join(fixtures, 'rfc6962', 'testdata');
    const files = async (kind: string) =>
      (await readdir(join(root, kind), { recursive: true }))
        .filter((file) => file.endsWith('.json'))
        .map((file) => join(root, kind, file));
    let checked = 0;
    for (const file of await files('inclusion')) {
      const v = JSON.parse(await readFile(file, 'utf8')) as InclusionVector;
      const ok = verifyInclusion(
        v.leafIdx,
        v.treeSize,
        unb64(v.leafHash),
        (v.proof ?? []).map(unb64),
        unb64(v.root),
      );
      expect(ok, file).toBe(!v.wantErr);
      checked++;
    }
    for (const file of await files('consistency')) {
      const v = JSON.parse(await readFile(file, 'utf8')) as ConsistencyVector;
      const ok = verifyConsistency(
        v.size1,
        v.size2,
        (v.proof ?? []).map(unb64),
        unb64(v.root1),
        unb64(v.root2),
      );
      expect(ok, file).toBe(!v.wantErr);
      checked++;
    }
    expect(checked).toBeGreaterThan(150);
  });

  it('verifies published signed notes (C2SP signed-note) and rejects them altered', async () => {
    const { notes } = JSON.parse(await readFile(join(fixtures, 'signed-note', 'vectors.json'), 'utf8')) as {
      notes: {
        verifier: string;
        note: string;
        checkpoint?: { origin: string; size: number; root: string };
      }[];
    };
    for (const { verifier, note, checkpoint } of notes) {
      const key = parseVerifierKey(verifier);
      const { text, signers } = verifyNote(note, [key]);
      expect(signers).toEqual([key.name]);
      if (checkpoint) {
        const parsed = parseCheckpointText(text);
        expect({ origin: parsed.origin, size: parsed.size, root: b64(parsed.rootHash) }).toEqual(checkpoint);
      }
      expect(() =>
        verifyNote(
          note.replace(/^./, (c) => (c === 'X' ? 'Y' : 'X')),
          [key],
        ),
      ).toThrow(/does not verify/);
    }
  });
});

describe('CLI on PostgreSQL, checked by the customer’s verifier', { timeout: 120_000 }, () => {
  it('`checkpoint --public-key` prints the verifier key derived from the signing key', async () => {
    const { printedKey, expectedKey, checkpointRuns } = await scenarios.cli();
    expect(printedKey).toBe(`${expectedKey}\n`);
    for (const run of checkpointRuns) expect(run.public_key).toBe(expectedKey);
    expect(parseVerifierKey(printedKey).name).toBe(logName);
  });

  it('every checkpoint note verifies, names its tenant, and carries the size and root printed beside it', async () => {
    const { checkpointRuns, verifierKey } = await scenarios.cli();
    const signed = checkpointRuns.map((run) =>
      run.checkpoints.map(({ tenant_id, size }) => `${tenant_id}:${size}`).sort(),
    );
    // Each tree holds, after the events of a checkpoint, that checkpoint's own event.
    expect(signed).toEqual([
      [`${cliMain}:4`, `${cliOther}:2`],
      [`${cliMain}:8`],
      [`${cliMain}:11`, `${cliOther}:4`],
    ]);
    for (const row of checkpointRuns.flatMap((run) => run.checkpoints)) {
      const checkpoint = verifyTenantCheckpoint(row.note, verifierKey, row.tenant_id);
      expect(checkpoint).toMatchObject({ size: row.size, extensions: [] });
      expect(b64(checkpoint.rootHash)).toBe(row.root_hash);
    }
  });

  it('the root recomputed from `query --all` output equals every checkpoint root', async () => {
    const { checkpointRuns, events } = await scenarios.cli();
    expect(events.main.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(events.other.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5]);
    const checkpointEvents = (tenantEvents: ApiEvent[]) =>
      tenantEvents.flatMap((event) =>
        event.action === 'activity.checkpoint.signed'
          ? [[event.seq, (event.metadata as { tree_size?: number }).tree_size]]
          : [],
      );
    expect(checkpointEvents(events.main)).toEqual([
      [5, 4],
      [9, 8],
      [12, 11],
    ]);
    expect(checkpointEvents(events.other)).toEqual([
      [3, 2],
      [5, 4],
    ]);
    for (const row of checkpointRuns.flatMap((run) => run.checkpoints)) {
      const tenantEvents = row.tenant_id === cliMain ? events.main : events.other;
      expectRoot(tenantEvents, row.size, row.root_hash, `tenant ${row.tenant_id}`);
    }
    // The redacted value is what the API returns, and so what the leaf holds.
    const scrubbed = events.main[2]?.metadata as { context: { api_key: string } };
    expect(scrubbed.context.api_key).toBe('[REDACTED]');
  });

  it('every `activity proof` verifies, its leaf_hash is the leaf hash recomputed from the event', async () => {
    const { proofs, events, verifierKey } = await scenarios.cli();
    expect(proofs).toHaveLength(13);
    for (const { seq, size, json } of proofs) {
      checkInclusion(json, events.main[seq - 1] as ApiEvent, verifierKey, cliMain);
      expect(json.tree_size).toBe(size ?? 11);
    }
  });

  it('the bundles `activity export` writes verify offline, whole and for a time window', async () => {
    const { exports, events, verifierKey } = await scenarios.cli();
    const ranges = Object.fromEntries(
      exports.map(({ name, summary }) => [name, [summary.first_seq, summary.last_seq, summary.tree_size]]),
    );
    expect(ranges).toEqual({ whole: [1, 11, 11], middle: [6, 8, 11] });
    for (const { name, dir, summary } of exports) {
      const bundle = await verifyBundle(dir, verifierKey);
      expect(bundle.tenantId, name).toBe(cliMain);
      expect(bundle.events.length, name).toBe(summary.events);
      // The bundle's events are the queried ones, field for field.
      expect(bundle.events, name).toEqual(events.main.slice(summary.first_seq - 1, summary.last_seq));
      // Each left and right hash is the subtree hash we compute from all the events.
      const leaves = events.main.map(eventLeafHash);
      const subtree = ({ start, level }: { start: number; level: number }) =>
        b64(treeHash(leaves.slice(start, start + 2 ** level)));
      const proof: BundleProof = bundle.proof;
      expect(proof.left, `${name} left`).toEqual(leftSubtrees(summary.first_seq - 1).map(subtree));
      expect(proof.right, `${name} right`).toEqual(
        rightSubtrees(summary.last_seq, summary.tree_size).map(subtree),
      );
    }
    const middle = exports.find((bundle) => bundle.name === 'middle')?.dir as string;
    const proof = JSON.parse(await readFile(join(middle, 'proof.json'), 'utf8')) as BundleProof;
    // Left of seq 6: seqs 1-4 and 5; right of seq 8: seqs 9-10 and 11.
    expect([proof.left.length, proof.right.length]).toEqual([2, 2]);
  });

  it('the verifier rejects a flipped proof hash, a note with its size changed, and an edited bundle', async () => {
    const { proofs, events, verifierKey, exports, tampered, toolVerifyTampered } = await scenarios.cli();
    const { json } = proofs.find(
      (proof) => proof.seq === 6 && proof.size === undefined,
    ) as (typeof proofs)[number];
    const checkpoint = verifyTenantCheckpoint(json.checkpoint, verifierKey, cliMain);
    const leaf = eventLeafHash(events.main[5] as ApiEvent);
    const path = json.proof.map(unb64);
    expect(path.length).toBeGreaterThanOrEqual(3);
    expect(verifyInclusion(5, 11, leaf, path, checkpoint.rootHash)).toBe(true);
    for (let i = 0; i < path.length; i++) {
      for (const byte of [0, 17, 31]) {
        const forged = path.map((hash, j) => (j === i ? flipBit(hash, byte) : hash));
        expect(verifyInclusion(5, 11, leaf, forged, checkpoint.rootHash), `hash ${i} byte ${byte}`).toBe(
          false,
        );
      }
    }
    expect(verifyInclusion(5, 11, flipBit(leaf), path, checkpoint.rootHash)).toBe(false);
    expect(verifyInclusion(4, 11, leaf, path, checkpoint.rootHash)).toBe(false);
    // (A size of 9 or 10 shapes the same path as 11: RFC 9162 checks the path, not the size.)
    expect(verifyInclusion(5, 8, leaf, path, checkpoint.rootHash)).toBe(false);
    expect(verifyInclusion(5, 11, leaf, path.slice(0, -1), checkpoint.rootHash)).toBe(false);

    // The note: its size changed, its origin changed, or checked with another key.
    expect(json.checkpoint).toContain('\n11\n');
    expect(() =>
      verifyTenantCheckpoint(json.checkpoint.replace('\n11\n', '\n10\n'), verifierKey, cliMain),
    ).toThrow(/does not verify/);
    expect(() =>
      verifyTenantCheckpoint(
        json.checkpoint.replace(`/tenants/${cliMain}\n`, `/tenants/${cliOther}\n`),
        verifierKey,
        cliOther,
      ),
    ).toThrow(/does not verify/);
    expect(() => verifyTenantCheckpoint(json.checkpoint, verifierKey, cliOther)).toThrow(/origin/);
    const otherKey = verifierKeyText(logName, newSigningKey().publicKey);
    expect(() => verifyTenantCheckpoint(json.checkpoint, otherKey, cliMain)).toThrow(
      /no signature by a known key/,
    );

    // The bundle with one event's metadata edited; then with one left hash flipped.
    const middle = exports.find((bundle) => bundle.name === 'middle') as Export;
    await expect(verifyBundle(middle.dir, verifierKey)).resolves.toBeTruthy();
    expect(tampered.editedSeq).toBe(7);
    await expect(verifyBundle(tampered.dir, verifierKey)).rejects.toThrow(/is not the signed root/);
    // The tool's own offline check agrees that the edited bundle does not hold.
    expect(toolVerifyTampered.exitCode, toolVerifyTampered.stdout + toolVerifyTampered.stderr).toBe(4);
    await cp(join(middle.dir, 'events.ndjson'), join(tampered.dir, 'events.ndjson'));
    await expect(verifyBundle(tampered.dir, verifierKey)).resolves.toBeTruthy();
    const proofFile = join(tampered.dir, 'proof.json');
    const proof = JSON.parse(await readFile(proofFile, 'utf8')) as BundleProof;
    const left = proof.left.map((hash, i) => (i === 0 ? b64(flipBit(unb64(hash))) : hash));
    await writeFile(proofFile, JSON.stringify({ ...proof, left }));
    await expect(verifyBundle(tampered.dir, verifierKey)).rejects.toThrow(/is not the signed root/);
  });
});

describe('CLI on a fresh embedded data directory, checked by the customer’s verifier', {
  timeout: 120_000,
}, () => {
  it('the note verifies with the printed key, its root is the queried events’, the bundle and a proof verify', async () => {
    const { checkpoint, events, bundleDir, proof } = await scenarios.embedded();
    const verifierKey = checkpoint.public_key;
    expect(parseVerifierKey(verifierKey).name).toBe('activity');
    expect(checkpoint.checkpoints.map((row) => [row.tenant_id, row.size])).toEqual([[embeddedTenant, 6]]);
    // The six recorded, then the checkpoint's own event.
    expect(events.map((event) => event.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(events[6]?.action).toBe('activity.checkpoint.signed');
    const row = checkpoint.checkpoints[0] as CheckpointRow;
    const signed = verifyTenantCheckpoint(row.note, verifierKey, embeddedTenant);
    expect(signed.origin).toBe(`activity/tenants/${embeddedTenant}`);
    expect([signed.size, b64(signed.rootHash)]).toEqual([row.size, row.root_hash]);
    expectRoot(events, row.size, row.root_hash, 'embedded');
    const bundle = await verifyBundle(bundleDir, verifierKey);
    expect([bundle.firstSeq, bundle.lastSeq, bundle.treeSize]).toEqual([1, 6, 6]);
    expect(bundle.events).toEqual(events.slice(0, 6));
    checkInclusion(proof, events[2] as ApiEvent, verifierKey, embeddedTenant);
    expect(proof.tree_size).toBe(6);
  });
});

describe('HTTP API on PostgreSQL, checked by the customer’s verifier', { timeout: 120_000 }, () => {
  // Each checkpoint: the events POSTed since the one before, and that one's own event.
  const sizes = [1, 3, 5, 7, 10, 12, 14, 18, 24, 26];

  it('checkpoints signed through the app verify; GET /checkpoint serves the latest note as text', async () => {
    const { signed, latestNote, verifierKey, serverKey } = await scenarios.http();
    expect(serverKey).toBe(verifierKey);
    expect(signed.map((checkpoint) => checkpoint.size)).toEqual(sizes);
    for (const { size, rootHash, note } of signed) {
      const checkpoint = verifyTenantCheckpoint(note, verifierKey, httpTenant);
      expect([checkpoint.size, b64(checkpoint.rootHash)]).toEqual([size, rootHash]);
    }
    expect(latestNote.status).toBe(200);
    expect(latestNote.contentType).toMatch(/^text\/plain/);
    expect(latestNote.text).toBe(signed.at(-1)?.note);
    expect(verifyTenantCheckpoint(latestNote.text, verifierKey, httpTenant).size).toBe(26);
  });

  it('roots recomputed from the events GET /api/v1/activity returns equal every checkpoint root', async () => {
    const { signed, events } = await scenarios.http();
    expect(events.map((event) => event.seq)).toEqual(Array.from({ length: 26 }, (_, i) => i + 1));
    for (const { size, rootHash } of signed) expectRoot(events, size, rootHash, `size ${size}`);
  });

  it('every GET /proof (each event against each checkpoint, and the latest) verifies', async () => {
    const { proofs, events, verifierKey, signed } = await scenarios.http();
    expect(proofs).toHaveLength(sizes.reduce((sum, size) => sum + size, 0) + 26);
    for (const { seq, size, status, json } of proofs) {
      expect(status, `proof of ${seq} in ${size}: ${JSON.stringify(json)}`).toBe(200);
      checkInclusion(json, events[seq - 1] as ApiEvent, verifierKey, httpTenant);
      expect(json.tree_size).toBe(size ?? 26);
      expect(json.checkpoint).toBe(signed.find((checkpoint) => checkpoint.size === json.tree_size)?.note);
    }
  });

  it('every GET /consistency between two checkpoints verifies against both signed roots', async () => {
    const { consistency, signed, verifierKey } = await scenarios.http();
    const rootOf = (size: number) =>
      verifyTenantCheckpoint(
        signed.find((checkpoint) => checkpoint.size === size)?.note as string,
        verifierKey,
        httpTenant,
      ).rootHash;
    expect(consistency).toHaveLength((sizes.length * (sizes.length + 1)) / 2);
    for (const { from, to, status, json } of consistency) {
      expect(status, `consistency ${from}..${to}: ${JSON.stringify(json)}`).toBe(200);
      expect([json.from, json.to]).toEqual([from, to]);
      const path = json.proof.map(unb64);
      expect(verifyConsistency(from, to, path, rootOf(from), rootOf(to)), `consistency ${from}..${to}`).toBe(
        true,
      );
    }
  });

  it('the verifier rejects a flipped consistency or inclusion hash and a note with its size changed', async () => {
    const { consistency, proofs, signed, events, verifierKey } = await scenarios.http();
    const rootOf = (size: number) =>
      unb64(signed.find((checkpoint) => checkpoint.size === size)?.rootHash as string);
    let forgedConsistency = 0;
    for (const { from, to, json } of consistency) {
      const path = json.proof.map(unb64);
      for (let i = 0; i < path.length; i++) {
        const forged = path.map((hash, j) => (j === i ? flipBit(hash, i) : hash));
        expect(
          verifyConsistency(from, to, forged, rootOf(from), rootOf(to)),
          `${from}..${to} hash ${i}`,
        ).toBe(false);
        forgedConsistency++;
      }
      if (from < to) {
        expect(verifyConsistency(from, to, path, flipBit(rootOf(from)), rootOf(to))).toBe(false);
        expect(verifyConsistency(from, to, path.slice(0, -1), rootOf(from), rootOf(to))).toBe(false);
      }
    }
    expect(forgedConsistency).toBeGreaterThan(50);
    for (const { seq, json } of proofs.filter((proof) => proof.size === undefined)) {
      const leaf = eventLeafHash(events[seq - 1] as ApiEvent);
      const path = json.proof.map(unb64);
      for (let i = 0; i < path.length; i++) {
        const forged = path.map((hash, j) => (j === i ? flipBit(hash, 31) : hash));
        expect(verifyInclusion(seq - 1, 26, leaf, forged, rootOf(26)), `seq ${seq} hash ${i}`).toBe(false);
      }
    }
    const note = signed.at(-1)?.note as string;
    expect(() => verifyTenantCheckpoint(note.replace('\n26\n', '\n27\n'), verifierKey, httpTenant)).toThrow(
      /does not verify/,
    );
  });
});
