/**
 * Every failure the tool reports is an ActivityError with a stable code. One table
 * maps each code to a CLI exit code and an HTTP status, so the shells cannot disagree;
 * `retryAfter` is the HTTP Retry-After (seconds) of a failure that passes by itself.
 */
export const errorCodes = {
  USAGE_INVALID: { exit: 2, http: 400, title: 'Invalid usage' },
  PARAMETER_INVALID: { exit: 2, http: 400, title: 'Invalid parameter' },
  CURSOR_INVALID: { exit: 2, http: 400, title: 'Invalid cursor' },
  ACTION_UNKNOWN: { exit: 2, http: 422, title: 'Unknown action' },
  ACTION_RESERVED: { exit: 2, http: 422, title: 'Reserved action' },
  VALIDATION_FAILED: { exit: 2, http: 422, title: 'Validation failed' },
  CONFIG_INVALID: { exit: 2, http: 500, title: 'Invalid configuration' },
  REGISTRY_INVALID: { exit: 2, http: 500, title: 'Invalid registry file' },
  INPUT_UNREADABLE: { exit: 2, http: 400, title: 'Input unreadable' },
  UNAUTHORIZED: { exit: 2, http: 401, title: 'Unauthorized' },
  FORBIDDEN: { exit: 2, http: 403, title: 'Forbidden' },
  NOT_FOUND: { exit: 2, http: 404, title: 'Not found' },
  METHOD_NOT_ALLOWED: { exit: 2, http: 405, title: 'Method not allowed' },
  REQUEST_TIMEOUT: { exit: 2, http: 408, title: 'Request timeout' },
  BODY_TOO_LARGE: { exit: 2, http: 413, title: 'Body too large' },
  UNSUPPORTED_MEDIA_TYPE: { exit: 2, http: 415, title: 'Unsupported media type' },
  HEADERS_TOO_LARGE: { exit: 2, http: 431, title: 'Request headers too large' },
  TOO_MANY_STREAMS: { exit: 2, http: 429, title: 'Too many streams', retryAfter: 5 },
  TOO_MANY_CONNECTIONS: { exit: 3, http: 503, title: 'Too many connections', retryAfter: 1 },
  DB_UNAVAILABLE: { exit: 3, http: 503, title: 'Database unavailable', retryAfter: 1 },
  DEPENDENCY_UNAVAILABLE: { exit: 3, http: 503, title: 'Dependency unavailable', retryAfter: 1 },
  DB_TIMEOUT: { exit: 3, http: 503, title: 'Database busy', retryAfter: 1 },
  DB_NOT_MIGRATED: { exit: 3, http: 503, title: 'Database not migrated', retryAfter: 30 },
  DATA_DIR_LOCKED: { exit: 3, http: 503, title: 'Data directory in use', retryAfter: 5 },
  SHUTTING_DOWN: { exit: 3, http: 503, title: 'Shutting down', retryAfter: 1 },
  MIGRATION_FAILED: { exit: 1, http: 500, title: 'Migration failed' },
  INTEGRITY_FAILED: { exit: 4, http: 500, title: 'Integrity check failed' },
  INTERNAL: { exit: 1, http: 500, title: 'Internal error' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

/** Seconds after which a request that failed with `code` may succeed, if it is that kind. */
export function retryAfterSeconds(code: ErrorCode): number | undefined {
  const entry = errorCodes[code];
  return 'retryAfter' in entry ? entry.retryAfter : undefined;
}

/** One problem with one field of the input, as reported to the caller. */
export interface FieldIssue {
  path: string;
  message: string;
}

export class ActivityError extends Error {
  override readonly name = 'ActivityError';
  readonly code: ErrorCode;
  readonly issues: readonly FieldIssue[];

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; issues?: FieldIssue[] } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.issues = options.issues ?? [];
  }

  get exitCode(): number {
    return errorCodes[this.code].exit;
  }

  get httpStatus(): number {
    return errorCodes[this.code].http;
  }
}

export function isActivityError(error: unknown): error is ActivityError {
  return error instanceof ActivityError;
}

/** Turns anything thrown into an ActivityError, keeping the original as `cause`. */
export function toActivityError(error: unknown): ActivityError {
  if (error instanceof ActivityError) return error;
  return new ActivityError('INTERNAL', 'unexpected error', { cause: error });
}
