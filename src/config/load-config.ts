import { z } from 'zod';
import { ActivityError } from '../domain/errors.js';

/** Where the events live: a PostgreSQL server, or the embedded PGlite in a data directory. */
export type DatabaseTarget = { kind: 'postgres'; url: string } | { kind: 'pglite'; dataDir: string };

/** Flags that override the environment (the CLI's global options). */
export interface ConfigOverrides {
  databaseUrl?: string | undefined;
  dataDir?: string | undefined;
  redisUrl?: string | undefined;
  /** `--actor`: who the CLI acts as in the self-audit events. */
  actor?: string | undefined;
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
  /** ACTIVITY_JWT_ISSUER: the `iss` bearer tokens must carry; set whenever jwksFile is. */
  jwtIssuer: string | undefined;
  /** ACTIVITY_JWT_AUDIENCE: the `aud` bearer tokens must be for; set whenever jwksFile is. */
  jwtAudience: string | undefined;
  registryFile: string | undefined;
  /** ACTIVITY_LOCK_TIMEOUT: how long a statement of serve, record, query or tail waits for a lock (0: no limit). */
  lockTimeoutMs: number;
  /** ACTIVITY_STATEMENT_TIMEOUT: how long such a statement may run, exports apart (0: no limit). */
  statementTimeoutMs: number;
  /** ACTIVITY_SIGNING_KEY_FILE: the Ed25519 key (PKCS#8 PEM) that signs checkpoints; the embedded database keeps its own when unset. */
  signingKeyFile: string | undefined;
  /** ACTIVITY_LOG_NAME: the log's name in checkpoint origins and as the key's name. */
  logName: string;
  /** ACTIVITY_PREVIOUS_PUBLIC_KEYS: verifier keys of signing keys rotated out, whose checkpoints are still trusted. */
  previousPublicKeys: string[];
  /** ACTIVITY_AUDIT_READS: false stops recording reads and streams (`activity.events.read`, `activity.stream.*`). */
  auditReads: boolean;
  /** `--actor`, else ACTIVITY_ACTOR: who the CLI acts as in self-audit events (the CLI defaults it to the OS user). */
  actor: string | undefined;
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

/** An `iss` or `aud` value: compared exactly, so a stray space would refuse every token. */
const claimText = optionalText.refine(
  (value) => value === undefined || value === value.trim(),
  'must not begin or end with whitespace',
);

const durationUnitsMs = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** A timeout such as `500ms`, `5s` or `2m`, in milliseconds; `0` for none. */
const timeoutText = (defaultMs: number) =>
  optionalText.pipe(
    z
      .string()
      .regex(/^(0|\d{1,7}(ms|s|m|h))$/, 'must be a duration like 500ms, 5s or 2m, or 0 for no limit')
      .transform((value) => {
        const [, amount = '0', unit = 'ms'] = /^(\d+)(ms|s|m|h)?$/.exec(value) ?? [];
        return Number(amount) * durationUnitsMs[unit as keyof typeof durationUnitsMs];
      })
      .pipe(z.number().max(2_147_483_647, 'must be under 24 days'))
      .optional()
      .transform((value) => value ?? defaultMs),
  );

/** Every variable the tool reads, validated once. No other module reads process.env. */
const environmentSchema = z
  .object({
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
        // A hundred years at most, as `retention set --days` and `purge --older-than`.
        .pipe(z.number().min(1, 'must be at least 1 day').max(36_500, 'must be at most 36500 days'))
        .optional(),
    ),
    ACTIVITY_SECRET: secretText,
    ACTIVITY_JWT_SECRET: secretText,
    ACTIVITY_JWKS_FILE: optionalText,
    ACTIVITY_JWT_ISSUER: claimText,
    ACTIVITY_JWT_AUDIENCE: claimText,
    ACTIVITY_REGISTRY_FILE: optionalText,
    ACTIVITY_LOCK_TIMEOUT: timeoutText(5_000),
    ACTIVITY_STATEMENT_TIMEOUT: timeoutText(30_000),
    ACTIVITY_SIGNING_KEY_FILE: optionalText,
    ACTIVITY_AUDIT_READS: booleanText,
    ACTIVITY_ACTOR: optionalText.pipe(z.string().max(256, 'must be at most 256 characters').optional()),
    ACTIVITY_PREVIOUS_PUBLIC_KEYS: optionalText.transform(
      (value) => value?.split(/[\s,]+/).filter(Boolean) ?? [],
    ),
    // A signed-note key name: no spaces, no "+"; and the first part of every origin.
    ACTIVITY_LOG_NAME: optionalText.pipe(
      z
        .string()
        .regex(/^[^\s+]{1,128}$/u, 'must be 1 to 128 characters with no space or "+"')
        .optional()
        .transform((value) => value ?? 'activity'),
    ),
  })
  // An identity provider's keys sign tokens for other services too: without both checks
  // a token minted for any of them would be accepted.
  .superRefine((env, context) => {
    if (env.ACTIVITY_JWKS_FILE === undefined) return;
    for (const name of ['ACTIVITY_JWT_ISSUER', 'ACTIVITY_JWT_AUDIENCE'] as const) {
      if (env[name] === undefined) {
        context.addIssue({
          code: 'custom',
          path: [name],
          message: 'is required when ACTIVITY_JWKS_FILE is set',
        });
      }
    }
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
      actor: environmentSchema.shape.ACTIVITY_ACTOR,
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
  const urlProblem = databaseUrl === undefined ? undefined : postgresUrlProblem(databaseUrl);
  if (urlProblem !== undefined) {
    // No cause: the URL parser's error holds the input, password included.
    throw new ActivityError('CONFIG_INVALID', `${databaseUrlSource} is not a valid URL (${urlProblem})`);
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
    jwtIssuer: env.ACTIVITY_JWT_ISSUER,
    jwtAudience: env.ACTIVITY_JWT_AUDIENCE,
    registryFile: env.ACTIVITY_REGISTRY_FILE,
    lockTimeoutMs: env.ACTIVITY_LOCK_TIMEOUT,
    statementTimeoutMs: env.ACTIVITY_STATEMENT_TIMEOUT,
    signingKeyFile: env.ACTIVITY_SIGNING_KEY_FILE,
    logName: env.ACTIVITY_LOG_NAME,
    previousPublicKeys: env.ACTIVITY_PREVIOUS_PUBLIC_KEYS,
    auditReads: env.ACTIVITY_AUDIT_READS,
    actor: flags.actor ?? env.ACTIVITY_ACTOR,
  };
}

/**
 * Why the PostgreSQL driver (pg) could not use `url`, or undefined when it can. pg
 * reads it with the WHATWG URL parser, so a bad port used to surface at connect time as
 * a bare "Invalid URL". The reason never quotes the URL: it may hold a password.
 */
function postgresUrlProblem(url: string): string | undefined {
  // pg also takes `postgres://user:pw@/db?host=/run/postgresql` (a socket named in the
  // query), where the URL parser wants a host after the `@`: lend it one.
  const parsed = URL.parse(url.replace(/^(postgres(?:ql)?:\/\/[^/?#]*@)(?=[/?#]|$)/, '$1localhost'));
  if (parsed === null) {
    const authority = /^postgres(?:ql)?:\/\/([^/?#]*)/.exec(url)?.[1] ?? '';
    const hostAndPort = authority.slice(authority.lastIndexOf('@') + 1);
    const port = /^(?:\[[^\]]*\]|[^:[\]]*):(.*)$/.exec(hostAndPort)?.[1];
    return (
      (port === undefined ? undefined : portProblem(port)) ??
      'check the host, and percent-encode special characters in the user name and password'
    );
  }
  // A port in the query wins over the one after the host, as in pg.
  const port = parsed.searchParams.get('port') || parsed.port;
  return port === '' ? undefined : portProblem(port);
}

function portProblem(port: string): string | undefined {
  if (!/^\d+$/.test(port)) return 'port must be a number';
  const number = Number(port);
  return number >= 1 && number <= 65_535 ? undefined : 'port must be between 1 and 65535';
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
