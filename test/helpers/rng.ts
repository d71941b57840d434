/** A seeded pseudo-random number generator in [0, 1) (an LCG), so that runs compare. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
