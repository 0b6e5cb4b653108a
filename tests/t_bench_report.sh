#!/usr/bin/env bash
# bench/report.py on made-up results: medians and ratios as the tables say,
# n/a for packed rows that need a vhost without packed rings, README's block
# replaced and nothing else in README touched, the hand-written part of
# bench.md kept across runs. Needs no peer and measures nothing.
. "$(dirname "$0")/lib.sh"
need_python

raw=$T/raw.tsv out=$T/out readme=$T/README.md
mkdir -p "$out"
tab() { local IFS=$'\t'; echo "$*"; }
{
	# Pair 1 at 64 bytes, split: vuser 30, 20, 10 (median 20); DPDK 10 three times.
	for rep in 1 2 3; do
		tab T M1 split 64 "$rep" $((40 - rep * 10)).0
		tab T M2rx split 64 "$rep" 10.0
	done
	# A failed run (nan) is left out of the median.
	tab T M3 split 64 1 nan
	tab T M3 split 64 2 9.0
	tab T M4vh split 64 1 6.0
	tab T M7 split 64 1 12.0
	tab T M2tx split 64 1 8.0
	tab T M9 any 64 1 16.0
	tab T M1 packed 64 1 5.0
	tab T M2rx packed 64 1 4.0
	tab L Lv split 64 1 900 2000 100 0
	tab L Ld split 64 1 1000 3000 100 0
	tab L Ld packed 64 1 800 1500 100 0
	tab L Lv packed 64 1 nan nan 0 0
	# The line round trip: 300, 250, 200 ns (median 250).
	tab B 1 300.0
	tab B 2 250.0
	tab B 3 200.0
	# Readings before the throughput runs: 90, 600, 140 and a failed one (left out).
	tab P split 64 1 90.0
	tab P packed 64 1 600.0
	tab P split 64 2 140.0
	tab P packed 64 2 nan
	tab M defaults vuser 4476928 6352 6352 4368 19000 20000
	tab M q8 dpdk 47290368 49766 49766 46182 1227571 20000
} >"$raw"
cat >"$T/meta" <<'EOF'
date=2026-01-01 00:00 UTC
command=bash bench/run.sh
quick=0
cpu=Test CPU
cores=2
mem=24 GiB
kernel=6.1
os=Debian
virt=
dpdk=22.11
commit=abc123
sizes=64
layouts=split packed
repeat=3
seconds=2
warmup=0.5
lat_seconds=2
mem_count=1000
vhost_packed=0
load_start=0.00 0.00 0.00
load_end=0.00 0.00 0.00
runtime=125
EOF
printf '# x\n\nbefore\n<!-- bench:begin -->\nold table\n<!-- bench:end -->\nafter\n' >"$readme"

"$PYTHON" "$VUSER_ROOT/bench/report.py" "$raw" "$T/meta" "$out" "$readme" || fail "report.py failed"
md=$out/bench.md
cat "$md"
row() { grep -F "$1" "$md" | head -n 1; }
check "pair 1 split: median 20 of 30/20/10 against 10, ratio 2.00 (met)" \
	grep -qF '| 1 | vuser port txonly -> DPDK vhost rxonly | DPDK virtio_user txonly -> DPDK vhost rxonly | >= 1.3x | 20.00 / 10.00 | 2.00 (met) | 5.00 / 4.00 | 1.25 (not met) |' "$md"
check "pair 2: the nan run left out (9.00 / 6.00 = 1.50)" grep -qF '| 9.00 / 6.00 | 1.50 (met) |' "$md"
check "pair 3 packed: n/a because the vhost has no packed rings" \
	grep -qE '^\| 3 \|.*\| n/a: vuser vhost offers no packed rings yet \| n/a \|$' "$md"
check "pair 4a against memif (layout-less, filed under any): 12 / 16" grep -qF '| 12.00 / 16.00 | 0.75 (not met) |' "$md"
check "latency split: 0.90 us median, 2.00 us p99, ratio 0.90" \
	grep -qF '| vuser port <-> vuser vhost macswap | split | 64 | 0.90 | 2.00 | 0.90 (not met) |' "$md"
check "latency packed via vuser vhost: n/a" \
	grep -qF '| vuser port <-> vuser vhost macswap | packed | 64 | n/a: vuser vhost offers no packed rings yet |' "$md"
check "line round trip: median 250 ns of 3 runs" grep -qF 'takes 250 ns here (`bench/linebounce.c`, median of 3 runs)' "$md"
check "latency in line round trips: split 900/250 and 1000/250" \
	grep -qF 'split, vuser vhost 3.6 and DPDK vhost 4.0' "$md"
check "memory: defaults arena 4.3 MiB, VmHWM 6.2 MiB" grep -qE '^\| path=\.\.\. \(defaults.*\| 4\.3 \| 6\.2 \|' "$md"
check "the settings line" grep -qF '3 run(s) per point, median shown; 2 s measured after 0.5 s' "$md"
check "cross-core readings: 90 / 140 / 600 ns over 3" \
	grep -qF 'took 90 ns at least, 140 ns at the median and 600 ns at most over 3 readings' "$md"
check "README: block replaced" grep -qF 'Latest run: 2026-01-01 00:00 UTC, `bash bench/run.sh`' "$readme"
check "README: the cross-core readings" grep -qF 'took 90-600 ns during the run (median 140)' "$readme"
check "README: old block gone" bash -c "! grep -qF 'old table' '$readme'"
check "README: text around the block kept" bash -c "grep -qx before '$readme' && grep -qx after '$readme'"
check "README: links bench.md" grep -qF '[out/bench.md](out/bench.md)' "$readme"

# A hand-written note below the mark survives the next run.
echo "- abc123: a note written by hand" >>"$md"
"$PYTHON" "$VUSER_ROOT/bench/report.py" "$raw" "$T/meta" "$out" "" >/dev/null || fail "second report.py failed"
check "hand-written part kept" grep -qF -- "- abc123: a note written by hand" "$md"
check_eq "kept once, not twice" "$(grep -c 'a note written by hand' "$md")" 1
check_eq "one keep mark" "$(grep -c 'bench/run.sh keeps everything below this line' "$md")" 1
if command -v gnuplot >/dev/null; then
	check "plot written" [ -s "$out/bench.png" ]
fi
echo "ok: tables, n/a rows, README block and kept notes as expected"
