/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A vhost-user backend that lies. The port must survive every lie a backend
 * can tell, on the socket during the handshake and in the shared rings
 * afterwards, and say exactly what was wrong: a port that crashes, hangs,
 * leaks, or hands the program a frame built from garbage because its backend
 * misbehaved turns a backend bug into an application bug.
 *
 * The fake backend is a real vhost-user server on a thread of its own. It
 * parses every message, checks what the frontend sent, maps the shared
 * memory itself and answers correctly, except for the one request its script
 * tells it to get wrong. The device half of the rings is driven from the main
 * thread between bursts, so that each hostile write lands at a known point.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vuser/vuser.h"
#include "vuser/uapi/vhost_user.h"
#include "vuser/uapi/virtio_net.h"
#include "vuser/uapi/virtio_ring.h"
#include "testlib.h"


#define BIT(n) (1ull << (n))

#define FB_RINGS 2             /* one queue pair: rx 0, tx 1 */
#define FB_MAX_FDS 8
#define FB_LOG_MAX 64
/* Only a safety net: every case ends its backend long before this. */
#define FB_IDLE_MS 30000

#define QSIZE 256
#define HDR_LEN 12             /* struct virtio_net_hdr_mrg_rxbuf */
#define FRAME_LEN 60
#define LOOP_ROUNDS 200
#define RSS_SLACK_KIB 2048

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ fake backend */

enum fb_act {
	FB_OK = 0,       /* behave */
	FB_SHORT,        /* reply with only `arg` payload bytes */
	FB_WRONG_ID,     /* reply under request id `arg` */
	FB_HUGE,         /* announce `arg` payload bytes in the reply header */
	FB_FLAGS,        /* reply with header flags `arg` */
	FB_ACK,          /* answer NEED_REPLY with status `arg` */
	FB_CLOSE,        /* close the connection instead of replying */
	FB_REPLY_CLOSE,  /* reply, and be gone before the next request */
	FB_FD_HDR,       /* attach `arg` descriptors to the reply header */
	FB_FD_PAYLOAD,   /* attach `arg` descriptors to the reply payload */
	FB_SILENT,       /* never reply */
};

struct fb_script {
	uint64_t features;          /* GET_FEATURES answer */
	uint64_t protocol_features; /* GET_PROTOCOL_FEATURES answer */
	uint32_t bad_req;           /* the request whose reply goes wrong (first one) */
	enum fb_act act;
	uint64_t arg;
};

struct fb_vring {
	unsigned num;
	unsigned base;
	uint64_t desc, avail, used;
	bool addr_set;
	bool kick;
	bool kick_nofd;          /* the last SET_VRING_KICK had the no-fd flag */
	int kickfd;              /* a copy of the kick eventfd, or -1 */
	bool enabled;
};

struct fakebe {
	struct fb_script sc;
	char dir[64];
	char path[VUSER_PATH_MAX];
	int lfd, cfd, stopfd;
	pthread_t thr;
	bool running;
	/* Guards what the main thread reads while the backend runs: the memory and rings. */
	pthread_mutex_t mu;
	uint8_t *map;
	size_t map_len;
	uint8_t *mem;            /* the region's first byte in our mapping */
	uint64_t gpa, mem_size;
	struct fb_vring vr[FB_RINGS];
	/* Read by the main thread only after the backend thread has ended. */
	uint64_t features, protocol_features;
	uint64_t status;
	uint32_t log[FB_LOG_MAX];
	uint64_t log_arg[FB_LOG_MAX];
	unsigned nlog;
	bool misbehaved;
	unsigned bad;            /* protocol violations by the frontend */
	char bad_msg[200];
};

static void fb_bad(struct fakebe *fb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The frontend broke the protocol: remember the first reason. */
static void fb_bad(struct fakebe *fb, const char *fmt, ...)
{
	va_list ap;

	if (!fb->bad++) {
		va_start(ap, fmt);
		vsnprintf(fb->bad_msg, sizeof(fb->bad_msg), fmt, ap);
		va_end(ap);
	}
}

/* Where guest address gpa .. gpa+len is in our mapping, or NULL when outside the region. */
static uint8_t *fb_va(const struct fakebe *fb, uint64_t gpa, uint64_t len)
{
	if (!fb->mem || gpa < fb->gpa || len > fb->mem_size || gpa - fb->gpa > fb->mem_size - len)
		return NULL;
	return fb->mem + (gpa - fb->gpa);
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* 0 when len bytes came, 1 when the session is over (peer closed, or told to stop), -1 on error. */
static int fb_recv(struct fakebe *fb, void *buf, size_t len, int *fds, int *nfds)
{
	long long deadline = now_ms() + FB_IDLE_MS;
	uint8_t *p = buf;

	while (len) {
		union {
			char b[CMSG_SPACE(sizeof(int) * FB_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		struct pollfd pf[2] = { { .fd = fb->cfd, .events = POLLIN },
					{ .fd = fb->stopfd, .events = POLLIN } };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0) {
			fb_bad(fb, "no message from the frontend within %d ms", FB_IDLE_MS);
			return -1;
		}
		if (poll(pf, 2, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* What the frontend sent before the case ended is still served. */
		if (!pf[0].revents) {
			if (pf[1].revents)
				return 1;
			continue;
		}
		n = recvmsg(fb->cfd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? 1 : -1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			int k;

			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int i = 0; i < k; i++) {
				int in;

				memcpy(&in, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				if (*nfds < FB_MAX_FDS) {
					fds[(*nfds)++] = in;
				} else {
					close(in);
					fb_bad(fb, "more than %d descriptors with one message", FB_MAX_FDS);
				}
			}
		}
		if (mh.msg_flags & MSG_CTRUNC)
			fb_bad(fb, "descriptors truncated");
		if (n == 0)
			return 1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int fb_send(struct fakebe *fb, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	const uint8_t *p = buf;

	while (len) {
		struct iovec iov = { .iov_base = (void *)p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (nfds) {
			struct cmsghdr *c;

			memset(&ctl, 0, sizeof(ctl));
			mh.msg_control = ctl.b;
			mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
			c = CMSG_FIRSTHDR(&mh);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
			memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
		}
		n = sendmsg(fb->cfd, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		nfds = 0;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send a reply of plen bytes to hdr's request, spoiled as the script says when mis. */
static void fb_reply(struct fakebe *fb, const struct vhost_user_hdr *hdr, const void *pl,
		     uint32_t plen, bool mis)
{
	struct vhost_user_msg m = { .hdr = { .request = hdr->request,
					     .flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
					     .size = plen } };
	int fds[16] = { 0 }, nfds = 0;
	bool on_payload = false;

	memcpy(&m.payload, pl, plen);
	if (mis) {
		switch (fb->sc.act) {
		case FB_SHORT:
			m.hdr.size = plen = (uint32_t)fb->sc.arg;
			break;
		case FB_WRONG_ID:
			m.hdr.request = (uint32_t)fb->sc.arg;
			break;
		case FB_HUGE:
			/* Only the real payload follows: the frontend must not wait for the rest. */
			m.hdr.size = (uint32_t)fb->sc.arg;
			break;
		case FB_FLAGS:
			m.hdr.flags = (uint32_t)fb->sc.arg;
			break;
		case FB_FD_HDR:
		case FB_FD_PAYLOAD:
			on_payload = fb->sc.act == FB_FD_PAYLOAD;
			for (; nfds < (int)fb->sc.arg && nfds < 16; nfds++)
				fds[nfds] = eventfd(0, EFD_CLOEXEC);
			break;
		default:
			break;
		}
	}
	if (on_payload) {
		if (!fb_send(fb, &m.hdr, sizeof(m.hdr), NULL, 0))
			fb_send(fb, &m.payload, plen, fds, nfds);
	} else {
		/* On the wire the payload follows the 12-byte header; in the struct it is 8-aligned. */
		uint8_t wire[sizeof(m)];

		memcpy(wire, &m.hdr, sizeof(m.hdr));
		memcpy(wire + sizeof(m.hdr), &m.payload, plen);
		fb_send(fb, wire, sizeof(m.hdr) + plen, fds, nfds);
	}
	close_fds(fds, nfds);
}

static uint32_t fb_want_size(uint32_t req, const struct vhost_user_msg *m)
{
	switch (req) {
	case VHOST_USER_SET_OWNER:
	case VHOST_USER_GET_FEATURES:
	case VHOST_USER_GET_PROTOCOL_FEATURES:
	case VHOST_USER_GET_QUEUE_NUM:
		return 0;
	case VHOST_USER_SET_MEM_TABLE:
		return VHOST_USER_MEM_SIZE(m->payload.memory.nregions);
	case VHOST_USER_SET_VRING_ADDR:
		return sizeof(struct vhost_vring_addr);
	default:
		return 8;
	}
}

/*
 * Act on one request as a device would, checking it first. Fills *reply when
 * the request has a reply by definition. Called with fb->mu held.
 */
static void fb_handle(struct fakebe *fb, const struct vhost_user_msg *m, const int *fds,
		      int nfds, union vhost_user_payload *reply, uint32_t *rlen)
{
	const union vhost_user_payload *pl = &m->payload;
	uint32_t req = m->hdr.request;
	int want_fds = 0;
	unsigned idx = pl->state.index;

	*rlen = 0;
	if ((m->hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (m->hdr.flags & ~(VHOST_USER_VERSION_MASK | VHOST_USER_NEED_REPLY_MASK)))
		fb_bad(fb, "request %u: flags 0x%x", req, m->hdr.flags);
	if ((m->hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
	    !(fb->protocol_features & BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK)))
		fb_bad(fb, "request %u: NEED_REPLY before REPLY_ACK was agreed", req);
	if (req == VHOST_USER_SET_MEM_TABLE &&
	    (pl->memory.nregions < 1 || pl->memory.nregions > VHOST_MEMORY_BASELINE_NREGIONS)) {
		fb_bad(fb, "SET_MEM_TABLE: %u regions", pl->memory.nregions);
		return;
	}
	if (m->hdr.size != fb_want_size(req, m)) {
		fb_bad(fb, "request %u: %u payload bytes", req, m->hdr.size);
		return;
	}
	switch (req) {
	case VHOST_USER_SET_VRING_NUM:
	case VHOST_USER_SET_VRING_BASE:
	case VHOST_USER_SET_VRING_ADDR:
	case VHOST_USER_GET_VRING_BASE:
	case VHOST_USER_SET_VRING_ENABLE:
		if (idx >= FB_RINGS) {
			fb_bad(fb, "request %u: ring %u", req, idx);
			return;
		}
		break;
	case VHOST_USER_SET_VRING_KICK:
	case VHOST_USER_SET_VRING_CALL:
		idx = (unsigned)(pl->u64 & VHOST_USER_VRING_IDX_MASK);
		want_fds = pl->u64 & VHOST_USER_VRING_NOFD_MASK ? 0 : 1;
		if (idx >= FB_RINGS) {
			fb_bad(fb, "request %u: ring %u", req, idx);
			return;
		}
		break;
	case VHOST_USER_SET_MEM_TABLE:
		want_fds = (int)pl->memory.nregions;
		break;
	default:
		break;
	}
	if (nfds != want_fds) {
		fb_bad(fb, "request %u: %d descriptors, expected %d", req, nfds, want_fds);
		return;
	}

	switch (req) {
	case VHOST_USER_SET_OWNER:
		break;
	case VHOST_USER_GET_FEATURES:
		reply->u64 = fb->sc.features;
		*rlen = 8;
		break;
	case VHOST_USER_SET_FEATURES:
		if (pl->u64 & ~fb->sc.features)
			fb_bad(fb, "SET_FEATURES 0x%llx: not offered", (unsigned long long)pl->u64);
		fb->features = pl->u64;
		break;
	case VHOST_USER_GET_PROTOCOL_FEATURES:
		if (!(fb->sc.features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
			fb_bad(fb, "GET_PROTOCOL_FEATURES without F_PROTOCOL_FEATURES");
		reply->u64 = fb->sc.protocol_features;
		*rlen = 8;
		break;
	case VHOST_USER_SET_PROTOCOL_FEATURES:
		if (pl->u64 & ~fb->sc.protocol_features)
			fb_bad(fb, "SET_PROTOCOL_FEATURES 0x%llx: not offered",
			       (unsigned long long)pl->u64);
		fb->protocol_features = pl->u64;
		break;
	case VHOST_USER_GET_QUEUE_NUM:
		reply->u64 = 1;
		*rlen = 8;
		break;
	case VHOST_USER_SET_STATUS:
		fb->status = pl->u64;
		break;
	case VHOST_USER_SET_MEM_TABLE: {
		const struct vhost_user_memory_region *r = &pl->memory.regions[0];
		void *map;

		if (pl->memory.nregions != 1 || r->guest_phys_addr != r->userspace_addr ||
		    !r->memory_size) {
			fb_bad(fb, "SET_MEM_TABLE: not the one region the port describes");
			return;
		}
		map = mmap(NULL, r->memory_size + r->mmap_offset, PROT_READ | PROT_WRITE, MAP_SHARED,
			   fds[0], 0);
		if (map == MAP_FAILED) {
			fb_bad(fb, "SET_MEM_TABLE: mmap: %s", strerror(errno));
			return;
		}
		if (fb->map)
			munmap(fb->map, fb->map_len);
		fb->map = map;
		fb->map_len = r->memory_size + r->mmap_offset;
		fb->mem = fb->map + r->mmap_offset;
		fb->gpa = r->guest_phys_addr;
		fb->mem_size = r->memory_size;
		break;
	}
	case VHOST_USER_SET_VRING_NUM:
		if (!pl->state.num || pl->state.num > VIRTQ_MAX_SIZE ||
		    (pl->state.num & (pl->state.num - 1)))
			fb_bad(fb, "SET_VRING_NUM %u", pl->state.num);
		fb->vr[idx].num = pl->state.num;
		break;
	case VHOST_USER_SET_VRING_BASE:
		fb->vr[idx].base = pl->state.num;
		break;
	case VHOST_USER_SET_VRING_ADDR: {
		const struct vhost_vring_addr *a = &pl->addr;
		uint64_t n = fb->vr[idx].num;

		if (!fb_va(fb, a->desc_user_addr, n * sizeof(struct vring_desc)) ||
		    !fb_va(fb, a->avail_user_addr, 4 + 2 * n) ||
		    !fb_va(fb, a->used_user_addr, 4 + n * sizeof(struct vring_used_elem)))
			fb_bad(fb, "SET_VRING_ADDR %u: a ring outside the memory table", idx);
		fb->vr[idx].desc = a->desc_user_addr;
		fb->vr[idx].avail = a->avail_user_addr;
		fb->vr[idx].used = a->used_user_addr;
		fb->vr[idx].addr_set = true;
		break;
	}
	case VHOST_USER_SET_VRING_KICK:
		fb->vr[idx].kick = true;
		fb->vr[idx].kick_nofd = pl->u64 & VHOST_USER_VRING_NOFD_MASK;
		/* Kept, so that a case can count the kicks. */
		if (fb->vr[idx].kickfd >= 0)
			close(fb->vr[idx].kickfd);
		fb->vr[idx].kickfd = nfds ? fcntl(fds[0], F_DUPFD_CLOEXEC, 0) : -1;
		break;
	case VHOST_USER_SET_VRING_CALL:
		break;
	case VHOST_USER_SET_VRING_ENABLE:
		fb->vr[idx].enabled = pl->state.num;
		break;
	case VHOST_USER_GET_VRING_BASE:
		fb->vr[idx].kick = false;
		reply->state = (struct vhost_vring_state){ .index = idx, .num = fb->vr[idx].base };
		*rlen = sizeof(reply->state);
		break;
	default:
		fb_bad(fb, "unexpected request %u", req);
		break;
	}
}

/* Serve one request. 0: go on; 1: the session is over. */
static int fb_serve_one(struct fakebe *fb)
{
	struct vhost_user_msg m;
	union vhost_user_payload reply;
	int fds[FB_MAX_FDS], nfds = 0, r;
	uint32_t rlen = 0;
	bool mis;

	memset(&m, 0, sizeof(m));
	memset(&reply, 0, sizeof(reply));
	r = fb_recv(fb, &m.hdr, sizeof(m.hdr), fds, &nfds);
	if (!r && m.hdr.size > sizeof(m.payload)) {
		fb_bad(fb, "request %u: %u payload bytes", m.hdr.request, m.hdr.size);
		r = -1;
	}
	if (!r && m.hdr.size)
		r = fb_recv(fb, &m.payload, m.hdr.size, fds, &nfds);
	if (r) {
		close_fds(fds, nfds);
		return 1;
	}

	pthread_mutex_lock(&fb->mu);
	if (fb->nlog < FB_LOG_MAX) {
		fb->log_arg[fb->nlog] = m.payload.u64;
		fb->log[fb->nlog++] = m.hdr.request;
	}
	mis = fb->sc.act != FB_OK && !fb->misbehaved && m.hdr.request == fb->sc.bad_req;
	if (mis)
		fb->misbehaved = true;
	fb_handle(fb, &m, fds, nfds, &reply, &rlen);
	pthread_mutex_unlock(&fb->mu);
	/* The mapping holds the memory; the descriptors themselves are not kept. */
	close_fds(fds, nfds);

	if (mis && fb->sc.act == FB_CLOSE)
		return 1;
	if (mis && fb->sc.act == FB_SILENT)
		return 0;
	/*
	 * Closing right after the reply would race with the frontend's next
	 * send; shutting our read side first makes that send fail for certain,
	 * as it would against a backend that died between two requests.
	 */
	if (mis && fb->sc.act == FB_REPLY_CLOSE)
		shutdown(fb->cfd, SHUT_RD);
	if (rlen) {
		fb_reply(fb, &m.hdr, &reply, rlen, mis);
	} else if (m.hdr.flags & VHOST_USER_NEED_REPLY_MASK) {
		uint64_t status = mis && fb->sc.act == FB_ACK ? fb->sc.arg : 0;

		fb_reply(fb, &m.hdr, &status, sizeof(status), mis);
	} else if (mis) {
		fb_bad(fb, "script: request %u has no reply to spoil", m.hdr.request);
	}
	return mis && fb->sc.act == FB_REPLY_CLOSE;
}

static void *fb_thread(void *arg)
{
	struct fakebe *fb = arg;
	struct pollfd pf[2] = { { .fd = fb->lfd, .events = POLLIN },
				{ .fd = fb->stopfd, .events = POLLIN } };
	int r;

	do
		r = poll(pf, 2, FB_IDLE_MS);
	while (r < 0 && errno == EINTR);
	if (r > 0 && (pf[0].revents & POLLIN))
		fb->cfd = accept4(fb->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fb->cfd >= 0)
		while (!fb_serve_one(fb))
			;
	if (fb->cfd >= 0)
		close(fb->cfd);
	fb->cfd = -1;
	return NULL;
}

static struct fakebe *fakebe_start(const struct fb_script *sc)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fakebe *fb = calloc(1, sizeof(*fb));

	if (!fb)
		return NULL;
	fb->sc = *sc;
	fb->lfd = fb->cfd = fb->stopfd = -1;
	for (unsigned i = 0; i < FB_RINGS; i++)
		fb->vr[i].kickfd = -1;
	pthread_mutex_init(&fb->mu, NULL);
	snprintf(fb->dir, sizeof(fb->dir), "/tmp/vuser-hostile.XXXXXX");
	if (!mkdtemp(fb->dir)) {
		fb->dir[0] = 0;
		goto fail;
	}
	snprintf(fb->path, sizeof(fb->path), "%s/be.sock", fb->dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", fb->path);
	fb->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	fb->stopfd = eventfd(0, EFD_CLOEXEC);
	if (fb->lfd < 0 || fb->stopfd < 0 ||
	    bind(fb->lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fb->lfd, 1) < 0)
		goto fail;
	if (pthread_create(&fb->thr, NULL, fb_thread, fb))
		goto fail;
	fb->running = true;
	return fb;

fail:
	fprintf(stderr, "fake backend: %s\n", strerror(errno));
	if (fb->lfd >= 0)
		close(fb->lfd);
	if (fb->stopfd >= 0)
		close(fb->stopfd);
	if (fb->dir[0]) {
		unlink(fb->path);
		rmdir(fb->dir);
	}
	pthread_mutex_destroy(&fb->mu);
	free(fb);
	return NULL;
}

/* End the session, as a backend that goes away does, and wait for the thread. */
static void fakebe_stop(struct fakebe *fb)
{
	uint64_t one = 1;

	if (!fb->running)
		return;
	if (write(fb->stopfd, &one, sizeof(one)) != sizeof(one))
		fprintf(stderr, "fake backend: cannot signal stop\n");
	pthread_join(fb->thr, NULL);
	fb->running = false;
}

static void fakebe_destroy(struct fakebe *fb)
{
	if (!fb)
		return;
	fakebe_stop(fb);
	close(fb->lfd);
	close(fb->stopfd);
	for (unsigned i = 0; i < FB_RINGS; i++)
		if (fb->vr[i].kickfd >= 0)
			close(fb->vr[i].kickfd);
	if (fb->map)
		munmap(fb->map, fb->map_len);
	unlink(fb->path);
	if (rmdir(fb->dir))
		fprintf(stderr, "cannot remove %s: %s\n", fb->dir, strerror(errno));
	pthread_mutex_destroy(&fb->mu);
	free(fb);
}

/* What every case asks of the frontend's side of the conversation. */
static void fakebe_check(struct fakebe *fb, const char *what)
{
	if (fb->bad)
		fprintf(stderr, "  %s: the frontend broke the protocol %u time(s): %s\n", what,
			fb->bad, fb->bad_msg);
	CHECK_EQ(fb->bad, 0);
	if (fb->sc.act != FB_OK && !fb->misbehaved)
		fprintf(stderr, "  %s: the script never got to misbehave\n", what);
	CHECK(fb->sc.act == FB_OK || fb->misbehaved);
}

static struct fb_script good_script(void)
{
	return (struct fb_script){
		.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF) |
			    BIT(VIRTIO_F_IN_ORDER) | BIT(VHOST_USER_F_PROTOCOL_FEATURES),
		.protocol_features = BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
				     BIT(VHOST_USER_PROTOCOL_F_MQ) |
				     BIT(VHOST_USER_PROTOCOL_F_STATUS),
	};
}

static struct fb_script bad_script(uint32_t req, enum fb_act act, uint64_t arg)
{
	struct fb_script sc = good_script();

	sc.bad_req = req;
	sc.act = act;
	sc.arg = arg;
	return sc;
}

/* extra: more devargs, each with its leading comma. */
static int open_port(const struct fakebe *fb, const char *extra, struct vuser_port **p)
{
	char devargs[VUSER_PATH_MAX + 64];

	snprintf(devargs, sizeof(devargs), "path=%s,queue_size=%u%s", fb->path, QSIZE, extra);
	return vuser_port_open(devargs, p);
}

/* ------------------------------------------------------- handshake cases */

/* Not an errno (failures are negative): any failure will do. */
#define ANY_NEGATIVE 1

/*
 * Open against a backend that follows sc: the open must fail with err (or any
 * negative errno for ANY_NEGATIVE), the message must name each of has[], and
 * no descriptor may be left behind.
 */
static void expect_open_fails(const char *what, struct fb_script sc, int err,
			      const char *has1, const char *has2, const char *has3)
{
	const char *has[3] = { has1, has2, has3 };
	struct vuser_port *p = NULL;
	int before = t_failures, fds0, ret;
	struct fakebe *fb;
	char msg[256];

	fds0 = t_count_fds();
	fb = fakebe_start(&sc);
	if (!fb) {
		CHECK(!"fake backend started");
		return;
	}
	ret = open_port(fb, "", &p);
	snprintf(msg, sizeof(msg), "%s", vuser_last_error());
	if (err == ANY_NEGATIVE)
		CHECK(ret < 0);
	else
		CHECK_EQ(ret, err);
	CHECK(p == NULL);
	for (int i = 0; i < 3; i++)
		if (has[i])
			CHECK_STR_HAS(msg, has[i]);
	if (!ret)
		vuser_port_close(p);
	fakebe_stop(fb);
	fakebe_check(fb, what);
	fakebe_destroy(fb);
	CHECK_EQ(t_count_fds(), fds0);
	if (t_failures != before)
		fprintf(stderr, "  case %s: open -> %d (%s) \"%s\"\n", what, ret,
			ret < 0 ? strerror(-ret) : "success", msg);
}

/* 1 */
static void case_short_reply(void)
{
	expect_open_fails("GET_FEATURES reply of 4 bytes",
			  bad_script(VHOST_USER_GET_FEATURES, FB_SHORT, 4), -EPROTO,
			  "GET_FEATURES", "4 bytes", "expected 8");
}

/* 2 */
static void case_wrong_request(void)
{
	expect_open_fails("GET_FEATURES answered as GET_PROTOCOL_FEATURES",
			  bad_script(VHOST_USER_GET_FEATURES, FB_WRONG_ID,
				     VHOST_USER_GET_PROTOCOL_FEATURES),
			  -EPROTO, "GET_FEATURES:", "GET_PROTOCOL_FEATURES", NULL);
}

/* 3 */
static void case_oversized(void)
{
	expect_open_fails("GET_FEATURES reply announcing 1 MiB",
			  bad_script(VHOST_USER_GET_FEATURES, FB_HUGE, 0x100000), -EPROTO,
			  "GET_FEATURES", "oversized", "1048576");
	/* The same through the REPLY_ACK path, which reads its reply separately. */
	expect_open_fails("SET_MEM_TABLE ack announcing 1 MiB",
			  bad_script(VHOST_USER_SET_MEM_TABLE, FB_HUGE, 0x100000), -EPROTO,
			  "SET_MEM_TABLE", "oversized", NULL);
}

/* 4 */
static void case_bad_flags(void)
{
	expect_open_fails("GET_FEATURES reply without the REPLY flag",
			  bad_script(VHOST_USER_GET_FEATURES, FB_FLAGS, VHOST_USER_VERSION),
			  -EPROTO, "GET_FEATURES", "flags 0x1", NULL);
	expect_open_fails("GET_FEATURES reply of version 2",
			  bad_script(VHOST_USER_GET_FEATURES, FB_FLAGS, 2 | VHOST_USER_REPLY_MASK),
			  -EPROTO, "GET_FEATURES", "flags 0x6", NULL);
	expect_open_fails("SET_FEATURES ack of version 0",
			  bad_script(VHOST_USER_SET_FEATURES, FB_FLAGS, VHOST_USER_REPLY_MASK),
			  -EPROTO, "SET_FEATURES", "flags 0x4", NULL);
}

/* 5 */
static void case_ack_failure(void)
{
	expect_open_fails("SET_MEM_TABLE refused through REPLY_ACK",
			  bad_script(VHOST_USER_SET_MEM_TABLE, FB_ACK, 1), -EIO,
			  "SET_MEM_TABLE", "refused", "status 1");
}

/* 6 */
static void case_close_midway(void)
{
	/* Any errno will do here; what matters is that the message says why. */
	expect_open_fails("backend closes instead of acking SET_FEATURES",
			  bad_script(VHOST_USER_SET_FEATURES, FB_CLOSE, 0), ANY_NEGATIVE,
			  "SET_FEATURES", "closed", NULL);
	expect_open_fails("backend acks SET_FEATURES and is gone",
			  bad_script(VHOST_USER_SET_FEATURES, FB_REPLY_CLOSE, 0), ANY_NEGATIVE,
			  "SET_STATUS", "closed", NULL);
}

/* 7: expect_open_fails also holds the process's descriptor count. */
static void case_fd_in_reply(void)
{
	expect_open_fails("a descriptor with the GET_FEATURES reply header",
			  bad_script(VHOST_USER_GET_FEATURES, FB_FD_HDR, 1), -EPROTO,
			  "GET_FEATURES", "file descriptors", NULL);
	expect_open_fails("more descriptors than a message can carry",
			  bad_script(VHOST_USER_GET_FEATURES, FB_FD_HDR, 12), -EPROTO,
			  "GET_FEATURES", "file descriptors", NULL);
	expect_open_fails("descriptors with the GET_FEATURES reply payload",
			  bad_script(VHOST_USER_GET_FEATURES, FB_FD_PAYLOAD, 3), -EPROTO,
			  "GET_FEATURES", "file descriptors", NULL);
}

/* 8 */
static void case_no_version1(void)
{
	struct fb_script sc = good_script();

	sc.features &= ~BIT(VIRTIO_F_VERSION_1);
	expect_open_fails("no VIRTIO_F_VERSION_1", sc, -ENOTSUP, "VIRTIO_F_VERSION_1", NULL, NULL);
}

/* 12 */
static void case_no_reply(void)
{
	long long t0 = now_ms(), took;

	expect_open_fails("no reply to GET_FEATURES",
			  bad_script(VHOST_USER_GET_FEATURES, FB_SILENT, 0), -ETIMEDOUT,
			  "GET_FEATURES", "did not reply", "5000 ms");
	took = now_ms() - t0;
	CHECK(took >= 4500);
	CHECK(took <= 8000);
	if (took < 4500 || took > 8000)
		fprintf(stderr, "  case no reply: open took %lld ms, expected about 5000\n", took);
}

/* ------------------------------------------------------------ the device */

struct dev_vq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t num;
	uint16_t last_avail;   /* next avail entry the device takes */
	uint16_t used_idx;     /* next used entry the device writes */
};

struct dev {
	const struct fakebe *fb;
	struct dev_vq rx, tx;
};

/* The rings as the backend learned them, in its own mapping. */
static bool dev_attach(struct fakebe *fb, struct dev *d)
{
	struct dev_vq *vqs[FB_RINGS] = { &d->rx, &d->tx };
	bool ok = true;

	memset(d, 0, sizeof(*d));
	d->fb = fb;
	pthread_mutex_lock(&fb->mu);
	for (unsigned i = 0; i < FB_RINGS; i++) {
		const struct fb_vring *v = &fb->vr[i];
		struct dev_vq *vq = vqs[i];

		vq->num = (uint16_t)v->num;
		vq->desc = (void *)fb_va(fb, v->desc, (uint64_t)v->num * sizeof(struct vring_desc));
		vq->avail = (void *)fb_va(fb, v->avail, 4 + 2 * (uint64_t)v->num);
		vq->used = (void *)fb_va(fb, v->used, 4 + 8 * (uint64_t)v->num);
		vq->last_avail = vq->used_idx = (uint16_t)v->base;
		ok = ok && v->addr_set && v->kick && v->enabled && v->num == QSIZE && vq->desc &&
		     vq->avail && vq->used;
	}
	pthread_mutex_unlock(&fb->mu);
	return ok;
}

static uint16_t dev_avail_idx(const struct dev_vq *vq)
{
	return __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
}

/* One used entry for count chains (in order, 2.6.9: idx moves by the batch). */
static void dev_used_batch(struct dev_vq *vq, uint32_t id, uint32_t len, unsigned count)
{
	struct vring_used_elem *e = &vq->used->ring[vq->used_idx & (vq->num - 1)];

	e->id = id;
	e->len = len;
	vq->used_idx = (uint16_t)(vq->used_idx + count);
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
}

static void dev_used_put(struct dev_vq *vq, uint32_t id, uint32_t len)
{
	dev_used_batch(vq, id, len, 1);
}

/* Take the next buffer the driver posted on rx: its head, where it is, how long. */
static bool dev_rx_take(struct dev *d, uint16_t *head, uint8_t **buf, uint32_t *cap)
{
	struct dev_vq *vq = &d->rx;
	struct vring_desc ds;
	uint16_t h;

	if (dev_avail_idx(vq) == vq->last_avail)
		return false;
	h = vq->avail->ring[vq->last_avail & (vq->num - 1)];
	if (h >= vq->num)
		return false;
	ds = vq->desc[h];
	if (!(ds.flags & VRING_DESC_F_WRITE) || (ds.flags & VRING_DESC_F_NEXT))
		return false;
	*buf = fb_va(d->fb, ds.addr, ds.len);
	if (!*buf)
		return false;
	vq->last_avail++;
	*head = h;
	*cap = ds.len;
	return true;
}

/* Take the next frame the driver posted on tx: its head and its bytes, header first. */
static bool dev_tx_take(struct dev *d, uint16_t *head, uint8_t *out, uint32_t max, uint32_t *len)
{
	struct dev_vq *vq = &d->tx;
	uint16_t h, i;
	unsigned n = 0;

	if (dev_avail_idx(vq) == vq->last_avail)
		return false;
	h = i = vq->avail->ring[vq->last_avail & (vq->num - 1)];
	*len = 0;
	for (;;) {
		struct vring_desc ds;
		const uint8_t *src;

		if (i >= vq->num || ++n > vq->num)
			return false;
		ds = vq->desc[i];
		src = fb_va(d->fb, ds.addr, ds.len);
		if (!src || (ds.flags & VRING_DESC_F_WRITE) || ds.len > max - *len)
			return false;
		memcpy(out + *len, src, ds.len);
		*len += ds.len;
		if (!(ds.flags & VRING_DESC_F_NEXT))
			break;
		i = ds.next;
	}
	vq->last_avail++;
	*head = h;
	return true;
}

static void make_frame(uint8_t *f, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 8));
}

/* What the device writes into an rx buffer: the header, then len bytes of the frame. */
static void dev_rx_write(uint8_t *buf, uint16_t num_buffers, const uint8_t *frame, uint32_t len)
{
	struct virtio_net_hdr_mrg_rxbuf h = { .num_buffers = num_buffers };

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), frame, len);
}

static void check_frame(const struct vuser_buf *b, unsigned seed, uint32_t len)
{
	uint8_t want[4096], got[4096];

	CHECK_EQ(b->pkt_len, len);
	if (b->pkt_len != len || len > sizeof(want))
		return;
	make_frame(want, len, seed);
	CHECK_EQ(vuser_buf_read(b, 0, got, len), len);
	CHECK(!memcmp(got, want, len));
}

/*
 * Every buffer of the pool is free, on a ring, or the program's: what the
 * driver posted and the device has not returned is still on the ring.
 */
static void check_pool(struct vuser_port *p, const struct dev *d, uint16_t rx_done,
		       uint16_t tx_done, unsigned held, const char *what)
{
	struct vuser_port_info info = { 0 };
	unsigned rx_in = (uint16_t)(dev_avail_idx(&d->rx) - rx_done);
	unsigned tx_in = (uint16_t)(dev_avail_idx(&d->tx) - tx_done);

	CHECK_EQ(vuser_port_info(p, &info), 0);
	CHECK_EQ(info.free_bufs + rx_in + tx_in + held, info.nb_bufs);
	if (info.free_bufs + rx_in + tx_in + held != info.nb_bufs)
		fprintf(stderr, "  %s: %u free + %u on rx + %u on tx + %u held != %u buffers\n",
			what, info.free_bufs, rx_in, tx_in, held, info.nb_bufs);
}

static void get_stats(struct vuser_port *p, struct vuser_port_stats *st)
{
	memset(st, 0, sizeof(*st));
	CHECK_EQ(vuser_port_stats(p, st), 0);
}

/* A port with a good handshake behind it, its rings attached. */
static bool open_good(struct fakebe **fbp, const char *extra, struct vuser_port **pp,
		      struct dev *d)
{
	struct fb_script sc = good_script();
	int ret;

	*pp = NULL;
	*fbp = fakebe_start(&sc);
	if (!*fbp) {
		CHECK(!"fake backend started");
		return false;
	}
	ret = open_port(*fbp, extra, pp);
	CHECK_EQ(ret, 0);
	if (ret) {
		fprintf(stderr, "  good open: %s\n", vuser_last_error());
		return false;
	}
	if (!dev_attach(*fbp, d)) {
		CHECK(!"the backend learned every ring");
		return false;
	}
	return true;
}

/* Close the port and end its session; the backend stays for inspection. */
static void close_good(struct fakebe *fb, struct vuser_port *p, const char *what)
{
	vuser_port_close(p);
	if (fb) {
		fakebe_stop(fb);
		fakebe_check(fb, what);
	}
}

/* ---------------------------------------------------------------- rx (9) */

struct rxt {
	struct vuser_port *p;
	struct dev d;
	uint16_t done;      /* used entries that gave back a buffer the driver had posted */
	uint64_t good;      /* frames delivered */
	unsigned seed;
};

static void rx_free(struct vuser_buf **b, int n)
{
	for (int i = 0; i < n; i++)
		vuser_buf_free(b[i]);
}

/* The device delivers one correct frame; the port must hand it over intact. */
/*
 * A frame of FRAME_LEN in one buffer the device did not fill, its header
 * saying num_buffers: it arrives whole whatever that says, since only a
 * filled buffer can be followed by more of its frame (5.1.6.4.2).
 */
static void rx_short(struct rxt *t, uint16_t num_buffers, const char *after)
{
	uint8_t frame[FRAME_LEN];
	struct vuser_buf *out[8];
	int before = t_failures, nb;
	unsigned seed = ++t->seed;
	uint16_t head;
	uint8_t *buf;
	uint32_t cap;

	if (!dev_rx_take(&t->d, &head, &buf, &cap)) {
		CHECK(!"the driver has an rx buffer posted");
		return;
	}
	CHECK(cap >= HDR_LEN + FRAME_LEN);
	make_frame(frame, FRAME_LEN, seed);
	dev_rx_write(buf, num_buffers, frame, FRAME_LEN);
	dev_used_put(&t->d.rx, head, HDR_LEN + FRAME_LEN);
	t->done++;
	nb = vuser_rx_burst(t->p, 0, out, 8);
	CHECK_EQ(nb, 1);
	if (nb >= 1) {
		check_frame(out[0], seed, FRAME_LEN);
		CHECK_EQ(out[0]->nb_segs, 1);
	}
	if (nb > 0) {
		rx_free(out, nb);
		t->good += (uint64_t)nb;
	}
	check_pool(t->p, &t->d, t->done, 0, 0, after);
	if (t_failures != before)
		fprintf(stderr, "  rx: a good frame after %s\n", after);
}

static void rx_good(struct rxt *t, const char *after)
{
	rx_short(t, 1, after);
}

/*
 * After the device broke the rules on rx: `calls` bursts hand over nothing,
 * the queue's error count grew, and no buffer went missing.
 */
static void rx_rejected(struct rxt *t, const struct vuser_port_stats *st0, unsigned calls,
			const char *what)
{
	struct vuser_port_stats st;
	struct vuser_buf *out[64];
	int before = t_failures, total = 0;

	for (unsigned i = 0; i < calls; i++) {
		int nb = vuser_rx_burst(t->p, 0, out, 64);

		CHECK(nb >= 0);
		if (nb > 0) {
			total += nb;
			rx_free(out, nb);
		}
	}
	CHECK_EQ(total, 0);
	get_stats(t->p, &st);
	CHECK(st.rx[0].errors > st0->rx[0].errors);
	CHECK_EQ(st.rx[0].packets, t->good);
	check_pool(t->p, &t->d, t->done, 0, 0, what);
	if (t_failures != before)
		fprintf(stderr, "  rx: %s: %d frame(s) handed over, errors %llu -> %llu, drops %llu -> %llu\n",
			what, total, (unsigned long long)st0->rx[0].errors,
			(unsigned long long)st.rx[0].errors, (unsigned long long)st0->rx[0].drops,
			(unsigned long long)st.rx[0].drops);
}

/*
 * The device fills the next posted buffer with a frame but reports it with
 * this num_buffers and used len (len bytes past the buffer's end when past_end).
 */
static void rx_bad_entry(struct rxt *t, uint16_t num_buffers, uint32_t len, bool past_end,
			 const char *what)
{
	struct vuser_port_stats st0;
	uint8_t frame[FRAME_LEN];
	uint16_t head;
	uint8_t *buf;
	uint32_t cap;

	get_stats(t->p, &st0);
	if (!dev_rx_take(&t->d, &head, &buf, &cap)) {
		CHECK(!"the driver has an rx buffer posted");
		return;
	}
	make_frame(frame, FRAME_LEN, 0xbad);
	dev_rx_write(buf, num_buffers, frame, FRAME_LEN);
	dev_used_put(&t->d.rx, head, past_end ? cap + len : len);
	/* The entry names a buffer the driver posted: it comes back, as a drop. */
	t->done++;
	rx_rejected(t, &st0, 1, what);
}

/* An entry that names no buffer the driver has posted. */
static void rx_bad_id(struct rxt *t, uint32_t id, const char *what)
{
	struct vuser_port_stats st0;

	get_stats(t->p, &st0);
	dev_used_put(&t->d.rx, id, HDR_LEN + FRAME_LEN);
	rx_rejected(t, &st0, 1, what);
}

/* A frame of len bytes spread over as many posted buffers as it takes. */
static void rx_merged(struct rxt *t, uint32_t len)
{
	uint8_t frame[4096];
	struct vuser_buf *out[8];
	uint16_t heads[8];
	uint8_t *bufs[8];
	uint32_t caps[8], off = 0, lens[8];
	unsigned n = 0, seed = ++t->seed;
	int before = t_failures, nb;

	make_frame(frame, len, seed);
	while (off < len && n < 8) {
		uint32_t hdr = n ? 0 : HDR_LEN, k;

		if (!dev_rx_take(&t->d, &heads[n], &bufs[n], &caps[n])) {
			CHECK(!"the driver has an rx buffer posted");
			return;
		}
		k = caps[n] - hdr < len - off ? caps[n] - hdr : len - off;
		memcpy(bufs[n] + hdr, frame + off, k);
		lens[n] = hdr + k;
		off += k;
		n++;
	}
	dev_rx_write(bufs[0], (uint16_t)n, frame, lens[0] - HDR_LEN);
	for (unsigned i = 0; i < n; i++)
		dev_used_put(&t->d.rx, heads[i], lens[i]);
	t->done = (uint16_t)(t->done + n);
	nb = vuser_rx_burst(t->p, 0, out, 8);
	CHECK_EQ(nb, 1);
	if (nb >= 1) {
		CHECK_EQ(out[0]->nb_segs, n);
		check_frame(out[0], seed, len);
	}
	if (nb > 0) {
		rx_free(out, nb);
		t->good += (uint64_t)nb;
	}
	check_pool(t->p, &t->d, t->done, 0, 0, "a merged frame");
	if (t_failures != before)
		fprintf(stderr, "  rx: a %u-byte frame over %u buffers\n", len, n);
}

/* Ordinary traffic in bursts, long enough to wrap the ring and refill it many times. */
static void rx_stream(struct rxt *t, unsigned bursts, unsigned per)
{
	int before = t_failures;

	for (unsigned r = 0; r < bursts && t_failures == before; r++) {
		struct vuser_buf *out[64];
		unsigned seed0 = t->seed + 1;
		int nb;

		for (unsigned i = 0; i < per; i++) {
			uint8_t frame[FRAME_LEN + 40];
			uint32_t flen = FRAME_LEN + i % 40, cap;
			uint16_t head;
			uint8_t *buf;

			if (!dev_rx_take(&t->d, &head, &buf, &cap)) {
				CHECK(!"the driver keeps rx buffers posted");
				return;
			}
			make_frame(frame, flen, ++t->seed);
			dev_rx_write(buf, 1, frame, flen);
			dev_used_put(&t->d.rx, head, HDR_LEN + flen);
			t->done++;
		}
		nb = vuser_rx_burst(t->p, 0, out, 64);
		CHECK_EQ(nb, (int)per);
		for (int i = 0; i < nb && i < (int)per; i++)
			check_frame(out[i], seed0 + (unsigned)i, FRAME_LEN + (uint32_t)i % 40);
		if (nb > 0) {
			rx_free(out, nb);
			t->good += (uint64_t)nb;
		}
		check_pool(t->p, &t->d, t->done, 0, 0, "rx traffic");
	}
	if (t_failures != before)
		fprintf(stderr, "  rx: ordinary traffic after the hostile entries\n");
}

static const uint32_t open_sequence[] = {
	VHOST_USER_SET_OWNER, VHOST_USER_GET_FEATURES, VHOST_USER_GET_PROTOCOL_FEATURES,
	VHOST_USER_SET_PROTOCOL_FEATURES, VHOST_USER_SET_STATUS,
	VHOST_USER_SET_VRING_CALL, VHOST_USER_SET_VRING_CALL,
	VHOST_USER_SET_FEATURES, VHOST_USER_SET_STATUS, VHOST_USER_SET_MEM_TABLE,
	VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE, VHOST_USER_SET_VRING_ADDR,
	VHOST_USER_SET_VRING_KICK,
	VHOST_USER_SET_VRING_NUM, VHOST_USER_SET_VRING_BASE, VHOST_USER_SET_VRING_ADDR,
	VHOST_USER_SET_VRING_KICK,
	VHOST_USER_SET_STATUS, VHOST_USER_SET_VRING_ENABLE, VHOST_USER_SET_VRING_ENABLE,
};

static const uint32_t close_sequence[] = {
	VHOST_USER_SET_VRING_ENABLE, VHOST_USER_SET_VRING_ENABLE,
	VHOST_USER_GET_VRING_BASE, VHOST_USER_GET_VRING_BASE, VHOST_USER_SET_STATUS,
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* The conversation the fake backend saw, against the one a good port holds. */
static void check_conversation(const struct fakebe *fb, uint64_t features)
{
	const unsigned no = NELEM(open_sequence), nc = NELEM(close_sequence);
	int before = t_failures;

	CHECK_EQ(fb->nlog, no + nc);
	for (unsigned i = 0; i < no && i < fb->nlog; i++)
		CHECK_EQ(fb->log[i], open_sequence[i]);
	for (unsigned i = 0; i < nc && no + i < fb->nlog; i++)
		CHECK_EQ(fb->log[no + i], close_sequence[i]);
	CHECK_EQ(fb->features, features);
	CHECK_EQ(fb->protocol_features, good_script().protocol_features);
	CHECK_EQ(fb->status, 0);
	for (unsigned i = 0, k = 0; i < fb->nlog; i++) {
		static const uint64_t want[] = {
			VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
			VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK,
			VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
				VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK,
			0,
		};

		if (fb->log[i] != VHOST_USER_SET_STATUS)
			continue;
		CHECK(k < NELEM(want));
		if (k < NELEM(want))
			CHECK_EQ(fb->log_arg[i], want[k]);
		k++;
	}
	if (t_failures != before) {
		fprintf(stderr, "  conversation:");
		for (unsigned i = 0; i < fb->nlog; i++)
			fprintf(stderr, " %u", fb->log[i]);
		fprintf(stderr, "\n");
	}
}

static void rx_run(bool in_order)
{
	struct vuser_port_stats st0;
	struct fakebe *fb;
	struct rxt t;

	memset(&t, 0, sizeof(t));
	if (!open_good(&fb, in_order ? "" : ",in_order=0", &t.p, &t.d)) {
		vuser_port_close(t.p);
		fakebe_destroy(fb);
		return;
	}
	/* The port posts its whole rx ring at open. */
	CHECK_EQ(dev_avail_idx(&t.d.rx), QSIZE);
	check_pool(t.p, &t.d, 0, 0, 0, "after open");
	rx_good(&t, "open");

	/* (1) ids the driver never posted, or already has back */
	rx_bad_id(&t, QSIZE, "used id == queue size");
	rx_good(&t, "used id == queue size");
	rx_bad_id(&t, UINT32_MAX, "used id 0xffffffff");
	rx_good(&t, "used id 0xffffffff");
	rx_bad_id(&t, t.d.rx.avail->ring[(uint16_t)(t.d.rx.last_avail - 1) & (QSIZE - 1)],
		  "used id completed already");
	rx_good(&t, "used id completed already");

	/* (2) more than the buffer holds */
	rx_bad_entry(&t, 1, 1, true, "used len one past the buffer");
	rx_good(&t, "used len one past the buffer");
	rx_bad_entry(&t, 1, UINT32_MAX, false, "used len 0xffffffff");
	rx_good(&t, "used len 0xffffffff");

	/* (3) less than the virtio-net header */
	rx_bad_entry(&t, 1, HDR_LEN - 1, false, "used len 11");
	rx_good(&t, "used len 11");
	rx_bad_entry(&t, 1, 0, false, "used len 0");
	rx_good(&t, "used len 0");

	/* (4) num_buffers that cannot be, in a buffer the device filled */
	rx_bad_entry(&t, 0, 0, true, "num_buffers 0");
	rx_good(&t, "num_buffers 0");
	rx_bad_entry(&t, QSIZE + 1, 0, true, "num_buffers beyond the ring");
	rx_good(&t, "num_buffers beyond the ring");
	/* ... and in one it did not fill, where the frame ends whatever it says */
	rx_short(&t, 0, "num_buffers 0 in a short buffer");
	rx_short(&t, 3, "num_buffers 3 in a short buffer");
	rx_good(&t, "num_buffers in short buffers");

	/*
	 * (5) used->idx more than a ring ahead. Every slot the claim covers
	 * holds an id no driver could believe, so that the outcome does not
	 * hang on what earlier steps left in the ring. The device then goes on
	 * from where it claims to be: whatever the driver makes of the claim,
	 * it must be back in step within a few bursts.
	 */
	get_stats(t.p, &st0);
	for (unsigned i = 0; i < QSIZE; i++)
		t.d.rx.used->ring[i] = (struct vring_used_elem){ .id = QSIZE + i,
								 .len = HDR_LEN + FRAME_LEN };
	t.d.rx.used_idx = (uint16_t)(t.d.rx.used_idx + QSIZE + 44);
	__atomic_store_n(&t.d.rx.used->idx, t.d.rx.used_idx, __ATOMIC_RELEASE);
	rx_rejected(&t, &st0, 4, "used idx jumps by the ring size + 44");
	rx_good(&t, "used idx jumps by the ring size + 44");

	rx_merged(&t, 3000);
	rx_stream(&t, 3 * QSIZE / 32, 32);

	close_good(fb, t.p, "rx");
	if (fb)
		check_conversation(fb, good_script().features &
					       ~(in_order ? 0 : BIT(VIRTIO_F_IN_ORDER)));
	fakebe_destroy(fb);
}

static void case_rx(void)
{
	int before;

	rx_run(true);
	/* Without in-order every used entry stands alone, and is checked alone. */
	before = t_failures;
	rx_run(false);
	if (t_failures != before)
		fprintf(stderr, "  (rx failures above: with in_order=0)\n");
}

/* --------------------------------------------------------------- tx (10) */

struct txt {
	struct vuser_port *p;
	struct dev d;
	uint16_t done;      /* used entries that gave back a frame the driver had posted */
	uint16_t rx_done;   /* rx buffers the device filled */
	unsigned seed;
	uint16_t heads[QSIZE]; /* what the device took and has not returned, oldest first */
	uint64_t sent;      /* frames the port accepted */
	unsigned nheads;
	/* Garbage where the header goes, before each send (tx_headers()): */
	bool prog_scribble; /* the program's, in the headroom of its buffers */
	bool dev_scribble;  /* the device's, in the buffers it takes */
	uint16_t shift;     /* the program's, with the frame moved this far into the headroom */
	unsigned reused;    /* buffers sent with tx_hdr_off == data_off */
};

/*
 * The device takes the next frame from the tx ring and checks it byte for
 * byte: a zero header, then want.
 */
static bool tx_take_check(struct txt *t, const uint8_t *want)
{
	uint8_t got[HDR_LEN + FRAME_LEN + 64];
	static const uint8_t zero[HDR_LEN];
	uint32_t len = 0;
	uint16_t head;

	if (!dev_tx_take(&t->d, &head, got, sizeof(got), &len)) {
		CHECK(!"the device finds every frame on the tx ring");
		return false;
	}
	t->heads[t->nheads++] = head;
	CHECK_EQ(len, HDR_LEN + FRAME_LEN);
	CHECK(!memcmp(got, zero, HDR_LEN));
	CHECK(!memcmp(got + HDR_LEN, want, FRAME_LEN));
	if (t->dev_scribble) {
		/* Where the device may only read: the port must not trust it next time. */
		uint8_t *h = fb_va(t->d.fb, t->d.tx.desc[head].addr, HDR_LEN);

		CHECK(h != NULL);
		if (h)
			memset(h, 0x5a, HDR_LEN);
	}
	return true;
}

/* The program sends n frames; the device takes each and checks it byte for byte. */
static void tx_send(struct txt *t, unsigned n)
{
	struct vuser_buf *b[16];
	unsigned seed0 = t->seed + 1;
	int ret;

	for (unsigned i = 0; i < n; i++) {
		uint8_t frame[FRAME_LEN];

		b[i] = vuser_buf_alloc(t->p);
		CHECK(b[i] != NULL);
		if (!b[i]) {
			vuser_buf_free_bulk(b, i);
			return;
		}
		b[i]->data_off = (uint16_t)(b[i]->data_off - t->shift);
		make_frame(frame, FRAME_LEN, ++t->seed);
		CHECK_EQ(vuser_buf_write(b[i], frame, FRAME_LEN), 0);
		if (b[i]->tx_hdr_off == b[i]->data_off)
			t->reused++;
		if (t->prog_scribble)
			memset(vuser_buf_data(b[i]) - HDR_LEN, 0xa5, HDR_LEN);
	}
	ret = vuser_tx_burst(t->p, 0, b, n);
	CHECK_EQ(ret, (int)n);
	for (int i = ret < 0 ? 0 : ret; i < (int)n; i++)
		vuser_buf_free(b[i]);
	if (ret > 0)
		t->sent += (uint64_t)ret;
	for (int i = 0; i < ret; i++) {
		uint8_t want[FRAME_LEN];

		make_frame(want, FRAME_LEN, seed0 + (unsigned)i);
		if (!tx_take_check(t, want))
			return;
	}
}

/* The device returns the oldest k frames it holds, as it should. */
static void tx_return(struct txt *t, unsigned k)
{
	if (k > t->nheads)
		k = t->nheads;
	for (unsigned i = 0; i < k; i++)
		dev_used_put(&t->d.tx, t->heads[i], 0);
	memmove(t->heads, t->heads + k, (t->nheads - k) * sizeof(t->heads[0]));
	t->nheads -= k;
	t->done = (uint16_t)(t->done + k);
}

/* One tx burst of nothing: the port takes back what the device returned. */
static void tx_reclaim(struct txt *t, const struct vuser_port_stats *st0, bool bad,
		       const char *what)
{
	struct vuser_port_stats st;
	int before = t_failures;

	CHECK_EQ(vuser_tx_burst(t->p, 0, NULL, 0), 0);
	get_stats(t->p, &st);
	if (bad)
		CHECK(st.tx[0].errors > st0->tx[0].errors);
	else
		CHECK_EQ(st.tx[0].errors, st0->tx[0].errors);
	check_pool(t->p, &t->d, t->rx_done, t->done, 0, what);
	if (t_failures != before)
		fprintf(stderr, "  tx: %s: errors %llu -> %llu\n", what,
			(unsigned long long)st0->tx[0].errors, (unsigned long long)st.tx[0].errors);
}

/* Ordinary traffic, long enough to wrap the ring; stops at the first failure. */
static void tx_traffic(struct txt *t, unsigned rounds)
{
	struct vuser_port_stats st0;
	int before = t_failures;

	for (unsigned r = 0; r < rounds && t_failures == before; r++) {
		tx_send(t, 16);
		tx_return(t, 16);
	}
	get_stats(t->p, &st0);
	tx_reclaim(t, &st0, false, "tx traffic");
}

static bool tx_begin(struct fakebe **fb, bool in_order, struct txt *t)
{
	memset(t, 0, sizeof(*t));
	if (open_good(fb, in_order ? "" : ",in_order=0", &t->p, &t->d))
		return true;
	vuser_port_close(t->p);
	fakebe_destroy(*fb);
	return false;
}

static void tx_end(struct fakebe *fb, struct txt *t, const char *what)
{
	struct vuser_port_stats st;

	get_stats(t->p, &st);
	CHECK_EQ(st.tx[0].packets, t->sent);
	CHECK_EQ(st.tx[0].drops, 0);
	close_good(fb, t->p, what);
	fakebe_destroy(fb);
}

/* Used entries that name no frame the port has on the ring. */
static void tx_bad_ids(void)
{
	struct vuser_port_stats st0;
	struct fakebe *fb;
	struct txt t;

	if (!tx_begin(&fb, false, &t))
		return;
	/* rx is left alone here: its ring holds QSIZE buffers throughout. */
	tx_send(&t, 4);
	check_pool(t.p, &t.d, 0, t.done, 0, "4 frames on the tx ring");

	get_stats(t.p, &st0);
	dev_used_put(&t.d.tx, QSIZE, 0);
	tx_reclaim(&t, &st0, true, "used id == queue size");
	get_stats(t.p, &st0);
	dev_used_put(&t.d.tx, (uint32_t)(t.heads[t.nheads - 1] + 10) & (QSIZE - 1), 0);
	tx_reclaim(&t, &st0, true, "used id never posted");

	get_stats(t.p, &st0);
	tx_return(&t, 1);
	tx_reclaim(&t, &st0, false, "the first frame returned");

	/* A second return of the same frame must not free its buffer twice. */
	get_stats(t.p, &st0);
	dev_used_put(&t.d.tx, t.d.tx.avail->ring[0], 0);
	tx_reclaim(&t, &st0, true, "the first frame returned again");

	get_stats(t.p, &st0);
	tx_return(&t, 3);
	tx_reclaim(&t, &st0, false, "the other frames returned");

	tx_traffic(&t, 3 * QSIZE / 16);
	tx_end(fb, &t, "tx bad ids");
}

/*
 * In order, the port reads no used entry for sent frames: used idx alone
 * says how many of the oldest are done. An idx past what is in flight is
 * counted and frees nothing; the device's real returns then line up again.
 */
static void tx_bad_idx_inorder(void)
{
	struct vuser_port_stats st0;
	struct fakebe *fb;
	struct txt t;

	if (!tx_begin(&fb, true, &t))
		return;
	tx_send(&t, 4);
	check_pool(t.p, &t.d, 0, t.done, 0, "4 frames on the tx ring");

	get_stats(t.p, &st0);
	dev_used_batch(&t.d.tx, t.heads[t.nheads - 1], 0, 5);
	tx_reclaim(&t, &st0, true, "used idx 5 past 4 frames in flight");

	get_stats(t.p, &st0);
	dev_used_batch(&t.d.tx, t.heads[0], 0, (uint16_t)-1);
	tx_reclaim(&t, &st0, true, "used idx moved back by one");

	get_stats(t.p, &st0);
	tx_return(&t, 1);
	tx_reclaim(&t, &st0, false, "the first frame returned");

	get_stats(t.p, &st0);
	tx_return(&t, 3);
	tx_reclaim(&t, &st0, false, "the other frames returned");

	tx_traffic(&t, 3 * QSIZE / 16);
	tx_end(fb, &t, "tx bad idx, in order");
}

/*
 * A spurious entry while nothing is in flight, then real work: the real
 * completions must be taken back as soon as they are returned.
 */
static void tx_idle_return(bool in_order)
{
	struct vuser_port_stats st0;
	struct fakebe *fb;
	struct txt t;

	if (!tx_begin(&fb, in_order, &t))
		return;
	tx_send(&t, 4);
	get_stats(t.p, &st0);
	tx_return(&t, 4);
	tx_reclaim(&t, &st0, false, "4 frames returned");

	get_stats(t.p, &st0);
	dev_used_put(&t.d.tx, t.d.tx.avail->ring[3], 0);
	tx_reclaim(&t, &st0, true, "a frame returned again while the ring is idle");
	tx_send(&t, 2);
	get_stats(t.p, &st0);
	tx_return(&t, 2);
	tx_reclaim(&t, &st0, false, "two frames sent after the idle return");

	tx_traffic(&t, 3 * QSIZE / 16);
	tx_end(fb, &t, "tx idle return");
}

/*
 * In-order lets the device return a batch with one used entry, the last
 * chain's (virtio 1.1, 2.6.10.1): however long the batch, the next burst
 * must take all of it back.
 */
static void tx_inorder_batch(void)
{
	struct vuser_port_stats st0;
	struct fakebe *fb;
	struct txt t;

	if (!tx_begin(&fb, true, &t))
		return;
	for (unsigned i = 0; i < 100; i += 10)
		tx_send(&t, 10);
	get_stats(t.p, &st0);
	dev_used_batch(&t.d.tx, t.heads[t.nheads - 1], 0, t.nheads);
	t.done = (uint16_t)(t.done + t.nheads);
	t.nheads = 0;
	tx_reclaim(&t, &st0, false, "one in-order used entry for 100 frames");

	tx_traffic(&t, 3 * QSIZE / 16);
	tx_end(fb, &t, "tx in-order batch");
}

/*
 * Sent frames are taken back when their slots are needed: a full ring the
 * device has emptied takes a new burst whole, with no call in between.
 */
static void tx_full_ring(bool in_order)
{
	struct vuser_port_stats st0;
	struct vuser_buf *b;
	struct fakebe *fb;
	struct txt t;

	if (!tx_begin(&fb, in_order, &t))
		return;
	for (unsigned i = 0; i < QSIZE; i += 16)
		tx_send(&t, 16);
	/* Full, and the device has returned nothing: a further frame stays the program's. */
	b = vuser_buf_alloc(t.p);
	CHECK(b != NULL);
	if (b) {
		CHECK_EQ(vuser_tx_burst(t.p, 0, &b, 1), 0);
		vuser_buf_free(b);
	}
	tx_return(&t, 16);
	tx_send(&t, 16);
	tx_return(&t, t.nheads);
	get_stats(t.p, &st0);
	tx_reclaim(&t, &st0, false, "a full ring, emptied");
	tx_traffic(&t, 3 * QSIZE / 16);
	tx_end(fb, &t, "tx full ring");
}

/*
 * The port leaves a transmit header alone where it says zero already (a
 * device that reads it would otherwise lose its line at every lap), and
 * looks only in a buffer it sent last with the header at the same place.
 * Whatever was left there, the device must find twelve zero bytes: garbage
 * the program wrote into the headroom of a buffer sent before, garbage a
 * device wrote where it may only read, a header moved with data_off, and
 * the header a device wrote into a receive buffer that the program sends on.
 */
static void tx_headers(void)
{
	struct vuser_port_stats st0;
	struct vuser_buf *in[2];
	uint8_t frame[FRAME_LEN], *buf;
	int before = t_failures;
	struct fakebe *fb;
	uint32_t cap;
	uint16_t rh;
	struct txt t;

	if (!tx_begin(&fb, true, &t))
		return;
	/* Every buffer the next sends take has been sent before. */
	tx_traffic(&t, 2);
	t.reused = 0;
	tx_traffic(&t, 2);
	CHECK_EQ(t.reused, 32u);

	t.prog_scribble = true;
	t.reused = 0;
	tx_traffic(&t, 2);
	CHECK_EQ(t.reused, 32u);
	t.prog_scribble = false;

	t.dev_scribble = true;
	tx_traffic(&t, 2);
	t.dev_scribble = false;
	t.reused = 0;
	tx_traffic(&t, 2);
	CHECK_EQ(t.reused, 32u);

	t.shift = 6;
	t.prog_scribble = true;
	t.reused = 0;
	tx_traffic(&t, 1);
	CHECK_EQ(t.reused, 0u);
	t.prog_scribble = false;
	tx_traffic(&t, 1);
	t.shift = 0;

	/*
	 * Frames received, each sent on as it came. The port refills its
	 * receive ring from the buffers just sent, so after the first laps
	 * every receive buffer is one the port sent before.
	 */
	for (unsigned k = 0; k < 2 * QSIZE && t_failures == before; k++) {
		int n;

		make_frame(frame, FRAME_LEN, 4242 + k);
		if (!dev_rx_take(&t.d, &rh, &buf, &cap) || cap < HDR_LEN + FRAME_LEN) {
			CHECK(!"the device finds a receive buffer for each frame");
			break;
		}
		dev_rx_write(buf, 1, frame, FRAME_LEN);
		dev_used_put(&t.d.rx, rh, HDR_LEN + FRAME_LEN);
		t.rx_done++;
		n = vuser_rx_burst(t.p, 0, in, 2);
		CHECK_EQ(n, 1);
		if (n != 1)
			break;
		CHECK_EQ(in[0]->pkt_len, FRAME_LEN);
		/* The device wrote this header: the port must not count on it. */
		CHECK_EQ(in[0]->tx_hdr_off, 0);
		CHECK_EQ(vuser_tx_burst(t.p, 0, in, 1), 1);
		t.sent++;
		tx_take_check(&t, frame);
		tx_return(&t, 1);
		if (k % 16 == 15) {
			get_stats(t.p, &st0);
			tx_reclaim(&t, &st0, false, "received frames sent on");
		}
	}

	tx_end(fb, &t, "tx headers");
}

static void case_tx(void)
{
	int before;

	tx_headers();

	tx_bad_idx_inorder();
	tx_idle_return(true);
	tx_inorder_batch();
	tx_full_ring(true);
	/* Without in-order every used entry stands alone, and is checked alone. */
	before = t_failures;
	tx_bad_ids();
	tx_idle_return(false);
	tx_full_ring(false);
	if (t_failures != before)
		fprintf(stderr, "  (tx failures above: with in_order=0)\n");
}

/* ------------------------------------------------------- backend gone (11) */

static void case_backend_gone(void)
{
	struct vuser_buf *in[8], *b;
	struct vuser_port_info info;
	struct fakebe *fb;
	struct dev d;
	struct vuser_port *p;
	struct pollfd pf;
	long long deadline;
	int before = t_failures, fd;

	if (!open_good(&fb, "", &p, &d)) {
		vuser_port_close(p);
		fakebe_destroy(fb);
		return;
	}
	CHECK_EQ(vuser_port_link(p), 1);
	fd = vuser_port_fd(p);
	CHECK(fd >= 0);
	fakebe_stop(fb);

	pf = (struct pollfd){ .fd = fd, .events = POLLIN };
	CHECK_EQ(poll(&pf, 1, 2000), 1);
	/* The port notices in process(); link() only reads the state. */
	deadline = now_ms() + 2000;
	while (vuser_port_link(p) != 0 && now_ms() < deadline) {
		CHECK(vuser_port_process(p) >= 0);
		sleep_ms(1);
	}
	CHECK_EQ(vuser_port_link(p), 0);
	/* The rings gave every buffer back: the program holds none. */
	CHECK_EQ(vuser_port_info(p, &info), 0);
	CHECK_EQ(info.free_bufs, info.nb_bufs);
	CHECK_EQ(vuser_rx_burst(p, 0, in, 8), 0);
	b = vuser_buf_alloc(p);
	CHECK(b != NULL);
	if (b) {
		CHECK_EQ(vuser_buf_write(b, "hostile", 7), 0);
		/* Refused: the buffer stays the program's. */
		CHECK_EQ(vuser_tx_burst(p, 0, &b, 1), 0);
		vuser_buf_free(b);
	}
	if (t_failures != before)
		fprintf(stderr, "  backend gone after a good handshake\n");
	close_good(fb, p, "backend gone");
	fakebe_destroy(fb);
}

/* ------------------------------------------------------------- kicks (12) */

/* Kicks the port wrote on ring i's eventfd since the last look (0 when none). */
static uint64_t kicks(struct fakebe *fb, unsigned i)
{
	uint64_t n = 0;
	int fd;

	pthread_mutex_lock(&fb->mu);
	fd = fb->vr[i].kickfd;
	pthread_mutex_unlock(&fb->mu);
	/* The port's eventfd is non-blocking, and so is this copy of it. */
	if (fd < 0 || read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* Every ring got a kick fd (with) or the no-fd flag and none (without). */
static void check_kick_fds(struct fakebe *fb, bool with)
{
	for (unsigned i = 0; i < FB_RINGS; i++) {
		bool nofd;
		int fd;

		pthread_mutex_lock(&fb->mu);
		nofd = fb->vr[i].kick_nofd;
		fd = fb->vr[i].kickfd;
		pthread_mutex_unlock(&fb->mu);
		CHECK_EQ(nofd, !with);
		CHECK_EQ(fd >= 0, with);
	}
}

/*
 * With notify=1 (the default) the port kicks when the device's flags ask for
 * it and not when they say NO_NOTIFY. With notify=0 it gives the backend no
 * kick fd, with the no-fd flag on both rings, and frames still reach a device
 * that asks for kicks but polls, as it must then.
 */
static void case_kicks(void)
{
	struct vuser_port_stats st0;
	struct vuser_buf *in[8];
	struct fakebe *fb;
	struct txt t;
	uint16_t head, avail;
	uint8_t *buf;
	uint32_t cap;

	if (!tx_begin(&fb, true, &t))
		return;
	check_kick_fds(fb, true);
	/* The port's rings start with flags 0: every publish may kick. */
	kicks(fb, 1);
	tx_send(&t, 4);
	CHECK(kicks(fb, 1) >= 1);
	__atomic_store_n(&t.d.tx.used->flags, VRING_USED_F_NO_NOTIFY, __ATOMIC_RELEASE);
	tx_send(&t, 4);
	CHECK_EQ(kicks(fb, 1), 0);
	__atomic_store_n(&t.d.tx.used->flags, 0, __ATOMIC_RELEASE);
	tx_send(&t, 4);
	CHECK(kicks(fb, 1) >= 1);
	tx_return(&t, t.nheads);
	get_stats(t.p, &st0);
	tx_reclaim(&t, &st0, false, "notify=1: frames returned");
	tx_end(fb, &t, "kicks, notify=1");

	memset(&t, 0, sizeof(t));
	if (!open_good(&fb, ",notify=0", &t.p, &t.d)) {
		vuser_port_close(t.p);
		fakebe_destroy(fb);
		return;
	}
	check_kick_fds(fb, false);
	/* flags 0 ask for kicks; the port never sends any, and the device polls. */
	tx_traffic(&t, 3 * QSIZE / 16);
	/*
	 * Receive: frames the device delivers come through, and the refill
	 * that follows (a batch at a time) shows in avail idx without a kick.
	 */
	avail = dev_avail_idx(&t.d.rx);
	for (unsigned i = 0; i < QSIZE && dev_avail_idx(&t.d.rx) == avail; i++) {
		uint8_t frame[FRAME_LEN];
		int nb;

		if (!dev_rx_take(&t.d, &head, &buf, &cap) || cap < HDR_LEN + FRAME_LEN) {
			CHECK(!"the driver has an rx buffer posted");
			break;
		}
		make_frame(frame, FRAME_LEN, i);
		dev_rx_write(buf, 1, frame, FRAME_LEN);
		dev_used_put(&t.d.rx, head, HDR_LEN + FRAME_LEN);
		nb = vuser_rx_burst(t.p, 0, in, 8);
		CHECK_EQ(nb, 1);
		if (nb == 1) {
			check_frame(in[0], i, FRAME_LEN);
			vuser_buf_free(in[0]);
		}
	}
	CHECK(dev_avail_idx(&t.d.rx) != avail);
	/* A kick tried all the same would have failed on no fd, and counted. */
	get_stats(t.p, &st0);
	CHECK_EQ(st0.tx[0].errors, 0);
	CHECK_EQ(st0.rx[0].errors, 0);
	tx_end(fb, &t, "kicks, notify=0");
}

/* ------------------------------------------------------------------ main */

struct tcase {
	const char *name;
	void (*fn)(void);
};

static const struct tcase cases[] = {
	{ "1 short reply", case_short_reply },
	{ "2 wrong request id", case_wrong_request },
	{ "3 oversized reply", case_oversized },
	{ "4 bad reply flags", case_bad_flags },
	{ "5 REPLY_ACK failure", case_ack_failure },
	{ "6 backend closes mid-handshake", case_close_midway },
	{ "7 descriptors with a reply", case_fd_in_reply },
	{ "8 no VIRTIO_F_VERSION_1", case_no_version1 },
	{ "9 hostile rx used ring", case_rx },
	{ "10 hostile tx used ring", case_tx },
	{ "11 backend gone", case_backend_gone },
	{ "12 kicks, and notify=0", case_kicks },
};

/*
 * The rounds after the first repeat its checks: their messages are shown only
 * when a round fails differently from the first (a flaky or leaking case),
 * and only for the first such round, rather than 200 copies of the same.
 */
static int run_round_quietly(int first_pass_failures, bool *printed)
{
	int before = t_failures, n;
	char *text = NULL;
	size_t len = 0;
	FILE *saved = stderr, *ms = open_memstream(&text, &len);

	if (ms)
		stderr = ms;
	for (size_t i = 0; i < NELEM(cases); i++)
		cases[i].fn();
	stderr = saved;
	if (ms)
		fclose(ms);
	n = t_failures - before;
	if (n != first_pass_failures && !*printed && text) {
		fprintf(stderr, "a later round failed %d check(s), the first pass %d:\n%s", n,
			first_pass_failures, text);
		*printed = true;
	}
	free(text);
	return n;
}

int main(void)
{
	bool printed = false;
	int fds0, fds1, first, loop_failures = 0, failed_rounds = 0;
	long rss0, rss1;

	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	setvbuf(stdout, NULL, _IOLBF, 0);

	fds0 = t_count_fds();
	for (size_t i = 0; i < NELEM(cases); i++) {
		int before = t_failures;
		long long t0 = now_ms();

		cases[i].fn();
		printf("%-34s %s (%lld ms)\n", cases[i].name, t_failures == before ? "ok" : "FAIL",
		       now_ms() - t0);
	}

	first = t_failures;
	/* The first pass was the warm-up: pools, thread stacks and stdio are in place. */
	rss0 = t_rss_kib();
	for (int r = 1; r < LOOP_ROUNDS; r++) {
		int n = run_round_quietly(first, &printed);

		loop_failures += n;
		failed_rounds += n != 0;
	}
	fds1 = t_count_fds();
	rss1 = t_rss_kib();
	printf("%d more rounds of cases 1-%zu: %d failed check(s) in %d round(s); "
	       "fds %d -> %d, RSS %ld -> %ld KiB\n",
	       LOOP_ROUNDS - 1, NELEM(cases), loop_failures, failed_rounds, fds0, fds1, rss0, rss1);
	CHECK_EQ(fds1, fds0);
	CHECK(rss0 > 0 && rss1 > 0);
#if defined(__SANITIZE_ADDRESS__)
	/*
	 * Under ASan the resident set also holds the sanitizer's shadow of every
	 * arena ever mapped and a record of every thread ever started, so it
	 * grows with the round count whatever the library does; LeakSanitizer
	 * checks the heap at exit instead.
	 */
	printf("RSS not compared under AddressSanitizer\n");
#else
	CHECK(rss1 - rss0 <= RSS_SLACK_KIB);
#endif

	{
		int before = t_failures;
		long long t0 = now_ms();

		case_no_reply();
		printf("%-34s %s (%lld ms)\n", "12 no reply", t_failures == before ? "ok" : "FAIL",
		       now_ms() - t0);
	}
	return t_result();
}
