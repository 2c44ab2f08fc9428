/* The parse record layout, the C side of src/aic/rtp/layout.ts (the documentation lives
 * there). The addon exports these names and indices; the loader refuses an addon whose
 * table differs from layout.ts, so a change made on one side only cannot go unnoticed. */
#ifndef AURALINK_RTP_LAYOUT_H
#define AURALINK_RTP_LAYOUT_H

#define RTP_FIELDS(X) \
  X(STATUS, 0) \
  X(VERSION, 1) \
  X(PADDING, 2) \
  X(EXTENSION, 3) \
  X(MARKER, 4) \
  X(PAYLOAD_TYPE, 5) \
  X(SEQUENCE, 6) \
  X(TIMESTAMP, 7) \
  X(SSRC, 8) \
  X(CSRC_COUNT, 9) \
  X(CSRC_OFFSET, 10) \
  X(EXT_PROFILE, 11) \
  X(EXT_FORM, 12) \
  X(EXT_OFFSET, 13) \
  X(EXT_LENGTH, 14) \
  X(EXT_COUNT, 15) \
  X(EXT_STATUS, 16) \
  X(PAYLOAD_OFFSET, 17) \
  X(PAYLOAD_LENGTH, 18) \
  X(PADDING_LENGTH, 19) \
  X(CODEC, 20) \
  X(PAYLOAD_STATUS, 21) \
  X(KEY_FRAME, 22) \
  X(START, 23) \
  X(END, 24) \
  X(PICTURE_ID, 25) \
  X(PICTURE_ID_BITS, 26) \
  X(TL0PICIDX, 27) \
  X(TID, 28) \
  X(SID, 29) \
  X(LAYER_SYNC, 30) \
  X(KEYIDX, 31) \
  X(PARTITION_ID, 32) \
  X(NON_REFERENCE, 33) \
  X(INTER_PICTURE, 34) \
  X(INTER_LAYER, 35) \
  X(FLEXIBLE, 36) \
  X(DESCRIPTOR_FLAGS, 37) \
  X(DESCRIPTOR_LENGTH, 38) \
  X(WIDTH, 39) \
  X(HEIGHT, 40) \
  X(SPATIAL_LAYERS, 41) \
  X(NAL_TYPE, 42) \
  X(NAL_TYPES, 43) \
  X(NAL_COUNT, 44) \
  X(OPUS_CONFIG, 45) \
  X(OPUS_MODE, 46) \
  X(OPUS_BANDWIDTH, 47) \
  X(OPUS_FRAME_US, 48) \
  X(OPUS_STEREO, 49) \
  X(OPUS_FRAME_CODE, 50) \
  X(OPUS_FRAMES, 51) \
  X(DTX, 52) \
  X(RTX_OSN, 53) \
  X(EXT_0, 54) \
  /* end */

enum rtp_field {
#define RTP_FIELD_ENUM(name, index) RF_##name = index,
  RTP_FIELDS(RTP_FIELD_ENUM)
#undef RTP_FIELD_ENUM
};

#define RTP_MAX_EXT 16
#define RTP_RECORD_SIZE (RF_EXT_0 + RTP_MAX_EXT)

enum rtp_status { ST_OK = 0, ST_TRUNCATED, ST_BAD_VERSION, ST_CSRC_OVERRUN, ST_EXT_OVERRUN, ST_BAD_PADDING, ST_OUT_OF_RANGE, ST_TOO_LONG };
enum rtp_ext_status { EXT_OK = 0, EXT_ELEMENT_OVERRUN, EXT_RESERVED_ID, EXT_TOO_MANY };
enum rtp_payload_status {
  PS_OK = 0, PS_TRUNCATED, PS_NO_DATA, PS_UNSUPPORTED, PS_BAD_AGGREGATE, PS_BAD_FRAGMENT, PS_TOO_MANY_PDIFF, PS_BAD_FRAME_COUNT
};
enum rtp_codec { CODEC_NONE = 0, CODEC_OPUS, CODEC_VP8, CODEC_VP9, CODEC_H264, CODEC_RTX };

#endif
