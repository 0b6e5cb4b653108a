/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vuser vhost: the device side of a virtio-net device over vhost-user.
 *
 * A struct vuser_vhost serves one frontend at a time on one socket (a vuser
 * port, DPDK's virtio_user, QEMU). It listens on the socket path (the
 * default) or connects to it (client=1). Everything the frontend sends is
 * treated as hostile: a frontend that breaks the protocol or writes
 * impossible rings is disconnected and counted, and the next one is served.
 *
 * Threads: as for ports (vuser.h). Control calls (open, close, process,
 * info) from one thread; each queue's bursts from one thread at a time.
 * A burst that runs while the control thread tears a session down waits for
 * nothing and crashes nothing: the control side waits for the burst to end.
 *
 * Buffers are struct vuser_buf (vuser.h) from the vhost's own pool in
 * private memory; the frontend's memory is only ever copied from or to.
 */
#ifndef VUSER_VHOST_H
#define VUSER_VHOST_H

#include "vuser/vuser.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Configuration. Devargs keys:
 *   path=<socket>     the vhost-user socket (mandatory)
 *   client=<0|1>      connect to path instead of listening on it (0)
 *   queues=<n>        queue pairs offered, 1..VUSER_MAX_QUEUE_PAIRS (1)
 *   mac=<xx:..:xx>    the device MAC in its config space (random local)
 *   mrg_rxbuf=<0|1>   offer VIRTIO_NET_F_MRG_RXBUF (1)
 *   in_order=<0|1>    offer VIRTIO_F_IN_ORDER (1)
 *   indirect=<0|1>    offer VIRTIO_RING_F_INDIRECT_DESC (1)
 *   event_idx=<0|1>   offer VIRTIO_RING_F_EVENT_IDX (1)
 *   packed_vq=<0|1>   offer VIRTIO_F_RING_PACKED (1); the frontend chooses
 *   mem_slots=<n>     memory regions accepted, 1..VUSER_VHOST_MAX_MEM_SLOTS (64)
 *   pool=<n>          buffers in the vhost's pool, 64..1048576, or 0 (auto)
 * Strings are copied into the struct: it owns no memory.
 */
#define VUSER_VHOST_MAX_MEM_SLOTS 509

struct vuser_vhost_config {
	char path[VUSER_PATH_MAX];
	uint8_t mac[6];
	bool mac_set;
	bool client;
	bool mrg_rxbuf;
	bool in_order;
	bool indirect;
	bool event_idx;
	bool packed_vq;            /* offer VIRTIO_F_RING_PACKED */
	unsigned queues;
	unsigned mem_slots;
	unsigned pool;             /* 0: sized from queues */
};

/* Fill *cfg (not NULL) with the defaults (no path). */
void vuser_vhost_config_init(struct vuser_vhost_config *cfg);
/*
 * Parse devargs into *cfg (not NULL), from the defaults. Returns 0, or
 * -EINVAL (malformed, unknown or repeated key, bad value, a path that is a
 * device rather than a socket), -ERANGE (number out of range) or
 * -ENAMETOOLONG, with vuser_last_error() naming the key and the value.
 */
int vuser_vhost_config_parse(const char *devargs, struct vuser_vhost_config *cfg);
/* Check a configuration a program filled itself. Same errors. */
int vuser_vhost_config_check(const struct vuser_vhost_config *cfg);

struct vuser_vhost;

/*
 * Create the device: bind and listen on path (removing a stale socket file
 * first) or, with client=1, start connecting. Never blocks on the frontend.
 * Returns 0 with *out owned by the caller until vuser_vhost_close(), or a
 * negative errno with vuser_last_error() saying why.
 */
int vuser_vhost_open(const char *devargs, struct vuser_vhost **out);
int vuser_vhost_open_config(const struct vuser_vhost_config *cfg, struct vuser_vhost **out);

/* Drop the frontend, unmap its memory, close every fd, unlink a listening socket. */
void vuser_vhost_close(struct vuser_vhost *v);

/*
 * The fd to poll for readability: the session socket while a frontend is
 * connected, the listening socket otherwise (in client mode, -EAGAIN while
 * no connection exists: call vuser_vhost_process() periodically). Owned by
 * the vhost; the fd can change after vuser_vhost_process().
 */
int vuser_vhost_fd(struct vuser_vhost *v);

/*
 * Handle what waits without blocking for long: accept a frontend, read and
 * answer its messages (each read bounded by a 1 s timeout once started),
 * notice it gone. Returns 1 if the readiness changed, 0 if not, or a
 * negative errno for a failure of the vhost itself (a misbehaving frontend
 * is not an error of the call: it is disconnected and counted).
 */
int vuser_vhost_process(struct vuser_vhost *v);

/*
 * Wait up to timeout_ms for the frontend to become ready (rings started),
 * calling vuser_vhost_process() meanwhile. Returns 1 ready, 0 timed out.
 */
int vuser_vhost_wait_ready(struct vuser_vhost *v, int timeout_ms);

/* 1 when a frontend is connected and its queue pairs can move frames. */
int vuser_vhost_ready(struct vuser_vhost *v);

struct vuser_vhost_info {
	uint64_t features;          /* negotiated with the current frontend */
	uint64_t protocol_features;
	unsigned queues;            /* queue pairs offered */
	unsigned mem_regions;       /* regions mapped now */
	uint64_t connections;       /* frontends accepted so far */
	uint64_t violations;        /* frontends cut off for breaking the rules */
	char last_violation[160];   /* why the last one was cut off */
	bool connected;
	bool ready;
	uint8_t mac[6];
};
int vuser_vhost_info(struct vuser_vhost *v, struct vuser_vhost_info *info);

/* Per-queue counters, rx = frames from the frontend, tx = frames to it. */
int vuser_vhost_stats(struct vuser_vhost *v, struct vuser_port_stats *st);

/* Buffers from the vhost's pool (see vuser_buf_alloc_bulk). */
int vuser_vhost_buf_alloc_bulk(struct vuser_vhost *v, struct vuser_buf **b, unsigned n);

/*
 * Take up to n frames the frontend sent on queue pair q (its transmitq).
 * Returns the count (0 when none or not ready) or -EINVAL for a bad q; the
 * program owns the buffers returned.
 */
int vuser_vhost_rx_burst(struct vuser_vhost *v, unsigned q, struct vuser_buf **b, unsigned n);

/*
 * Copy up to n frames into the frontend's receive buffers on queue pair q.
 * Returns how many were delivered; those buffers are freed by the call.
 * b[count..n-1] stay the program's (the frontend has no room, or is not
 * ready). A frame too large for what the frontend negotiated is dropped,
 * freed and counted as delivered-and-dropped in tx drops.
 */
int vuser_vhost_tx_burst(struct vuser_vhost *v, unsigned q, struct vuser_buf **b, unsigned n);

#ifdef __cplusplus
}
#endif

#endif
