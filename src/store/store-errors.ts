import { ActivityError } from '../domain/errors.js';

const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'ETIMEDOUT',
  'ECONNRESET',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
  '3D000', // invalid_catalog_name: the database does not exist
  '28P01', // invalid_password
  '28000', // invalid_authorization_specification
]);

/** What to check, for the causes an operator can fix from where they stand. */
const unavailableHints: Record<string, string> = {
  ECONNREFUSED:
    'nothing listens there: is PostgreSQL running, and are the host and port of ACTIVITY_DATABASE_URL right?',
  ENOTFOUND: 'no such host: check the host of ACTIVITY_DATABASE_URL',
  EAI_AGAIN: 'the host name could not be resolved now: check DNS, or the host of ACTIVITY_DATABASE_URL',
  '28P01': 'check the user and password of ACTIVITY_DATABASE_URL',
  '3D000': 'create the database (createdb), or fix its name in ACTIVITY_DATABASE_URL',
};

/**
 * What pg says, without a code, of a server it cannot use: it is gone (a connection
 * that broke, or one that broke earlier in the same transaction), starting or stopping,
 * or it cannot speak TLS when the URL asks for it (sslmode=require).
 */
const unavailableMessage =
  /timeout exceeded when trying to connect|Connection terminated|connect ETIMEDOUT|the database system is|is not queryable|does not support SSL/i;

/**
 * Turns a driver error into an ActivityError: an unreachable database is
 * DB_UNAVAILABLE and a statement that waited or ran too long DB_TIMEOUT (both exit 3,
 * HTTP 503), a missing table means "run activity migrate".
 * `where` names the database without its password.
 */
export function toStoreError(error: unknown, where: string): ActivityError {
  if (error instanceof ActivityError) return error;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // undefined_table, undefined_function: the schema is older than the code
  if (code === '42P01' || code === '42883') {
    return new ActivityError('DB_NOT_MIGRATED', `${where} is not migrated: run \`activity migrate\``, {
      cause: error,
    });
  }
  // lock_not_available, query_canceled: a lock_timeout or statement_timeout ran out
  // (or an operator cancelled the statement). The database is there but busy.
  if (code === '55P03' || code === '57014') {
    return new ActivityError('DB_TIMEOUT', `${where} is busy: ${message}`, { cause: error });
  }
  if (
    (typeof code === 'string' && (unavailableCodes.has(code) || code.startsWith('08'))) ||
    unavailableMessage.test(message)
  ) {
    const reason = typeof code === 'string' && !/^\d/.test(code) ? code : message;
    const hint = typeof code === 'string' ? unavailableHints[code] : undefined;
    return new ActivityError('DB_UNAVAILABLE', `cannot use ${where}: ${reason}${hint ? ` (${hint})` : ''}`, {
      cause: error,
    });
  }
  return new ActivityError('INTERNAL', `database error on ${where}`, { cause: error });
}

/** lock_not_available: a `lock_timeout` ran out. */
export function isLockTimeout(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === '55P03';
}

/** Runs one store operation; whatever it throws comes out as toStoreError makes it. */
export async function guarded<T>(where: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw toStoreError(error, where);
  }
}

/**
 * guarded for a stream read from the store (an export's COPY), opened on the first
 * read: its errors come out as toStoreError makes them, and a reader that leaves early
 * still closes it (`yield*` passes the return on), which releases its connection.
 */
export async function* guardedStream<T>(where: string, open: () => AsyncIterable<T>): AsyncGenerator<T> {
  try {
    yield* open();
  } catch (error) {
    throw toStoreError(error, where);
  }
}
