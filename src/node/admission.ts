/** What made the node refuse new joins (also the `reason` label of the admission metrics). */
export const OVERLOAD_REASONS = ['consumers', 'event_loop_lag', 'worker_cpu'] as const;
export type OverloadReason = (typeof OVERLOAD_REASONS)[number];

/** One sample of the node's load. */
export interface LoadReading {
  /** Consumers on the node's mediasoup workers, divided by the live workers. */
  consumersPerWorker: number;
  /** Mean event-loop delay over the sample window (ms). */
  eventLoopLagMs: number;
  /** The busiest worker's CPU over the sample window (% of one core: a worker is one thread). */
  workerCpuPercent: number;
}

export interface AdmissionLimits {
  /** 0 = that check off. */
  maxConsumersPerWorker: number;
  maxEventLoopLagMs: number;
  maxWorkerCpuPercent: number;
  /** Overload ends once every reading has stayed under this fraction of its limit for `recoverMs`. */
  recoverRatio: number;
  recoverMs: number;
}

const READING: Record<OverloadReason, { value: (r: LoadReading) => number; limit: (l: AdmissionLimits) => number }> = {
  consumers: { value: (r) => r.consumersPerWorker, limit: (l) => l.maxConsumersPerWorker },
  event_loop_lag: { value: (r) => r.eventLoopLagMs, limit: (l) => l.maxEventLoopLagMs },
  worker_cpu: { value: (r) => r.workerCpuPercent, limit: (l) => l.maxWorkerCpuPercent },
};

/**
 * Whether the node takes new joins, from its load readings, with hysteresis: it starts
 * refusing when any reading reaches its limit, and accepts again only after every reading has
 * stayed under recoverRatio × its limit for recoverMs, so a load hovering at a limit does not
 * flip readiness at every sample. Pure: readings and time come from the caller.
 */
export class AdmissionState {
  private current: OverloadReason | null = null;
  /** While overloaded: since when every reading has been under its recovery level. */
  private calmSince: number | null = null;
  private last: LoadReading = { consumersPerWorker: 0, eventLoopLagMs: 0, workerCpuPercent: 0 };

  constructor(private readonly limits: AdmissionLimits) {}

  /** Null while accepting; else what the node is overloaded by. */
  get reason(): OverloadReason | null {
    return this.current;
  }

  get reading(): LoadReading {
    return this.last;
  }

  /** The reading's value and limit for `reason` (for messages and logs). */
  level(reason: OverloadReason): { value: number; limit: number } {
    return { value: READING[reason].value(this.last), limit: READING[reason].limit(this.limits) };
  }

  /** Takes a sample; returns true when the state changed. */
  update(r: LoadReading, now: number): boolean {
    this.last = r;
    const before = this.current;
    // The reading furthest over its level (limit to enter; recovery level to stay).
    const worst = (factor: number): OverloadReason | null => {
      let best: OverloadReason | null = null;
      let bestRatio = 0;
      for (const reason of OVERLOAD_REASONS) {
        const limit = READING[reason].limit(this.limits);
        if (limit <= 0) continue;
        const ratio = READING[reason].value(r) / limit;
        if (ratio >= factor && ratio >= bestRatio) {
          best = reason;
          bestRatio = ratio;
        }
      }
      return best;
    };
    const over = worst(1);
    if (over) {
      this.current = over;
      this.calmSince = null;
    } else if (this.current) {
      const high = worst(this.limits.recoverRatio);
      if (high) {
        this.current = high;
        this.calmSince = null;
      } else {
        this.calmSince ??= now;
        if (now - this.calmSince >= this.limits.recoverMs) {
          this.current = null;
          this.calmSince = null;
        }
      }
    }
    return (before === null) !== (this.current === null);
  }
}
