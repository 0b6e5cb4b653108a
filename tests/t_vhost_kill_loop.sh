#!/usr/bin/env bash
# A vuser vhost device (server, macswap) outlives its frontends. 100 vuser
# ports, then 100 DPDK virtio_user frontends (testpmd txonly), each killed
# with SIGKILL while frames flow; each new one must be served (frames reach
# the vhost in its session, as its link-down line reports), and a final
# vuser echo run must verify every frame. The vhost's fd count and RSS must
# end where they were after the first session, and it must have cut no one
# off: a frontend that dies is not a frontend that lies.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

ROUNDS=${KILL_ROUNDS:-100}
DPDK_ROUNDS=${KILL_DPDK_ROUNDS:-100}
# RSS may move by allocator noise, not by a session's worth per session;
# ASan's quarantine holds freed memory for a while.
RSS_SLACK_KIB=2048
[[ ${VUSER_BUILD:-} == *san* ]] && RSS_SLACK_KIB=16384

vh_start vh "" --mode macswap --cpu 1
sock=${VH_SOCK[vh]}
vpid=${VH_PID[vh]}

vh_downs() { grep -c '^vuser-pmd: link down' "${VH_ERR[vh]}"; }
# Frames the vhost received in session K (its K-th link-down line).
vh_session_rx() {
	grep '^vuser-pmd: link down' "${VH_ERR[vh]}" | sed -n "${1}p" |
		sed -n 's/.*since up: rx \([0-9/]*\)$/\1/p'
}
victim_verified() { sed -n 's/.* verified \([0-9]*\) .*/\1/p' "$PMD_ERR" | tail -n 1; }

sessions=0 fds1= rss1=
# After session K ended: the vhost noticed, is alive, got frames in it.
after() {
	local what=$1 rx
	sessions=$((sessions + 1))
	wait_until 10 eval "[ \$(vh_downs) -ge $sessions ] || ! alive $vpid" ||
		fail "$what: the vhost did not notice the frontend go (link downs $(vh_downs), want $sessions)"
	alive "$vpid" || fail "$what: the vhost died"
	rx=$(vh_session_rx "$sessions")
	[ -n "$rx" ] && [ "$rx" -gt 0 ] || fail "$what: the vhost received no frames in that session ($rx)"
}

for ((i = 1; i <= ROUNDS; i++)); do
	pmd_bg --port "path=$sock,queues=1" --mode echo --count 1000000000 --pkt-size 64-1518 \
		--stats 0.05 --cpu 0
	wait_until 20 eval "[ \"\$(victim_verified)\" -ge 1000 ] 2>/dev/null || ! alive $PMD_PID" ||
		fail "vuser port $i: no traffic after 20 s"
	alive "$PMD_PID" || fail "vuser port $i exited: $(tail -n 3 "$PMD_ERR")"
	{ kill -KILL "$PMD_PID"; _wait_pid "$PMD_PID" 5; } 2>/dev/null
	PMD_PID=
	after "vuser port $i"
	if [ "$i" -eq 1 ]; then
		sleep 0.2
		fds1=$(proc_fds "$vpid") rss1=$(proc_rss_kib "$vpid")
		echo "after the first session: $fds1 fds, RSS $rss1 KiB"
	fi
done
echo "vuser ports: $ROUNDS killed mid-traffic, each served ($(vh_session_rx "$ROUNDS") frames in the last)"
check_eq "after $ROUNDS vuser ports: fds as after the first" "$(proc_fds "$vpid")" "$fds1"

for ((i = 1; i <= DPDK_ROUNDS; i++)); do
	TPF_MEM="--no-huge -m 32 --single-file-segments" \
		tp_start_frontend fe "$sock" 1 --forward-mode=txonly --txpkts=64 --total-num-mbufs=2048
	sleep 0.2
	tp_kill9 fe
	after "DPDK frontend $i"
done
echo "DPDK frontends: $DPDK_ROUNDS killed mid-traffic, each served ($(vh_session_rx "$sessions") frames in the last)"

echo "== a vuser port echo run after them all"
pmd_run --port "path=$sock,queues=1" --mode echo --count 100000 --pkt-size 64-1518 --cpu 0
pmd_summary
check_eq "every frame verified" "${J[verified]}" 100000
check_eq "lost == 0" "${J[lost]}" 0
check_eq "bad_payload == 0" "${J[bad_payload]}" 0
after "the last port"
sleep 0.2
fds_end=$(proc_fds "$vpid") rss_end=$(proc_rss_kib "$vpid")
echo "after $sessions sessions: $fds_end fds, RSS $rss_end KiB (first: $fds1, $rss1 KiB)"
check_eq "fds as after the first session" "$fds_end" "$fds1"
check "RSS within $RSS_SLACK_KIB KiB of the first session's ($rss1 -> $rss_end)" \
	[ "$rss_end" -le $((rss1 + RSS_SLACK_KIB)) ]
vh_stop vh
vh_summary
check_eq "the vhost counted every session" "${VJ[connections]}" "$sessions"
check_eq "vhost rx_errors == 0 (nobody was cut off)" "${VJ[rx_errors]}" 0
check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
echo "ok: $sessions frontends ($ROUNDS vuser, $DPDK_ROUNDS DPDK killed mid-traffic, 1 clean); fds $fds1 -> $fds_end, RSS $rss1 -> $rss_end KiB"
