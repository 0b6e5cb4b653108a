# shellcheck shell=bash
# Helpers for the interop test scripts (tests/t_*.sh), the bench and the demo.
# Source it; it needs bash 4. tests/run.sh exports VUSER_BUILD and VUSER_ROOT;
# without them the repo's build/ is used.
#
# What it gives:
#   T                       a private temp dir, removed on exit
#   PMD                     path of vuser-pmd
#   fail MSG / skip MSG     exit 1 / exit 77 (skip only outside CI)
#   need_testpmd / need_pmd / need_python
#   tp_start NAME MODE QUEUES [testpmd-args...]
#                           DPDK testpmd as a vhost-user backend (server) on
#                           $T/NAME.sock, forwarding lcore on core 1
#   tp_start_virtio NAME SOCK QUEUES [testpmd-args...]
#                           DPDK testpmd with its own virtio_user frontend,
#                           forwarding lcore on core 0
#   tp_stop NAME            SIGINT (final stats), bounded wait, then SIGKILL
#   tp_kill9 NAME           SIGKILL at once (no final stats)
#   tp_load NAME            parse its log into the array S[...]
#   pmd_run ARGS...         run vuser-pmd in the foreground (bounded), parse
#                           its JSON into J[...]; PMD_RC is its exit code
#   pmd_bg ARGS... / pmd_wait SECS
#                           the same, in the background
#   check MSG CMD...        fail with MSG unless CMD succeeds
#   check_eq MSG A B        fail unless the integers A and B are equal
#   check_echo N NAME       the common assertions after an echo run
#
# Every wait is bounded. Every process started here is stopped by its pid in
# the EXIT trap, and DPDK's runtime dir (/var/run/dpdk/PREFIX) is removed.

VUSER_ROOT=${VUSER_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
VUSER_BUILD=${VUSER_BUILD:-$VUSER_ROOT/build}
PMD=${PMD:-$VUSER_BUILD/vuser-pmd}
TESTPMD=${TESTPMD:-dpdk-testpmd}
# Memory for each testpmd (--no-huge -m) and its mbuf pool (--total-num-mbufs,
# appended before a test's own arguments, which win): 16384 mbufs of 2176
# bytes (36 MB) with room for the rings. testpmd's default pool (155456 mbufs,
# 338 MB) needs -m 1024, and clearing that much memory made every start take
# 2 s rather than 0.6 s; the tests start testpmd hundreds of times.
TP_MEM=${TP_MEM:-256}
TP_MBUFS=${TP_MBUFS-16384}
# How long vuser-pmd may run in pmd_run before it is killed.
PMD_TIMEOUT=${PMD_TIMEOUT:-100}
# Debian's python3 when it is there: a version manager's shim ahead of it on
# PATH costs about 0.4 s a call, and the restart loops call it hundreds of times.
if [ -z "${PYTHON:-}" ]; then
	PYTHON=python3
	[ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
fi
# DPDK's per-process runtime dirs.
DPDK_RUNDIR=${DPDK_RUNDIR:-/var/run/dpdk}

declare -A TP_PID=() TP_LOG=() TP_PREFIX=() TP_SOCK=()
declare -A J=() S=()
declare -a J_QUEUES_RX=() J_QUEUES_TX=() J_QUEUES_PROBES=()
PMD_PID='' PMD_RC='' PMD_JSON='' PMD_OUT='' PMD_ERR=''
_tp_counter=0
_pmd_counter=0
_lib_name=${0##*/}

T=$(mktemp -d "${TMPDIR:-/tmp}/vuser-t.XXXXXX") || { echo "FAIL: mktemp -d" >&2; exit 1; }

say() { printf '%s: %s\n' "$_lib_name" "$*"; }

# The last lines of every testpmd log and of vuser-pmd's stderr, for a failure.
_dump_logs() {
	local n f
	for n in "${!TP_LOG[@]}"; do
		f=${TP_LOG[$n]}
		[ -s "$f" ] || continue
		echo "---- testpmd $n: last lines of $f"
		sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$f" | grep -v '^[[:space:]]*$' | tail -n 12
	done
	if [ -n "$PMD_ERR" ] && [ -s "$PMD_ERR" ]; then
		echo "---- vuser-pmd stderr: last lines"
		tail -n 8 "$PMD_ERR"
	fi
	if [ -n "$PMD_JSON" ]; then
		echo "---- vuser-pmd JSON"
		echo "$PMD_JSON"
	fi
}

fail() {
	_dump_logs >&2
	echo "FAIL: $_lib_name: $*" >&2
	exit 1
}

# Skip only outside CI: in CI a missing peer is a broken CI, not a skip.
skip() {
	if [ "${CI:-}" = true ] || [ "${VUSER_NO_SKIP:-}" = 1 ]; then
		fail "would skip, but CI=true: $*"
	fi
	echo "SKIP: $*"
	exit 77
}

check() {
	local msg=$1; shift
	"$@" || fail "$msg"
}

check_eq() {
	[ "$2" -eq "$3" ] 2>/dev/null || fail "$1 (got $2, want $3)"
}

need_python() {
	command -v "$PYTHON" >/dev/null 2>&1 || skip "python3 not found"
}

need_testpmd() {
	need_python
	command -v "$TESTPMD" >/dev/null 2>&1 ||
		skip "$TESTPMD not found (apt-get install dpdk-dev librte-net-vhost23 librte-net-virtio23)"
	[ "$(nproc)" -ge 2 ] || skip "needs 2 cores (testpmd -l 0,1), have $(nproc)"
}

need_pmd() {
	[ -x "$PMD" ] || fail "$PMD not built"
}

# wait_until SECS CMD...: poll CMD, every 0.02 s for the first half second
# (most waits end there, and the restart loops wait thousands of times), then
# every 0.1 s; false on timeout.
wait_until() {
	local secs=$1; shift
	local end=$((SECONDS + secs)) n=0
	while ! "$@"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		if ((n++ < 25)); then sleep 0.02; else sleep 0.1; fi
	done
	return 0
}

alive() { kill -0 "$1" 2>/dev/null; }

# _wait_pid PID SECS: wait (bounded) for our child PID to exit; false if it
# is still running. Sets WAIT_RC to its exit status.
_wait_pid() {
	local pid=$1 secs=$2
	WAIT_RC=
	wait_until "$secs" eval "! alive $pid" || return 1
	wait "$pid" 2>/dev/null
	WAIT_RC=$?
	return 0
}

_tp_new() {
	local name=$1
	[ -z "${TP_PID[$name]:-}" ] || fail "testpmd $name already running"
	_tp_counter=$((_tp_counter + 1))
	TP_PREFIX[$name]=vut$$_${_tp_counter}
	TP_LOG[$name]=$T/testpmd-$name-$_tp_counter.log
}

# Start testpmd in the background with EAL args $1 (an array name) and app
# args after it (the caller waits until it forwards).
#
# Without -i, testpmd forwards until a read of its standard input returns.
# That input is a FIFO it opens for reading and writing itself: the read
# never sees end-of-file and waits until a signal ends it, and no fd stays
# open in this shell. (With --stats-period instead, testpmd notices a
# signal only at the end of a one-second sleep: a second per stop, and the
# tests stop testpmd hundreds of times.) Line-buffered output, so that the
# log shows when it forwards.
_tp_launch() {
	local name=$1 _ealvar=$2; shift 2
	local -n _tp_eal=$_ealvar
	local fifo=$T/testpmd-$name-$_tp_counter.in
	: >"${TP_LOG[$name]}"
	rm -f "$fifo"
	mkfifo "$fifo" || fail "mkfifo $fifo"
	stdbuf -oL "$TESTPMD" "${_tp_eal[@]}" --file-prefix="${TP_PREFIX[$name]}" -- \
		--nb-cores=1 ${TP_MBUFS:+--total-num-mbufs=$TP_MBUFS} "$@" \
		0<>"$fifo" >"${TP_LOG[$name]}" 2>&1 &
	TP_PID[$name]=$!
	echo "$TESTPMD ${_tp_eal[*]} --file-prefix=${TP_PREFIX[$name]} -- --nb-cores=1" \
		"${TP_MBUFS:+--total-num-mbufs=$TP_MBUFS} $*" \
		>"$T/testpmd-$name-$_tp_counter.cmd"
}

# Has testpmd NAME started forwarding? Fails the test if it died.
_tp_ready() {
	local name=$1
	alive "${TP_PID[$name]}" || fail "testpmd $name exited during start-up"
	grep -qs 'packet forwarding - ports=' "${TP_LOG[$name]}"
}

# tp_start NAME MODE QUEUES [testpmd app args...]
# DPDK's vhost PMD as the backend (server) on $T/NAME.sock. Main lcore 0,
# forwarding lcore 1: run vuser-pmd with --cpu 0.
# TP_VDEV_EXTRA (",client=1" etc.) is appended to the vdev.
tp_start() {
	local name=$1 mode=$2 queues=$3; shift 3
	_tp_new "$name"
	local sock=$T/$name.sock
	TP_SOCK[$name]=$sock
	rm -f "$sock"
	local eal=(-l 0,1 --main-lcore 0 --no-pci --no-huge -m "$TP_MEM"
		--vdev "net_vhost0,iface=$sock,queues=$queues${TP_VDEV_EXTRA:-}")
	_tp_launch "$name" eal --forward-mode="$mode" --rxq="$queues" --txq="$queues" "$@"
	wait_until 20 eval "_tp_ready '$name' && [ -S '$sock' ]" ||
		fail "testpmd $name: no socket $sock after 20 s"
}

# tp_start_virtio NAME SOCK QUEUES [testpmd app args...]
# DPDK's own virtio_user frontend connecting to SOCK. Main lcore 1,
# forwarding lcore 0.
tp_start_virtio() {
	local name=$1 sock=$2 queues=$3; shift 3
	_tp_new "$name"
	local eal=(-l 0,1 --main-lcore 1 --no-pci --no-huge -m "$TP_MEM" --single-file-segments
		--vdev "net_virtio_user0,path=$sock,queues=$queues,packed_vq=${TP_PACKED_VQ:-0}${TP_VDEV_EXTRA:-}")
	_tp_launch "$name" eal --rxq="$queues" --txq="$queues" "$@"
	wait_until 20 _tp_ready "$name" || fail "testpmd $name not forwarding after 20 s"
}

_tp_forget() {
	local name=$1
	rm -rf "${DPDK_RUNDIR:?}/${TP_PREFIX[$name]}"
	unset 'TP_PID[$name]'
}

# tp_stop NAME: SIGINT so that it prints its final stats; SIGKILL after 15 s.
tp_stop() {
	local name=$1 pid=${TP_PID[$1]:-}
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		kill -INT "$pid" 2>/dev/null
		if ! _wait_pid "$pid" 15; then
			echo "testpmd $name (pid $pid) ignored SIGINT for 15 s: SIGKILL" >&2
			{ kill -KILL "$pid"; _wait_pid "$pid" 5; } 2>/dev/null
		fi
	else
		wait "$pid" 2>/dev/null
	fi
	_tp_forget "$name"
}

tp_kill9() {
	local name=$1 pid=${TP_PID[$1]:-}
	[ -n "$pid" ] || return 0
	# (stderr off: bash would report the job as "Killed")
	{ kill -KILL "$pid"; _wait_pid "$pid" 5; } 2>/dev/null
	_tp_forget "$name"
}

# tp_load NAME [any]: parse testpmd NAME's log (stopped with tp_stop) into S:
#   S[rx_packets] S[rx_dropped] S[tx_packets] S[tx_dropped] S[rx_nombufs]
#   S[rx_error]       from the final "Forward statistics for port 0" block
#                     (RX-dropped is imissed, TX-dropped what tx_burst refused)
#   S[streams] S[qN_rx_packets] S[qN_tx_packets] S[qN_tx_dropped]
#                     per forwarding stream N (RX queue N -> TX queue N), when
#                     testpmd printed them (more than one stream)
#   S[final]          1 when the final block was there
# Without "any" a missing final block fails the test.
tp_load() {
	local name=$1 any=${2:-} out
	S=()
	out=$("$PYTHON" - "${TP_LOG[$name]}" <<'EOF'
import re, shlex, sys
text = open(sys.argv[1], errors="replace").read()
text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)
kv = re.compile(r"([A-Za-z][A-Za-z-]*):\s+(\d+)")
out = {}
def key(k):
    return k.lower().replace("-", "_")
# Final per-port block (single port): from its header to the end of the
# accumulated block.
i = text.rfind("Forward statistics for port 0")
if i >= 0:
    block = text[i:]
    j = block.find("Accumulated forward statistics")
    if j >= 0:
        block = block[:j]
    for k, v in kv.findall(block):
        out[key(k)] = int(v)
    out["final"] = 1
else:
    out["final"] = 0
for k in ("rx_packets", "rx_dropped", "tx_packets", "tx_dropped", "rx_nombufs", "rx_error"):
    out.setdefault(k, 0)
# Per-stream blocks (printed when there are more streams than ports):
# "Forward Stats for RX Port= 0/Queue= Q -> TX Port= 0/Queue= Q".
streams = {}
for m in re.finditer(r"Forward Stats for RX Port=\s*0/Queue=\s*(\d+) -> TX Port=\s*\d+/Queue=\s*\d+\s*-*\n([^\n]*)", text):
    streams[int(m.group(1))] = {key(k): int(v) for k, v in kv.findall(m.group(2))}
out["streams"] = len(streams)
for q, st in streams.items():
    for k in ("rx_packets", "tx_packets", "tx_dropped"):
        out["q%d_%s" % (q, k)] = st.get(k, 0)
for k, v in out.items():
    print("S[%s]=%s" % (k, shlex.quote(str(v))))
EOF
) || fail "cannot parse ${TP_LOG[$name]}"
	eval "$out"
	[ -n "$any" ] || [ "${S[final]}" = 1 ] ||
		fail "testpmd $name printed no final forward statistics"
}

# Frames testpmd counted as dropped (after tp_load): RX-dropped (imissed),
# TX-dropped (what its tx_burst refused; the vhost PMD's own "missed" count,
# its TX-errors, is the same frames and is not added again) and RX-error.
tp_drops() {
	echo $((S[rx_dropped] + S[tx_dropped] + S[rx_error]))
}

# check_echo N NAME: the assertions after an echo run of N frames through
# testpmd NAME (macswap or io), which must be stopped and tp_load'ed.
check_echo() {
	local n=$1 name=$2 vdrops tdrops
	check_eq "vuser-pmd sent every frame: tx_packets == $n" "${J[tx_packets]}" "$n"
	check_eq "no corrupt, duplicate or unknown frame: bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "verified == tx_packets - lost" "${J[verified]}" $((J[tx_packets] - J[lost]))
	check_eq "rx_packets == verified + bad_payload" "${J[rx_packets]}" $((J[verified] + J[bad_payload]))
	vdrops=$((J[dropped] + J[rx_drops]))
	tdrops=$(tp_drops)
	check_eq "every lost frame counted: lost == vuser drops ($vdrops) + testpmd $name drops ($tdrops)" \
		"${J[lost]}" $((vdrops + tdrops))
	check_eq "no frame lost with the window" "${J[lost]}" 0
	# Echo probes that came back passed through testpmd's forwarding too.
	check_eq "testpmd $name RX-packets == vuser tx_packets + probes back (${J[probes_back]:-0})" \
		"${S[rx_packets]}" $((J[tx_packets] + ${J[probes_back]:-0}))
	check_eq "testpmd $name TX-packets == vuser rx_packets + probes back" \
		"${S[tx_packets]}" $((J[rx_packets] + ${J[probes_back]:-0}))
	check_eq "rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "link still up at the end" "${J[link]}" 1
}

# _pmd_parse: read the last JSON line of $PMD_OUT into J and J_QUEUES_*.
_pmd_parse() {
	local out
	J=() J_QUEUES_RX=() J_QUEUES_TX=() J_QUEUES_PROBES=()
	PMD_JSON=$(grep '^[[:space:]]*{' "$PMD_OUT" | tail -n 1)
	[ -n "$PMD_JSON" ] || fail "vuser-pmd printed no JSON (exit $PMD_RC)"
	out=$("$PYTHON" - "$PMD_JSON" <<'EOF'
import json, shlex, sys
d = json.loads(sys.argv[1])
need = ["tx_packets", "rx_packets", "tx_pps", "rx_pps", "dropped", "bad_payload",
        "lost", "verified", "link", "rx_errors", "tx_errors", "rx_drops", "queues"]
missing = [k for k in need if k not in d]
if missing:
    sys.exit("JSON lacks %s" % ", ".join(missing))
def num(v):
    if isinstance(v, bool):
        return int(v)
    if not isinstance(v, (int, float)):
        sys.exit("not a number: %r" % (v,))
    return v
for k, v in d.items():
    if isinstance(v, (bool, int, float)):
        print("J[%s]=%s" % (k, shlex.quote(str(num(v)))))
q = d["queues"]
if not isinstance(q, list) or not q:
    sys.exit("queues is not a non-empty array")
rx, tx, pb = [], [], []
for e in q:
    rx.append(str(int(num(e["rx"]))))
    tx.append(str(int(num(e["tx"]))))
    pb.append(str(int(num(e.get("probes_back", 0)))))
print("J_QUEUES_RX=(%s)" % " ".join(rx))
print("J_QUEUES_TX=(%s)" % " ".join(tx))
print("J_QUEUES_PROBES=(%s)" % " ".join(pb))
EOF
) || fail "bad JSON from vuser-pmd: $PMD_JSON"
	eval "$out"
}

# pmd_run ARGS...: run vuser-pmd --json ARGS in the foreground, at most
# PMD_TIMEOUT seconds; fail unless it exits 0; parse its JSON into J.
pmd_run() {
	_pmd_counter=$((_pmd_counter + 1))
	PMD_OUT=$T/pmd-$_pmd_counter.out PMD_ERR=$T/pmd-$_pmd_counter.err PMD_JSON=
	echo "+ vuser-pmd $*"
	# --foreground: stay in our process group, so that a signal to the group
	# (tests/run.sh's own timeout) reaches vuser-pmd too.
	timeout --foreground -k 5 "$PMD_TIMEOUT" "$PMD" --json "$@" >"$PMD_OUT" 2>"$PMD_ERR"
	PMD_RC=$?
	[ "$PMD_RC" -ne 124 ] && [ "$PMD_RC" -ne 137 ] ||
		fail "vuser-pmd still running after ${PMD_TIMEOUT} s: killed"
	[ "$PMD_RC" -eq 0 ] || fail "vuser-pmd exited $PMD_RC"
	_pmd_parse
}

# pmd_bg ARGS...: the same in the background (PMD_PID); pmd_wait SECS then
# waits for it (bounded; SIGKILL and fail after SECS) and parses its JSON.
pmd_bg() {
	_pmd_counter=$((_pmd_counter + 1))
	PMD_OUT=$T/pmd-$_pmd_counter.out PMD_ERR=$T/pmd-$_pmd_counter.err PMD_JSON=
	echo "+ vuser-pmd $* &"
	"$PMD" --json "$@" >"$PMD_OUT" 2>"$PMD_ERR" &
	PMD_PID=$!
}

pmd_wait() {
	local secs=$1 pid=$PMD_PID
	if ! _wait_pid "$pid" "$secs"; then
		kill -KILL "$pid" 2>/dev/null
		_wait_pid "$pid" 5
		PMD_PID=
		fail "vuser-pmd (pid $pid) still running after $secs s: killed"
	fi
	PMD_PID='' PMD_RC=$WAIT_RC
	if [ "$PMD_RC" -ge 128 ]; then
		fail "vuser-pmd died of signal $((PMD_RC - 128))"
	fi
	[ "$PMD_RC" -eq 0 ] || fail "vuser-pmd exited $PMD_RC"
	_pmd_parse
}

# One line with vuser-pmd's main counters, for the log.
pmd_summary() {
	local k line=
	for k in tx_packets rx_packets verified lost bad_payload dropped rx_drops rx_errors tx_errors link tx_pps rx_pps; do
		line+="$k=${J[$k]:-?} "
	done
	echo "vuser-pmd: ${line}queues rx=(${J_QUEUES_RX[*]}) tx=(${J_QUEUES_TX[*]})"
}

tp_summary() {
	echo "testpmd $1: RX-packets=${S[rx_packets]} RX-dropped=${S[rx_dropped]} TX-packets=${S[tx_packets]} TX-dropped=${S[tx_dropped]} RX-nombufs=${S[rx_nombufs]} RX-error=${S[rx_error]}"
}

_lib_cleanup() {
	local rc=$? n
	trap - EXIT INT TERM
	if [ -n "$PMD_PID" ] && alive "$PMD_PID"; then
		kill -KILL "$PMD_PID" 2>/dev/null
		_wait_pid "$PMD_PID" 5
	fi
	for n in "${!TP_PID[@]}"; do
		tp_stop "$n" >/dev/null 2>&1
	done
	rm -rf "$T"
	exit "$rc"
}
trap _lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# vuser's own vhost device (vuser-pmd --vhost) as the peer, for
# tests/t_vhost_*.sh, tests/t_loop_*.sh and bench/run.sh. Added after the
# helpers above, which they leave as they are.
#
#   vh_start NAME EXTRA [vuser-pmd args...]
#                       vuser-pmd --json --vhost "path=$T/NAME.sock$EXTRA" ARGS
#                       in the background (VH_PID[NAME], VH_SOCK[NAME]); waits
#                       for the socket (unless EXTRA has client=1)
#   vh_connect NAME SOCK EXTRA [vuser-pmd args...]
#                       the same as a client: path=SOCK,client=1$EXTRA, for a
#                       port that listens on SOCK; does not wait
#   vh_stop NAME        SIGTERM (it prints its JSON then), bounded wait, then
#                       parse its JSON into VJ[...], VJ_QUEUES_RX/TX/PROBES
#                       (J stays as it was)
#   vh_wait NAME SECS   wait for it to end by itself (--count, --duration), parse
#   vh_kill9 NAME       SIGKILL, no JSON
#   vh_fds NAME         its number of open fds
#   vh_shared_maps NAME its writable shared mappings: its own pool, plus a
#                       connected frontend's memory
#   vh_summary          one line with VJ's main counters
#   tp_start_frontend NAME SOCK QUEUES [testpmd app args...]
#                       DPDK testpmd's virtio_user frontend connecting to SOCK,
#                       main lcore 0 and forwarding lcore 1 (so vuser-pmd
#                       --cpu 0); TP_VDEV_EXTRA is appended to its vdev,
#                       TP_PACKED_VQ (0) is its packed_vq, and
#                       TPF_MEM (words) replaces its memory options
#   tp_launch_frontend ...  the same, without waiting for it to forward
#   check_echo_probed N NAME
#                       check_echo for testpmd NAME as the frontend of vuser's
#                       vhost (echo): its counts exceed vuser's by the probes
#                       that came back (probes_back >= 1) both ways, and
#                       nothing was dropped anywhere
#   at_exit CMD         run CMD (eval) on exit, last in first out, once the
#                       vhost devices and testpmds have stopped and before $T
#                       is removed
# The first vh_start / at_exit installs an EXIT trap that does that, then
# the usual cleanup (_lib_cleanup).

declare -A VH_PID=() VH_OUT=() VH_ERR=() VH_SOCK=() VJ=()
declare -a VJ_QUEUES_RX=() VJ_QUEUES_TX=() VJ_QUEUES_PROBES=() _VT_AT_EXIT=()
VH_RC='' VH_JSON=''
_vh_counter=0
_vt_trapped=''

_vt_cleanup() {
	local rc=$? n i
	for n in "${!VH_PID[@]}"; do
		if alive "${VH_PID[$n]}"; then
			{ kill -KILL "${VH_PID[$n]}"; _wait_pid "${VH_PID[$n]}" 5; } 2>/dev/null
		fi
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for n in "${!VH_ERR[@]}"; do
			[ -s "${VH_ERR[$n]}" ] || continue
			echo "---- vuser-pmd --vhost $n: last lines of stderr" >&2
			tail -n 8 "${VH_ERR[$n]}" >&2
		done
	fi
	# testpmd goes before the at_exit commands (they may unmount its memory).
	for n in "${!TP_PID[@]}"; do
		tp_stop "$n" >/dev/null 2>&1
	done
	for ((i = ${#_VT_AT_EXIT[@]} - 1; i >= 0; i--)); do
		eval "${_VT_AT_EXIT[i]}" >/dev/null 2>&1
	done
	(exit "$rc")
	_lib_cleanup
}

_vt_trap() {
	[ -z "$_vt_trapped" ] || return 0
	_vt_trapped=1
	trap _vt_cleanup EXIT
}

at_exit() {
	_vt_trap
	_VT_AT_EXIT+=("$1")
}

# _vh_launch NAME SOCK EXTRA [args...]: vuser-pmd --vhost path=SOCK$EXTRA in the background.
_vh_launch() {
	local name=$1 sock=$2 extra=$3; shift 3
	_vt_trap
	[ -z "${VH_PID[$name]:-}" ] || fail "vhost $name already running"
	_vh_counter=$((_vh_counter + 1))
	VH_SOCK[$name]=$sock
	VH_OUT[$name]=$T/vhost-$name-$_vh_counter.out
	VH_ERR[$name]=$T/vhost-$name-$_vh_counter.err
	echo "+ vuser-pmd --vhost path=$sock$extra $* &"
	"$PMD" --json --vhost "path=$sock$extra" "$@" >"${VH_OUT[$name]}" 2>"${VH_ERR[$name]}" &
	VH_PID[$name]=$!
}

# vh_connect NAME SOCK EXTRA [args...]: the device as a client (client=1) of a
# port listening on SOCK; it does not wait for anything.
vh_connect() {
	local name=$1 sock=$2 extra=$3; shift 3
	_vh_launch "$name" "$sock" ",client=1$extra" "$@"
}

vh_start() {
	local name=$1 extra=$2; shift 2
	local sock=$T/$name.sock
	[[ $extra == *client=1* ]] || rm -f "$sock"
	_vh_launch "$name" "$sock" "$extra" "$@"
	[[ $extra == *client=1* ]] && return 0
	wait_until 10 eval "[ -S '$sock' ] || ! alive ${VH_PID[$name]}"
	alive "${VH_PID[$name]}" || fail "vuser-pmd --vhost $name exited during start-up"
	[ -S "$sock" ] || fail "vuser-pmd --vhost $name: no socket $sock after 10 s"
}

# Parse vhost NAME's JSON into VJ with _pmd_parse, leaving J and PMD_* alone.
_vh_parse() {
	local name=$1 k
	local -A keep=()
	local keep_rx=("${J_QUEUES_RX[@]}") keep_tx=("${J_QUEUES_TX[@]}") keep_pb=("${J_QUEUES_PROBES[@]}")
	local keep_out=$PMD_OUT keep_err=$PMD_ERR keep_json=$PMD_JSON keep_rc=$PMD_RC
	for k in "${!J[@]}"; do keep[$k]=${J[$k]}; done
	PMD_OUT=${VH_OUT[$name]} PMD_ERR=${VH_ERR[$name]} PMD_RC=$VH_RC
	_pmd_parse
	VJ=()
	for k in "${!J[@]}"; do VJ[$k]=${J[$k]}; done
	VJ_QUEUES_RX=("${J_QUEUES_RX[@]}") VJ_QUEUES_TX=("${J_QUEUES_TX[@]}")
	VJ_QUEUES_PROBES=("${J_QUEUES_PROBES[@]}")
	VH_JSON=$PMD_JSON
	J=()
	for k in "${!keep[@]}"; do J[$k]=${keep[$k]}; done
	J_QUEUES_RX=("${keep_rx[@]}") J_QUEUES_TX=("${keep_tx[@]}") J_QUEUES_PROBES=("${keep_pb[@]}")
	PMD_OUT=$keep_out PMD_ERR=$keep_err PMD_JSON=$keep_json PMD_RC=$keep_rc
}

# _vh_reap NAME SECS: wait for vhost NAME to exit (SIGKILL and fail after
# SECS), require exit 0, parse its JSON.
_vh_reap() {
	local name=$1 secs=$2 pid=${VH_PID[$1]}
	if ! _wait_pid "$pid" "$secs"; then
		kill -KILL "$pid" 2>/dev/null
		_wait_pid "$pid" 5
		unset 'VH_PID[$name]'
		fail "vuser-pmd --vhost $name (pid $pid) still running after $secs s: killed"
	fi
	unset 'VH_PID[$name]'
	VH_RC=$WAIT_RC
	[ "$VH_RC" -lt 128 ] || fail "vuser-pmd --vhost $name died of signal $((VH_RC - 128))"
	[ "$VH_RC" -eq 0 ] || fail "vuser-pmd --vhost $name exited $VH_RC"
	_vh_parse "$name"
}

vh_stop() {
	local name=$1 pid=${VH_PID[$1]:-}
	[ -n "$pid" ] || fail "vhost $name is not running"
	alive "$pid" || fail "vuser-pmd --vhost $name (pid $pid) exited before it was stopped"
	kill -TERM "$pid"
	_vh_reap "$name" 15
}

vh_wait() {
	[ -n "${VH_PID[$1]:-}" ] || fail "vhost $1 is not running"
	_vh_reap "$1" "$2"
}

vh_kill9() {
	local name=$1 pid=${VH_PID[$1]:-}
	[ -n "$pid" ] || return 0
	{ kill -KILL "$pid"; _wait_pid "$pid" 5; } 2>/dev/null
	unset 'VH_PID[$name]'
}

vh_fds() {
	local pid=${VH_PID[$1]:-}
	[ -n "$pid" ] && alive "$pid" || fail "vhost $1 is not running"
	ls "/proc/$pid/fd" | wc -l
}

# Writable shared mappings (memfd, hugetlbfs files): the vhost's own pool
# and what a frontend's memory table maps.
vh_shared_maps() {
	local pid=${VH_PID[$1]:-}
	[ -n "$pid" ] && alive "$pid" || fail "vhost $1 is not running"
	awk '$2 ~ /^rw.s/' "/proc/$pid/maps" | wc -l
}

vh_summary() {
	local k line=
	for k in rx_packets tx_packets dropped rx_drops tx_drops rx_errors tx_errors link rx_pps tx_pps; do
		line+="$k=${VJ[$k]:-?} "
	done
	echo "vuser vhost: ${line}queues rx=(${VJ_QUEUES_RX[*]}) tx=(${VJ_QUEUES_TX[*]})"
}

tp_start_frontend() {
	tp_launch_frontend "$@"
	wait_until 30 _tp_ready "$1" || fail "testpmd $1 not forwarding after 30 s"
}

# tp_launch_frontend: the same without waiting for it to forward (for a
# frontend that the vhost is expected to refuse).
tp_launch_frontend() {
	local name=$1 sock=$2 queues=$3; shift 3
	_tp_new "$name"
	local -a mem
	# shellcheck disable=SC2206
	mem=(${TPF_MEM:---no-huge -m $TP_MEM --single-file-segments})
	local eal=(-l 0,1 --main-lcore 0 --no-pci "${mem[@]}"
		--vdev "net_virtio_user0,path=$sock,queues=$queues,packed_vq=${TP_PACKED_VQ:-0}${TP_VDEV_EXTRA:-}")
	_tp_launch "$name" eal --rxq="$queues" --txq="$queues" "$@"
}

check_echo_probed() {
	local n=$1 name=$2 p
	check_eq "vuser-pmd sent every frame: tx_packets == $n" "${J[tx_packets]}" "$n"
	check_eq "no corrupt, duplicate or unknown frame: bad_payload == 0" "${J[bad_payload]}" 0
	check_eq "verified == tx_packets - lost" "${J[verified]}" $((J[tx_packets] - J[lost]))
	check_eq "rx_packets == verified + bad_payload" "${J[rx_packets]}" $((J[verified] + J[bad_payload]))
	check_eq "no frame lost" "${J[lost]}" 0
	check_eq "vuser dropped nothing" $((J[dropped] + J[rx_drops])) 0
	check_eq "testpmd $name dropped nothing" "$(tp_drops)" 0
	p=${J[probes_back]:?vuser-pmd JSON has no probes_back}
	echo "testpmd $name forwarded $p probe frame(s) besides the $n counted ones (vuser sent ${J[probes_sent]:-?})"
	check "at least one probe came back (probes_back $p)" [ "$p" -ge 1 ]
	check_eq "testpmd $name RX-packets == vuser tx_packets + $p probes back" \
		"${S[rx_packets]}" $((J[tx_packets] + p))
	check_eq "testpmd $name TX-packets == vuser rx_packets + $p probes back" \
		"${S[tx_packets]}" $((J[rx_packets] + p))
	check_eq "rx_errors == 0" "${J[rx_errors]}" 0
	check_eq "tx_errors == 0" "${J[tx_errors]}" 0
	check_eq "link still up at the end" "${J[link]}" 1
	PROBES=$p
}

# ---------------------------------------------------------------------------
# A vuser-pmd --port run that outlives its backends (server=1 or reconnect),
# for tests/t_server_*.sh and tests/t_reconnect_*.sh. Run it with pmd_bg and
# --stats (a short period: the live line is what these read).
#
#   pmd_ups / pmd_downs     how many "link up" / "link down" lines it printed
#   pmd_wait_ups K SECS     wait (bounded) until it printed K link-up lines
#   pmd_wait_downs K SECS   the same for link-down lines
#   pmd_session_rx_ok CHANGES MIN
#                           its last live line is from the session that began
#                           after CHANGES link changes, and every queue
#                           received at least MIN frames in it ("since up")
#   pmd_down_rx K           the per-queue counts ("a/b/...") of the K-th
#                           link-down line: what each queue received in the
#                           session that ended there
#   check_all_ge WHAT COUNTS MIN
#                           every count in "a/b/..." is >= MIN
#   tp_start_vhost_client NAME SOCK MODE QUEUES [testpmd app args...]
#                           DPDK's vhost PMD connecting (client=1) to SOCK, a
#                           port listening there; forwarding lcore on core 1.
#   proc_fds PID / proc_rss_kib PID
#                           open fds / resident KiB (VmRSS) of process PID

pmd_ups() { grep -c '^vuser-pmd: link up' "$PMD_ERR"; }
pmd_downs() { grep -c '^vuser-pmd: link down' "$PMD_ERR"; }

pmd_wait_ups() {
	wait_until "$2" eval "[ \$(pmd_ups) -ge $1 ] || ! alive $PMD_PID"
	alive "$PMD_PID" || fail "vuser-pmd exited while waiting for link up number $1"
	[ "$(pmd_ups)" -ge "$1" ] || fail "no link up number $1 within $2 s (saw $(pmd_ups))"
}

pmd_wait_downs() {
	wait_until "$2" eval "[ \$(pmd_downs) -ge $1 ] || ! alive $PMD_PID"
	alive "$PMD_PID" || fail "vuser-pmd exited while waiting for link down number $1"
	[ "$(pmd_downs)" -ge "$1" ] || fail "no link down number $1 within $2 s (saw $(pmd_downs))"
}

# The "since up" counts of the last live line, if it shows CHANGES changes.
_pmd_live_rx() {
	grep '^\[' "$PMD_ERR" | tail -n 1 |
		sed -n "s/.* changes $1 tx .*| since up: rx \\([0-9/]*\\)\$/\\1/p"
}

check_all_ge() {
	local what=$1 counts=$2 min=$3 c
	[ -n "$counts" ] || fail "$what: no counts"
	for c in ${counts//\// }; do
		[ "$c" -ge "$min" ] || fail "$what: a queue received $c < $min frames (per queue: $counts)"
	done
}

_all_ge() {
	local c
	[ -n "$1" ] || return 1
	for c in ${1//\// }; do
		[ "$c" -ge "$2" ] || return 1
	done
}

pmd_session_rx_ok() {
	_all_ge "$(_pmd_live_rx "$1")" "$2"
}

pmd_down_rx() {
	grep '^vuser-pmd: link down' "$PMD_ERR" | sed -n "${1}p" | sed -n 's/.*since up: rx \([0-9/]*\)$/\1/p'
}

proc_fds() { ls "/proc/$1/fd" | wc -l; }
proc_rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

tp_start_vhost_client() {
	local name=$1 sock=$2 mode=$3 queues=$4; shift 4
	_tp_new "$name"
	local eal=(-l 0,1 --main-lcore 0 --no-pci --no-huge -m "$TP_MEM"
		--vdev "net_vhost0,iface=$sock,queues=$queues,client=1${TP_VDEV_EXTRA:-}")
	_tp_launch "$name" eal --forward-mode="$mode" --rxq="$queues" --txq="$queues" "$@"
	wait_until 30 _tp_ready "$name" || fail "testpmd $name not forwarding after 30 s"
}
