import { keyInPath } from '../privacy/scrub.js';
import type { FieldIssue } from './errors.js';
import { fieldLimits } from './event.js';

/** The longest key metadata may hold, in UTF-16 code units. */
export const maxKeyLength = 256;

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
  const pending: Visit[] = [{ value: metadata, key: 'metadata', parent: undefined, depth: 1 }];
  // Every value costs at least one byte serialised, so more values than the byte cap
  // means over the cap: the walk never visits more than that.
  let visited = 0;
  while (pending.length > 0 && issues.length < 10) {
    if (++visited > fieldLimits.metadataBytes) {
      return [{ path: 'metadata', message: `is over the ${fieldLimits.metadataBytes}-byte cap` }];
    }
    const visit = pending.pop() as Visit;
    const { value, depth } = visit;
    if (typeof value === 'string') {
      const problem = textProblem(value, fieldLimits.metadataString);
      if (problem) issues.push({ path: pathOf(visit), message: problem });
      continue;
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      // JSON has no Infinity or NaN: JSON.stringify would store null.
      issues.push({ path: pathOf(visit), message: 'is not a finite number' });
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth > fieldLimits.metadataDepth) {
      issues.push({ path: pathOf(visit), message: `nests deeper than ${fieldLimits.metadataDepth} levels` });
      continue;
    }
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        pending.push({ value: value[i], key: i, parent: visit, depth: depth + 1 });
      }
      continue;
    }
    for (const key of Object.keys(value)) {
      const keyProblem =
        key === '__proto__'
          ? 'is __proto__, which a JavaScript object cannot keep'
          : textProblem(key, maxKeyLength);
      if (keyProblem) issues.push({ path: pathOf(visit), message: `has a key that ${keyProblem}` });
      pending.push({ value: (value as Record<string, unknown>)[key], key, parent: visit, depth: depth + 1 });
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

/** A value met on the walk; its path is spelled out only for an issue. */
interface Visit {
  value: unknown;
  key: string | number;
  parent: Visit | undefined;
  depth: number;
}

function pathOf(visit: Visit): string {
  const keys: Array<string | number> = [];
  for (let at: Visit | undefined = visit; at; at = at.parent) {
    keys.push(typeof at.key === 'string' ? keyInPath(at.key) : at.key);
  }
  return keys.reverse().join('.');
}

export function metadataBytes(metadata: unknown): number {
  return Buffer.byteLength(JSON.stringify(metadata), 'utf8');
}
