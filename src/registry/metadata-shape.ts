import type { z } from 'zod';
import { maxKeyLength, textProblem } from '../domain/caps.js';

/**
 * What an action's metadata schema accepts, read from its zod definition, for the
 * quick check of metadata (service/quick-metadata.ts): strict objects, strings with
 * length bounds, enums of strings, booleans, numbers with integer and range checks,
 * arrays, optional and nullable values, and the free-form `context` record. A schema
 * built of anything else (a format, a regex, a union, a transform, a refinement, a
 * default) has no shape, and zod alone checks it.
 */
export type MetadataShape =
  | ObjectShape
  | { kind: 'string'; min: number; max: number }
  | { kind: 'enum'; values: ReadonlySet<string> }
  | { kind: 'boolean' }
  | { kind: 'number'; integer: boolean; min: Bound | undefined; max: Bound | undefined }
  | { kind: 'array'; element: MetadataShape; min: number; max: number }
  | { kind: 'optional'; inner: MetadataShape }
  | { kind: 'nullable'; inner: MetadataShape }
  /** A record of string keys to anything: only the caps and scrubbing judge its values. */
  | { kind: 'record' };

/** A strict object: its declared keys in the schema's order, which is the order zod writes. */
export interface ObjectShape {
  kind: 'object';
  fields: ReadonlyMap<string, MetadataShape>;
}

interface Bound {
  value: number;
  inclusive: boolean;
}

/** The shape of a strict object schema, or undefined where any part of it has none. */
export function objectShapeOf(schema: z.ZodType): ObjectShape | undefined {
  const shape = shapeOf(schema);
  return shape?.kind === 'object' ? shape : undefined;
}

/** The subset of zod's definitions a shape can hold; `checks` are zod's own, read by name. */
interface Definition {
  type: string;
  checks?: Array<{ _zod: { def: Record<string, unknown> } }>;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  innerType?: z.ZodType;
  element?: z.ZodType;
  entries?: Record<string, unknown>;
  keyType?: z.ZodType;
  valueType?: z.ZodType;
}

function definitionOf(schema: z.ZodType): Definition {
  return (schema as unknown as { _zod: { def: Definition } })._zod.def;
}

/**
 * The parts of a definition each kind may have: anything more (a string's format and
 * pattern, a coercion) is a check the shape does not hold.
 */
const partsOf: Record<string, ReadonlySet<string>> = {
  object: new Set(['type', 'shape', 'catchall']),
  string: new Set(['type', 'checks']),
  enum: new Set(['type', 'entries']),
  boolean: new Set(['type']),
  number: new Set(['type', 'checks']),
  array: new Set(['type', 'element', 'checks']),
  optional: new Set(['type', 'innerType']),
  nullable: new Set(['type', 'innerType']),
  record: new Set(['type', 'keyType', 'valueType']),
  unknown: new Set(['type']),
};

/** The definition, if every part of it is one a shape holds. */
function plainDefinitionOf(schema: z.ZodType): Definition | undefined {
  const def = definitionOf(schema);
  const parts = partsOf[def.type];
  return parts && Object.keys(def).every((part) => parts.has(part)) ? def : undefined;
}

function shapeOf(schema: z.ZodType): MetadataShape | undefined {
  const def = plainDefinitionOf(schema);
  if (def === undefined) return undefined;
  const checks = (def.checks ?? []).map((check) => check._zod.def);
  switch (def.type) {
    case 'object':
      return checks.length === 0 ? objectShape(def) : undefined;
    case 'string':
      return stringShape(checks);
    case 'enum': {
      const values = Object.values(def.entries ?? {});
      return checks.length === 0 && values.every((value) => typeof value === 'string')
        ? { kind: 'enum', values: new Set(values as string[]) }
        : undefined;
    }
    case 'boolean':
      return checks.length === 0 ? { kind: 'boolean' } : undefined;
    case 'number':
      return numberShape(checks);
    case 'array':
      return arrayShape(def, checks);
    case 'optional':
    case 'nullable': {
      const inner = checks.length === 0 && def.innerType ? shapeOf(def.innerType) : undefined;
      return inner && { kind: def.type, inner };
    }
    case 'record': {
      const key = def.keyType && plainDefinitionOf(def.keyType);
      const value = def.valueType && plainDefinitionOf(def.valueType);
      const plain = key?.type === 'string' && (key.checks ?? []).length === 0 && value?.type === 'unknown';
      return plain && checks.length === 0 ? { kind: 'record' } : undefined;
    }
    default:
      return undefined;
  }
}

function objectShape(def: Definition): ObjectShape | undefined {
  // Strict objects only: zod rejects an undeclared key, never drops or keeps it.
  if (!def.shape || !def.catchall || definitionOf(def.catchall).type !== 'never') return undefined;
  const fields = new Map<string, MetadataShape>();
  for (const [key, field] of Object.entries(def.shape)) {
    // A key every object inherits (`constructor`) or one the caps refuse: zod's to judge.
    if (key in Object.prototype || textProblem(key, maxKeyLength) !== undefined) return undefined;
    const shape = shapeOf(field);
    if (shape === undefined) return undefined;
    fields.set(key, shape);
  }
  return { kind: 'object', fields };
}

function stringShape(checks: Array<Record<string, unknown>>): MetadataShape | undefined {
  const bounds = lengthBounds(checks);
  return bounds && { kind: 'string', ...bounds };
}

/** The length bounds of a string's or an array's checks, or undefined where they check more. */
function lengthBounds(checks: Array<Record<string, unknown>>): { min: number; max: number } | undefined {
  let min = 0;
  let max = Number.POSITIVE_INFINITY;
  for (const check of checks) {
    if (check.check === 'min_length' && typeof check.minimum === 'number') min = Math.max(min, check.minimum);
    else if (check.check === 'max_length' && typeof check.maximum === 'number')
      max = Math.min(max, check.maximum);
    else return undefined;
  }
  return { min, max };
}

function numberShape(checks: Array<Record<string, unknown>>): MetadataShape | undefined {
  let integer = false;
  let min: Bound | undefined;
  let max: Bound | undefined;
  for (const check of checks) {
    const bound = { value: check.value as number, inclusive: check.inclusive === true };
    if (check.check === 'number_format' && check.format === 'safeint') integer = true;
    else if (check.check === 'greater_than' && typeof check.value === 'number' && min === undefined)
      min = bound;
    else if (check.check === 'less_than' && typeof check.value === 'number' && max === undefined) max = bound;
    else return undefined;
  }
  return { kind: 'number', integer, min, max };
}

function arrayShape(def: Definition, checks: Array<Record<string, unknown>>): MetadataShape | undefined {
  const element = def.element && shapeOf(def.element);
  const bounds = lengthBounds(checks);
  return element && bounds && { kind: 'array', element, ...bounds };
}
