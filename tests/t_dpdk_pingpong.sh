#!/usr/bin/env bash
# vuser-pmd --mode pingpong against DPDK testpmd's vhost in macswap, split and
# packed rings: one frame in flight, every reply verified, the round-trip
# summary present and ordered, and testpmd's counts equal to what the port
# sent (pings and probes). No bound on the times themselves.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${PINGPONG_COUNT:-20000}

for packed in 0 1; do
	tp_start vh macswap 1
	pmd_run --port "path=${TP_SOCK[vh]},packed_vq=$packed" --mode pingpong --count "$N" \
		--pkt-size 64-1518 --cpu 0
	pmd_summary
	tp_stop vh
	tp_load vh
	tp_summary vh
	echo "packed_vq=$packed rtt ns: min ${J[rtt_min_ns]} median ${J[rtt_median_ns]} p99 ${J[rtt_p99_ns]} max ${J[rtt_max_ns]}"
	check_eq "packed_vq=$packed negotiated" "${J[packed]}" "$packed"
	check_eq "rtt_count == $N" "${J[rtt_count]:-missing}" "$N"
	check_eq "verified == $N" "${J[verified]}" "$N"
	check_eq "bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "lost == 0" "${J[lost]}" 0
	check_eq "late == 0" "${J[late]}" 0
	check_eq "timeouts == 0" "${J[timeouts]}" 0
	check "rtt_min_ns > 0" [ "${J[rtt_min_ns]}" -gt 0 ]
	check "p99 >= median >= min" [ "${J[rtt_p99_ns]}" -ge "${J[rtt_median_ns]}" -a \
		"${J[rtt_median_ns]}" -ge "${J[rtt_min_ns]}" ]
	# testpmd flushes what arrives before it forwards: probes it dropped
	# that way are in neither count, so compare with the probes that came back.
	check_eq "testpmd RX-packets == pings + probes back" "${S[rx_packets]}" $((N + J[probes_back]))
	check_eq "testpmd TX-packets == pings + probes back" "${S[tx_packets]}" $((N + J[probes_back]))
done
echo "ok: $N verified round trips through DPDK vhost, split and packed"
