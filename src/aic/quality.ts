// The quality score, 0-100, defined once (docs/AIC.md) and used by both A/B arms, the
// server's metrics and the SDK's overlay. Pure: no Node or DOM imports.

export interface QualityInput {
  /** The tile's size in device pixels (CSS px × devicePixelRatio). */
  displayWidth: number;
  displayHeight: number;
  /** The resolution delivered (inbound-rtp frameWidth/frameHeight; the forwarded layer's on the server). */
  receivedWidth: number;
  receivedHeight: number;
  /** Frames per second delivered, and the source's. */
  fps: number;
  sourceFps: number;
  /** Share of the window spent frozen (W3C totalFreezesDuration / window), 0..1. */
  freezeFraction: number;
  lossPct: number;
  jitterMs: number;
  rttMs: number;
}

const clamp01 = (x: number): number => (x < 0 ? 0 : x > 1 ? 1 : Number.isFinite(x) ? x : 0);

/**
 * Resolution: delivered vs shown (object-fit contain), ≥ 95% counts as full; below, the
 * square root of the linear ratio (half the needed resolution: 71).
 */
export function resolutionFactor(q: Pick<QualityInput, 'displayWidth' | 'displayHeight' | 'receivedWidth' | 'receivedHeight'>): number {
  if (q.receivedWidth <= 0 || q.receivedHeight <= 0) return 0;
  if (q.displayWidth <= 0 || q.displayHeight <= 0) return 1; // size unknown: nothing to compare with
  const s = Math.min(q.displayWidth / q.receivedWidth, q.displayHeight / q.receivedHeight);
  const needW = q.receivedWidth * s;
  const needH = q.receivedHeight * s;
  const ratio = Math.min(q.receivedWidth / (needW * 0.95), q.receivedHeight / (needH * 0.95));
  return Math.sqrt(clamp01(ratio));
}

/** Frame rate: (fps / source fps)^0.3 (half the rate: 81). */
export function fpsFactor(fps: number, sourceFps: number): number {
  if (sourceFps <= 0) return 1;
  return clamp01(fps / sourceFps) ** 0.3;
}

/** Freezes: frozen a quarter of the time halves the score, half the time zeroes it. */
export function freezeFactor(freezeFraction: number): number {
  return clamp01(1 - 2 * clamp01(freezeFraction));
}

/**
 * Network: a simplified E-model (ITU-T G.107) R factor as LiveKit's connection-quality scorer
 * uses: effective latency = RTT/2 + 2·jitter + 10 ms, delay impairment 1/40 per ms under 160
 * ms and 1/10 per ms past 120 beyond it, loss impairment 2.5 per % lost; R / 93.2.
 */
export function packetFactor(lossPct: number, jitterMs: number, rttMs: number): number {
  const eff = Math.max(0, rttMs) / 2 + 2 * Math.max(0, jitterMs) + 10;
  const delay = eff < 160 ? eff / 40 : (eff - 120) / 10;
  const r = 93.2 - delay - 2.5 * Math.max(0, lossPct);
  return clamp01(r / 93.2);
}

/** 100 × resolution × frame rate × freezes × network, rounded. */
export function qualityScore(q: QualityInput): number {
  const s = resolutionFactor(q) * fpsFactor(q.fps, q.sourceFps) * freezeFactor(q.freezeFraction) * packetFactor(q.lossPct, q.jitterMs, q.rttMs);
  return Math.round(100 * s);
}
