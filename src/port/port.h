/* SPDX-License-Identifier: BSD-3-Clause */
/* The port's private state, shared by its control and datapath halves. */
#ifndef VUSER_PORT_PORT_H
#define VUSER_PORT_PORT_H

#include <stdalign.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/gate.h"
#include "base/pool.h"
#include "ring/ring.h"
#include "vuser/vuser.h"

struct vport_queue {
	alignas(64) struct vring_drv vq;
	/*
	 * The datapath runs a burst inside the gate and touches the ring only
	 * while it is open (link up and the pair enabled); the control side
	 * shuts it and waits for the burst to end before it changes the ring,
	 * so a backend that dies mid-burst never has its rings reset under a
	 * running burst.
	 */
	struct vgate gate;
	int kickfd;              /* -1 when closed, or with notify=0 */
	int callfd;
	bool enabled;            /* control only: its pair is enabled at the backend */
	uint16_t refill_min;     /* rx: free descriptors worth a refill */
	void *mem;               /* the ring's room in the arena, for either layout */
	/* rx only: a mergeable frame whose later buffers are not used yet */
	struct vuser_buf *part_head;
	struct vuser_buf *part_tail;
	uint16_t part_left;
	struct vuser_queue_stats st;
};

struct vuser_port {
	struct vuser_port_config cfg;
	struct vbackend *be;
	struct varena arena;
	struct vuser_pool pool;
	uint64_t backend_features;
	uint64_t features;
	uint64_t protocol_features;
	unsigned active_pairs;   /* enabled at the backend now */
	unsigned want_pairs;     /* what set_queue_pairs asked: every session starts so */
	int link_up;             /* read by any thread: atomic access */
	unsigned hdr_len;
	bool mrg_rxbuf;
	uint8_t mac[6];
	struct vport_queue *rxq; /* cfg.queues of each */
	struct vport_queue *txq;
	int epfd;                /* vuser_port_fd(): the same fd for the port's life */
	int session_fd;          /* the backend session's fd as added to epfd, or -1 */
	int timerfd;             /* client mode: due when the next connection attempt is */
	unsigned backoff_ms;     /* client mode: the wait before the next attempt */
	long long next_connect_ms;
	uint64_t connections;
	uint64_t link_changes;
};

/* Ring index of a queue at the backend: virtio-net numbers rx 2k, tx 2k+1. */
static inline unsigned vport_rx_ring(unsigned q) { return 2 * q; }
static inline unsigned vport_tx_ring(unsigned q) { return 2 * q + 1; }

void vport_kick(struct vport_queue *q);

/*
 * Hand n fresh buffers to the device as receive buffers. The device writes
 * each one's header, so a later send of the buffer must not count on the
 * zero header it may have had (see tx_hdr() in rxtx.c).
 */
static inline void vport_post_rx(struct vuser_port *p, struct vport_queue *q,
				 struct vuser_buf **b, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		vbuf_reset(b[i]);
		b[i]->tx_hdr_off = 0;
	}
	vring_post_rx(&q->vq, b, n, p->hdr_len);
}

#endif
