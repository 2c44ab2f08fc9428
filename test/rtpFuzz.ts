// Seeded fuzz mutations of RTP packets for the parser equality test.
import { prng } from './helpers.js';

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
      switch (int(8)) {
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
        case 6: // lose the last 1-3 bytes: off-by-one at the end of a NAL, SS or extension
          p = p.subarray(0, Math.max(0, p.length - 1 - int(3)));
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
