#!/usr/bin/env bash
# Four and sixteen queue pairs against testpmd's vhost backend (macswap, --rxq Q --txq Q):
# every queue pair must carry traffic both ways, every frame must come back
# intact, and vuser-pmd's per-queue counts must match testpmd's per-stream
# counts (testpmd forwards RX queue q to TX queue q).
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

for Q in 4 16; do
	N=${MQ_COUNT:-400000}
	tp_start "vh$Q" macswap "$Q"
	pmd_run --port "path=${TP_SOCK[vh$Q]},queues=$Q" --mode echo --count "$N" --pkt-size 64-1518 --cpu 0
	pmd_summary
	tp_stop "vh$Q"
	tp_load "vh$Q"
	tp_summary "vh$Q"
	check_echo "$N" "vh$Q"
	check_eq "JSON has one entry per queue pair" "${#J_QUEUES_RX[@]}" "$Q"
	check_eq "testpmd printed one stream per queue" "${S[streams]}" "$Q"
	for ((q = 0; q < Q; q++)); do
		check "queue $q: rx > 0 (rx ${J_QUEUES_RX[q]})" [ "${J_QUEUES_RX[q]}" -gt 0 ]
		check "queue $q: tx > 0 (tx ${J_QUEUES_TX[q]})" [ "${J_QUEUES_TX[q]}" -gt 0 ]
		# Echo probes that came back on a queue went through testpmd's stream too.
		check_eq "queue $q: testpmd RX-packets == vuser tx + probes back" \
			"${S[q${q}_rx_packets]}" $((J_QUEUES_TX[q] + J_QUEUES_PROBES[q]))
		check_eq "queue $q: testpmd TX-packets == vuser rx + probes back" \
			"${S[q${q}_tx_packets]}" $((J_QUEUES_RX[q] + J_QUEUES_PROBES[q]))
	done
	echo "ok: $Q queue pairs, rx=(${J_QUEUES_RX[*]}) tx=(${J_QUEUES_TX[*]})"
done
