import type { RtpHookConfig } from '../../config/schema.js';
import { FaultHook } from './faultHook.js';
import type { HookTrack, RtpHook } from './hook.js';
import type { HookMetrics } from './hookMetrics.js';
import { PacketStatsHook } from './packetStats.js';
import { SpeechHook } from './speech.js';

type Make<N extends RtpHookConfig['name']> = (c: Extract<RtpHookConfig, { name: N }>, track: HookTrack, m: HookMetrics) => RtpHook;

/** Every built-in hook by its config name; the compiler checks each name has one. */
const BUILTINS: { [N in RtpHookConfig['name']]: { kinds: readonly ('audio' | 'video')[]; make: Make<N> } } = {
  packet_stats: { kinds: ['audio', 'video'], make: (c, t, m) => new PacketStatsHook(t, m, c.window_ms) },
  speech: { kinds: ['audio'], make: (c, t, m) => new SpeechHook(t, m, { levelDbov: c.level_dbov, holdMs: c.hold_ms }) },
  fault: { kinds: ['audio', 'video'], make: (c) => new FaultHook({ mode: c.mode, afterPackets: c.after_packets, stallMs: c.stall_ms }) },
};

/** Whether any configured hook runs on tracks of this kind (else the track gets no chain). */
export function hooksApply(cfg: readonly RtpHookConfig[], kind: 'audio' | 'video'): boolean {
  return cfg.some((c) => (c.kinds ?? BUILTINS[c.name].kinds).includes(kind as never));
}

/** The configured hooks for one track, in config order (those for its kind). */
export function makeHooks(cfg: readonly RtpHookConfig[], track: HookTrack, metrics: HookMetrics): RtpHook[] {
  const out: RtpHook[] = [];
  for (const c of cfg) {
    const b = BUILTINS[c.name];
    if (!(c.kinds ?? b.kinds).includes(track.kind as never)) continue;
    out.push((b.make as Make<typeof c.name>)(c as never, track, metrics));
  }
  return out;
}
