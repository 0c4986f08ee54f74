import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { toolVersion } from '../../src/app/tool-version.js';
import { openApiDocument } from '../../src/http/openapi.js';

/** The document the server serves. */
export const openApi = openApiDocument(toolVersion()) as {
  paths: Record<string, Record<string, { responses: Record<string, Answer> }>>;
};

interface Answer {
  content?: Record<string, { schema: Record<string, unknown> }>;
}

// ajv-formats is CommonJS: its function is the default of the default under ESM.
const addFormats = addFormatsModule as unknown as { default: (ajv: Ajv2020) => Ajv2020 };
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
ajv.addSchema(openApi, 'openapi.json');
const compiled = new Map<string, ValidateFunction>();

/** The validator of the schema at `pointer` in the document. */
function validatorAt(pointer: string): ValidateFunction {
  let validate = compiled.get(pointer);
  if (!validate) {
    validate = ajv.compile({ $ref: `openapi.json#${pointer}` });
    compiled.set(pointer, validate);
  }
  return validate;
}

const pointerSegment = (segment: string) => segment.replaceAll('~', '~0').replaceAll('/', '~1');

/**
 * Why an answer is not one the document describes, or undefined: the status must be
 * listed for the operation, the media type too, and a JSON body must match its schema.
 * A path the document lacks must be a 404 problem, a method it lacks a 405 problem.
 */
export function contractViolation(answer: {
  method: string;
  path: string;
  status: number;
  contentType: string | null;
  body: string;
}): string | undefined {
  const pathname = new URL(answer.path, 'http://localhost').pathname;
  const method = answer.method.toLowerCase();
  const operation = openApi.paths[pathname]?.[method];
  const where = `${answer.method} ${pathname} → ${answer.status}`;
  const mediaType = (answer.contentType ?? '').split(';')[0]?.trim() ?? '';
  if (!operation) {
    const expected = openApi.paths[pathname] ? 405 : 404;
    if (answer.status !== expected)
      return `${where}: the document has no such operation (expected ${expected})`;
    // HEAD: a problem's headers, no body to check.
    if (method === 'head')
      return mediaType === 'application/problem+json' ? undefined : `${where}: ${mediaType}`;
    return problemViolation(where, mediaType, answer.body);
  }
  const status = String(answer.status);
  const described = operation.responses[status];
  if (!described)
    return `${where}: status not in the document (${Object.keys(operation.responses).join(', ')})`;
  // HEAD: the status and headers of GET, no body to check.
  if (method === 'head') return undefined;
  const content = described.content ?? {};
  const media = content[mediaType];
  if (!media)
    return `${where}: content type ${mediaType} not in the document (${Object.keys(content).join(', ')})`;
  if (!mediaType.endsWith('json')) return undefined;
  const pointer = `/paths/${pointerSegment(pathname)}/${method}/responses/${status}/content/${pointerSegment(mediaType)}/schema`;
  return schemaViolation(where, validatorAt(pointer), answer.body);
}

function problemViolation(where: string, mediaType: string, body: string): string | undefined {
  if (mediaType !== 'application/problem+json') return `${where}: ${mediaType} instead of a problem`;
  return schemaViolation(where, validatorAt('/components/schemas/Problem'), body);
}

function schemaViolation(where: string, validate: ValidateFunction, body: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return `${where}: the body is not JSON`;
  }
  if (validate(value)) return undefined;
  return `${where}: ${ajv.errorsText(validate.errors, { dataVar: 'body' })}`;
}
