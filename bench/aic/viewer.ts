// A viewer's receiving end: one UDP socket behind its consuming plain transport. Counts bytes
// per consumer (by the SSRC mediasoup gave it) and, with the project's RTP parser
// (src/aic/rtp/), reads each VP8 key frame's width: the resolution of the layer forwarded now
// (mediasoup switches simulcast layers only at key frames). Also what the receiver-side
// quality score needs: frames (marker bits), sequence gaps, freezes (W3C definition).
import dgram from 'node:dgram';
import { F, RECORD_SIZE, codecMap, type CodecName } from '../../src/aic/rtp/layout.js';
import type { RtpParser } from '../../src/aic/rtp/api.js';

export interface TileCounters {
  videoBytes: number;
  packets: number;
  frames: number;
  lost: number;
  /** Seconds spent frozen (W3C: a frame later than max(3 x mean interval, mean + 150 ms)). */
  freezeS: number;
}

export interface Tile {
  consumerId: string;
  producerId: string;
  /** Index of the publishing participant. */
  publisher: number;
  kind: 'audio' | 'video';
  ssrc: number;
  width: number;
  height: number;
  hidden: boolean;
  /** Width of the last key frame received (0: none yet). */
  keyWidth: number;
  keyHeight: number;
  c: TileCounters;
  lastSeq: number;
  lastFrameAt: number;
  meanInterval: number;
  /** Resolves at the first key frame at least this wide (reaction time). */
  waiter: { minWidth: number; maxWidth: number; resolve(t: bigint): void } | undefined;
}

const zero = (): TileCounters => ({ videoBytes: 0, packets: 0, frames: 0, lost: 0, freezeS: 0 });

export class Viewer {
  readonly sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
  readonly tiles = new Map<number, Tile>();
  audioBytes = 0;
  private readonly out = new Int32Array(RECORD_SIZE);
  private readonly off = new Uint32Array(1);
  private readonly len = new Uint32Array(1);
  /** Payload type → codec, from the consumers' rtpParameters (the router's payload types, not the publisher's). */
  private codecs = codecMap({});
  private readonly byPt: Record<number, CodecName> = {};

  constructor(
    readonly index: number,
    private readonly parser: RtpParser,
  ) {
    this.sock.on('message', (m) => this.onPacket(m));
  }

  async open(): Promise<number> {
    await new Promise<void>((res, rej) => {
      this.sock.once('error', rej);
      this.sock.bind(0, '127.0.0.1', () => res());
    });
    return this.sock.address().port;
  }

  /** The payload type mediasoup sends a consumer's codec with. */
  codec(pt: number, name: CodecName): void {
    this.byPt[pt] = name;
    this.codecs = codecMap(this.byPt);
  }

  add(t: Omit<Tile, 'keyWidth' | 'keyHeight' | 'c' | 'lastSeq' | 'lastFrameAt' | 'meanInterval' | 'waiter'>): Tile {
    const tile: Tile = { ...t, keyWidth: 0, keyHeight: 0, c: zero(), lastSeq: -1, lastFrameAt: 0, meanInterval: 1000 / 30, waiter: undefined };
    this.tiles.set(t.ssrc, tile);
    return tile;
  }

  /** Per tile counters since the last call. */
  take(): Map<Tile, TileCounters> {
    const m = new Map<Tile, TileCounters>();
    for (const t of this.tiles.values()) {
      m.set(t, t.c);
      t.c = zero();
    }
    return m;
  }

  takeAudio(): number {
    const a = this.audioBytes;
    this.audioBytes = 0;
    return a;
  }

  private onPacket(m: Buffer): void {
    if (m.length < 12 || m[0]! >> 6 !== 2) return;
    const pt = m[1]! & 0x7f;
    if (pt >= 72 && pt <= 78) return; // RTCP (RFC 5761)
    const tile = this.tiles.get(m.readUInt32BE(8));
    if (!tile) return;
    if (tile.kind === 'audio') {
      this.audioBytes += m.length;
      return;
    }
    const now = performance.now();
    const c = tile.c;
    c.videoBytes += m.length;
    c.packets++;
    const seq = m.readUInt16BE(2);
    if (tile.lastSeq >= 0) {
      const gap = (seq - tile.lastSeq - 1) & 0xffff;
      if (gap < 1000) c.lost += gap; // else reordered/duplicate
    }
    tile.lastSeq = seq;
    if (m[1]! & 0x80) {
      // Marker: a frame ends here.
      c.frames++;
      if (tile.lastFrameAt > 0) {
        const d = now - tile.lastFrameAt;
        if (d > Math.max(3 * tile.meanInterval, tile.meanInterval + 150)) c.freezeS += d / 1000;
        tile.meanInterval += (d - tile.meanInterval) / 30;
      }
      tile.lastFrameAt = now;
    }
    this.len[0] = m.length;
    this.parser.parseBatch(m, this.off, this.len, 1, this.out, this.codecs);
    if (this.out[F.KEY_FRAME] !== 1) return;
    tile.keyWidth = this.out[F.WIDTH]!;
    tile.keyHeight = this.out[F.HEIGHT]!;
    const w = tile.waiter;
    if (w && tile.keyWidth >= w.minWidth && tile.keyWidth <= w.maxWidth) {
      tile.waiter = undefined;
      w.resolve(process.hrtime.bigint());
    }
  }

  close(): void {
    this.sock.close();
  }
}
