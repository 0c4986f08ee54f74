import { readFileSync } from 'node:fs';

/** The version in package.json: `activity --version` and the OpenAPI document give it. */
export function toolVersion(): string {
  const packageJson = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(packageJson) as { version: string }).version;
}
