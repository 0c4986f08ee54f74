import { distance } from 'fastest-levenshtein';

/** ` (did you mean X?)` for the candidates closest to what was given, or nothing when none is close. */
export function suggestion(given: string, candidates: Iterable<string>): string {
  const close = closest(given, candidates);
  return close.length === 0 ? '' : ` (did you mean ${close.join(' or ')}?)`;
}

/** Up to three candidates within a few edits of `given`, closest first. */
export function closest(given: string, candidates: Iterable<string>): string[] {
  const allowed = Math.max(2, Math.floor(given.length / 4));
  return [...new Set(candidates)]
    .map((candidate) => ({ candidate, edits: distance(given, candidate) }))
    .filter(({ candidate, edits }) => edits <= allowed && candidate !== given)
    .sort((a, b) => a.edits - b.edits || a.candidate.localeCompare(b.candidate))
    .slice(0, 3)
    .map(({ candidate }) => candidate);
}
