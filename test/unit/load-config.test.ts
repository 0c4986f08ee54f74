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
      registryFile: undefined,
    });
  });

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
        ACTIVITY_REGISTRY_FILE: '/etc/registry.json',
        ACTIVITY_RETENTION_DAYS: '30',
      },
    );
    expect(config.secret).toBe(secret);
    expect(config.jwtSecret).toBe(`${secret}jwt`);
    expect(config.jwksFile).toBe('/etc/jwks.json');
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

  it.each(['abc', '0', '-1', '1.5', '30d', '999999'])('fails on ACTIVITY_RETENTION_DAYS=%s', (value) => {
    expect(configError({ ACTIVITY_RETENTION_DAYS: value }).message).toMatch(/^ACTIVITY_RETENTION_DAYS /);
  });

  it.each(['maybe', 'disabled', '2'])('fails on ENABLE_ACTIVITY_STREAM=%s', (value) => {
    const error = configError({ ENABLE_ACTIVITY_STREAM: value });
    expect(error.message).toMatch(/^ENABLE_ACTIVITY_STREAM /);
    expect(error.message).toContain('true or false');
  });
});
