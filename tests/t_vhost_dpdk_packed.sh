#!/usr/bin/env bash
# vuser's vhost device under DPDK's frontend with packed rings: testpmd with
# net_virtio_user,packed_vq=1 connects to vuser-pmd --vhost and forwards what
# it receives back (macswap); vuser-pmd sends frames in echo mode and
# verifies every one. Cases: in_order x mrg_rxbuf at queue size 256, queue
# sizes 1024 and 1025 (a packed ring needs no power of two), four queue
# pairs, and 9000-byte frames through mergeable buffers. Counts must match
# testpmd's exactly (plus the probe frames), and both sides must report
# packed rings.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${PACKED_COUNT:-1000000}

# run_case LABEL QUEUES COUNT SIZES VDEV-EXTRA
run_case() {
	local label=$1 q=$2 count=$3 sizes=$4 extra=$5 sock=$T/vh.sock
	echo "== $label: queues=$q vdev 'packed_vq=1$extra', $count frames of $sizes bytes"
	rm -f "$sock"
	pmd_bg --vhost "path=$sock,queues=$q" --mode echo --count "$count" --pkt-size "$sizes" \
		--cpu 0 --wait-ready 60
	wait_until 10 eval "[ -S '$sock' ] || ! alive $PMD_PID" || fail "no socket $sock after 10 s"
	check "vuser-pmd --vhost is listening" alive "$PMD_PID"
	TP_PACKED_VQ=1 TP_VDEV_EXTRA=$extra tp_start_frontend fe "$sock" "$q" --forward-mode=macswap
	pmd_wait 100
	pmd_summary
	tp_stop fe
	tp_load fe
	tp_summary fe
	check_echo_probed "$count" fe
	check_eq "packed rings negotiated" "${J[packed]}" 1
	check_eq "vuser-pmd served $q queue pair(s)" "${#J_QUEUES_RX[@]}" "$q"
	if [ "$q" -gt 1 ]; then
		local i
		for ((i = 0; i < q; i++)); do
			check "queue $i: vuser rx > 0 (rx ${J_QUEUES_RX[i]})" [ "${J_QUEUES_RX[i]}" -gt 0 ]
			check "queue $i: vuser tx > 0 (tx ${J_QUEUES_TX[i]})" [ "${J_QUEUES_TX[i]}" -gt 0 ]
		done
	fi
}

run_case "in_order=1 mrg_rxbuf=1" 1 "$N" 64-1518 ",in_order=1,mrg_rxbuf=1"
run_case "in_order=0 mrg_rxbuf=1" 1 "$N" 64-1518 ",in_order=0,mrg_rxbuf=1"
run_case "in_order=1 mrg_rxbuf=0" 1 "$N" 64-1518 ",in_order=1,mrg_rxbuf=0"
run_case "in_order=0 mrg_rxbuf=0" 1 "$N" 64-1518 ",in_order=0,mrg_rxbuf=0"
run_case "queue_size=1024" 1 $((N / 4)) 64-1518 ",queue_size=1024"
run_case "queue_size=1025" 1 $((N / 4)) 64-1518 ",queue_size=1025"
run_case "four queue pairs" 4 $((N / 4)) 64-1518 ""
run_case "9000-byte frames" 1 20000 9000 ",mrg_rxbuf=1"
check_eq "jumbo: tx_bytes == 20000 * 9000" "${J[tx_bytes]}" $((20000 * 9000))
check_eq "jumbo: rx_bytes == 20000 * 9000" "${J[rx_bytes]}" $((20000 * 9000))
echo "ok: DPDK virtio_user packed_vq=1 against vuser vhost, every frame verified"
