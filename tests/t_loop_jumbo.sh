#!/usr/bin/env bash
# 9000-byte frames between a vuser port (echo) and a vuser vhost device
# (macswap) with mergeable rx buffers: the port sends each frame as a chain
# of 2 KiB segments, the vhost gathers it from the descriptor chain and
# scatters it back over several mergeable rx buffers, and every byte must
# survive. Done for the port's in_order 0 and 1.
. "$(dirname "$0")/lib.sh"
need_python
need_pmd
[ "$(nproc)" -ge 2 ] || skip "needs 2 cores, have $(nproc)"

N=${JUMBO_COUNT:-50000}
SIZE=9000
for in_order in 0 1; do
	echo "== in_order=$in_order mrg_rxbuf=1, $N frames of $SIZE bytes"
	vh_start vh ",mrg_rxbuf=1" --mode macswap --cpu 1
	pmd_run --port "path=${VH_SOCK[vh]},queues=1,mrg_rxbuf=1,in_order=$in_order" \
		--mode echo --count "$N" --pkt-size "$SIZE" --cpu 0
	pmd_summary
	vh_stop vh
	vh_summary
	check_eq "port sent every frame" "${J[tx_packets]}" "$N"
	check_eq "every frame verified" "${J[verified]}" "$N"
	check_eq "lost == 0" "${J[lost]}" 0
	check_eq "bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "port rx_packets == $N" "${J[rx_packets]}" "$N"
	check_eq "port tx_bytes == $N * $SIZE" "${J[tx_bytes]}" $((N * SIZE))
	check_eq "port rx_bytes == $N * $SIZE" "${J[rx_bytes]}" $((N * SIZE))
	check_eq "port rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "port tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "port rx_drops == 0" "${J[rx_drops]}" 0
	p=${J[probes_sent]:?no probes_sent in the port JSON}
	check "at least one probe came back (${J[probes_back]})" [ "${J[probes_back]}" -ge 1 ]
	check_eq "vhost rx_packets == $N + $p probes sent" "${VJ[rx_packets]}" $((N + p))
	check_eq "vhost tx_packets == $N + ${J[probes_back]} probes back" "${VJ[tx_packets]}" \
		$((N + J[probes_back]))
	check_eq "vhost tx_packets == vhost rx_packets" "${VJ[tx_packets]}" "${VJ[rx_packets]}"
	check_eq "vhost rx_bytes == $N * $SIZE + $p probes of 60 bytes" "${VJ[rx_bytes]}" $((N * SIZE + 60 * p))
	check_eq "vhost tx_bytes == vhost rx_bytes" "${VJ[tx_bytes]}" "${VJ[rx_bytes]}"
	check_eq "vhost dropped nothing" $((VJ[dropped] + VJ[rx_drops] + VJ[tx_drops])) 0
	check_eq "vhost: with the frontend gone (not ready), bursts moved nothing (down_bursts_ok)" \
		"${VJ[down_bursts_ok]}" 1
	check_eq "vhost rx_errors == 0" "${VJ[rx_errors]}" 0
	check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
done
echo "ok: $N frames of $SIZE bytes each way, in_order 0 and 1, all verified"
