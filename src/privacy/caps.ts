import type { FieldIssue } from '../domain/errors.js';
import { fieldLimits } from '../domain/event.js';

/** Why a string cannot be stored, or undefined when it can. */
export function textProblem(value: string, maxLength: number): string | undefined {
  if (value.length > maxLength) return `is longer than ${maxLength} characters`;
  if (value.includes('\u0000')) return 'contains a NUL byte';
  if (!value.isWellFormed()) return 'is not valid UTF-8 (lone surrogate)';
  return undefined;
}

/**
 * Checks the metadata caps: a plain object, at most 8 levels deep, strings and keys
 * storable, and at most 8 KiB serialised. The walk is iterative and stops at the first
 * level past the cap, so a hostile payload costs no deep recursion.
 */
export function metadataCapIssues(metadata: unknown): FieldIssue[] {
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    return [{ path: 'metadata', message: 'must be a JSON object' }];
  }
  const issues: FieldIssue[] = [];
  const pending: Array<{ value: unknown; path: string; depth: number }> = [
    { value: metadata, path: 'metadata', depth: 1 },
  ];
  // Every value costs at least one byte serialised, so more values than the byte cap
  // means over the cap: the walk never visits more than that.
  let visited = 0;
  while (pending.length > 0 && issues.length < 10) {
    if (++visited > fieldLimits.metadataBytes) {
      return [{ path: 'metadata', message: `is over the ${fieldLimits.metadataBytes}-byte cap` }];
    }
    const { value, path, depth } = pending.pop() as { value: unknown; path: string; depth: number };
    if (typeof value === 'string') {
      const problem = textProblem(value, fieldLimits.metadataString);
      if (problem) issues.push({ path, message: problem });
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > fieldLimits.metadataDepth) {
      issues.push({ path, message: `nests deeper than ${fieldLimits.metadataDepth} levels` });
      continue;
    }
    const entries = Array.isArray(value)
      ? value.map((child, i) => [String(i), child] as const)
      : Object.entries(value);
    for (const [key, child] of entries) {
      const keyProblem = textProblem(key, 256);
      if (keyProblem) issues.push({ path, message: `has a key that ${keyProblem}` });
      pending.push({ value: child, path: `${path}.${key}`, depth: depth + 1 });
    }
  }
  if (issues.length > 0) return issues;
  const size = metadataBytes(metadata);
  return size > fieldLimits.metadataBytes
    ? [
        {
          path: 'metadata',
          message: `is ${size} bytes serialised, over the ${fieldLimits.metadataBytes}-byte cap`,
        },
      ]
    : [];
}

export function metadataBytes(metadata: unknown): number {
  return Buffer.byteLength(JSON.stringify(metadata), 'utf8');
}
