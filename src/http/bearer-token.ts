import { ActivityError } from '../domain/errors.js';

/**
 * The token from `Authorization: Bearer <token>`, else from `?access_token=` (for
 * EventSource clients, which cannot set headers). A header in another form is
 * refused rather than skipped, so a typo cannot silently fall back to the query.
 */
export function bearerToken(
  authorizationHeader: string | undefined,
  queryAccessToken: string | undefined,
): string {
  if (authorizationHeader !== undefined && authorizationHeader.trim() !== '') {
    const match = /^[ \t]*bearer[ \t]+([^\s]+)[ \t]*$/i.exec(authorizationHeader);
    if (!match?.[1]) throw new ActivityError('UNAUTHORIZED', 'authorization header must be "Bearer <token>"');
    return match[1];
  }
  if (queryAccessToken !== undefined && queryAccessToken !== '') return queryAccessToken;
  throw new ActivityError('UNAUTHORIZED', 'missing bearer token');
}
