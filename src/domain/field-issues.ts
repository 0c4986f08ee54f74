import type { z } from 'zod';
import { keyInPath } from '../privacy/scrub.js';
import type { FieldIssue } from './errors.js';

/**
 * Flattens zod issues into `path: message` pairs; unrecognised keys are named one by
 * one, and a key that holds a secret as `[key]`.
 */
export function toFieldIssues(error: z.ZodError, prefix?: string): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const base = [
      prefix,
      ...issue.path.map((part) => (typeof part === 'string' ? keyInPath(part) : String(part))),
    ]
      .filter((part) => part !== undefined)
      .join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({
        path: base ? `${base}.${keyInPath(key)}` : keyInPath(key),
        message: 'is not a declared field',
      }));
    }
    // zod words a missing field as a type error ("expected string, received undefined").
    const missing =
      issue.code === 'invalid_type' &&
      issue.input === undefined &&
      issue.message.endsWith('received undefined');
    return [{ path: base || '(root)', message: missing ? 'is required' : issue.message }];
  });
}

export function describeIssues(issues: readonly FieldIssue[]): string {
  return issues.map((issue) => `${issue.path}: ${issue.message}`).join('; ');
}
