#!/usr/bin/env bash
# mediasoup 3.12's meson.build needs meson >= 1.1; bookworm ships 1.0.1. Take meson from
# bookworm-backports and unpack it into $1 (sources.list untouched, nothing installed system-wide).
set -euo pipefail
DEST=$1
[ -x "$DEST/usr/bin/meson" ] && exit 0
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -n1 || true)
[ -n "$MIRROR" ] || MIRROR=$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
mkdir -p "$T/lists/partial" "$T/cache/archives/partial"
echo "deb $MIRROR bookworm-backports main" > "$T/sources.list"
O="-o Dir::Etc::sourcelist=$T/sources.list -o Dir::Etc::sourceparts=/nonexistent -o Dir::State::Lists=$T/lists -o Dir::Cache=$T/cache"
apt-get $O update -qq
(cd "$T" && apt-get $O download -qq meson/bookworm-backports)
mkdir -p "$DEST.tmp" && dpkg -x "$T"/meson_*.deb "$DEST.tmp" && rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "meson $(PYTHONPATH=$DEST/usr/lib/python3/dist-packages python3 $DEST/usr/bin/meson --version) unpacked to $DEST"
