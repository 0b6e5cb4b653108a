/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost device side against a correct and thorough vhost-user frontend:
 * every request a virtio-net frontend sends, the memory it can describe
 * (SET_MEM_TABLE and CONFIGURE_MEM_SLOTS), every descriptor layout it may
 * use in both directions, notifications and multiqueue. A hostile frontend
 * is tests/test_hostile_frontend.c's business; this one plays by the rules
 * (QEMU's docs/interop/vhost-user.rst, virtio 1.1) and expects the device to
 * do the same.
 *
 * The vhost runs on a thread of its own that loops vuser_vhost_process() and
 * pulls frames from every queue (rx_burst) into a store; every other call on
 * the vhost (tx_burst, explicit bursts, info, stats) is handed to that thread
 * as a job, so the vhost's control and datapath calls all come from one
 * thread as vhost.h asks. The frontend is the main thread: it owns the
 * socket, its memfd-backed "guest memory" and the driver half of the rings.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
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

#include "vuser/vhost.h"
#include "vuser/uapi/vhost_user.h"
#include "vuser/uapi/virtio_net.h"
#include "vuser/uapi/virtio_ring.h"
#include "testlib.h"

#define BIT(n) (1ull << (n))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define QSIZE 256u
#define QMASK (QSIZE - 1)
#define HDR 12u                 /* struct virtio_net_hdr_mrg_rxbuf */
#define SEG_ROOM VUSER_BUF_DATAROOM
#define MAXRINGS 8
#define MAXREG 132
#define MAXSEG 256
#define RXSEGS 8
#define RXSTORE 1024
#define WAIT_MS 3000
#define QUIET_MS 100            /* how long "nothing happens" is watched */
#define MAXFRAME 65535u

#define F_PF BIT(VHOST_USER_F_PROTOCOL_FEATURES)
#define F_V1 BIT(VIRTIO_F_VERSION_1)
#define F_MRG BIT(VIRTIO_NET_F_MRG_RXBUF)
#define F_INORDER BIT(VIRTIO_F_IN_ORDER)
#define F_IND BIT(VIRTIO_RING_F_INDIRECT_DESC)
#define F_EVIDX BIT(VIRTIO_RING_F_EVENT_IDX)
#define F_PACKED BIT(VIRTIO_F_RING_PACKED)
#define F_MQ BIT(VIRTIO_NET_F_MQ)
#define F_CSUM BIT(VIRTIO_NET_F_CSUM)
#define F_GCSUM BIT(VIRTIO_NET_F_GUEST_CSUM)

#define P_MQ BIT(VHOST_USER_PROTOCOL_F_MQ)
#define P_ACK BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK)
#define P_CONFIG BIT(VHOST_USER_PROTOCOL_F_CONFIG)
#define P_RESET BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE)
#define P_SLOTS BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
#define P_STATUS BIT(VHOST_USER_PROTOCOL_F_STATUS)
#define P_ALL (P_MQ | P_ACK | P_CONFIG | P_RESET | P_SLOTS | P_STATUS)

#define ST_PRE (VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK)
#define ST_OK (ST_PRE | VIRTIO_CONFIG_S_DRIVER_OK)

static const char *g_case = "";
static char g_dir[64];
static char g_sock[VUSER_PATH_MAX];

/* A check with context: what was expected, and the values that broke it. */
#define EXPECT(cond, ...)                                                                \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "%s:%d: [%s] check failed: %s: ", __FILE__, __LINE__, \
				g_case, #cond);                                          \
			fprintf(stderr, __VA_ARGS__);                                    \
			fputc('\n', stderr);                                             \
			t_failures++;                                                    \
		}                                                                        \
	} while (0)

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

static struct timespec deadline(int ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Frame bytes: a hash of the frame's seed and the byte's offset. */
static uint8_t pat(unsigned seed, uint32_t i)
{
	uint32_t x = seed * 0x9e3779b1u + i * 0x85ebca6bu;

	x ^= x >> 13;
	return (uint8_t)(x ^ (x >> 7));
}

static void fill_frame(uint8_t *f, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		f[i] = pat(seed, i);
}

/* Offset of the first byte that differs from the pattern, or -1. */
static long frame_diff(const uint8_t *f, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		if (f[i] != pat(seed, i))
			return (long)i;
	return -1;
}

/* ================================================================ the vhost */

struct vh {
	struct vuser_vhost *v;
	unsigned queues;
	pthread_t thr;
	int stop;                 /* atomic */
	int auto_rx;              /* atomic: pull frames from every queue each round */
	int wakefd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*job)(struct vh *, void *);
	void *job_arg;
	bool job_done;
	struct vuser_buf *rx[VUSER_MAX_QUEUE_PAIRS][RXSTORE];
	unsigned nrx[VUSER_MAX_QUEUE_PAIRS];
};

static void vh_pull(struct vh *h)
{
	for (unsigned q = 0; q < h->queues; q++) {
		struct vuser_buf *b[32];
		unsigned room;
		int n;

		pthread_mutex_lock(&h->mu);
		room = RXSTORE - h->nrx[q];
		pthread_mutex_unlock(&h->mu);
		if (room > NELEM(b))
			room = NELEM(b);
		if (!room)
			continue;
		n = vuser_vhost_rx_burst(h->v, q, b, room);
		if (n <= 0)
			continue;
		pthread_mutex_lock(&h->mu);
		memcpy(&h->rx[q][h->nrx[q]], b, (size_t)n * sizeof(*b));
		h->nrx[q] += (unsigned)n;
		pthread_cond_broadcast(&h->cv);
		pthread_mutex_unlock(&h->mu);
	}
}

static void *vh_thread(void *arg)
{
	struct vh *h = arg;
	struct pollfd pfd[2] = { { .fd = vuser_vhost_fd(h->v), .events = POLLIN },
				 { .fd = h->wakefd, .events = POLLIN } };

	while (!__atomic_load_n(&h->stop, __ATOMIC_ACQUIRE)) {
		uint64_t junk;

		vuser_vhost_process(h->v);
		if (__atomic_load_n(&h->auto_rx, __ATOMIC_ACQUIRE))
			vh_pull(h);
		pthread_mutex_lock(&h->mu);
		if (h->job) {
			h->job(h, h->job_arg);
			h->job = NULL;
			h->job_done = true;
			pthread_cond_broadcast(&h->cv);
		}
		pthread_mutex_unlock(&h->mu);
		/* Sleep until a message, a job, or the next polling round (1 ms). */
		if (poll(pfd, 2, 1) > 0 && (pfd[1].revents & POLLIN))
			if (read(h->wakefd, &junk, sizeof(junk)) < 0)
				junk = 0;
	}
	return NULL;
}

/* Run fn on the vhost's thread and wait for it (bounded: a hang ends the test). */
static void vh_call(struct vh *h, void (*fn)(struct vh *, void *), void *arg)
{
	struct timespec dl = deadline(5000);
	uint64_t one = 1;
	bool done;

	pthread_mutex_lock(&h->mu);
	h->job = fn;
	h->job_arg = arg;
	h->job_done = false;
	pthread_mutex_unlock(&h->mu);
	if (write(h->wakefd, &one, sizeof(one)) < 0)
		one = 0;
	pthread_mutex_lock(&h->mu);
	while (!h->job_done)
		if (pthread_cond_timedwait(&h->cv, &h->mu, &dl) == ETIMEDOUT)
			break;
	done = h->job_done;
	pthread_mutex_unlock(&h->mu);
	if (!done) {
		fprintf(stderr, "[%s] the vhost thread did not come back within 5 s: giving up\n",
			g_case);
		fflush(stderr);
		_exit(1);
	}
}

static void job_info(struct vh *h, void *arg)
{
	vuser_vhost_info(h->v, arg);
}

static void job_stats(struct vh *h, void *arg)
{
	vuser_vhost_stats(h->v, arg);
}

struct burst_job {
	unsigned q;
	struct vuser_buf **b;
	unsigned n;
	bool tx;
	int ret;
};

static void job_burst(struct vh *h, void *arg)
{
	struct burst_job *j = arg;

	j->ret = j->tx ? vuser_vhost_tx_burst(h->v, j->q, j->b, j->n) :
			 vuser_vhost_rx_burst(h->v, j->q, j->b, j->n);
}

static struct vuser_vhost_info vh_info(struct vh *h)
{
	struct vuser_vhost_info info;

	vh_call(h, job_info, &info);
	return info;
}

static struct vuser_port_stats vh_stats(struct vh *h)
{
	struct vuser_port_stats st;

	vh_call(h, job_stats, &st);
	return st;
}

static int vh_tx(struct vh *h, unsigned q, struct vuser_buf **b, unsigned n)
{
	struct burst_job j = { q, b, n, true, 0 };

	vh_call(h, job_burst, &j);
	return j.ret;
}

static int vh_rx(struct vh *h, unsigned q, struct vuser_buf **b, unsigned n)
{
	struct burst_job j = { q, b, n, false, 0 };

	vh_call(h, job_burst, &j);
	return j.ret;
}

/* Take up to n frames the vhost pulled from queue q, waiting up to timeout_ms for n. */
static unsigned vh_take(struct vh *h, unsigned q, struct vuser_buf **out, unsigned n, int timeout_ms)
{
	struct timespec dl = deadline(timeout_ms);
	unsigned k;

	pthread_mutex_lock(&h->mu);
	while (h->nrx[q] < n)
		if (pthread_cond_timedwait(&h->cv, &h->mu, &dl) == ETIMEDOUT)
			break;
	k = h->nrx[q] < n ? h->nrx[q] : n;
	memcpy(out, h->rx[q], k * sizeof(*out));
	memmove(h->rx[q], h->rx[q] + k, (h->nrx[q] - k) * sizeof(*out));
	h->nrx[q] -= k;
	pthread_mutex_unlock(&h->mu);
	return k;
}

/* 1 when nothing comes out of queue q for QUIET_MS (what does come is freed). */
static bool vh_quiet(struct vh *h, unsigned q)
{
	struct vuser_buf *b;

	if (vh_take(h, q, &b, 1, QUIET_MS) == 0)
		return true;
	vuser_buf_free(b);
	return false;
}

/* Wait until info.connected == want. */
static bool vh_wait_connected(struct vh *h, bool want, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	for (;;) {
		if (vh_info(h).connected == want)
			return true;
		if (now_ms() > end)
			return false;
		sleep_ms(2);
	}
}

static struct vh *vh_start(const char *extra)
{
	char devargs[256];
	pthread_condattr_t ca;
	struct vuser_vhost_info info;
	struct vh *h = calloc(1, sizeof(*h));
	int err;

	if (!h)
		return NULL;
	snprintf(devargs, sizeof(devargs), "path=%s%s%s", g_sock, extra && *extra ? "," : "",
		 extra ? extra : "");
	err = vuser_vhost_open(devargs, &h->v);
	EXPECT(err == 0, "vuser_vhost_open(%s) = %d: %s", devargs, err, vuser_last_error());
	if (err) {
		free(h);
		return NULL;
	}
	vuser_vhost_info(h->v, &info);
	h->queues = info.queues;
	h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&h->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->cv, &ca);
	pthread_condattr_destroy(&ca);
	h->auto_rx = 1;
	if (pthread_create(&h->thr, NULL, vh_thread, h)) {
		EXPECT(0, "pthread_create failed");
		vuser_vhost_close(h->v);
		close(h->wakefd);
		free(h);
		return NULL;
	}
	return h;
}

static void vh_stop(struct vh *h)
{
	uint64_t one = 1;

	if (!h)
		return;
	__atomic_store_n(&h->stop, 1, __ATOMIC_RELEASE);
	if (write(h->wakefd, &one, sizeof(one)) < 0)
		one = 0;
	pthread_join(h->thr, NULL);
	for (unsigned q = 0; q < h->queues; q++)
		vuser_buf_free_bulk(h->rx[q], h->nrx[q]);
	vuser_vhost_close(h->v);
	close(h->wakefd);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
	free(h);
}

/* A frame from the vhost's pool holding the pattern of seed. */
static struct vuser_buf *mkframe(struct vh *h, uint32_t len, unsigned seed,
				 const struct vuser_net_hdr *vnet)
{
	struct vuser_buf *b = NULL;
	uint8_t *tmp = malloc(len ? len : 1);

	if (!tmp || vuser_vhost_buf_alloc_bulk(h->v, &b, 1)) {
		EXPECT(0, "no buffer from the vhost pool");
		free(tmp);
		return NULL;
	}
	fill_frame(tmp, len, seed);
	if (vuser_buf_write(b, tmp, len)) {
		EXPECT(0, "vuser_buf_write(%u) failed", len);
		vuser_buf_free(b);
		b = NULL;
	} else if (vnet) {
		b->vnet = *vnet;
	}
	free(tmp);
	return b;
}

/* ============================================================= the frontend */

struct freg {
	int fd;
	bool own;                 /* fd and mapping belong to this region (not a slice) */
	uint8_t *map;
	size_t map_len;
	uint8_t *host;            /* the region's first byte here; also its QVA */
	uint64_t gpa, size, mmap_offset;
	/* Bump allocation of buffers: [0] frames to the device, [1] receive buffers. */
	uint64_t off[2], lo[2], hi[2];
	bool touched[2];          /* a buffer was placed here since the last clear */
};

enum { A_TX = 0, A_RX = 1 };

struct rxseg {
	uint8_t *p;
	uint32_t len;
};

struct fvq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;       /* next avail index */
	uint16_t last_used;
	bool in_order;
	uint16_t next;            /* in order: the next descriptor */
	unsigned nfree;
	uint16_t stack[QSIZE];    /* out of order: free descriptors */
	uint16_t chain[QSIZE];    /* descriptors in the chain headed here */
	struct rxseg seg[QSIZE][RXSEGS]; /* receive buffers: where the device writes */
	uint8_t nseg[QSIZE];
	int kickfd, callfd;
	bool broken;
	uint16_t batch_left;      /* in order: chains of a batch entry still to hand out */
	uint32_t batch_len;       /* the batch entry's len, for its last chain */
};

struct fe {
	int sock;
	bool dead;
	uint64_t features, protocol;
	bool ack;                 /* REPLY_ACK negotiated: every message asks for one */
	struct freg reg[MAXREG];
	unsigned nreg;
	unsigned buf_first, buf_count, cursor[2];
	struct fvq vq[MAXRINGS];
	unsigned nrings;
};

static const char *req_name(uint32_t r)
{
	static const char *const n[VHOST_USER_MAX] = {
		[VHOST_USER_GET_FEATURES] = "GET_FEATURES",
		[VHOST_USER_SET_FEATURES] = "SET_FEATURES",
		[VHOST_USER_SET_OWNER] = "SET_OWNER",
		[VHOST_USER_SET_MEM_TABLE] = "SET_MEM_TABLE",
		[VHOST_USER_SET_LOG_BASE] = "SET_LOG_BASE",
		[VHOST_USER_SET_VRING_NUM] = "SET_VRING_NUM",
		[VHOST_USER_SET_VRING_ADDR] = "SET_VRING_ADDR",
		[VHOST_USER_SET_VRING_BASE] = "SET_VRING_BASE",
		[VHOST_USER_GET_VRING_BASE] = "GET_VRING_BASE",
		[VHOST_USER_SET_VRING_KICK] = "SET_VRING_KICK",
		[VHOST_USER_SET_VRING_CALL] = "SET_VRING_CALL",
		[VHOST_USER_SET_VRING_ERR] = "SET_VRING_ERR",
		[VHOST_USER_GET_PROTOCOL_FEATURES] = "GET_PROTOCOL_FEATURES",
		[VHOST_USER_SET_PROTOCOL_FEATURES] = "SET_PROTOCOL_FEATURES",
		[VHOST_USER_GET_QUEUE_NUM] = "GET_QUEUE_NUM",
		[VHOST_USER_SET_VRING_ENABLE] = "SET_VRING_ENABLE",
		[VHOST_USER_SEND_RARP] = "SEND_RARP",
		[VHOST_USER_NET_SET_MTU] = "NET_SET_MTU",
		[VHOST_USER_SET_VRING_ENDIAN] = "SET_VRING_ENDIAN",
		[VHOST_USER_GET_CONFIG] = "GET_CONFIG",
		[VHOST_USER_SET_CONFIG] = "SET_CONFIG",
		[VHOST_USER_RESET_DEVICE] = "RESET_DEVICE",
		[VHOST_USER_GET_MAX_MEM_SLOTS] = "GET_MAX_MEM_SLOTS",
		[VHOST_USER_ADD_MEM_REG] = "ADD_MEM_REG",
		[VHOST_USER_REM_MEM_REG] = "REM_MEM_REG",
		[VHOST_USER_SET_STATUS] = "SET_STATUS",
		[VHOST_USER_GET_STATUS] = "GET_STATUS",
	};

	return r < VHOST_USER_MAX && n[r] ? n[r] : "?";
}

static int sock_connect(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(g_sock) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, g_sock, strlen(g_sock) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Receive exactly len bytes within timeout_ms. 0 done, 1 the peer closed,
 * -1 timed out or failed. Descriptors that come along are closed and counted.
 */
static int recv_exact(int fd, void *buf, size_t len, int timeout_ms, int *nfds)
{
	long long end = now_ms() + timeout_ms;
	uint8_t *p = buf;

	while (len) {
		union {
			char b[CMSG_SPACE(sizeof(int) * 8)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = end - now_ms();
		ssize_t n;
		int r;

		if (left <= 0)
			return -1;
		r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? 1 : -1;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int in;

				memcpy(&in, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(in);
				(*nfds)++;
			}
		}
		if (n == 0)
			return 1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 1 when the peer closed fd within timeout_ms (EOF), else 0. */
static int sees_eof(int fd, int timeout_ms)
{
	char c;
	int nfds = 0;

	return recv_exact(fd, &c, 1, timeout_ms, &nfds) == 1;
}

static int fe_send(struct fe *fe, uint32_t req, uint32_t flags, const void *pl, uint32_t size,
		   const int *fds, int nfds)
{
	uint8_t wire[VHOST_USER_HDR_SIZE + sizeof(union vhost_user_payload)];
	struct vhost_user_hdr hd = { req, VHOST_USER_VERSION | flags, size };
	union {
		char b[CMSG_SPACE(sizeof(int) * VHOST_MEMORY_BASELINE_NREGIONS)];
		struct cmsghdr align;
	} ctl;
	size_t len = VHOST_USER_HDR_SIZE + size, done = 0;

	if (fe->sock < 0 || fe->dead || size > sizeof(union vhost_user_payload))
		return -1;
	memcpy(wire, &hd, VHOST_USER_HDR_SIZE);
	if (size)
		memcpy(wire + VHOST_USER_HDR_SIZE, pl, size);
	while (done < len) {
		struct iovec iov = { .iov_base = wire + done, .iov_len = len - done };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
		ssize_t n;

		if (nfds && !done) {
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
		n = sendmsg(fe->sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fe->dead = true;
			return -1;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * Read the reply to req: checks its header, copies up to want bytes of payload
 * into pl. Returns the payload size, or -1 (timed out, closed, or wrong).
 */
static int fe_reply(struct fe *fe, uint32_t req, void *pl, uint32_t want, int timeout_ms)
{
	union vhost_user_payload tmp;
	struct vhost_user_hdr hd;
	int nfds = 0, r;

	if (fe->sock < 0 || fe->dead)
		return -1;
	r = recv_exact(fe->sock, &hd, VHOST_USER_HDR_SIZE, timeout_ms, &nfds);
	if (r) {
		if (r == 1)
			fe->dead = true;
		return -1;
	}
	EXPECT(hd.request == req, "reply to %s came as request %u", req_name(req), hd.request);
	EXPECT(hd.flags == (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK),
	       "reply to %s has flags 0x%x", req_name(req), hd.flags);
	EXPECT(hd.size <= sizeof(tmp), "reply to %s of %u bytes", req_name(req), hd.size);
	if (hd.size > sizeof(tmp))
		return -1;
	if (hd.size && recv_exact(fe->sock, &tmp, hd.size, timeout_ms, &nfds)) {
		EXPECT(0, "reply to %s: payload of %u bytes did not come", req_name(req), hd.size);
		return -1;
	}
	EXPECT(nfds == 0, "reply to %s carried %d fds", req_name(req), nfds);
	if (hd.request != req)
		return -1;
	memcpy(pl, &tmp, hd.size < want ? hd.size : want);
	return (int)hd.size;
}

/*
 * A request without a reply of its own. With REPLY_ACK it asks for the ack:
 * returns 0 (acked 0, or sent without ack), 1 (acked non-zero), -1 (no answer).
 */
static int fe_msg(struct fe *fe, uint32_t req, const void *pl, uint32_t size, const int *fds,
		  int nfds)
{
	uint64_t st = ~0ull;

	if (fe_send(fe, req, fe->ack ? VHOST_USER_NEED_REPLY_MASK : 0, pl, size, fds, nfds))
		return -1;
	if (!fe->ack)
		return 0;
	if (fe_reply(fe, req, &st, sizeof(st), WAIT_MS) != (int)sizeof(st))
		return -1;
	return st ? 1 : 0;
}

/* fe_msg that must succeed. */
static bool fe_do(struct fe *fe, uint32_t req, const void *pl, uint32_t size, const int *fds,
		  int nfds)
{
	int r = fe_msg(fe, req, pl, size, fds, nfds);

	EXPECT(r == 0, "%s answered %d (0 ok, 1 refused, -1 no answer)", req_name(req), r);
	return r == 0;
}

static bool fe_do_u64(struct fe *fe, uint32_t req, uint64_t u)
{
	return fe_do(fe, req, &u, sizeof(u), NULL, 0);
}

static bool fe_do_state(struct fe *fe, uint32_t req, uint32_t index, uint32_t num)
{
	struct vhost_vring_state st = { index, num };

	return fe_do(fe, req, &st, sizeof(st), NULL, 0);
}

static bool fe_get_u64(struct fe *fe, uint32_t req, uint64_t *out)
{
	int r;

	*out = 0;
	if (fe_send(fe, req, 0, NULL, 0, NULL, 0)) {
		EXPECT(0, "%s could not be sent", req_name(req));
		return false;
	}
	r = fe_reply(fe, req, out, sizeof(*out), WAIT_MS);
	EXPECT(r == (int)sizeof(*out), "%s answered with %d bytes", req_name(req), r);
	return r == (int)sizeof(*out);
}

/* Everything sent so far has been handled once this returns. */
static bool fe_sync(struct fe *fe)
{
	uint64_t f;

	return fe_get_u64(fe, VHOST_USER_GET_FEATURES, &f);
}

static bool fe_vring_fd(struct fe *fe, uint32_t req, unsigned index, int fd)
{
	uint64_t u = index | (fd < 0 ? VHOST_USER_VRING_NOFD_MASK : 0);

	return fe_do(fe, req, &u, sizeof(u), fd < 0 ? NULL : &fd, fd < 0 ? 0 : 1);
}

static struct fe *fe_new(void)
{
	struct fe *fe = calloc(1, sizeof(*fe));

	if (!fe)
		return NULL;
	fe->sock = -1;
	for (unsigned i = 0; i < MAXRINGS; i++)
		fe->vq[i].kickfd = fe->vq[i].callfd = -1;
	return fe;
}

static bool fe_connect(struct fe *fe)
{
	fe->sock = sock_connect();
	fe->dead = false;
	EXPECT(fe->sock >= 0, "cannot connect to %s", g_sock);
	return fe->sock >= 0;
}

/* Split the region's room after `from` into the two buffer halves. */
static void reg_bufs_from(struct freg *r, uint64_t from)
{
	uint64_t half = (r->size - from) / 2;

	r->lo[A_TX] = r->off[A_TX] = from;
	r->hi[A_TX] = from + half;
	r->lo[A_RX] = r->off[A_RX] = from + half;
	r->hi[A_RX] = r->size;
}

/* A region of its own memfd at guest address gpa. */
static bool fe_region(struct fe *fe, uint64_t gpa, size_t size)
{
	struct freg *r = &fe->reg[fe->nreg];
	int fd;
	void *map;

	if (fe->nreg >= MAXREG)
		return false;
	fd = memfd_create("vproto-guest", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
		EXPECT(0, "memfd of %zu bytes: %s", size, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		EXPECT(0, "mmap of %zu bytes: %s", size, strerror(errno));
		close(fd);
		return false;
	}
	*r = (struct freg){ .fd = fd, .own = true, .map = map, .map_len = size, .host = map,
			    .gpa = gpa, .size = size };
	reg_bufs_from(r, 0);
	fe->nreg++;
	return true;
}

/* A region that is a slice of region `of`'s file, at offset off (QEMU's RAM blocks). */
static bool fe_slice(struct fe *fe, unsigned of, uint64_t gpa, uint64_t off, uint64_t size)
{
	struct freg *r = &fe->reg[fe->nreg];
	const struct freg *o = &fe->reg[of];

	if (fe->nreg >= MAXREG || off + size > o->map_len)
		return false;
	*r = (struct freg){ .fd = o->fd, .own = false, .map = o->map, .map_len = o->map_len,
			    .host = o->map + off, .gpa = gpa, .size = size, .mmap_offset = off };
	reg_bufs_from(r, 0);
	fe->nreg++;
	return true;
}

static struct vhost_user_memory_region reg_wire(const struct freg *r)
{
	return (struct vhost_user_memory_region){ r->gpa, r->size, (uint64_t)(uintptr_t)r->host,
						  r->mmap_offset };
}

static void fe_drop_memory(struct fe *fe)
{
	for (unsigned i = 0; i < fe->nreg; i++) {
		struct freg *r = &fe->reg[i];

		if (r->own) {
			munmap(r->map, r->map_len);
			close(r->fd);
		}
	}
	fe->nreg = 0;
	for (unsigned i = 0; i < MAXRINGS; i++) {
		if (fe->vq[i].kickfd >= 0)
			close(fe->vq[i].kickfd);
		if (fe->vq[i].callfd >= 0)
			close(fe->vq[i].callfd);
		memset(&fe->vq[i], 0, sizeof(fe->vq[i]));
		fe->vq[i].kickfd = fe->vq[i].callfd = -1;
	}
	fe->nrings = 0;
}

static void fe_free(struct fe *fe)
{
	if (!fe)
		return;
	if (fe->sock >= 0)
		close(fe->sock);
	fe_drop_memory(fe);
	free(fe);
}

/* ------------------------------------------------------------ allocation */

static uint8_t *reg_alloc(struct freg *r, int a, uint32_t len, uint32_t align, uint64_t *gpa)
{
	uint64_t o = (r->off[a] + align - 1) & ~(uint64_t)(align - 1);

	if (o + len > r->hi[a])
		return NULL;
	r->off[a] = o + len;
	*gpa = r->gpa + o;
	return r->host + o;
}

/* Buffer memory, each allocation in the next buffer region round-robin. */
static uint8_t *fe_alloc(struct fe *fe, int a, uint32_t len, uint32_t align, uint64_t *gpa)
{
	for (unsigned i = 0; i < fe->buf_count; i++) {
		unsigned k = (fe->cursor[a] + i) % fe->buf_count;
		uint8_t *p = reg_alloc(&fe->reg[fe->buf_first + k], a, len, align, gpa);

		if (p) {
			fe->cursor[a] = (k + 1) % fe->buf_count;
			fe->reg[fe->buf_first + k].touched[a] = true;
			return p;
		}
	}
	return NULL;
}

struct allocsave {
	uint64_t off[MAXREG];
	unsigned cursor;
};

static void alloc_save(const struct fe *fe, int a, struct allocsave *s)
{
	for (unsigned i = 0; i < fe->nreg; i++)
		s->off[i] = fe->reg[i].off[a];
	s->cursor = fe->cursor[a];
}

static void alloc_restore(struct fe *fe, int a, const struct allocsave *s)
{
	for (unsigned i = 0; i < fe->nreg; i++)
		fe->reg[i].off[a] = s->off[i];
	fe->cursor[a] = s->cursor;
}

/*
 * Start that direction's buffer memory over, once none of its rings (odd
 * rings carry frames to the device, even ones receive buffers) holds a
 * buffer the device has not returned; otherwise keep going where it is.
 */
static void fe_reset_bufs(struct fe *fe, int a)
{
	for (unsigned i = a == A_TX ? 1 : 0; i < fe->nrings; i += 2)
		if (fe->vq[i].avail_idx != fe->vq[i].last_used)
			return;
	for (unsigned i = 0; i < fe->nreg; i++)
		fe->reg[i].off[a] = fe->reg[i].lo[a];
	fe->cursor[a] = 0;
}

/* --------------------------------------------------------------- rings */

static void fvq_reset(struct fvq *vq, uint16_t base, bool in_order)
{
	memset(vq->desc, 0, QSIZE * sizeof(struct vring_desc));
	memset(vq->avail, 0, 6 + 2 * QSIZE);
	memset(vq->used, 0, 6 + 8 * QSIZE);
	vq->avail->idx = base;
	vq->used->idx = base;
	vq->avail_idx = vq->last_used = base;
	vq->in_order = in_order;
	vq->next = 0;
	vq->nfree = QSIZE;
	vq->broken = false;
	/* Out of order: hand descriptors out in a scrambled order (97 is odd: a permutation). */
	for (unsigned i = 0; i < QSIZE; i++)
		vq->stack[i] = (uint16_t)((i * 97 + 13) & QMASK);
}

/*
 * Place nrings rings in region ring_reg (before its buffers) and use regions
 * buf_first.. buf_first + buf_count - 1 for packet buffers.
 */
static bool fe_layout(struct fe *fe, unsigned ring_reg, unsigned nrings, unsigned buf_first,
		      unsigned buf_count)
{
	struct freg *r = &fe->reg[ring_reg];
	uint64_t off = 0;

	for (unsigned i = 0; i < nrings; i++) {
		struct fvq *vq = &fe->vq[i];

		off = (off + 15) & ~15ull;
		vq->desc = (void *)(r->host + off);
		off += QSIZE * sizeof(struct vring_desc);
		vq->avail = (void *)(r->host + off);
		off += 6 + 2 * QSIZE;
		off = (off + 3) & ~3ull;
		vq->used = (void *)(r->host + off);
		off += 6 + 8 * QSIZE;
	}
	if (off > r->size) {
		EXPECT(0, "%u rings do not fit in %llu bytes", nrings, (unsigned long long)r->size);
		return false;
	}
	reg_bufs_from(r, (off + 4095) & ~4095ull);
	fe->nrings = nrings;
	fe->buf_first = buf_first;
	fe->buf_count = buf_count;
	fe->cursor[0] = fe->cursor[1] = 0;
	return true;
}

static uint16_t fvq_get(struct fvq *vq)
{
	uint16_t d;

	vq->nfree--;
	if (vq->in_order) {
		d = vq->next;
		vq->next = (uint16_t)((vq->next + 1) & QMASK);
		return d;
	}
	return vq->stack[vq->nfree];
}

static void fvq_free_chain(struct fvq *vq, uint16_t head)
{
	unsigned n = vq->chain[head];
	uint16_t d = head;

	if (vq->in_order) {
		vq->nfree += n;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		uint16_t nx = vq->desc[d].next;

		vq->stack[vq->nfree++] = d;
		d = nx;
	}
}

static void fvq_make_avail(struct fvq *vq, uint16_t head)
{
	__atomic_store_n(&vq->avail->ring[vq->avail_idx & QMASK], head, __ATOMIC_RELAXED);
	vq->avail_idx++;
}

/* A direct chain of n buffers. Returns the head, or -1 when descriptors are short. */
static int fvq_add(struct fvq *vq, const uint64_t *gpa, const uint32_t *len, unsigned n,
		   uint16_t flags)
{
	uint16_t head = 0, prev = 0;

	if (!n || n > vq->nfree)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = fvq_get(vq);

		vq->desc[d] = (struct vring_desc){ gpa[i], len[i], flags, 0 };
		if (i) {
			vq->desc[prev].flags |= VRING_DESC_F_NEXT;
			vq->desc[prev].next = d;
		} else {
			head = d;
		}
		prev = d;
	}
	vq->chain[head] = (uint16_t)n;
	fvq_make_avail(vq, head);
	return head;
}

/*
 * One descriptor pointing at an indirect table of n entries. Entry 0 comes
 * first (2.6.5.3.1); out of order, the others sit in the table backwards.
 */
static int fvq_add_indirect(struct fe *fe, int a, struct fvq *vq, const uint64_t *gpa,
			    const uint32_t *len, unsigned n, uint16_t flags)
{
	struct vring_desc *t;
	uint64_t tgpa;
	uint16_t d;

	if (!n || !vq->nfree)
		return -1;
	t = (void *)fe_alloc(fe, a, n * (uint32_t)sizeof(*t), 16, &tgpa);
	if (!t)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		unsigned pos = vq->in_order || !i ? i : n - i;
		unsigned nxt = vq->in_order ? i + 1 : n - (i + 1);

		t[pos] = (struct vring_desc){ gpa[i], len[i], flags, 0 };
		if (i + 1 < n) {
			t[pos].flags |= VRING_DESC_F_NEXT;
			t[pos].next = (uint16_t)nxt;
		}
	}
	d = fvq_get(vq);
	vq->desc[d] = (struct vring_desc){ tgpa, n * (uint32_t)sizeof(*t), VRING_DESC_F_INDIRECT, 0 };
	vq->chain[d] = 1;
	fvq_make_avail(vq, d);
	return d;
}

static void fvq_publish(struct fvq *vq)
{
	uint64_t one = 1;

	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* The device polls and says so; a driver honours VRING_USED_F_NO_NOTIFY. */
	if (vq->kickfd >= 0 && !(__atomic_load_n(&vq->used->flags, __ATOMIC_RELAXED) &
				 VRING_USED_F_NO_NOTIFY))
		if (write(vq->kickfd, &one, sizeof(one)) < 0)
			one = 0;
}

static uint16_t fvq_used_idx(const struct fvq *vq)
{
	return __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
}

/* The next used entry, if any: 1 with id and len, 0 when none (or the ring went wrong). */
static int fvq_used(struct fvq *vq, uint32_t *id, uint32_t *len)
{
	uint16_t idx = fvq_used_idx(vq), n = (uint16_t)(idx - vq->last_used);
	struct vring_used_elem e;
	uint16_t expect;

	if (vq->broken)
		return 0;
	if (vq->batch_left) {
		/* The rest of an in-order batch, one chain per call, in ring order. */
		expect = vq->avail->ring[vq->last_used & QMASK];
		vq->last_used++;
		vq->batch_left--;
		fvq_free_chain(vq, expect);
		*id = expect;
		*len = vq->batch_left ? 0 : vq->batch_len;
		return 1;
	}
	if (!n)
		return 0;
	if (n > (uint16_t)(vq->avail_idx - vq->last_used)) {
		EXPECT(0, "used idx %u: %u entries past %u, only %u buffers outstanding", idx, n,
		       vq->last_used, (uint16_t)(vq->avail_idx - vq->last_used));
		vq->broken = true;
		return 0;
	}
	e = vq->used->ring[vq->last_used & QMASK];
	expect = vq->avail->ring[vq->last_used & QMASK];
	if (e.id >= QSIZE) {
		EXPECT(0, "used id %u beyond the ring", e.id);
		vq->broken = true;
		return 0;
	}
	if (vq->in_order && e.id != expect) {
		/*
		 * One entry for a batch (2.6.9): it names the batch's last chain,
		 * and idx moved by the batch's size. Find that chain among the
		 * ones the index covers.
		 */
		uint16_t k = 1;

		while (k < n && vq->avail->ring[(uint16_t)(vq->last_used + k) & QMASK] != e.id)
			k++;
		EXPECT(k < n, "IN_ORDER: used entry %u names %u, made available in none of the %u slots it covers",
		       vq->last_used, e.id, n);
		if (k >= n) {
			vq->broken = true;
			return 0;
		}
		vq->batch_left = k + 1;
		vq->batch_len = e.len;
		return fvq_used(vq, id, len);
	}
	vq->last_used++;
	fvq_free_chain(vq, (uint16_t)e.id);
	*id = e.id;
	*len = e.len;
	return 1;
}

static bool fvq_wait_used(struct fvq *vq, uint32_t *id, uint32_t *len, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;

	while (!fvq_used(vq, id, len)) {
		if (vq->broken || now_ms() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* Wait until the device returned every buffer made available. */
static bool fvq_wait_idle(struct fvq *vq, int timeout_ms)
{
	long long end = now_ms() + timeout_ms;
	uint32_t id, len;

	while (vq->last_used != vq->avail_idx) {
		if (fvq_used(vq, &id, &len))
			continue;
		if (vq->broken || now_ms() > end)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* ------------------------------------------------------------ handshake */

/* GET_FEATURES .. SET_FEATURES, with the protocol features when asked for. */
static bool fe_negotiate(struct fe *fe, uint64_t features, uint64_t protocol, unsigned pairs)
{
	int before = t_failures;
	uint64_t offered, pf, qn;

	fe->ack = false;
	fe->protocol = 0;
	if (!fe_get_u64(fe, VHOST_USER_GET_FEATURES, &offered))
		return false;
	EXPECT((offered & features) == features, "offered 0x%llx lacks 0x%llx",
	       (unsigned long long)offered, (unsigned long long)(features & ~offered));
	if (features & F_PF) {
		if (!fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &pf))
			return false;
		EXPECT((pf & protocol) == protocol, "protocol features offered 0x%llx lack 0x%llx",
		       (unsigned long long)pf, (unsigned long long)(protocol & ~pf));
		fe_do_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, protocol);
		fe->protocol = protocol;
		fe->ack = protocol & P_ACK;
		if (protocol & P_MQ) {
			fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &qn);
			EXPECT(qn >= pairs, "GET_QUEUE_NUM %llu < %u", (unsigned long long)qn, pairs);
		}
	}
	fe_do(fe, VHOST_USER_SET_OWNER, NULL, 0, NULL, 0);
	fe_do_u64(fe, VHOST_USER_SET_FEATURES, features);
	fe->features = features;
	if (fe->protocol & P_STATUS)
		fe_do_u64(fe, VHOST_USER_SET_STATUS, ST_PRE);
	return t_failures == before && !fe->dead;
}

/* Regions first..first+n-1 in one SET_MEM_TABLE. */
static bool fe_mem_table(struct fe *fe, unsigned first, unsigned n)
{
	struct vhost_user_memory m = { .nregions = n };
	int fds[VHOST_MEMORY_BASELINE_NREGIONS];

	for (unsigned i = 0; i < n; i++) {
		m.regions[i] = reg_wire(&fe->reg[first + i]);
		fds[i] = fe->reg[first + i].fd;
	}
	return fe_do(fe, VHOST_USER_SET_MEM_TABLE, &m, VHOST_USER_MEM_SIZE(n), fds, (int)n);
}

static bool fe_add_reg(struct fe *fe, unsigned i)
{
	struct vhost_user_memory_single m = { 0, reg_wire(&fe->reg[i]) };

	return fe_do(fe, VHOST_USER_ADD_MEM_REG, &m, sizeof(m), &fe->reg[i].fd, 1);
}

static bool fe_rem_reg(struct fe *fe, unsigned i)
{
	struct vhost_user_memory_single m = { 0, reg_wire(&fe->reg[i]) };

	return fe_do(fe, VHOST_USER_REM_MEM_REG, &m, sizeof(m), NULL, 0);
}

/* NUM, BASE, ADDR, KICK, CALL, ENABLE: as QEMU starts a ring. fresh: zero it at base first. */
static bool fe_start_ring(struct fe *fe, unsigned i, bool fresh, uint16_t base)
{
	struct fvq *vq = &fe->vq[i];
	struct vhost_vring_addr a = { .index = i,
				      .desc_user_addr = (uint64_t)(uintptr_t)vq->desc,
				      .used_user_addr = (uint64_t)(uintptr_t)vq->used,
				      .avail_user_addr = (uint64_t)(uintptr_t)vq->avail };
	bool ok = true;

	if (fresh)
		fvq_reset(vq, base, fe->features & F_INORDER);
	ok &= fe_do_state(fe, VHOST_USER_SET_VRING_NUM, i, QSIZE);
	ok &= fe_do_state(fe, VHOST_USER_SET_VRING_BASE, i, base);
	ok &= fe_do(fe, VHOST_USER_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	if (vq->kickfd < 0)
		vq->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	ok &= fe_vring_fd(fe, VHOST_USER_SET_VRING_KICK, i, vq->kickfd);
	if (vq->callfd < 0) {
		vq->callfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		ok &= fe_vring_fd(fe, VHOST_USER_SET_VRING_CALL, i, vq->callfd);
	}
	if (fe->features & F_PF)
		ok &= fe_do_state(fe, VHOST_USER_SET_VRING_ENABLE, i, 1);
	return ok;
}

static bool fe_start(struct fe *fe, uint16_t base)
{
	bool ok = true;

	for (unsigned i = 0; i < fe->nrings; i++)
		ok &= fe_start_ring(fe, i, true, base);
	if (fe->protocol & P_STATUS)
		ok &= fe_do_u64(fe, VHOST_USER_SET_STATUS, ST_OK);
	return ok && fe_sync(fe);
}

/* The usual session: one region of `mem` bytes at gpa 0x100000000 with rings and buffers. */
static struct fe *fe_session(uint64_t features, uint64_t protocol, unsigned pairs, uint16_t base,
			     size_t mem)
{
	struct fe *fe = fe_new();

	if (!fe)
		return NULL;
	if (!fe_connect(fe) || !fe_region(fe, 0x100000000ull, mem) ||
	    !fe_layout(fe, 0, 2 * pairs, 0, 1) || !fe_negotiate(fe, features, protocol, pairs) ||
	    !fe_mem_table(fe, 0, 1) || !fe_start(fe, base)) {
		EXPECT(0, "session setup failed (features 0x%llx protocol 0x%llx)",
		       (unsigned long long)features, (unsigned long long)protocol);
		fe_free(fe);
		return NULL;
	}
	return fe;
}

/* ================================================ frames: frontend -> device */

enum lay { L_ONE, L_SPLIT, L_HDRMIX, L_SMALL, L_4K, L_IND, L_IND_HDRSPLIT, L_IND_SMALL, L_NLAY };

static const char *const lay_name[L_NLAY] = {
	"one descriptor", "header apart", "header split, data mixed", "many small",
	"4 KiB pieces", "indirect", "indirect, header over 3 entries", "indirect, many small",
};

struct fspec {
	uint32_t len;
	enum lay lay;
	unsigned seed;
	struct vuser_net_hdr vnet;
	bool vnet_ignored; /* sent without CSUM: the device must hand over zeros */
};

/* Cut the header+frame byte stream into buffer lengths for a layout. */
static unsigned cut_frame(enum lay l, uint32_t len, uint32_t *seg)
{
	uint32_t total = HDR + len, off = 0, piece = 4096;
	unsigned n = 0;

#define PUT(x)                          \
	do {                            \
		seg[n++] = (x);         \
		off += (x);             \
	} while (0)
	switch (l) {
	case L_ONE:
		PUT(total);
		break;
	case L_SPLIT:
		PUT(HDR);
		PUT(len);
		break;
	case L_HDRMIX:
		PUT(7);
		PUT(5 + (len < 100 ? len : 100));
		break;
	case L_SMALL:
		PUT(5);
		PUT(7);
		piece = len / 120 + 1 > 13 ? len / 120 + 1 : 13;
		break;
	case L_4K:
		PUT(HDR);
		break;
	case L_IND:
		PUT(HDR + (len < 2036 ? len : 2036));
		piece = 2048;
		break;
	case L_IND_HDRSPLIT:
		PUT(4);
		PUT(4);
		PUT(4);
		piece = 1500;
		break;
	case L_IND_SMALL:
		PUT(3);
		piece = len / 200 + 1 > 64 ? len / 200 + 1 : 64;
		break;
	case L_NLAY:
		break;
	}
	while (off < total)
		PUT(total - off < piece ? total - off : piece);
#undef PUT
	return n;
}

static void put_hdr(uint8_t *p, const struct vuser_net_hdr *v, uint16_t nb)
{
	struct virtio_net_hdr_mrg_rxbuf h = { v->flags, v->gso_type, v->hdr_len, v->gso_size,
					      v->csum_start, v->csum_offset, nb };

	memcpy(p, &h, HDR);
}

/* 1 posted (not yet published), 0 no room now (nothing changed). */
static int post_frame(struct fe *fe, unsigned ring, const struct fspec *s)
{
	struct fvq *vq = &fe->vq[ring];
	uint32_t seg[MAXSEG];
	uint64_t gpa[MAXSEG];
	unsigned n = cut_frame(s->lay, s->len, seg);
	bool ind = s->lay >= L_IND;
	struct allocsave sv;
	uint8_t *stream;
	uint32_t off = 0;
	int head;

	if ((ind ? 1u : n) > vq->nfree)
		return 0;
	stream = malloc(HDR + s->len);
	if (!stream)
		return 0;
	put_hdr(stream, &s->vnet, 0);
	fill_frame(stream + HDR, s->len, s->seed);
	alloc_save(fe, A_TX, &sv);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = fe_alloc(fe, A_TX, seg[i], 1, &gpa[i]);

		if (!p) {
			alloc_restore(fe, A_TX, &sv);
			free(stream);
			return 0;
		}
		memcpy(p, stream + off, seg[i]);
		off += seg[i];
	}
	free(stream);
	head = ind ? fvq_add_indirect(fe, A_TX, vq, gpa, seg, n, 0) : fvq_add(vq, gpa, seg, n, 0);
	if (head < 0) {
		alloc_restore(fe, A_TX, &sv);
		return 0;
	}
	return 1;
}

/* One frame the vhost received: length, segments, every byte, the header's offload part. */
static bool check_rx(const struct vuser_buf *b, const struct fspec *s)
{
	int before = t_failures;
	uint32_t segs = 0, sum = 0;
	uint8_t *got;
	long d;

	EXPECT(b->pkt_len == s->len, "frame %u (%s): pkt_len %u, sent %u", s->seed,
	       lay_name[s->lay], b->pkt_len, s->len);
	EXPECT(b->nb_segs == (s->len + SEG_ROOM - 1) / SEG_ROOM,
	       "frame %u (%s, %u bytes): nb_segs %u", s->seed, lay_name[s->lay], s->len, b->nb_segs);
	for (const struct vuser_buf *g = b; g && segs < 1000; g = g->next) {
		segs++;
		sum += g->data_len;
		EXPECT(g->data_len <= SEG_ROOM, "segment of %u bytes", g->data_len);
	}
	EXPECT(segs == b->nb_segs && sum == b->pkt_len,
	       "frame %u: chain of %u segments and %u bytes, nb_segs %u pkt_len %u", s->seed, segs,
	       sum, b->nb_segs, b->pkt_len);
	const struct vuser_net_hdr want = s->vnet_ignored ? (struct vuser_net_hdr){ 0 } : s->vnet;

	EXPECT(!memcmp(&b->vnet, &want, sizeof(b->vnet)),
	       "frame %u (%s): vnet flags %u csum %u+%u hdr_len %u, sent %u %u+%u %u", s->seed,
	       lay_name[s->lay], b->vnet.flags, b->vnet.csum_start, b->vnet.csum_offset,
	       b->vnet.hdr_len, want.flags, want.csum_start, want.csum_offset, want.hdr_len);
	got = calloc(1, s->len + 1);
	if (got) {
		uint32_t k = vuser_buf_read(b, 0, got, s->len);

		EXPECT(k == s->len, "frame %u: vuser_buf_read gave %u of %u bytes", s->seed, k, s->len);
		d = frame_diff(got, s->len, s->seed);
		EXPECT(d < 0, "frame %u (%s, %u bytes): byte %ld differs", s->seed, lay_name[s->lay],
		       s->len, d);
		free(got);
	}
	return t_failures == before;
}

/*
 * Post frames on queue pair q's transmitq (ring 2q+1) in batches that fit,
 * and check each one the vhost pulls out, in order.
 */
static bool to_dev_run(struct fe *fe, struct vh *h, unsigned q, const struct fspec *f, unsigned n)
{
	unsigned ring = 2 * q + 1, done = 0;
	struct fvq *vq = &fe->vq[ring];

	while (done < n) {
		unsigned posted = 0;

		while (done + posted < n && posted < 64 && post_frame(fe, ring, &f[done + posted]) > 0)
			posted++;
		if (!posted) {
			EXPECT(0, "frame %u (%u bytes, %s) does not fit the ring or memory",
			       f[done].seed, f[done].len, lay_name[f[done].lay]);
			return false;
		}
		fvq_publish(vq);
		for (unsigned k = 0; k < posted; k++) {
			struct vuser_buf *b = NULL;
			bool ok;

			if (vh_take(h, q, &b, 1, WAIT_MS) != 1) {
				EXPECT(0, "frame %u (%u bytes, %s) never came out of rx_burst on queue %u",
				       f[done + k].seed, f[done + k].len, lay_name[f[done + k].lay], q);
				return false;
			}
			ok = check_rx(b, &f[done + k]);
			vuser_buf_free(b);
			if (!ok)
				return false;
		}
		if (!fvq_wait_idle(vq, WAIT_MS)) {
			EXPECT(0, "ring %u: the device did not return every chain", ring);
			return false;
		}
		fe_reset_bufs(fe, A_TX);
		done += posted;
	}
	return true;
}

/* n frames of mixed sizes and layouts from seed0 on. */
static void mixed_frames(struct fspec *f, unsigned n, unsigned seed0, uint32_t maxlen,
			 bool indirect, bool big_pieces_only)
{
	for (unsigned i = 0; i < n; i++) {
		unsigned s = seed0 + i;
		uint32_t len = 60 + (s * 7919u) % (maxlen - 59);
		enum lay l = (enum lay)(s % (indirect ? L_NLAY : L_IND));

		if (big_pieces_only && (l == L_ONE || l == L_SPLIT))
			l = L_4K;
		f[i] = (struct fspec){ len, l, s, { 0 } };
	}
}

/* ================================================ frames: device -> frontend */

/* Make receive buffers available on ring: each a chain of the lengths given. */
static int post_rxbuf(struct fe *fe, unsigned ring, const uint32_t *lens, unsigned n, bool indirect)
{
	struct fvq *vq = &fe->vq[ring];
	uint64_t gpa[RXSEGS];
	uint8_t *p[RXSEGS];
	struct allocsave sv;
	int head;

	if (n > RXSEGS || (indirect ? 1u : n) > vq->nfree)
		return -1;
	alloc_save(fe, A_RX, &sv);
	for (unsigned i = 0; i < n; i++) {
		p[i] = fe_alloc(fe, A_RX, lens[i], 8, &gpa[i]);
		if (!p[i]) {
			alloc_restore(fe, A_RX, &sv);
			return -1;
		}
		memset(p[i], 0xee, lens[i]);
	}
	head = indirect ? fvq_add_indirect(fe, A_RX, vq, gpa, lens, n, VRING_DESC_F_WRITE) :
			  fvq_add(vq, gpa, lens, n, VRING_DESC_F_WRITE);
	if (head < 0) {
		alloc_restore(fe, A_RX, &sv);
		return -1;
	}
	for (unsigned i = 0; i < n; i++)
		vq->seg[head][i] = (struct rxseg){ p[i], lens[i] };
	vq->nseg[head] = (uint8_t)n;
	return head;
}

/* k single-buffer receive buffers of size bytes, published. */
static bool post_rxbufs(struct fe *fe, unsigned ring, unsigned k, uint32_t size)
{
	for (unsigned i = 0; i < k; i++)
		if (post_rxbuf(fe, ring, &size, 1, false) < 0) {
			EXPECT(0, "receive buffer %u of %u (%u bytes) does not fit", i, k, size);
			return false;
		}
	fvq_publish(&fe->vq[ring]);
	return true;
}

struct rxmeta {
	unsigned nbufs;
	uint32_t ids[64];
	uint32_t lens[64];
	uint32_t total;           /* sum of the used lens */
};

/*
 * Read one delivered frame from ring: its header, then the bytes of as many
 * buffers as the header's num_buffers says (one without MRG_RXBUF).
 * Returns the frame length (without header), or -1.
 */
static long fe_rx_frame(struct fe *fe, unsigned ring, uint8_t *out, uint32_t max,
			struct virtio_net_hdr_mrg_rxbuf *hdr, struct rxmeta *m, int timeout_ms)
{
	struct fvq *vq = &fe->vq[ring];
	bool mrg = fe->features & F_MRG;
	uint8_t hb[HDR];
	uint32_t got = 0;
	unsigned want = 1;

	memset(m, 0, sizeof(*m));
	while (m->nbufs < want) {
		uint32_t id, len, left;

		if (!fvq_wait_used(vq, &id, &len, timeout_ms))
			return -1;
		if (m->nbufs < NELEM(m->ids)) {
			m->ids[m->nbufs] = id;
			m->lens[m->nbufs] = len;
		}
		m->nbufs++;
		m->total += len;
		left = len;
		for (unsigned s = 0; s < vq->nseg[id] && left; s++) {
			const struct rxseg *g = &vq->seg[id][s];
			uint32_t k = left < g->len ? left : g->len;

			for (uint32_t i = 0; i < k; i++, got++) {
				if (got < HDR)
					hb[got] = g->p[i];
				else if (got - HDR < max)
					out[got - HDR] = g->p[i];
			}
			left -= k;
		}
		EXPECT(!left, "ring %u: used len %u larger than buffer %u", ring, len, id);
		if (m->nbufs == 1) {
			if (got < HDR) {
				EXPECT(0, "ring %u: first buffer of a frame holds %u bytes", ring, got);
				return -1;
			}
			memcpy(hdr, hb, HDR);
			want = mrg ? hdr->num_buffers : 1;
			if (!want || want > 64) {
				EXPECT(0, "ring %u: num_buffers %u", ring, hdr->num_buffers);
				return -1;
			}
		}
	}
	return (long)got - HDR;
}

/*
 * Send frames of lens[] (seeds seed0..) from the vhost on q; the receive
 * buffers must be posted. Each must arrive intact; returns false otherwise.
 */
static bool from_dev_check(struct fe *fe, struct vh *h, unsigned q, const uint32_t *lens, unsigned n,
			   unsigned seed0)
{
	struct vuser_buf *b[64];
	uint8_t *got = malloc(MAXFRAME + 1);
	int before = t_failures, sent;

	if (!got || n > NELEM(b)) {
		free(got);
		return false;
	}
	for (unsigned i = 0; i < n; i++) {
		b[i] = mkframe(h, lens[i], seed0 + i, NULL);
		if (!b[i]) {
			vuser_buf_free_bulk(b, i);
			free(got);
			return false;
		}
	}
	sent = vh_tx(h, q, b, n);
	EXPECT(sent == (int)n, "tx_burst on queue %u delivered %d of %u", q, sent, n);
	if (sent >= 0 && sent < (int)n)
		vuser_buf_free_bulk(b + sent, n - (unsigned)sent);
	for (int i = 0; i < sent; i++) {
		struct virtio_net_hdr_mrg_rxbuf hd;
		struct rxmeta m;
		long len = fe_rx_frame(fe, 2 * q, got, MAXFRAME + 1, &hd, &m, WAIT_MS);
		long d;

		if (len < 0) {
			EXPECT(0, "frame %u (%u bytes) not delivered on ring %u", seed0 + i, lens[i], 2 * q);
			break;
		}
		EXPECT(len == lens[i], "frame %u: %ld bytes delivered, %u sent", seed0 + i, len, lens[i]);
		EXPECT(hd.num_buffers == m.nbufs, "frame %u: num_buffers %u, %u buffers used",
		       seed0 + i, hd.num_buffers, m.nbufs);
		EXPECT(m.total == HDR + lens[i], "frame %u: used lens add up to %u, want %u",
		       seed0 + i, m.total, HDR + lens[i]);
		EXPECT(hd.flags == 0 && hd.gso_type == 0 && hd.hdr_len == 0 && hd.gso_size == 0 &&
			       hd.csum_start == 0 && hd.csum_offset == 0,
		       "frame %u: header flags %u gso %u/%u/%u csum %u+%u", seed0 + i, hd.flags,
		       hd.gso_type, hd.hdr_len, hd.gso_size, hd.csum_start, hd.csum_offset);
		d = frame_diff(got, len < (long)lens[i] ? (uint32_t)len : lens[i], seed0 + i);
		EXPECT(d < 0, "frame %u (%u bytes): byte %ld differs", seed0 + i, lens[i], d);
	}
	free(got);
	return t_failures == before;
}

/* ===================================================== checksum helpers */

static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (i < n)
		s += (uint32_t)p[i] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/*
 * An Ethernet/IPv4/UDP frame whose UDP checksum field holds the pseudo-header
 * sum, as a stack leaves it for the device (CHECKSUM_PARTIAL). Returns its length.
 */
static uint32_t udp_frame(uint8_t *f, uint32_t payload, unsigned seed)
{
	static const uint8_t macs[12] = { 2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1 };
	uint32_t ulen = 8 + payload, len = 14 + 20 + ulen;
	uint8_t *ip = f + 14, *udp = f + 34;
	uint16_t c;

	memset(f, 0, 42);
	memcpy(f, macs, 12);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + ulen) >> 8);
	ip[3] = (uint8_t)(20 + ulen);
	ip[4] = (uint8_t)seed;
	ip[8] = 64;
	ip[9] = 17;
	ip[12] = 10;
	ip[15] = 1;   /* 10.0.0.1 */
	ip[16] = 10;
	ip[19] = 2;   /* 10.0.0.2 */
	c = (uint16_t)~fold(sum16(ip, 20, 0));
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	udp[0] = 0x30;
	udp[1] = 0x39;
	udp[2] = 0x1a;
	udp[3] = 0x0a;
	udp[4] = (uint8_t)(ulen >> 8);
	udp[5] = (uint8_t)ulen;
	fill_frame(udp + 8, payload, seed);
	c = fold(sum16(ip + 12, 8, 17 + ulen));
	udp[6] = (uint8_t)(c >> 8);
	udp[7] = (uint8_t)c;
	return len;
}

static bool udp_csum_ok(const uint8_t *f, uint32_t len)
{
	uint32_t ulen = len - 34;

	return fold(sum16(f + 34, ulen, sum16(f + 26, 8, 17 + ulen))) == 0xffff;
}

/* A frame of the vhost's pool built segment by segment (odd lengths on purpose). */
static struct vuser_buf *mkframe_segs(struct vh *h, const uint8_t *data, const uint32_t *segs,
				      unsigned n)
{
	struct vuser_buf *b = NULL;
	uint32_t off = 0;

	if (vuser_vhost_buf_alloc_bulk(h->v, &b, 1))
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		uint8_t *p = vuser_buf_append(b, segs[i]);

		if (!p) {
			EXPECT(0, "vuser_buf_append(%u) failed", segs[i]);
			vuser_buf_free(b);
			return NULL;
		}
		memcpy(p, data + off, segs[i]);
		off += segs[i];
	}
	EXPECT(b->nb_segs == n, "built %u segments, want %u", b->nb_segs, n);
	return b;
}

/* ===================================================================== cases */

static const uint64_t never_offered =
	BIT(VIRTIO_F_ACCESS_PLATFORM) | BIT(VIRTIO_F_NOTIFICATION_DATA) |
	BIT(VIRTIO_NET_F_GUEST_TSO4) | BIT(VIRTIO_NET_F_GUEST_TSO6) | BIT(VIRTIO_NET_F_HOST_TSO4) |
	BIT(VIRTIO_NET_F_HOST_TSO6) | BIT(VIRTIO_NET_F_CTRL_VQ) | BIT(VHOST_F_LOG_ALL);

/* 1. What the device offers, and that devargs take features away. */
static void case_offer(void)
{
	static const struct {
		const char *args;
		uint64_t absent;
	} v[] = {
		{ "", 0 },
		{ "mrg_rxbuf=0", F_MRG },
		{ "in_order=0", F_INORDER },
		{ "indirect=0", F_IND },
		{ "event_idx=0", F_EVIDX },
		{ "packed_vq=0", F_PACKED },
		{ "mrg_rxbuf=0,in_order=0,indirect=0,event_idx=0,packed_vq=0",
		  F_MRG | F_INORDER | F_IND | F_EVIDX | F_PACKED },
	};
	const uint64_t want = F_V1 | F_MRG | F_INORDER | F_IND | F_EVIDX | F_PACKED | F_MQ | F_CSUM |
			      F_GCSUM | F_PF;

	for (size_t i = 0; i < NELEM(v); i++) {
		struct vh *h = vh_start(v[i].args);
		struct fe *fe = fe_new();
		uint64_t f = 0, pf = 0, slots = 0;

		if (!h || !fe || !fe_connect(fe)) {
			fe_free(fe);
			vh_stop(h);
			continue;
		}
		fe_get_u64(fe, VHOST_USER_GET_FEATURES, &f);
		EXPECT((f & (want & ~v[i].absent)) == (want & ~v[i].absent),
		       "devargs \"%s\": features 0x%llx lack 0x%llx", v[i].args, (unsigned long long)f,
		       (unsigned long long)(want & ~v[i].absent & ~f));
		EXPECT(!(f & v[i].absent), "devargs \"%s\": features 0x%llx still offer 0x%llx",
		       v[i].args, (unsigned long long)f, (unsigned long long)(f & v[i].absent));
		EXPECT(!(f & never_offered), "devargs \"%s\": offers unimplemented 0x%llx", v[i].args,
		       (unsigned long long)(f & never_offered));
		if (i == 0) {
			struct vuser_vhost_info info;

			fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &pf);
			EXPECT(pf == P_ALL, "protocol features 0x%llx, want exactly 0x%llx",
			       (unsigned long long)pf, (unsigned long long)P_ALL);
			fe_do_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, P_ALL);
			fe->ack = true;
			fe_get_u64(fe, VHOST_USER_GET_MAX_MEM_SLOTS, &slots);
			EXPECT(slots == 64, "GET_MAX_MEM_SLOTS %llu by default", (unsigned long long)slots);
			info = vh_info(h);
			EXPECT(info.protocol_features == P_ALL, "info.protocol_features 0x%llx",
			       (unsigned long long)info.protocol_features);
			/* A random MAC is a locally administered unicast one. */
			EXPECT((info.mac[0] & 3) == 2, "random mac starts with 0x%02x", info.mac[0]);
		}
		fe_free(fe);
		vh_stop(h);
	}
}

/* 2. The requests of a handshake, their replies and acks, refusals that leave the session up. */
static void case_protocol(void)
{
	static const uint8_t mac[6] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
	const uint64_t feats = F_V1 | F_PF | F_MRG | F_CSUM | F_GCSUM | F_MQ | F_IND;
	struct vh *h = vh_start("queues=2,mac=02:11:22:33:44:55");
	struct fe *fe = fe_new();
	struct vhost_user_config cfg = { 0 };
	struct virtio_net_config nc;
	struct vuser_vhost_info info;
	uint64_t u = 0, st;
	int r, errfd = -1, logfd = -1;

	if (!h || !fe || !fe_connect(fe))
		goto out;
	/* NEED_REPLY before REPLY_ACK is negotiated: no ack, the next reply is GET_FEATURES'. */
	EXPECT(fe_send(fe, VHOST_USER_SET_OWNER, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0) == 0,
	       "send SET_OWNER");
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_FEATURES, &u), "GET_FEATURES after an un-acked SET_OWNER");

	if (!fe_region(fe, 0x100000000ull, 4 << 20) || !fe_layout(fe, 0, 4, 0, 1) ||
	    !fe_negotiate(fe, feats, P_ALL, 2))
		goto out;
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &u) && u == 2, "GET_QUEUE_NUM %llu",
	       (unsigned long long)u);

	/* GET_CONFIG, whole: sent with NEED_REPLY, it still gets exactly its one reply. */
	cfg.offset = 0;
	cfg.size = sizeof(nc);
	EXPECT(fe_send(fe, VHOST_USER_GET_CONFIG, VHOST_USER_NEED_REPLY_MASK, &cfg,
		       offsetof(struct vhost_user_config, region) + cfg.size, NULL, 0) == 0,
	       "send GET_CONFIG");
	memset(&cfg, 0, sizeof(cfg));
	r = fe_reply(fe, VHOST_USER_GET_CONFIG, &cfg, sizeof(cfg), WAIT_MS);
	EXPECT(r == (int)(offsetof(struct vhost_user_config, region) + sizeof(nc)),
	       "GET_CONFIG reply of %d bytes", r);
	EXPECT(cfg.offset == 0 && cfg.size == sizeof(nc), "GET_CONFIG reply offset %u size %u",
	       cfg.offset, cfg.size);
	memcpy(&nc, cfg.region, sizeof(nc));
	EXPECT(!memcmp(nc.mac, mac, 6), "config mac %02x:%02x:%02x:%02x:%02x:%02x", nc.mac[0],
	       nc.mac[1], nc.mac[2], nc.mac[3], nc.mac[4], nc.mac[5]);
	EXPECT(nc.status == VIRTIO_NET_S_LINK_UP, "config status %u", nc.status);
	EXPECT(nc.max_virtqueue_pairs == 2, "config max_virtqueue_pairs %u", nc.max_virtqueue_pairs);
	/* A part of it: status and max_virtqueue_pairs. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.offset = offsetof(struct virtio_net_config, status);
	cfg.size = 4;
	EXPECT(fe_send(fe, VHOST_USER_GET_CONFIG, 0, &cfg, offsetof(struct vhost_user_config, region) + 4,
		       NULL, 0) == 0, "send GET_CONFIG");
	memset(&cfg, 0, sizeof(cfg));
	r = fe_reply(fe, VHOST_USER_GET_CONFIG, &cfg, sizeof(cfg), WAIT_MS);
	EXPECT(r == (int)offsetof(struct vhost_user_config, region) + 4 && cfg.size == 4 &&
		       cfg.region[0] == VIRTIO_NET_S_LINK_UP && cfg.region[1] == 0 &&
		       cfg.region[2] == 2 && cfg.region[3] == 0,
	       "GET_CONFIG 6+4: %d bytes, size %u, %02x %02x %02x %02x", r, cfg.size,
	       cfg.region[0], cfg.region[1], cfg.region[2], cfg.region[3]);

	/* Status: what negotiate set comes back. */
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_STATUS, &st) && st == ST_PRE, "GET_STATUS 0x%llx",
	       (unsigned long long)st);

	/* Known requests the device does not take: a non-zero ack, and the session goes on. */
	logfd = memfd_create("vproto-log", MFD_CLOEXEC);
	if (logfd >= 0 && ftruncate(logfd, 4096) == 0) {
		uint64_t log[2] = { 4096, 0 };

		r = fe_msg(fe, VHOST_USER_SET_LOG_BASE, log, sizeof(log), &logfd, 1);
		EXPECT(r == 1, "SET_LOG_BASE acked %d, want a refusal (1)", r);
	}
	u = 0x554433221102ull;
	r = fe_msg(fe, VHOST_USER_SEND_RARP, &u, sizeof(u), NULL, 0);
	EXPECT(r == 1, "SEND_RARP acked %d, want a refusal (1)", r);
	u = 9000;
	r = fe_msg(fe, VHOST_USER_NET_SET_MTU, &u, sizeof(u), NULL, 0);
	EXPECT(r == 1, "NET_SET_MTU acked %d, want a refusal (1)", r);
	{
		struct vhost_vring_state es = { 0, 1 };

		r = fe_msg(fe, VHOST_USER_SET_VRING_ENDIAN, &es, sizeof(es), NULL, 0);
		EXPECT(r == 1, "SET_VRING_ENDIAN acked %d, want a refusal (1)", r);
	}
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = 6;
	memcpy(cfg.region, mac, 6);
	r = fe_msg(fe, VHOST_USER_SET_CONFIG, &cfg, offsetof(struct vhost_user_config, region) + 6,
		   NULL, 0);
	EXPECT(r == 1, "SET_CONFIG acked %d, want a refusal (1)", r);
	info = vh_info(h);
	EXPECT(info.connected && info.violations == 0, "after refusals: connected %d violations %llu (%s)",
	       info.connected, (unsigned long long)info.violations, info.last_violation);

	/* The rest of the handshake, every message acked 0. */
	if (!fe_mem_table(fe, 0, 1) || !fe_start(fe, 0))
		goto out;
	errfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	EXPECT(fe_vring_fd(fe, VHOST_USER_SET_VRING_ERR, 0, errfd), "SET_VRING_ERR");
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_STATUS, &st) && st == ST_OK, "GET_STATUS 0x%llx",
	       (unsigned long long)st);
	info = vh_info(h);
	EXPECT(info.ready && info.connected && info.queues == 2 && info.mem_regions == 1,
	       "info: ready %d connected %d queues %u regions %u", info.ready, info.connected,
	       info.queues, info.mem_regions);
	EXPECT(info.features == feats && info.protocol_features == P_ALL,
	       "info: features 0x%llx protocol 0x%llx", (unsigned long long)info.features,
	       (unsigned long long)info.protocol_features);
	EXPECT(!memcmp(info.mac, mac, 6), "info.mac differs from mac=");

	/* Both pairs move frames both ways. */
	for (unsigned q = 0; q < 2; q++) {
		struct fspec f[4];
		uint32_t lens[3] = { 60, 1514, 9000 };

		mixed_frames(f, 4, 100 * q + 1, 9000, true, false);
		to_dev_run(fe, h, q, f, 4);
		if (post_rxbufs(fe, 2 * q, 8, 2048))
			from_dev_check(fe, h, q, lens, 3, 100 * q + 50);
	}
	info = vh_info(h);
	EXPECT(info.violations == 0, "violations %llu: %s", (unsigned long long)info.violations,
	       info.last_violation);
out:
	if (errfd >= 0)
		close(errfd);
	if (logfd >= 0)
		close(logfd);
	fe_free(fe);
	vh_stop(h);
}

/* 3. GET_VRING_BASE stops a ring at its index; SET_VRING_BASE + SET_VRING_KICK resume it. */
static void case_vring_base(void)
{
	const uint16_t base = 65530; /* the 16-bit indexes wrap during the case */
	const uint64_t feats = F_V1 | F_PF | F_MRG | F_CSUM | F_INORDER | F_IND;
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(feats, P_ALL, 1, base, 8 << 20) : NULL;
	struct fspec f[300], g[5];
	uint32_t lens[20], lens2[2] = { 1000, 2000 };
	struct vuser_buf *b[2], *x;
	struct vhost_vring_state st = { 1, 0 };
	struct vuser_vhost_info info;
	int r;

	if (!fe)
		goto out;
	mixed_frames(f, 300, 1000, 1514, true, false);
	to_dev_run(fe, h, 0, f, 300);
	for (unsigned i = 0; i < 20; i++)
		lens[i] = 60 + i * 97;
	if (post_rxbufs(fe, 0, 24, 2048))
		from_dev_check(fe, h, 0, lens, 20, 2000);

	/* Stop both rings: each reports where it is. */
	EXPECT(fe_send(fe, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0) == 0, "send");
	r = fe_reply(fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), WAIT_MS);
	EXPECT(r == (int)sizeof(st) && st.index == 1 && st.num == (uint16_t)(base + 300),
	       "GET_VRING_BASE 1: %d bytes, index %u num %u, want %u", r, st.index, st.num,
	       (uint16_t)(base + 300));
	st = (struct vhost_vring_state){ 0, 0 };
	EXPECT(fe_send(fe, VHOST_USER_GET_VRING_BASE, 0, &st, sizeof(st), NULL, 0) == 0, "send");
	r = fe_reply(fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st), WAIT_MS);
	EXPECT(r == (int)sizeof(st) && st.index == 0 && st.num == (uint16_t)(base + 20),
	       "GET_VRING_BASE 0: %d bytes, index %u num %u, want %u", r, st.index, st.num,
	       (uint16_t)(base + 20));
	info = vh_info(h);
	EXPECT(!info.ready && info.connected, "stopped rings: ready %d connected %d", info.ready,
	       info.connected);

	/* Stopped rings are left alone: frames wait, and tx_burst has nowhere to go. */
	mixed_frames(g, 5, 3000, 3000, true, false);
	for (unsigned i = 0; i < 5; i++)
		EXPECT(post_frame(fe, 1, &g[i]) == 1, "post frame %u", i);
	fvq_publish(&fe->vq[1]);
	b[0] = mkframe(h, lens2[0], 4000, NULL);
	b[1] = mkframe(h, lens2[1], 4001, NULL);
	if (b[0] && b[1]) {
		r = vh_tx(h, 0, b, 2);
		EXPECT(r == 0, "tx_burst on a stopped ring delivered %d", r);
		if (r < 2 && r >= 0)
			vuser_buf_free_bulk(b + r, 2 - (unsigned)r);
	}
	EXPECT(vh_quiet(h, 0), "a stopped ring was read");
	EXPECT(fvq_used_idx(&fe->vq[1]) == (uint16_t)(base + 300) &&
		       fvq_used_idx(&fe->vq[0]) == (uint16_t)(base + 20),
	       "used idx moved on stopped rings: %u %u", fvq_used_idx(&fe->vq[1]),
	       fvq_used_idx(&fe->vq[0]));
	EXPECT(fe_sync(fe), "messages are still served");

	/* Resume where they stopped (QEMU sends NUM, BASE, ADDR, KICK again). */
	EXPECT(fe_start_ring(fe, 1, false, (uint16_t)(base + 300)), "restart ring 1");
	EXPECT(fe_start_ring(fe, 0, false, (uint16_t)(base + 20)), "restart ring 0");
	EXPECT(fe_sync(fe), "sync");
	for (unsigned i = 0; i < 5; i++) {
		if (vh_take(h, 0, &x, 1, WAIT_MS) != 1) {
			EXPECT(0, "frame %u posted while stopped never arrived after the restart", i);
			break;
		}
		check_rx(x, &g[i]);
		vuser_buf_free(x);
	}
	EXPECT(fvq_wait_idle(&fe->vq[1], WAIT_MS), "ring 1 idle");
	fe_reset_bufs(fe, A_TX);
	/* Four receive buffers were still posted: the restarted ring uses them. */
	from_dev_check(fe, h, 0, lens2, 2, 4100);
	mixed_frames(f, 40, 5000, 9000, true, false);
	to_dev_run(fe, h, 0, f, 40);
	info = vh_info(h);
	EXPECT(info.ready && info.violations == 0, "after the restart: ready %d violations %llu (%s)",
	       info.ready, (unsigned long long)info.violations, info.last_violation);
out:
	fe_free(fe);
	vh_stop(h);
}

/* 4. RESET_DEVICE: a fresh device, and a new handshake on the same connection. */
static void case_reset(void)
{
	const uint64_t feats = F_V1 | F_PF | F_MRG | F_CSUM | F_IND | F_EVIDX;
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(feats, P_ALL, 1, 0, 4 << 20) : NULL;
	struct vuser_vhost_info info;
	struct fspec f[20];
	uint32_t lens[4] = { 60, 1514, 4000, 9000 };
	uint64_t u = 0;
	int r;

	if (!fe)
		goto out;
	mixed_frames(f, 20, 7000, 9000, true, false);
	to_dev_run(fe, h, 0, f, 20);
	if (post_rxbufs(fe, 0, 16, 2048))
		from_dev_check(fe, h, 0, lens, 4, 7100);

	/* REPLY_ACK is negotiated when RESET_DEVICE is sent: it is acked like any other request. */
	EXPECT(fe_send(fe, VHOST_USER_RESET_DEVICE, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0) == 0,
	       "send RESET_DEVICE");
	r = fe_reply(fe, VHOST_USER_RESET_DEVICE, &u, sizeof(u), 1000);
	EXPECT(r == 8 && u == 0, "RESET_DEVICE with NEED_REPLY: reply of %d bytes, ack %llu", r,
	       (unsigned long long)u);
	fe->ack = false;
	info = vh_info(h);
	EXPECT(info.connected && !info.ready && info.features == 0 && info.protocol_features == 0 &&
		       info.mem_regions == 0 && info.violations == 0,
	       "after RESET_DEVICE: connected %d ready %d features 0x%llx protocol 0x%llx regions %u "
	       "violations %llu",
	       info.connected, info.ready, (unsigned long long)info.features,
	       (unsigned long long)info.protocol_features, info.mem_regions,
	       (unsigned long long)info.violations);

	/* New memory, new rings, a new negotiation: status starts from 0 again. */
	fe_drop_memory(fe);
	if (!fe_region(fe, 0x200000000ull, 4 << 20) || !fe_layout(fe, 0, 2, 0, 1))
		goto out;
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_FEATURES, &u), "GET_FEATURES");
	fe_do_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, P_STATUS);
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_STATUS, &u) && u == 0,
	       "GET_STATUS after RESET_DEVICE: 0x%llx", (unsigned long long)u);
	if (!fe_negotiate(fe, F_V1 | F_PF | F_INORDER | F_MRG, P_ALL, 1) || !fe_mem_table(fe, 0, 1) ||
	    !fe_start(fe, 0))
		goto out;
	mixed_frames(f, 20, 7200, 9000, false, false);
	to_dev_run(fe, h, 0, f, 20);
	if (post_rxbufs(fe, 0, 16, 2048))
		from_dev_check(fe, h, 0, lens, 4, 7300);
	info = vh_info(h);
	EXPECT(info.ready && info.features == (F_V1 | F_PF | F_INORDER | F_MRG) &&
		       info.connections == 1 && info.violations == 0,
	       "after the new handshake: ready %d features 0x%llx connections %llu violations %llu",
	       info.ready, (unsigned long long)info.features,
	       (unsigned long long)info.connections, (unsigned long long)info.violations);
out:
	fe_free(fe);
	vh_stop(h);
}

/* 5. One frontend at a time; a second is refused at once; the next one after a close is served. */
static void case_sessions(void)
{
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(F_V1 | F_PF | F_MRG, P_ALL, 1, 0, 4 << 20) : NULL;
	struct fe *fe3 = NULL;
	struct vuser_vhost_info info;
	struct fspec f[10];
	uint32_t lens[2] = { 60, 1514 };
	uint64_t u = 0, st = 0;
	int second;

	if (!fe)
		goto out;
	info = vh_info(h);
	EXPECT(info.connections == 1 && info.ready, "connections %llu ready %d",
	       (unsigned long long)info.connections, info.ready);

	second = sock_connect();
	EXPECT(second >= 0, "second connect");
	if (second >= 0) {
		EXPECT(sees_eof(second, 1000), "the second frontend was not refused within 1 s");
		close(second);
	}
	/* The first one does not notice. */
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_STATUS, &st) && st == ST_OK, "GET_STATUS 0x%llx",
	       (unsigned long long)st);
	mixed_frames(f, 10, 8000, 9000, false, false);
	to_dev_run(fe, h, 0, f, 10);
	if (post_rxbufs(fe, 0, 4, 2048))
		from_dev_check(fe, h, 0, lens, 2, 8100);
	info = vh_info(h);
	EXPECT(info.connections == 1 && info.connected && info.ready && info.violations == 0,
	       "after the refusal: connections %llu connected %d ready %d violations %llu",
	       (unsigned long long)info.connections, info.connected, info.ready,
	       (unsigned long long)info.violations);

	/* The frontend leaves: the device notices and forgets it. */
	close(fe->sock);
	fe->sock = -1;
	EXPECT(vh_wait_connected(h, false, 2000), "the device did not notice the frontend left");
	info = vh_info(h);
	EXPECT(!info.ready && info.mem_regions == 0 && info.violations == 0,
	       "after the close: ready %d regions %u violations %llu", info.ready, info.mem_regions,
	       (unsigned long long)info.violations);

	/* The next one, a frontend without PROTOCOL_FEATURES: rings start enabled. */
	fe3 = fe_new();
	if (!fe3 || !fe_connect(fe3))
		goto out;
	/* Without REPLY_ACK a NEED_REPLY flag earns nothing. */
	EXPECT(fe_send(fe3, VHOST_USER_SET_OWNER, VHOST_USER_NEED_REPLY_MASK, NULL, 0, NULL, 0) == 0,
	       "send SET_OWNER");
	EXPECT(fe_get_u64(fe3, VHOST_USER_GET_FEATURES, &u), "GET_FEATURES right after");
	if (!fe_region(fe3, 0x300000000ull, 4 << 20) || !fe_layout(fe3, 0, 2, 0, 1) ||
	    !fe_negotiate(fe3, F_V1 | F_CSUM, 0, 1) || !fe_mem_table(fe3, 0, 1) || !fe_start(fe3, 0))
		goto out;
	info = vh_info(h);
	EXPECT(info.connections == 2 && info.connected && info.ready &&
		       info.features == (F_V1 | F_CSUM),
	       "third frontend: connections %llu connected %d ready %d features 0x%llx",
	       (unsigned long long)info.connections, info.connected, info.ready,
	       (unsigned long long)info.features);
	mixed_frames(f, 10, 8200, 9000, false, false);
	to_dev_run(fe3, h, 0, f, 10);
	if (post_rxbufs(fe3, 0, 4, 2048))
		from_dev_check(fe3, h, 0, lens, 2, 8300);
out:
	fe_free(fe3);
	fe_free(fe);
	vh_stop(h);
}

/*
 * After a memory change on a running session: with nothing newly posted,
 * the rings stay where they were (no frame comes out, used idx unchanged,
 * and a frame from the device lands in the next posted buffer).
 */
static bool rings_kept(struct fe *fe, struct vh *h, const char *after)
{
	uint16_t u1 = fe->vq[1].last_used, u0 = fe->vq[0].last_used;
	int before = t_failures, r;
	struct vuser_buf *b;
	bool quiet = vh_quiet(h, 0);

	EXPECT(quiet, "after %s, with nothing posted, rx_burst returned frames again "
	       "(the transmitq's position was lost)", after);
	EXPECT(fvq_used_idx(&fe->vq[1]) == u1, "after %s: transmitq used idx %u -> %u", after, u1,
	       fvq_used_idx(&fe->vq[1]));
	EXPECT(fvq_used_idx(&fe->vq[0]) == u0, "after %s: receiveq used idx %u -> %u", after, u0,
	       fvq_used_idx(&fe->vq[0]));
	/* One frame to the frontend must take the oldest buffer still posted. */
	if (fe->vq[0].avail_idx != fe->vq[0].last_used && (b = mkframe(h, 100, 99, NULL))) {
		uint16_t want = fe->vq[0].avail->ring[fe->vq[0].last_used & QMASK];
		uint32_t id = ~0u, len = 0;

		r = vh_tx(h, 0, &b, 1);
		if (r != 1)
			vuser_buf_free(b);
		EXPECT(r == 1 && fvq_wait_used(&fe->vq[0], &id, &len, WAIT_MS) && id == want &&
			       len == HDR + 100 && fvq_used_idx(&fe->vq[0]) == (uint16_t)(u0 + 1),
		       "after %s: a frame to the frontend went to buffer %u (len %u, used idx %u), "
		       "want buffer %u at used idx %u", after, id, len, fvq_used_idx(&fe->vq[0]),
		       want, (uint16_t)(u0 + 1));
	}
	return t_failures == before;
}

/* Traffic over the 100-region layout: buffers land in many regions. */
static void slots_traffic(struct fe *fe, struct vh *h, unsigned seed)
{
	static const uint32_t lens[5] = { 60, 1514, 9000, 4000, 2036 };
	struct fspec f[24];

	mixed_frames(f, 20, seed, 16000, true, true);
	f[20] = (struct fspec){ 65535, L_4K, seed + 20, { 0 } };
	f[21] = (struct fspec){ 65535, L_IND_HDRSPLIT, seed + 21, { 0 } };
	f[22] = (struct fspec){ 30000, L_SMALL, seed + 22, { 0 } };
	f[23] = (struct fspec){ 61, L_HDRMIX, seed + 23, { 0 } };
	to_dev_run(fe, h, 0, f, 24);
	if (post_rxbufs(fe, 0, 16, 2048))
		from_dev_check(fe, h, 0, lens, 5, seed + 50);
}

/* 6. CONFIGURE_MEM_SLOTS: 100 regions one by one, a removal, and one too many. */
static void case_mem_slots(void)
{
	const uint64_t feats = F_V1 | F_PF | F_MRG | F_IND | F_CSUM;
	struct vh *h = vh_start("mem_slots=128");
	struct fe *fe = fe_new(), *next = NULL;
	struct vuser_vhost_info info;
	struct vhost_user_memory_single extra;
	uint64_t slots = 0, v0;
	unsigned i, n, nrx;
	bool kept;

	if (!h || !fe || !fe_connect(fe))
		goto out;
	/* 129 regions of 64 KiB, each its own memfd, 2 MiB apart in guest addresses. */
	for (i = 0; i < 129; i++)
		if (!fe_region(fe, 0x40000000ull + i * 0x200000ull, 64 << 10))
			goto out;
	/* Rings in region 0; buffers in regions 1..98; region 99 stays unused. */
	if (!fe_layout(fe, 0, 2, 1, 98) || !fe_negotiate(fe, feats, P_ALL, 1))
		goto out;
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_MAX_MEM_SLOTS, &slots) && slots == 128,
	       "GET_MAX_MEM_SLOTS %llu with mem_slots=128", (unsigned long long)slots);
	for (i = 0; i < 100; i++)
		if (!fe_add_reg(fe, i))
			goto out;
	info = vh_info(h);
	EXPECT(info.mem_regions == 100, "mem_regions %u after 100 ADD_MEM_REG", info.mem_regions);
	if (!fe_start(fe, 0))
		goto out;
	slots_traffic(fe, h, 10000);
	for (i = 1, n = 0, nrx = 0; i < 99; i++) {
		n += fe->reg[i].touched[A_TX];
		nrx += fe->reg[i].touched[A_RX];
	}
	EXPECT(n == 98 && nrx == 16 && !fe->reg[0].touched[A_TX] && !fe->reg[99].touched[A_TX],
	       "frames in %u of the 98 buffer regions, the 16 receive buffers in %u", n, nrx);

	/*
	 * Remove the unused region while the rings run: the rings carry on.
	 * (Traffic after a ring lost its place would only repeat the failure.)
	 */
	EXPECT(fe_rem_reg(fe, 99), "REM_MEM_REG of region 99");
	info = vh_info(h);
	EXPECT(info.mem_regions == 99 && info.ready, "after REM_MEM_REG: regions %u ready %d",
	       info.mem_regions, info.ready);
	if ((kept = rings_kept(fe, h, "REM_MEM_REG")))
		slots_traffic(fe, h, 10100);
	EXPECT(fe_add_reg(fe, 99), "ADD_MEM_REG of region 99 again");
	info = vh_info(h);
	EXPECT(info.mem_regions == 100, "mem_regions %u after adding it back", info.mem_regions);
	if (kept && (kept = rings_kept(fe, h, "ADD_MEM_REG")))
		slots_traffic(fe, h, 10200);
	for (i = 100; i < 128; i++)
		if (!fe_add_reg(fe, i))
			break;
	info = vh_info(h);
	EXPECT(info.mem_regions == 128, "mem_regions %u, want all 128 slots used", info.mem_regions);
	if (kept)
		slots_traffic(fe, h, 10300);

	/* One more than mem_slots: refused, the frontend cut off, the device fine. */
	v0 = info.violations;
	extra = (struct vhost_user_memory_single){ 0, reg_wire(&fe->reg[128]) };
	EXPECT(fe_msg(fe, VHOST_USER_ADD_MEM_REG, &extra, sizeof(extra), &fe->reg[128].fd, 1) < 0,
	       "region 129 of 128 was acked");
	EXPECT(vh_wait_connected(h, false, 2000), "still connected after region 129");
	info = vh_info(h);
	EXPECT(info.violations == v0 + 1 && info.mem_regions == 0 && !info.ready,
	       "after region 129: violations %llu (was %llu) regions %u ready %d",
	       (unsigned long long)info.violations, (unsigned long long)v0, info.mem_regions,
	       info.ready);
	CHECK_STR_HAS(info.last_violation, "ADD_MEM_REG");
	/* The device serves the next frontend. */
	next = fe_new();
	if (next && fe_connect(next)) {
		uint64_t f = 0;

		EXPECT(fe_get_u64(next, VHOST_USER_GET_FEATURES, &f) && (f & F_V1),
		       "the next frontend is served");
	}
out:
	fe_free(next);
	fe_free(fe);
	vh_stop(h);
}

/* 7. SET_MEM_TABLE with the baseline maximum of 8 regions, buffers in all of them. */
static void case_mem_table8(void)
{
	const uint64_t feats = F_V1 | F_PF | F_MRG | F_IND | F_CSUM | F_INORDER;
	struct vh *h = vh_start("");
	struct fe *fe = fe_new();
	struct vuser_vhost_info info;
	struct fspec f[40];
	uint32_t lens[4] = { 9000, 60, 20000, 1514 };
	unsigned i;

	if (!h || !fe || !fe_connect(fe))
		goto out;
	/*
	 * Region 0 at guest address 0 holds the rings and buffers, 1..3 are
	 * memfds of their own, 4..7 slices of one memfd at growing offsets.
	 */
	if (!fe_region(fe, 0, 1 << 20) || !fe_region(fe, 0x10000000ull, 256 << 10) ||
	    !fe_region(fe, 0x20000000ull, 256 << 10) || !fe_region(fe, 0x30000000ull, 256 << 10) ||
	    !fe_region(fe, 0x7f000000ull, 1 << 20))
		goto out;
	/* Region 4 becomes the first slice of its own file; 5..7 the others. */
	fe->reg[4].size = 256 << 10;
	reg_bufs_from(&fe->reg[4], 0);
	for (i = 1; i < 4; i++)
		if (!fe_slice(fe, 4, 0x7f000000ull + i * 0x1000000ull, i * (256 << 10), 256 << 10))
			goto out;
	if (!fe_layout(fe, 0, 2, 0, 8) || !fe_negotiate(fe, feats, P_ALL, 1) || !fe_mem_table(fe, 0, 8) ||
	    !fe_start(fe, 0))
		goto out;
	info = vh_info(h);
	EXPECT(info.mem_regions == 8 && info.ready, "regions %u ready %d", info.mem_regions, info.ready);

	mixed_frames(f, 40, 20000, 30000, true, true);
	to_dev_run(fe, h, 0, f, 40);
	for (i = 0; i < 8; i++)
		EXPECT(fe->reg[i].touched[A_TX], "no frame buffer landed in region %u", i);
	if (post_rxbufs(fe, 0, 40, 2048)) {
		for (i = 0; i < 8; i++)
			EXPECT(fe->reg[i].touched[A_RX], "no receive buffer in region %u", i);
		from_dev_check(fe, h, 0, lens, 4, 21000);
	}

	/* A new table while the rings run (QEMU does this on memory hotplug): rings carry on. */
	EXPECT(fe_mem_table(fe, 0, 8), "SET_MEM_TABLE again");
	if (rings_kept(fe, h, "a second SET_MEM_TABLE")) {
		mixed_frames(f, 10, 22000, 9000, true, true);
		to_dev_run(fe, h, 0, f, 10);
		from_dev_check(fe, h, 0, lens, 2, 22100);
	}
	info = vh_info(h);
	EXPECT(info.ready && info.violations == 0, "ready %d violations %llu (%s)", info.ready,
	       (unsigned long long)info.violations, info.last_violation);
out:
	fe_free(fe);
	vh_stop(h);
}

/* 8. Frontend -> device: every layout, sizes 60..65535, in order or not. */
static void case_to_dev(bool in_order)
{
	static const uint32_t sizes[] = { 60,   61,   64,    100,   127,   128,   255,   1000, 1514,
					  2035, 2036, 2047,  2048,  2049,  3000,  4095,  4096, 4097,
					  6143, 8192, 9000,  16384, 32767, 32768, 65534, 65535 };
	const uint64_t feats = F_V1 | F_PF | F_CSUM | F_IND | (in_order ? F_INORDER : 0);
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(feats, P_ALL, 1, 0, 8 << 20) : NULL;
	struct fspec *f = calloc(NELEM(sizes) * L_NLAY + 600, sizeof(*f));
	struct vuser_port_stats st;
	uint64_t bytes = 0;
	unsigned n = 0;

	if (!fe || !f)
		goto out;
	for (unsigned s = 0; s < NELEM(sizes); s++)
		for (unsigned l = 0; l < L_NLAY; l++, n++) {
			/* The offload part of the header varies too and must come through as sent. */
			struct vuser_net_hdr v = { 0 };

			if (n % 3 == 0)
				v = (struct vuser_net_hdr){ VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0,
							    (uint16_t)(34 + n % 7), n % 2 ? 6 : 16 };
			else if (n % 3 == 1)
				v.flags = VIRTIO_NET_HDR_F_DATA_VALID;
			f[n] = (struct fspec){ sizes[s], (enum lay)l, 30000 + n, v };
			bytes += sizes[s];
		}
	/* Then a stream of small frames in bursts: the ring wraps a few times. */
	mixed_frames(f + n, 600, 40000, 1514, true, false);
	for (unsigned i = 0; i < 600; i++)
		bytes += f[n + i].len;
	n += 600;
	to_dev_run(fe, h, 0, f, n);
	st = vh_stats(h);
	EXPECT(st.rx[0].packets == n && st.rx[0].bytes == bytes && st.rx[0].drops == 0 &&
		       st.rx[0].errors == 0,
	       "rx stats: packets %llu (want %u) bytes %llu (want %llu) drops %llu errors %llu",
	       (unsigned long long)st.rx[0].packets, n, (unsigned long long)st.rx[0].bytes,
	       (unsigned long long)bytes, (unsigned long long)st.rx[0].drops,
	       (unsigned long long)st.rx[0].errors);
out:
	free(f);
	fe_free(fe);
	vh_stop(h);
}

/*
 * 8b. Without CSUM the header must be zeros (5.1.6.2.1) and is not read: a
 * frontend that sends offload flags anyway gets them dropped, and the frame
 * comes through whole, in every layout, the header's pieces skipped.
 */
static void case_to_dev_no_csum(void)
{
	static const uint32_t sizes[] = { 60, 64, 1514, 4097, 9000 };
	const uint64_t feats = F_V1 | F_PF | F_IND | F_INORDER;
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(feats, P_ALL, 1, 0, 8 << 20) : NULL;
	struct fspec f[NELEM(sizes) * L_NLAY];
	struct vuser_port_stats st;
	unsigned n = 0;

	if (!fe)
		goto out;
	for (unsigned s = 0; s < NELEM(sizes); s++)
		for (unsigned l = 0; l < L_NLAY; l++, n++)
			f[n] = (struct fspec){ sizes[s], (enum lay)l, 35000 + n,
					       { VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 16 }, true };
	to_dev_run(fe, h, 0, f, n);
	st = vh_stats(h);
	EXPECT(st.rx[0].packets == n && st.rx[0].errors == 0 && st.rx[0].drops == 0,
	       "rx stats: packets %llu (want %u) drops %llu errors %llu",
	       (unsigned long long)st.rx[0].packets, n, (unsigned long long)st.rx[0].drops,
	       (unsigned long long)st.rx[0].errors);
out:
	fe_free(fe);
	vh_stop(h);
}

static void case_to_dev_in_order(void)
{
	case_to_dev(true);
}

static void case_to_dev_any_order(void)
{
	case_to_dev(false);
}

/* 9. Device -> frontend without MRG_RXBUF: one buffer per frame, drops, checksum completion. */
static void case_from_dev_plain(void)
{
	const uint64_t feats = F_V1 | F_PF | F_CSUM | F_IND;
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(feats, P_ALL, 1, 0, 4 << 20) : NULL;
	uint32_t lens[4] = { 60, 1000, 2036, 1514 };
	uint8_t *frame = malloc(MAXFRAME), *got = malloc(MAXFRAME);
	struct vuser_port_stats st0, st;
	struct virtio_net_hdr_mrg_rxbuf hd = { 0 };
	struct rxmeta m = { 0 };
	struct vuser_buf *b[2];
	long len;
	int r, head;

	if (!fe || !frame || !got)
		goto out;
	/* Single 2 KiB buffers: each frame fills one, num_buffers 1. */
	if (post_rxbufs(fe, 0, 4, 2048))
		from_dev_check(fe, h, 0, lens, 4, 50000);
	fe_reset_bufs(fe, A_RX);

	/* One receive buffer may be a chain: header apart, header split, indirect. */
	{
		static const uint32_t c1[4] = { 12, 1000, 1000, 1000 };
		static const uint32_t c2[3] = { 6, 6, 3000 };
		static const uint32_t c3[2] = { 100, 4000 };
		static const uint32_t c4[5] = { 12, 1024, 1024, 1024, 1024 };
		uint32_t l1[1] = { 2900 }, l2[1] = { 2999 }, l3[1] = { 4088 }, l4[1] = { 4096 };

		EXPECT(post_rxbuf(fe, 0, c1, 4, false) >= 0, "post chain");
		fvq_publish(&fe->vq[0]);
		from_dev_check(fe, h, 0, l1, 1, 50100);
		EXPECT(post_rxbuf(fe, 0, c2, 3, false) >= 0, "post chain");
		fvq_publish(&fe->vq[0]);
		from_dev_check(fe, h, 0, l2, 1, 50101);
		EXPECT(post_rxbuf(fe, 0, c3, 2, false) >= 0, "post chain");
		fvq_publish(&fe->vq[0]);
		from_dev_check(fe, h, 0, l3, 1, 50102);
		EXPECT(post_rxbuf(fe, 0, c4, 5, true) >= 0, "post indirect chain");
		fvq_publish(&fe->vq[0]);
		from_dev_check(fe, h, 0, l4, 1, 50103);
		fe_reset_bufs(fe, A_RX);
	}

	/* A frame larger than the buffer: dropped and counted; the buffer serves the next one. */
	st0 = vh_stats(h);
	head = post_rxbuf(fe, 0, (uint32_t[]){ 2048 }, 1, false);
	fvq_publish(&fe->vq[0]);
	b[0] = mkframe(h, 3000, 50200, NULL);
	b[1] = mkframe(h, 500, 50201, NULL);
	if (head >= 0 && b[0] && b[1]) {
		r = vh_tx(h, 0, b, 2);
		EXPECT(r == 2, "tx_burst of [too big, fits] returned %d, want 2 (drop + delivery)", r);
		if (r >= 0 && r < 2)
			vuser_buf_free_bulk(b + r, 2 - (unsigned)r);
		len = fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS);
		EXPECT(len == 500 && m.nbufs == 1 && m.ids[0] == (uint32_t)head &&
			       hd.num_buffers == 1 && m.total == HDR + 500 && frame_diff(got, 500, 50201) < 0,
		       "after the drop: len %ld bufs %u id %u (posted %d) num_buffers %u", len, m.nbufs,
		       m.ids[0], head, hd.num_buffers);
		st = vh_stats(h);
		EXPECT(st.tx[0].drops == st0.tx[0].drops + 1 && st.tx[0].packets == st0.tx[0].packets + 1,
		       "tx stats: drops %llu -> %llu, packets %llu -> %llu",
		       (unsigned long long)st0.tx[0].drops, (unsigned long long)st.tx[0].drops,
		       (unsigned long long)st0.tx[0].packets, (unsigned long long)st.tx[0].packets);
	}
	/* No buffer at all: the frame stays the program's. */
	b[0] = mkframe(h, 100, 50300, NULL);
	if (b[0]) {
		r = vh_tx(h, 0, b, 1);
		EXPECT(r == 0, "tx_burst with no receive buffer returned %d", r);
		if (r == 0)
			vuser_buf_free(b[0]);
	}
	fe_reset_bufs(fe, A_RX);

	/* No GUEST_CSUM: the device completes a partial checksum itself. */
	for (unsigned t = 0; t < 2; t++) {
		/* 3143 bytes as segments of 1001, 1999 and 143: odd boundaries for the sum. */
		uint32_t flen = udp_frame(frame, t ? 3101 : 101, 50400 + t);
		uint32_t segs[3] = { 1001, 1999, flen - 3000 };
		struct vuser_buf *u;

		EXPECT(!udp_csum_ok(frame, flen), "the partial checksum is already valid (bad test)");
		if (t) {
			u = mkframe_segs(h, frame, segs, 3);
		} else {
			u = NULL;
			if (!vuser_vhost_buf_alloc_bulk(h->v, &u, 1) && vuser_buf_write(u, frame, flen)) {
				vuser_buf_free(u);
				u = NULL;
			}
		}
		if (!u)
			continue;
		u->vnet = (struct vuser_net_hdr){ VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 6 };
		if (!post_rxbufs(fe, 0, 1, 4096)) {
			vuser_buf_free(u);
			continue;
		}
		r = vh_tx(h, 0, &u, 1);
		EXPECT(r == 1, "tx_burst of the UDP frame returned %d", r);
		if (r != 1) {
			vuser_buf_free(u);
			continue;
		}
		len = fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS);
		EXPECT(len == flen, "UDP frame: %ld bytes delivered, %u sent", len, flen);
		if (len != flen)
			continue;
		EXPECT(udp_csum_ok(got, flen), "UDP frame of %u bytes (%s): checksum not completed "
		       "(field %02x%02x)", flen, t ? "3 odd segments" : "one segment", got[40], got[41]);
		EXPECT(!memcmp(got, frame, 40) && !memcmp(got + 42, frame + 42, flen - 42),
		       "UDP frame: bytes other than the checksum changed");
		EXPECT(!(hd.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM),
		       "NEEDS_CSUM passed to a frontend without GUEST_CSUM (flags %u)", hd.flags);
		fe_reset_bufs(fe, A_RX);
	}
out:
	free(frame);
	free(got);
	fe_free(fe);
	vh_stop(h);
}

/* 10. Device -> frontend with MRG_RXBUF and GUEST_CSUM. */
static void case_from_dev_mrg(void)
{
	const uint64_t feats = F_V1 | F_PF | F_CSUM | F_GCSUM | F_MRG | F_INORDER | F_IND;
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(feats, P_ALL, 1, 0, 4 << 20) : NULL;
	uint8_t *frame = malloc(MAXFRAME), *got = malloc(MAXFRAME);
	struct virtio_net_hdr_mrg_rxbuf hd = { 0 };
	struct rxmeta m = { 0 };
	struct vuser_buf *b;
	long len;
	int r;

	if (!fe || !frame || !got)
		goto out;
	/* 9000 bytes over 2 KiB buffers: 9012 with the header, so five buffers. */
	if (post_rxbufs(fe, 0, 8, 2048)) {
		b = mkframe(h, 9000, 60000, NULL);
		r = b ? vh_tx(h, 0, &b, 1) : -1;
		EXPECT(r == 1, "tx_burst of 9000 bytes returned %d", r);
		len = r == 1 ? fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS) : -1;
		EXPECT(len == 9000 && hd.num_buffers == 5 && m.nbufs == 5 && m.total == 9012 &&
			       m.lens[0] == 2048 && m.lens[3] == 2048 && m.lens[4] == 820,
		       "9000 bytes: len %ld num_buffers %u buffers %u total %u last %u", len,
		       hd.num_buffers, m.nbufs, m.total, m.lens[4]);
		EXPECT(len != 9000 || frame_diff(got, 9000, 60000) < 0, "9000 bytes: data differs");
		/* Three buffers left: small frames take one each. */
		from_dev_check(fe, h, 0, (uint32_t[]){ 60, 2036, 1 }, 3, 60001);
	}
	EXPECT(fvq_wait_idle(&fe->vq[0], WAIT_MS), "ring 0 idle");
	fe_reset_bufs(fe, A_RX);

	/*
	 * Buffers coming round again: their headers already hold all or part
	 * of what the device writes. Whatever it leaves alone, every field
	 * must come out right: a merged frame in buffers that say one buffer,
	 * and headers that differ in one field only, at either end.
	 */
	{
		static const struct virtio_net_hdr_mrg_rxbuf pre[5] = {
			{ .num_buffers = 1 },
			{ .flags = 1, .num_buffers = 1 },
			{ .gso_size = 1448, .num_buffers = 1 },
			{ .csum_offset = 16, .num_buffers = 1 },
			{ .num_buffers = 0x101 },
		};
		bool ok = true;

		for (unsigned i = 0; i < 10 && ok; i++) {
			int head = post_rxbuf(fe, 0, (uint32_t[]){ 2048 }, 1, false);

			ok = head >= 0;
			if (ok)
				memcpy(fe->vq[0].seg[head][0].p, &pre[i < 5 ? 0 : i - 5], HDR);
		}
		EXPECT(ok, "ten receive buffers with headers");
		fvq_publish(&fe->vq[0]);
		/* 9000 bytes over the first five, then one frame into each other header. */
		if (ok)
			from_dev_check(fe, h, 0, (uint32_t[]){ 9000, 60, 61, 62, 63, 64 }, 6, 60050);
	}
	EXPECT(fvq_wait_idle(&fe->vq[0], WAIT_MS), "ring 0 idle");
	fe_reset_bufs(fe, A_RX);

	/* Not enough buffers for a merged frame: it waits, whole, until there are. */
	if (post_rxbufs(fe, 0, 2, 2048)) {
		b = mkframe(h, 9000, 60100, NULL);
		r = b ? vh_tx(h, 0, &b, 1) : -1;
		EXPECT(r == 0, "9000 bytes into 2 buffers: tx_burst returned %d", r);
		EXPECT(fvq_used_idx(&fe->vq[0]) == fe->vq[0].last_used, "used entries for a frame that did not fit");
		if (r == 0 && post_rxbufs(fe, 0, 3, 2048)) {
			r = vh_tx(h, 0, &b, 1);
			EXPECT(r == 1, "tx_burst with 5 buffers returned %d", r);
			len = r == 1 ? fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS) : -1;
			EXPECT(len == 9000 && hd.num_buffers == 5 && frame_diff(got, 9000, 60100) < 0,
			       "9000 bytes after more buffers: len %ld num_buffers %u", len,
			       hd.num_buffers);
		}
		if (r == 0)
			vuser_buf_free(b);
	}
	EXPECT(fvq_wait_idle(&fe->vq[0], WAIT_MS), "ring 0 idle");
	fe_reset_bufs(fe, A_RX);

	/*
	 * More used entries in one burst than the device holds back before
	 * writing them out (64): thirteen 9000-byte frames take 65 buffers,
	 * and the fourteenth finds three of its five, so entries already
	 * written out come before one that is taken back. The thirteen arrive
	 * whole, the last waits for more buffers and then arrives too.
	 */
	if (post_rxbufs(fe, 0, 68, 2048)) {
		struct vuser_buf *fr[14];
		unsigned made = 0, ours;

		for (; made < 14; made++) {
			fr[made] = mkframe(h, 9000, 60400 + made, NULL);
			if (!fr[made])
				break;
		}
		r = made == 14 ? vh_tx(h, 0, fr, 14) : -1;
		EXPECT(r == 13, "14 frames of 9000 bytes into 68 buffers: tx_burst returned %d", r);
		/* Frames from ours on were not taken: still the test's to free. */
		ours = r > 0 ? (unsigned)r : 0;
		for (unsigned i = 0; i < ours; i++) {
			len = fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS);
			EXPECT(len == 9000 && hd.num_buffers == 5 && m.nbufs == 5 &&
				       frame_diff(got, 9000, 60400 + i) < 0,
			       "frame %u of 13: len %ld num_buffers %u buffers %u", i, len,
			       hd.num_buffers, m.nbufs);
		}
		EXPECT(fvq_used_idx(&fe->vq[0]) == fe->vq[0].last_used,
		       "used entries beyond the 13 frames that fit");
		if (r == 13 && post_rxbufs(fe, 0, 2, 2048)) {
			r = vh_tx(h, 0, &fr[13], 1);
			EXPECT(r == 1, "the 14th frame with 5 buffers: tx_burst returned %d", r);
			if (r == 1)
				ours = 14;
			len = r == 1 ? fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS) : -1;
			EXPECT(len == 9000 && hd.num_buffers == 5 && frame_diff(got, 9000, 60413) < 0,
			       "the 14th frame: len %ld num_buffers %u", len, hd.num_buffers);
		}
		for (unsigned i = ours; i < made; i++)
			vuser_buf_free(fr[i]);
	}
	EXPECT(fvq_wait_idle(&fe->vq[0], WAIT_MS), "ring 0 idle");
	fe_reset_bufs(fe, A_RX);

	/* The largest frame, over 33 buffers; and a buffer that is itself a chain. */
	if (post_rxbufs(fe, 0, 33, 2048))
		from_dev_check(fe, h, 0, (uint32_t[]){ MAXFRAME }, 1, 60200);
	fe_reset_bufs(fe, A_RX);
	for (unsigned i = 0; i < 3; i++) {
		static const uint32_t c[2] = { 700, 1400 };

		EXPECT(post_rxbuf(fe, 0, c, 2, i == 2) >= 0, "post chain %u", i);
	}
	fvq_publish(&fe->vq[0]);
	from_dev_check(fe, h, 0, (uint32_t[]){ 5000 }, 1, 60300);
	fe_reset_bufs(fe, A_RX);

	/* GUEST_CSUM: the offload goes to the frontend as it is, data untouched. */
	{
		uint32_t flen = udp_frame(frame, 501, 60400);

		b = NULL;
		if (!vuser_vhost_buf_alloc_bulk(h->v, &b, 1) && !vuser_buf_write(b, frame, flen) &&
		    post_rxbufs(fe, 0, 1, 2048)) {
			b->vnet = (struct vuser_net_hdr){ VIRTIO_NET_HDR_F_NEEDS_CSUM, 0, 0, 0, 34, 6 };
			r = vh_tx(h, 0, &b, 1);
			EXPECT(r == 1, "tx_burst returned %d", r);
			if (r == 1) {
				len = fe_rx_frame(fe, 0, got, MAXFRAME, &hd, &m, WAIT_MS);
				EXPECT(len == flen && hd.flags == VIRTIO_NET_HDR_F_NEEDS_CSUM &&
					       hd.csum_start == 34 && hd.csum_offset == 6 &&
					       hd.num_buffers == 1,
				       "GUEST_CSUM: len %ld flags %u csum %u+%u num_buffers %u", len,
				       hd.flags, hd.csum_start, hd.csum_offset, hd.num_buffers);
				EXPECT(len == flen && !memcmp(got, frame, flen),
				       "GUEST_CSUM: the frame was changed on the way");
			} else {
				vuser_buf_free(b);
			}
		} else {
			vuser_buf_free(b);
		}
	}
out:
	free(frame);
	free(got);
	fe_free(fe);
	vh_stop(h);
}

/* Whether the eventfd was signalled (and drain it). */
static bool signalled(int fd)
{
	uint64_t n = 0;

	return read(fd, &n, sizeof(n)) == sizeof(n) && n > 0;
}

static bool signalled_within(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };

	return poll(&pfd, 1, timeout_ms) == 1 && signalled(fd);
}

static void set_avail_flags(struct fvq *vq, uint16_t flags)
{
	__atomic_store_n(&vq->avail->flags, flags, __ATOMIC_SEQ_CST);
}

static void set_used_event(struct fvq *vq, uint16_t ev)
{
	__atomic_store_n(&vq->avail->ring[QSIZE], ev, __ATOMIC_SEQ_CST);
}

/* One 60-byte frame from the device on ring 0; whether its call fd was signalled. */
static bool one_to_frontend(struct fe *fe, struct vh *h, unsigned seed)
{
	uint32_t len = 60;

	if (!post_rxbufs(fe, 0, 1, 2048) || !from_dev_check(fe, h, 0, &len, 1, seed))
		return false;
	fe_reset_bufs(fe, A_RX);
	return true;
}

static void one_to_device(struct fe *fe, struct vh *h, unsigned seed)
{
	struct fspec f = { 60, L_ONE, seed, { 0 } };

	to_dev_run(fe, h, 0, &f, 1);
}

/* 11. Notifications: NO_INTERRUPT, EVENT_IDX's used_event, a call fd replaced while running. */
static void case_notify(void)
{
	struct vh *h = vh_start("");
	struct fe *fe = h ? fe_session(F_V1 | F_PF | F_MRG, P_ALL, 1, 0, 4 << 20) : NULL;
	struct fe *ev = NULL;
	int newcall = -1;
	uint16_t u;

	if (!fe)
		goto out;
	for (unsigned i = 0; i < 2; i++)
		EXPECT(__atomic_load_n(&fe->vq[i].used->flags, __ATOMIC_ACQUIRE) & VRING_USED_F_NO_NOTIFY,
		       "ring %u: used->flags 0x%x without VRING_USED_F_NO_NOTIFY", i,
		       fe->vq[i].used->flags);
	/* Asked not to interrupt: never signalled, in either direction. */
	set_avail_flags(&fe->vq[0], VRING_AVAIL_F_NO_INTERRUPT);
	set_avail_flags(&fe->vq[1], VRING_AVAIL_F_NO_INTERRUPT);
	for (unsigned i = 0; i < 5; i++) {
		one_to_device(fe, h, 70000 + i);
		one_to_frontend(fe, h, 70100 + i);
	}
	EXPECT(!signalled(fe->vq[1].callfd), "ring 1 signalled despite VRING_AVAIL_F_NO_INTERRUPT");
	EXPECT(!signalled(fe->vq[0].callfd), "ring 0 signalled despite VRING_AVAIL_F_NO_INTERRUPT");
	/* Interrupts wanted: signalled once used entries are published. */
	set_avail_flags(&fe->vq[0], 0);
	set_avail_flags(&fe->vq[1], 0);
	one_to_device(fe, h, 70200);
	EXPECT(signalled_within(fe->vq[1].callfd, 1000), "ring 1 not signalled");
	one_to_frontend(fe, h, 70201);
	EXPECT(signalled_within(fe->vq[0].callfd, 1000), "ring 0 not signalled");
	/* A new call fd while the ring runs (QEMU masking a vector): the new one is signalled. */
	newcall = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	EXPECT(fe_vring_fd(fe, VHOST_USER_SET_VRING_CALL, 0, newcall), "SET_VRING_CALL");
	for (unsigned i = 0; i < 3; i++)
		one_to_frontend(fe, h, 70300 + i);
	EXPECT(signalled(newcall), "the new call fd was not signalled");
	EXPECT(!signalled(fe->vq[0].callfd), "the replaced call fd was signalled");
	fe_free(fe);
	fe = NULL;
	vh_stop(h);

	/* EVENT_IDX: used_event decides (vring_need_event); avail->flags is ignored. */
	h = vh_start("");
	ev = h ? fe_session(F_V1 | F_PF | F_EVIDX, P_ALL, 1, 0, 4 << 20) : NULL;
	if (!ev)
		goto out;
	set_avail_flags(&ev->vq[0], VRING_AVAIL_F_NO_INTERRUPT);
	set_avail_flags(&ev->vq[1], VRING_AVAIL_F_NO_INTERRUPT);
	/* Far ahead: no signal. */
	u = fvq_used_idx(&ev->vq[0]);
	set_used_event(&ev->vq[0], (uint16_t)(u + 1000));
	u = fvq_used_idx(&ev->vq[1]);
	set_used_event(&ev->vq[1], (uint16_t)(u + 1000));
	for (unsigned i = 0; i < 3; i++) {
		one_to_frontend(ev, h, 71000 + i);
		one_to_device(ev, h, 71100 + i);
	}
	EXPECT(!signalled(ev->vq[0].callfd), "ring 0 signalled with used_event far ahead");
	EXPECT(!signalled(ev->vq[1].callfd), "ring 1 signalled with used_event far ahead");
	/* At the current index: the next entry signals (flags say NO_INTERRUPT, ignored). */
	set_used_event(&ev->vq[0], fvq_used_idx(&ev->vq[0]));
	one_to_frontend(ev, h, 71200);
	EXPECT(signalled(ev->vq[0].callfd), "ring 0 not signalled with used_event at the index");
	set_used_event(&ev->vq[1], fvq_used_idx(&ev->vq[1]));
	one_to_device(ev, h, 71201);
	EXPECT(signalled_within(ev->vq[1].callfd, 1000),
	       "ring 1 not signalled with used_event at the index");
	/* Two ahead: the first two entries pass quietly, the third signals. */
	set_used_event(&ev->vq[0], (uint16_t)(fvq_used_idx(&ev->vq[0]) + 2));
	one_to_frontend(ev, h, 71300);
	EXPECT(!signalled(ev->vq[0].callfd), "used_event +2: signalled after 1 entry");
	one_to_frontend(ev, h, 71301);
	EXPECT(!signalled(ev->vq[0].callfd), "used_event +2: signalled after 2 entries");
	one_to_frontend(ev, h, 71302);
	EXPECT(signalled(ev->vq[0].callfd), "used_event +2: not signalled after 3 entries");
	one_to_frontend(ev, h, 71303);
	EXPECT(!signalled(ev->vq[0].callfd), "used_event passed: signalled again");
out:
	if (newcall >= 0)
		close(newcall);
	fe_free(ev);
	fe_free(fe);
	vh_stop(h);
}

/* 12. Four queue pairs; one pair disabled and enabled again while the others run. */
static void case_mq(void)
{
	const uint64_t feats = F_V1 | F_PF | F_MQ | F_MRG | F_IND | F_INORDER;
	struct vh *h = vh_start("queues=4");
	struct fe *fe = h ? fe_session(feats, P_ALL, 4, 0, 16 << 20) : NULL;
	struct vuser_vhost_info info;
	struct vuser_port_stats st;
	uint64_t qn = 0;
	struct fspec g[3];
	struct vuser_buf *b[3], *x;
	int r;

	if (!fe)
		goto out;
	EXPECT(fe_get_u64(fe, VHOST_USER_GET_QUEUE_NUM, &qn) && qn == 4, "GET_QUEUE_NUM %llu",
	       (unsigned long long)qn);
	info = vh_info(h);
	EXPECT(info.ready && info.queues == 4, "ready %d queues %u", info.ready, info.queues);
	for (unsigned q = 0; q < 4; q++) {
		struct fspec f[6];
		uint32_t lens[3] = { 60 + q, 1514, 9000 };

		mixed_frames(f, 6, 80000 + 100 * q, 9000, true, false);
		to_dev_run(fe, h, q, f, 6);
		if (post_rxbufs(fe, 2 * q, 8, 2048))
			from_dev_check(fe, h, q, lens, 3, 80050 + 100 * q);
	}

	/* Pair 2 off: its frames wait, its bursts return 0; the others carry on. */
	EXPECT(fe_do_state(fe, VHOST_USER_SET_VRING_ENABLE, 4, 0), "disable ring 4");
	EXPECT(fe_do_state(fe, VHOST_USER_SET_VRING_ENABLE, 5, 0), "disable ring 5");
	mixed_frames(g, 3, 81000, 3000, true, false);
	for (unsigned i = 0; i < 3; i++)
		EXPECT(post_frame(fe, 5, &g[i]) == 1, "post on ring 5");
	fvq_publish(&fe->vq[5]);
	post_rxbufs(fe, 4, 4, 2048);
	for (unsigned i = 0; i < 3; i++)
		b[i] = mkframe(h, 200 + i, 81100 + i, NULL);
	if (b[0] && b[1] && b[2]) {
		r = vh_tx(h, 2, b, 3);
		EXPECT(r == 0, "tx_burst on the disabled pair returned %d", r);
		if (r >= 0 && r < 3)
			vuser_buf_free_bulk(b + r, 3 - (unsigned)r);
	}
	r = vh_rx(h, 2, &x, 1);
	EXPECT(r == 0, "rx_burst on the disabled pair returned %d", r);
	if (r == 1)
		vuser_buf_free(x);
	for (unsigned q = 0; q < 4; q++) {
		struct fspec f[4];
		uint32_t lens[2] = { 1000, 4000 };

		if (q == 2)
			continue;
		mixed_frames(f, 4, 82000 + 100 * q, 9000, true, false);
		to_dev_run(fe, h, q, f, 4);
		if (post_rxbufs(fe, 2 * q, 4, 2048))
			from_dev_check(fe, h, q, lens, 2, 82050 + 100 * q);
	}
	EXPECT(vh_quiet(h, 2), "a frame came out of the disabled pair");
	EXPECT(fvq_used_idx(&fe->vq[5]) == fe->vq[5].last_used &&
		       fvq_used_idx(&fe->vq[4]) == fe->vq[4].last_used,
	       "the disabled pair's used rings moved");
	info = vh_info(h);
	EXPECT(info.ready, "a disabled pair 2 made the device not ready");

	/* On again: what waited moves. */
	EXPECT(fe_do_state(fe, VHOST_USER_SET_VRING_ENABLE, 4, 1), "enable ring 4");
	EXPECT(fe_do_state(fe, VHOST_USER_SET_VRING_ENABLE, 5, 1), "enable ring 5");
	for (unsigned i = 0; i < 3; i++) {
		if (vh_take(h, 2, &x, 1, WAIT_MS) != 1) {
			EXPECT(0, "frame %u on pair 2 never arrived after re-enabling", i);
			break;
		}
		check_rx(x, &g[i]);
		vuser_buf_free(x);
	}
	from_dev_check(fe, h, 2, (uint32_t[]){ 300, 1400 }, 2, 81200);
	st = vh_stats(h);
	for (unsigned q = 0; q < 4; q++)
		EXPECT(st.rx[q].packets == (q == 2 ? 9u : 10u) && st.tx[q].packets == 5 &&
			       st.rx[q].errors == 0 && st.tx[q].errors == 0,
		       "queue %u: rx %llu tx %llu errors %llu/%llu", q,
		       (unsigned long long)st.rx[q].packets, (unsigned long long)st.tx[q].packets,
		       (unsigned long long)st.rx[q].errors, (unsigned long long)st.tx[q].errors);
out:
	fe_free(fe);
	vh_stop(h);
}

struct tcase {
	const char *name;
	void (*fn)(void);
};

static const struct tcase cases[] = {
	{ "1 features offered", case_offer },
	{ "2 protocol requests", case_protocol },
	{ "3 GET/SET_VRING_BASE", case_vring_base },
	{ "4 RESET_DEVICE", case_reset },
	{ "5 one frontend at a time", case_sessions },
	{ "6 128 memory slots", case_mem_slots },
	{ "7 SET_MEM_TABLE of 8", case_mem_table8 },
	{ "8 to the device, in order", case_to_dev_in_order },
	{ "9 to the device, any order", case_to_dev_any_order },
	{ "9b to the device, no CSUM", case_to_dev_no_csum },
	{ "10 to the frontend, plain", case_from_dev_plain },
	{ "11 to the frontend, merged", case_from_dev_mrg },
	{ "12 notifications", case_notify },
	{ "13 multiqueue", case_mq },
};

int main(int argc, char **argv)
{
	int fds0, fds1;
	long long t00 = now_ms();

	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(g_dir, sizeof(g_dir), "/tmp/vuser-vproto.XXXXXX");
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(g_sock, sizeof(g_sock), "%s/vhost.sock", g_dir);
	fds0 = count_fds();
	for (size_t i = 0; i < NELEM(cases); i++) {
		int before = t_failures;
		long long t0 = now_ms();

		if (argc > 1 && !strstr(cases[i].name, argv[1]))
			continue;
		g_case = cases[i].name;
		cases[i].fn();
		printf("%-32s %s (%lld ms)\n", cases[i].name, t_failures == before ? "ok" : "FAIL",
		       now_ms() - t0);
	}
	g_case = "end";
	fds1 = count_fds();
	EXPECT(fds1 == fds0, "fds %d at the start, %d at the end", fds0, fds1);
	unlink(g_sock);
	EXPECT(rmdir(g_dir) == 0, "rmdir %s: %s", g_dir, strerror(errno));
	printf("total %lld ms\n", now_ms() - t00);
	return t_result();
}
