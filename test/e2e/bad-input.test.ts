import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../helpers/databases.js';
import type { EventJson } from '../helpers/event-shape.js';
import {
  cliFor,
  expectExit,
  expectJsonError,
  inProcessCliFor,
  parseJson,
  parseNdjson,
  runCliInShell,
  testSecret,
} from '../helpers/run-cli.js';

/** Every rejected command below targets this tenant; none may store anything in it. */
const tenant = 'bad-input';
const record = ['record', '--tenant', tenant];
const query = ['query', '--tenant', tenant];

let database: { url: string; drop(): Promise<void> };
let cli: ReturnType<typeof cliFor>;
/** The same CLI run in this process: for refusals, where a process adds nothing. */
let cliInProcess: ReturnType<typeof inProcessCliFor>;

beforeAll(async () => {
  database = await createTestDatabase();
  // Reads here only check that nothing was stored: not recorded, so that seqs say so.
  const env = {
    ACTIVITY_DATABASE_URL: database.url,
    ACTIVITY_SECRET: testSecret,
    ACTIVITY_AUDIT_READS: 'false',
  };
  cli = cliFor(env);
  cliInProcess = inProcessCliFor(env);
});
afterAll(async () => {
  await database?.drop();
});

/** An object nested `levels` deep, counting the metadata object itself as level 1. */
function nested(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {};
  for (let level = levels; level > 2; level--) value = { [`l${level}`]: value };
  return { context: value };
}

interface BadCase {
  name: string;
  args: string[];
  code: string;
  /** Substrings the message must contain (the field it names). */
  mentions?: string[];
}

const cases: BadCase[] = [
  {
    name: 'an unknown action',
    args: [...record, '--action', 'auth.login.teleported'],
    code: 'ACTION_UNKNOWN',
    mentions: ['auth.login.teleported'],
  },
  {
    name: 'metadata with an invalid value, naming the field',
    args: [...record, '--action', 'auth.login.failure', '--metadata', '{"reason":"because"}'],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata.reason'],
  },
  {
    name: 'an undeclared metadata key (never silently dropped)',
    args: [...record, '--action', 'auth.login.success', '--metadata', '{"method":"sso","browser":"lynx"}'],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata.browser'],
  },
  {
    name: 'metadata with a key given twice (JSON.parse would keep the last)',
    args: [...record, '--action', 'auth.login.success', '--metadata', '{"method":"sso","method":"password"}'],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata: has a key given twice'],
  },
  {
    name: 'metadata that is not JSON at all',
    args: [...record, '--action', 'auth.login.success', '--metadata', '{method: sso}'],
    code: 'USAGE_INVALID',
    mentions: ['--metadata'],
  },
  {
    name: 'metadata over 8 KiB serialised',
    args: [
      ...record,
      '--action',
      'auth.login.success',
      '--metadata',
      JSON.stringify({
        context: Object.fromEntries([1, 2, 3, 4, 5].map((i) => [`part${i}`, 'x'.repeat(2000)])),
      }),
    ],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata'],
  },
  {
    name: 'metadata nested 9 levels deep',
    args: [...record, '--action', 'auth.login.success', '--metadata', JSON.stringify(nested(9))],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata.context'],
  },
  {
    name: 'a NUL byte in a metadata value',
    args: [...record, '--action', 'auth.login.success', '--metadata', '{"context":{"note":"a\\u0000b"}}'],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata.context.note'],
  },
  {
    name: 'an --actor-id over its length cap (never truncated)',
    args: [...record, '--action', 'auth.login.success', '--actor-id', 'u'.repeat(257)],
    code: 'VALIDATION_FAILED',
    mentions: ['actor_id'],
  },
  {
    name: 'an --id that is not a UUID',
    args: [...record, '--action', 'auth.login.success', '--id', 'not-a-uuid'],
    code: 'VALIDATION_FAILED',
  },
  {
    name: 'an --actor-type outside the enum',
    args: [...record, '--action', 'auth.login.success', '--actor-type', 'robot'],
    code: 'USAGE_INVALID',
    mentions: ['robot'],
  },
  {
    name: 'an unknown flag on record',
    args: [...record, '--action', 'auth.login.success', '--actor', 'u_1'],
    code: 'USAGE_INVALID',
    mentions: ['--actor'],
  },
  {
    name: 'record without --tenant',
    args: ['record', '--action', 'auth.login.success'],
    code: 'USAGE_INVALID',
    mentions: ['--tenant'],
  },
  {
    name: 'a tenant id with characters outside the allowed set',
    args: ['record', '--tenant', 'bad input/../x', '--action', 'auth.login.success'],
    code: 'VALIDATION_FAILED',
    mentions: ['tenant_id'],
  },
  {
    name: 'an integer in --metadata beyond 2^53 (never stored with lost digits)',
    args: [
      ...record,
      '--action',
      'auth.login.success',
      '--metadata',
      '{"context":{"n":12345678901234567890}}',
    ],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata.context.n', 'cannot be stored exactly'],
  },
  {
    name: 'a __proto__ key in --metadata (never silently dropped)',
    args: [...record, '--action', 'auth.login.success', '--metadata', '{"context":{"__proto__":{"a":1}}}'],
    code: 'VALIDATION_FAILED',
    mentions: ['metadata.context', '__proto__'],
  },
  {
    name: '--resume-from without --file',
    args: [...record, '--action', 'auth.login.success', '--resume-from', '3'],
    code: 'USAGE_INVALID',
    mentions: ['--resume-from'],
  },
  {
    name: '--resume-from 0',
    args: ['record', '--file', '-', '--resume-from', '0'],
    code: 'USAGE_INVALID',
    mentions: ['--resume-from'],
  },
  { name: 'a cursor that was never issued', args: [...query, '--cursor', 'garbage'], code: 'CURSOR_INVALID' },
  {
    name: 'a time that is neither RFC 3339 nor relative (--since yesterday)',
    args: [...query, '--since', 'yesterday'],
    code: 'PARAMETER_INVALID',
    mentions: ['since'],
  },
  {
    name: 'a relative time before year 1 (--since 999999w)',
    args: [...query, '--since', '999999w'],
    code: 'PARAMETER_INVALID',
    mentions: ['since'],
  },
  {
    name: 'year 0 (--since 0000-01-01T00:00:00Z), for a page',
    args: [...query, '--since', '0000-01-01T00:00:00Z'],
    code: 'PARAMETER_INVALID',
    mentions: ['since'],
  },
  {
    name: 'year 0 for --all, as for a page',
    args: [...query, '--all', '--until', '0000-01-01T00:00:00Z'],
    code: 'PARAMETER_INVALID',
    mentions: ['until'],
  },
  { name: '--limit 0', args: [...query, '--limit', '0'], code: 'PARAMETER_INVALID', mentions: ['limit'] },
  {
    name: '--limit 5000',
    args: [...query, '--limit', '5000'],
    code: 'PARAMETER_INVALID',
    mentions: ['limit'],
  },
  {
    name: 'an --action filter that is not a name or prefix',
    args: [...query, '--action', 'auth login'],
    code: 'PARAMETER_INVALID',
    mentions: ['action'],
  },
  { name: 'an unknown flag on query', args: [...query, '--tenants', 'x'], code: 'USAGE_INVALID' },
  {
    name: 'query without --tenant',
    args: ['query', '--action', 'auth.*'],
    code: 'USAGE_INVALID',
    mentions: ['--tenant'],
  },
  { name: 'a --status outside the enum', args: [...query, '--status', 'ok'], code: 'USAGE_INVALID' },
  { name: 'an unknown command', args: ['recrod', '--tenant', tenant], code: 'USAGE_INVALID' },
];

describe.concurrent('bad input exits 2 with {"error":{"code","message"}} on stderr under --format json', () => {
  it.each(cases)('$name → $code', async ({ args, code, mentions }) => {
    const run = await cliInProcess([...args, '--format', 'json']);
    const error = expectJsonError(run, 2, code);
    for (const text of mentions ?? []) expect(error.message).toContain(text);
    expect(run.stdout).toBe('');
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('a NUL byte in actor_id (from an NDJSON line, as argv cannot carry NUL) rejects that line', async () => {
    const input = `${JSON.stringify({ tenant_id: tenant, action: 'auth.login.success', actor_id: 'u\u00001' })}\n`;
    const run = await cliInProcess(['record', '--file', '-', '--format', 'json'], { input });
    expectExit(run, 2);
    const report = parseJson<{
      recorded: number;
      rejected: { line: number; code: string; message: string }[];
    }>(run.stdout);
    expect(report).toMatchObject({ recorded: 0, duplicates: 0 });
    expect(report.rejected).toEqual([
      { line: 1, code: 'VALIDATION_FAILED', message: expect.stringContaining('actor_id') },
    ]);
  });

  it('NDJSON lines that JSON.parse would change (1e400, 2^53 + 1, a key twice) are rejected, naming the path', async () => {
    const input = [
      `{"tenant_id":"${tenant}","action":"auth.login.success","metadata":{"context":{"big":1e400}}}`,
      `{"tenant_id":"${tenant}","action":"auth.login.success","metadata":{"context":{"n":9007199254740993}}}`,
      `{"tenant_id":"${tenant}","action":"auth.login.success","actor_id":"u_1","actor_id":"u_2"}`,
    ].join('\n');
    const run = await cliInProcess(['record', '--file', '-', '--format', 'json'], { input });
    expectExit(run, 2);
    const report = parseJson<{
      recorded: number;
      rejected: { line: number; code: string; message: string }[];
    }>(run.stdout);
    expect(report.recorded).toBe(0);
    expect(report.rejected).toEqual([
      { line: 1, code: 'VALIDATION_FAILED', message: expect.stringContaining('metadata.context.big') },
      { line: 2, code: 'VALIDATION_FAILED', message: expect.stringContaining('metadata.context.n') },
      { line: 3, code: 'VALIDATION_FAILED', message: '(root): has a key given twice; send each key once' },
    ]);
  });

  it('an argument of invalid UTF-8 is refused, not stored with U+FFFD in its place', async () => {
    const run = await runCliInShell(
      `$ACTIVITY record --tenant ${tenant} --action auth.login.success --actor-id "$(printf 'u\\377')" --format json`,
      {
        env: {
          ACTIVITY_DATABASE_URL: database.url,
          ACTIVITY_SECRET: testSecret,
          ACTIVITY_AUDIT_READS: 'false',
        },
      },
    );
    // Counted as the user counts them: `record` is argument 1.
    expect(expectJsonError(run, 2, 'USAGE_INVALID').message).toBe('argument 7 is not valid UTF-8');
    // A U+FFFD typed as such is valid: the argument named is the one whose bytes are not.
    const later = await runCliInShell(
      `$ACTIVITY record --tenant ${tenant} --actor-id "$(printf 'u\\357\\277\\275')" --action "$(printf 'a\\377')" --format json`,
      {
        env: {
          ACTIVITY_DATABASE_URL: database.url,
          ACTIVITY_SECRET: testSecret,
          ACTIVITY_AUDIT_READS: 'false',
        },
      },
    );
    expect(expectJsonError(later, 2, 'USAGE_INVALID').message).toBe('argument 7 is not valid UTF-8');
  });

  it('an error never quotes back a secret it was given', async () => {
    const token = 'Bearer abcdefghijklmnop.qrstuvwxyz';
    const key = 'sk_live_abcdefghijklmnop1234';
    // Each in its own process, so that anything printed by any path is seen; all at once.
    const refusals = await Promise.all([
      cli([
        ...record,
        '--action',
        'auth.login.success',
        '--metadata',
        `{"context":{"${key}":{"a":1,"a":2}}}`,
      ]),
      cli([
        ...record,
        '--action',
        'auth.login.success',
        '--metadata',
        `{"context":{"${key}":"${'x'.repeat(3000)}"}}`,
      ]),
      // A card number too long for a double: the error names where, not the digits.
      cli([
        ...record,
        '--action',
        'auth.login.success',
        '--metadata',
        '{"context":{"pan":6217000000000000004}}',
      ]),
      cli(['record', '--file', '-'], {
        input: `{"tenant_id":"${tenant}","action":"auth.login.success","${key}":1}\n`,
      }),
      cli([...query, `--password=${key}`]),
      cli([...query, '--status', key]),
      cli(['tail', '--tenant', tenant, '--url', 'http://u:abcdefghijklmnop@127.0.0.1:1', '--token', 'x']),
      cli([...record, '--action', token, '--format', 'json']),
      cli([
        ...record,
        '--action',
        'auth.login.success',
        '--metadata',
        '{"203.0.113.9":1}',
        '--format',
        'json',
      ]),
      cli([
        ...record,
        '--action',
        'auth.login.success',
        '--metadata',
        'password=hunter2hunter2',
        '--format',
        'json',
      ]),
      cli(['record', '--file', '-', '--format', 'json'], { input: 'password=hunter2hunter2\n' }),
      cli(['record', '--file', '-', '--format', 'json'], {
        input: `{"tenant_id":"${tenant}","action":"${token}"}\n`,
      }),
      runCliInShell(
        `$ACTIVITY record --tenant ${tenant} --action auth.login.success --actor-id "$(printf 'password=hunter2hunter2\\377')" --format json`,
        {
          env: {
            ACTIVITY_DATABASE_URL: database.url,
            ACTIVITY_SECRET: testSecret,
            ACTIVITY_AUDIT_READS: 'false',
          },
        },
      ),
    ]);
    for (const run of refusals) {
      expect([2, 3]).toContain(run.exitCode);
      const said = run.stdout + run.stderr;
      for (const secret of [
        'abcdefghijklmnop',
        '203.0.113.9',
        'password=',
        'hunter2',
        '6217000000000000004',
      ]) {
        expect(said).not.toContain(secret);
      }
    }
  });

  it('tail --url to a server that is not there exits 3 with DEPENDENCY_UNAVAILABLE, not a database error', async () => {
    const run = await cli([
      'tail',
      '--tenant',
      tenant,
      '--url',
      'http://127.0.0.1:2',
      '--token',
      'x',
      '--format',
      'json',
    ]);
    expect(expectJsonError(run, 3, 'DEPENDENCY_UNAVAILABLE').message).toBe(
      'cannot reach http://127.0.0.1:2: ECONNREFUSED (is `activity serve` running there, and is --url right?)',
    );
  });

  it('a line of invalid UTF-8 is rejected, not repaired', async () => {
    const input = Buffer.concat([
      Buffer.from(`{"tenant_id":"${tenant}","action":"auth.login.success","actor_id":"u_`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('"}\n'),
    ]);
    const run = await cliInProcess(['record', '--file', '-', '--format', 'json'], { input });
    expectExit(run, 2);
    const report = parseJson<{ recorded: number; rejected: { line: number; code: string }[] }>(run.stdout);
    expect(report.recorded).toBe(0);
    expect(report.rejected).toEqual([{ line: 1, code: 'INPUT_UNREADABLE', message: expect.any(String) }]);
  });

  it('a bad --format value exits 2 with a plain "error: " line naming the allowed formats', async () => {
    const run = await cliInProcess([...query, '--format', 'xml']);
    expectExit(run, 2);
    expect(run.stdout).toBe('');
    expect(run.stderr.startsWith('error: ')).toBe(true);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('json');
  });

  it('without --format json the error is one plain line starting with "error: "', async () => {
    const run = await cliInProcess([...record, '--action', 'auth.login.teleported']);
    expectExit(run, 2);
    expect(run.stdout).toBe('');
    expect(run.stderr.startsWith('error: ')).toBe(true);
    expect(run.stderr.endsWith('\n')).toBe(true);
    expect(run.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('auth.login.teleported');
  });
});

describe('after all the bad input', () => {
  it('nothing was stored, and the next valid event gets seq 1', async () => {
    const before = await cli([...query, '--all', '--format', 'ndjson']);
    expectExit(before, 0);
    expect(parseNdjson(before.stdout)).toEqual([]);

    const valid = await cli([...record, '--action', 'auth.login.success', '--format', 'json']);
    expectExit(valid, 0);
    expect(parseJson<EventJson>(valid.stdout).seq).toBe(1);
    const after = await cli([...query, '--all', '--format', 'ndjson']);
    expect(parseNdjson<EventJson>(after.stdout).map((event) => event.seq)).toEqual([1]);
  });

  it('an argument that really holds U+FFFD (valid UTF-8) is stored as given', async () => {
    const run = await cli([
      'record',
      '--tenant',
      'bad-input-fffd',
      '--action',
      'auth.login.success',
      '--actor-id',
      'u\uFFFD',
      '--format',
      'json',
    ]);
    expectExit(run, 0);
    expect(parseJson<EventJson>(run.stdout).actor_id).toBe('u\uFFFD');
  });

  it('metadata nested exactly 8 levels deep is accepted', async () => {
    const run = await cli([
      'record',
      '--tenant',
      'bad-input-boundary',
      '--action',
      'auth.login.success',
      '--metadata',
      JSON.stringify(nested(8)),
      '--format',
      'json',
    ]);
    expectExit(run, 0);
    expect(parseJson<EventJson>(run.stdout).metadata).toEqual(nested(8));
  });
});
