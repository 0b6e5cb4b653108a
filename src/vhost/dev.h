/* SPDX-License-Identifier: BSD-3-Clause */
/* The vhost device's private state, shared by its control and datapath halves. */
#ifndef VUSER_VHOST_DEV_H
#define VUSER_VHOST_DEV_H

#include <stdalign.h>

#include "base/arena.h"
#include "base/gate.h"
#include "base/lines.h"
#include "base/memtable.h"
#include "base/pool.h"
#include "ring/packed_dev.h"
#include "ring/split_dev.h"
#include "vuser/uapi/vhost_user.h"
#include "vuser/vhost.h"

struct vhq {
	/* The layout is fixed when the ring starts, from the negotiated features. */
	alignas(64) bool packed;
	struct vdsplit vq;
	struct vdpacked pq;
	/* The datapath runs inside the gate; the control side shuts it first. */
	struct vgate gate;
	struct vuser_queue_stats st;
	/* Receive: flush the lines copied out of, or not (see base/lines.h). */
	struct vtrial trial;

	/* Control state, as the frontend set it. */
	alignas(64) unsigned num;
	uint16_t base;
	bool addr_set;
	bool started;        /* kick fd received and addresses translated */
	bool enabled;
	struct vhost_vring_addr addr;
	int kickfd;
	int callfd;
	int errfd;
};

struct vuser_vhost {
	struct vuser_vhost_config cfg;
	int listenfd;        /* server mode */
	int connfd;          /* the frontend's session, -1 when none */
	int epfd;            /* what vuser_vhost_fd() returns: stable for the vhost's life */
	int evfd;            /* the datapath's way to wake the control side */
	struct vmem mem;
	struct varena arena;
	struct vuser_pool pool;
	uint64_t features_offered;
	uint64_t features;
	uint64_t protocol_offered;
	uint64_t protocol;
	uint8_t status;
	bool features_set;
	bool ready;
	unsigned hdr_len;
	unsigned nrings;
	struct vhq *rings;
	uint64_t connections;
	uint64_t violations;
	int violation_pending;       /* set by a datapath thread: atomic */
	const char *datapath_why;
	char last_violation[160];
	double next_connect;         /* client mode: when to try again */
	unsigned backoff_ms;
};

/* Datapath, in net.c. */
int vhost_rx(struct vuser_vhost *v, struct vhq *r, struct vuser_buf **b, unsigned n);
int vhost_tx(struct vuser_vhost *v, struct vhq *r, struct vuser_buf **b, unsigned n);
void vhost_warm_tx(struct vhq *r);

#endif
