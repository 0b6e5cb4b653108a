#!/usr/bin/env bash
# vuser against what a user would pick instead, side by side in one run on one
# machine: DPDK 22.11's virtio_user and vhost, and DPDK's memif pair. Writes
# docs/bench.md (tables), docs/bench.png (frames per second against frame
# size) and, for a full run, the summary block of README.md. Measures; never
# gates.
#
# Usage: bash bench/run.sh [--quick] [--out DIR] [--no-readme]
#   --quick       one size (64 B), one repeat, 1 s points: a smoke run of every
#                 path in about a minute (also BENCH_QUICK=1)
#   --out DIR     write bench.md and bench.png there (default docs/)
#   --no-readme   leave README.md alone (a quick run always does)
# Settings (environment):
#   BENCH_SIZES="64 128 256 512 1024 1518"   frame sizes, bytes without FCS
#   BENCH_LAYOUTS="split packed"             virtqueue layouts
#   BENCH_REPEAT=3       runs per point; the table gives their median
#   BENCH_SECONDS=2      measured seconds per run
#   BENCH_WARMUP=0.5     seconds of traffic before the measurement starts
#   BENCH_LAT_SIZES="64 1518"  BENCH_LAT_SECONDS=2   ping-pong runs
#   BENCH_MEM_COUNT=200000     echo frames for each memory reading
#   BENCH_NO_INSTALL=1   do not apt-get what is missing
#   BENCH_LOG=FILE       keep the log of every command (default: a temp file)
# A full run takes 20 to 30 minutes on 2 cores, depending on the host.
#
# Cores: every busy-polling side has a core of its own. Frontends (vuser
# port, DPDK virtio_user, memif client) poll on core 0, backends (vuser
# vhost, DPDK vhost, memif server) on core 1; each testpmd's main lcore, idle
# at its prompt, sits on the other core.
#
# Who reads each rate (see the "How" section of bench.md):
#   pair 1 (into DPDK vhost rxonly): that vhost's Rx-pps, for both senders
#   pair 2 (from DPDK vhost txonly): that vhost's Tx-pps, for both receivers
#   pair 3 (from DPDK virtio_user txonly): its Tx-pps, for both receivers
#   pair 3b (into DPDK virtio_user rxonly): its Rx-pps, for both senders
#   pair 4 (a vuser pair against a DPDK pair and a memif pair, both
#     directions): each sender's own count (vuser-pmd's JSON; testpmd Tx-pps)
# testpmd's rates come from two `show port stats 0` calls around the window
# (it times them with its TSC); vuser-pmd's from --warmup and its own clock.
set -u
here=$(cd "$(dirname "$0")" && pwd)
export VUSER_ROOT=${VUSER_ROOT:-$(cd "$here/.." && pwd)}
cmdline="bash bench/run.sh${*:+ $*}"
start_epoch=$(date +%s)

QUICK=${BENCH_QUICK:-0}
OUT=${BENCH_OUT:-$VUSER_ROOT/docs}
README_UPDATE=1
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	--out) OUT=${2:?--out needs a directory}; shift ;;
	--no-readme) README_UPDATE=0 ;;
	-h | --help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "bench/run.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
	esac
	shift
done

if [ "$QUICK" = 1 ]; then
	read -ra SIZES <<<"${BENCH_SIZES:-64}"
	REPEAT=${BENCH_REPEAT:-1}
	DUR=${BENCH_SECONDS:-1}
	WARMUP=${BENCH_WARMUP:-0.3}
	read -ra LAT_SIZES <<<"${BENCH_LAT_SIZES:-64}"
	LAT_DUR=${BENCH_LAT_SECONDS:-1}
	MEM_COUNT=${BENCH_MEM_COUNT:-20000}
	README_UPDATE=0
else
	read -ra SIZES <<<"${BENCH_SIZES:-64 128 256 512 1024 1518}"
	REPEAT=${BENCH_REPEAT:-3}
	DUR=${BENCH_SECONDS:-2}
	WARMUP=${BENCH_WARMUP:-0.5}
	read -ra LAT_SIZES <<<"${BENCH_LAT_SIZES:-64 1518}"
	LAT_DUR=${BENCH_LAT_SECONDS:-2}
	MEM_COUNT=${BENCH_MEM_COUNT:-200000}
fi
read -ra LAYOUTS <<<"${BENCH_LAYOUTS:-split packed}"

# ------------------------------------------------------------ what it needs

# Debian packages for each missing piece: testpmd with the vhost and
# virtio_user PMDs, the memif PMD, gnuplot for the plot.
missing=()
command -v python3 >/dev/null 2>&1 || missing+=(python3)
command -v dpdk-testpmd >/dev/null 2>&1 || missing+=(dpdk-dev librte-net-vhost23 librte-net-virtio23)
for p in librte-net-vhost23 librte-net-virtio23 librte-net-memif23; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)
if [ ${#missing[@]} -gt 0 ]; then
	if [ "${BENCH_NO_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		echo "bench: installing ${missing[*]}" >&2
		export DEBIAN_FRONTEND=noninteractive
		apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 ||
			{ apt-get update -q >&2 && apt-get install -y -q --no-install-recommends "${missing[@]}" >&2; } ||
			{ echo "bench: apt-get install ${missing[*]} failed" >&2; exit 1; }
	else
		echo "bench: missing ${missing[*]} (as root: apt-get install ${missing[*]})" >&2
		exit 1
	fi
fi
mkdir -p /var/run/dpdk

# The build this bench measures, unless VUSER_BUILD names another.
if [ -z "${VUSER_BUILD:-}" ]; then
	make -s -j2 -C "$VUSER_ROOT" >&2 || { echo "bench: make failed" >&2; exit 1; }
fi

# shellcheck source=../tests/lib.sh
. "$VUSER_ROOT/tests/lib.sh"
# shellcheck source=lib.sh
. "$here/lib.sh"
need_testpmd
need_pmd
[ "$(nproc)" -ge 2 ] || fail "needs 2 cores"

RAW=$T/raw.tsv
BLOG=${BENCH_LOG:-$T/bench.log}
: >"$RAW"
: >"$BLOG"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# progress MSG: one line on stderr, with the time since the start.
progress() {
	printf '[%5ss] %s\n' "$(($(date +%s) - start_epoch))" "$*" >&2
}

# What each throughput reading is, for the progress lines (bench/report.py
# pairs them up).
declare -A WHAT=(
	[M1]="port txonly -> DPDK vhost rxonly (vhost Rx-pps)"
	[M2rx]="DPDK virtio_user txonly -> DPDK vhost rxonly (vhost Rx-pps)"
	[M2tx]="DPDK virtio_user txonly -> DPDK vhost rxonly (virtio_user Tx-pps)"
	[M3]="DPDK vhost txonly -> port rxonly (vhost Tx-pps)"
	[M4vh]="DPDK vhost txonly -> DPDK virtio_user rxonly (vhost Tx-pps)"
	[M4vu]="DPDK vhost txonly -> DPDK virtio_user rxonly (virtio_user Rx-pps)"
	[M5]="DPDK virtio_user txonly -> vuser vhost rxonly (virtio_user Tx-pps)"
	[M6]="vuser vhost txonly -> DPDK virtio_user rxonly (virtio_user Rx-pps)"
	[M7]="port txonly -> vuser vhost rxonly (port tx_pps)"
	[M8]="vuser vhost txonly -> port rxonly (vhost tx_pps)"
	[M9]="memif client txonly -> server rxonly (client Tx-pps)"
	[M10]="memif server txonly -> client rxonly (server Tx-pps)"
)

# rec KIND FIELDS...: one line of raw results (a throughput one shown too).
rec() {
	local IFS=$'\t'
	echo "$*" >>"$RAW"
	[ "$1" != T ] || progress "   $6 Mpps  ${WHAT[$2]:-$2}"
}

mpps() {
	awk -v p="$1" 'BEGIN { if (p + 0 > 0) printf "%.3f", p / 1e6; else print "nan" }'
}

# ---------------------------------------------------------------- the peers

WIN_LEN=$(awk -v w="$WARMUP" -v d="$DUR" 'BEGIN { print w + d }')
LAT_LEN=$(awk -v w="$WARMUP" -v d="$LAT_DUR" 'BEGIN { print w + d }')

# window NAME...: rates over DUR seconds after WARMUP, from testpmd NAME(s);
# WRX[NAME] / WTX[NAME] in packets per second.
declare -A WRX=() WTX=()
window() {
	local n
	sleep "$WARMUP"
	for n; do tpi_stats "$n"; done
	sleep "$DUR"
	for n; do
		tpi_stats "$n"
		WRX[$n]=$TPI_RX WTX[$n]=$TPI_TX
	done
}

# flowing NAME rx|tx WHAT: false (and a note) if testpmd NAME sees no traffic.
flowing() {
	tpi_wait_flow "$1" "$2" 10 && return 0
	progress "   no traffic: $3"
	return 1
}

# The DPDK vhost (VH) and the memif pair (MS server, MC client) live through
# the whole run, halted between uses; a virtio_user frontend (VU) is started
# for each use because it cannot reconnect.
VH_SOCK_DPDK=$T/dpdk-vhost.sock
MEMIF_SOCK=$T/memif.sock
start_peers() {
	rm -f "$VH_SOCK_DPDK" "$MEMIF_SOCK"
	tpi_launch VH 0 "net_vhost0,iface=$VH_SOCK_DPDK,queues=1" 0 --forward-mode=rxonly
	wait_until 10 test -S "$VH_SOCK_DPDK" || fail "DPDK vhost: no socket $VH_SOCK_DPDK"
	tpi_launch MS 0 "net_memif0,role=server,socket=$MEMIF_SOCK,socket-abstract=no,id=0" 0 \
		--forward-mode=rxonly
	tpi_launch MC 1 "net_memif0,role=client,socket=$MEMIF_SOCK,socket-abstract=no,id=0" 1 \
		--forward-mode=rxonly
}

# vu_launch NAME SOCK LAYOUT MODE [SIZE]: DPDK virtio_user on SOCK, forwarding
# on core 0, started.
vu_launch() {
	local name=$1 sock=$2 layout=$3 mode=$4 size=${5:-64}
	local pv=0
	[ "$layout" = packed ] && pv=1
	tpi_launch "$name" 1 "net_virtio_user0,path=$sock,queues=1,packed_vq=$pv" 1 \
		--forward-mode="$mode" --txpkts="$size"
	tpi_cmd "$name" start
}

pv_of() { [ "$1" = packed ] && echo 1 || echo 0; }

# Every backend the port meets here polls (DPDK's vhost and vuser's), so the
# port runs as a program facing one would: no kick fd, no kicks (notify=0).
PORT_ARGS="queues=1,notify=0"

# port_bg LAYOUT ARGS...: vuser-pmd --port on the DPDK vhost, core 0.
port_bg() {
	local layout=$1; shift
	pmd_bg --port "path=$VH_SOCK_DPDK,$PORT_ARGS,packed_vq=$(pv_of "$layout")" --cpu 0 "$@"
}

# port_end LAYOUT: stop the background port, check it ran LAYOUT; false if not.
port_end() {
	kill -TERM "$PMD_PID" 2>/dev/null
	pmd_wait 20
	[ "${J[packed]}" = "$(pv_of "$1")" ] && return 0
	progress "   the port did not negotiate $1 rings"
	return 1
}

# ---------------------------------------------------------------- one point

# point SIZE LAYOUT REP: every throughput run at one frame size and layout.
point() {
	local size=$1 layout=$2 rep=$3 v
	local -a k=("$layout" "$size" "$rep")

	# Pair 1, vuser: port txonly -> DPDK vhost rxonly, read by the vhost.
	tpi_fwd VH rxonly
	port_bg "$layout" --mode txonly --pkt-size "$size"
	v=nan
	if flowing VH rx "port -> DPDK vhost"; then
		window VH
		v=$(mpps "${WRX[VH]}")
	fi
	port_end "$layout" || v=nan
	rec T M1 "${k[@]}" "$v"

	# Pair 1 and 3, DPDK: virtio_user txonly -> the same vhost rxonly; then
	# pair 2, DPDK: the vhost txonly -> virtio_user rxonly.
	vu_launch VU "$VH_SOCK_DPDK" "$layout" txonly "$size"
	local m2rx=nan m2tx=nan m4vh=nan m4vu=nan
	if flowing VH rx "DPDK virtio_user -> DPDK vhost"; then
		window VH VU
		m2rx=$(mpps "${WRX[VH]}") m2tx=$(mpps "${WTX[VU]}")
	fi
	tpi_halt VU
	tpi_fwd VH txonly "$size"
	tpi_fwd VU rxonly
	if flowing VU rx "DPDK vhost -> DPDK virtio_user"; then
		window VH VU
		m4vh=$(mpps "${WTX[VH]}") m4vu=$(mpps "${WRX[VU]}")
	fi
	tpi_quit VU
	rec T M2rx "${k[@]}" "$m2rx"
	rec T M2tx "${k[@]}" "$m2tx"
	rec T M4vh "${k[@]}" "$m4vh"
	rec T M4vu "${k[@]}" "$m4vu"

	# Pair 2, vuser: the vhost (still txonly) -> port rxonly.
	port_bg "$layout" --mode rxonly
	v=nan
	if flowing VH tx "DPDK vhost -> port"; then
		window VH
		v=$(mpps "${WTX[VH]}")
	fi
	port_end "$layout" || v=nan
	rec T M3 "${k[@]}" "$v"
	tpi_halt VH

	if [ "$layout" = split ] || [ "$VHOST_PACKED" = 1 ]; then
		vuser_vhost_runs "$size" "$layout" "$rep"
	fi

	# Pair 4, memif: one layout only, measured with the split point.
	if [ "$layout" = "${LAYOUTS[0]}" ]; then
		tpi_fwd MS rxonly
		tpi_fwd MC txonly "$size"
		v=nan
		if flowing MC tx "memif client -> server"; then
			window MC
			v=$(mpps "${WTX[MC]}")
		fi
		rec T M9 any "$size" "$rep" "$v"
		tpi_halt MC
		tpi_fwd MS txonly "$size"
		tpi_fwd MC rxonly
		v=nan
		if flowing MS tx "memif server -> client"; then
			window MS
			v=$(mpps "${WTX[MS]}")
		fi
		rec T M10 any "$size" "$rep" "$v"
		tpi_halt MS
		tpi_halt MC
	fi
}

# vhost_ok LAYOUT: did the vuser vhost just stopped negotiate LAYOUT?
vhost_ok() {
	[ "${VJ[packed]}" = "$(pv_of "$1")" ] && return 0
	progress "   the vuser vhost did not negotiate $1 rings"
	return 1
}

# The runs with vuser's vhost device: pairs 3, 3b and 4.
vuser_vhost_runs() {
	local size=$1 layout=$2 rep=$3 v pv
	local -a k=("$layout" "$size" "$rep")
	pv=$(pv_of "$layout")

	# Pair 3: DPDK virtio_user txonly -> vuser vhost rxonly, read by virtio_user.
	vh_start rx "" --mode rxonly --cpu 1
	vu_launch VU "${VH_SOCK[rx]}" "$layout" txonly "$size"
	v=nan
	if flowing VU tx "DPDK virtio_user -> vuser vhost"; then
		window VU
		v=$(mpps "${WTX[VU]}")
	fi
	tpi_quit VU
	vh_stop rx
	vhost_ok "$layout" || v=nan
	rec T M5 "${k[@]}" "$v"

	# Pair 3b: vuser vhost txonly -> DPDK virtio_user rxonly, read by virtio_user.
	vh_start tx "" --mode txonly --pkt-size "$size" --cpu 1
	vu_launch VU "${VH_SOCK[tx]}" "$layout" rxonly
	v=nan
	if flowing VU rx "vuser vhost -> DPDK virtio_user"; then
		window VU
		v=$(mpps "${WRX[VU]}")
	fi
	tpi_quit VU
	vh_stop tx
	vhost_ok "$layout" || v=nan
	rec T M6 "${k[@]}" "$v"

	# Pair 4a: port txonly -> vuser vhost rxonly, the port's own count.
	vh_start rx "" --mode rxonly --cpu 1
	pmd_run --port "path=${VH_SOCK[rx]},$PORT_ARGS,packed_vq=$pv" --mode txonly --pkt-size "$size" \
		--warmup "$WARMUP" --duration "$WIN_LEN" --cpu 0
	v=$(mpps "${J[tx_pps]}")
	[ "${J[packed]}" = "$pv" ] || v=nan
	vh_stop rx
	rec T M7 "${k[@]}" "$v"

	# Pair 4b: vuser vhost txonly -> port rxonly, the vhost's own count.
	vh_start tx "" --mode txonly --pkt-size "$size" --cpu 1 --warmup "$WARMUP" --duration "$WIN_LEN"
	pmd_bg --port "path=${VH_SOCK[tx]},$PORT_ARGS,packed_vq=$pv" --mode rxonly --cpu 0
	vh_wait tx 60
	# The port ends by itself when the device goes; TERM in case it has not yet.
	kill -TERM "$PMD_PID" 2>/dev/null
	pmd_wait 20
	v=$(mpps "${VJ[tx_pps]}")
	vhost_ok "$layout" || v=nan
	rec T M8 "${k[@]}" "$v"
}

# ------------------------------------------------------------------ latency

# latency SIZE LAYOUT REP: pingpong from the port against vuser vhost and
# against DPDK vhost, both in macswap on core 1.
latency() {
	local size=$1 layout=$2 rep=$3 pv
	pv=$(pv_of "$layout")
	if [ "$layout" = split ] || [ "$VHOST_PACKED" = 1 ]; then
		vh_start ms "" --mode macswap --cpu 1
		pmd_run --port "path=${VH_SOCK[ms]},$PORT_ARGS,packed_vq=$pv" --mode pingpong \
			--pkt-size "$size" --warmup "$WARMUP" --duration "$LAT_LEN" --cpu 0
		vh_stop ms
		lat_rec Lv "$layout" "$size" "$rep" "$pv"
	fi
	tpi_fwd VH macswap
	pmd_run --port "path=$VH_SOCK_DPDK,$PORT_ARGS,packed_vq=$pv" --mode pingpong \
		--pkt-size "$size" --warmup "$WARMUP" --duration "$LAT_LEN" --cpu 0
	tpi_halt VH
	lat_rec Ld "$layout" "$size" "$rep" "$pv"
}

lat_rec() {
	local id=$1 layout=$2 size=$3 rep=$4 pv=$5 med=nan p99=nan
	if [ "${J[packed]}" = "$pv" ] && [ "${J[rtt_count]:-0}" -gt 0 ] &&
		[ "${J[bad_payload]}" = 0 ]; then
		med=${J[rtt_median_ns]} p99=${J[rtt_p99_ns]}
	else
		progress "   pingpong $id $layout: not counted (packed=${J[packed]} rtt_count=${J[rtt_count]:-0} bad=${J[bad_payload]})"
	fi
	rec L "$id" "$layout" "$size" "$rep" "$med" "$p99" "${J[rtt_count]:-0}" "${J[timeouts]:-0}"
}

# ------------------------------------------------------------------- memory

# memory: one port with defaults and one with queues=8,queue_size=1024, each
# after an echo run of MEM_COUNT frames (64-1518 bytes) on all its queues,
# against vuser vhost and against DPDK vhost.
memory() {
	local cfg extra q
	tpi_launch VH8 0 "net_vhost0,iface=$T/dpdk-vhost8.sock,queues=8" 0 \
		--forward-mode=macswap --rxq=8 --txq=8
	tpi_cmd VH8 start
	for cfg in defaults q8; do
		extra='' q=1
		[ "$cfg" = q8 ] && extra=,queues=8,queue_size=1024 q=8
		vh_start mem ",queues=$q" --mode macswap --cpu 1
		pmd_run --port "path=${VH_SOCK[mem]}$extra" --mode echo --count "$MEM_COUNT" --cpu 0
		vh_stop mem
		rec M "$cfg" vuser "${J[arena_size]}" "${J[vm_rss_kb]}" "${J[vm_hwm_kb]}" \
			"${J[rss_shmem_kb]}" "${VJ[vm_hwm_kb]}" "${J[verified]}"
		pmd_run --port "path=$T/dpdk-vhost8.sock$extra" --mode echo --count "$MEM_COUNT" --cpu 0
		rec M "$cfg" dpdk "${J[arena_size]}" "${J[vm_rss_kb]}" "${J[vm_hwm_kb]}" \
			"${J[rss_shmem_kb]}" "$(tpi_hwm VH8)" "${J[verified]}"
	done
	tpi_quit VH8
}

# ------------------------------------------------------------------ the run

progress "bench: sizes ${SIZES[*]}, layouts ${LAYOUTS[*]}, $REPEAT repeat(s), ${WARMUP}+${DUR} s per run; log $BLOG"

# Does the vuser vhost offer packed rings? A port that asks for them says
# what it got.
VHOST_PACKED=0
{
	vh_start probe "" --mode rxonly --cpu 1
	pmd_run --port "path=${VH_SOCK[probe]},packed_vq=1" --mode txonly --count 1000 --cpu 0
	vh_stop probe
} >>"$BLOG"
[ "${J[packed]}" = 1 ] && VHOST_PACKED=1
progress "vuser vhost offers packed rings: $([ "$VHOST_PACKED" = 1 ] && echo yes || echo no)"

start_peers >>"$BLOG"
for size in "${SIZES[@]}"; do
	for ((rep = 1; rep <= REPEAT; rep++)); do
		for layout in "${LAYOUTS[@]}"; do
			progress "throughput: $size B, $layout, run $rep of $REPEAT"
			# Where the host runs the two vCPUs can change during a run,
			# and with it the cost of every transfer between the cores:
			# a short reading before each point shows how much it moved.
			ns=$("$VUSER_BUILD/linebounce" 0 1 200000 2>>"$BLOG") || ns=nan
			rec P "$layout" "$size" "$rep" "$ns"
			point "$size" "$layout" "$rep" >>"$BLOG"
		done
	done
done
tpi_quit MS >>"$BLOG"
tpi_quit MC >>"$BLOG"

for size in "${LAT_SIZES[@]}"; do
	for ((rep = 1; rep <= REPEAT; rep++)); do
		for layout in "${LAYOUTS[@]}"; do
			progress "latency: $size B, $layout, run $rep of $REPEAT"
			latency "$size" "$layout" "$rep" >>"$BLOG"
		done
	done
done
tpi_quit VH >>"$BLOG"

# The floor under the ping-pongs: one cache line from core 0 to core 1 and
# back (bench/linebounce.c).
for ((rep = 1; rep <= REPEAT; rep++)); do
	progress "cache line round trip between cores 0 and 1, run $rep of $REPEAT"
	ns=$("$VUSER_BUILD/linebounce" 0 1 2000000 2>>"$BLOG") || ns=nan
	rec B "$rep" "$ns"
done

progress "memory"
memory >>"$BLOG"

# -------------------------------------------------------------------- report

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
META=$T/meta
{
	echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "command=$cmdline"
	echo "quick=$QUICK"
	echo "cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -n 1)"
	echo "cores=$(nproc)"
	echo "mem=$(awk '$1 == "MemTotal:" { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
	echo "kernel=$(uname -r)"
	echo "os=$(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "virt=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -n 1)"
	echo "dpdk=$(dpkg-query -W -f='${Version}' dpdk-dev 2>/dev/null)"
	echo "commit=$(git -C "$VUSER_ROOT" describe --always --dirty 2>/dev/null)"
	echo "sizes=${SIZES[*]}"
	echo "layouts=${LAYOUTS[*]}"
	echo "repeat=$REPEAT"
	echo "seconds=$DUR"
	echo "warmup=$WARMUP"
	echo "lat_seconds=$LAT_DUR"
	echo "mem_count=$MEM_COUNT"
	echo "vhost_packed=$VHOST_PACKED"
	echo "load_start=$load_start"
	echo "load_end=$load_end"
	echo "runtime=$(($(date +%s) - start_epoch))"
} >"$META"

mkdir -p "$OUT"
readme=''
[ "$README_UPDATE" = 1 ] && readme=$VUSER_ROOT/README.md
python3 "$here/report.py" "$RAW" "$META" "$OUT" "$readme" ||
	fail "report.py failed (raw results: $RAW)"
progress "wrote $OUT/bench.md$([ -s "$OUT/bench.png" ] && echo " and $OUT/bench.png")${readme:+; updated README.md}"
