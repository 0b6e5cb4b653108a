#!/usr/bin/env bash
# vuser against itself: a vuser port (driver, echo) through a vuser vhost
# device (macswap), for every combination of the port's in_order and
# mrg_rxbuf, and with notify=0 (no kick fd: the vhost polls) on split and
# packed rings: 1,000,000 frames of 64..1518 bytes must all come back intact,
# and the vhost's own counts must match the port's exactly: it received
# every counted frame plus the probes the port sent (probes_sent), and sent
# back every frame plus the probes the port got back (probes_back >= 1).
. "$(dirname "$0")/lib.sh"
need_python
need_pmd
[ "$(nproc)" -ge 2 ] || skip "needs 2 cores, have $(nproc)"

N=${ECHO_COUNT:-1000000}
CONFIGS=("in_order=0,mrg_rxbuf=0" "in_order=0,mrg_rxbuf=1" "in_order=1,mrg_rxbuf=0"
	"in_order=1,mrg_rxbuf=1" "notify=0" "packed_vq=1,notify=0")
for cfg in "${CONFIGS[@]}"; do
	echo "== $cfg"
	vh_start vh "" --mode macswap --cpu 1
	pmd_run --port "path=${VH_SOCK[vh]},queues=1,$cfg" \
		--mode echo --count "$N" --pkt-size 64-1518 --cpu 0
	pmd_summary
	vh_stop vh
	vh_summary
	check_eq "port sent every frame: tx_packets == $N" "${J[tx_packets]}" "$N"
	check_eq "every frame verified" "${J[verified]}" "$N"
	check_eq "lost == 0" "${J[lost]}" 0
	check_eq "bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "port rx_packets == verified" "${J[rx_packets]}" "$N"
	check_eq "port rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "port tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "port rx_drops == 0" "${J[rx_drops]}" 0
	check_eq "port link up to the end" "${J[link]}" 1
	check_eq "port tx_bytes == rx_bytes" "${J[tx_bytes]}" "${J[rx_bytes]}"
	p=${J[probes_sent]:?no probes_sent in the port JSON}
	echo "the port sent $p probe frame(s), got ${J[probes_back]} back"
	check "at least one probe came back (${J[probes_back]})" [ "${J[probes_back]}" -ge 1 ]
	check_eq "vhost rx_packets == port tx_packets + $p probes sent" \
		"${VJ[rx_packets]}" $((J[tx_packets] + p))
	check_eq "vhost tx_packets == vhost rx_packets (macswap returned everything)" \
		"${VJ[tx_packets]}" "${VJ[rx_packets]}"
	check_eq "vhost tx_packets == port rx_packets + ${J[probes_back]} probes back" \
		"${VJ[tx_packets]}" $((J[rx_packets] + J[probes_back]))
	check_eq "vhost rx_bytes == port tx_bytes + $p probes of 60 bytes" \
		"${VJ[rx_bytes]}" $((J[tx_bytes] + 60 * p))
	check_eq "vhost tx_bytes == vhost rx_bytes" "${VJ[tx_bytes]}" "${VJ[rx_bytes]}"
	check_eq "vhost dropped nothing" "${VJ[dropped]}" 0
	check_eq "vhost rx_drops == 0" "${VJ[rx_drops]}" 0
	check_eq "vhost tx_drops == 0" "${VJ[tx_drops]}" 0
	check_eq "vhost rx_errors == 0" "${VJ[rx_errors]}" 0
	check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
	check_eq "vhost: with the frontend gone (not ready), bursts moved nothing (down_bursts_ok)" \
		"${VJ[down_bursts_ok]}" 1
	check_eq "vhost per-queue rx == its total" "${VJ_QUEUES_RX[0]}" "${VJ[rx_packets]}"
done
echo "ok: ${#CONFIGS[@]} configurations, $N frames each, all verified"
