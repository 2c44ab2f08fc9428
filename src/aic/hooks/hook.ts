import type { types } from 'mediasoup';
import type { CodecMap } from '../rtp/layout.js';

/** What a hook may do to a packet: bits of `HookBatch.verdict[i]`. */
export const Verdict = {
  PASS: 0,
  /** Not forwarded. The chain renumbers the stream's later packets, so subscribers see no gap. */
  DROP: 1,
  /** Changed in place or replaced (counted; a later hook sees the new bytes). */
  REWRITTEN: 2,
} as const;

/**
 * Per-packet annotations (`HookBatch.notes[i]`): bits a hook sets for the hooks after it.
 * Nothing leaves the chain with them: they are not written into the packet.
 */
export const Note = {
  /** speech: the RFC 6464 voice-activity bit was set and the level above the threshold. */
  SPEECH: 1,
} as const;

/** The track a chain runs for: fixed for the chain's life. */
export interface HookTrack {
  readonly roomName: string;
  readonly producerId: string;
  readonly kind: types.MediaKind;
  readonly source: string;
  /** SSRC of each simulcast layer (index = spatial layer), as the tap receives them. */
  readonly ssrcs: readonly number[];
  /** Payload type → codec, for the parser (the tap consumer's payload types). */
  readonly codecs: CodecMap;
  readonly clockRate: number;
  /** Header extension ids as the tap receives them (mediasoup's ids); -1: not negotiated. */
  readonly ext: { readonly audioLevel: number; readonly absCaptureTime: number; readonly videoOrientation: number };
}

/**
 * One event-loop turn's packets of one track, parsed once for every hook. The arrays are the
 * chain's own, reused for every batch: a hook must not keep references to them (or to the
 * packets) after process() returns.
 */
export interface HookBatch {
  readonly count: number;
  /** Packet i. Rewrite in place (same length) and mark REWRITTEN, or replace() it. */
  readonly packets: Buffer[];
  /** Packet i's parsed record at i * RECORD_SIZE (src/aic/rtp/layout.ts). */
  readonly records: Int32Array;
  /** Index of packet i's layer in `HookTrack.ssrcs` (-1: an SSRC the track does not have). */
  readonly layers: Int8Array;
  readonly verdict: Uint8Array;
  readonly notes: Uint32Array;
  /** performance.now() when the batch was taken (ms). */
  readonly nowMs: number;
  /** Packet i replaced by `packet` (any length): re-parsed, marked REWRITTEN. */
  replace(i: number, packet: Buffer): void;
}

/**
 * A step of a track's hook chain. process() is synchronous: it runs inside the media path and
 * is timed against `aic.compression.max_latency_ms`; a hook that throws or overruns makes the
 * track fall back to plain forwarding (aic.adaptive.fallback_enabled).
 */
export interface RtpHook {
  readonly name: string;
  process(batch: HookBatch): void;
  /** The chain ended (the track closed or fell back): release what the hook holds (metrics' series). */
  close(): void;
}
