#!/usr/bin/env bash
# Runs native/rtp/src/parse.c under AddressSanitizer + UBSan on the test corpus, the fuzz set
# of test/rtpParser.test.ts, their truncations and more seeded mutations. By hand (and
# before changing parse.c): bash native/rtp/test/sanitize.sh [mutations-per-packet]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cd "$ROOT"
[ -f dist/test/rtpFuzz.js ] || npm run build --silent
node --input-type=module -e "
import { writeFileSync } from 'node:fs';
import { corpusPackets, syntheticPackets } from '$ROOT/dist/test/rtpCorpus.js';
import { fuzzPackets } from '$ROOT/dist/test/rtpFuzz.js';
const c = corpusPackets(), s = syntheticPackets();
const all = [...c, ...s, ...fuzzPackets(20261201, 6000, c), ...fuzzPackets(20261202, 6000, s)];
const parts = [Buffer.from('RTPC'), Buffer.alloc(4)];
parts[1].writeUInt32BE(all.length);
for (const p of all) { const l = Buffer.alloc(2); l.writeUInt16BE(p.length); parts.push(l, p); }
writeFileSync('$OUT/packets.rtpc', Buffer.concat(parts));
"
gcc -std=gnu11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -Wall -Wextra \
  -o "$OUT/sanitize" native/rtp/test/sanitize.c native/rtp/src/parse.c
"$OUT/sanitize" "$OUT/packets.rtpc" "${1:-20}"
