/**
 * RFC 8785 (JCS) canonical JSON of a value parsed from JSON: object keys sorted by
 * UTF-16 code units (what Array.prototype.sort does), no whitespace, numbers as
 * ECMAScript prints them and strings as JSON.stringify writes them (both what JCS
 * prescribes). Non-finite numbers and strings with a lone surrogate have no canonical
 * form and throw a RangeError. Written here rather than taken from the `canonicalize`
 * package, which the tests hold it to: `verify` canonicalises every event of a tenant,
 * and the package's string building cost a sixth of its time and most of its garbage.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new RangeError('a string with a lone surrogate has no canonical JSON');
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new RangeError(`${value} has no canonical JSON`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let text = '[';
        for (let index = 0; index < value.length; index++) {
          if (index > 0) text += ',';
          text += canonicalJson(value[index] ?? null);
        }
        return `${text}]`;
      }
      const record = value as Record<string, unknown>;
      let text = '{';
      for (const key of Object.keys(record).sort()) {
        const member = record[key];
        if (member === undefined) continue;
        if (text.length > 1) text += ',';
        text += `${canonicalJson(key)}:${canonicalJson(member)}`;
      }
      return `${text}}`;
    }
    default:
      throw new RangeError(`a ${typeof value} has no canonical JSON`);
  }
}
