import { findExt, RECORD_SIZE, F, Status } from '../rtp/layout.js';
import { Note, type HookBatch, type HookTrack, type RtpHook } from './hook.js';
import type { HookMetrics } from './hookMetrics.js';

export interface SpeechOptions {
  /** A packet is speech when its voice-activity bit is set and its level is at most this (-dBov, 0 = loudest, 127 = silence). */
  levelDbov: number;
  /** Speech stays "on" this long after the last speech packet (bridges pauses between words). */
  holdMs: number;
}

/**
 * speech: voice activity per audio track from the RFC 6464 ssrc-audio-level extension
 * (mediasoup keeps its value on the tap). Marks speech packets (Note.SPEECH) for later hooks
 * and exports auralink_aic_voice_active / auralink_aic_speech_seconds_total per track.
 * Without the extension negotiated it stays silent.
 */
export class SpeechHook implements RtpHook {
  readonly name = 'speech';
  private readonly labels: { producer: string };
  private lastSpeechMs = -Infinity;
  private active = false;
  private since = 0;

  constructor(
    private readonly track: HookTrack,
    private readonly metrics: HookMetrics,
    private readonly opts: SpeechOptions,
  ) {
    this.labels = { producer: track.producerId };
    metrics.voiceActive.set(this.labels, 0);
  }

  /** Whether the track carries speech now (for tests and a future active-speaker source). */
  get speaking(): boolean {
    return this.active;
  }

  process(b: HookBatch): void {
    const id = this.track.ext.audioLevel;
    if (id < 0) return;
    const rec = b.records;
    for (let i = 0; i < b.count; i++) {
      const r = i * RECORD_SIZE;
      if (rec[r + F.STATUS] !== Status.OK) continue;
      const at = findExt(rec, r, id);
      if (at < 0) continue;
      const v = b.packets[i]![at]!;
      if (v & 0x80 && (v & 0x7f) <= this.opts.levelDbov) {
        b.notes[i]! |= Note.SPEECH;
        this.lastSpeechMs = b.nowMs;
      }
    }
    const now = b.nowMs - this.lastSpeechMs <= this.opts.holdMs;
    if (now === this.active) return;
    this.active = now;
    this.metrics.voiceActive.set(this.labels, now ? 1 : 0);
    if (now) this.since = b.nowMs;
    else this.metrics.speechSeconds.inc(this.labels, (this.lastSpeechMs - this.since) / 1000);
  }

  close(): void {
    this.metrics.voiceActive.remove(this.labels);
    this.metrics.speechSeconds.remove(this.labels);
  }
}
