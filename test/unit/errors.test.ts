import { describe, expect, it } from 'vitest';
import { ActivityError, errorCodes, isActivityError, toActivityError } from '../../src/domain/errors.js';

const codes = Object.keys(errorCodes) as Array<keyof typeof errorCodes>;

describe('error codes', () => {
  it.each(codes)('%s maps to an exit code of 1–4 and an HTTP error status', (code) => {
    const error = new ActivityError(code, 'x');
    expect([1, 2, 3, 4]).toContain(error.exitCode);
    expect(error.httpStatus).toBeGreaterThanOrEqual(400);
    expect(error.httpStatus).toBeLessThanOrEqual(599);
    expect(errorCodes[code].title.length).toBeGreaterThan(0);
  });

  it('usage and input errors exit 2, dependency errors 3, integrity errors 4', () => {
    for (const code of ['USAGE_INVALID', 'ACTION_UNKNOWN', 'VALIDATION_FAILED', 'CURSOR_INVALID'] as const) {
      expect(errorCodes[code].exit).toBe(2);
    }
    expect(errorCodes.CONFIG_INVALID.exit).toBe(2);
    expect(errorCodes.DB_UNAVAILABLE.exit).toBe(3);
    expect(errorCodes.DB_UNAVAILABLE.http).toBe(503);
    expect(errorCodes.INTEGRITY_FAILED.exit).toBe(4);
  });

  it('validation errors are HTTP 422 and a bad cursor is HTTP 400', () => {
    expect(errorCodes.VALIDATION_FAILED.http).toBe(422);
    expect(errorCodes.ACTION_UNKNOWN.http).toBe(422);
    expect(errorCodes.CURSOR_INVALID.http).toBe(400);
  });

  it('an ActivityError keeps its cause and its field issues', () => {
    const cause = new Error('root');
    const error = new ActivityError('VALIDATION_FAILED', 'bad', {
      cause,
      issues: [{ path: 'metadata.reason', message: 'required' }],
    });
    expect(error.cause).toBe(cause);
    expect(error.issues).toEqual([{ path: 'metadata.reason', message: 'required' }]);
    expect(error.name).toBe('ActivityError');
    expect(isActivityError(error)).toBe(true);
  });

  it('anything else thrown becomes INTERNAL with the original as cause', () => {
    const original = new TypeError('boom');
    const wrapped = toActivityError(original);
    expect(wrapped.code).toBe('INTERNAL');
    expect(wrapped.cause).toBe(original);
    expect(wrapped.message).not.toContain('boom');
    const existing = new ActivityError('DB_UNAVAILABLE', 'down');
    expect(toActivityError(existing)).toBe(existing);
    expect(isActivityError(original)).toBe(false);
  });
});
