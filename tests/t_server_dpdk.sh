#!/usr/bin/env bash
# A vuser port that listens (server=1,queues=2) and DPDK testpmd's vhost PMD
# that connects to it (client=1, macswap), the DTS loopback_virtio_user_server_mode
# plan: testpmd is killed (SIGKILL and SIGTERM in turn) and relaunched, 20
# times with split rings and 20 with packed rings (packed_vq=1). One vuser-pmd
# runs through all of it, echo mode, frames of 64..8000 bytes (chained on the
# way out, merged receive buffers on the way back: every size of the range
# goes by in each session). Each time the link must go down, come back with
# the next testpmd, and traffic must resume on both queues; every frame that
# comes back is verified; the frames lost are exactly those in flight when a
# testpmd died. vuser-pmd's fds and RSS end where they began.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

ROUNDS=${SERVER_ROUNDS:-20}
QUEUES=2
# Frames each queue must return in a session before its testpmd is killed:
# with two queues, more than one walk of the 7937 sizes in 64..8000.
MIN=${SERVER_MIN:-4000}
# RSS may move a little: the arena and pool are all touched in the first
# session (so the second is the baseline), but echo's bitmap of sequence
# numbers in flight (512 KiB) is touched page by page as the numbers grow,
# and malloc keeps what it likes. A sanitized build also keeps freed blocks
# in ASan's quarantine, resident, for a while.
RSS_SLACK=2048
[[ $VUSER_BUILD == *san* ]] && RSS_SLACK=16384

# Session k: testpmd number k connects, and both queues carry traffic.
session() {
	local packed=$1 k=$2
	tp_start_vhost_client "tp$packed-$k" "$SOCK" macswap "$QUEUES"
	pmd_wait_ups "$k" 30
	wait_until 60 pmd_session_rx_ok $((2 * (k - 1))) "$MIN" ||
		fail "session $k: traffic did not reach $MIN frames on every queue (last live line: $(grep '^\[' "$PMD_ERR" | tail -n 1))"
}

run() {
	local packed=$1 k pid fds0= rss0= fds1 rss1
	SOCK=$T/port-$packed.sock
	echo "== packed_vq=$packed: testpmd killed and relaunched $ROUNDS times"
	pmd_bg --port "path=$SOCK,server=1,queues=$QUEUES,packed_vq=$packed" --mode echo \
		--pkt-size 64-8000 --cpu 0 --stats 0.1 --wait-ready 60
	wait_until 10 test -S "$SOCK" || fail "vuser-pmd did not listen on $SOCK"
	for ((k = 1; k <= ROUNDS; k++)); do
		session "$packed" "$k"
		if [ "$k" -eq 2 ]; then
			fds0=$(proc_fds "$PMD_PID") rss0=$(proc_rss_kib "$PMD_PID")
		fi
		pid=${TP_PID[tp$packed-$k]}
		if ((k % 2)); then
			tp_kill9 "tp$packed-$k"
		else
			# A plain kill: testpmd closes its ports and exits.
			kill -TERM "$pid"
			_wait_pid "$pid" 15 || fail "testpmd (pid $pid) ignored SIGTERM for 15 s"
			_tp_forget "tp$packed-$k"
		fi
		pmd_wait_downs "$k" 30
		check_all_ge "session $k (packed_vq=$packed), at link down" "$(pmd_down_rx "$k")" "$MIN"
	done
	session "$packed" $((ROUNDS + 1))
	fds1=$(proc_fds "$PMD_PID") rss1=$(proc_rss_kib "$PMD_PID")
	echo "vuser-pmd: fds $fds0 -> $fds1, RSS $rss0 -> $rss1 KiB (sessions 2 and $((ROUNDS + 1)))"
	check_eq "packed_vq=$packed: vuser-pmd's fd count after $((ROUNDS + 1)) sessions as after 2" "$fds1" "$fds0"
	check "packed_vq=$packed: vuser-pmd's RSS $rss0 -> $rss1 KiB within $RSS_SLACK KiB" \
		[ "$rss1" -le $((rss0 + RSS_SLACK)) ]
	# The last testpmd goes first, so that nothing is in flight when vuser-pmd stops.
	tp_stop "tp$packed-$((ROUNDS + 1))"
	pmd_wait_downs $((ROUNDS + 1)) 30
	kill -TERM "$PMD_PID"
	pmd_wait 15
	pmd_summary
	check_eq "packed rings as asked (packed_vq=$packed)" "${J[packed]}" "$packed"
	check_eq "one session per testpmd" "${J[connections]}" $((ROUNDS + 1))
	# The first link up came before the run loop: then a down and an up per relaunch, and the last down.
	check_eq "link changes" "${J[link_changes]}" $((2 * ROUNDS + 1))
	check_eq "link down at the end" "${J[link]}" 0
	check_eq "no corrupt, duplicate or unknown frame" "${J[bad_payload]}" 0
	check_eq "frames lost == those in flight when a testpmd went" "${J[lost]}" "${J[lost_link_down]}"
	check_eq "verified == tx_packets - lost" "${J[verified]}" $((J[tx_packets] - J[lost]))
	check_eq "rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "rx_drops == 0" "${J[rx_drops]}" 0
	check_eq "bursts with the link down moved nothing" "${J[down_bursts_ok]}" 1
	for ((q = 0; q < QUEUES; q++)); do
		check "queue $q received at least $((ROUNDS + 1)) * $MIN frames" \
			[ "${J_QUEUES_RX[q]}" -ge $(((ROUNDS + 1) * MIN)) ]
	done
	check "the socket went with the port" [ ! -e "$SOCK" ]
}

run 0
run 1
echo "ok: $ROUNDS testpmd restarts each with split and packed rings; traffic resumed on both queues every time"
