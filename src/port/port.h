/* SPDX-License-Identifier: BSD-3-Clause */
/* The port's private state, shared by its control and datapath halves. */
#ifndef VUSER_PORT_PORT_H
#define VUSER_PORT_PORT_H

#include <stdalign.h>

#include "backend/backend.h"
#include "base/arena.h"
#include "base/pool.h"
#include "ring/ring.h"
#include "vuser/vuser.h"

struct vport_queue {
	alignas(64) struct vring_drv vq;
	int kickfd;              /* -1 when closed */
	int callfd;
	bool enabled;            /* its pair is enabled at the backend */
	uint16_t refill_min;     /* rx: free descriptors worth a refill */
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
	unsigned active_pairs;
	int link_up;             /* read by datapath threads: atomic access */
	unsigned hdr_len;
	bool mrg_rxbuf;
	uint8_t mac[6];
	struct vport_queue *rxq; /* cfg.queues of each */
	struct vport_queue *txq;
};

/* Ring index of a queue at the backend: virtio-net numbers rx 2k, tx 2k+1. */
static inline unsigned vport_rx_ring(unsigned q) { return 2 * q; }
static inline unsigned vport_tx_ring(unsigned q) { return 2 * q + 1; }

void vport_kick(struct vport_queue *q);

#endif
