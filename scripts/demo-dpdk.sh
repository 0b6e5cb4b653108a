#!/usr/bin/env bash
# Demo: a vuser port talking to DPDK's vhost-user backend.
#
# Starts DPDK testpmd (22.11, Debian's dpdk-dev) as a vhost-user backend that
# sends every frame back with its MAC addresses swapped, then runs vuser-pmd in
# echo mode: it sends frames of mixed sizes, each carrying a sequence number
# and a payload checksum, and checks every frame that comes back. A progress
# line is printed every second; a summary at the end. testpmd is stopped and
# everything removed on exit.
#
# Usage: scripts/demo-dpdk.sh [FRAMES [SIZE|MIN-MAX [QUEUES]]]
#        (default: 2000000 frames, 64-1518 bytes, 1 queue pair)
# Needs: `make` (build/vuser-pmd) and dpdk-testpmd (apt-get install dpdk-dev),
# 2 cores (testpmd forwards on core 1, vuser-pmd runs on core 0).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export VUSER_ROOT=${VUSER_ROOT:-$(cd "$here/.." && pwd)}
export VUSER_BUILD=${VUSER_BUILD:-$VUSER_ROOT/build}
COUNT=${1:-2000000}
SIZES=${2:-64-1518}
QUEUES=${3:-1}

if ! command -v "${TESTPMD:-dpdk-testpmd}" >/dev/null 2>&1; then
	echo "demo: dpdk-testpmd not found: apt-get install dpdk-dev librte-net-vhost23" >&2
	exit 1
fi
if [ ! -x "$VUSER_BUILD/vuser-pmd" ]; then
	echo "demo: $VUSER_BUILD/vuser-pmd not found: run make first" >&2
	exit 1
fi
# shellcheck source=../tests/lib.sh
. "$VUSER_ROOT/tests/lib.sh"
need_python

echo "Starting DPDK testpmd as a vhost-user backend (macswap, $QUEUES queue pair(s)) ..."
tp_start vhost macswap "$QUEUES"
echo "  pid ${TP_PID[vhost]}, socket ${TP_SOCK[vhost]}"
echo
echo "Echoing $COUNT frames of $SIZES bytes through it (vuser-pmd on core 0):"
PMD_OUT=$T/demo.json PMD_ERR=
"$PMD" --port "path=${TP_SOCK[vhost]},queues=$QUEUES" --mode echo --count "$COUNT" \
	--pkt-size "$SIZES" --cpu 0 --stats 1 --json >"$PMD_OUT"
PMD_RC=$?
[ "$PMD_RC" -eq 0 ] || fail "vuser-pmd exited $PMD_RC"
_pmd_parse

echo
echo "Stopping testpmd (pid ${TP_PID[vhost]}) ..."
tp_stop vhost
tp_load vhost any

rate() { awk -v p="$1" 'BEGIN { printf "%.3f Mpps", p / 1e6 }'; }
gbps() {
	awk -v b="${1:-}" -v t="${J[elapsed]:-0}" \
		'BEGIN { if (b != "" && t > 0) printf ", %.2f Gbit/s", b * 8 / t / 1e9 }'
}

echo
echo "Summary"
printf '  %-22s %s\n' "frames sent" "${J[tx_packets]} ($SIZES bytes, $QUEUES queue pair(s))"
printf '  %-22s %s\n' "frames received" "${J[rx_packets]}"
printf '  %-22s %s\n' "verified intact" "${J[verified]}"
printf '  %-22s %s\n' "lost" "${J[lost]}"
printf '  %-22s %s\n' "bad payload" "${J[bad_payload]}"
printf '  %-22s %s\n' "tx rate" "$(rate "${J[tx_pps]}")$(gbps "${J[tx_bytes]:-}")"
printf '  %-22s %s\n' "rx rate" "$(rate "${J[rx_pps]}")$(gbps "${J[rx_bytes]:-}")"
[ -z "${J[elapsed]:-}" ] || printf '  %-22s %s s\n' "elapsed" "${J[elapsed]}"
printf '  %-22s %s\n' "port errors" "rx ${J[rx_errors]}, tx ${J[tx_errors]}, rx drops ${J[rx_drops]}"
if [ "${S[final]}" = 1 ]; then
	printf '  %-22s %s\n' "testpmd forwarded" \
		"received ${S[rx_packets]}, sent ${S[tx_packets]}, dropped $(tp_drops)"
fi
echo
if [ "${J[verified]}" -eq "$COUNT" ] && [ "${J[bad_payload]}" -eq 0 ]; then
	echo "OK: every frame came back intact."
else
	echo "NOT OK: $((COUNT - J[verified])) of $COUNT frames did not come back intact."
	exit 1
fi
