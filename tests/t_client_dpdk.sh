#!/usr/bin/env bash
# The vhost device in client mode: DPDK's virtio_user listens (server=1) and
# vuser-pmd --vhost ...,client=1 connects to it. testpmd returns what the
# device sends (macswap); every frame is verified and both sides' counts agree.
. "$(dirname "$0")/lib.sh"
need_testpmd
need_pmd

N=${CLIENT_COUNT:-500000}
SOCK=$T/frontend.sock
# The frontend listens, so it starts first (its forwarding lcore on core 0);
# with server=1 DPDK finishes its start-up only once a backend has connected.
_tp_new fe
eal=(-l 0,1 --main-lcore 1 --no-pci --no-huge -m "$TP_MEM" --single-file-segments
	--vdev "net_virtio_user0,path=$SOCK,queues=1,server=1")
_tp_launch fe eal --forward-mode=macswap --rxq=1 --txq=1
wait_until 20 test -S "$SOCK" || fail "testpmd fe did not listen on $SOCK within 20 s"
pmd_bg --vhost "path=$SOCK,client=1" --mode echo --count "$N" --pkt-size 64-1518 \
	--cpu 1 --wait-ready 20
wait_until 30 _tp_ready fe || fail "testpmd fe not forwarding 30 s after the device connected"
pmd_wait 60
pmd_summary
tp_stop fe
tp_load fe
tp_summary fe
check_echo "$N" fe
echo "ok: $N frames through a client-mode vhost device, all verified"
