// The demo's per-tile AIC overlay: the layer received (inbound-rtp frameWidth × frameHeight,
// fps) and the quality score (src/aic/quality.ts, the formula the server uses) of each remote video.
import { qualityScore } from '../../aic/quality.js';
import type { RemoteTrack } from '../room.js';

interface Prev {
  at: number;
  freezes: number;
  lost: number;
  received: number;
}

interface Inbound {
  type: string;
  kind?: string;
  frameWidth?: number;
  frameHeight?: number;
  framesPerSecond?: number;
  totalFreezesDuration?: number;
  packetsLost?: number;
  packetsReceived?: number;
  jitter?: number;
  currentRoundTripTime?: number;
  state?: string;
  nominated?: boolean;
}

const prev = new WeakMap<RemoteTrack, Prev>();

/** One sample of a remote video against the element that shows it; written into `label`. */
export async function updateOverlay(r: RemoteTrack, video: HTMLVideoElement, label: HTMLElement): Promise<void> {
  let inbound: Inbound | undefined;
  let rtt = 0;
  (await r.getStats()).forEach((s: Inbound) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') inbound = s;
    if (s.type === 'candidate-pair' && s.nominated && s.currentRoundTripTime !== undefined) rtt = s.currentRoundTripTime * 1000;
  });
  if (!inbound) return;
  const now = performance.now();
  const p = prev.get(r);
  const cur = { at: now, freezes: inbound.totalFreezesDuration ?? 0, lost: inbound.packetsLost ?? 0, received: inbound.packetsReceived ?? 0 };
  prev.set(r, cur);
  const rect = video.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const w = inbound.frameWidth ?? 0;
  const h = inbound.frameHeight ?? 0;
  label.dataset.frameHeight = String(h);
  if (!p) return;
  const dt = (now - p.at) / 1000;
  const got = cur.received - p.received;
  const lost = cur.lost - p.lost;
  if (got <= 0) {
    label.textContent = `paused (no packets)`;
    delete label.dataset.score;
    return;
  }
  const score = qualityScore({
    displayWidth: rect.width * dpr,
    displayHeight: rect.height * dpr,
    receivedWidth: w,
    receivedHeight: h,
    fps: inbound.framesPerSecond ?? 0,
    sourceFps: 30,
    freezeFraction: dt > 0 ? (cur.freezes - p.freezes) / dt : 0,
    lossPct: got + lost > 0 ? (100 * Math.max(0, lost)) / (got + lost) : 0,
    jitterMs: (inbound.jitter ?? 0) * 1000,
    rttMs: rtt,
  });
  label.dataset.score = String(score);
  label.textContent = `${w}×${h} ${Math.round(inbound.framesPerSecond ?? 0)} fps · q ${score}`;
}
