import { identifierProblem } from '../privacy/scrub.js';
import { tenantIdSchema } from './inputs.js';

/**
 * Why `tenantId` cannot be stored or signed (an event's, a policy's, a hold's, a
 * token's tenant), or undefined: the pattern, and no IP address or credential in it,
 * which would then stand in clear in the database and the request log.
 */
export function tenantIdProblem(tenantId: unknown): string | undefined {
  if (!tenantIdSchema.safeParse(tenantId).success) return 'must be 1–128 characters of A-Z a-z 0-9 . _ : -';
  return identifierProblem(tenantId as string);
}
