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
# The same run then measures vuser's vhost device (vuser-pmd --vhost) and its
# port as receivers, against DPDK in the same place. The receiver differs
# between the two sides of each comparison, so these rates are read on the
# sender's side: the median of the sending testpmd's Tx-pps (frames its
# tx_burst got into the ring; a ring full because the receiver is slow
# holds it back), less the first and the last sample:
#
#   A  DPDK virtio_user txonly (fwd lcore 0) -> vuser vhost rxonly (--cpu 1)
#      vs DPDK virtio_user txonly -> DPDK vhost rxonly (the run above)
#   B  DPDK vhost txonly (fwd lcore 1) -> vuser port rxonly (--cpu 0)
#      vs DPDK vhost txonly -> DPDK virtio_user rxonly (fwd lcore 0)
#   C  vuser port txonly (--cpu 0) -> vuser vhost rxonly (--cpu 1), read from
#      the port's per-second live line (--stats 1), median less first and last,
#      vs the DPDK pair of A
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
	median_of "${S[rx_pps]}"
}

# median_of "SAMPLES": the same for any list of packets-per-second samples.
median_of() {
	python3 - "$1" <<'EOF'
import statistics, sys
s = [float(x) for x in sys.argv[1].split() if float(x) > 0]
if len(s) > 2:
    s = s[1:-1]
print("%.2f" % (statistics.median(s) / 1e6) if s else "nan")
EOF
}

# vuser-pmd's per-second tx rates (pps) from its --stats live lines.
pmd_tx_samples() {
	sed -n 's/.* tx *\([0-9.]*\) Mpps rx.*/\1/p' "$1" | awk '{ printf "%d ", $1 * 1e6 }'
}

ratio() {
	awk -v a="$1" -v b="$2" \
		'BEGIN { if (b + 0 > 0 && a != "nan") printf "%.2f", a / b; else print "n/a" }'
}

declare -A d_vuser=() d_dpdk=() vuser_mpps dpdk_mpps
declare -A a_vuser a_dpdk b_vuser b_dpdk c_vuser
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
	tp_load tx
	a_dpdk[$size]=$(median_of "${S[tx_pps]}")
	echo "   A, DPDK: virtio_user Tx-pps samples: ${S[tx_pps]}" >&2

	echo "== $size bytes: A, DPDK virtio_user txonly -> vuser vhost rxonly, ${DUR} s" >&2
	vh_start rx "" --mode rxonly --cpu 1 >&2
	tp_start_virtio tx "${VH_SOCK[rx]}" 1 --forward-mode=txonly --txpkts="$size"
	sleep "$DUR"
	tp_stop tx
	tp_load tx
	vh_stop rx
	a_vuser[$size]=$(median_of "${S[tx_pps]}")
	echo "   virtio_user Tx-pps samples: ${S[tx_pps]}; vuser vhost received ${VJ[rx_packets]} of its ${S[tx_packets]}" >&2

	echo "== $size bytes: B, DPDK vhost txonly -> vuser port rxonly, ${DUR} s" >&2
	tp_start vtx txonly 1 --txpkts="$size"
	pmd_run --port "path=${TP_SOCK[vtx]},queues=1" --mode rxonly --duration "$DUR" --cpu 0 >&2
	tp_stop vtx
	tp_load vtx
	b_vuser[$size]=$(median_of "${S[tx_pps]}")
	echo "   vhost Tx-pps samples: ${S[tx_pps]}; vuser port rx_pps ${J[rx_pps]}" >&2

	echo "== $size bytes: B, DPDK vhost txonly -> DPDK virtio_user rxonly, ${DUR} s" >&2
	tp_start vtx txonly 1 --txpkts="$size"
	tp_start_virtio vrx "${TP_SOCK[vtx]}" 1 --forward-mode=rxonly
	sleep "$DUR"
	tp_stop vrx
	tp_load vrx
	d_dpdk[$size]=$(median_of "${S[rx_pps]}")
	echo "   D, DPDK: virtio_user Rx-pps samples: ${S[rx_pps]}" >&2
	tp_stop vtx
	tp_load vtx
	b_dpdk[$size]=$(median_of "${S[tx_pps]}")
	echo "   vhost Tx-pps samples: ${S[tx_pps]}" >&2

	echo "== $size bytes: D, vuser vhost txonly -> DPDK virtio_user rxonly, ${DUR} s" >&2
	vh_start tx "" --mode txonly --pkt-size "$size" --cpu 1 >&2
	tp_start_virtio vrx "${VH_SOCK[tx]}" 1 --forward-mode=rxonly
	sleep "$DUR"
	tp_stop vrx
	tp_load vrx
	vh_stop tx
	d_vuser[$size]=$(median_of "${S[rx_pps]}")
	echo "   virtio_user Rx-pps samples: ${S[rx_pps]}" >&2

	echo "== $size bytes: C, vuser port txonly -> vuser vhost rxonly, ${DUR} s" >&2
	vh_start rx "" --mode rxonly --cpu 1 >&2
	pmd_run --port "path=${VH_SOCK[rx]},queues=1" --mode txonly --pkt-size "$size" \
		--duration "$DUR" --cpu 0 --stats 1 >&2
	vh_stop rx
	c_vuser[$size]=$(median_of "$(pmd_tx_samples "$PMD_ERR")")
	echo "   port tx samples: $(pmd_tx_samples "$PMD_ERR"); vhost received ${VJ[rx_packets]} of ${J[tx_packets]}" >&2
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

echo
echo "vuser's vhost device and port as receivers, 1 queue ($(nproc) cores; ${DUR} s each)."
echo "Mpps = median of the SENDER's per-second rate: the receivers differ, so the"
echo "sender (testpmd's Tx-pps; for C, vuser-pmd's live tx line) is the common reader."
echo
echo "| case | size | vuser Mpps | DPDK Mpps | ratio |"
echo "|------|-----:|-----------:|----------:|------:|"
for size in "${SIZES[@]}"; do
	printf '| A: DPDK virtio_user txonly -> vhost rxonly (vuser vhost vs DPDK vhost) | %s | %s | %s | %s |\n' \
		"$size" "${a_vuser[$size]}" "${a_dpdk[$size]}" "$(ratio "${a_vuser[$size]}" "${a_dpdk[$size]}")"
	printf '| B: DPDK vhost txonly -> port rxonly (vuser port vs DPDK virtio_user) | %s | %s | %s | %s |\n' \
		"$size" "${b_vuser[$size]}" "${b_dpdk[$size]}" "$(ratio "${b_vuser[$size]}" "${b_dpdk[$size]}")"
	printf '| C: port txonly -> vhost rxonly (vuser -> vuser vs DPDK -> DPDK) | %s | %s | %s | %s |\n' \
		"$size" "${c_vuser[$size]}" "${a_dpdk[$size]}" "$(ratio "${c_vuser[$size]}" "${a_dpdk[$size]}")"
	printf '| D: vhost txonly -> DPDK virtio_user rxonly (vuser vhost vs DPDK vhost; read by the receiver) | %s | %s | %s | %s |\n' \
		"$size" "${d_vuser[$size]}" "${d_dpdk[$size]}" "$(ratio "${d_vuser[$size]}" "${d_dpdk[$size]}")"
done
