import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** auralink_aic_hook_*: the chain's own figures, and the series the built-in hooks export. */
export class HookMetrics {
  /** Time one hook spent on one batch (one event-loop turn's packets of one track). */
  readonly seconds: Histogram<'hook'>;
  readonly batchPackets: Histogram;
  readonly fallbacks: Counter<'hook' | 'reason'>;
  readonly errors: Counter<'hook' | 'reason'>;
  readonly packets: Counter<'hook' | 'action'>;
  readonly chains: Gauge;
  // packet_stats
  readonly bitrate: Gauge<'producer' | 'layer' | 'kind'>;
  readonly fps: Gauge<'producer' | 'layer'>;
  readonly keyFrameInterval: Gauge<'producer' | 'layer'>;
  readonly keyFrames: Counter<'producer' | 'layer'>;
  // speech
  readonly voiceActive: Gauge<'producer'>;
  readonly speechSeconds: Counter<'producer'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.seconds = new Histogram({
      name: 'auralink_aic_hook_seconds',
      help: "Time an RTP hook spent on one batch of a track's packets (one event-loop turn), per hook",
      labelNames: ['hook'],
      buckets: [0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1],
      registers,
    });
    this.batchPackets = new Histogram({
      name: 'auralink_aic_hook_batch_packets',
      help: 'Packets per hook-chain batch (one event-loop turn of one track)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
      registers,
    });
    this.fallbacks = new Counter({
      name: 'auralink_aic_hook_fallbacks_total',
      help: 'Tracks switched to plain forwarding because a hook threw or overran aic.compression.max_latency_ms',
      labelNames: ['hook', 'reason'],
      registers,
    });
    this.errors = new Counter({
      name: 'auralink_aic_hook_errors_total',
      help: 'Hook failures (throw, over budget), also those that caused no fallback (fallback_enabled false)',
      labelNames: ['hook', 'reason'],
      registers,
    });
    this.packets = new Counter({
      name: 'auralink_aic_hook_packets_total',
      help: 'Packets a hook dropped or rewrote',
      labelNames: ['hook', 'action'],
      registers,
    });
    this.chains = new Gauge({ name: 'auralink_aic_hook_chains', help: 'Tracks whose packets run through a hook chain now', registers });
    this.bitrate = new Gauge({
      name: 'auralink_aic_track_bitrate_bps',
      help: 'packet_stats: RTP bitrate per track and simulcast layer (bits/s over the last window)',
      labelNames: ['producer', 'layer', 'kind'],
      registers,
    });
    this.fps = new Gauge({ name: 'auralink_aic_track_fps', help: 'packet_stats: frames per second per video layer (last window)', labelNames: ['producer', 'layer'], registers });
    this.keyFrameInterval = new Gauge({
      name: 'auralink_aic_track_keyframe_interval_seconds',
      help: 'packet_stats: time between the last two key frames per video layer',
      labelNames: ['producer', 'layer'],
      registers,
    });
    this.keyFrames = new Counter({ name: 'auralink_aic_track_keyframes_total', help: 'packet_stats: key frames seen per video layer', labelNames: ['producer', 'layer'], registers });
    this.voiceActive = new Gauge({
      name: 'auralink_aic_voice_active',
      help: 'speech: 1 while the audio track carries speech (RFC 6464 voice activity and level), else 0',
      labelNames: ['producer'],
      registers,
    });
    this.speechSeconds = new Counter({ name: 'auralink_aic_speech_seconds_total', help: 'speech: time the audio track carried speech', labelNames: ['producer'], registers });
  }
}
