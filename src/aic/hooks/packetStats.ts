import { F, RECORD_SIZE, Status } from '../rtp/layout.js';
import type { HookBatch, HookTrack, RtpHook } from './hook.js';
import type { HookMetrics } from './hookMetrics.js';

interface LayerStats {
  labels: { producer: string; layer: string };
  bitrateLabels: { producer: string; layer: string; kind: string };
  bytes: number;
  frames: number;
  lastKeyMs: number;
  seen: boolean;
}

/**
 * packet_stats: per track and simulcast layer, the RTP bitrate, frames per second (frames =
 * packets with the marker bit, which ends a video frame) and the time between key frames
 * (the parser's KEY_FRAME: the packet a key frame starts in), as Prometheus gauges updated
 * once per window from the packets themselves; observes only. Its series go with the track.
 */
export class PacketStatsHook implements RtpHook {
  readonly name = 'packet_stats';
  private readonly layers: LayerStats[];
  private windowStart = -1;

  constructor(
    private readonly track: HookTrack,
    private readonly metrics: HookMetrics,
    private readonly windowMs: number,
  ) {
    this.layers = track.ssrcs.map((_s, i) => ({
      labels: { producer: track.producerId, layer: String(i) },
      bitrateLabels: { producer: track.producerId, layer: String(i), kind: track.kind },
      bytes: 0,
      frames: 0,
      lastKeyMs: -1,
      seen: false,
    }));
  }

  process(b: HookBatch): void {
    const video = this.track.kind === 'video';
    const rec = b.records;
    for (let i = 0; i < b.count; i++) {
      const l = this.layers[b.layers[i]!];
      if (!l) continue;
      const r = i * RECORD_SIZE;
      if (rec[r + F.STATUS] !== Status.OK) continue;
      l.seen = true;
      l.bytes += b.packets[i]!.length;
      if (!video) continue;
      if (rec[r + F.MARKER] === 1) l.frames++;
      if (rec[r + F.KEY_FRAME] === 1) {
        if (l.lastKeyMs >= 0) this.metrics.keyFrameInterval.set(l.labels, (b.nowMs - l.lastKeyMs) / 1000);
        l.lastKeyMs = b.nowMs;
        this.metrics.keyFrames.inc(l.labels);
      }
    }
    if (this.windowStart < 0) this.windowStart = b.nowMs;
    const elapsed = b.nowMs - this.windowStart;
    if (elapsed < this.windowMs) return;
    for (const l of this.layers) {
      if (!l.seen) continue;
      this.metrics.bitrate.set(l.bitrateLabels, Math.round((l.bytes * 8 * 1000) / elapsed));
      if (video) this.metrics.fps.set(l.labels, Math.round((l.frames * 10000) / elapsed) / 10);
      l.bytes = 0;
      l.frames = 0;
    }
    this.windowStart = b.nowMs;
  }

  close(): void {
    for (const l of this.layers) {
      this.metrics.bitrate.remove(l.bitrateLabels);
      this.metrics.fps.remove(l.labels);
      this.metrics.keyFrameInterval.remove(l.labels);
      this.metrics.keyFrames.remove(l.labels);
    }
  }
}
