#!/usr/bin/env bash
# Four queue pairs between a vuser port (echo) and a vuser vhost device
# (macswap): every queue pair carries traffic both ways, every frame comes
# back intact, and the vhost's per-queue counts match the port's exactly (the
# vhost returns each frame on the queue it came from), probe frames included.
. "$(dirname "$0")/lib.sh"
need_python
need_pmd
[ "$(nproc)" -ge 2 ] || skip "needs 2 cores, have $(nproc)"

Q=4
N=${MQ_COUNT:-400000}
vh_start vh ",queues=$Q" --mode macswap --cpu 1
pmd_run --port "path=${VH_SOCK[vh]},queues=$Q" --mode echo --count "$N" --pkt-size 64-1518 --cpu 0
pmd_summary
vh_stop vh
vh_summary
check_eq "port sent every frame" "${J[tx_packets]}" "$N"
check_eq "every frame verified" "${J[verified]}" "$N"
check_eq "lost == 0" "${J[lost]}" 0
check_eq "bad_payload == 0" "${J[bad_payload]}" 0
check_eq "port rx_errors == 0" "${J[rx_errors]}" 0
check_eq "port tx_errors == 0" "${J[tx_errors]}" 0
check_eq "port uses all $Q queue pairs" "${J[active_queues]}" "$Q"
check_eq "port JSON has one entry per queue pair" "${#J_QUEUES_RX[@]}" "$Q"
check_eq "vhost JSON has one entry per queue pair" "${#VJ_QUEUES_RX[@]}" "$Q"
check_eq "vhost dropped nothing" $((VJ[dropped] + VJ[rx_drops] + VJ[tx_drops])) 0
check_eq "vhost: with the frontend gone (not ready), bursts moved nothing (down_bursts_ok)" \
	"${VJ[down_bursts_ok]}" 1
check_eq "vhost rx_errors == 0" "${VJ[rx_errors]}" 0
check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
for ((q = 0; q < Q; q++)); do
	check "queue $q: port rx > 0 (rx ${J_QUEUES_RX[q]})" [ "${J_QUEUES_RX[q]}" -gt 0 ]
	check "queue $q: port tx > 0 (tx ${J_QUEUES_TX[q]})" [ "${J_QUEUES_TX[q]}" -gt 0 ]
	check_eq "queue $q: port rx == port tx (frames come back on their queue)" \
		"${J_QUEUES_RX[q]}" "${J_QUEUES_TX[q]}"
	pq=$((VJ_QUEUES_RX[q] - J_QUEUES_TX[q]))
	check "queue $q: vhost rx == port tx + the probes sent on it, >= 0 (got $pq)" [ "$pq" -ge 0 ]
	check_eq "queue $q: vhost tx == vhost rx" "${VJ_QUEUES_TX[q]}" "${VJ_QUEUES_RX[q]}"
	check_eq "queue $q: vhost tx == port rx + ${J_QUEUES_PROBES[q]} probes back on it" \
		"${VJ_QUEUES_TX[q]}" $((J_QUEUES_RX[q] + J_QUEUES_PROBES[q]))
done
check "at least one probe came back (${J[probes_back]})" [ "${J[probes_back]}" -ge 1 ]
check_eq "vhost rx_packets == port tx_packets + ${J[probes_sent]} probes sent" \
	"${VJ[rx_packets]}" $((N + J[probes_sent]))
check_eq "vhost tx_packets == port rx_packets + ${J[probes_back]} probes back" \
	"${VJ[tx_packets]}" $((N + J[probes_back]))
echo "ok: $Q queue pairs, port rx=(${J_QUEUES_RX[*]}) tx=(${J_QUEUES_TX[*]}), vhost rx=(${VJ_QUEUES_RX[*]})"
