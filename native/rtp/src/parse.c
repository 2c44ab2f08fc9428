/* RTP parsing into fixed-width records: the C twin of src/aic/rtp/tsParser.ts. Both write
 * the same fields in the same order (a truncated descriptor leaves exactly the fields written
 * before the fault); test/rtpParser.test.ts checks every field on the corpus and fuzzed packets.
 * No allocation, no N-API here: addon.c validates the arguments and calls rtp_parse_batch. */
#include "parse.h"

#include <string.h>

/* What every record starts as: header fields 0, codec fields -1 (absent), no extensions.
 * Constant (GNU range initialisers), so worker threads share it without a race. */
static const int32_t g_template[RTP_RECORD_SIZE] = {
  [RF_EXT_PROFILE] = -1,
  [RF_EXT_OFFSET] = -1,
  [RF_START ... RF_NAL_TYPE] = -1,
  [RF_NAL_COUNT ... RF_RTX_OSN] = -1, /* RF_NAL_TYPES, a bit mask, stays 0 */
};

static const int32_t SILK_US[4] = {10000, 20000, 40000, 60000};
static const int32_t HYBRID_US[2] = {10000, 20000};
static const int32_t CELT_US[4] = {2500, 5000, 10000, 20000};
static const int32_t CELT_BW[4] = {0, 2, 3, 4};

static void opus(const uint8_t *d, uint32_t n, int32_t *r) {
  r[RF_START] = 1;
  r[RF_END] = 1;
  r[RF_DTX] = n <= 2 ? 1 : 0;
  if (n == 0) return;
  uint8_t toc = d[0];
  int config = toc >> 3;
  int32_t frame_us;
  r[RF_DESCRIPTOR_FLAGS] = toc;
  r[RF_DESCRIPTOR_LENGTH] = 1;
  r[RF_OPUS_CONFIG] = config;
  if (config < 12) {
    r[RF_OPUS_MODE] = 0;
    r[RF_OPUS_BANDWIDTH] = config >> 2;
    frame_us = SILK_US[config & 3];
  } else if (config < 16) {
    r[RF_OPUS_MODE] = 1;
    r[RF_OPUS_BANDWIDTH] = config < 14 ? 3 : 4;
    frame_us = HYBRID_US[config & 1];
  } else {
    r[RF_OPUS_MODE] = 2;
    r[RF_OPUS_BANDWIDTH] = CELT_BW[(config - 16) >> 2];
    frame_us = CELT_US[config & 3];
  }
  r[RF_OPUS_FRAME_US] = frame_us;
  r[RF_OPUS_STEREO] = (toc >> 2) & 1;
  int code = toc & 3;
  r[RF_OPUS_FRAME_CODE] = code;
  if (code == 0) {
    r[RF_OPUS_FRAMES] = 1;
  } else if (code != 3) {
    r[RF_OPUS_FRAMES] = 2;
  } else {
    if (n < 2) {
      r[RF_PAYLOAD_STATUS] = PS_TRUNCATED;
      return;
    }
    int m = d[1] & 0x3f;
    r[RF_OPUS_FRAMES] = m;
    r[RF_DESCRIPTOR_LENGTH] = 2;
    /* RFC 6716 3.2.5: M is never 0 and a packet holds at most 120 ms. */
    if (m == 0 || m * frame_us > 120000) r[RF_PAYLOAD_STATUS] = PS_BAD_FRAME_COUNT;
  }
}

/* VP8/VP9 picture id at d[i] (M bit: 15 bits); returns the new i, or -1 if truncated. */
static int64_t picture_id(const uint8_t *d, int64_t i, uint32_t n, int32_t *r) {
  if (i >= n) return -1;
  uint8_t x = d[i];
  if (x & 0x80) {
    if (i + 1 >= n) return -1;
    r[RF_PICTURE_ID] = ((x & 0x7f) << 8) | d[i + 1];
    r[RF_PICTURE_ID_BITS] = 15;
    return i + 2;
  }
  r[RF_PICTURE_ID] = x;
  r[RF_PICTURE_ID_BITS] = 7;
  return i + 1;
}

#define TRUNCATED() do { r[RF_PAYLOAD_STATUS] = PS_TRUNCATED; return; } while (0)

static void vp8(const uint8_t *d, uint32_t n, int32_t *r) {
  if (n == 0) return;
  uint8_t b0 = d[0];
  int s = (b0 >> 4) & 1;
  int pid = b0 & 7;
  r[RF_DESCRIPTOR_FLAGS] = b0;
  r[RF_NON_REFERENCE] = (b0 >> 5) & 1;
  r[RF_PARTITION_ID] = pid;
  r[RF_START] = (s == 1 && pid == 0) ? 1 : 0;
  int64_t i = 1;
  if (b0 & 0x80) {
    if (i >= n) TRUNCATED();
    uint8_t x = d[i++];
    if (x & 0x80) {
      i = picture_id(d, i, n, r);
      if (i < 0) TRUNCATED();
    }
    if (x & 0x40) {
      if (i >= n) TRUNCATED();
      r[RF_TL0PICIDX] = d[i++];
    }
    if (x & 0x30) {
      if (i >= n) TRUNCATED();
      uint8_t tk = d[i++];
      if (x & 0x20) {
        r[RF_TID] = tk >> 6;
        r[RF_LAYER_SYNC] = (tk >> 5) & 1;
      }
      if (x & 0x10) r[RF_KEYIDX] = tk & 0x1f;
    }
  }
  r[RF_DESCRIPTOR_LENGTH] = (int32_t)i;
  if (i >= n) {
    r[RF_PAYLOAD_STATUS] = PS_NO_DATA;
    return;
  }
  if (s == 1 && pid == 0) {
    /* RFC 7741 4.3: the VP8 payload header's P bit (inverse key frame flag) is bit 0. */
    const uint8_t *h = d + i;
    int key = (h[0] & 1) == 0;
    r[RF_KEY_FRAME] = key;
    /* RFC 6386 9.1: a key frame's 3-byte tag is followed by the start code and 14-bit sizes. */
    if (key && n - i >= 10 && h[3] == 0x9d && h[4] == 0x01 && h[5] == 0x2a) {
      r[RF_WIDTH] = (h[6] | (h[7] << 8)) & 0x3fff;
      r[RF_HEIGHT] = (h[8] | (h[9] << 8)) & 0x3fff;
    }
  }
}

static void vp9(const uint8_t *d, uint32_t n, int32_t *r) {
  if (n == 0) return;
  uint8_t b0 = d[0];
  int inter_pic = (b0 >> 6) & 1;
  int flexible = (b0 >> 4) & 1;
  int begin = (b0 >> 3) & 1;
  r[RF_DESCRIPTOR_FLAGS] = b0;
  r[RF_INTER_PICTURE] = inter_pic;
  r[RF_FLEXIBLE] = flexible;
  r[RF_START] = begin;
  r[RF_END] = (b0 >> 2) & 1;
  int64_t i = 1;
  int sid = 0; /* no layer indices: a single spatial layer */
  if (b0 & 0x80) {
    i = picture_id(d, i, n, r);
    if (i < 0) TRUNCATED();
  }
  if (b0 & 0x20) {
    if (i >= n) TRUNCATED();
    uint8_t l = d[i++];
    sid = (l >> 1) & 7;
    r[RF_TID] = l >> 5;
    r[RF_LAYER_SYNC] = (l >> 4) & 1;
    r[RF_SID] = sid;
    r[RF_INTER_LAYER] = l & 1;
    if (flexible == 0) {
      if (i >= n) TRUNCATED();
      r[RF_TL0PICIDX] = d[i++];
    }
  }
  /* RFC 9628: a layer frame with P=0 is not inter-picture predicted; at SID 0 it is a key frame. */
  r[RF_KEY_FRAME] = (inter_pic == 0 && begin == 1 && sid == 0) ? 1 : 0;
  if (flexible == 1 && inter_pic == 1) {
    for (int k = 1;; k++) {
      if (i >= n) TRUNCATED();
      uint8_t pd = d[i++];
      if ((pd & 1) == 0) break;
      if (k == 3) {
        r[RF_PAYLOAD_STATUS] = PS_TOO_MANY_PDIFF;
        return;
      }
    }
  }
  if (b0 & 0x02) {
    if (i >= n) TRUNCATED();
    uint8_t ss = d[i++];
    int ns = (ss >> 5) + 1;
    r[RF_SPATIAL_LAYERS] = ns;
    if (ss & 0x10) {
      if (i + 4 * ns > n) TRUNCATED();
      const uint8_t *top = d + i + 4 * (ns - 1); /* the highest spatial layer's size */
      r[RF_WIDTH] = (top[0] << 8) | top[1];
      r[RF_HEIGHT] = (top[2] << 8) | top[3];
      i += 4 * ns;
    }
    if (ss & 0x08) {
      if (i >= n) TRUNCATED();
      int ng = d[i++];
      for (int g = 0; g < ng; g++) {
        if (i >= n) TRUNCATED();
        int rr = (d[i] >> 2) & 3;
        i += 1 + rr;
        if (i > n) TRUNCATED();
      }
    }
  }
  r[RF_DESCRIPTOR_LENGTH] = (int32_t)i;
  if (i >= n) r[RF_PAYLOAD_STATUS] = PS_NO_DATA;
}

static void h264(const uint8_t *d, uint32_t n, int32_t *r) {
  if (n == 0) return;
  uint8_t h = d[0];
  int type = h & 0x1f;
  r[RF_DESCRIPTOR_FLAGS] = h;
  r[RF_NAL_TYPE] = type;
  r[RF_NON_REFERENCE] = (h & 0x60) == 0 ? 1 : 0;
  if (type >= 1 && type <= 23) {
    r[RF_NAL_TYPES] = (int32_t)(1u << type);
    r[RF_NAL_COUNT] = 1;
    r[RF_START] = 1;
    r[RF_END] = 1;
    r[RF_DESCRIPTOR_LENGTH] = 1;
    r[RF_KEY_FRAME] = (type == 5 || type == 7) ? 1 : 0;
  } else if (type == 24) {
    /* STAP-A (RFC 6184 5.7.1): 16-bit size, NAL unit, repeated to the end of the payload. */
    uint32_t i = 1, mask = 0;
    int32_t count = 0;
    while (i < n) {
      if (i + 2 > n) {
        r[RF_PAYLOAD_STATUS] = PS_BAD_AGGREGATE;
        break;
      }
      uint32_t size = ((uint32_t)d[i] << 8) | d[i + 1];
      if (size == 0 || i + 2 + size > n) {
        r[RF_PAYLOAD_STATUS] = PS_BAD_AGGREGATE;
        break;
      }
      mask |= 1u << (d[i + 2] & 0x1f);
      count++;
      i += 2 + size;
    }
    if (count == 0) r[RF_PAYLOAD_STATUS] = PS_BAD_AGGREGATE;
    r[RF_NAL_TYPES] = (int32_t)mask;
    r[RF_NAL_COUNT] = count;
    r[RF_START] = 1;
    r[RF_END] = 1;
    r[RF_DESCRIPTOR_LENGTH] = 1;
    r[RF_KEY_FRAME] = (mask & 0xa0) != 0 ? 1 : 0; /* IDR (5) or SPS (7) */
  } else if (type == 28) {
    /* FU-A (RFC 6184 5.8): FU indicator, FU header S|E|R|type, fragment. */
    if (n < 2) TRUNCATED();
    uint8_t fu = d[1];
    int start = fu >> 7;
    int t = fu & 0x1f;
    r[RF_NAL_TYPES] = (int32_t)(1u << t);
    r[RF_NAL_COUNT] = 1;
    r[RF_START] = start;
    r[RF_END] = (fu >> 6) & 1;
    r[RF_DESCRIPTOR_LENGTH] = 2;
    r[RF_KEY_FRAME] = (start == 1 && (t == 5 || t == 7)) ? 1 : 0;
    if ((fu & 0xc0) == 0xc0) r[RF_PAYLOAD_STATUS] = PS_BAD_FRAGMENT;
  } else {
    r[RF_PAYLOAD_STATUS] = PS_UNSUPPORTED;
  }
}

static void rtx(const uint8_t *d, uint32_t n, int32_t *r) {
  if (n == 0) return; /* a padding-only probe */
  if (n < 2) TRUNCATED();
  r[RF_RTX_OSN] = (d[0] << 8) | d[1];
  r[RF_DESCRIPTOR_LENGTH] = 2;
}

static void extensions(const uint8_t *p, uint32_t i, uint32_t end, int two_byte, int32_t *r) {
  int32_t count = 0;
  int32_t status = EXT_OK;
  while (i < end) {
    uint32_t id = p[i];
    if (two_byte) {
      if (id == 0) { i++; continue; } /* padding */
      if (i + 2 > end) { status = EXT_ELEMENT_OVERRUN; break; }
      uint32_t len = p[i + 1];
      if (i + 2 + len > end) { status = EXT_ELEMENT_OVERRUN; break; }
      if (count == RTP_MAX_EXT) { status = EXT_TOO_MANY; break; }
      r[RF_EXT_0 + count] = (int32_t)((id << 24) | (len << 16) | (i + 2));
      count++;
      i += 2 + len;
    } else {
      uint32_t eid = id >> 4;
      if (eid == 0) { i++; continue; } /* padding */
      if (eid == 15) { status = EXT_RESERVED_ID; break; }
      uint32_t len = (id & 0x0f) + 1;
      if (i + 1 + len > end) { status = EXT_ELEMENT_OVERRUN; break; }
      if (count == RTP_MAX_EXT) { status = EXT_TOO_MANY; break; }
      r[RF_EXT_0 + count] = (int32_t)((eid << 24) | (len << 16) | (i + 1));
      count++;
      i += 1 + len;
    }
  }
  r[RF_EXT_COUNT] = count;
  r[RF_EXT_STATUS] = status;
}

static int32_t parse_one(const uint8_t *buf, size_t buf_len, uint64_t off, uint64_t len, int32_t *r, const uint8_t *codecs) {
  if (off + len > buf_len) return r[RF_STATUS] = ST_OUT_OF_RANGE;
  if (len > 0xffff) return r[RF_STATUS] = ST_TOO_LONG;
  if (len < 12) return r[RF_STATUS] = ST_TRUNCATED;
  const uint8_t *p = buf + off;
  uint8_t b0 = p[0];
  if ((b0 >> 6) != 2) return r[RF_STATUS] = ST_BAD_VERSION;
  uint32_t n = (uint32_t)len;
  uint32_t cc = b0 & 0x0f;
  uint32_t hlen = 12 + 4 * cc;
  if (hlen > n) return r[RF_STATUS] = ST_CSRC_OVERRUN;
  int32_t profile = -1, ext_offset = -1;
  uint32_t ext_length = 0;
  if (b0 & 0x10) {
    if (hlen + 4 > n) return r[RF_STATUS] = ST_EXT_OVERRUN;
    profile = (p[hlen] << 8) | p[hlen + 1];
    ext_length = (((uint32_t)p[hlen + 2] << 8) | p[hlen + 3]) * 4;
    ext_offset = (int32_t)(hlen + 4);
    if ((uint32_t)ext_offset + ext_length > n) return r[RF_STATUS] = ST_EXT_OVERRUN;
    hlen = (uint32_t)ext_offset + ext_length;
  }
  uint32_t payload_len = n - hlen;
  uint32_t pad_len = 0;
  if (b0 & 0x20) {
    pad_len = payload_len == 0 ? 0 : p[n - 1];
    if (pad_len == 0 || pad_len > payload_len) return r[RF_STATUS] = ST_BAD_PADDING;
    payload_len -= pad_len;
  }
  uint8_t b1 = p[1];
  int pt = b1 & 0x7f;
  r[RF_VERSION] = 2;
  r[RF_PADDING] = (b0 >> 5) & 1;
  r[RF_EXTENSION] = (b0 >> 4) & 1;
  r[RF_MARKER] = b1 >> 7;
  r[RF_PAYLOAD_TYPE] = pt;
  r[RF_SEQUENCE] = (p[2] << 8) | p[3];
  r[RF_TIMESTAMP] = (int32_t)(((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7]);
  r[RF_SSRC] = (int32_t)(((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11]);
  r[RF_CSRC_COUNT] = (int32_t)cc;
  r[RF_CSRC_OFFSET] = 12;
  r[RF_EXT_PROFILE] = profile;
  r[RF_EXT_OFFSET] = ext_offset;
  r[RF_EXT_LENGTH] = (int32_t)ext_length;
  r[RF_PAYLOAD_OFFSET] = (int32_t)hlen;
  r[RF_PAYLOAD_LENGTH] = (int32_t)payload_len;
  r[RF_PADDING_LENGTH] = (int32_t)pad_len;
  if (profile == 0xbede) {
    r[RF_EXT_FORM] = 1;
    extensions(p, (uint32_t)ext_offset, (uint32_t)ext_offset + ext_length, 0, r);
  } else if ((profile & 0xfff0) == 0x1000) {
    r[RF_EXT_FORM] = 2;
    extensions(p, (uint32_t)ext_offset, (uint32_t)ext_offset + ext_length, 1, r);
  } else if (profile != -1) {
    r[RF_EXT_FORM] = 3;
  }
  uint8_t codec = codecs[pt];
  r[RF_CODEC] = codec;
  const uint8_t *d = p + hlen;
  switch (codec) {
    case CODEC_OPUS: opus(d, payload_len, r); break;
    case CODEC_VP8: vp8(d, payload_len, r); break;
    case CODEC_VP9: vp9(d, payload_len, r); break;
    case CODEC_H264: h264(d, payload_len, r); break;
    case CODEC_RTX: rtx(d, payload_len, r); break;
    default: break;
  }
  return ST_OK;
}

uint32_t rtp_parse_batch(const uint8_t *buf, size_t buf_len, const uint32_t *offsets, const uint32_t *lengths, uint32_t count,
                         int32_t *out, const uint8_t *codecs) {
  uint32_t valid = 0;
  for (uint32_t i = 0; i < count; i++) {
    int32_t *r = out + (size_t)i * RTP_RECORD_SIZE;
    memcpy(r, g_template, sizeof g_template);
    if (parse_one(buf, buf_len, offsets[i], lengths[i], r, codecs) == ST_OK) valid++;
  }
  return valid;
}
