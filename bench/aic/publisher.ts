// A replaying publisher: the capture's three VP8 layers and Opus looped in real time to one
// producing plain transport, with this publisher's own SSRCs, continuous sequence numbers,
// timestamps and VP8 picture ids (so each layer reads as one live stream). Where a browser's
// behaviour decides the figures, it behaves like one:
// - layersWanted (dynacast): encodings above the wanted layer stop sending; a layer wanted
//   again restarts with a key frame (as an encoder re-enabled by setParameters does);
// - RTCP sender reports every 500 ms per stream (and as soon as a layer restarts): mediasoup
//   switches a consumer between simulcast layers only when both streams' reports have come
//   (it maps their RTP timestamps through the reports' NTP times);
// - PLI / FIR arriving on the transport's RTCP (rtcp-mux, comedia: mediasoup sends RTCP back
//   to the address the RTP came from): that layer's replay jumps to its next key frame, as an
//   encoder answers with a fresh one, instead of waiting for the capture's 4 s interval.
import dgram from 'node:dgram';
import type { Capture } from './capture.js';

interface LayerState {
  ssrc: number;
  /** Next frame of the capture to send. */
  at: number;
  seq: number;
  pictureId: number;
  active: boolean;
  /** A key frame is owed (PLI/FIR, or the layer was re-enabled). */
  keyWanted: boolean;
  /** Re-enabled: its sender report is owed at once. */
  restarted: boolean;
  packets: number;
  octets: number;
}

export interface PublisherCounters {
  /** RTP bytes sent per video layer, and audio. */
  layerBytes: number[];
  audioBytes: number;
  /** PLI/FIR requests received, and key frames sent early because of them or a resume. */
  keyRequests: number;
  keyJumps: number;
  /** layersWanted messages applied. */
  wantedChanges: number;
}

const VP8_PT = 96;
const OPUS_PT = 111;

export class ReplayPublisher {
  readonly sock: dgram.Socket;
  readonly layers: LayerState[];
  readonly audioSsrc: number;
  private audioSeq = 0;
  private audioAt = 0;
  private audioOctets = 0;
  private frameNo = 0;
  private audioNo = 0;
  private nextReportMs = 0;
  private readonly tsBase = Math.floor(Math.random() * 2 ** 31);
  counters: PublisherCounters;

  constructor(
    private readonly capture: Capture,
    /** SSRCs ssrcBase + 0..2 for the layers, ssrcBase + 3 for audio. */
    readonly ssrcBase: number,
    private readonly ip: string,
    private readonly port: number,
    /** This publisher's frame clock starts this much into the frame interval (spreads key-frame bursts). */
    readonly phaseMs: number,
  ) {
    this.sock = dgram.createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
    this.sock.on('message', (m) => this.onRtcp(m));
    this.sock.on('error', () => undefined);
    this.layers = capture.layers.map((_, i) => ({ ssrc: ssrcBase + i, at: 0, seq: Math.floor(Math.random() * 30000), pictureId: 0, active: true, keyWanted: false, restarted: false, packets: 0, octets: 0 }));
    this.audioSsrc = ssrcBase + capture.layers.length;
    this.counters = ReplayPublisher.zero(capture.layers.length);
  }

  private static zero(n: number): PublisherCounters {
    return { layerBytes: new Array<number>(n).fill(0), audioBytes: 0, keyRequests: 0, keyJumps: 0, wantedChanges: 0 };
  }

  /** Counters since the last call (or since the start). */
  take(): PublisherCounters {
    const c = this.counters;
    this.counters = ReplayPublisher.zero(this.layers.length);
    return c;
  }

  async open(): Promise<void> {
    await new Promise<void>((res, rej) => {
      this.sock.once('error', rej);
      this.sock.bind(0, '127.0.0.1', () => res());
    });
  }

  /** Dynacast: encodings above `max` off (-1: all off), the others on. */
  setMaxLayer(max: number): void {
    this.counters.wantedChanges++;
    this.layers.forEach((l, i) => {
      const on = i <= max;
      if (on && !l.active) l.keyWanted = l.restarted = true;
      l.active = on;
    });
  }

  /** The frames and audio packets due by `elapsedMs` since the replay's start. */
  tick(elapsedMs: number): void {
    const t = elapsedMs - this.phaseMs;
    if (t < 0) return;
    const frameMs = 1000 / this.capture.fps;
    while (this.frameNo * frameMs <= t) {
      this.sendFrame();
      this.frameNo++;
    }
    while (this.audioNo * 20 <= t) {
      this.sendAudio();
      this.audioNo++;
    }
    if (t >= this.nextReportMs) {
      this.nextReportMs = t + 500;
      this.sendReports(t, false);
    }
  }

  /** RTCP SR (RFC 3550 6.4.1) for every active stream (`restarted`: only layers that just came back). */
  private sendReports(t: number, restarted: boolean): void {
    const wall = performance.timeOrigin + performance.now();
    const ntpS = Math.floor(wall / 1000) + 2_208_988_800;
    const ntpF = Math.floor(((wall % 1000) / 1000) * 2 ** 32);
    const sr = (ssrc: number, rtpTs: number, packets: number, octets: number): Buffer => {
      const b = Buffer.alloc(28);
      b[0] = 0x80;
      b[1] = 200;
      b.writeUInt16BE(6, 2);
      b.writeUInt32BE(ssrc, 4);
      b.writeUInt32BE(ntpS >>> 0, 8);
      b.writeUInt32BE(ntpF >>> 0, 12);
      b.writeUInt32BE(rtpTs >>> 0, 16);
      b.writeUInt32BE(packets >>> 0, 20);
      b.writeUInt32BE(octets >>> 0, 24);
      return b;
    };
    for (const l of this.layers) {
      if (!l.active || (restarted && !l.restarted)) continue;
      l.restarted = false;
      this.sock.send(sr(l.ssrc, this.tsBase + Math.round(t * 90), l.packets, l.octets), this.port, this.ip);
    }
    if (!restarted) this.sock.send(sr(this.audioSsrc, this.tsBase + Math.round(t * 48), this.audioNo, this.audioOctets), this.port, this.ip);
  }

  private sendFrame(): void {
    const ts = (this.tsBase + this.frameNo * (90000 / this.capture.fps)) >>> 0;
    this.capture.layers.forEach((layer, i) => {
      const s = this.layers[i]!;
      const n = layer.frames.length;
      if (!s.active) {
        s.at = (s.at + 1) % n; // the capture runs on: a stopped encoder's clock does too
        return;
      }
      if (s.keyWanted) {
        // Jump to the next key frame of this layer (the encoder's answer to PLI/FIR).
        let k = s.at % n;
        while (!layer.frames[k]!.key) k = (k + 1) % n;
        if (k !== s.at % n) this.counters.keyJumps++;
        s.at = k;
        s.keyWanted = false;
      }
      const frame = layer.frames[s.at % n]!;
      s.at = (s.at + 1) % n;
      s.pictureId = (s.pictureId + 1) & 0x7fff;
      for (const p of frame.packets) {
        const out = Buffer.from(p);
        out.writeUInt16BE(s.seq, 2);
        s.seq = (s.seq + 1) & 0xffff;
        out.writeUInt32BE(ts, 4);
        out.writeUInt32BE(s.ssrc, 8);
        rewritePictureId(out, s.pictureId);
        this.sock.send(out, this.port, this.ip);
        this.counters.layerBytes[i]! += out.length;
        s.packets++;
        s.octets += out.length - 12;
      }
    });
    if (this.layers.some((l) => l.restarted && l.active)) this.sendReports(this.frameNo * (1000 / this.capture.fps), true);
  }

  private sendAudio(): void {
    const a = this.capture.audio;
    const p = a[this.audioAt]!;
    this.audioAt = (this.audioAt + 1) % a.length;
    const out = Buffer.from(p);
    out[1] = (out[1]! & 0x80) | OPUS_PT;
    out.writeUInt16BE(this.audioSeq, 2);
    this.audioSeq = (this.audioSeq + 1) & 0xffff;
    out.writeUInt32BE((this.tsBase + this.audioNo * 960) >>> 0, 4);
    out.writeUInt32BE(this.audioSsrc, 8);
    this.sock.send(out, this.port, this.ip);
    this.counters.audioBytes += out.length;
    this.audioOctets += out.length - 12;
  }

  /** RTCP from mediasoup (compound): PLI (PSFB FMT 1) and FIR (PSFB FMT 4) ask for a key frame. */
  private onRtcp(m: Buffer): void {
    for (let o = 0; o + 4 <= m.length; ) {
      if (m[o]! >> 6 !== 2) return;
      const fmt = m[o]! & 0x1f;
      const pt = m[o + 1]!;
      const end = o + 4 * (m.readUInt16BE(o + 2) + 1);
      if (end > m.length) return;
      if (pt === 206 && fmt === 1 && end >= o + 12) this.keyFor(m.readUInt32BE(o + 8));
      if (pt === 206 && fmt === 4) for (let f = o + 12; f + 8 <= end; f += 8) this.keyFor(m.readUInt32BE(f));
      o = end;
    }
  }

  private keyFor(ssrc: number): void {
    const l = this.layers.find((x) => x.ssrc === ssrc);
    if (!l) return;
    this.counters.keyRequests++;
    l.keyWanted = true;
  }

  rtpParameters(): { video: string; audio: string } {
    const n = this.capture.layers.length;
    const video = {
      codecs: [
        {
          mimeType: 'video/VP8',
          payloadType: VP8_PT,
          clockRate: 90000,
          rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
        },
      ],
      headerExtensions: [],
      encodings: this.capture.layers.map((l, i) => ({ ssrc: this.ssrcBase + i, scaleResolutionDownBy: 2 ** (n - 1 - i), maxBitrate: l.bitrate })),
      rtcp: { cname: `aic${this.ssrcBase}` },
    };
    const audio = {
      codecs: [{ mimeType: 'audio/opus', payloadType: OPUS_PT, clockRate: 48000, channels: 2, rtcpFeedback: [] }],
      headerExtensions: [],
      encodings: [{ ssrc: this.audioSsrc }],
      rtcp: { cname: `aic${this.ssrcBase}` },
    };
    return { video: JSON.stringify(video), audio: JSON.stringify(audio) };
  }

  close(): void {
    this.sock.close();
  }
}

/** Rewrites the VP8 payload descriptor's picture id (RFC 7741), when it carries one, in place. */
function rewritePictureId(p: Buffer, id: number): void {
  const o = 12 + 4 * (p[0]! & 0x0f) + (p[0]! & 0x10 ? 4 + 4 * p.readUInt16BE(14 + 4 * (p[0]! & 0x0f)) : 0);
  if (o + 3 > p.length || !(p[o]! & 0x80) || !(p[o + 1]! & 0x80)) return; // no X, or no I
  if (p[o + 2]! & 0x80) p.writeUInt16BE(0x8000 | (id & 0x7fff), o + 2);
  else p[o + 2] = id & 0x7f;
}
