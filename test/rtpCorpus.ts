// The RTP parser corpus: real ffmpeg packets (test/fixtures/rtp, written by
// scripts/capture-rtp.mjs), the same packets with synthetic RFC 8285 header extensions
// (ffmpeg sends none) and hand-built edge cases. Fuzz mutations: test/rtpFuzz.ts. No heavy
// imports: bench/rtpParser.ts loads this in every child process.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { codecMap, type CodecMap, type CodecName } from '../src/aic/rtp/layout.js';

const DIR = fileURLToPath(new URL('../../test/fixtures/rtp/', import.meta.url));

export interface CorpusStream {
  name: string;
  codec: CodecName;
  pt: number;
  packets: Buffer[];
}

export function readStreams(): CorpusStream[] {
  const manifest = JSON.parse(readFileSync(`${DIR}manifest.json`, 'utf8')) as { streams: { file: string; codec: CodecName; pt: number; packets: number }[] };
  return manifest.streams.map((s) => {
    const data = readFileSync(`${DIR}${s.file}`);
    if (data.toString('latin1', 0, 4) !== 'RTPC') throw new Error(`${s.file}: not an RTPC file`);
    const count = data.readUInt32BE(4);
    const packets: Buffer[] = [];
    let o = 8;
    for (let i = 0; i < count; i++) {
      const len = data.readUInt16BE(o);
      packets.push(data.subarray(o + 2, o + 2 + len));
      o += 2 + len;
    }
    if (packets.length !== s.packets) throw new Error(`${s.file}: ${packets.length} packets, manifest says ${s.packets}`);
    return { name: s.file.replace(/\.rtpc$/, ''), codec: s.codec, pt: s.pt, packets };
  });
}

/** An RTP packet: 12-byte header (+ CSRCs) then payload. */
export function rtp(opts: { pt: number; seq?: number; ts?: number; ssrc?: number; marker?: boolean; csrcs?: number[]; payload: number[]; padding?: number }): Buffer {
  const cc = opts.csrcs?.length ?? 0;
  const pad = opts.padding ?? 0;
  const b = Buffer.alloc(12 + 4 * cc + opts.payload.length + pad);
  b[0] = 0x80 | (pad ? 0x20 : 0) | cc;
  b[1] = (opts.marker ? 0x80 : 0) | opts.pt;
  b.writeUInt16BE(opts.seq ?? 1, 2);
  b.writeUInt32BE(opts.ts ?? 0, 4);
  b.writeUInt32BE(opts.ssrc ?? 0x11223344, 8);
  opts.csrcs?.forEach((c, i) => b.writeUInt32BE(c, 12 + 4 * i));
  Buffer.from(opts.payload).copy(b, 12 + 4 * cc);
  if (pad) b[b.length - 1] = pad;
  return b;
}

/** The payload-type map for the corpus (97: RTX for the VP8 stream's retransmissions). */
export const CORPUS_CODECS: CodecMap = codecMap({ 96: 'vp8', 97: 'rtx', 98: 'vp9', 102: 'h264', 111: 'opus' });

/** `pkt` with an RFC 8285 extension block of `elements` ([id, value bytes]) inserted after the CSRCs. */
export function withExtensions(pkt: Buffer, elements: [number, number[]][], form: 'one' | 'two', padTo4 = true): Buffer {
  const cc = pkt[0]! & 0x0f;
  const hlen = 12 + 4 * cc;
  const body: number[] = [];
  for (const [id, value] of elements) {
    if (form === 'one') body.push((id << 4) | (value.length - 1), ...value);
    else body.push(id, value.length, ...value);
  }
  while (padTo4 && body.length % 4 !== 0) body.push(0);
  const ext = Buffer.alloc(4 + body.length);
  ext.writeUInt16BE(form === 'one' ? 0xbede : 0x1000, 0);
  ext.writeUInt16BE(Math.ceil(body.length / 4), 2);
  Buffer.from(body).copy(ext, 4);
  const out = Buffer.concat([pkt.subarray(0, hlen), ext, pkt.subarray(hlen)]);
  out[0] = out[0]! | 0x10;
  return out;
}

/** Typical WebRTC extensions: mid, abs-send-time, transport-cc, ssrc-audio-level, rid. */
export function webrtcExtensions(seq: number): [number, number[]][] {
  return [
    [1, [0x30]], // mid "0"
    [3, [(seq >> 4) & 0xff, seq & 0xff, 0x12]], // abs-send-time (3 bytes)
    [5, [(seq >> 8) & 0xff, seq & 0xff]], // transport-wide-cc sequence
    [10, [0x80 | 30]], // ssrc-audio-level: voice, -30 dBov
    [12, [0x68]], // rid "h"
  ];
}

/** Every corpus packet plus extension variants: one-byte on even, two-byte on every third. */
export function corpusPackets(): Buffer[] {
  const out: Buffer[] = [];
  for (const s of readStreams()) {
    s.packets.forEach((p, i) => {
      out.push(p);
      if (i % 2 === 0) out.push(withExtensions(p, webrtcExtensions(i), 'one'));
      if (i % 3 === 0) out.push(withExtensions(p, [...webrtcExtensions(i), [200, []], [7, new Array(20).fill(i & 0xff)]], 'two'));
    });
  }
  return out;
}

/** Hand-built payloads for what ffmpeg does not send: VP8 L/T/K, VP9 layers/SS/flexible, STAP-A, Opus codes, RTX. */
export function syntheticPackets(): Buffer[] {
  const payloads: [number, number[]][] = [
    [96, [0xb0, 0xf0, 0x25, 0x07, 0xa5, 0x01, 0, 0]], // VP8 I L T K, 7-bit pic
    [96, [0x90, 0xe0, 0x80, 0x10, 0x03, 0x40, 0x00, 0x00, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xff]], // VP8 key, 15-bit pic, TL0, TID
    [96, [0x80, 0x10, 0x17, 0x01]], // VP8 K only
    [98, [0xaa, 0x81, 0x23, 0x10, 0x09, 0x58, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0x05, 0x00, 0x02, 0xd0, 0x01, 0x04, 0x01, 0xaa, 0xbb]], // VP9 SS
    [98, [0xf4, 0x05, 0x22, 0x03, 0x04, 0xcc]], // VP9 flexible
    [98, [0xe8, 0x42, 0x23, 0x07, 0x11]], // VP9 L, inter-layer
    [98, [0x0a, 0x08, 0x02, 0x04, 0x01, 0x44, 0x02, 0x01, 0x01, 0x55]], // VP9 SS with G only
    [102, [0x18, 0x00, 0x04, 0x67, 1, 2, 3, 0x00, 0x02, 0x68, 4, 0x00, 0x03, 0x65, 5, 6]], // STAP-A SPS PPS IDR
    [102, [0x38, 0x00, 0x02, 0x06, 0xff, 0x00, 0x01, 0x41]], // STAP-A SEI + slice
    [102, [0x7c, 0x45, 1, 2, 3]], // FU-A end of IDR
    [102, [0x65, 0x88, 0x80]], // single IDR
    [102, [0x01, 0x9a]], // single non-ref slice
    [111, [0x0b, 0x03, 1, 2, 3, 4]], // Opus code 3, 3 frames
    [111, [0x8b, 0x85, 1, 2, 3]], // Opus CELT code 3 with padding flag
    [111, [0x79, 1, 2, 3, 4, 5]], // Opus hybrid code 1
    [111, [0x48]], // DTX
    [97, [0x01, 0x02, 0x90, 0x80, 0x80, 0x01, 0xaa]], // RTX
  ];
  const out: Buffer[] = [];
  payloads.forEach(([pt, payload], i) => {
    const p = rtp({ pt, seq: i, payload, csrcs: i % 4 === 0 ? [i] : undefined, padding: i % 5 === 0 ? 3 : 0 });
    out.push(p, withExtensions(p, webrtcExtensions(i), 'one'), withExtensions(p, [[1, [0x30]], [99, [1, 2]]], 'two'));
  });
  return out;
}
