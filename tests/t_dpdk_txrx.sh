#!/usr/bin/env bash
# One direction at a time, against testpmd's vhost backend:
#  1. vuser-pmd txonly -> testpmd rxonly for 2 s: testpmd receives what was sent.
#  2. testpmd txonly (64-byte UDP frames) -> vuser-pmd rxonly for 2 s: vuser
#     receives well-formed 64-byte frames, no more than testpmd sent.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

# Frames a ring can hold when the run stops (queue_size 256), plus a burst.
SLACK=$((256 + 32))

echo "== vuser txonly -> testpmd rxonly"
tp_start vh rxonly 1
pmd_run --port "path=${TP_SOCK[vh]},queues=1" --mode txonly --pkt-size 64 --duration 2 --cpu 0
pmd_summary
tp_stop vh
tp_load vh
tp_summary vh
check "vuser sent frames" [ "${J[tx_packets]}" -gt 0 ]
check "testpmd received frames" [ "${S[rx_packets]}" -gt 0 ]
check "testpmd received no more than was sent (${S[rx_packets]} <= ${J[tx_packets]})" \
	[ "${S[rx_packets]}" -le "${J[tx_packets]}" ]
check "testpmd received all but what was left in the ring (${J[tx_packets]} - ${S[rx_packets]} <= $SLACK)" \
	[ $((J[tx_packets] - S[rx_packets])) -le "$SLACK" ]
check_eq "tx_errors == 0" "${J[tx_errors]}" 0
check_eq "link up" "${J[link]}" 1

echo "== testpmd txonly -> vuser rxonly"
tp_start vh txonly 1 --txpkts=64
pmd_run --port "path=${TP_SOCK[vh]},queues=1" --mode rxonly --duration 2 --cpu 0
pmd_summary
tp_stop vh
tp_load vh
tp_summary vh
check "vuser received frames" [ "${J[rx_packets]}" -gt 0 ]
check "vuser received no more than testpmd sent (${J[rx_packets]} <= ${S[tx_packets]})" \
	[ "${J[rx_packets]}" -le "${S[tx_packets]}" ]
check "vuser received all but what was left in the ring (${S[tx_packets]} - ${J[rx_packets]} <= $SLACK)" \
	[ $((S[tx_packets] - J[rx_packets])) -le "$SLACK" ]
check_eq "rx_drops == 0 (well-formed frames)" "${J[rx_drops]}" 0
check_eq "rx_errors == 0" "${J[rx_errors]}" 0
if [ -n "${J[rx_bytes]:-}" ]; then
	check_eq "every frame 64 bytes: rx_bytes == 64 * rx_packets" "${J[rx_bytes]}" $((64 * J[rx_packets]))
fi
check_eq "link up" "${J[link]}" 1
echo "ok: both directions"
