import { z } from 'zod';
import { pageLimit, queryFilterShape, queryInputSchema } from '../domain/inputs.js';

/** The live stream's route. */
export const streamPath = '/api/v1/activity/stream';

/** The most events one POST records. */
export const maxBatch = 1000;

/** The list route's parameters: the CLI's query schema, with the HTTP page cap. */
export const listParamsSchema = queryInputSchema.extend({
  limit: pageLimit(200).default(50),
});

/** A seq to resume a stream after, in `after` or `Last-Event-ID`. */
export const resumeSeqPattern = /^\d{1,15}$/;

/** The stream route's parameters: the list's filters, and where to resume. */
export const streamParamsSchema = z.strictObject({
  ...queryFilterShape,
  after: z.string().regex(resumeSeqPattern).optional(),
});

/** A seq or a tree size: digits only, from 1, as a double holds exactly. */
const positiveParam = z
  .string()
  .regex(/^[1-9]\d{0,15}$/, 'must be a whole number from 1')
  .transform(Number)
  .pipe(z.number().max(Number.MAX_SAFE_INTEGER, 'is too large'));

export const proofParamsSchema = z.strictObject({ seq: positiveParam, size: positiveParam.optional() });
export const consistencyParamsSchema = z.strictObject({ from: positiveParam, to: positiveParam });
