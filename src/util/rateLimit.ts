/**
 * A token-bucket limit (`burst` tokens, refilled at `perS` a second) computed as GCRA, the
 * generic cell rate algorithm: the same decisions with one number of state per limited thing
 * (its theoretical arrival time, ms), so a connection or an address carries a number instead
 * of a bucket object. O(1), no timers. A new thing starts at state 0: a full burst.
 */
export class RateLimit {
  private readonly intervalMs: number;
  private readonly toleranceMs: number;

  constructor(perS: number, burst: number) {
    this.intervalMs = 1000 / perS;
    this.toleranceMs = (burst - 1) * this.intervalMs;
  }

  /** The new state when one more event is allowed at `now`, or -1 when it is over the limit. */
  take(state: number, now = performance.now()): number {
    const t = state > now ? state : now;
    if (t - now > this.toleranceMs) return -1;
    return t + this.intervalMs;
  }
}
