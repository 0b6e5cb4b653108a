#!/usr/bin/env bash
# The main job: a self-contained loopback. A vuser vhost device (vuser-pmd
# --vhost, macswap) and a vuser port (vuser-pmd --port, echo) meet on a
# socket in a temporary directory; the port sends frames of mixed sizes,
# each carrying a sequence number and a checksum, and verifies every one that
# comes back. A live line every second, a summary at the end.
# Usage: scripts/demo.sh [FRAMES [SIZES [QUEUES]]]   (5000000, 64-1518, 1)
# Needs only a C compiler and make (installed with apt-get when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

FRAMES=${1:-5000000}
SIZES=${2:-64-1518}
QUEUES=${3:-1}

if ! command -v cc >/dev/null || ! command -v make >/dev/null; then
	echo "installing the compiler and make"
	apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q build-essential
fi
make -s -j2 build/vuser-pmd

T=$(mktemp -d "${TMPDIR:-/tmp}/vuser-demo.XXXXXX")
VHOST_PID=
cleanup() {
	if [ -n "$VHOST_PID" ] && kill -0 "$VHOST_PID" 2>/dev/null; then
		kill -TERM "$VHOST_PID" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$VHOST_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$VHOST_PID" 2>/dev/null || true
	fi
	rm -rf "$T"
}
trap cleanup EXIT

# Each busy-polling side on its own core.
build/vuser-pmd --vhost "path=$T/vhost.sock,queues=$QUEUES" --mode macswap --cpu 1 \
	--wait-ready 30 --json >"$T/vhost.json" 2>"$T/vhost.err" &
VHOST_PID=$!
for _ in $(seq 100); do [ -S "$T/vhost.sock" ] && break; sleep 0.05; done
[ -S "$T/vhost.sock" ] || { cat "$T/vhost.err"; echo "the vhost device did not start"; exit 1; }

echo "vuser loopback: $FRAMES frames of $SIZES bytes over $QUEUES queue pair(s), $T/vhost.sock"
build/vuser-pmd --port "path=$T/vhost.sock,queues=$QUEUES" --mode echo --count "$FRAMES" \
	--pkt-size "$SIZES" --cpu 0 --stats 1 --json >"$T/port.json"

kill -TERM "$VHOST_PID"
wait "$VHOST_PID" || true
VHOST_PID=

field() { sed -E "s/.*\"$2\":([0-9.]+).*/\1/" "$1"; }
sent=$(field "$T/port.json" tx_packets)
verified=$(field "$T/port.json" verified)
lost=$(field "$T/port.json" lost)
bad=$(field "$T/port.json" bad_payload)
secs=$(field "$T/port.json" elapsed)
fwd=$(field "$T/vhost.json" tx_packets)
echo
echo "sent      $sent frames in $secs s ($(awk "BEGIN{printf \"%.3f\", $sent/$secs/1e6}") Mpps each way)"
echo "forwarded $fwd frames by the vuser vhost device (with the start-up probe)"
echo "verified  $verified"
echo "lost      $lost"
echo "corrupt   $bad"
if [ "$verified" = "$sent" ] && [ "$lost" = 0 ] && [ "$bad" = 0 ]; then
	echo "OK: every frame came back intact"
else
	echo "FAILED: not every frame came back intact"
	exit 1
fi
