// The per-subscriber layer controller's decision logic: pure (no mediasoup, no sockets, no
// timers), so every rule is tested with injected inputs (test/aicController.test.ts).
import type { TrackAdvice } from './advice.js';
import { coveringLayer, temporalFor, type Layer } from './layers.js';

/** What the viewer reported for one rendered track (trackSettings). */
export interface ViewerSettings {
  /** Displayed size in device pixels; 0 = unknown. */
  width: number;
  height: number;
  hidden: boolean;
  /** Wanted frames per second; 0 = the source's. */
  fps: number;
}

export interface TrackInput {
  consumerId: string;
  source: string;
  /** Spatial layers of the producer, lowest first (one entry: not simulcast). */
  layers: readonly Layer[];
  sourceFps: number;
  /** Undefined: the viewer never reported this track; it is forwarded as without AIC. */
  settings: ViewerSettings | undefined;
  /** The preferred spatial layer applied last (for upgrade headroom), if any. */
  current?: number;
  /** The spatial layer mediasoup forwards now (below `current` when its estimate is short). */
  forwarded?: number;
  /** mediasoup's consumer score, 0..10 (10 = no loss). */
  score?: number;
  /** The AI core's caps for this consumer, after the local safety rules (advice.ts). */
  advice?: TrackAdvice;
}

/** The subscriber's link, from its transport's `bwe` trace and its consumers' RTCP. */
export interface LinkInput {
  /** Send-side bandwidth estimate towards the subscriber, bits/s (undefined: none yet). */
  availableBitrate?: number;
  rttMs?: number;
  lossPct?: number;
  /** The AI core's bitrate target for this subscriber, bits/s (shared out like the estimate, never below a tile's quality floor). */
  advisedBitrate?: number;
}

export interface Policy {
  adaptive: boolean;
  thresholds: { high_latency_ms: number; packet_loss_percent: number; low_bandwidth_kbps: number };
}

export type Reason = 'hidden' | 'display' | 'bandwidth' | 'constrained' | 'unreported' | 'advice';

export interface Decision {
  consumerId: string;
  paused: boolean;
  spatialLayer: number;
  temporalLayer: number;
  /** mediasoup consumer priority (1..255): who gets the transport's bandwidth first. */
  priority: number;
  reason: Reason;
  /** The layer the display needs (before link limits, within the AI core's cap; -1 hidden): what dynacast asks publishers for. */
  need: number;
}

// An upgrade must fit with this much headroom, so an estimate hovering at a layer's bitrate
// does not flap between two layers.
const UPGRADE_HEADROOM = 1.15;
// Below this consumer score (RTCP loss mapped 0..10 by mediasoup) the link counts as lossy.
const LOW_SCORE = 5;

const isScreen = (source: string): boolean => source.startsWith('screen');
const area = (s: ViewerSettings | undefined): number => (s && s.width > 0 && s.height > 0 ? s.width * s.height : Number.MAX_SAFE_INTEGER);

/** Whether the link is past any of adaptive.thresholds (then nothing is upgraded). */
export function constrained(link: LinkInput, tracks: readonly TrackInput[], policy: Policy): boolean {
  if (!policy.adaptive) return false;
  const t = policy.thresholds;
  if (link.rttMs !== undefined && link.rttMs > t.high_latency_ms) return true;
  if (link.lossPct !== undefined && link.lossPct > t.packet_loss_percent) return true;
  // low_bandwidth_kbps is not a constraint on its own: mediasoup probes only up to what the
  // preferred layers ask for, so the estimate of a viewer of small tiles, or of one just
  // resumed, is always low; treating that as a constraint kept grown or resumed tiles at
  // small layers (Chromium tests). mediasoup's own layer choice under its estimate covers a
  // really short link; the estimate is shared out here only when RTT or loss say so.
  // A low consumer score counts only with the other signals: a layer switch (dynacast turning
  // an encoding off) dips it for a moment, and reacting to that made layers flap (Chromium test).
  return tracks.some((x) => x.score !== undefined && x.score < LOW_SCORE && x.settings && !x.settings.hidden) && link.lossPct !== undefined && link.lossPct > t.packet_loss_percent / 2;
}

/**
 * One subscriber's decisions for its video consumers:
 * - hidden → paused;
 * - the smallest layer that covers the displayed size (top when unreported or unknown);
 * - constrained link (RTT, loss, low estimate, low score) → non-screen tracks one layer lower;
 * - on a constrained link the bandwidth estimate is shared out screen share first, then larger
 *   tiles first: each track gets the highest layer up to its need that fits what is left
 *   (upgrades need 15% headroom over the layer's bitrate); the lowest layer is always allowed.
 *   Unconstrained, mediasoup upgrades to the preferred layer only when its estimate allows;
 * - the AI core's advice (when there is some): a cap per consumer and a bitrate target per
 *   subscriber, both only ever lowering what the rules above give, and never below the
 *   layer that keeps the tile at min_quality_threshold (its `floor`);
 * - priority: screen 3, the largest visible camera 2, others 1.
 */
export function decide(tracks: readonly TrackInput[], link: LinkInput, policy: Policy): Decision[] {
  const tight = constrained(link, tracks, policy);
  const order = [...tracks].sort((a, b) => Number(isScreen(b.source)) - Number(isScreen(a.source)) || area(b.settings) - area(a.settings));
  // The estimate caps preferred layers only on a constrained link. Otherwise mediasoup itself
  // upgrades to the preferred layer when its estimate allows, and it probes only up to what
  // the preferred layers need: capping them by the estimate froze a grown tile at its small
  // layer (the estimate never grows past what is asked for; Chromium test).
  let budget = policy.adaptive && tight && link.availableBitrate !== undefined ? link.availableBitrate : Number.POSITIVE_INFINITY;
  let advised = link.advisedBitrate ?? Number.POSITIVE_INFINITY;
  let largestCamera = true;
  const out = new Map<string, Decision>();
  for (const t of order) {
    const top = Math.max(0, t.layers.length - 1);
    const s = t.settings;
    const priority = isScreen(t.source) ? 3 : s && !s.hidden && largestCamera ? 2 : 1;
    if (!isScreen(t.source) && s && !s.hidden) largestCamera = false;
    let temporalLayer = temporalFor(s?.fps ?? 0, t.sourceFps);
    if (s?.hidden) {
      out.set(t.consumerId, { consumerId: t.consumerId, paused: true, spatialLayer: 0, temporalLayer, priority: 1, reason: 'hidden', need: -1 });
      continue;
    }
    const display = s ? coveringLayer(t.layers, s) : top;
    // The AI core may lower a tile, never below its quality floor (nor raise it). Its cap is
    // policy, not link, so publishers need not encode above it either (`need`).
    const need = t.advice ? Math.min(display, Math.max(t.advice.maxSpatial, t.advice.floor)) : display;
    let want = need;
    let reason: Reason = need < display ? 'advice' : s ? 'display' : 'unreported';
    if (tight && !isScreen(t.source) && want > 0) {
      want--;
      reason = 'constrained';
    }
    const floor = t.advice ? Math.min(t.advice.floor, want) : 0;
    let layer = want;
    while (layer > 0) {
      const cost = (t.layers[layer]?.bitrate ?? 0) * (t.current !== undefined && layer > t.current ? UPGRADE_HEADROOM : 1);
      if (cost <= budget && (cost <= advised || layer <= floor)) break;
      layer--;
    }
    if (layer < want) reason = (t.layers[layer + 1]?.bitrate ?? 0) <= budget ? 'advice' : 'bandwidth';
    if (tight && t.current !== undefined && layer > t.current) layer = Math.max(t.current, 0); // no upgrades while constrained
    if (t.advice?.maxTemporal !== undefined && t.advice.maxTemporal < temporalLayer) {
      temporalLayer = t.advice.maxTemporal;
      reason = 'advice';
    }
    budget -= t.layers[layer]?.bitrate ?? 0;
    advised -= t.layers[layer]?.bitrate ?? 0;
    out.set(t.consumerId, { consumerId: t.consumerId, paused: false, spatialLayer: layer, temporalLayer, priority, reason, need });
  }
  return tracks.map((t) => out.get(t.consumerId)!);
}
