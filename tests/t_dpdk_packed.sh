#!/usr/bin/env bash
# Packed rings (packed_vq=1) against testpmd's vhost backend (macswap): the
# echo runs of the split tests again, every frame verified and the counts
# matching testpmd's: in_order x mrg_rxbuf at queue size 256, sizes 1024 and
# 1025 (packed rings need no power of two), four queue pairs, and 9000-byte
# frames through mergeable buffers. Each run must report that packed rings
# were negotiated.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${PACKED_COUNT:-1000000}
run() {
	local name=$1 queues=$2 count=$3 sizes=$4 extra=$5
	echo "== $extra, $count frames of $sizes"
	tp_start "$name" macswap "$queues"
	pmd_run --port "path=${TP_SOCK[$name]},queues=$queues,packed_vq=1,$extra" \
		--mode echo --count "$count" --pkt-size "$sizes" --cpu 0
	pmd_summary
	tp_stop "$name"
	tp_load "$name"
	check_echo "$count" "$name"
	check_eq "packed rings negotiated" "${J[packed]}" 1
}

i=0
for in_order in 0 1; do
	for mrg in 0 1; do
		i=$((i + 1))
		run "p$i" 1 "$N" 64-1518 "in_order=$in_order,mrg_rxbuf=$mrg"
	done
done
run qs1024 1 $((N / 4)) 64-1518 "queue_size=1024"
run qs1025 1 $((N / 4)) 64-1518 "queue_size=1025,in_order=0"
run qs255 1 $((N / 4)) 64-1518 "queue_size=255"
run mq 4 $((N / 4)) 64-1518 "mrg_rxbuf=1"
for ((q = 0; q < 4; q++)); do
	check "queue $q received traffic" [ "${J_QUEUES_RX[q]}" -gt 0 ]
	check "queue $q sent traffic" [ "${J_QUEUES_TX[q]}" -gt 0 ]
done
run jumbo 1 20000 9000 "mrg_rxbuf=1"
check_eq "jumbo: tx_bytes == 20000 * 9000" "${J[tx_bytes]}" $((20000 * 9000))
check_eq "jumbo: rx_bytes == 20000 * 9000" "${J[rx_bytes]}" $((20000 * 9000))
echo "ok: packed rings, every frame verified"
