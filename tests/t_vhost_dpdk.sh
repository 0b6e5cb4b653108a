#!/usr/bin/env bash
# vuser's vhost device under DPDK's own frontend: testpmd with net_virtio_user
# connects to vuser-pmd --vhost (which listens) and forwards what it
# receives back (macswap or io); vuser-pmd sends 64..1518-byte frames in echo
# mode and verifies every one. Cases: the default features (in_order=1,
# mrg_rxbuf=1), in_order=0, mrg_rxbuf=0, four queue pairs, and io forwarding.
# testpmd's final counts must equal vuser's plus, both ways, the probe frames
# that came back (vuser-pmd's uncounted "is the peer forwarding yet?"
# frames; it reports probes_back), in total and per queue.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${ECHO_COUNT:-1000000}

# run_case LABEL QUEUES FWD-MODE VDEV-EXTRA
run_case() {
	local label=$1 q=$2 fwd=$3 extra=$4 sock=$T/vh.sock
	echo "== $label: queues=$q forward-mode=$fwd vdev '$extra', $N frames of 64..1518 bytes"
	rm -f "$sock"
	pmd_bg --vhost "path=$sock,queues=$q" --mode echo --count "$N" --pkt-size 64-1518 \
		--cpu 0 --wait-ready 60
	wait_until 10 eval "[ -S '$sock' ] || ! alive $PMD_PID" || fail "no socket $sock after 10 s"
	check "vuser-pmd --vhost is listening" alive "$PMD_PID"
	TP_VDEV_EXTRA=$extra tp_start_frontend fe "$sock" "$q" --forward-mode="$fwd"
	pmd_wait 100
	pmd_summary
	tp_stop fe
	tp_load fe
	tp_summary fe
	check_echo_probed "$N" fe
	check_eq "vuser-pmd served $q queue pair(s)" "${#J_QUEUES_RX[@]}" "$q"
	if [ "$q" -gt 1 ]; then
		local i pq
		check_eq "testpmd printed one stream per queue" "${S[streams]}" "$q"
		for ((i = 0; i < q; i++)); do
			check "queue $i: vuser rx > 0 (rx ${J_QUEUES_RX[i]})" [ "${J_QUEUES_RX[i]}" -gt 0 ]
			check "queue $i: vuser tx > 0 (tx ${J_QUEUES_TX[i]})" [ "${J_QUEUES_TX[i]}" -gt 0 ]
			pq=${J_QUEUES_PROBES[i]}
			check_eq "queue $i: testpmd RX == vuser tx + $pq probes back on it" \
				"${S[q${i}_rx_packets]}" $((J_QUEUES_TX[i] + pq))
			check_eq "queue $i: testpmd TX == vuser rx + $pq probes back on it" \
				"${S[q${i}_tx_packets]}" $((J_QUEUES_RX[i] + pq))
		done
	fi
}

run_case "default features" 1 macswap ""
run_case "in_order=0" 1 macswap ",in_order=0"
run_case "mrg_rxbuf=0" 1 macswap ",mrg_rxbuf=0"
run_case "in_order=0 mrg_rxbuf=0" 1 macswap ",in_order=0,mrg_rxbuf=0"
run_case "four queue pairs" 4 macswap ""
run_case "io forwarding" 1 io ""
echo "ok: 6 cases, $N frames each, all verified"
