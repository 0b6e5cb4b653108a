#!/usr/bin/env bash
# Open and close a port 1,000 times against one testpmd vhost backend: every
# round negotiates, maps, sends a few frames and tears down. The process's
# fd count and RSS must end where they began (helper_openclose checks).
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

ROUNDS=${OPENCLOSE_ROUNDS:-1000}
tp_start vh macswap 1
check "open/close $ROUNDS times with flat fds and RSS" \
	timeout 120 "$VUSER_BUILD/tests/helper_openclose" "path=${TP_SOCK[vh]}" "$ROUNDS"
tp_stop vh
echo "ok: $ROUNDS rounds"
