import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { types } from 'mediasoup';
import type { BatchParser } from '../rtp/api.js';
import { codecMap, type CodecName } from '../rtp/layout.js';
import type { HookTrack, RtpHook } from './hook.js';
import { HookChain, type ChainFault } from './hookChain.js';
import type { HookMetrics } from './hookMetrics.js';

const URI = {
  audioLevel: 'urn:ietf:params:rtp-hdrext:ssrc-audio-level',
  absCaptureTime: 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time',
  videoOrientation: 'urn:3gpp:video-orientation',
} as const;

const CODEC: Record<string, CodecName> = { 'audio/opus': 'opus', 'video/vp8': 'vp8', 'video/vp9': 'vp9', 'video/h264': 'h264', 'video/rtx': 'rtx' };
const NTP_EPOCH_OFFSET_S = 2208988800;

export interface TrackHooksOptions {
  budgetMs: number;
  fallback: boolean;
  /** How often the processed producer gets a sender report per stream (ms). */
  senderReportMs: number;
}

export interface TrackHooksEvents {
  /** A hook threw or overran: with fallback the chain stopped and packets now pass as they come. */
  fault: [ChainFault];
  closed: [];
}

/** What the last packets of one stream were, for its sender reports. */
interface StreamClock {
  ts: number;
  atMs: number;
  packets: number;
  octets: number;
}

/**
 * One producer's hook chain in mediasoup: a DirectTransport on the producer's router with a
 * pipe consumer of the producer (every simulcast layer, SSRCs and payloads verbatim; a
 * regular consumer would forward one layer) whose 'rtp' packets run through the chain and
 * go out through `producer.send()` of a producer on the same transport (same SSRCs), which
 * subscribers consume instead of the original. Two things mediasoup 3.12.16 does not do for
 * a DirectTransport, done here:
 * - RTCP: a DirectTransport never starts its RTCP timer, so the processed producer would get
 *   no sender reports, and a simulcast consumer cannot switch spatial layers without them
 *   (SimulcastConsumer::CanSwitchToSpatialLayer). Sender reports are made from the packets
 *   forwarded (RTP time extrapolated from the last packet, as mediasoup's own consumers do).
 * - Key frames: the processed producer's PLI/FIR leave the transport as 'rtcp'; sent back
 *   into the transport they reach the tap consumer (same media SSRC), which asks the original.
 * Closes with the producer, the router, or close(); the transport takes the tap consumer and
 * the processed producer with it.
 */
export class TrackHooks extends EventEmitter<TrackHooksEvents> {
  private readonly chain: HookChain;
  private readonly clocks: StreamClock[];
  private scheduled = false;
  private timer: NodeJS.Timeout | undefined;
  closed = false;

  private constructor(
    readonly producerId: string,
    private readonly transport: types.DirectTransport,
    readonly tap: types.Consumer,
    readonly processed: types.Producer,
    readonly track: HookTrack,
    hooks: RtpHook[],
    parser: BatchParser,
    private readonly metrics: HookMetrics | undefined,
    opts: TrackHooksOptions,
  ) {
    super();
    this.chain = new HookChain(track, hooks, parser, metrics, opts, (f) => this.emit('fault', f));
    this.clocks = track.ssrcs.map(() => ({ ts: 0, atMs: -1, packets: 0, octets: 0 }));
    metrics?.chains.inc();
    tap.on('rtp', (packet: Buffer) => {
      this.chain.push(packet);
      if (this.scheduled) return;
      this.scheduled = true;
      // Every packet mediasoup delivers in this turn (one socket read) joins the batch; it
      // runs before the event loop moves on, so batching adds no wait.
      queueMicrotask(this.flush);
    });
    transport.on('rtcp', (packet: Buffer) => {
      // PSFB (206): PLI / FIR of the processed producer, for the tap consumer (same SSRC).
      if (hasPayloadSpecificFeedback(packet) && !this.closed) transport.sendRtcp(packet);
    });
    this.timer = setInterval(() => this.senderReports(), opts.senderReportMs);
    this.timer.unref();
  }

  /**
   * Starts the chain for `producer` (on `router`); the hooks come from `makeHooks` once the
   * track's SSRCs and extension ids are known.
   */
  static async create(
    router: types.Router,
    producer: types.Producer,
    info: { roomName: string; source: string },
    makeHooks: (track: HookTrack) => RtpHook[],
    parser: BatchParser,
    metrics: HookMetrics | undefined,
    opts: TrackHooksOptions,
  ): Promise<TrackHooks> {
    const transport = await router.createDirectTransport();
    try {
      const tap = await transport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, pipe: true, enableRtx: false });
      const rp = tap.rtpParameters;
      const processed = await transport.produce({
        kind: producer.kind,
        rtpParameters: {
          // No plain NACK: nothing is lost between the tap and the producer, and a NACK would
          // bring a packet back through the chain.
          codecs: rp.codecs.map((c) => ({ ...c, rtcpFeedback: (c.rtcpFeedback ?? []).filter((f) => !(f.type === 'nack' && !f.parameter)) })),
          headerExtensions: rp.headerExtensions ?? [],
          encodings: (rp.encodings ?? []).map((e) => ({ ...e })),
          rtcp: { cname: rp.rtcp?.cname ?? `hooks-${producer.id.slice(0, 8)}`, reducedSize: true },
        },
        paused: producer.paused,
        appData: { hooksOf: producer.id },
      });
      const extId = (uri: string): number => rp.headerExtensions?.find((h) => h.uri === uri)?.id ?? -1;
      const byPt: Record<number, CodecName> = {};
      for (const c of rp.codecs) {
        const name = CODEC[c.mimeType.toLowerCase()];
        if (name) byPt[c.payloadType] = name;
      }
      const track: HookTrack = {
        roomName: info.roomName,
        producerId: producer.id,
        kind: producer.kind,
        source: info.source,
        ssrcs: (rp.encodings ?? []).map((e) => e.ssrc ?? 0),
        codecs: codecMap(byPt),
        clockRate: rp.codecs[0]?.clockRate ?? 90000,
        ext: { audioLevel: extId(URI.audioLevel), absCaptureTime: extId(URI.absCaptureTime), videoOrientation: extId(URI.videoOrientation) },
      };
      const th = new TrackHooks(producer.id, transport, tap, processed, track, makeHooks(track), parser, metrics, opts);
      producer.observer.on('pause', () => void processed.pause().catch(() => undefined));
      producer.observer.on('resume', () => void processed.resume().catch(() => undefined));
      producer.observer.once('close', () => th.close());
      transport.observer.once('close', () => th.close());
      if (producer.closed) th.close();
      return th;
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  /** The chain stopped running hooks after a fault (packets pass as they come). */
  get fellBack(): ChainFault | undefined {
    return this.chain.failed;
  }

  private readonly send = (packet: Buffer, layer: number): void => {
    if (this.processed.closed) return;
    this.processed.send(packet);
    const c = this.clocks[layer];
    if (!c || packet.length < 12) return;
    c.ts = packet.readUInt32BE(4);
    c.atMs = performance.now();
    c.packets++;
    c.octets += packet.length - 12;
  };

  private readonly flush = (): void => {
    this.scheduled = false;
    if (this.closed) return;
    this.chain.flush(this.send);
  };

  /** One SR per stream that forwarded packets, into the transport (mediasoup routes it to the processed producer by SSRC). */
  private senderReports(): void {
    if (this.closed || this.processed.closed) return;
    const nowMs = performance.now();
    const wallMs = performance.timeOrigin + nowMs;
    const secs = Math.floor(wallMs / 1000);
    const ntpSec = (secs + NTP_EPOCH_OFFSET_S) >>> 0;
    const ntpFrac = Math.floor(((wallMs - secs * 1000) / 1000) * 0x100000000) >>> 0;
    this.clocks.forEach((c, layer) => {
      if (c.atMs < 0) return;
      const sr = Buffer.alloc(28);
      sr[0] = 0x80;
      sr[1] = 200;
      sr.writeUInt16BE(6, 2);
      sr.writeUInt32BE(this.track.ssrcs[layer]! >>> 0, 4);
      sr.writeUInt32BE(ntpSec, 8);
      sr.writeUInt32BE(ntpFrac, 12);
      sr.writeUInt32BE((c.ts + Math.round(((nowMs - c.atMs) * this.track.clockRate) / 1000)) >>> 0, 16);
      sr.writeUInt32BE(c.packets >>> 0, 20);
      sr.writeUInt32BE(c.octets >>> 0, 24);
      this.transport.sendRtcp(sr);
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.chain.close();
    this.transport.close();
    this.metrics?.chains.dec();
    this.emit('closed');
    this.removeAllListeners();
  }
}

/** Whether an RTCP (compound) packet holds a payload-specific feedback message (PLI, FIR). */
function hasPayloadSpecificFeedback(buf: Buffer): boolean {
  let o = 0;
  while (o + 4 <= buf.length) {
    if (buf[o + 1] === 206) return true;
    o += (buf.readUInt16BE(o + 2) + 1) * 4;
  }
  return false;
}
