import { z } from 'zod';
import { ActivityError } from '../domain/errors.js';
import type { DatabaseTarget } from '../store/open-database.js';

/** Flags that override the environment (the CLI's global options). */
export interface ConfigOverrides {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  redisUrl?: string | undefined;
}

export interface Config {
  database: DatabaseTarget;
  redisUrl: string | undefined;
  streamEnabled: boolean;
  retentionDays: number;
  /** ACTIVITY_SECRET; the embedded database keeps its own when this is unset. */
  secret: string | undefined;
  jwtSecret: string | undefined;
  jwksFile: string | undefined;
  registryFile: string | undefined;
}

const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === '' ? undefined : value));

const postgresUrlPattern = /^postgres(ql)?:\/\//;

const booleanText = optionalText.pipe(
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no', 'on', 'off'], { message: 'must be true or false' })
    .optional()
    .transform((value) => value === undefined || ['true', '1', 'yes', 'on'].includes(value)),
);

const secretText = optionalText.refine(
  (value) => value === undefined || Buffer.byteLength(value) >= 32,
  'must be at least 32 bytes',
);

/** Every variable the tool reads, validated once. No other module reads process.env. */
const environmentSchema = z.object({
  ACTIVITY_DATABASE_URL: optionalText,
  DATABASE_URL: optionalText,
  ACTIVITY_DATA_DIR: optionalText,
  ACTIVITY_REDIS_URL: optionalText.refine(
    (value) => value === undefined || /^rediss?:\/\//.test(value),
    'must be a redis:// or rediss:// URL',
  ),
  ENABLE_ACTIVITY_STREAM: booleanText,
  ACTIVITY_RETENTION_DAYS: optionalText.pipe(
    z
      .string()
      .regex(/^\d{1,5}$/, 'must be a whole number of days')
      .transform(Number)
      .pipe(z.number().min(1, 'must be at least 1 day'))
      .optional(),
  ),
  ACTIVITY_SECRET: secretText,
  ACTIVITY_JWT_SECRET: secretText,
  ACTIVITY_JWKS_FILE: optionalText,
  ACTIVITY_REGISTRY_FILE: optionalText,
});

/** Builds the configuration: flags, then the environment, then defaults. */
export function loadConfig(
  overrides: ConfigOverrides = {},
  environment: NodeJS.ProcessEnv = process.env,
): Config {
  const env = parseOrThrow(environmentSchema, environment, (key) => key);
  const flags = parseOrThrow(
    z.object({
      databaseUrl: optionalText,
      dataDir: optionalText,
      redisUrl: environmentSchema.shape.ACTIVITY_REDIS_URL,
    }),
    overrides,
    (key) => `--${key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)}`,
  );
  // Only the URL that wins is checked: DATABASE_URL often belongs to another program.
  const [databaseUrlSource, databaseUrl] =
    flags.databaseUrl !== undefined
      ? ['--database-url', flags.databaseUrl]
      : env.ACTIVITY_DATABASE_URL !== undefined
        ? ['ACTIVITY_DATABASE_URL', env.ACTIVITY_DATABASE_URL]
        : ['DATABASE_URL', env.DATABASE_URL];
  if (databaseUrl !== undefined && !postgresUrlPattern.test(databaseUrl)) {
    throw new ActivityError(
      'CONFIG_INVALID',
      `${databaseUrlSource} must be a postgres:// or postgresql:// URL`,
    );
  }
  return {
    database:
      databaseUrl === undefined
        ? { kind: 'pglite', dataDir: flags.dataDir ?? env.ACTIVITY_DATA_DIR ?? '.activity' }
        : { kind: 'postgres', url: databaseUrl },
    redisUrl: flags.redisUrl ?? env.ACTIVITY_REDIS_URL,
    streamEnabled: env.ENABLE_ACTIVITY_STREAM,
    retentionDays: env.ACTIVITY_RETENTION_DAYS ?? 365,
    secret: env.ACTIVITY_SECRET,
    jwtSecret: env.ACTIVITY_JWT_SECRET,
    jwksFile: env.ACTIVITY_JWKS_FILE,
    registryFile: env.ACTIVITY_REGISTRY_FILE,
  };
}

function parseOrThrow<T extends z.ZodType>(
  schema: T,
  input: unknown,
  nameOf: (key: string) => string,
): z.output<T> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const name = nameOf(String(issue?.path[0] ?? 'configuration'));
  throw new ActivityError('CONFIG_INVALID', `${name} ${issue?.message ?? 'is invalid'}`);
}
