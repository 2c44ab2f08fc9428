/* Memory-safety check of parse.c under AddressSanitizer + UBSan (sanitize.sh builds and runs
 * it). Every packet gets its own exact-size heap block, so reading one byte past a packet is
 * an ASan error, and is parsed once per codec (every payload through every parser), then
 * mutated and truncated many times with a fixed-seed PRNG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/parse.h"

static uint32_t rng_state = 20261201;
static uint32_t rnd(void) { /* xorshift32 */
  rng_state ^= rng_state << 13; rng_state ^= rng_state >> 17; rng_state ^= rng_state << 5;
  return rng_state;
}

static unsigned long parsed = 0;

static void parse_all_codecs(const uint8_t *src, uint32_t len) {
  uint8_t *p = malloc(len ? len : 1);
  memcpy(p, src, len);
  int32_t rec[RTP_RECORD_SIZE];
  uint8_t codecs[128];
  uint32_t off = 0;
  for (int c = 0; c <= CODEC_RTX; c++) {
    memset(codecs, c, sizeof codecs);
    rtp_parse_batch(p, len, &off, &len, 1, rec, codecs);
    parsed++;
  }
  free(p);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: %s packets.rtpc [mutations-per-packet]\n", argv[0]); return 2; }
  int mutations = argc > 2 ? atoi(argv[2]) : 20;
  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  uint8_t head[8];
  if (fread(head, 1, 8, f) != 8 || memcmp(head, "RTPC", 4) != 0) { fprintf(stderr, "not an RTPC file\n"); return 2; }
  uint32_t count = (uint32_t)head[4] << 24 | head[5] << 16 | head[6] << 8 | head[7];
  uint8_t pkt[65536], mut[65536];
  for (uint32_t i = 0; i < count; i++) {
    uint8_t l2[2];
    if (fread(l2, 1, 2, f) != 2) { fprintf(stderr, "short file\n"); return 2; }
    uint32_t len = (uint32_t)l2[0] << 8 | l2[1];
    if (fread(pkt, 1, len, f) != len) { fprintf(stderr, "short file\n"); return 2; }
    parse_all_codecs(pkt, len);
    for (uint32_t cut = len > 40 ? len - 40 : 0; cut < len; cut++) parse_all_codecs(pkt, cut);
    for (int m = 0; m < mutations; m++) {
      memcpy(mut, pkt, len);
      uint32_t n = len;
      for (int k = 0, ops = 1 + rnd() % 4; k < ops && n; k++) {
        uint32_t front = n < 48 ? n : 48;
        switch (rnd() % 3) {
          case 0: mut[rnd() % front] ^= (uint8_t)(1u << (rnd() % 8)); break;
          case 1: mut[rnd() % n] = (uint8_t)rnd(); break;
          default: n = rnd() % (n + 1);
        }
      }
      parse_all_codecs(mut, n);
    }
  }
  fclose(f);
  printf("sanitize: %u packets, %lu parses, no sanitizer report\n", count, parsed);
  return 0;
}
