#!/usr/bin/env bash
# 9000-byte frames with mergeable rx buffers through testpmd's vhost backend
# (macswap): the port sends each frame as a chain of 2 KiB segments and must
# receive it back merged from several rx buffers, byte for byte.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${JUMBO_COUNT:-20000}
SIZE=9000
# DPDK's vhost PMD dequeues chains into multi-segment mbufs and enqueues them
# into mergeable buffers with testpmd's defaults: no --max-pkt-len or
# --mbuf-size is needed (checked with DPDK 22.11).
tp_start vh macswap 1
pmd_run --port "path=${TP_SOCK[vh]},queues=1,mrg_rxbuf=1" \
	--mode echo --count "$N" --pkt-size "$SIZE" --cpu 0
pmd_summary
tp_stop vh
tp_load vh
tp_summary vh
check_echo "$N" vh
if [ -n "${J[tx_bytes]:-}" ]; then
	check_eq "tx_bytes == $N * $SIZE" "${J[tx_bytes]}" $((N * SIZE))
	check_eq "rx_bytes == $N * $SIZE" "${J[rx_bytes]}" $((N * SIZE))
fi
echo "ok: $N frames of $SIZE bytes, all verified"
