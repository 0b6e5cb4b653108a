#!/usr/bin/env bash
# The test command (README): on a fresh Debian 12, as root, with or without
# standard input. Installs what the build and the interop tests need, builds
# the normal and the sanitizer (ASan+UBSan) trees, and runs the suite
# (tests/run.sh) against each.
#
# Both suites include the DPDK interop scripts (tests/t_dpdk_*.sh). Under the
# sanitizers they take about as long (about 70 s for all of them here,
# against about 65 s), and a real peer driving the datapath at full rate is
# where ASan finds the most, so they are not dropped from the sanitizer run.
# Each suite takes about 7 minutes here (2 cores), the whole script about
# 16 with apt and both builds.
# A missing dpdk-testpmd fails those scripts (this script installs it): only
# a developer running tests/run.sh by hand without DPDK sees them skipped.
#
# The last line is the combined tally: "N passed, N failed, N skipped".
# A build that fails, or a suite that ends without a tally, counts as one
# failure. Exit status is non-zero when anything failed.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
# This script installs every peer: a test that would skip for want of one fails.
export VUSER_NO_SKIP=1
# Every test is meant to take under 2 minutes (the sanitizer echo run about
# 1): a hung one is cut at 5 minutes rather than tests/run.sh's default 10.
export VUSER_TEST_TIMEOUT=${VUSER_TEST_TIMEOUT:-300}

passed=0 failed=0 skipped=0
failures=()

note_failure() {
	failed=$((failed + 1))
	failures+=("$1")
}

# suite LABEL CMD...: run a test suite, add its tally line to the totals.
suite() {
	local label=$1; shift
	local log rc=0 line p f s
	log=$(mktemp)
	echo "==== $label: $*"
	"$@" </dev/null 2>&1 | tee "$log" || rc=$?
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 || true)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "==== $label: exit $rc and no tally: counted as one failure"
		note_failure "$label"
		return 0
	fi
	p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$line")
	f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$line")
	s=0
	if [[ $line =~ ([0-9]+)\ skipped ]]; then s=${BASH_REMATCH[1]}; fi
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	[ "$f" -eq 0 ] || failures+=("$label")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "==== $label: exit $rc with no failed test: counted as one failure"
		note_failure "$label"
	fi
	return 0
}

echo "==== install"
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential make gcc libc6-dev \
	dpdk-dev librte-net-vhost23 librte-net-virtio23 \
	python3 procps coreutils
command -v dpdk-testpmd >/dev/null || { echo "dpdk-testpmd missing after install"; exit 1; }
mkdir -p /var/run/dpdk

echo "==== build"
san_ok=1
if ! make -j2; then
	note_failure "make"
fi
if ! make -j2 SAN=1; then
	note_failure "make SAN=1"
	san_ok=0
fi

suite "normal build" tests/run.sh build
if [ "$san_ok" = 1 ]; then
	suite "sanitizer suite" tests/run.sh build-san
fi

echo "===="
[ ${#failures[@]} -eq 0 ] || echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
