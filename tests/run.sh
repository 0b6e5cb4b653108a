#!/usr/bin/env bash
# Runs every test program (BUILD/tests/test_*) and every test script
# (tests/t_*.sh), one at a time because the interop tests busy-poll both cores.
# Exit code 0 pass, 77 skip, anything else fail. The last line is the tally.
# Usage: tests/run.sh [BUILD] [NAME-FILTER]
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
filter=${2:-}
export VUSER_BUILD=$build VUSER_ROOT=$root
pass=0 fail=0 skip=0
failed=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/vuser-tests.XXXXXX")

run_one() {
	local name=$1; shift
	local start=$SECONDS rc
	timeout -k 10 "${VUSER_TEST_TIMEOUT:-600}" "$@" >"$logdir/$name.log" 2>&1
	rc=$?
	local took=$((SECONDS - start))
	case $rc in
	0) pass=$((pass + 1)); printf 'PASS %-40s %4ss\n' "$name" "$took" ;;
	77) skip=$((skip + 1)); printf 'SKIP %-40s %4ss  %s\n' "$name" "$took" "$(tail -n 1 "$logdir/$name.log")" ;;
	*) fail=$((fail + 1)); failed+=("$name")
	   printf 'FAIL %-40s %4ss (exit %s)\n' "$name" "$took" "$rc"
	   sed 's/^/    | /' "$logdir/$name.log" | tail -n 40 ;;
	esac
}

for t in "$build"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	[[ -z $filter || $name == *$filter* ]] || continue
	run_one "$name" "$t"
done
for t in "$here"/t_*.sh; do
	[ -f "$t" ] || continue
	name=$(basename "$t" .sh)
	[[ -z $filter || $name == *$filter* ]] || continue
	run_one "$name" bash "$t"
done

rm -rf "$logdir"
[ ${#failed[@]} -eq 0 ] || echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
