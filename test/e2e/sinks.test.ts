import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { hasWebhookSignature, type Receiver, startReceiver } from '../helpers/receiver.js';
import { cliFor, expectExit, expectJsonError, parseJson, testSecret } from '../helpers/run-cli.js';

interface SinkJson {
  sink_id: string;
  tenant_id: string | null;
  url: string;
  header_names: string[];
  state: string;
  secret?: string;
}

describe('sink and deliver, as an operator runs them', { timeout: 60_000 }, () => {
  let database: { url: string; drop(): Promise<void> };
  let cli: ReturnType<typeof cliFor>;
  let hook: Receiver;

  beforeAll(async () => {
    database = await createTestDatabase();
    cli = cliFor({ ACTIVITY_DATABASE_URL: database.url, ACTIVITY_SECRET: testSecret });
    hook = await startReceiver();
  });
  afterAll(async () => {
    await hook?.close();
    await database?.drop();
  });

  it('adds a sink, shows its secret once and its headers by name only, and delivers with deliver --once', async () => {
    expectExit(
      await cli(['record', '--tenant', 'acme', '--action', 'auth.login.success', '--actor-id', 'u_1']),
      0,
    );
    const added = await cli([
      'sink',
      'add',
      '--tenant',
      'acme',
      '--url',
      hook.url,
      '--payload',
      'ocsf',
      '--header',
      'Authorization=Bearer receiver-token-123',
      '--from-start',
      '--format',
      'json',
    ]);
    expectExit(added, 0);
    const sink = parseJson<SinkJson>(added.stdout);
    expect(sink).toMatchObject({
      tenant_id: 'acme',
      url: hook.url,
      header_names: ['Authorization'],
      state: 'active',
    });
    expect(sink.secret).toMatch(/^whsec_/);

    const listed = await cli(['sink', 'list', '--format', 'json']);
    expectExit(listed, 0);
    expect(listed.stdout).not.toContain('receiver-token-123');
    expect(listed.stdout).not.toContain(String(sink.secret));
    expect(parseJson<{ sinks: SinkJson[] }>(listed.stdout).sinks.map((each) => each.sink_id)).toEqual([
      sink.sink_id,
    ]);

    const delivered = await cli(['deliver', '--once', '--format', 'json']);
    expectExit(delivered, 0);
    expect(parseJson(delivered.stdout)).toEqual({ batches: 1, failed: 0 });
    const [request] = hook.received;
    expect(request?.headers).toMatchObject({
      authorization: 'Bearer receiver-token-123',
      'activity-tenant': 'acme',
    });
    const id = String(request?.headers['webhook-id']);
    const timestamp = Number(request?.headers['webhook-timestamp']);
    expect(
      hasWebhookSignature(
        String(sink.secret),
        id,
        timestamp,
        String(request?.body),
        String(request?.headers['webhook-signature']),
      ),
    ).toBe(true);
    expect(JSON.parse(String(request?.body))).toMatchObject([
      {
        class_uid: 3002,
        activity_id: 1,
        metadata: { tenant_uid: 'acme', sequence: 1 },
        user: { uid: 'u_1' },
      },
    ]);

    const status = await cli(['sink', 'status', sink.sink_id, '--format', 'json']);
    expectExit(status, 0);
    expect(parseJson(status.stdout)).toMatchObject({
      state: 'active',
      lag_events: 0,
      tenants: [{ tenant_id: 'acme', delivered_seq: 1 }],
    });
    const table = await cli(['sink', 'status', sink.sink_id, '--format', 'table']);
    expect(table.stdout).toContain('acme: delivered through 1 of 1');

    expectExit(await cli(['sink', 'pause', sink.sink_id]), 0);
    expect(
      parseJson<SinkJson>((await cli(['sink', 'status', sink.sink_id, '--format', 'json'])).stdout).state,
    ).toBe('paused');
    expectExit(await cli(['sink', 'resume', sink.sink_id]), 0);
    expectExit(await cli(['sink', 'remove', sink.sink_id]), 0);
    expect(
      parseJson<{ sinks: SinkJson[] }>((await cli(['sink', 'list', '--format', 'json'])).stdout).sinks,
    ).toEqual([]);
  });

  it('refuses what it cannot deliver safely, naming the flag and the fix', async () => {
    const add = (...flags: string[]) =>
      cli(['sink', 'add', '--payload', 'ndjson', '--format', 'json', ...flags]);
    for (const [flags, words] of [
      [['--url', hook.url], '--tenant'],
      [['--tenant', 'acme', '--all-tenants', '--url', hook.url], '--all-tenants'],
      [['--tenant', 'acme', '--url', 'ftp://example.com/x'], '--url'],
      [['--tenant', 'acme', '--url', 'https://user:pass@siem.example/x'], '--header'],
      [['--tenant', 'acme', '--url', 'https://siem.example/x?api_key=abc123def456'], 'api_key'],
      [['--tenant', 'acme', '--url', hook.url, '--header', 'webhook-id=x'], 'webhook-id'],
      [['--tenant', 'acme', '--url', hook.url, '--header', 'no-equals-sign'], 'NAME=VALUE'],
      [['--tenant', 'acme', '--url', hook.url, '--secret', 'hunter2'], 'whsec_'],
      [
        [
          '--tenant',
          'acme',
          '--url',
          'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
        ],
        'Slack',
      ],
      [['--tenant', 'acme', '--url', hook.url, '--header', 'Expect=100-continue'], 'Expect'],
      [['--tenant', 'acme', '--url', hook.url, '--header', 'X-Token=tökén'], 'visible ASCII'],
      [['--tenant', 'acme', '--url', hook.url, '--header', 'X-A=1', '--header', 'x-a=2'], 'twice'],
      [['--tenant', 'acme', '--url', hook.url, '--action', 'auth.login.sucess'], 'did you mean'],
    ] as const) {
      const run = await add(...flags);
      // USAGE_INVALID for the flags' shape, PARAMETER_INVALID for what the core refuses.
      expect(expectJsonError(run, 2, expect.stringMatching(/^(USAGE|PARAMETER)_INVALID$/)).message).toContain(
        words,
      );
    }
    expect(
      parseJson<{ sinks: SinkJson[] }>((await cli(['sink', 'list', '--format', 'json'])).stdout).sinks,
    ).toEqual([]);
    // The secret is shown once, in every format.
    const csv = await cli([
      'sink',
      'add',
      '--tenant',
      'acme',
      '--url',
      hook.url,
      '--payload',
      'ocsf',
      '--format',
      'csv',
    ]);
    expectExit(csv, 0);
    const [header, row] = csv.stdout.trim().split('\n');
    expect(header?.split(',').at(-1)).toBe('secret');
    expect(row?.split(',').at(-1)).toMatch(/^"?whsec_/);
    const sinkId = row?.split(',')[0]?.replaceAll('"', '') as string;
    expectExit(await cli(['sink', 'remove', sinkId]), 0);
    // A receiver that refuses: deliver --once says so and exits 3, for cron.
    const refusing = await startReceiver(() => ({ status: 500 }));
    try {
      expectExit(await cli(['record', '--tenant', 'refused', '--action', 'auth.login.success']), 0);
      const added = await cli([
        'sink',
        'add',
        '--tenant',
        'refused',
        '--url',
        refusing.url,
        '--payload',
        'ndjson',
        '--from-start',
        '--format',
        'json',
      ]);
      expectExit(added, 0);
      const once = await cli(['deliver', '--once', '--format', 'json']);
      expectExit(once, 3);
      expect(parseJson(once.stdout)).toEqual({ batches: 0, failed: 1 });
      expectExit(await cli(['sink', 'remove', parseJson<SinkJson>(added.stdout).sink_id]), 0);
    } finally {
      await refusing.close();
    }
    const unknown = await cli(['sink', 'pause', '0193a7e2-5c1f-7b2a-9c3d-4e5f60718293', '--format', 'json']);
    expect(expectJsonError(unknown, 2, 'NOT_FOUND').message).toContain('sink list');
    expectJsonError(await cli(['sink', 'status', 'not-a-sink', '--format', 'json']), 2, 'PARAMETER_INVALID');
  });
});
