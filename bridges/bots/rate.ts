/**
 * Rate limits of bots' posts that delay rather than drop: a token bucket per bot and one per
 * group (all bots together). A post over the rate waits for its token when that comes within
 * the allowed delay; past it the post is refused with the seconds to wait (Telegram's 429
 * `retry_after`), and takes nothing.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly now: () => number;

  constructor(now: () => number = Date.now) {
    this.now = now;
  }

  /**
   * Takes one token from each bucket (`rate` per second, bursts of `rate`); answers the ms to
   * wait before acting, or null — with nothing taken — when that is more than `maxDelayMs`.
   */
  take(keys: { key: string; rate: number }[], maxDelayMs: number): number | null {
    const now = this.now();
    let wait = 0;
    const states = keys.map(({ key, rate }) => {
      const b = this.buckets.get(key) ?? { tokens: Math.max(1, rate), at: now };
      const tokens = Math.min(Math.max(1, rate), b.tokens + ((now - b.at) / 1000) * rate);
      // Tokens may go below zero: the posts queued behind this one wait their turn.
      const after = tokens - 1;
      if (after < 0) wait = Math.max(wait, (-after / rate) * 1000);
      return { key, after };
    });
    if (wait > maxDelayMs) return null;
    for (const s of states) this.buckets.set(s.key, { tokens: s.after, at: now });
    if (this.buckets.size > 100_000) this.sweep(now);
    return Math.ceil(wait);
  }

  /** The seconds until a post could go without waiting more than `maxDelayMs`. */
  retryAfter(keys: { key: string; rate: number }[], maxDelayMs: number): number {
    const now = this.now();
    let wait = 0;
    for (const { key, rate } of keys) {
      const b = this.buckets.get(key);
      if (!b) continue;
      const tokens = Math.min(Math.max(1, rate), b.tokens + ((now - b.at) / 1000) * rate);
      if (tokens - 1 < 0) wait = Math.max(wait, ((1 - tokens) / rate) * 1000);
    }
    return Math.max(1, Math.ceil((wait - maxDelayMs) / 1000));
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) if (now - b.at > 3600_000) this.buckets.delete(k);
  }
}
