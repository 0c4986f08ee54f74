import { readFileSync } from 'node:fs';

/**
 * One shape of test/fixtures/secret-corpus.json: secret shapes from the gitleaks and
 * trufflehog rule sets, the RFCs that define credentials in headers and URLs, and
 * issue 17; every value is synthetic.
 */
export interface CorpusEntry {
  name: string;
  source: string;
  kind: 'credential' | 'ip';
  value: string;
  /** For IP entries: the address as written in the value. */
  address?: string;
}

export const secretCorpus: readonly CorpusEntry[] = JSON.parse(
  readFileSync(new URL('../fixtures/secret-corpus.json', import.meta.url), 'utf8'),
);
