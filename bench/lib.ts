/** Helpers for benchmarks: timing, the JSON result line, a throwaway node. */
import { rmSync } from 'node:fs';
import type { ConfigInput } from '../src/config/schema.ts';
import type { RumNode } from '../src/node.ts';
import { openTempNode } from '../test/helpers/temp-node.ts';

export interface Result {
  name: string;
  value: number;
  unit: string;
  baseline: number;
  ratio?: number;
  /** Context printed beside the figures (target, sizes). */
  [extra: string]: string | number | undefined;
}

export function report(r: Result): void {
  const ratio = r.ratio ?? (r.baseline === 0 ? 0 : r.value / r.baseline);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  process.stdout.write(
    `${JSON.stringify({ ...r, value: round(r.value), baseline: round(r.baseline), ratio: round(ratio) })}\n`,
  );
}

/** Operations per second of fn over at least minMs, after a warm-up. */
export function rate(fn: () => void, minMs = 1000, warmup = 200): number {
  for (let i = 0; i < warmup; i++) fn();
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < minMs) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

export async function withTempNode<T>(
  fn: (node: RumNode, dir: string) => Promise<T>,
  config: ConfigInput = {},
): Promise<T> {
  const { node, dir } = await openTempNode(config);
  try {
    await node.start();
    return await fn(node, dir);
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
