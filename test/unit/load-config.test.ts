import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load-config.js';
import { activityErrorFrom } from './thrown.js';

const secret = 'x'.repeat(32);

function configError(env: NodeJS.ProcessEnv, overrides: Parameters<typeof loadConfig>[0] = {}) {
  const error = activityErrorFrom(() => loadConfig(overrides, env));
  expect(error.code).toBe('CONFIG_INVALID');
  expect(error.exitCode).toBe(2);
  expect(error.message).not.toContain('\n');
  return error;
}

describe('loadConfig', () => {
  it('defaults to an embedded PGlite database in .activity', () => {
    expect(loadConfig({}, {})).toEqual({
      database: { kind: 'pglite', dataDir: '.activity' },
      redisUrl: undefined,
      streamEnabled: true,
      retentionDays: 365,
      secret: undefined,
      jwtSecret: undefined,
      jwksFile: undefined,
      jwtIssuer: undefined,
      jwtAudience: undefined,
      registryFile: undefined,
      lockTimeoutMs: 5000,
      statementTimeoutMs: 30_000,
      signingKeyFile: undefined,
      logName: 'activity',
      previousPublicKeys: [],
      auditReads: true,
      actor: undefined,
    });
  });

  it('takes a log name fit for a signed-note key name, and refuses one with a space or a "+"', () => {
    expect(loadConfig({}, { ACTIVITY_LOG_NAME: 'audit.example.com' }).logName).toBe('audit.example.com');
    for (const bad of ['audit log', 'audit+log']) {
      expect(() => loadConfig({}, { ACTIVITY_LOG_NAME: bad })).toThrow(/ACTIVITY_LOG_NAME/);
    }
  });

  it.each([
    ['500ms', 500],
    ['5s', 5000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0', 0],
  ])('reads a timeout of %s as %d ms', (text, ms) => {
    const config = loadConfig({}, { ACTIVITY_LOCK_TIMEOUT: text, ACTIVITY_STATEMENT_TIMEOUT: text });
    expect([config.lockTimeoutMs, config.statementTimeoutMs]).toEqual([ms, ms]);
  });

  it.each(['5', '5 s', '-1s', '1.5s', '30d', '999h'])(
    'refuses the timeout %s, naming the variable',
    (text) => {
      expect(() => loadConfig({}, { ACTIVITY_LOCK_TIMEOUT: text })).toThrow(/^ACTIVITY_LOCK_TIMEOUT /);
    },
  );

  it('ignores unrelated variables', () => {
    expect(loadConfig({}, { HOME: '/root', PATH: '/bin', PGHOST: 'db' }).database.kind).toBe('pglite');
  });

  it('treats empty variables as unset', () => {
    const config = loadConfig({}, { DATABASE_URL: '', ACTIVITY_SECRET: '  ', ACTIVITY_RETENTION_DAYS: '' });
    expect(config.database).toEqual({ kind: 'pglite', dataDir: '.activity' });
    expect(config.secret).toBeUndefined();
    expect(config.retentionDays).toBe(365);
  });

  it('uses ACTIVITY_DATA_DIR for the embedded database', () => {
    expect(loadConfig({}, { ACTIVITY_DATA_DIR: '/var/lib/activity' }).database).toEqual({
      kind: 'pglite',
      dataDir: '/var/lib/activity',
    });
  });

  it('uses DATABASE_URL when ACTIVITY_DATABASE_URL is unset', () => {
    expect(loadConfig({}, { DATABASE_URL: 'postgres://db/app' }).database).toEqual({
      kind: 'postgres',
      url: 'postgres://db/app',
    });
  });

  it('prefers ACTIVITY_DATABASE_URL over DATABASE_URL', () => {
    const config = loadConfig(
      {},
      { ACTIVITY_DATABASE_URL: 'postgresql://db/activity', DATABASE_URL: 'postgres://db/app' },
    );
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgresql://db/activity' });
  });

  it('ignores an unusable DATABASE_URL when ACTIVITY_DATABASE_URL is set', () => {
    const config = loadConfig(
      {},
      { ACTIVITY_DATABASE_URL: 'postgres://db/activity', DATABASE_URL: 'mysql://db/other-app' },
    );
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://db/activity' });
  });

  it('lets flags override the environment', () => {
    const env = {
      ACTIVITY_DATABASE_URL: 'postgres://env/activity',
      ACTIVITY_REDIS_URL: 'redis://env:6379',
    };
    const config = loadConfig(
      { databaseUrl: 'postgres://flag/activity', redisUrl: 'rediss://flag:6380' },
      env,
    );
    expect(config.database).toEqual({ kind: 'postgres', url: 'postgres://flag/activity' });
    expect(config.redisUrl).toBe('rediss://flag:6380');
  });

  it('lets --data-dir override ACTIVITY_DATA_DIR', () => {
    expect(loadConfig({ dataDir: '/flag' }, { ACTIVITY_DATA_DIR: '/env' }).database).toEqual({
      kind: 'pglite',
      dataDir: '/flag',
    });
  });

  it('falls back to the environment when a flag is not given', () => {
    const config = loadConfig({ dataDir: undefined }, { ACTIVITY_REDIS_URL: 'redis://env:6379' });
    expect(config.redisUrl).toBe('redis://env:6379');
  });

  it('reads the secrets, files and retention', () => {
    const config = loadConfig(
      {},
      {
        ACTIVITY_SECRET: secret,
        ACTIVITY_JWT_SECRET: `${secret}jwt`,
        ACTIVITY_JWKS_FILE: '/etc/jwks.json',
        ACTIVITY_JWT_ISSUER: 'https://idp.example.com/',
        ACTIVITY_JWT_AUDIENCE: 'activity-api',
        ACTIVITY_REGISTRY_FILE: '/etc/registry.json',
        ACTIVITY_RETENTION_DAYS: '30',
      },
    );
    expect(config.secret).toBe(secret);
    expect(config.jwtSecret).toBe(`${secret}jwt`);
    expect(config.jwksFile).toBe('/etc/jwks.json');
    expect(config.jwtIssuer).toBe('https://idp.example.com/');
    expect(config.jwtAudience).toBe('activity-api');
    expect(config.registryFile).toBe('/etc/registry.json');
    expect(config.retentionDays).toBe(30);
  });

  it.each([
    ['false', false],
    ['0', false],
    ['no', false],
    ['off', false],
    ['true', true],
    ['1', true],
  ])('reads ENABLE_ACTIVITY_STREAM=%s as %s', (value, expected) => {
    expect(loadConfig({}, { ENABLE_ACTIVITY_STREAM: value }).streamEnabled).toBe(expected);
  });

  it('fails on a short ACTIVITY_SECRET, naming the variable', () => {
    const error = configError({ ACTIVITY_SECRET: 'x'.repeat(31) });
    expect(error.message).toMatch(/^ACTIVITY_SECRET /);
    expect(error.message).toContain('32 bytes');
    expect(error.message).not.toContain('x'.repeat(31));
  });

  it('fails on a short ACTIVITY_JWT_SECRET, naming the variable', () => {
    expect(configError({ ACTIVITY_JWT_SECRET: 'short' }).message).toMatch(/^ACTIVITY_JWT_SECRET /);
  });

  it.each([
    ['DATABASE_URL', 'mysql://db/app'],
    ['ACTIVITY_DATABASE_URL', 'http://db/app'],
    ['ACTIVITY_DATABASE_URL', 'db.example.com:5432'],
    ['ACTIVITY_REDIS_URL', 'http://cache:6379'],
  ])('fails on %s with a bad scheme, naming the variable', (variable, value) => {
    expect(configError({ [variable]: value }).message).toMatch(new RegExp(`^${variable} `));
  });

  it('fails on a --database-url flag with a bad scheme, naming the flag', () => {
    expect(configError({}, { databaseUrl: 'mysql://db' }).message).toMatch(/^--database-url /);
  });

  it.each(['abc', '0', '-1', '1.5', '30d', '36501', '99999', '999999'])(
    'fails on ACTIVITY_RETENTION_DAYS=%s',
    (value) => {
      expect(configError({ ACTIVITY_RETENTION_DAYS: value }).message).toMatch(/^ACTIVITY_RETENTION_DAYS /);
    },
  );

  it.each(['maybe', 'disabled', '2'])('fails on ENABLE_ACTIVITY_STREAM=%s', (value) => {
    const error = configError({ ENABLE_ACTIVITY_STREAM: value });
    expect(error.message).toMatch(/^ENABLE_ACTIVITY_STREAM /);
    expect(error.message).toContain('true or false');
  });

  it.each([
    ['ACTIVITY_JWT_ISSUER', { ACTIVITY_JWT_AUDIENCE: 'activity-api' }],
    ['ACTIVITY_JWT_AUDIENCE', { ACTIVITY_JWT_ISSUER: 'https://idp.example.com/' }],
    ['ACTIVITY_JWT_ISSUER', {}],
    [
      'ACTIVITY_JWT_AUDIENCE',
      { ACTIVITY_JWT_ISSUER: 'https://idp.example.com/', ACTIVITY_JWT_AUDIENCE: ' ' },
    ],
  ])('ACTIVITY_JWKS_FILE without %s fails, naming the variable', (variable, env) => {
    const error = configError({ ACTIVITY_JWKS_FILE: '/etc/jwks.json', ...env });
    expect(error.message).toMatch(new RegExp(`^${variable} `));
    expect(error.message).toContain('ACTIVITY_JWKS_FILE');
  });

  it('ACTIVITY_JWT_SECRET alone needs no issuer or audience, and takes them when set', () => {
    const jwtSecret = `${secret}jwt`;
    expect(loadConfig({}, { ACTIVITY_JWT_SECRET: jwtSecret })).toMatchObject({
      jwtSecret,
      jwtIssuer: undefined,
      jwtAudience: undefined,
    });
    expect(
      loadConfig(
        {},
        { ACTIVITY_JWT_SECRET: jwtSecret, ACTIVITY_JWT_ISSUER: 'activity', ACTIVITY_JWT_AUDIENCE: 'api' },
      ),
    ).toMatchObject({ jwtIssuer: 'activity', jwtAudience: 'api' });
  });

  it.each(['ACTIVITY_JWT_ISSUER', 'ACTIVITY_JWT_AUDIENCE'])(
    'fails on %s with surrounding spaces, which no token would match',
    (variable) => {
      expect(configError({ [variable]: ' https://idp.example.com/' }).message).toMatch(
        new RegExp(`^${variable} `),
      );
    },
  );

  it.each([
    ['ACTIVITY_DATABASE_URL', 'postgres://app:s3cret@127.0.0.1:notaport/db', 'port must be a number'],
    ['ACTIVITY_DATABASE_URL', 'postgres://app:s3cret@127.0.0.1:99999/db', 'port must be between 1 and 65535'],
    ['ACTIVITY_DATABASE_URL', 'postgres://app:s3cret@127.0.0.1:0/db', 'port must be between 1 and 65535'],
    ['ACTIVITY_DATABASE_URL', 'postgres://app:s3cret@[::1:5432/db', 'is not a valid URL'],
    ['ACTIVITY_DATABASE_URL', 'postgres://app:s3cret@db<1>/app', 'is not a valid URL'],
    ['ACTIVITY_DATABASE_URL', 'postgres://app:s3cret@db/app?port=5o432', 'port must be a number'],
    ['DATABASE_URL', 'postgresql://app:s3cret@db:54x32/app', 'port must be a number'],
  ])('fails on a malformed %s (%s), naming the variable and not the password', (variable, value, problem) => {
    const error = configError({ [variable]: value });
    expect(error.message).toMatch(new RegExp(`^${variable} `));
    expect(error.message).toContain(problem);
    expect(error.message).not.toContain('s3cret');
    expect(error.cause).toBeUndefined();
  });

  it('says why a malformed URL is refused: ACTIVITY_DATABASE_URL with a port that is not a number', () => {
    expect(configError({ ACTIVITY_DATABASE_URL: 'postgres://127.0.0.1:notaport/db' }).message).toBe(
      'ACTIVITY_DATABASE_URL is not a valid URL (port must be a number)',
    );
  });

  it('fails on a malformed --database-url, naming the flag', () => {
    const error = configError(
      { ACTIVITY_DATABASE_URL: 'postgres://db/app' },
      { databaseUrl: 'postgres://app:s3cret@db:notaport/app' },
    );
    expect(error.message).toMatch(/^--database-url is not a valid URL/);
    expect(error.message).not.toContain('s3cret');
  });

  it.each([
    'postgres://db/app',
    'postgres://app:s3cret@db.internal:5432/app?sslmode=require',
    'postgresql://app@[::1]:5432/app',
    'postgres:///app?host=/var/run/postgresql',
    'postgres://app:s3cret@/app?host=/var/run/postgresql',
    'postgresql://%2Fvar%2Frun%2Fpostgresql/app',
    'postgres://app:p@ss w%rd@db/app',
    'postgres://db:/app',
    'postgres://db:65535/app?port=5433',
  ])('accepts the database URL %s, as the PostgreSQL driver reads it', (url) => {
    expect(loadConfig({}, { ACTIVITY_DATABASE_URL: url }).database).toEqual({ kind: 'postgres', url });
  });
});
