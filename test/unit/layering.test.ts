import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const src = fileURLToPath(new URL('../../src', import.meta.url));

/**
 * Which folders of src/ each folder may import from (docs/architecture.md). The core
 * (privacy up to service) never reaches a shell (cli, http) or the composition root
 * (app), and no two folders import each other.
 */
const allowed: Record<string, readonly string[]> = {
  privacy: [],
  integrity: ['domain'],
  domain: ['privacy'],
  registry: ['domain', 'privacy'],
  auth: ['domain', 'privacy'],
  config: ['domain'],
  store: ['config', 'domain', 'integrity'],
  stream: ['config', 'domain'],
  sinks: ['domain', 'registry'],
  service: ['domain', 'integrity', 'privacy', 'registry', 'sinks'],
  metrics: ['domain', 'service'],
  app: [
    'auth',
    'config',
    'domain',
    'integrity',
    'metrics',
    'privacy',
    'registry',
    'service',
    'sinks',
    'store',
    'stream',
  ],
  http: [
    'app',
    'auth',
    'config',
    'domain',
    'integrity',
    'metrics',
    'privacy',
    'registry',
    'service',
    'stream',
  ],
  // `serve` starts the HTTP shell: the one import of http from the CLI.
  cli: [
    'app',
    'auth',
    'config',
    'domain',
    'http',
    'integrity',
    'metrics',
    'privacy',
    'registry',
    'service',
    'stream',
  ],
  '.': ['app', 'config', 'domain', 'registry', 'service'],
};

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? sourceFiles(join(directory, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(directory, entry.name)]
        : [],
  );
}

/** The folder of src/ a file is in ('.' for src/ itself). */
function folderOf(file: string): string {
  const [first, ...rest] = relative(src, file).split('/');
  return rest.length === 0 ? '.' : (first as string);
}

/** Every relative import of a file (static, dynamic and type-only), as folders of src/. */
function importedFolders(file: string): { specifier: string; folder: string }[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)].map((match) => {
    const specifier = match[1] as string;
    return { specifier, folder: folderOf(resolve(dirname(file), specifier)) };
  });
}

describe('the layering of src/', () => {
  const files = sourceFiles(src);

  it('names every folder', () => {
    expect(new Set(files.map(folderOf))).toEqual(new Set(Object.keys(allowed)));
  });

  it('imports across folders only where allowed', () => {
    const violations = files.flatMap((file) => {
      const from = folderOf(file);
      return importedFolders(file)
        .filter(({ folder }) => folder !== from && !(allowed[from] ?? []).includes(folder))
        .map(({ specifier }) => `${relative(src, file)} imports ${specifier}`);
    });
    expect(violations).toEqual([]);
  });

  it('has no two folders that may import each other', () => {
    const mutual = Object.entries(allowed).flatMap(([from, targets]) =>
      targets.filter((to) => allowed[to]?.includes(from)).map((to) => `${from} <-> ${to}`),
    );
    expect(mutual).toEqual([]);
  });

  it('sees static, dynamic and type-only imports', () => {
    // hold.ts: a type from domain, context.js in its folder, the app by import().
    const folders = importedFolders(join(src, 'cli', 'commands', 'hold.ts')).map(({ folder }) => folder);
    expect(folders).toEqual(expect.arrayContaining(['domain', 'cli', 'app']));
  });
});
