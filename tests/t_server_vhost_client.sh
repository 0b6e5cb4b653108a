#!/usr/bin/env bash
# A vuser port that listens (server=1,queues=2, echo) and vuser's vhost
# device as the client that connects to it (vuser-pmd --vhost ...,client=1,
# macswap), the device killed (SIGKILL and SIGTERM in turn) and started
# again, 100 times. The port takes each new device: the link goes down and
# comes back, traffic resumes on both queues, every frame that comes back is
# verified, the frames lost are exactly those in flight when a device died,
# and the port's process ends with the fds and RSS it had.
. "$(dirname "$0")/lib.sh"
need_python
need_pmd
[ "$(nproc)" -ge 2 ] || skip "needs 2 cores, have $(nproc)"

ROUNDS=${SERVER_CLIENT_ROUNDS:-100}
QUEUES=2
# Frames each queue must return in a session: tens of milliseconds of traffic.
MIN=${SERVER_CLIENT_MIN:-500}
# The arena and pool are all touched in the first session (the second is the
# baseline); echo's 512 KiB bitmap of sequence numbers is touched page by
# page as they grow; malloc keeps what it likes; ASan's quarantine holds
# freed blocks for a while.
RSS_SLACK=2048
[[ $VUSER_BUILD == *san* ]] && RSS_SLACK=16384

sock=$T/port.sock
pmd_bg --port "path=$sock,server=1,queues=$QUEUES" --mode echo --pkt-size 64-8000 --cpu 0 \
	--stats 0.05 --wait-ready 60
wait_until 10 test -S "$sock" || fail "vuser-pmd did not listen on $sock"

# Session k: device number k connects, and both queues carry traffic.
session() {
	local k=$1
	vh_connect vh "$sock" ",queues=$QUEUES" --mode macswap --cpu 1
	pmd_wait_ups "$k" 30
	wait_until 30 pmd_session_rx_ok $((2 * (k - 1))) "$MIN" ||
		fail "session $k: traffic did not reach $MIN frames on every queue (last live line: $(grep '^\[' "$PMD_ERR" | tail -n 1))"
}

fds0= rss0=
for ((k = 1; k <= ROUNDS; k++)); do
	session "$k"
	if [ "$k" -eq 2 ]; then
		fds0=$(proc_fds "$PMD_PID") rss0=$(proc_rss_kib "$PMD_PID")
	fi
	if ((k % 2)); then
		vh_kill9 vh
	else
		vh_stop vh
	fi
	pmd_wait_downs "$k" 30
	check_all_ge "session $k, at link down" "$(pmd_down_rx "$k")" "$MIN"
done
session $((ROUNDS + 1))
fds1=$(proc_fds "$PMD_PID") rss1=$(proc_rss_kib "$PMD_PID")
echo "port process: fds $fds0 -> $fds1, RSS $rss0 -> $rss1 KiB (sessions 2 and $((ROUNDS + 1)))"
check_eq "port process: fd count after $((ROUNDS + 1)) sessions as after 2" "$fds1" "$fds0"
check "port process: RSS $rss0 -> $rss1 KiB within $RSS_SLACK KiB" [ "$rss1" -le $((rss0 + RSS_SLACK)) ]

# The device goes first, so that nothing is in flight when the port stops.
vh_stop vh
pmd_wait_downs $((ROUNDS + 1)) 30
kill -TERM "$PMD_PID"
pmd_wait 15
pmd_summary
check_eq "one session per device" "${J[connections]}" $((ROUNDS + 1))
# The first link up came before the run loop: then a down and an up per restart, and the last down.
check_eq "link changes" "${J[link_changes]}" $((2 * ROUNDS + 1))
check_eq "link down at the end" "${J[link]}" 0
check_eq "no corrupt, duplicate or unknown frame" "${J[bad_payload]}" 0
check_eq "frames lost == those in flight when a device went" "${J[lost]}" "${J[lost_link_down]}"
check_eq "verified == tx_packets - lost" "${J[verified]}" $((J[tx_packets] - J[lost]))
check_eq "rx_errors == 0" "${J[rx_errors]}" 0
check_eq "tx_errors == 0" "${J[tx_errors]}" 0
check_eq "rx_drops == 0" "${J[rx_drops]}" 0
check_eq "bursts with the link down moved nothing" "${J[down_bursts_ok]}" 1
check "the socket went with the port" [ ! -e "$sock" ]
echo "ok: the listening port took $((ROUNDS + 1)) devices in turn; traffic resumed on both queues every time"
