import type { HookBatch, RtpHook } from './hook.js';

export interface FaultOptions {
  /** Packets passed before the fault. */
  afterPackets: number;
  /** 'throw': process() throws; 'stall': process() busy-waits stallMs (the event loop with it). */
  mode: 'throw' | 'stall';
  stallMs: number;
}

/**
 * fault: breaks on purpose after N packets, to exercise the fallback path on a staging node
 * (aic.adaptive.fallback_enabled, aic.compression.max_latency_ms) end to end. Never useful
 * in production traffic.
 */
export class FaultHook implements RtpHook {
  readonly name = 'fault';
  private seen = 0;

  constructor(private readonly opts: FaultOptions) {}

  process(b: HookBatch): void {
    this.seen += b.count;
    if (this.seen <= this.opts.afterPackets) return;
    if (this.opts.mode === 'throw') throw new Error(`fault hook: injected failure after ${this.opts.afterPackets} packets`);
    const until = performance.now() + this.opts.stallMs;
    while (performance.now() < until) {
      /* stalls the media path, as a runaway hook would */
    }
  }

  close(): void {}
}
