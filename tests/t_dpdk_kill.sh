#!/usr/bin/env bash
# The backend dies mid-run (kill -9 testpmd): vuser-pmd must not crash, must
# notice the link going down, stop soon after and report "link":0 with exit 0.
# With the link down, bursts must move nothing (vuser-pmd tries and reports
# "down_bursts_ok"). Done for echo (rx and tx busy) and txonly.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

DURATION=30
for mode in echo txonly; do
	echo "== $mode"
	case $mode in
	echo) tp_start vh macswap 1 ;;
	txonly) tp_start vh rxonly 1 ;;
	esac
	pmd_bg --port "path=${TP_SOCK[vh]},queues=1" --mode "$mode" --pkt-size 64-1518 \
		--duration "$DURATION" --cpu 0 --stats 1
	sleep 3
	check "vuser-pmd ($mode) still running 3 s into a ${DURATION} s run" alive "$PMD_PID"
	tp_kill9 vh
	t_kill=$SECONDS
	# It should notice within a fraction of a second; allow 10 s.
	pmd_wait 10
	took=$((SECONDS - t_kill))
	pmd_summary
	echo "vuser-pmd exited ${took} s after the kill"
	check_eq "$mode: link reported down" "${J[link]}" 0
	check "$mode: it had sent frames before the kill" [ "${J[tx_packets]}" -gt 0 ]
	if [ "$mode" = echo ]; then
		check "echo: frames came back before the kill" [ "${J[verified]}" -gt 0 ]
		check_eq "echo: bad_payload == 0" "${J[bad_payload]}" 0
		check_eq "echo: verified == tx_packets - lost" "${J[verified]}" $((J[tx_packets] - J[lost]))
	fi
	check_eq "$mode: rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "$mode: tx_errors == 0" "${J[tx_errors]}" 0
	if [ -n "${J[down_bursts_ok]:-}" ]; then
		check_eq "$mode: bursts with the link down moved nothing" "${J[down_bursts_ok]}" 1
	fi
	check "$mode: said why it stopped" grep -qi 'link down' "$PMD_ERR"
done
echo "ok: link loss seen and reported in both modes"
