#!/usr/bin/env bash
# The backend dies mid-run (kill -9 testpmd): vuser-pmd must not crash and
# must notice the link going down. With reconnect=0 the port stays down, so
# vuser-pmd stops soon after and reports "link":0 with exit 0; with the
# default (reconnect=1) it keeps running, link down, until told to stop.
# With the link down, bursts must move nothing (vuser-pmd tries and reports
# "down_bursts_ok"). Done for echo (rx and tx busy) and txonly.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

DURATION=30
for mode in echo txonly; do
	echo "== $mode, reconnect=0"
	case $mode in
	echo) tp_start vh macswap 1 ;;
	txonly) tp_start vh rxonly 1 ;;
	esac
	pmd_bg --port "path=${TP_SOCK[vh]},queues=1,reconnect=0" --mode "$mode" --pkt-size 64-1518 \
		--duration "$DURATION" --cpu 0 --stats 1
	sleep 1
	check "vuser-pmd ($mode) still running 1 s into a ${DURATION} s run" alive "$PMD_PID"
	tp_kill9 vh
	t_kill=$SECONDS
	# It should notice within a fraction of a second; allow 10 s.
	pmd_wait 10
	took=$((SECONDS - t_kill))
	pmd_summary
	echo "vuser-pmd exited ${took} s after the kill"
	check_eq "$mode: link reported down" "${J[link]}" 0
	check_eq "$mode: one link change (down)" "${J[link_changes]}" 1
	check "$mode: it had sent frames before the kill" [ "${J[tx_packets]}" -gt 0 ]
	if [ "$mode" = echo ]; then
		check "echo: frames came back before the kill" [ "${J[verified]}" -gt 0 ]
		check_eq "echo: bad_payload == 0" "${J[bad_payload]}" 0
		check_eq "echo: verified == tx_packets - lost" "${J[verified]}" $((J[tx_packets] - J[lost]))
		check_eq "echo: every lost frame was in flight at the kill" "${J[lost]}" "${J[lost_link_down]}"
	fi
	check_eq "$mode: rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "$mode: tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "$mode: bursts with the link down moved nothing" "${J[down_bursts_ok]}" 1
	check "$mode: said why it stopped" grep -qi 'link down' "$PMD_ERR"
done

echo "== echo, reconnect=1 (default): the run outlives its backend"
tp_start vh2 macswap 1
pmd_bg --port "path=${TP_SOCK[vh2]},queues=1" --mode echo --pkt-size 64-1518 \
	--duration 120 --cpu 0 --stats 1
sleep 1
check "vuser-pmd still running 1 s in" alive "$PMD_PID"
tp_kill9 vh2
wait_until 10 grep -q '^vuser-pmd: link down' "$PMD_ERR" ||
	fail "vuser-pmd did not report the link down within 10 s"
# Retrying every 2 s at most, it must still be there well after the kill.
sleep 2
check "vuser-pmd keeps running with the backend gone" alive "$PMD_PID"
kill -TERM "$PMD_PID"
pmd_wait 10
pmd_summary
check_eq "link reported down" "${J[link]}" 0
check_eq "one link change (down)" "${J[link_changes]}" 1
check_eq "bad_payload == 0" "${J[bad_payload]}" 0
check_eq "bursts with the link down moved nothing" "${J[down_bursts_ok]}" 1
echo "ok: link loss seen and reported in both modes, with and without reconnect"
