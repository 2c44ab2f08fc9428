/**
 * The TypeScript RTP parser: the same record, field for field, as native/rtp/src/parse.c.
 * This file: the header, RFC 8285 extensions and the batch loop; payloads: tsCodecs.ts.
 * The two are kept equal by test/rtpParser.test.ts on the packet corpus and fuzzed packets,
 * so any change here is made there too, in the same order of writes (a truncated descriptor
 * leaves exactly the fields written before the fault).
 */
import { Codec, ExtStatus, F, MAX_EXT, RECORD_SIZE, Status, type CodecMap } from './layout.js';
import { h264, opus, rtx, vp8, vp9 } from './tsCodecs.js';
import { checkBatchArgs, type BatchParser } from './api.js';

/** What every record starts as: header fields 0, codec fields -1 (absent), no extensions. */
export const TEMPLATE: Int32Array = (() => {
  const t = new Int32Array(RECORD_SIZE);
  t[F.EXT_PROFILE] = -1;
  t[F.EXT_OFFSET] = -1;
  for (let i = F.START; i <= F.RTX_OSN; i++) t[i] = -1;
  t[F.NAL_TYPES] = 0;
  return t;
})();

function extensions(buf: Uint8Array, off: number, i: number, end: number, twoByte: boolean, out: Int32Array, b: number): void {
  let count = 0;
  let status: number = ExtStatus.OK;
  while (i < end) {
    const id = buf[off + i]!;
    if (twoByte) {
      if (id === 0) {
        i++; // padding
        continue;
      }
      if (i + 2 > end) {
        status = ExtStatus.ELEMENT_OVERRUN;
        break;
      }
      const len = buf[off + i + 1]!;
      if (i + 2 + len > end) {
        status = ExtStatus.ELEMENT_OVERRUN;
        break;
      }
      if (count === MAX_EXT) {
        status = ExtStatus.TOO_MANY;
        break;
      }
      out[b + F.EXT_0 + count] = (id << 24) | (len << 16) | (i + 2);
      count++;
      i += 2 + len;
    } else {
      const eid = id >> 4;
      if (eid === 0) {
        i++; // padding
        continue;
      }
      if (eid === 15) {
        status = ExtStatus.RESERVED_ID;
        break;
      }
      const len = (id & 0x0f) + 1;
      if (i + 1 + len > end) {
        status = ExtStatus.ELEMENT_OVERRUN;
        break;
      }
      if (count === MAX_EXT) {
        status = ExtStatus.TOO_MANY;
        break;
      }
      out[b + F.EXT_0 + count] = (eid << 24) | (len << 16) | (i + 1);
      count++;
      i += 1 + len;
    }
  }
  out[b + F.EXT_COUNT] = count;
  out[b + F.EXT_STATUS] = status;
}

/** Parses one packet buf[off, off + len) into out[b ..]; the record was reset to TEMPLATE. */
function parseInto(buf: Uint8Array, off: number, len: number, out: Int32Array, b: number, codecs: CodecMap): number {
  if (off + len > buf.length) return (out[b + F.STATUS] = Status.OUT_OF_RANGE);
  if (len > 0xffff) return (out[b + F.STATUS] = Status.TOO_LONG);
  if (len < 12) return (out[b + F.STATUS] = Status.TRUNCATED);
  const b0 = buf[off]!;
  if (b0 >> 6 !== 2) return (out[b + F.STATUS] = Status.BAD_VERSION);
  const cc = b0 & 0x0f;
  let hlen = 12 + 4 * cc;
  if (hlen > len) return (out[b + F.STATUS] = Status.CSRC_OVERRUN);
  let profile = -1;
  let extOffset = -1;
  let extLength = 0;
  if (b0 & 0x10) {
    if (hlen + 4 > len) return (out[b + F.STATUS] = Status.EXT_OVERRUN);
    profile = (buf[off + hlen]! << 8) | buf[off + hlen + 1]!;
    extLength = ((buf[off + hlen + 2]! << 8) | buf[off + hlen + 3]!) * 4;
    extOffset = hlen + 4;
    if (extOffset + extLength > len) return (out[b + F.STATUS] = Status.EXT_OVERRUN);
    hlen = extOffset + extLength;
  }
  let payloadLen = len - hlen;
  let padLen = 0;
  if (b0 & 0x20) {
    padLen = payloadLen === 0 ? 0 : buf[off + len - 1]!;
    if (padLen === 0 || padLen > payloadLen) return (out[b + F.STATUS] = Status.BAD_PADDING);
    payloadLen -= padLen;
  }
  const b1 = buf[off + 1]!;
  const pt = b1 & 0x7f;
  out[b + F.VERSION] = 2;
  out[b + F.PADDING] = (b0 >> 5) & 1;
  out[b + F.EXTENSION] = (b0 >> 4) & 1;
  out[b + F.MARKER] = b1 >> 7;
  out[b + F.PAYLOAD_TYPE] = pt;
  out[b + F.SEQUENCE] = (buf[off + 2]! << 8) | buf[off + 3]!;
  out[b + F.TIMESTAMP] = (buf[off + 4]! << 24) | (buf[off + 5]! << 16) | (buf[off + 6]! << 8) | buf[off + 7]!;
  out[b + F.SSRC] = (buf[off + 8]! << 24) | (buf[off + 9]! << 16) | (buf[off + 10]! << 8) | buf[off + 11]!;
  out[b + F.CSRC_COUNT] = cc;
  out[b + F.CSRC_OFFSET] = 12;
  out[b + F.EXT_PROFILE] = profile;
  out[b + F.EXT_OFFSET] = extOffset;
  out[b + F.EXT_LENGTH] = extLength;
  out[b + F.PAYLOAD_OFFSET] = hlen;
  out[b + F.PAYLOAD_LENGTH] = payloadLen;
  out[b + F.PADDING_LENGTH] = padLen;
  if (profile === 0xbede) {
    out[b + F.EXT_FORM] = 1;
    extensions(buf, off, extOffset, extOffset + extLength, false, out, b);
  } else if ((profile & 0xfff0) === 0x1000) {
    out[b + F.EXT_FORM] = 2;
    extensions(buf, off, extOffset, extOffset + extLength, true, out, b);
  } else if (profile !== -1) {
    out[b + F.EXT_FORM] = 3;
  }
  const codec = codecs[pt]!;
  out[b + F.CODEC] = codec;
  const p = off + hlen;
  switch (codec) {
    case Codec.OPUS:
      opus(buf, p, payloadLen, out, b);
      break;
    case Codec.VP8:
      vp8(buf, p, payloadLen, out, b);
      break;
    case Codec.VP9:
      vp9(buf, p, payloadLen, out, b);
      break;
    case Codec.H264:
      h264(buf, p, payloadLen, out, b);
      break;
    case Codec.RTX:
      rtx(buf, p, payloadLen, out, b);
      break;
  }
  return Status.OK;
}

export function parseBatchTs(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, out: Int32Array, codecs: CodecMap): number {
  checkBatchArgs(buf, offsets, lengths, count, out, codecs);
  let valid = 0;
  for (let i = 0; i < count; i++) {
    const b = i * RECORD_SIZE;
    out.set(TEMPLATE, b);
    if (parseInto(buf, offsets[i]!, lengths[i]!, out, b, codecs) === Status.OK) valid++;
  }
  return valid;
}

export const tsBatchParser: BatchParser = { impl: 'ts', parseBatch: parseBatchTs };
