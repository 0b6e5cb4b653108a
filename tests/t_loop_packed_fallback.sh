#!/usr/bin/env bash
# packed_vq=1 asks for packed rings; a vhost device that does not offer them
# (vuser's with packed_vq=0) gets split rings from the port, which must still
# verify every frame, and a queue size only packed rings allow must fail the
# open with a message that says why.
. "$(dirname "$0")/lib.sh"
need_python
need_pmd

N=${FALLBACK_COUNT:-200000}
vh_start vh ",packed_vq=0" --mode macswap --cpu 1
pmd_run --port "path=${VH_SOCK[vh]},packed_vq=1" --mode echo --count "$N" --cpu 0
pmd_summary
check_eq "split rings negotiated" "${J[packed]}" 0
check_eq "every frame verified" "${J[verified]}" "$N"
check_eq "bad_payload == 0" "${J[bad_payload]}" 0

echo "+ vuser-pmd --port path=${VH_SOCK[vh]},packed_vq=1,queue_size=1000 (must fail)"
rc=0
timeout 20 "$PMD" --port "path=${VH_SOCK[vh]},packed_vq=1,queue_size=1000" --mode echo --count 10 \
	>"$T/bad.out" 2>"$T/bad.err" || rc=$?
cat "$T/bad.err"
check_eq "open fails (exit 1)" "$rc" 1
check "the message names queue_size and packed rings" grep -q "queue_size=1000.*packed" "$T/bad.err"
vh_stop vh
echo "ok: split fallback verified, unusable size refused"
