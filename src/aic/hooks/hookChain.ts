import { performance } from 'node:perf_hooks';
import type { BatchParser } from '../rtp/api.js';
import { F, RECORD_SIZE, Status } from '../rtp/layout.js';
import { Verdict, type HookBatch, type HookTrack, type RtpHook } from './hook.js';
import type { HookMetrics } from './hookMetrics.js';

export type FaultReason = 'throw' | 'latency';

export interface ChainFault {
  hook: string;
  reason: FaultReason;
  /** How long the hook ran on the batch (ms). */
  ms: number;
  error?: unknown;
}

export interface ChainOptions {
  /** aic.compression.max_latency_ms: one hook's time on one batch. */
  budgetMs: number;
  /** aic.adaptive.fallback_enabled: a fault ends the chain (plain forwarding from then on). */
  fallback: boolean;
}

const START_CAPACITY = 64;

/**
 * One track's hooks over its packets, batch by batch: push() the packets of an event-loop
 * turn, flush() parses them once (one parseBatch call: C for batches of 8 and more when the
 * addon is loaded), runs every hook in order, timing each, then hands each kept packet to
 * `send`, in order. The arrays grow to the largest batch seen and are reused: nothing is
 * allocated per packet. A hook that throws or overruns the budget is a fault: with
 * fallback, the chain stops running hooks for good and forwards packets as they come.
 */
export class HookChain {
  private cap = 0;
  private n = 0;
  private packets: Buffer[] = [];
  private records = new Int32Array(0);
  private layers = new Int8Array(0);
  private verdict = new Uint8Array(0);
  private before = new Uint8Array(0);
  private notes = new Uint32Array(0);
  private offsets = new Uint32Array(0);
  private lengths = new Uint32Array(0);
  private scratch = Buffer.alloc(0);
  private readonly one = { offsets: new Uint32Array(1), lengths: new Uint32Array(1) };
  /** Packets dropped so far per layer: later packets' sequence numbers are moved down by it. */
  private readonly dropped: Uint16Array;
  private anyDropped = false;
  private readonly batch: HookBatch & { count: number; nowMs: number };
  /** Set by a fault with fallback: hooks no longer run. */
  failed: ChainFault | undefined;
  private closed = false;

  constructor(
    readonly track: HookTrack,
    private readonly hooks: readonly RtpHook[],
    private readonly parser: BatchParser,
    private readonly metrics: HookMetrics | undefined,
    private readonly opts: ChainOptions,
    private readonly onFault: (f: ChainFault) => void,
  ) {
    this.dropped = new Uint16Array(Math.max(1, track.ssrcs.length));
    this.grow(START_CAPACITY);
    const self = this;
    this.batch = {
      count: 0,
      nowMs: 0,
      get packets() {
        return self.packets;
      },
      get records() {
        return self.records;
      },
      get layers() {
        return self.layers;
      },
      get verdict() {
        return self.verdict;
      },
      get notes() {
        return self.notes;
      },
      replace: (i, packet) => this.replace(i, packet),
    };
  }

  get pending(): number {
    return this.n;
  }

  private grow(cap: number): void {
    this.cap = cap;
    this.packets.length = cap;
    this.records = new Int32Array(cap * RECORD_SIZE);
    this.layers = new Int8Array(cap);
    this.verdict = new Uint8Array(cap);
    this.before = new Uint8Array(cap);
    this.notes = new Uint32Array(cap);
    this.offsets = new Uint32Array(cap);
    this.lengths = new Uint32Array(cap);
  }

  push(packet: Buffer): void {
    if (this.n === this.cap) {
      const keep = this.packets.slice(0, this.n);
      this.grow(this.cap * 2);
      for (let i = 0; i < keep.length; i++) this.packets[i] = keep[i]!;
    }
    this.packets[this.n++] = packet;
  }

  /** Runs the chain over the pushed packets and sends the kept ones, in order. */
  flush(send: (packet: Buffer, layer: number) => void): void {
    const n = this.n;
    if (n === 0) return;
    this.n = 0;
    const packets = this.packets;
    if (this.failed || this.closed || this.hooks.length === 0) {
      for (let i = 0; i < n; i++) {
        const p = packets[i]!;
        packets[i] = undefined as unknown as Buffer;
        const layer = this.layerOfPacket(p);
        if (this.anyDropped) this.renumber(p, layer);
        send(p, layer);
      }
      return;
    }
    this.metrics?.batchPackets.observe(n);
    this.parse(n);
    this.verdict.fill(0, 0, n);
    this.notes.fill(0, 0, n);
    const b = this.batch;
    b.count = n;
    b.nowMs = performance.now();
    for (const hook of this.hooks) {
      this.before.set(this.verdict.subarray(0, n));
      const t0 = performance.now();
      let error: unknown;
      let threw = false;
      try {
        hook.process(b);
      } catch (err) {
        threw = true;
        error = err;
      }
      const ms = performance.now() - t0;
      this.metrics?.seconds.observe({ hook: hook.name }, ms / 1000);
      this.count(hook.name, n);
      if (threw) {
        if (this.fault({ hook: hook.name, reason: 'throw', ms, error })) break;
      } else if (ms > this.opts.budgetMs) {
        if (this.fault({ hook: hook.name, reason: 'latency', ms })) break;
      }
    }
    const verdict = this.verdict;
    const layers = this.layers;
    for (let i = 0; i < n; i++) {
      const p = packets[i]!;
      packets[i] = undefined as unknown as Buffer;
      const layer = layers[i]!;
      if (verdict[i]! & Verdict.DROP) {
        if (layer >= 0) {
          this.dropped[layer] = (this.dropped[layer]! + 1) & 0xffff;
          this.anyDropped = true;
        }
        continue;
      }
      if (this.anyDropped) this.renumber(p, layer);
      send(p, layer);
    }
  }

  /** Counts what one hook changed in this batch. */
  private count(hook: string, n: number): void {
    if (!this.metrics) return;
    let dropped = 0;
    let rewritten = 0;
    for (let i = 0; i < n; i++) {
      const now = this.verdict[i]!;
      const was = this.before[i]!;
      if (now & Verdict.DROP && !(was & Verdict.DROP)) dropped++;
      if (now & Verdict.REWRITTEN && !(was & Verdict.REWRITTEN)) rewritten++;
    }
    if (dropped) this.metrics.packets.inc({ hook, action: 'dropped' }, dropped);
    if (rewritten) this.metrics.packets.inc({ hook, action: 'rewritten' }, rewritten);
  }

  /** True when the chain stops (fallback). */
  private fault(f: ChainFault): boolean {
    this.metrics?.errors.inc({ hook: f.hook, reason: f.reason });
    if (this.opts.fallback) {
      this.failed = f;
      this.metrics?.fallbacks.inc({ hook: f.hook, reason: f.reason });
    }
    this.onFault(f);
    return this.opts.fallback;
  }

  /**
   * One parseBatch call for the batch. mediasoup hands a turn's packets as views of the one
   * buffer it read them from, so usually they are parsed where they lie; otherwise they are
   * copied into a reused scratch buffer first (records hold offsets relative to each packet,
   * so hooks read the packets themselves either way).
   */
  private parse(n: number): void {
    const packets = this.packets;
    const first = packets[0]!;
    let shared = true;
    let lo = first.byteOffset;
    let hi = first.byteOffset + first.length;
    for (let i = 1; i < n && shared; i++) {
      const p = packets[i]!;
      if (p.buffer !== first.buffer) shared = false;
      else {
        if (p.byteOffset < lo) lo = p.byteOffset;
        if (p.byteOffset + p.length > hi) hi = p.byteOffset + p.length;
      }
    }
    let buf: Buffer;
    if (shared) {
      buf = n === 1 ? first : Buffer.from(first.buffer, lo, hi - lo);
      const base = n === 1 ? first.byteOffset : lo;
      for (let i = 0; i < n; i++) {
        this.offsets[i] = packets[i]!.byteOffset - base;
        this.lengths[i] = packets[i]!.length;
      }
    } else {
      let total = 0;
      for (let i = 0; i < n; i++) total += packets[i]!.length;
      if (this.scratch.length < total) this.scratch = Buffer.allocUnsafe(Math.max(total, this.scratch.length * 2, 16384));
      let o = 0;
      for (let i = 0; i < n; i++) {
        const p = packets[i]!;
        p.copy(this.scratch, o);
        this.offsets[i] = o;
        this.lengths[i] = p.length;
        o += p.length;
      }
      buf = this.scratch;
    }
    this.parser.parseBatch(buf, this.offsets, this.lengths, n, this.records, this.track.codecs);
    for (let i = 0; i < n; i++) this.layers[i] = this.layerOfRecord(i);
  }

  private layerOfRecord(i: number): number {
    const r = i * RECORD_SIZE;
    if (this.records[r + F.STATUS] !== Status.OK) return -1;
    const ssrc = this.records[r + F.SSRC]! >>> 0;
    const ssrcs = this.track.ssrcs;
    for (let l = 0; l < ssrcs.length; l++) if (ssrcs[l] === ssrc) return l;
    return -1;
  }

  private layerOfPacket(p: Buffer): number {
    if (p.length < 12) return -1;
    const ssrc = p.readUInt32BE(8);
    const ssrcs = this.track.ssrcs;
    for (let l = 0; l < ssrcs.length; l++) if (ssrcs[l] === ssrc) return l;
    return -1;
  }

  private renumber(p: Buffer, layer: number): void {
    if (layer < 0 || this.dropped[layer] === 0 || p.length < 12) return;
    p.writeUInt16BE((p.readUInt16BE(2) - this.dropped[layer]!) & 0xffff, 2);
  }

  private replace(i: number, packet: Buffer): void {
    if (!Number.isInteger(i) || i < 0 || i >= this.batch.count) throw new RangeError(`no packet ${i} in this batch`);
    this.packets[i] = packet;
    this.one.lengths[0] = packet.length;
    this.parser.parseBatch(packet, this.one.offsets, this.one.lengths, 1, this.records.subarray(i * RECORD_SIZE, (i + 1) * RECORD_SIZE), this.track.codecs);
    this.layers[i] = this.layerOfRecord(i);
    this.verdict[i]! |= Verdict.REWRITTEN;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.packets.fill(undefined as unknown as Buffer);
    for (const h of this.hooks) {
      try {
        h.close();
      } catch {
        /* a hook failing to close must not keep the others' series */
      }
    }
  }
}
