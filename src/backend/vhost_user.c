/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vhost-user frontend (client side of the socket): the messages a virtio-net
 * driver sends, each reply checked before it is believed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend/backend.h"
#include "base/log.h"
#include "base/sock.h"
#include "vuser/uapi/vhost_user.h"

/* How long a backend may take to answer one request. */
#define VHU_REPLY_TIMEOUT_MS 5000

struct vhu {
	struct vbackend b;
	int fd;            /* the session, -1 when none */
	int listenfd;      /* server mode, -1 for a client */
	char path[VUSER_PATH_MAX];
};

static const char *const vhu_names[VHOST_USER_MAX] = {
	[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
	[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
	[VHOST_USER_SET_OWNER] = "SET_OWNER",
	[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
	[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
	[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
	[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
	[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
	[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
	[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
	[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
	[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
	[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
	[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
	[VHOST_USER_SET_STATUS] = "SET_STATUS",
};

static const char *vhu_name(uint32_t req)
{
	return req < VHOST_USER_MAX && vhu_names[req] ? vhu_names[req] : "unknown request";
}

static struct vhu *to_vhu(struct vbackend *b)
{
	return (struct vhu *)b;
}

static bool vhu_has_ack(const struct vhu *u)
{
	return u->b.protocol_features & (1ull << VHOST_USER_PROTOCOL_F_REPLY_ACK);
}

/*
 * Read one reply to req and check it against what the protocol allows: the
 * reply flag and version, the same request id, exactly the expected size.
 * Anything else means the backend cannot be trusted with the session.
 */
static int vhu_read_reply(struct vhu *u, uint32_t req, void *payload, uint32_t want)
{
	struct vhost_user_msg msg;
	int err;

	err = vsock_recv(u->fd, &msg.hdr, sizeof(msg.hdr), NULL, NULL, 0, VHU_REPLY_TIMEOUT_MS);
	if (err == -ETIMEDOUT)
		return verr(-ETIMEDOUT, "%s: backend %s did not reply within %d ms",
			    vhu_name(req), u->path, VHU_REPLY_TIMEOUT_MS);
	if (err == -EBADMSG)
		return verr(-EPROTO, "%s: backend %s sent file descriptors with its reply",
			    vhu_name(req), u->path);
	if (err)
		return verr(err, "%s: reading the reply from %s: %s", vhu_name(req), u->path,
			    err == -ECONNRESET ? "backend closed the connection" : strerror(-err));
	if ((msg.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    !(msg.hdr.flags & VHOST_USER_REPLY_MASK))
		return verr(-EPROTO, "%s: backend %s replied with bad flags 0x%x",
			    vhu_name(req), u->path, msg.hdr.flags);
	if (msg.hdr.request != req)
		return verr(-EPROTO, "%s: backend %s replied to request %u (%s) instead",
			    vhu_name(req), u->path, msg.hdr.request, vhu_name(msg.hdr.request));
	if (msg.hdr.size > sizeof(msg.payload))
		return verr(-EPROTO, "%s: backend %s sent an oversized reply (%u bytes)",
			    vhu_name(req), u->path, msg.hdr.size);
	if (msg.hdr.size != want)
		return verr(-EPROTO, "%s: backend %s replied with %u bytes, expected %u",
			    vhu_name(req), u->path, msg.hdr.size, want);
	err = vsock_recv(u->fd, &msg.payload, want, NULL, NULL, 0, VHU_REPLY_TIMEOUT_MS);
	if (err == -EBADMSG)
		return verr(-EPROTO, "%s: backend %s sent file descriptors with its reply",
			    vhu_name(req), u->path);
	if (err)
		return verr(err, "%s: reading the reply payload from %s: %s", vhu_name(req), u->path,
			    err == -ECONNRESET ? "backend closed the connection" : strerror(-err));
	memcpy(payload, &msg.payload, want);
	return 0;
}

/*
 * Send req. With reply != NULL the request has a reply of reply_size bytes by
 * definition; otherwise, when REPLY_ACK was negotiated, ask for the ack so
 * that a backend's refusal is seen here rather than as silence later.
 */
static int vhu_request(struct vhu *u, uint32_t req, const void *payload, uint32_t size,
		       const int *fds, int nfds, void *reply, uint32_t reply_size)
{
	struct vhost_user_hdr hdr = { .request = req, .flags = VHOST_USER_VERSION, .size = size };
	uint8_t wire[VHOST_USER_HDR_SIZE + sizeof(union vhost_user_payload)];
	bool ack = !reply && vhu_has_ack(u);
	uint64_t status;
	int err;

	if (u->fd < 0)
		return verr(-ENOTCONN, "%s: backend %s is not connected", vhu_name(req), u->path);
	if (ack)
		hdr.flags |= VHOST_USER_NEED_REPLY_MASK;
	memcpy(wire, &hdr, VHOST_USER_HDR_SIZE);
	if (size)
		memcpy(wire + VHOST_USER_HDR_SIZE, payload, size);
	err = vsock_send(u->fd, wire, VHOST_USER_HDR_SIZE + size, fds, nfds);
	if (err == -EPIPE || err == -ECONNRESET)
		return verr(-ECONNRESET, "%s: sending to %s: backend closed the connection",
			    vhu_name(req), u->path);
	if (err)
		return verr(err, "%s: sending to %s: %s", vhu_name(req), u->path, strerror(-err));
	if (reply)
		return vhu_read_reply(u, req, reply, reply_size);
	if (!ack)
		return 0;
	err = vhu_read_reply(u, req, &status, sizeof(status));
	if (err)
		return err;
	if (status)
		return verr(-EIO, "%s: backend %s refused it (status %llu)", vhu_name(req),
			    u->path, (unsigned long long)status);
	return 0;
}

static int vhu_u64(struct vhu *u, uint32_t req, uint64_t v)
{
	return vhu_request(u, req, &v, sizeof(v), NULL, 0, NULL, 0);
}

static int vhu_get_u64(struct vhu *u, uint32_t req, uint64_t *v)
{
	return vhu_request(u, req, NULL, 0, NULL, 0, v, sizeof(*v));
}

static int vhu_state(struct vhu *u, uint32_t req, unsigned idx, unsigned num)
{
	struct vhost_vring_state s = { .index = idx, .num = num };

	return vhu_request(u, req, &s, sizeof(s), NULL, 0, NULL, 0);
}

static int vhu_set_owner(struct vbackend *b)
{
	return vhu_request(to_vhu(b), VHOST_USER_SET_OWNER, NULL, 0, NULL, 0, NULL, 0);
}

static int vhu_get_features(struct vbackend *b, uint64_t *features)
{
	return vhu_get_u64(to_vhu(b), VHOST_USER_GET_FEATURES, features);
}

static int vhu_set_features(struct vbackend *b, uint64_t features)
{
	return vhu_u64(to_vhu(b), VHOST_USER_SET_FEATURES, features);
}

static int vhu_set_protocol_features(struct vbackend *b, uint64_t want, uint64_t *got)
{
	struct vhu *u = to_vhu(b);
	uint64_t offered;
	int err;

	err = vhu_get_u64(u, VHOST_USER_GET_PROTOCOL_FEATURES, &offered);
	if (err)
		return err;
	/* The ack for this very message may not be asked before it is agreed. */
	err = vhu_u64(u, VHOST_USER_SET_PROTOCOL_FEATURES, offered & want);
	if (err)
		return err;
	b->protocol_features = offered & want;
	*got = b->protocol_features;
	return 0;
}

static int vhu_get_queue_num(struct vbackend *b, uint64_t *num)
{
	return vhu_get_u64(to_vhu(b), VHOST_USER_GET_QUEUE_NUM, num);
}

static int vhu_set_mem_table(struct vbackend *b, int fd, uint64_t addr, uint64_t size)
{
	struct vhost_user_memory mem = {
		.nregions = 1,
		.regions[0] = { .guest_phys_addr = addr, .memory_size = size,
				.userspace_addr = addr, .mmap_offset = 0 },
	};

	return vhu_request(to_vhu(b), VHOST_USER_SET_MEM_TABLE, &mem, VHOST_USER_MEM_SIZE(1),
			   &fd, 1, NULL, 0);
}

static int vhu_set_vring_num(struct vbackend *b, unsigned idx, unsigned num)
{
	return vhu_state(to_vhu(b), VHOST_USER_SET_VRING_NUM, idx, num);
}

static int vhu_set_vring_base(struct vbackend *b, unsigned idx, unsigned base)
{
	return vhu_state(to_vhu(b), VHOST_USER_SET_VRING_BASE, idx, base);
}

static int vhu_get_vring_base(struct vbackend *b, unsigned idx, unsigned *base)
{
	struct vhost_vring_state s = { .index = idx };
	struct vhost_vring_state r;
	int err;

	err = vhu_request(to_vhu(b), VHOST_USER_GET_VRING_BASE, &s, sizeof(s), NULL, 0,
			  &r, sizeof(r));
	if (err)
		return err;
	if (r.index != idx)
		return verr(-EPROTO, "GET_VRING_BASE: backend answered for ring %u, asked %u",
			    r.index, idx);
	*base = r.num;
	return 0;
}

static int vhu_set_vring_addr(struct vbackend *b, unsigned idx, uint64_t desc,
			      uint64_t avail, uint64_t used)
{
	struct vhost_vring_addr a = { .index = idx, .desc_user_addr = desc,
				      .avail_user_addr = avail, .used_user_addr = used };

	return vhu_request(to_vhu(b), VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0, NULL, 0);
}

static int vhu_vring_fd(struct vhu *u, uint32_t req, unsigned idx, int fd)
{
	uint64_t v = idx & VHOST_USER_VRING_IDX_MASK;

	if (fd < 0)
		v |= VHOST_USER_VRING_NOFD_MASK;
	return vhu_request(u, req, &v, sizeof(v), &fd, fd < 0 ? 0 : 1, NULL, 0);
}

static int vhu_set_vring_kick(struct vbackend *b, unsigned idx, int fd)
{
	return vhu_vring_fd(to_vhu(b), VHOST_USER_SET_VRING_KICK, idx, fd);
}

static int vhu_set_vring_call(struct vbackend *b, unsigned idx, int fd)
{
	return vhu_vring_fd(to_vhu(b), VHOST_USER_SET_VRING_CALL, idx, fd);
}

static int vhu_set_vring_enable(struct vbackend *b, unsigned idx, bool enable)
{
	return vhu_state(to_vhu(b), VHOST_USER_SET_VRING_ENABLE, idx, enable);
}

static int vhu_set_status(struct vbackend *b, uint8_t status)
{
	if (!(b->protocol_features & (1ull << VHOST_USER_PROTOCOL_F_STATUS)))
		return 0;
	return vhu_u64(to_vhu(b), VHOST_USER_SET_STATUS, status);
}

static void vhu_disconnect(struct vbackend *b)
{
	struct vhu *u = to_vhu(b);

	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
	/* The next backend negotiates its own. */
	b->protocol_features = 0;
}

static int vhu_connect(struct vbackend *b)
{
	struct vhu *u = to_vhu(b);
	int fd;

	if (u->fd >= 0)
		return -EISCONN;
	if (u->listenfd < 0) {
		/* Not logged here: a port retrying a backend that is away fails quietly. */
		fd = vsock_connect(u->path);
		if (fd < 0)
			return fd;
	} else {
		/*
		 * The listening socket is non-blocking; the session is not (it
		 * does not inherit the flag), so replies are read with a
		 * bounded poll like a client's.
		 */
		fd = accept4(u->listenfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
			    errno == ECONNABORTED)
				return -EAGAIN;
			return verr(-errno, "path=%s: accept: %s", u->path, strerror(errno));
		}
	}
	u->fd = fd;
	b->protocol_features = 0;
	return 0;
}

static int vhu_refuse(struct vbackend *b)
{
	struct vhu *u = to_vhu(b);
	int fd;

	if (u->listenfd < 0)
		return 0;
	fd = accept4(u->listenfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int vhu_gone(struct vbackend *b)
{
	struct vhu *u = to_vhu(b);
	struct pollfd pfd = { .fd = u->fd, .events = POLLIN | POLLRDHUP };

	/*
	 * Without BACKEND_REQ the backend never speaks first on this socket,
	 * so anything readable means it closed or broke the protocol; either
	 * way the session is over (and a socket left readable would keep the
	 * port's fd readable for nothing). The caller ends it.
	 */
	return u->fd < 0 || (poll(&pfd, 1, 0) > 0 && pfd.revents);
}

static int vhu_fd(struct vbackend *b)
{
	return to_vhu(b)->fd;
}

static int vhu_listen_fd(struct vbackend *b)
{
	return to_vhu(b)->listenfd;
}

static void vhu_destroy(struct vbackend *b)
{
	struct vhu *u = to_vhu(b);

	vhu_disconnect(b);
	if (u->listenfd >= 0) {
		close(u->listenfd);
		unlink(u->path);
	}
	free(u);
}

static const struct vbackend_ops vhu_ops = {
	.name = "vhost-user",
	.set_owner = vhu_set_owner,
	.get_features = vhu_get_features,
	.set_features = vhu_set_features,
	.set_protocol_features = vhu_set_protocol_features,
	.get_queue_num = vhu_get_queue_num,
	.set_mem_table = vhu_set_mem_table,
	.set_vring_num = vhu_set_vring_num,
	.set_vring_base = vhu_set_vring_base,
	.get_vring_base = vhu_get_vring_base,
	.set_vring_addr = vhu_set_vring_addr,
	.set_vring_kick = vhu_set_vring_kick,
	.set_vring_call = vhu_set_vring_call,
	.set_vring_enable = vhu_set_vring_enable,
	.set_status = vhu_set_status,
	.connect = vhu_connect,
	.refuse = vhu_refuse,
	.disconnect = vhu_disconnect,
	.gone = vhu_gone,
	.fd = vhu_fd,
	.listen_fd = vhu_listen_fd,
	.destroy = vhu_destroy,
};

static int vhu_listen(struct vhu *u)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	if (strlen(u->path) >= sizeof(sa.sun_path))
		return verr(-ENAMETOOLONG, "path=%s: too long for a Unix socket", u->path);
	strcpy(sa.sun_path, u->path);
	/*
	 * A socket file left by an earlier listener that died would make bind
	 * fail; anything else at path is not ours to remove.
	 */
	if (lstat(u->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return verr(-EEXIST, "path=%s: exists and is not a socket", u->path);
		unlink(u->path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return verr(-errno, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		return verr(err, "path=%s: cannot listen (bind: %s)", u->path, strerror(-err));
	}
	if (listen(fd, 4) < 0) {
		err = -errno;
		close(fd);
		unlink(u->path);
		return verr(err, "path=%s: cannot listen: %s", u->path, strerror(-err));
	}
	u->listenfd = fd;
	return 0;
}

int vhost_user_create(const char *path, bool server, struct vbackend **out)
{
	struct vhu *u;
	int err;

	u = calloc(1, sizeof(*u));
	if (!u)
		return verr(-ENOMEM, "no memory for a vhost-user transport");
	u->b.ops = &vhu_ops;
	u->fd = u->listenfd = -1;
	snprintf(u->path, sizeof(u->path), "%s", path);
	if (server) {
		err = vhu_listen(u);
		if (err) {
			free(u);
			return err;
		}
	}
	*out = &u->b;
	return 0;
}
