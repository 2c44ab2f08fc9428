/**
 * The RTP parse record: the one definition of the layout that the native addon
 * (native/rtp/src/layout.h, which must list the same indices: the loader compares them and
 * refuses an addon that disagrees) and the TypeScript parser both write.
 *
 * One record is RECORD_SIZE consecutive Int32 slots in the caller's Int32Array; packet i
 * lives at out[i * RECORD_SIZE + F.FIELD]. Conventions:
 * - -1 means "absent / not signalled" for every codec field (an absent picture id, a VP8
 *   packet's END, a TID the descriptor does not carry).
 * - 32-bit RTP values (TIMESTAMP, SSRC) hold the raw bit pattern: read them with `>>> 0`.
 * - Every offset is relative to the packet's first byte, so `buf[pktOffset + rec[PAYLOAD_OFFSET]]`
 *   is the first payload byte. Nothing is copied: hooks read extension values from the buffer.
 * - STATUS != 0: the RTP header is unusable; only STATUS is meaningful (other fields are the
 *   defaults or what was parsed before the fault). PAYLOAD_STATUS != 0 with STATUS == 0: the
 *   header fields are right, the codec fields are not to be trusted.
 */

/** Field indices. Keep in step with native/rtp/src/layout.h (checked at load and in tests). */
export const F = {
  STATUS: 0, // Status code (0 = valid RTP header)
  VERSION: 1,
  PADDING: 2, // P bit
  EXTENSION: 3, // X bit
  MARKER: 4,
  PAYLOAD_TYPE: 5,
  SEQUENCE: 6,
  TIMESTAMP: 7, // u32 bit pattern
  SSRC: 8, // u32 bit pattern
  CSRC_COUNT: 9,
  CSRC_OFFSET: 10, // first CSRC (always 12); CSRC i is the u32 at CSRC_OFFSET + 4 i
  EXT_PROFILE: 11, // the 16-bit "defined by profile" value, -1 without X
  EXT_FORM: 12, // ExtForm
  EXT_OFFSET: 13, // first byte of the extension block after its 4-byte header, -1 without X
  EXT_LENGTH: 14, // bytes in the block (4 x the length word)
  EXT_COUNT: 15, // elements stored in EXT_0.. (at most MAX_EXT)
  EXT_STATUS: 16, // ExtStatus (the packet stays valid: like mediasoup, a bad element only ends the walk)
  PAYLOAD_OFFSET: 17,
  PAYLOAD_LENGTH: 18, // without padding
  PADDING_LENGTH: 19,
  CODEC: 20, // Codec, from the caller's payload-type map
  PAYLOAD_STATUS: 21, // PayloadStatus
  KEY_FRAME: 22, // 1 if this packet starts a key frame (VP8 S=1 PID=0 P=0; VP9 !P B SID=0; H264 IDR/SPS start)
  START: 23, // 1 if the payload begins a frame (VP8 S && PID 0; VP9 B), a NAL unit (H264) or is audio
  END: 24, // 1 if the descriptor says the frame/NAL ends here (VP9 E, H264 FU E / whole NAL), -1 for VP8
  PICTURE_ID: 25, // VP8/VP9 picture id, -1 absent
  PICTURE_ID_BITS: 26, // 7 or 15, -1 absent
  TL0PICIDX: 27,
  TID: 28, // temporal layer id (VP8 TID, VP9 TID), -1 absent
  SID: 29, // spatial layer id (VP9 SID), -1 absent
  LAYER_SYNC: 30, // VP8 Y bit, VP9 U bit (switching up point), -1 absent
  KEYIDX: 31, // VP8 KEYIDX, -1 absent
  PARTITION_ID: 32, // VP8 PID, -1 for other codecs
  NON_REFERENCE: 33, // VP8 N bit; H264 NRI == 0; -1 for others
  INTER_PICTURE: 34, // VP9 P bit, -1 for others
  INTER_LAYER: 35, // VP9 D bit (depends on the lower spatial layer), -1 when L is absent
  FLEXIBLE: 36, // VP9 F bit
  DESCRIPTOR_FLAGS: 37, // first payload byte as sent (VP8 X.N.S.PID, VP9 IPLFBEVZ, H264 NAL header, Opus TOC)
  DESCRIPTOR_LENGTH: 38, // bytes of payload descriptor before codec data (VP8/VP9; H264: 1 single, 2 FU-A, 1 STAP-A)
  WIDTH: 39, // VP8 key frame header or VP9 scalability structure (top spatial layer), -1 unknown
  HEIGHT: 40,
  SPATIAL_LAYERS: 41, // VP9 SS N_S + 1, -1 without SS
  NAL_TYPE: 42, // H264 outer NAL type (1-23 single, 24 STAP-A, 28 FU-A), -1 for others
  NAL_TYPES: 43, // H264 bit mask of the NAL unit types carried (bit t = type t; FU-A: the fragment's type)
  NAL_COUNT: 44, // H264 NAL units (or fragments) in the packet
  OPUS_CONFIG: 45, // TOC config 0-31, -1 for others
  OPUS_MODE: 46, // OpusMode
  OPUS_BANDWIDTH: 47, // OpusBandwidth
  OPUS_FRAME_US: 48, // frame duration in microseconds (2500 .. 60000)
  OPUS_STEREO: 49,
  OPUS_FRAME_CODE: 50, // TOC c: 0 one frame, 1 two equal, 2 two different, 3 arbitrary
  OPUS_FRAMES: 51, // frames in the packet (code 3: from the frame count byte)
  DTX: 52, // Opus: 1 if the payload is at most 2 bytes (a DTX / comfort-noise packet), -1 for others
  RTX_OSN: 53, // RTX original sequence number, -1 absent
  EXT_0: 54, // MAX_EXT packed extension elements: (id << 24) | (length << 16) | offset
} as const;

/** Extension elements kept per packet; more set EXT_STATUS = TOO_MANY (the count stops at the cap). */
export const MAX_EXT = 16;
export const RECORD_SIZE = F.EXT_0 + MAX_EXT; // 70 Int32 = 280 bytes

export type FieldName = keyof typeof F;

/** Header status: why a packet's RTP header cannot be used. */
export const Status = {
  OK: 0,
  TRUNCATED: 1, // shorter than the 12-byte fixed header
  BAD_VERSION: 2, // version is not 2
  CSRC_OVERRUN: 3, // the CSRC list runs past the packet
  EXT_OVERRUN: 4, // the extension header or block runs past the packet
  BAD_PADDING: 5, // padding length 0 or longer than what follows the header
  OUT_OF_RANGE: 6, // offset/length given by the caller lie outside the buffer
  TOO_LONG: 7, // over 65535 bytes: no UDP datagram is (and offsets must fit the packed extension slots)
} as const;

export const ExtStatus = {
  OK: 0,
  ELEMENT_OVERRUN: 1, // an element's length runs past the block: the walk stops there
  RESERVED_ID: 2, // one-byte id 15 met: RFC 8285 says stop processing there
  TOO_MANY: 3, // more than MAX_EXT elements
} as const;

export const PayloadStatus = {
  OK: 0,
  TRUNCATED: 1, // the payload descriptor / header runs past the payload
  NO_DATA: 2, // VP8/VP9 descriptor with no codec data after it
  UNSUPPORTED: 3, // H264 NAL type this parser does not take apart (0, 25-27, 29-31)
  BAD_AGGREGATE: 4, // H264 STAP-A sizes do not add up
  BAD_FRAGMENT: 5, // H264 FU-A with both S and E set
  TOO_MANY_PDIFF: 6, // VP9 flexible mode with more than 3 P_DIFF
  BAD_FRAME_COUNT: 7, // Opus code-3 frame count 0 or over 120 ms
} as const;

export const ExtForm = { NONE: 0, ONE_BYTE: 1, TWO_BYTE: 2, OTHER: 3 } as const;
export const Codec = { NONE: 0, OPUS: 1, VP8: 2, VP9: 3, H264: 4, RTX: 5 } as const;
export type CodecName = 'opus' | 'vp8' | 'vp9' | 'h264' | 'rtx';
export const OpusMode = { SILK: 0, HYBRID: 1, CELT: 2 } as const;
export const OpusBandwidth = { NB: 0, MB: 1, WB: 2, SWB: 3, FB: 4 } as const;

/** Payload type (0-127) -> Codec; one per producer, built from its rtpParameters. */
export type CodecMap = Uint8Array;

const CODEC_IDS: Record<CodecName, number> = { opus: Codec.OPUS, vp8: Codec.VP8, vp9: Codec.VP9, h264: Codec.H264, rtx: Codec.RTX };

/** `codecMap({ 96: 'vp8', 97: 'rtx', 111: 'opus' })`. */
export function codecMap(byPt: Record<number, CodecName>): CodecMap {
  const map = new Uint8Array(128);
  for (const [pt, name] of Object.entries(byPt)) {
    const n = Number(pt);
    if (!Number.isInteger(n) || n < 0 || n > 127) throw new RangeError(`payload type ${pt} is not 0-127`);
    map[n] = CODEC_IDS[name];
  }
  return map;
}

/** Extension element i of the record at `base`: id, offset (from packet start), length. */
export function extAt(out: Int32Array, base: number, i: number): { id: number; offset: number; length: number } {
  const v = out[base + F.EXT_0 + i]! >>> 0;
  return { id: v >>> 24, length: (v >>> 16) & 0xff, offset: v & 0xffff };
}

/** Offset (from packet start) of extension `id`'s value in the record at `base`, or -1. */
export function findExt(out: Int32Array, base: number, id: number): number {
  const n = out[base + F.EXT_COUNT]!;
  for (let i = 0; i < n; i++) {
    const v = out[base + F.EXT_0 + i]! >>> 0;
    if (v >>> 24 === id) return v & 0xffff;
  }
  return -1;
}
