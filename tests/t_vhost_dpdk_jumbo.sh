#!/usr/bin/env bash
# 9000-byte frames between vuser's vhost device (echo) and DPDK's virtio_user
# frontend (testpmd macswap) with mergeable rx buffers. testpmd receives each
# frame merged from several 2 KiB rx buffers into an mbuf chain and sends the
# chain back. With in_order=0 DPDK's split-ring transmit puts a chain of fewer
# than 8 segments behind one indirect descriptor when INDIRECT_DESC is
# negotiated (vuser offers it by default), and chains the descriptors in the
# ring when it is not (vuser's indirect=0); with in_order=1 it always chains.
# All three must deliver every byte.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${JUMBO_COUNT:-20000}
SIZE=9000

# run_case LABEL VHOST-EXTRA VDEV-EXTRA
run_case() {
	local label=$1 vextra=$2 extra=$3 sock=$T/vh.sock
	echo "== $label: vhost '$vextra', vdev '$extra', $N frames of $SIZE bytes"
	rm -f "$sock"
	pmd_bg --vhost "path=$sock,mrg_rxbuf=1$vextra" --mode echo --count "$N" --pkt-size "$SIZE" \
		--cpu 0 --wait-ready 60
	wait_until 10 eval "[ -S '$sock' ] || ! alive $PMD_PID" || fail "no socket $sock after 10 s"
	check "vuser-pmd --vhost is listening" alive "$PMD_PID"
	TP_VDEV_EXTRA=",mrg_rxbuf=1$extra" tp_start_frontend fe "$sock" 1 --forward-mode=macswap
	pmd_wait 100
	pmd_summary
	tp_stop fe
	tp_load fe
	tp_summary fe
	check_echo_probed "$N" fe
	check_eq "tx_bytes == $N * $SIZE" "${J[tx_bytes]}" $((N * SIZE))
	check_eq "rx_bytes == $N * $SIZE" "${J[rx_bytes]}" $((N * SIZE))
	check_eq "vuser tx_drops == 0 (no frame too large for the frontend)" "${J[tx_drops]}" 0
}

run_case "in_order=0, indirect descriptors offered" "" ",in_order=0"
run_case "in_order=0, no indirect descriptors" ",indirect=0" ",in_order=0"
run_case "in_order=1" "" ",in_order=1"
echo "ok: 3 cases, $N frames of $SIZE bytes each, all verified"
