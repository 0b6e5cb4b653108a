#!/usr/bin/env bash
# The frontend's memory table: DPDK's virtio_user describes its memory with
# one region per file it is backed by. vuser's vhost device (echo, --verbose
# logs each message with its fd count) must map them all and translate
# every ring and buffer address across them.
#  1. --no-huge without --single-file-segments: DPDK backs all of it with one
#     memfd, whatever -m says: a single region.
#  2. 2 MiB hugepages without --single-file-segments, -m 16: one file per
#     page, so SET_MEM_TABLE carries 8 regions (8 fds), DPDK's own maximum.
#     Needs root and hugetlbfs: reserves 8 more hugepages and mounts a private
#     hugetlbfs for the run, and gives both back on exit.
#  3. The same 8-region frontend against a vhost that accepts only 4
#     (mem_slots=4): the frontend is cut off, the vhost says why and stays
#     up, and the next frontend (a vuser port, one region) is served.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${MEM_COUNT:-200000}

# The fd counts of vuser's SET_MEM_TABLE messages, in order.
mem_table_fds() {
	sed -n 's/.*SET_MEM_TABLE size [0-9]* fds \([0-9]*\).*/\1/p' "$1" | tr '\n' ' '
}

# echo_case LABEL TPF_MEM [testpmd app args...]: vuser vhost echo of N frames
# through testpmd macswap backed as TPF_MEM says; sets FDS.
echo_case() {
	local label=$1 mem=$2 sock=$T/vh.sock; shift 2
	echo "== $label: testpmd $mem"
	rm -f "$sock"
	pmd_bg --vhost "path=$sock" --mode echo --count "$N" --pkt-size 64-1518 --cpu 0 --verbose
	wait_until 10 eval "[ -S '$sock' ] || ! alive $PMD_PID" || fail "no socket $sock after 10 s"
	check "vuser-pmd --vhost is listening" alive "$PMD_PID"
	TPF_MEM=$mem tp_start_frontend fe "$sock" 1 --forward-mode=macswap "$@"
	pmd_wait 100
	pmd_summary
	tp_stop fe
	tp_load fe
	tp_summary fe
	check_echo_probed "$N" fe
	FDS=$(mem_table_fds "$PMD_ERR")
	echo "SET_MEM_TABLE messages seen, fds each: $FDS"
	check "vuser saw at least one SET_MEM_TABLE" [ -n "$FDS" ]
	check "vuser logged no violation" eval "! grep -q 'cut off' '$PMD_ERR'"
}

echo_case "--no-huge, no --single-file-segments" "--no-huge -m $TP_MEM"
last=${FDS% }; last=${last##* }
check_eq "--no-huge: one region (one memfd) in the last memory table" "$last" 1

# Hugepages for case 2 and 3.
HUGE_PAGES=8
[ "$(id -u)" -eq 0 ] || skip "cases 2, 3: need root to reserve hugepages"
grep -qw hugetlbfs /proc/filesystems || skip "cases 2, 3: no hugetlbfs in this kernel"
old_pages=$(cat /proc/sys/vm/nr_hugepages)
at_exit "echo $old_pages >/proc/sys/vm/nr_hugepages"
echo $((old_pages + HUGE_PAGES)) >/proc/sys/vm/nr_hugepages 2>/dev/null
free_pages=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
if [ "${free_pages:-0}" -lt "$HUGE_PAGES" ]; then
	# Fragmented memory: free the page cache, compact, and ask once more.
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
	echo 1 >/proc/sys/vm/compact_memory 2>/dev/null
	echo $((old_pages + HUGE_PAGES)) >/proc/sys/vm/nr_hugepages 2>/dev/null
	free_pages=$(awk '/^HugePages_Free:/ { print $2 }' /proc/meminfo)
fi
[ "${free_pages:-0}" -ge "$HUGE_PAGES" ] ||
	skip "cases 2, 3: could reserve only ${free_pages:-0} of $HUGE_PAGES 2 MiB hugepages"
mkdir "$T/huge"
mount -t hugetlbfs -o pagesize=2M nodev "$T/huge" || skip "cases 2, 3: cannot mount hugetlbfs"
at_exit "rm -f '$T'/huge/*; umount '$T/huge'"
# 16 MiB in 8 files; 1100 mbufs (not testpmd's default 155456) so that
# testpmd's memory fits and does not grow past the 8 regions DPDK can send.
HUGE_MEM="--huge-dir $T/huge -m $((HUGE_PAGES * 2))"
HUGE_APP=(--total-num-mbufs=1100)

echo_case "2 MiB hugepages, no --single-file-segments" "$HUGE_MEM" "${HUGE_APP[@]}"
last=${FDS% }; last=${last##* }
check_eq "hugepages: $HUGE_PAGES regions (fds) in the last memory table" "$last" "$HUGE_PAGES"
rm -f "$T"/huge/*

echo "== a vhost that takes 4 regions (mem_slots=4) against the 8-region frontend"
vh_start vh ",mem_slots=4" --mode macswap --cpu 0 --verbose
TPF_MEM=$HUGE_MEM tp_launch_frontend fe "${VH_SOCK[vh]}" 1 --forward-mode=macswap "${HUGE_APP[@]}"
wait_until 30 grep -q 'cut off' "${VH_ERR[vh]}" ||
	fail "the vhost did not cut off a frontend with 8 regions for its 4 slots"
grep 'cut off' "${VH_ERR[vh]}" | head -n 1
check "the vhost named SET_MEM_TABLE as the reason" grep -q 'cut off: SET_MEM_TABLE' "${VH_ERR[vh]}"
# testpmd cannot start its port and exits (DPDK 22.11); stop it if not.
wait_until 15 eval "! alive ${TP_PID[fe]}"
echo "testpmd: $(grep -m 1 -i 'failed to start' "${TP_LOG[fe]}" || echo 'still running: stopped')"
tp_stop fe
rm -f "$T"/huge/*
check "the vhost is still up" alive "${VH_PID[vh]}"
pmd_run --port "path=${VH_SOCK[vh]},queues=1" --mode echo --count "$N" --cpu 1
pmd_summary
check_eq "next frontend: every frame verified" "${J[verified]}" "$N"
check_eq "next frontend: bad_payload == 0" "${J[bad_payload]}" 0
check_eq "next frontend: lost == 0" "${J[lost]}" 0
vh_stop vh
vh_summary
check_eq "vhost rx_errors == 0" "${VJ[rx_errors]}" 0
check_eq "vhost tx_errors == 0" "${VJ[tx_errors]}" 0
echo "ok: 1 region (--no-huge) and $HUGE_PAGES regions (hugepages) served; 8 regions for 4 slots refused"
