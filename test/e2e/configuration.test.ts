import { readFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import { type EventJson, expectEventShape } from '../helpers/event-shape.js';
import {
  cliFor,
  expectExit,
  expectJsonError,
  parseJson,
  repoRoot,
  runCli,
  testSecret,
} from '../helpers/run-cli.js';

const registryFile = fileURLToPath(new URL('../fixtures/registry.json', import.meta.url));
const unreachableUrl = 'postgres://postgres@127.0.0.1:1/x';

describe('when the database is unavailable or unusable', () => {
  let migrated: { url: string; drop(): Promise<void> };
  let empty: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    [migrated, empty] = await Promise.all([createTestDatabase(), createTestDatabase({ migrated: false })]);
  });
  afterAll(async () => {
    await Promise.all([migrated?.drop(), empty?.drop()]);
  });

  it.each([
    ['record', ['record', '--tenant', 'acme', '--action', 'auth.login.success']],
    ['migrate', ['migrate']],
  ])('%s against an unreachable database exits 3 with DB_UNAVAILABLE within 10 s', async (_name, args) => {
    const started = Date.now();
    const run = await runCli([...args, '--format', 'json'], {
      env: { ACTIVITY_DATABASE_URL: unreachableUrl, ACTIVITY_SECRET: testSecret },
    });
    const elapsed = Date.now() - started;
    expectJsonError(run, 3, 'DB_UNAVAILABLE');
    expect(elapsed).toBeLessThan(10_000);
    expect(run.stderr).not.toContain(testSecret);
  });

  it('a database that accepts connections but never answers still gives exit 3 within 10 s', async () => {
    // A black hole: the TCP handshake succeeds, then the server says nothing.
    const sockets = new Set<Socket>();
    const server: Server = createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as { port: number };
      const started = Date.now();
      const run = await runCli(['query', '--tenant', 'acme', '--format', 'json'], {
        env: {
          ACTIVITY_DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/x`,
          ACTIVITY_SECRET: testSecret,
        },
        timeoutMs: 20_000,
      });
      const elapsed = Date.now() - started;
      expectJsonError(run, 3, 'DB_UNAVAILABLE');
      expect(elapsed).toBeLessThan(10_000);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('query --all against an unreachable database exits 3 and prints nothing on stdout', async () => {
    const exportAll = (format: string) =>
      runCli(['query', '--tenant', 'acme', '--all', '--format', format], {
        env: { ACTIVITY_DATABASE_URL: unreachableUrl, ACTIVITY_SECRET: testSecret },
      });
    const [json, ndjson] = await Promise.all([exportAll('json'), exportAll('ndjson')]);
    expectJsonError(json, 3, 'DB_UNAVAILABLE');
    expectExit(ndjson, 3);
    expect(ndjson.stderr).toMatch(/^error: cannot use PostgreSQL/);
    expect([json.stdout, ndjson.stdout]).toEqual(['', '']);
  });

  it('--database-url overrides the environment', async () => {
    const run = await runCli(
      ['query', '--tenant', 'acme', '--database-url', unreachableUrl, '--format', 'json'],
      {
        env: { ACTIVITY_DATABASE_URL: migrated.url, ACTIVITY_SECRET: testSecret },
      },
    );
    expectJsonError(run, 3, 'DB_UNAVAILABLE');
  });

  it('a database that exists but is not migrated exits 3 with DB_NOT_MIGRATED pointing at `activity migrate`', async () => {
    const cli = cliFor({ ACTIVITY_DATABASE_URL: empty.url, ACTIVITY_SECRET: testSecret });
    const [query, record] = await Promise.all([
      cli(['query', '--tenant', 'acme', '--format', 'json']),
      cli(['record', '--tenant', 'acme', '--action', 'auth.login.success', '--format', 'json']),
    ]);
    for (const run of [query, record]) {
      const error = expectJsonError(run, 3, 'DB_NOT_MIGRATED');
      expect(error.message).toContain('activity migrate');
    }
  });

  it('PostgreSQL without ACTIVITY_SECRET makes record exit 2 with CONFIG_INVALID naming the variable', async () => {
    const run = await runCli(
      ['record', '--tenant', 'acme', '--action', 'auth.login.success', '--format', 'json'],
      {
        env: { ACTIVITY_DATABASE_URL: migrated.url },
      },
    );
    const error = expectJsonError(run, 2, 'CONFIG_INVALID');
    expect(error.message).toContain('ACTIVITY_SECRET');
    // Nothing was written either.
    const check = await runCli(['query', '--tenant', 'acme', '--format', 'json'], {
      env: { ACTIVITY_DATABASE_URL: migrated.url, ACTIVITY_SECRET: testSecret },
    });
    expectExit(check, 0);
    expect(parseJson<{ data: unknown[] }>(check.stdout).data).toEqual([]);
  });

  it('an ACTIVITY_SECRET shorter than 32 bytes is a configuration error', async () => {
    const run = await runCli(
      ['record', '--tenant', 'acme', '--action', 'auth.login.success', '--format', 'json'],
      {
        env: { ACTIVITY_DATABASE_URL: migrated.url, ACTIVITY_SECRET: 'too-short' },
      },
    );
    const error = expectJsonError(run, 2, 'CONFIG_INVALID');
    expect(error.message).toContain('ACTIVITY_SECRET');
    expect(error.message).not.toContain('too-short');
  });

  const withRetention = (value: string) => ({
    ACTIVITY_DATABASE_URL: migrated.url,
    ACTIVITY_SECRET: testSecret,
    ACTIVITY_RETENTION_DAYS: value,
  });

  it.each(['abc', '0', '12.5'])(
    'ACTIVITY_RETENTION_DAYS=%s fails fast with exit 2 and one error line naming the variable',
    async (value) => {
      const run = await runCli(['query', '--tenant', 'acme'], { env: withRetention(value) });
      expectExit(run, 2);
      expect(run.stdout).toBe('');
      expect(run.stderr.startsWith('error: ')).toBe(true);
      expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain('ACTIVITY_RETENTION_DAYS');
    },
  );

  it('an invalid ACTIVITY_RETENTION_DAYS under --format json is CONFIG_INVALID naming the variable', async () => {
    const run = await runCli(['query', '--tenant', 'acme', '--format', 'json'], { env: withRetention('-5') });
    expect(expectJsonError(run, 2, 'CONFIG_INVALID').message).toContain('ACTIVITY_RETENTION_DAYS');
  });

  it('a database URL that is not postgres:// fails fast naming the variable', async () => {
    const run = await runCli(['query', '--tenant', 'acme', '--format', 'json'], {
      env: { ACTIVITY_DATABASE_URL: 'mysql://localhost/x', ACTIVITY_SECRET: testSecret },
    });
    expect(expectJsonError(run, 2, 'CONFIG_INVALID').message).toContain('ACTIVITY_DATABASE_URL');
  });
});

describe('a malformed database URL', () => {
  const password = 's3cret-pw';

  it('ACTIVITY_DATABASE_URL with a port that is not a number exits 2 with one line naming the variable', async () => {
    const run = await runCli(['query', '--tenant', 'a'], {
      env: {
        ACTIVITY_DATABASE_URL: `postgres://app:${password}@127.0.0.1:notaport/db`,
        ACTIVITY_SECRET: testSecret,
      },
    });
    expectExit(run, 2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('error: ACTIVITY_DATABASE_URL is not a valid URL (port must be a number)\n');
  });

  it.each([
    ['ACTIVITY_DATABASE_URL', [], { ACTIVITY_DATABASE_URL: `postgres://app:${password}@127.0.0.1:70000/db` }],
    ['DATABASE_URL', [], { DATABASE_URL: `postgresql://app:${password}@[::1/db` }],
    [
      '--database-url',
      ['--database-url', `postgres://app:${password}@db:5432x/app`],
      { ACTIVITY_DATABASE_URL: 'postgres://127.0.0.1:1/x' },
    ],
  ])('%s: CONFIG_INVALID naming where it came from, never the password', async (source, args, env) => {
    const run = await runCli(['query', '--tenant', 'a', ...args, '--format', 'json'], {
      env: { ...env, ACTIVITY_SECRET: testSecret },
    });
    const error = expectJsonError(run, 2, 'CONFIG_INVALID');
    expect(error.message.startsWith(`${source} is not a valid URL`)).toBe(true);
    expect(run.stderr).not.toContain(password);
    expect(run.stdout).toBe('');
  });
});

interface ActionsJson {
  actions: { name: string; namespace: string; description: string; schema: Record<string, unknown> }[];
}

describe('actions', () => {
  let database: { url: string; drop(): Promise<void> };

  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('--format json lists the registry with a JSON Schema per action', async () => {
    const run = await runCli(['actions', '--format', 'json']);
    expectExit(run, 0);
    const body = parseJson<ActionsJson>(run.stdout);
    expect(Object.keys(body)).toEqual(['actions']);
    for (const action of body.actions) {
      expect(Object.keys(action).sort()).toEqual(['description', 'name', 'namespace', 'reserved', 'schema']);
      expect(action.namespace).toBe(action.name.split('.')[0]);
      expect(action.schema.type).toBe('object');
    }
    const names = body.actions.map((action) => action.name);
    expect(new Set(names).size).toBe(names.length);
    for (const required of [
      'auth.login.success',
      'auth.login.failure',
      'auth.signup.completed',
      'auth.logout.completed',
      'storage.file.uploaded',
      'containers.container.bound',
    ]) {
      expect(names).toContain(required);
    }
    const login = body.actions.find((action) => action.name === 'auth.login.success');
    expect(login).toMatchObject({ namespace: 'auth', description: expect.any(String) });
    expect(login?.schema).toMatchObject({
      type: 'object',
      properties: { method: expect.any(Object), mfa: { type: 'boolean' }, context: { type: 'object' } },
      additionalProperties: false,
    });
    const failure = body.actions.find((action) => action.name === 'auth.login.failure');
    expect(failure?.schema.required).toEqual(['reason']);
    expect(names).not.toContain('billing.invoice.sent');
  });

  it('ACTIVITY_REGISTRY_FILE adds a custom action that actions lists and record accepts', async () => {
    const env = {
      ACTIVITY_DATABASE_URL: database.url,
      ACTIVITY_SECRET: testSecret,
      ACTIVITY_REGISTRY_FILE: registryFile,
    };
    const listed = await runCli(['actions', '--format', 'json'], { env });
    expectExit(listed, 0);
    const custom = parseJson<ActionsJson>(listed.stdout).actions.find(
      (a) => a.name === 'billing.invoice.sent',
    );
    expect(custom).toMatchObject({
      namespace: 'billing',
      description: 'An invoice was emailed to the customer.',
      schema: {
        type: 'object',
        properties: { invoice_id: { type: 'string' }, amount_cents: { type: 'integer' } },
        required: ['invoice_id'],
      },
    });

    const recorded = await runCli(
      [
        'record',
        '--tenant',
        'acme',
        '--action',
        'billing.invoice.sent',
        '--metadata',
        '{"invoice_id":"in_1","amount_cents":1200}',
        '--format',
        'json',
      ],
      { env },
    );
    expectExit(recorded, 0);
    const event = parseJson<EventJson>(recorded.stdout);
    expectEventShape(event);
    expect(event).toMatchObject({
      action: 'billing.invoice.sent',
      metadata: { invoice_id: 'in_1', amount_cents: 1200 },
    });

    const [missingField, undeclared, withoutFile] = await Promise.all([
      runCli(['record', '--tenant', 'acme', '--action', 'billing.invoice.sent', '--format', 'json'], { env }),
      runCli(
        [
          'record',
          '--tenant',
          'acme',
          '--action',
          'billing.invoice.sent',
          '--metadata',
          '{"invoice_id":"in_2","customer":"c"}',
          '--format',
          'json',
        ],
        { env },
      ),
      runCli(
        [
          'record',
          '--tenant',
          'acme',
          '--action',
          'billing.invoice.sent',
          '--metadata',
          '{"invoice_id":"in_3"}',
          '--format',
          'json',
        ],
        { env: { ...env, ACTIVITY_REGISTRY_FILE: undefined } },
      ),
    ]);
    expect(expectJsonError(missingField, 2, 'VALIDATION_FAILED').message).toContain('metadata.invoice_id');
    expect(expectJsonError(undeclared, 2, 'VALIDATION_FAILED').message).toContain('metadata.customer');
    expectJsonError(withoutFile, 2, 'ACTION_UNKNOWN');
  });

  it('an unreadable registry file is a clear error with exit 2', async () => {
    const run = await runCli(['actions', '--format', 'json'], {
      env: { ACTIVITY_REGISTRY_FILE: `${repoRoot}/test/fixtures/does-not-exist.json` },
    });
    expectJsonError(run, 2, 'REGISTRY_INVALID');
  });
});

describe('help and version', () => {
  it.each([[[]], [['migrate']], [['record']], [['query']], [['actions']]])(
    'activity %s --help exits 0 and shows examples',
    async (command) => {
      const run = await runCli([...command, '--help']);
      expectExit(run, 0);
      expect(run.stdout).toContain('Usage: activity');
      expect(run.stdout).toContain('Examples:');
      expect(run.stdout).toMatch(/\$ activity /);
      expect(run.stderr).toBe('');
    },
  );

  it('--version prints the package.json version', async () => {
    const { version } = JSON.parse(readFileSync(`${repoRoot}/package.json`, 'utf8')) as { version: string };
    const run = await runCli(['--version']);
    expectExit(run, 0);
    expect(run.stdout).toBe(`${version}\n`);
  });
});
