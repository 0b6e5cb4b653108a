#!/usr/bin/env bash
# Echo through DPDK testpmd's vhost backend (macswap), for every combination
# of in_order and mrg_rxbuf, and with notify=0 (no kick fd: testpmd's vhost
# polls) on split and packed rings: 1,000,000 frames of 64..1518 bytes, each one
# carrying a sequence number and a payload checksum, must all come back intact.
# Cross-checks vuser-pmd's counters against testpmd's own.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${ECHO_COUNT:-1000000}
CONFIGS=("in_order=0,mrg_rxbuf=0" "in_order=0,mrg_rxbuf=1" "in_order=1,mrg_rxbuf=0"
	"in_order=1,mrg_rxbuf=1" "notify=0" "packed_vq=1,notify=0")
for cfg in "${CONFIGS[@]}"; do
	echo "== $cfg"
	tp_start vh macswap 1
	pmd_run --port "path=${TP_SOCK[vh]},queues=1,$cfg" \
		--mode echo --count "$N" --pkt-size 64-1518 --cpu 0
	pmd_summary
	tp_stop vh
	tp_load vh
	tp_summary vh
	check_echo "$N" vh
done
echo "ok: ${#CONFIGS[@]} configurations, $N frames each, all verified"
