/* SPDX-License-Identifier: BSD-3-Clause */
/* Unix stream sockets that carry file descriptors (SCM_RIGHTS). */
#ifndef VUSER_BASE_SOCK_H
#define VUSER_BASE_SOCK_H

#include <stddef.h>

/* Most descriptors one message carries (vhost-user's limit). */
#define VSOCK_MAX_FDS 8

/* Connect to the socket at path. Returns the fd or a negative errno. */
int vsock_connect(const char *path);

/*
 * Send all len bytes, with nfds descriptors attached to the first byte.
 * Returns 0 or a negative errno (-EPIPE when the peer is gone).
 */
int vsock_send(int fd, const void *buf, size_t len, const int *fds, int nfds);

/*
 * Receive exactly len bytes within timeout_ms (-1: no limit). Descriptors
 * that arrive are stored in fds[] (up to max_fds, the count in *nfds); any
 * beyond max_fds are closed and reported as -EBADMSG after the read. fds may
 * be NULL when none are expected: those that arrive are closed. Returns 0,
 * -ECONNRESET when the peer closed, -ETIMEDOUT, or a negative errno.
 */
int vsock_recv(int fd, void *buf, size_t len, int *fds, int *nfds, int max_fds,
	       int timeout_ms);

/* 1 when the peer has closed or errored (checked without blocking), else 0. */
int vsock_peer_gone(int fd);

#endif
