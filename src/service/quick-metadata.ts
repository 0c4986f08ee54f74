import { maxKeyLength, textProblem } from '../domain/caps.js';
import { fieldLimits } from '../domain/event.js';
import { keepsNumber, keepsText, scrubsNoKey } from '../privacy/scrub.js';
import type { MetadataShape, ObjectShape } from '../registry/metadata-shape.js';

/** Metadata as it is stored, with its JSON text (the statement's parameter). */
export interface QuickMetadata {
  value: Record<string, unknown>;
  json: string;
}

/**
 * The common case of metadata checked in one walk: within the caps, valid for the
 * action's shape, with nothing to scrub. Returns what the general path (caps, then the
 * action's zod schema, then scrubbing) would store, built in the same key order, or
 * undefined for anything else, which the general path then refuses or scrubs and
 * words. A differential test holds the two together (test/unit/quick-metadata.test.ts).
 */
export function quickMetadata(shape: ObjectShape, metadata: unknown): QuickMetadata | undefined {
  const walk = new Walk();
  const value = walk.object(shape, metadata, 1);
  if (value === undefined) return undefined;
  const json = JSON.stringify(value);
  // Bytes are at least characters: the exact count is needed only near the cap.
  if (json.length * 3 > fieldLimits.metadataBytes && Buffer.byteLength(json) > fieldLimits.metadataBytes) {
    return undefined;
  }
  return { value, json };
}

/** Refused, or not the common case: the general path decides. */
const unsure = Symbol('unsure');

class Walk {
  /** Values met so far: past the byte cap's count, the metadata is over it (caps.ts). */
  #visited = 0;

  /** A declared strict object: its keys in the shape's order, as zod writes them. */
  object(shape: ObjectShape, value: unknown, depth: number): Record<string, unknown> | undefined {
    if (!isPlainObject(value) || ++this.#visited > fieldLimits.metadataBytes) return undefined;
    if (depth > fieldLimits.metadataDepth) return undefined;
    // A key the shape does not declare: zod refuses it.
    for (const key of Object.keys(value)) if (!shape.fields.has(key)) return undefined;
    const out: Record<string, unknown> = {};
    for (const [key, field] of shape.fields) {
      if (!Object.hasOwn(value, key)) {
        if (field.kind !== 'optional') return undefined;
        continue;
      }
      if (!scrubsNoKey(key)) return undefined;
      const kept = this.#declared(field, value[key], depth + 1);
      if (kept === unsure) return undefined;
      out[key] = kept;
    }
    return out;
  }

  #declared(shape: MetadataShape, value: unknown, depth: number): unknown {
    switch (shape.kind) {
      case 'object':
        return this.object(shape, value, depth) ?? unsure;
      case 'optional':
        // An explicit undefined is zod's to judge; JSON never holds one.
        return value === undefined ? unsure : this.#declared(shape.inner, value, depth);
      case 'nullable':
        if (value !== null) return this.#declared(shape.inner, value, depth);
        this.#visited++;
        return null;
      case 'string':
        return typeof value === 'string' && value.length >= shape.min && value.length <= shape.max
          ? this.#text(value)
          : unsure;
      case 'enum':
        return typeof value === 'string' && shape.values.has(value) ? this.#text(value) : unsure;
      case 'boolean':
        this.#visited++;
        return typeof value === 'boolean' ? value : unsure;
      case 'number':
        return typeof value === 'number' && numberFits(shape, value) ? this.#number(value) : unsure;
      case 'array': {
        if (!Array.isArray(value) || value.length < shape.min || value.length > shape.max) return unsure;
        if (depth > fieldLimits.metadataDepth || ++this.#visited > fieldLimits.metadataBytes) return unsure;
        const out: unknown[] = new Array(value.length);
        for (let i = 0; i < value.length; i++) {
          const kept = this.#declared(shape.element, value[i], depth + 1);
          if (kept === unsure) return unsure;
          out[i] = kept;
        }
        return out;
      }
      case 'record':
        return isPlainObject(value) ? this.#free(value, depth) : unsure;
    }
  }

  /** A value of the free-form kind (`context`): anything JSON holds, within the caps, with nothing to scrub. */
  #free(value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.#text(value);
    if (typeof value === 'number') return this.#number(value);
    if (typeof value === 'boolean' || value === null) {
      this.#visited++;
      return value;
    }
    if (depth > fieldLimits.metadataDepth || ++this.#visited > fieldLimits.metadataBytes) return unsure;
    if (Array.isArray(value)) {
      const out: unknown[] = new Array(value.length);
      for (let i = 0; i < value.length; i++) {
        const kept = this.#free(value[i], depth + 1);
        if (kept === unsure) return unsure;
        out[i] = kept;
      }
      return out;
    }
    if (!isPlainObject(value)) return unsure;
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (key === '__proto__' || textProblem(key, maxKeyLength) !== undefined || !scrubsNoKey(key))
        return unsure;
      const kept = this.#free(value[key], depth + 1);
      if (kept === unsure) return unsure;
      out[key] = kept;
    }
    return out;
  }

  #text(value: string): string | typeof unsure {
    this.#visited++;
    return textProblem(value, fieldLimits.metadataString) === undefined && keepsText(value) ? value : unsure;
  }

  #number(value: number): number | typeof unsure {
    this.#visited++;
    return Number.isFinite(value) && keepsNumber(value) ? value : unsure;
  }
}

function numberFits(shape: Extract<MetadataShape, { kind: 'number' }>, value: number): boolean {
  if (!Number.isFinite(value) || (shape.integer && !Number.isSafeInteger(value))) return false;
  const { min, max } = shape;
  if (min && (min.inclusive ? value < min.value : value <= min.value)) return false;
  if (max && (max.inclusive ? value > max.value : value >= max.value)) return false;
  return true;
}

/** An object as JSON.parse makes it: what every path treats alike. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
