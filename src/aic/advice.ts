// The AI core's contract (docs/AIC.md "AI core advice"): what a node sends about a room and
// the advice it accepts back. The response is checked with zod; extra fields are ignored so
// the AI core can grow its answer without breaking older nodes.
import { z } from 'zod';
import type { Layer } from './layers.js';
import { fpsFactor, resolutionFactor } from './quality.js';

export const ADVICE_VERSION = 1;

export interface FeatureLayer {
  width: number;
  height: number;
  bitrate_bps: number;
}

export interface FeatureTrack {
  producer_id: string;
  publisher_sid: string;
  source: string;
  layers: FeatureLayer[];
  paused: boolean;
}

export interface FeatureConsumer {
  consumer_id: string;
  producer_id: string;
  /** Displayed size in device pixels (0: not reported). */
  width: number;
  height: number;
  hidden: boolean;
  fps: number;
  /** What the controller applied last (-1: nothing yet). */
  spatial_layer: number;
  temporal_layer: number;
  paused: boolean;
  /** Quality score 0–100 of what is forwarded (null: hidden, or not sampled yet). */
  quality: number | null;
  /** mediasoup's consumer score 0–10 (null: none yet). */
  score: number | null;
}

export interface FeatureSubscriber {
  sid: string;
  available_bitrate_bps: number | null;
  rtt_ms: number | null;
  loss_percent: number | null;
  consumers: FeatureConsumer[];
}

/** POST {ai_core_endpoint}/v1/aic/advice */
export interface AdviceRequest {
  version: typeof ADVICE_VERSION;
  node_id: string;
  room: string;
  sent_at: string;
  min_quality: number;
  /** compression.target_reduction_percent: the reduction the operator wants, quality permitting. */
  target_reduction_percent: number;
  /** The room's reduction on this node so far (100 × (1 − forwarded / forward-all)); null before any video. */
  reduction_percent: number | null;
  tracks: FeatureTrack[];
  subscribers: FeatureSubscriber[];
}

const layerIndex = z.number().int().min(0).max(15);

export const adviceResponse = z.object({
  version: z.literal(ADVICE_VERSION),
  /** How long the advice holds; after it, the local policy alone (default: 3 intervals). */
  ttl_ms: z.number().int().min(100).max(600_000).optional(),
  subscribers: z
    .array(
      z.object({
        sid: z.string().min(1).max(256),
        /** Bits/s this subscriber should be sent at most (a budget shared like the estimate). */
        max_bitrate_bps: z.number().int().min(0).optional(),
        consumers: z
          .array(
            z.object({
              consumer_id: z.string().min(1).max(256),
              max_spatial_layer: layerIndex.optional(),
              max_temporal_layer: layerIndex.optional(),
            }),
          )
          .max(10_000)
          .default([]),
      }),
    )
    .max(10_000),
});
export type AdviceResponse = z.infer<typeof adviceResponse>;

/** Advice for one consumer, after the local safety rules (capsFor). */
export interface TrackAdvice {
  /** Highest spatial layer the AI core allows. */
  maxSpatial: number;
  /** Lowest spatial layer the safety rule keeps (the quality floor for the displayed size). */
  floor: number;
  maxTemporal: number | undefined;
}

/**
 * The lowest spatial layer that keeps a tile of the displayed size at `minQuality` by
 * resolution (docs/AIC.md: a layer the AI core asks for below it is raised to it). Unknown
 * size: the top layer (nothing to judge by, so the advice cannot lower it).
 */
export function qualityFloor(layers: readonly Layer[], width: number, height: number, minQuality: number): number {
  const top = layers.length - 1;
  if (top <= 0 || width <= 0 || height <= 0) return Math.max(0, top);
  for (let i = 0; i <= top; i++) {
    const l = layers[i]!;
    if (100 * resolutionFactor({ displayWidth: width, displayHeight: height, receivedWidth: l.width, receivedHeight: l.height }) >= minQuality) return i;
  }
  return top;
}

/**
 * The lowest temporal layer (of three: ¼, ½, full rate) that keeps `minQuality` together with
 * the resolution factor of the spatial layer chosen; undefined when even full rate does not.
 */
export function temporalFloor(resolution: number, minQuality: number, maxTemporal = 2): number {
  for (let t = 0; t <= maxTemporal; t++) if (100 * resolution * fpsFactor(1 / 2 ** (maxTemporal - t), 1) >= minQuality) return t;
  return maxTemporal;
}
