// bench/aic's media: the committed capture (bench/fixtures/aic, written once by
// scripts/capture-aic.mjs with ffmpeg): three VP8 simulcast layers of one 1280x720 test
// source and Opus, read into frames (packets grouped by RTP timestamp) per stream, key frames
// and their sizes found with the project's RTP parser (src/aic/rtp/).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { F, RECORD_SIZE, codecMap } from '../../src/aic/rtp/layout.js';
import { loadRtpParser } from '../../src/aic/rtp/parser.js';

const DIR = fileURLToPath(new URL('../../../bench/fixtures/aic/', import.meta.url));

export interface Frame {
  packets: Buffer[];
  bytes: number;
  key: boolean;
}

export interface VideoLayer {
  width: number;
  height: number;
  /** The encoder's target (the producer's encoding maxBitrate). */
  bitrate: number;
  frames: Frame[];
}

export interface Capture {
  fps: number;
  seconds: number;
  /** Lowest first. */
  layers: VideoLayer[];
  /** One 20 ms Opus packet each. */
  audio: Buffer[];
}

interface Manifest {
  fps: number;
  seconds: number;
  video: { ssrc: number; width: number; height: number; bitrate: number; pt: number }[];
  audio: { ssrc: number; pt: number };
}

const silent = { info: (): void => {}, warn: (): void => {} };

export function loadCapture(): Capture {
  const m = JSON.parse(readFileSync(`${DIR}manifest.json`, 'utf8')) as Manifest;
  const data = readFileSync(`${DIR}simulcast.rtpc`);
  if (data.toString('latin1', 0, 4) !== 'RTPC') throw new Error('bench/fixtures/aic/simulcast.rtpc: not an RTPC file');
  const bySsrc = new Map<number, Buffer[]>();
  for (let o = 8, i = 0, n = data.readUInt32BE(4); i < n; i++) {
    const len = data.readUInt16BE(o);
    const p = Buffer.from(data.subarray(o + 2, o + 2 + len));
    o += 2 + len;
    const ssrc = p.readUInt32BE(8);
    bySsrc.set(ssrc, [...(bySsrc.get(ssrc) ?? []), p]);
  }
  const parser = loadRtpParser({ logger: silent, prefer: 'ts' });
  const codecs = codecMap({ 96: 'vp8', 111: 'opus' });
  const out = new Int32Array(RECORD_SIZE);
  const layers = m.video.map((v) => {
    const frames: Frame[] = [];
    let ts = -1;
    for (const p of bySsrc.get(v.ssrc) ?? []) {
      parser.parseBatch(p, new Uint32Array([0]), new Uint32Array([p.length]), 1, out, codecs);
      const t = p.readUInt32BE(4);
      if (t !== ts || frames.length === 0) frames.push({ packets: [], bytes: 0, key: false });
      ts = t;
      const f = frames.at(-1)!;
      f.packets.push(p);
      f.bytes += p.length;
      if (out[F.KEY_FRAME] === 1) {
        if (out[F.WIDTH] !== v.width) throw new Error(`capture: layer ${v.width}x${v.height} has a ${out[F.WIDTH]}-wide key frame`);
        f.key = true;
      }
    }
    if (!frames.some((f) => f.key)) throw new Error(`capture: layer ${v.width}x${v.height} has no key frame`);
    return { width: v.width, height: v.height, bitrate: v.bitrate, frames };
  });
  return { fps: m.fps, seconds: m.seconds, layers, audio: bySsrc.get(m.audio.ssrc) ?? [] };
}
