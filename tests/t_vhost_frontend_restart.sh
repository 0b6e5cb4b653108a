#!/usr/bin/env bash
# One vuser vhost device (macswap) serves frontend after frontend:
#  - five vuser ports in turn, each an echo run that must verify every frame;
#  - a DPDK virtio_user frontend (testpmd txonly) killed with SIGKILL while
#    frames flow, then a new DPDK frontend, then a vuser port echo again.
# The vhost must stay up through all of it, notice each frontend leave,
# unmap its memory (writable shared mappings back to its own pool's) and
# close its fds: after every later session its fd count equals the count
# after the first.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${RESTART_COUNT:-200000}
ROUNDS=5
vh_start vh "" --mode macswap --cpu 0 --stats 1
sock=${VH_SOCK[vh]}
# Writable shared mappings with no frontend: the vhost's own pool.
idle_maps=$(vh_shared_maps vh)
echo "vhost before any frontend: $(vh_fds vh) fds, $idle_maps writable shared mapping(s)"

# The vhost's "link down" lines: one per frontend that left.
downs() { grep -c '^vuser-pmd: link down' "${VH_ERR[vh]}"; }
# After frontend number $1 has gone: wait for the vhost to notice, check it
# let go of the frontend's memory and is still up.
after_session() {
	local k=$1 what=$2
	wait_until 10 eval "[ \$(downs) -ge $k ]" ||
		fail "$what: the vhost did not notice the frontend leave (link down lines: $(downs), want $k)"
	check_eq "$what: one link-down per frontend" "$(downs)" "$k"
	check "$what: the vhost is still running" alive "${VH_PID[vh]}"
	# The link goes down at the frontend's first GET_VRING_BASE; the socket
	# closes a little later. Give the vhost up to 5 s to let go of it all.
	wait_until 5 eval "[ \$(vh_shared_maps vh) -eq $idle_maps ] &&
		{ [ -z \"\${fds1:-}\" ] || [ \$(vh_fds vh) -eq \${fds1:-0} ]; }"
	check_eq "$what: no frontend memory left mapped (shared mappings as before any)" \
		"$(vh_shared_maps vh)" "$idle_maps"
	echo "$what: vhost has $(vh_fds vh) fds"
	[ -z "$fds1" ] || check_eq "$what: fd count as after the first session" "$(vh_fds vh)" "$fds1"
}
echo_round() {
	local what=$1
	pmd_run --port "path=$sock,queues=1" --mode echo --count "$N" --pkt-size 64-1518 --cpu 1
	pmd_summary
	check_eq "$what: every frame verified" "${J[verified]}" "$N"
	check_eq "$what: lost == 0" "${J[lost]}" 0
	check_eq "$what: bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "$what: rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "$what: tx_errors == 0" "${J[tx_errors]}" 0
}
# The vhost's received-frame count from its last live line.
vh_recv() { sed -n 's/.* recv \([0-9]*\) .*/\1/p' "${VH_ERR[vh]}" | tail -n 1; }

sessions=0 fds1=
for ((i = 1; i <= ROUNDS; i++)); do
	echo "== vuser port $i of $ROUNDS"
	echo_round "port $i"
	sessions=$((sessions + 1))
	after_session "$sessions" "port $i"
	if [ "$i" -eq 1 ]; then
		# The socket of the first session is gone once its memory is.
		sleep 0.2
		fds1=$(vh_fds vh)
	fi
done

echo "== DPDK virtio_user txonly, killed with SIGKILL mid-traffic"
tp_start_frontend fe "$sock" 1 --forward-mode=txonly --txpkts=64
maps=$(vh_shared_maps vh)
check "with DPDK connected, its memory is mapped too ($maps > $idle_maps shared mappings)" \
	[ "$maps" -gt "$idle_maps" ]
r0=$(vh_recv)
sleep 2.5
r1=$(vh_recv)
check "frames flow from testpmd into the vhost (recv $r0 -> $r1)" [ "${r1:-0}" -gt "${r0:-0}" ]
tp_kill9 fe
sessions=$((sessions + 1))
after_session "$sessions" "DPDK killed"

echo "== a new DPDK virtio_user frontend, stopped normally"
tp_start_frontend fe2 "$sock" 1 --forward-mode=txonly --txpkts=64
r0=$(vh_recv)
sleep 2.5
r1=$(vh_recv)
check "frames flow from the new testpmd (recv $r0 -> $r1)" [ "${r1:-0}" -gt "${r0:-0}" ]
tp_stop fe2
tp_load fe2
check "the new testpmd sent frames" [ "${S[tx_packets]}" -gt 0 ]
sessions=$((sessions + 1))
after_session "$sessions" "DPDK stopped"

echo "== vuser port after the DPDK frontends"
echo_round "last port"
sessions=$((sessions + 1))
after_session "$sessions" "last port"
check_eq "fd count after the last session == after the first" "$(vh_fds vh)" "$fds1"

vh_stop vh
vh_summary
check "vhost received at least the ports' frames" [ "${VJ[rx_packets]}" -ge $(((ROUNDS + 1) * N)) ]
check_eq "vhost: with the frontend gone (not ready), bursts moved nothing (down_bursts_ok)" \
	"${VJ[down_bursts_ok]}" 1
check_eq "vhost rx_errors == 0" "${VJ[rx_errors]}" 0
check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
echo "ok: $sessions frontends in turn ($((ROUNDS + 1)) vuser ports, 2 DPDK, one SIGKILLed); fds $fds1 after the first and the last"
