#ifndef AURALINK_RTP_PARSE_H
#define AURALINK_RTP_PARSE_H
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* Parses packets buf[offsets[i], offsets[i] + lengths[i]) for i < count into out, RTP_RECORD_SIZE
 * int32 each. The caller has checked that offsets/lengths hold count entries, out holds count
 * records and codecs 128 entries; packet bytes are never trusted. Returns the packets with a
 * valid RTP header. */
uint32_t rtp_parse_batch(const uint8_t *buf, size_t buf_len, const uint32_t *offsets, const uint32_t *lengths, uint32_t count,
                         int32_t *out, const uint8_t *codecs);
#endif
