# shellcheck shell=bash
# DPDK testpmd driven through its command line (-i), for the bench. Source it
# after tests/lib.sh (it uses T, TESTPMD, DPDK_RUNDIR, wait_until,
# alive, fail, at_exit).
#
# Why interactive: `show port stats 0` prints Rx-pps and Tx-pps over the time
# since the previous `show port stats 0`, measured by testpmd with its TSC.
# Two calls bracket a window of any length, so a point needs seconds rather
# than the many one-second samples of --stats-period; and one process can
# change forwarding mode and frame size without a restart.
#
#   tpi_launch NAME MAIN_LCORE VDEV FRONTEND [testpmd app args...]
#                   testpmd -i in the background; the forwarding lcore is
#                   the other of cores 0 and 1. FRONTEND=1 adds
#                   --single-file-segments (a frontend's memory is one file,
#                   one vhost-user region). Returns once the prompt is up.
#   tpi_cmd NAME CMD
#                   send one command line and wait for the next prompt
#   tpi_fwd NAME MODE [SIZE]
#                   stop forwarding, set the mode (and txonly's frame size),
#                   start again
#   tpi_halt NAME   stop forwarding (its forwarding lcore then sleeps)
#   tpi_stats NAME  `show port stats 0`: TPI_RXP/TPI_TXP (packets so far),
#                   TPI_RX/TPI_TX (packets per second since the last call)
#   tpi_wait_flow NAME rx|tx [SECS]
#                   until that counter moves (bounded; false if it never does)
#   tpi_hwm NAME    VmHWM of the process, KiB
#   tpi_quit NAME   quit, bounded wait, then SIGINT, then SIGKILL
#
# Every process is stopped by its pid at exit (at_exit), and its DPDK runtime
# dir removed. Output goes through stdbuf -oL: testpmd's statistics are
# stdio, block-buffered into a file otherwise.

declare -A TPI_PID=() TPI_FD=() TPI_LOG=() TPI_PREFIX=() TPI_FIFO=()
TPI_RX='' TPI_TX='' TPI_RXP='' TPI_TXP=''
# Where the output of the last tpi_cmd starts in its log (bytes).
TPI_OFF=0
_tpi_counter=0
_tpi_trapped=''

# _tpi_prompt_after NAME OFFSET: has a prompt been printed past byte OFFSET?
_tpi_prompt_after() {
	local name=$1 off=$2
	alive "${TPI_PID[$name]}" || fail "testpmd $name (pid ${TPI_PID[$name]}) exited; see ${TPI_LOG[$name]}"
	tail -c +"$((off + 1))" "${TPI_LOG[$name]}" | grep -q 'testpmd> '
}

# _tpi_wait_prompt NAME OFFSET SECS: a prompt past OFFSET within SECS. Polls
# every 10 ms: a point issues dozens of commands that each take a few ms.
_tpi_wait_prompt() {
	local name=$1 off=$2 end=$((SECONDS + $3))
	until _tpi_prompt_after "$name" "$off"; do
		[ "$SECONDS" -lt "$end" ] || return 1
		sleep 0.01
	done
}

tpi_launch() {
	local name=$1 main=$2 vdev=$3 frontend=$4; shift 4
	local fifo log prefix fd
	[ -z "${TPI_PID[$name]:-}" ] || fail "testpmd $name already running"
	if [ -z "$_tpi_trapped" ]; then
		_tpi_trapped=1
		at_exit tpi_quit_all
	fi
	_tpi_counter=$((_tpi_counter + 1))
	prefix=vub$$_$_tpi_counter
	log=$T/tpi-$name-$_tpi_counter.log
	fifo=$T/tpi-$name-$_tpi_counter.in
	mkfifo "$fifo" || fail "mkfifo $fifo"
	# Read-write: opening does not wait for a reader, and testpmd never
	# sees end-of-file while the bench holds the fd.
	exec {fd}<>"$fifo"
	: >"$log"
	# shellcheck disable=SC2054 # "-l 0,1" is one argument
	# testpmd's default mbuf pool (338 MB), as a user would run it: the
	# tests' smaller one (tests/lib.sh TP_MBUFS) is not what is compared.
	local eal=(-l 0,1 --main-lcore "$main" --no-pci --no-huge -m "${TPI_MEM:-1024}")
	[ "$frontend" = 1 ] && eal+=(--single-file-segments)
	echo "+ $TESTPMD ${eal[*]} --file-prefix=$prefix --vdev $vdev -- -i --nb-cores=1 $*"
	stdbuf -oL "$TESTPMD" "${eal[@]}" --file-prefix="$prefix" --vdev "$vdev" \
		-- -i --nb-cores=1 "$@" <&"$fd" >"$log" 2>&1 &
	TPI_PID[$name]=$!
	TPI_FD[$name]=$fd
	TPI_LOG[$name]=$log
	TPI_PREFIX[$name]=$prefix
	TPI_FIFO[$name]=$fifo
	# tests/lib.sh shows the tail of every TP_LOG when something fails.
	# shellcheck disable=SC2034 # read by tests/lib.sh
	TP_LOG["tpi-$name"]=$log
	_tpi_wait_prompt "$name" 0 30 || fail "testpmd $name: no prompt after 30 s"
}

tpi_cmd() {
	local name=$1 cmd=$2 off
	[ -n "${TPI_PID[$name]:-}" ] || fail "testpmd $name is not running"
	off=$(stat -c %s "${TPI_LOG[$name]}")
	TPI_OFF=$off
	printf '%s\n' "$cmd" >&"${TPI_FD[$name]}"
	_tpi_wait_prompt "$name" "$off" 30 ||
		fail "testpmd $name: no prompt 30 s after '$cmd'"
}

tpi_halt() {
	tpi_cmd "$1" stop
}

tpi_fwd() {
	local name=$1 mode=$2 size=${3:-}
	tpi_cmd "$name" stop
	tpi_cmd "$name" "set fwd $mode"
	[ -z "$size" ] || tpi_cmd "$name" "set txpkts $size"
	tpi_cmd "$name" start
}

tpi_stats() {
	local name=$1
	tpi_cmd "$name" "show port stats 0"
	# From the command on: the vhost PMD's own log lines can come in between.
	read -r TPI_RXP TPI_TXP TPI_RX TPI_TX < <(tail -c +"$((TPI_OFF + 1))" "${TPI_LOG[$name]}" | awk '
		/NIC statistics for port/ { rxp = txp = rx = tx = "" }
		$1 == "RX-packets:" { rxp = $2 }
		$1 == "TX-packets:" { txp = $2 }
		$1 == "Rx-pps:" { rx = $2 }
		$1 == "Tx-pps:" { tx = $2 }
		END { print (rxp == "" ? "x" : rxp), (txp == "" ? "x" : txp), (rx == "" ? "x" : rx), (tx == "" ? "x" : tx) }')
	[[ $TPI_RX =~ ^[0-9]+$ && $TPI_TX =~ ^[0-9]+$ ]] ||
		fail "testpmd $name: no port statistics after 'show port stats 0'"
}

tpi_wait_flow() {
	local name=$1 dir=$2 secs=${3:-10} first now end
	tpi_stats "$name"
	if [ "$dir" = rx ]; then first=$TPI_RXP; else first=$TPI_TXP; fi
	end=$((SECONDS + secs))
	while [ "$SECONDS" -lt "$end" ]; do
		sleep 0.1
		tpi_stats "$name"
		if [ "$dir" = rx ]; then now=$TPI_RXP; else now=$TPI_TXP; fi
		[ "$now" -gt "$first" ] && return 0
	done
	return 1
}

tpi_hwm() {
	awk '$1 == "VmHWM:" { print $2 }' "/proc/${TPI_PID[$1]}/status" 2>/dev/null
}

tpi_quit() {
	local name=$1 pid=${TPI_PID[$1]:-}
	[ -n "$pid" ] || return 0
	if alive "$pid"; then
		printf 'quit\n' >&"${TPI_FD[$name]}"
		if ! _wait_pid "$pid" 20; then
			echo "testpmd $name (pid $pid) still running 20 s after quit: SIGINT" >&2
			kill -INT "$pid" 2>/dev/null
			if ! _wait_pid "$pid" 10; then
				{ kill -KILL "$pid"; _wait_pid "$pid" 5; } 2>/dev/null
			fi
		fi
	else
		wait "$pid" 2>/dev/null
	fi
	local fd=${TPI_FD[$name]}
	exec {fd}>&-
	rm -f "${TPI_FIFO[$name]}"
	rm -rf "${DPDK_RUNDIR:?}/${TPI_PREFIX[$name]}"
	unset 'TPI_PID[$name]' 'TPI_FD[$name]'
}

tpi_quit_all() {
	local n
	for n in "${!TPI_PID[@]}"; do
		tpi_quit "$n"
	done
}
