#!/usr/bin/env bash
# vuser against itself with packed rings: a vuser port (packed_vq=1, echo)
# through a vuser vhost device (macswap). Every in_order x mrg_rxbuf pair
# with 64..1518-byte frames, queue sizes 1024 and 1025 (no power of two),
# four queue pairs, and 9000-byte frames through mergeable buffers; every
# frame must come back intact, both sides must report packed rings, and the
# vhost's counts must equal the port's plus the probe frames.
. "$(dirname "$0")/lib.sh"
need_python
need_pmd
[ "$(nproc)" -ge 2 ] || skip "needs 2 cores, have $(nproc)"

N=${PACKED_COUNT:-1000000}

# run LABEL QUEUES COUNT SIZES PORT-EXTRA
run() {
	local label=$1 q=$2 count=$3 sizes=$4 extra=$5
	echo "== $label: $count frames of $sizes bytes"
	vh_start vh ",queues=$q" --mode macswap --cpu 1
	pmd_run --port "path=${VH_SOCK[vh]},queues=$q,packed_vq=1$extra" \
		--mode echo --count "$count" --pkt-size "$sizes" --cpu 0
	pmd_summary
	vh_stop vh
	vh_summary
	check_eq "port: packed rings negotiated" "${J[packed]}" 1
	check_eq "vhost: packed rings negotiated" "${VJ[packed]}" 1
	check_eq "every frame verified" "${J[verified]}" "$count"
	check_eq "lost == 0" "${J[lost]}" 0
	check_eq "bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "port rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "port tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "port rx_drops == 0" "${J[rx_drops]}" 0
	local p=${J[probes_sent]:?no probes_sent in the port JSON}
	check_eq "vhost rx_packets == port tx_packets + $p probes sent" \
		"${VJ[rx_packets]}" $((J[tx_packets] + p))
	check_eq "vhost tx_packets == port rx_packets + ${J[probes_back]} probes back" \
		"${VJ[tx_packets]}" $((J[rx_packets] + J[probes_back]))
	check_eq "vhost dropped nothing" "${VJ[dropped]}" 0
	check_eq "vhost rx_errors == 0" "${VJ[rx_errors]}" 0
	check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
	if [ "$q" -gt 1 ]; then
		local i
		for ((i = 0; i < q; i++)); do
			check "queue $i: port rx > 0 (${J_QUEUES_RX[i]})" [ "${J_QUEUES_RX[i]}" -gt 0 ]
			check "queue $i: vhost rx > 0 (${VJ_QUEUES_RX[i]})" [ "${VJ_QUEUES_RX[i]}" -gt 0 ]
		done
	fi
}

for in_order in 0 1; do
	for mrg in 0 1; do
		run "in_order=$in_order mrg_rxbuf=$mrg" 1 "$N" 64-1518 ",in_order=$in_order,mrg_rxbuf=$mrg"
	done
done
run "queue_size=1024" 1 $((N / 4)) 64-1518 ",queue_size=1024"
run "queue_size=1025" 1 $((N / 4)) 64-1518 ",queue_size=1025,in_order=0"
run "four queue pairs" 4 $((N / 4)) 64-1518 ""
run "9000-byte frames" 1 20000 9000 ",mrg_rxbuf=1"
check_eq "jumbo: rx_bytes == 20000 * 9000" "${J[rx_bytes]}" $((20000 * 9000))
echo "ok: vuser port <-> vuser vhost with packed rings, every frame verified"
