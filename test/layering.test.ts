// Layering: the chain core declares the storage it needs (src/chain/store.ts) and imports no
// storage module; the node and its chain know nothing of bridges (src/cli wires the Nostr post
// extension in); API route modules take their types from src/api/context.ts, never from the
// server that registers them.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const root = resolve(import.meta.dirname, '..');

/** The .ts files under a folder of the repository (recursively), as absolute paths. */
function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => join(root, dir, f));
}

/** Every module a file imports or re-exports (static, type-only and dynamic), resolved. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
  return info.importedFiles
    .map((f) => f.fileName)
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s));
}

/** `file imports spec` for each import of the files that breaks the rule. */
function violations(files: string[], forbidden: (target: string) => boolean): string[] {
  const out: string[] = [];
  for (const file of files) {
    for (const target of importsOf(file)) {
      if (forbidden(target)) out.push(`${relative(root, file)} imports ${relative(root, target)}`);
    }
  }
  return out;
}

describe('layering', () => {
  it('src/chain imports nothing from src/storage', () => {
    const files = sources('src/chain');
    assert.ok(files.length > 5, 'found the chain sources');
    const storage = join(root, 'src/storage');
    const bad = violations(files, (t) => t === storage || t.startsWith(storage + '/'));
    assert.deepEqual(bad, []);
  });

  it('the node and its chain import nothing from bridges/ (the composition root wires them)', () => {
    const files = [...sources('src/chain'), join(root, 'src/node.ts')];
    const bridges = join(root, 'bridges');
    const bad = violations(files, (t) => t.startsWith(bridges + '/'));
    assert.deepEqual(bad, []);
  });

  it('API route modules do not import src/api/server.ts', () => {
    const files = sources('src/api/routes');
    assert.ok(files.length > 5, 'found the route modules');
    const server = join(root, 'src/api/server.ts');
    const bad = violations(files, (t) => t === server || t === server.slice(0, -3));
    assert.deepEqual(bad, []);
  });

  it('finds static, type-only, re-exported and dynamic imports', () => {
    const text = [
      "import type { A } from '../storage/a.ts';",
      "import {\n  B,\n} from '../storage/b.ts';",
      "export { C } from '../storage/c.ts';",
      "const d = await import('../storage/d.ts');",
    ].join('\n');
    const found = ts.preProcessFile(text, true, true).importedFiles.map((f) => f.fileName);
    assert.deepEqual(found.sort(), [
      '../storage/a.ts',
      '../storage/b.ts',
      '../storage/c.ts',
      '../storage/d.ts',
    ]);
  });
});
