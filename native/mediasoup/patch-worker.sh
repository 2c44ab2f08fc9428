#!/bin/sh
# Usage: patch-worker.sh <mediasoup>/worker — run by ms-meson before `meson setup`.
# Deliberate changes to the mediasoup 3.12 worker source, each with its reason. Idempotent;
# fails loudly when the source no longer has what a change expects (a new mediasoup version
# must be looked at again). setup.sh keys its worker cache on this file's hash.
set -e
W="$1"

# 1. A simulcast consumer does not switch to a spatial layer whose stream has been active for
#    less than StreamMinActiveMs (2000 ms upstream), a guard against publisher layers that come
#    and go. AuraLink's dynacast turns a publisher's unneeded layers off and back on when a
#    viewer needs them (after its own hold-down), so the guard made every enlarged tile wait
#    2 s and more after its layer was back (Chromium: layer back after 0.25 s, switch after
#    2.3 s; the switch also waits for the transport's next bitrate event, once a second when
#    steady, which the AIC controller brings forward: aicRoom.ts). 250 ms still passes over a
#    layer that flickers.
F="$W/src/RTC/SimulcastConsumer.cpp"
if ! grep -q 'StreamMinActiveMs{ 250u }' "$F"; then
  grep -Eq 'StreamMinActiveMs\{ [0-9]+u \}' "$F" || { echo "patch-worker: StreamMinActiveMs not found in $F" >&2; exit 1; }
  sed -Ei 's/StreamMinActiveMs\{ [0-9]+u \}/StreamMinActiveMs{ 250u }/' "$F"
fi
