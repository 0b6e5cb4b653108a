#!/usr/bin/env bash
# vuser-pmd --mode pingpong against vuser's own vhost device, both ways round:
# one frame in flight, every reply verified (sequence number, length,
# payload checksum), and the round-trip summary present and ordered
# (0 < min <= median <= p99 <= max). Nothing here depends on how fast the
# machine is: the times are only checked for shape, never against a bound.
. "$(dirname "$0")/lib.sh"
need_python
need_pmd

N=${PINGPONG_COUNT:-20000}

# check_rtt WHO: the pingpong summary in J (a port) or VJ (a vhost) after N
# round trips of which none timed out.
check_rtt() {
	local -n j=$1
	local who=$2
	check_eq "$who: tx_packets == $N" "${j[tx_packets]}" "$N"
	check_eq "$who: rtt_count == $N" "${j[rtt_count]:-missing}" "$N"
	check_eq "$who: verified == $N" "${j[verified]}" "$N"
	check_eq "$who: rx_packets == $N (probes apart)" "${j[rx_packets]}" "$N"
	check_eq "$who: bad_payload == 0" "${j[bad_payload]}" 0
	check_eq "$who: lost == 0" "${j[lost]}" 0
	check_eq "$who: late == 0" "${j[late]:-missing}" 0
	check_eq "$who: timeouts == 0" "${j[timeouts]:-missing}" 0
	check_eq "$who: every probe came back" "${j[probes_back]}" "${j[probes_sent]}"
	check "$who: rtt_min_ns > 0 (${j[rtt_min_ns]:-missing})" [ "${j[rtt_min_ns]:-0}" -gt 0 ]
	check "$who: median >= min" [ "${j[rtt_median_ns]}" -ge "${j[rtt_min_ns]}" ]
	check "$who: p99 >= median (${j[rtt_p99_ns]} >= ${j[rtt_median_ns]})" \
		[ "${j[rtt_p99_ns]}" -ge "${j[rtt_median_ns]}" ]
	check "$who: max >= p99" [ "${j[rtt_max_ns]}" -ge "${j[rtt_p99_ns]}" ]
	check "$who: mean within [min, max]" "$PYTHON" -c "import sys; sys.exit(not (${j[rtt_min_ns]} <= ${j[rtt_mean_ns]} <= ${j[rtt_max_ns]}))"
	check "$who: vm_rss_kb > 0" [ "${j[vm_rss_kb]:-0}" -gt 0 ]
	check "$who: vm_hwm_kb >= vm_rss_kb" [ "${j[vm_hwm_kb]:-0}" -ge "${j[vm_rss_kb]}" ]
}

# 1. The port pings, the vhost device swaps MACs and returns each frame.
# Sizes vary so that a reply to the wrong frame could not pass for the right one.
vh_start vh "" --mode macswap --cpu 1
pmd_run --port "path=${VH_SOCK[vh]}" --mode pingpong --count "$N" --pkt-size 64-1518 --cpu 0
pmd_summary
echo "rtt ns: min ${J[rtt_min_ns]} median ${J[rtt_median_ns]} p99 ${J[rtt_p99_ns]} max ${J[rtt_max_ns]}"
check_rtt J port
check "port: arena_size > 0" [ "${J[arena_size]:-0}" -gt 0 ]
vh_stop vh
vh_summary
# The device saw each ping and each probe once and returned every one.
check_eq "vhost received pings + probes" "${VJ[rx_packets]}" $((N + J[probes_sent]))
check_eq "vhost returned pings + probes" "${VJ[tx_packets]}" $((N + J[probes_sent]))

# 2. The vhost device pings, the port swaps MACs: the same mode on the device side.
vh_start vp "" --mode pingpong --count "$N" --pkt-size 64-1518 --cpu 1
pmd_bg --port "path=${VH_SOCK[vp]}" --mode macswap --cpu 0
vh_wait vp 60
vh_summary
check_rtt VJ vhost
# The port ends by itself once the device that pinged it goes away.
kill -TERM "$PMD_PID" 2>/dev/null
pmd_wait 15
check_eq "port returned pings + probes" "${J[tx_packets]}" $((N + VJ[probes_sent]))

# 3. --warmup: round trips in the first part of a timed run are sent and
# verified but not timed, so rtt_count never exceeds verified.
vh_start vw "" --mode macswap --cpu 1
pmd_run --port "path=${VH_SOCK[vw]}" --mode pingpong --duration 2 --warmup 0.5 --cpu 0
check_eq "warm-up run: bad_payload == 0" "${J[bad_payload]}" 0
check_eq "warm-up run: lost == 0" "${J[lost]}" 0
check "warm-up run: rtt_count (${J[rtt_count]}) <= verified (${J[verified]})" \
	[ "${J[rtt_count]}" -le "${J[verified]}" ]
check "warm-up run: some round trips timed" [ "${J[rtt_count]}" -gt 0 ]
vh_stop vw
echo "ok: $N round trips each way verified, summaries ordered"
