// The RTP parser corpus: real ffmpeg packets (test/fixtures/rtp, written by
// scripts/capture-rtp.mjs), the same packets with synthetic RFC 8285 header extensions
// (ffmpeg sends none), hand-built edge cases, and seeded fuzz mutations of all of them.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { codecMap, type CodecMap, type CodecName } from '../src/aic/rtp/layout.js';
import { prng } from './helpers.js';

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

/**
 * Seeded mutations of corpus packets: bit flips, byte overwrites (biased to the header and
 * descriptor), truncations, extensions, padding and CSRC counts that lie.
 */
export function fuzzPackets(seed: number, count: number, base: Buffer[]): Buffer[] {
  const rnd = prng(seed);
  const int = (n: number): number => Math.floor(rnd() * n);
  const out: Buffer[] = [];
  for (let k = 0; k < count; k++) {
    const src = base[int(base.length)]!;
    let p = Buffer.from(src);
    const ops = 1 + int(4);
    for (let o = 0; o < ops; o++) {
      const front = Math.min(p.length, 40);
      switch (int(7)) {
        case 0: // flip a bit near the front (header, extensions, descriptor)
          if (front) p[int(front)]! ^= 1 << int(8);
          break;
        case 1: // random byte anywhere
          if (p.length) p[int(p.length)] = int(256);
          break;
        case 2: // truncate
          p = p.subarray(0, int(p.length + 1));
          break;
        case 3: // the first byte: version, P, X, CC
          if (p.length) p[0] = int(256);
          break;
        case 4: // the last byte (padding length when P is set)
          if (p.length) p[p.length - 1] = int(256);
          break;
        case 5: // extension length word / profile when present
          if (p.length > 16) p[12 + int(4)] = int(256);
          break;
        default: // payload type: hit other codecs' parsers with this payload
          if (p.length > 1) p[1] = (p[1]! & 0x80) | [96, 97, 98, 102, 111, int(128)][int(6)]!;
      }
    }
    out.push(p);
  }
  return out;
}
