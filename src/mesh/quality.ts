/** What a route is expected to give a call, end to end (client to client). */
export interface PathMetrics {
  latencyMs: number; // one-way
  lossPct: number;
  jitterMs: number;
  /** Relay/SFU nodes media passes through (0 = direct). */
  hops: number;
  /** Highest load/capacity among those nodes (0-1+). */
  maxLoad: number;
}

/**
 * The static formula: ITU-T G.107 E-model R factor, simplified (Cole & Rosenbluth 2001) with
 * jitter folded into delay as a 2x jitter buffer and an Opus-like loss impairment, clamped to
 * 0-100. It knows nothing of relay overhead or of loss the probes do not see.
 */
export function staticQuality(m: PathMetrics): number {
  const d = m.latencyMs + 2 * m.jitterMs + 10; // + codec/packetization delay
  const id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
  const ie = 30 * Math.log(1 + 15 * Math.min(1, Math.max(0, m.lossPct) / 100));
  return clamp(94.2 - id - ie);
}

export const clamp = (q: number): number => Math.max(0, Math.min(100, q));

/** Combines per-leg metrics into a path's: latency and jitter add, delivery probabilities multiply. */
export function combine(legs: Omit<PathMetrics, 'hops' | 'maxLoad'>[], hops: number, maxLoad: number): PathMetrics {
  let latencyMs = 0;
  let jitterMs = 0;
  let delivered = 1;
  for (const l of legs) {
    latencyMs += l.latencyMs;
    jitterMs += l.jitterMs;
    delivered *= 1 - Math.min(100, l.lossPct) / 100;
  }
  return { latencyMs, jitterMs, lossPct: (1 - delivered) * 100, hops, maxLoad };
}

const FEATURES = 6;
function features(m: PathMetrics, tier: number): Float64Array {
  const x = new Float64Array(FEATURES);
  x[0] = 1;
  x[1] = m.latencyMs / 100;
  x[2] = m.lossPct / 5;
  x[3] = m.hops / 2;
  x[4] = Math.max(0, m.maxLoad - 0.5) * 2; // load only hurts past half capacity
  x[5] = tier / 3;
  return x;
}

/**
 * Learns from route feedback (the quality calls actually got) what the static formula misses:
 * a global linear correction on path features (recursive least squares, forgetting old
 * evidence slowly) plus a per-link bias for what only some links do (bad peering, loss the
 * probes do not see), learned from the residual each link's calls leave.
 */
export class QualityPredictor {
  private readonly w = new Float64Array(FEATURES);
  private readonly P: Float64Array[];
  private readonly bias = new Map<string, { b: number; n: number }>();
  samples = 0;

  constructor(
    private readonly forgetting = 0.999,
    private readonly maxLinks = 200_000,
  ) {
    this.P = Array.from({ length: FEATURES }, (_, i) => {
      const r = new Float64Array(FEATURES);
      r[i] = 100;
      return r;
    });
  }

  /** Predicted quality 0-100 of a path with these metrics; `links` = its learned keys (planner.learnedKeys). */
  predict(m: PathMetrics, tier: number, links: readonly string[]): number {
    return clamp(staticQuality(m) + this.correction(m, tier) + this.linkBias(links));
  }

  learn(m: PathMetrics, tier: number, links: readonly string[], observed: number): void {
    this.samples++;
    const x = features(m, tier);
    const base = staticQuality(m);
    // RLS on the residual the link biases do not explain.
    const target = observed - base - this.linkBias(links);
    const Px = new Float64Array(FEATURES);
    for (let i = 0; i < FEATURES; i++) {
      let s = 0;
      for (let j = 0; j < FEATURES; j++) s += this.P[i]![j]! * x[j]!;
      Px[i] = s;
    }
    let denom = this.forgetting;
    for (let i = 0; i < FEATURES; i++) denom += x[i]! * Px[i]!;
    const err = target - this.dot(x);
    for (let i = 0; i < FEATURES; i++) this.w[i]! += (Px[i]! / denom) * err;
    for (let i = 0; i < FEATURES; i++) {
      for (let j = 0; j < FEATURES; j++) this.P[i]![j] = (this.P[i]![j]! - (Px[i]! * Px[j]!) / denom) / this.forgetting;
    }
    // What is left is per link: share it out, each link learning at 1/n up to a floor.
    if (links.length === 0) return;
    const left = (observed - base - this.correction(m, tier) - this.linkBias(links)) / links.length;
    for (const k of links) {
      let e = this.bias.get(k);
      if (!e) {
        if (this.bias.size >= this.maxLinks) this.bias.delete(this.bias.keys().next().value!);
        e = { b: 0, n: 0 };
        this.bias.set(k, e);
      }
      e.n++;
      e.b += left * Math.max(0.1, 1 / e.n);
    }
  }

  private correction(m: PathMetrics, tier: number): number {
    return this.dot(features(m, tier));
  }

  private dot(x: Float64Array): number {
    let s = 0;
    for (let i = 0; i < FEATURES; i++) s += this.w[i]! * x[i]!;
    return s;
  }

  private linkBias(links: readonly string[]): number {
    let s = 0;
    for (const k of links) s += this.bias.get(k)?.b ?? 0;
    return s;
  }
}
