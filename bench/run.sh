#!/usr/bin/env bash
# Transmit rate of a vuser port against DPDK's own virtio_user, one queue,
# into the same receiver: DPDK testpmd's vhost backend in rxonly mode.
# Measures, does not gate. Both rates are read by the same reader: the vhost
# testpmd's periodic Rx-pps (one sample a second, timed by testpmd itself);
# the figure is the median of the samples taken while traffic ran, less the
# first and the last (partial seconds).
#
#   vuser:  vuser-pmd --mode txonly --cpu 0  -> vhost testpmd (main lcore 0, fwd lcore 1)
#   DPDK:   testpmd virtio_user txonly (main lcore 1, fwd lcore 0) -> the same
#
# Usage: bench/run.sh [SECONDS] [SIZE...]      (default: 5 s, 64 and 1518 bytes)
# Needs `make` first (uses build/vuser-pmd, or $VUSER_BUILD/vuser-pmd).
set -u
here=$(cd "$(dirname "$0")" && pwd)
export VUSER_ROOT=${VUSER_ROOT:-$(cd "$here/.." && pwd)}
# shellcheck source=../tests/lib.sh
. "$VUSER_ROOT/tests/lib.sh"
need_testpmd
need_pmd

DUR=${1:-5}
shift $(($# > 0 ? 1 : 0))
SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(64 1518)

# Median of the nonzero Rx-pps samples in S[rx_pps], less the first and last.
median_mpps() {
	python3 - "${S[rx_pps]}" <<'EOF'
import statistics, sys
s = [int(x) for x in sys.argv[1].split() if int(x) > 0]
if len(s) > 2:
    s = s[1:-1]
print("%.2f" % (statistics.median(s) / 1e6) if s else "nan")
EOF
}

declare -A vuser_mpps dpdk_mpps
for size in "${SIZES[@]}"; do
	echo "== $size bytes: vuser-pmd txonly, ${DUR} s" >&2
	tp_start rx rxonly 1
	pmd_run --port "path=${TP_SOCK[rx]},queues=1" --mode txonly --pkt-size "$size" \
		--duration "$DUR" --cpu 0 >&2
	tp_stop rx
	tp_load rx
	vuser_mpps[$size]=$(median_mpps)
	echo "   vhost Rx-pps samples: ${S[rx_pps]}; vuser-pmd's own tx_pps ${J[tx_pps]}" >&2

	echo "== $size bytes: DPDK virtio_user txonly, ${DUR} s" >&2
	tp_start rx rxonly 1
	tp_start_virtio tx "${TP_SOCK[rx]}" 1 --forward-mode=txonly --txpkts="$size"
	sleep "$DUR"
	tp_stop tx
	tp_stop rx
	tp_load rx
	dpdk_mpps[$size]=$(median_mpps)
	echo "   vhost Rx-pps samples: ${S[rx_pps]}" >&2
done

echo
echo "Transmit, 1 queue, into DPDK 22.11 vhost rxonly ($(nproc) cores; ${DUR} s each; Mpps = median of testpmd's Rx-pps)"
echo
echo "| size | vuser Mpps | DPDK Mpps | ratio |"
echo "|-----:|-----------:|----------:|------:|"
for size in "${SIZES[@]}"; do
	ratio=$(awk -v a="${vuser_mpps[$size]}" -v b="${dpdk_mpps[$size]}" \
		'BEGIN { if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else print "n/a" }')
	printf '| %s | %s | %s | %s |\n' "$size" "${vuser_mpps[$size]}" "${dpdk_mpps[$size]}" "$ratio"
done
