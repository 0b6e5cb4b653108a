/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The transport under a port. vhost-user (and, later, vhost-kernel) implement
 * the same small set of operations, so the port's logic is written once.
 * Ring indexes follow virtio-net: 2k is receiveq k, 2k+1 is transmitq k.
 * Every operation returns 0 or a negative errno, with vuser_last_error() set.
 */
#ifndef VUSER_BACKEND_BACKEND_H
#define VUSER_BACKEND_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

struct vbackend;

struct vbackend_ops {
	const char *name;
	int (*set_owner)(struct vbackend *b);
	int (*get_features)(struct vbackend *b, uint64_t *features);
	int (*set_features)(struct vbackend *b, uint64_t features);
	/* Negotiate protocol features from those wanted; *got gets the result. */
	int (*set_protocol_features)(struct vbackend *b, uint64_t want, uint64_t *got);
	int (*get_queue_num)(struct vbackend *b, uint64_t *num);
	/* One region: the arena at addr (its guest address == our address). */
	int (*set_mem_table)(struct vbackend *b, int fd, uint64_t addr, uint64_t size);
	int (*set_vring_num)(struct vbackend *b, unsigned idx, unsigned num);
	int (*set_vring_base)(struct vbackend *b, unsigned idx, unsigned base);
	int (*get_vring_base)(struct vbackend *b, unsigned idx, unsigned *base);
	int (*set_vring_addr)(struct vbackend *b, unsigned idx, uint64_t desc,
			      uint64_t avail, uint64_t used);
	int (*set_vring_kick)(struct vbackend *b, unsigned idx, int fd);
	int (*set_vring_call)(struct vbackend *b, unsigned idx, int fd);
	int (*set_vring_enable)(struct vbackend *b, unsigned idx, bool enable);
	int (*set_status)(struct vbackend *b, uint8_t status);
	/*
	 * Start a session: connect to the backend (client) or accept one that
	 * is waiting (server). 0, -EAGAIN when a server has no one waiting,
	 * -EISCONN when a session exists, or why connecting failed (a client's
	 * failure to connect is returned without a message: the caller knows
	 * whether it is worth one).
	 */
	int (*connect)(struct vbackend *b);
	/*
	 * A server with a session: accept one more backend that waits and
	 * close it at once, so that it learns now rather than by a timeout and
	 * the listening fd does not stay readable. 1 if one was turned away.
	 */
	int (*refuse)(struct vbackend *b);
	/* End the session, if any; a server keeps listening. Safe to call twice. */
	void (*disconnect)(struct vbackend *b);
	/*
	 * 1 when there is no session, or its backend has gone away (or spoke
	 * unasked, which a backend never does); the session stays until
	 * disconnect().
	 */
	int (*gone)(struct vbackend *b);
	/* The session's fd, readable when the backend wants attention, or -1. */
	int (*fd)(struct vbackend *b);
	/* A server's listening fd, readable when a backend waits; -1 for a client. */
	int (*listen_fd)(struct vbackend *b);
	/* End the session, stop listening (the socket file goes) and free. */
	void (*destroy)(struct vbackend *b);
};

struct vbackend {
	const struct vbackend_ops *ops;
	uint64_t protocol_features;
};

/*
 * A vhost-user transport on the socket at path, with no session yet: a
 * client connects to path on connect(); a server (server == true) binds and
 * listens on path now, replacing a stale socket file but nothing else.
 */
int vhost_user_create(const char *path, bool server, struct vbackend **out);

#endif
