/** Wall-clock nanoseconds that never go backwards within a process (trx and block TimeStamp). */
const baseNs = BigInt(Date.now()) * 1_000_000n;
const baseHr = process.hrtime.bigint();
let last = 0n;

export function nowNs(): bigint {
  let t = baseNs + (process.hrtime.bigint() - baseHr);
  if (t <= last) t = last + 1n;
  last = t;
  return t;
}
