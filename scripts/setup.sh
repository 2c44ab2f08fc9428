#!/usr/bin/env bash
# One command for a fresh machine of this project's kind (Debian bookworm, Node 20, root):
# apt packages, meson from bookworm-backports, npm dependencies, the mediasoup C++ worker
# (built once, cached outside the clone keyed by mediasoup version), then the TypeScript build.
# Fails loudly if anything native is missing.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
MS_VERSION=$(node -p "require('./package.json').dependencies.mediasoup")
CACHE=${AURALINK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/auralink}
# Our patches to the worker's source (native/mediasoup/patches, applied in name order): the
# cached binary is keyed by them too.
MS_PATCHES=$(ls "$ROOT"/native/mediasoup/patches/*.patch 2>/dev/null | sort || true)
PATCH_ID=$( (for p in $MS_PATCHES; do cat "$p"; done) | sha256sum | cut -c1-12)
WORKER_CACHE="$CACHE/mediasoup-worker-$MS_VERSION-$PATCH_ID-$(uname -m)"
WORKER_DEST="$ROOT/node_modules/mediasoup/worker/out/Release/mediasoup-worker"
log() { printf '\n[setup] %s\n' "$*"; }

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
# chromium: the real-browser end-to-end tests (playwright-core drives /usr/bin/chromium).
# coturn: its turnutils_uclient/turnutils_peer test the embedded TURN server; bench/turn runs it.
APT_PKGS="patch pkg-config ninja-build libssl-dev libuv1-dev libabsl-dev libsrtp2-dev libusrsctp-dev nlohmann-json3-dev chromium coturn"
missing=""
for p in $APT_PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  log "apt-get install$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# The worker is linked against the Debian libraries above; the cache is only valid while they exist.
worker_ok() { [ -x "$1" ] && { "$1" >/dev/null 2>&1; [ $? -eq 41 ]; }; }

if worker_ok "$WORKER_CACHE/mediasoup-worker"; then
  log "mediasoup worker $MS_VERSION from cache $WORKER_CACHE"
  MEDIASOUP_WORKER_BIN="$WORKER_CACHE/mediasoup-worker" npm install --foreground-scripts --no-audit --no-fund
  mkdir -p "$(dirname "$WORKER_DEST")"
  cp "$WORKER_CACHE/mediasoup-worker" "$WORKER_DEST"
else
  log "building mediasoup worker $MS_VERSION with $(echo $MS_PATCHES | wc -w) patch(es) (about 4 minutes on 2 cores)"
  bash native/mediasoup/fetch-meson.sh "$CACHE/meson"
  # Installed without its worker (a MEDIASOUP_WORKER_BIN makes mediasoup's postinstall skip
  # the build), then the worker source patched and built here.
  MEDIASOUP_WORKER_BIN=/nonexistent npm install --foreground-scripts --no-audit --no-fund
  MS_DIR="$ROOT/node_modules/mediasoup"
  for p in $MS_PATCHES; do
    if patch -p1 -d "$MS_DIR" -R -s -f --dry-run < "$p" >/dev/null 2>&1; then continue; fi  # already applied
    patch -p1 -d "$MS_DIR" -N -s < "$p" || { echo "[setup] FATAL: $p does not apply to mediasoup $MS_VERSION" >&2; exit 1; }
  done
  mkdir -p "$CACHE/pip-dummy"  # an existing PIP_DIR makes worker/Makefile skip its pip install
  (cd "$MS_DIR" && MESON_ARGS=--wrap-mode=nodownload MS_MESON_ROOT="$CACHE/meson" \
    MAKEFLAGS="MESON=$ROOT/native/mediasoup/ms-meson NINJA=/usr/bin/ninja PIP_DIR=$CACHE/pip-dummy" make -C worker)
  worker_ok "$WORKER_DEST" || { echo "[setup] FATAL: mediasoup worker was not built at $WORKER_DEST" >&2; exit 1; }
  mkdir -p "$WORKER_CACHE"
  cp "$WORKER_DEST" "$WORKER_CACHE/mediasoup-worker.tmp" && mv "$WORKER_CACHE/mediasoup-worker.tmp" "$WORKER_CACHE/mediasoup-worker"
  # The object files are no longer needed once the binary is out.
  rm -rf "$ROOT/node_modules/mediasoup/worker/out/Release/build" 2>/dev/null || true
fi

worker_ok "$WORKER_DEST" || { echo "[setup] FATAL: mediasoup worker missing or broken at $WORKER_DEST" >&2; exit 1; }
node -e "require('uWebSockets.js')" 2>/dev/null || node --input-type=module -e "await import('uWebSockets.js')" \
  || { echo "[setup] FATAL: uWebSockets.js native binary failed to load" >&2; exit 1; }

# The AIC RTP parser addon (native/rtp, N-API C). Optional: the server falls back to the
# TypeScript parser, so a failed build warns and setup goes on. Rebuilt only when a source
# is newer than the binary. npm's own node-gyp, against Node's installed headers (nodedir).
RTP_ADDON="$ROOT/native/rtp/build/Release/auralink_rtp.node"
if [ ! -f "$RTP_ADDON" ] || [ -n "$(find "$ROOT/native/rtp/src" "$ROOT/native/rtp/binding.gyp" -newer "$RTP_ADDON" 2>/dev/null)" ]; then
  log "building the RTP parser addon (native/rtp)"
  # No internet: node-gyp must not try to download headers. Point it at the installed ones
  # when npm has no nodedir configured.
  NODE_PREFIX=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  if [ "$(npm config get nodedir 2>/dev/null || true)" = "undefined" ] || [ -z "$(npm config get nodedir 2>/dev/null || true)" ]; then
    [ -f "$NODE_PREFIX/include/node/node_api.h" ] && export npm_config_nodedir="$NODE_PREFIX"
  fi
  if ! npm run build:native --silent >/tmp/auralink-rtp-addon-build.log 2>&1; then
    tail -n 20 /tmp/auralink-rtp-addon-build.log >&2 || true
    echo "[setup] WARNING: the RTP parser addon did not build (log: /tmp/auralink-rtp-addon-build.log); the TypeScript parser will be used" >&2
  fi
fi
if [ -f "$RTP_ADDON" ] && ! node -e "require('$RTP_ADDON')" 2>/dev/null; then
  echo "[setup] WARNING: $RTP_ADDON does not load; the TypeScript parser will be used" >&2
fi

log "compiling TypeScript"
npm run build --silent
log "done. Start: npm start -- --dev    Test: npm test"
