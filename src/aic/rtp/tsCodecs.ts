/**
 * The TypeScript payload parsers (Opus TOC, VP8, VP9, H264, RTX): the twins of the codec
 * functions in native/rtp/src/parse.c, written field for field in the same order (a
 * truncated descriptor leaves exactly the fields written before the fault).
 * Each takes the payload buf[p, p + n) and writes into the record at out[b ..].
 */
import { F, PayloadStatus } from './layout.js';

const SILK_US = [10000, 20000, 40000, 60000];
const HYBRID_US = [10000, 20000];
const CELT_US = [2500, 5000, 10000, 20000];
const CELT_BW = [0, 2, 3, 4]; // NB, WB, SWB, FB

export function opus(buf: Uint8Array, p: number, n: number, out: Int32Array, b: number): void {
  out[b + F.START] = 1;
  out[b + F.END] = 1;
  out[b + F.DTX] = n <= 2 ? 1 : 0;
  if (n === 0) return;
  const toc = buf[p]!;
  const config = toc >> 3;
  out[b + F.DESCRIPTOR_FLAGS] = toc;
  out[b + F.DESCRIPTOR_LENGTH] = 1;
  out[b + F.OPUS_CONFIG] = config;
  let frameUs: number;
  if (config < 12) {
    out[b + F.OPUS_MODE] = 0;
    out[b + F.OPUS_BANDWIDTH] = config >> 2;
    frameUs = SILK_US[config & 3]!;
  } else if (config < 16) {
    out[b + F.OPUS_MODE] = 1;
    out[b + F.OPUS_BANDWIDTH] = config < 14 ? 3 : 4;
    frameUs = HYBRID_US[config & 1]!;
  } else {
    out[b + F.OPUS_MODE] = 2;
    out[b + F.OPUS_BANDWIDTH] = CELT_BW[(config - 16) >> 2]!;
    frameUs = CELT_US[config & 3]!;
  }
  out[b + F.OPUS_FRAME_US] = frameUs;
  out[b + F.OPUS_STEREO] = (toc >> 2) & 1;
  const code = toc & 3;
  out[b + F.OPUS_FRAME_CODE] = code;
  if (code === 0) out[b + F.OPUS_FRAMES] = 1;
  else if (code !== 3) out[b + F.OPUS_FRAMES] = 2;
  else {
    if (n < 2) {
      out[b + F.PAYLOAD_STATUS] = PayloadStatus.TRUNCATED;
      return;
    }
    const m = buf[p + 1]! & 0x3f;
    out[b + F.OPUS_FRAMES] = m;
    out[b + F.DESCRIPTOR_LENGTH] = 2;
    // RFC 6716 3.2.5: M is never 0 and a packet holds at most 120 ms.
    if (m === 0 || m * frameUs > 120000) out[b + F.PAYLOAD_STATUS] = PayloadStatus.BAD_FRAME_COUNT;
  }
}

/** VP8/VP9 picture id at buf[p + i] (M bit: 15 bits); returns the new i, or -1 if truncated. */
function pictureId(buf: Uint8Array, p: number, i: number, n: number, out: Int32Array, b: number): number {
  if (i >= n) return -1;
  const x = buf[p + i]!;
  if (x & 0x80) {
    if (i + 1 >= n) return -1;
    out[b + F.PICTURE_ID] = ((x & 0x7f) << 8) | buf[p + i + 1]!;
    out[b + F.PICTURE_ID_BITS] = 15;
    return i + 2;
  }
  out[b + F.PICTURE_ID] = x;
  out[b + F.PICTURE_ID_BITS] = 7;
  return i + 1;
}

export function vp8(buf: Uint8Array, p: number, n: number, out: Int32Array, b: number): void {
  if (n === 0) return;
  const b0 = buf[p]!;
  const s = (b0 >> 4) & 1;
  const pid = b0 & 7;
  out[b + F.DESCRIPTOR_FLAGS] = b0;
  out[b + F.NON_REFERENCE] = (b0 >> 5) & 1;
  out[b + F.PARTITION_ID] = pid;
  out[b + F.START] = s === 1 && pid === 0 ? 1 : 0;
  let i = 1;
  if (b0 & 0x80) {
    if (i >= n) return truncated(out, b);
    const x = buf[p + i]!;
    i++;
    if (x & 0x80) {
      i = pictureId(buf, p, i, n, out, b);
      if (i < 0) return truncated(out, b);
    }
    if (x & 0x40) {
      if (i >= n) return truncated(out, b);
      out[b + F.TL0PICIDX] = buf[p + i]!;
      i++;
    }
    if (x & 0x30) {
      if (i >= n) return truncated(out, b);
      const tk = buf[p + i]!;
      i++;
      if (x & 0x20) {
        out[b + F.TID] = tk >> 6;
        out[b + F.LAYER_SYNC] = (tk >> 5) & 1;
      }
      if (x & 0x10) out[b + F.KEYIDX] = tk & 0x1f;
    }
  }
  out[b + F.DESCRIPTOR_LENGTH] = i;
  if (i >= n) {
    out[b + F.PAYLOAD_STATUS] = PayloadStatus.NO_DATA;
    return;
  }
  if (s === 1 && pid === 0) {
    // RFC 7741 4.3: the VP8 payload header's P bit (inverse key frame flag) is bit 0.
    const h = p + i;
    const key = (buf[h]! & 1) === 0;
    out[b + F.KEY_FRAME] = key ? 1 : 0;
    // RFC 6386 9.1: a key frame's 3-byte tag is followed by the start code and 14-bit sizes.
    if (key && n - i >= 10 && buf[h + 3] === 0x9d && buf[h + 4] === 0x01 && buf[h + 5] === 0x2a) {
      out[b + F.WIDTH] = (buf[h + 6]! | (buf[h + 7]! << 8)) & 0x3fff;
      out[b + F.HEIGHT] = (buf[h + 8]! | (buf[h + 9]! << 8)) & 0x3fff;
    }
  }
}

function truncated(out: Int32Array, b: number): void {
  out[b + F.PAYLOAD_STATUS] = PayloadStatus.TRUNCATED;
}

export function vp9(buf: Uint8Array, p: number, n: number, out: Int32Array, b: number): void {
  if (n === 0) return;
  const b0 = buf[p]!;
  const interPic = (b0 >> 6) & 1;
  const flexible = (b0 >> 4) & 1;
  const begin = (b0 >> 3) & 1;
  out[b + F.DESCRIPTOR_FLAGS] = b0;
  out[b + F.INTER_PICTURE] = interPic;
  out[b + F.FLEXIBLE] = flexible;
  out[b + F.START] = begin;
  out[b + F.END] = (b0 >> 2) & 1;
  let i = 1;
  let sid = 0; // no layer indices: a single spatial layer
  if (b0 & 0x80) {
    i = pictureId(buf, p, i, n, out, b);
    if (i < 0) return truncated(out, b);
  }
  if (b0 & 0x20) {
    if (i >= n) return truncated(out, b);
    const l = buf[p + i]!;
    i++;
    sid = (l >> 1) & 7;
    out[b + F.TID] = l >> 5;
    out[b + F.LAYER_SYNC] = (l >> 4) & 1;
    out[b + F.SID] = sid;
    out[b + F.INTER_LAYER] = l & 1;
    if (flexible === 0) {
      if (i >= n) return truncated(out, b);
      out[b + F.TL0PICIDX] = buf[p + i]!;
      i++;
    }
  }
  // RFC 9628: a layer frame with P=0 is not inter-picture predicted; at SID 0 it is a key frame.
  out[b + F.KEY_FRAME] = interPic === 0 && begin === 1 && sid === 0 ? 1 : 0;
  if (flexible === 1 && interPic === 1) {
    for (let k = 1; ; k++) {
      if (i >= n) return truncated(out, b);
      const d = buf[p + i]!;
      i++;
      if ((d & 1) === 0) break;
      if (k === 3) {
        out[b + F.PAYLOAD_STATUS] = PayloadStatus.TOO_MANY_PDIFF;
        return;
      }
    }
  }
  if (b0 & 0x02) {
    if (i >= n) return truncated(out, b);
    const ss = buf[p + i]!;
    i++;
    const ns = (ss >> 5) + 1;
    out[b + F.SPATIAL_LAYERS] = ns;
    if (ss & 0x10) {
      if (i + 4 * ns > n) return truncated(out, b);
      const top = p + i + 4 * (ns - 1); // the highest spatial layer's size
      out[b + F.WIDTH] = (buf[top]! << 8) | buf[top + 1]!;
      out[b + F.HEIGHT] = (buf[top + 2]! << 8) | buf[top + 3]!;
      i += 4 * ns;
    }
    if (ss & 0x08) {
      if (i >= n) return truncated(out, b);
      const ng = buf[p + i]!;
      i++;
      for (let g = 0; g < ng; g++) {
        if (i >= n) return truncated(out, b);
        const r = (buf[p + i]! >> 2) & 3;
        i += 1 + r;
        if (i > n) return truncated(out, b);
      }
    }
  }
  out[b + F.DESCRIPTOR_LENGTH] = i;
  if (i >= n) out[b + F.PAYLOAD_STATUS] = PayloadStatus.NO_DATA;
}

export function h264(buf: Uint8Array, p: number, n: number, out: Int32Array, b: number): void {
  if (n === 0) return;
  const h = buf[p]!;
  const type = h & 0x1f;
  out[b + F.DESCRIPTOR_FLAGS] = h;
  out[b + F.NAL_TYPE] = type;
  out[b + F.NON_REFERENCE] = (h & 0x60) === 0 ? 1 : 0;
  if (type >= 1 && type <= 23) {
    out[b + F.NAL_TYPES] = 1 << type;
    out[b + F.NAL_COUNT] = 1;
    out[b + F.START] = 1;
    out[b + F.END] = 1;
    out[b + F.DESCRIPTOR_LENGTH] = 1;
    out[b + F.KEY_FRAME] = type === 5 || type === 7 ? 1 : 0;
  } else if (type === 24) {
    // STAP-A (RFC 6184 5.7.1): 16-bit size, NAL unit, repeated to the end of the payload.
    let i = 1;
    let mask = 0;
    let count = 0;
    while (i < n) {
      if (i + 2 > n) {
        out[b + F.PAYLOAD_STATUS] = PayloadStatus.BAD_AGGREGATE;
        break;
      }
      const size = (buf[p + i]! << 8) | buf[p + i + 1]!;
      if (size === 0 || i + 2 + size > n) {
        out[b + F.PAYLOAD_STATUS] = PayloadStatus.BAD_AGGREGATE;
        break;
      }
      mask |= 1 << (buf[p + i + 2]! & 0x1f);
      count++;
      i += 2 + size;
    }
    if (count === 0) out[b + F.PAYLOAD_STATUS] = PayloadStatus.BAD_AGGREGATE;
    out[b + F.NAL_TYPES] = mask;
    out[b + F.NAL_COUNT] = count;
    out[b + F.START] = 1;
    out[b + F.END] = 1;
    out[b + F.DESCRIPTOR_LENGTH] = 1;
    out[b + F.KEY_FRAME] = (mask & 0xa0) !== 0 ? 1 : 0; // IDR (5) or SPS (7)
  } else if (type === 28) {
    // FU-A (RFC 6184 5.8): FU indicator, FU header S|E|R|type, fragment.
    if (n < 2) return truncated(out, b);
    const fu = buf[p + 1]!;
    const start = fu >> 7;
    const t = fu & 0x1f;
    out[b + F.NAL_TYPES] = 1 << t;
    out[b + F.NAL_COUNT] = 1;
    out[b + F.START] = start;
    out[b + F.END] = (fu >> 6) & 1;
    out[b + F.DESCRIPTOR_LENGTH] = 2;
    out[b + F.KEY_FRAME] = start === 1 && (t === 5 || t === 7) ? 1 : 0;
    if ((fu & 0xc0) === 0xc0) out[b + F.PAYLOAD_STATUS] = PayloadStatus.BAD_FRAGMENT;
  } else {
    out[b + F.PAYLOAD_STATUS] = PayloadStatus.UNSUPPORTED;
  }
}

export function rtx(buf: Uint8Array, p: number, n: number, out: Int32Array, b: number): void {
  if (n === 0) return; // a padding-only probe
  if (n < 2) return truncated(out, b);
  out[b + F.RTX_OSN] = (buf[p]! << 8) | buf[p + 1]!;
  out[b + F.DESCRIPTOR_LENGTH] = 2;
}
