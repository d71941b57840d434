/**
 * rumsystem's rum-sdk-browser, unmodified, loaded into a Node test. It ships only an ES-module
 * build with bare deep imports (`crypto-js/sha256`, `protobufjs/light`) and keeps its groups in
 * `localStorage`, so the test bundles it with esbuild into a temporary directory (nothing
 * generated is committed) and installs an in-memory localStorage on globalThis.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { tempDir } from './node-process.ts';

export type BrowserSdk = typeof import('rum-sdk-browser').default;
export type Ethers = typeof import('ethers').ethers;

const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The Web Storage calls the SDK makes, kept in a Map. */
export class MemoryStorage {
  private readonly items = new Map<string, string>();
  get length(): number {
    return this.items.size;
  }
  key(index: number): string | null {
    return [...this.items.keys()][index] ?? null;
  }
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
  clear(): void {
    this.items.clear();
  }
}

/**
 * Bundles rum-sdk-browser (with the ethers v5 it depends on, one copy for both) as CommonJS for
 * Node, installs `storage` as globalThis.localStorage, and loads the bundle.
 */
export async function loadBrowserSdk(
  storage: MemoryStorage = new MemoryStorage(),
): Promise<{ SDK: BrowserSdk; ethers: Ethers; storage: MemoryStorage }> {
  const outfile = join(tempDir('rum-sdk-browser-'), 'rum-sdk-browser.cjs');
  await esbuild.build({
    stdin: {
      contents:
        "export { default as SDK } from 'rum-sdk-browser';\nexport { ethers } from 'ethers';\n",
      resolveDir: PROJECT_ROOT,
      loader: 'js',
    },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    outfile,
    logLevel: 'error',
  });
  Object.defineProperty(globalThis, 'localStorage', {
    value: storage,
    configurable: true,
    writable: true,
  });
  const loaded = createRequire(import.meta.url)(outfile) as { SDK: BrowserSdk; ethers: Ethers };
  return { ...loaded, storage };
}
