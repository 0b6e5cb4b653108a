#!/usr/bin/env bash
# One direction at a time between vuser's vhost device and DPDK's
# virtio_user frontend (testpmd), 64-byte frames for 2 s:
#  1. testpmd txonly -> vuser vhost rxonly: vuser receives what testpmd put
#     in its transmit ring, all but at most a ring's worth left when testpmd
#     stopped, every frame 64 bytes and well formed.
#  2. vuser vhost txonly -> testpmd rxonly (--no-flush-rx, so that what
#     arrives before testpmd forwards is counted too): testpmd receives what
#     vuser delivered, all but at most a ring's worth left when the vhost went.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

DUR=2
RING=256   # virtio_user's queue size

echo "== testpmd txonly -> vuser vhost rxonly, ${DUR} s"
vh_start vh "" --mode rxonly --cpu 0
tp_start_frontend fe "${VH_SOCK[vh]}" 1 --forward-mode=txonly --txpkts=64
sleep "$DUR"
tp_stop fe
tp_load fe
tp_summary fe
# testpmd's stop ends the session: the vhost is back to listening, and its
# counters are final. Give it a moment to notice, then stop it.
wait_until 10 grep -q '^vuser-pmd: link down' "${VH_ERR[vh]}" || fail "the vhost did not notice testpmd leave"
vh_stop vh
vh_summary
check "testpmd sent frames" [ "${S[tx_packets]}" -gt 0 ]
check "vuser received frames" [ "${VJ[rx_packets]}" -gt 0 ]
check "vuser received no more than testpmd sent (${VJ[rx_packets]} <= ${S[tx_packets]})" \
	[ "${VJ[rx_packets]}" -le "${S[tx_packets]}" ]
check "vuser received all but at most a ring (${S[tx_packets]} - ${VJ[rx_packets]} <= $RING)" \
	[ $((S[tx_packets] - VJ[rx_packets])) -le "$RING" ]
check_eq "every frame 64 bytes: rx_bytes == 64 * rx_packets" "${VJ[rx_bytes]}" $((64 * VJ[rx_packets]))
check_eq "vuser rx_drops == 0 (well-formed frames)" "${VJ[rx_drops]}" 0
check_eq "vuser rx_errors == 0" "${VJ[rx_errors]}" 0
check_eq "vuser sent nothing in rxonly" "${VJ[tx_packets]}" 0
echo "testpmd TX ${S[tx_packets]}, vuser rx ${VJ[rx_packets]}, left in the ring $((S[tx_packets] - VJ[rx_packets]))"

echo "== vuser vhost txonly -> testpmd rxonly, ${DUR} s"
vh_start vh "" --mode txonly --pkt-size 64 --cpu 0
tp_start_frontend fe "${VH_SOCK[vh]}" 1 --forward-mode=rxonly --no-flush-rx
sleep "$DUR"
vh_stop vh
vh_summary
tp_stop fe
tp_load fe
tp_summary fe
check "vuser sent frames" [ "${VJ[tx_packets]}" -gt 0 ]
check "testpmd received frames" [ "${S[rx_packets]}" -gt 0 ]
check "testpmd received no more than vuser sent (${S[rx_packets]} <= ${VJ[tx_packets]})" \
	[ "${S[rx_packets]}" -le "${VJ[tx_packets]}" ]
check "testpmd received all but at most a ring (${VJ[tx_packets]} - ${S[rx_packets]} <= $RING)" \
	[ $((VJ[tx_packets] - S[rx_packets])) -le "$RING" ]
check_eq "vuser tx_bytes == 64 * tx_packets" "${VJ[tx_bytes]}" $((64 * VJ[tx_packets]))
check_eq "vuser tx_errors == 0" "${VJ[tx_errors]}" 0
check_eq "testpmd RX-dropped == 0" "${S[rx_dropped]}" 0
check_eq "testpmd RX-nombufs == 0" "${S[rx_nombufs]}" 0
check_eq "testpmd RX-error == 0" "${S[rx_error]}" 0
echo "vuser tx ${VJ[tx_packets]}, testpmd RX ${S[rx_packets]}, left in the ring $((VJ[tx_packets] - S[rx_packets]))"
echo "ok: both directions"
