/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A vhost-user frontend that lies, against vuser's device side. The device
 * must survive every lie a frontend can tell, on the socket and in the rings,
 * cut the liar off with a reason that names the lie, and then serve the next
 * frontend as if nothing had happened: a device that crashes, hangs, leaks
 * or follows a hostile pointer turns a guest bug into a host compromise.
 *
 * The vhost runs on a thread of its own, as a program would run it: process,
 * take what the frontend sent, deliver what the test asks for. The test
 * thread is the frontend: it owns a memfd with the rings and buffers, speaks
 * the protocol byte by byte and writes the rings itself, so each lie lands
 * exactly where a case puts it. After every hostile frontend a well-behaved
 * one moves frames both ways and checks every byte.
 */
#include <dirent.h>
#include <errno.h>
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
#include "vuser/vuser.h"
#include "vuser/uapi/vhost_user.h"
#include "vuser/uapi/virtio_net.h"
#include "vuser/uapi/virtio_ring.h"
#include "testlib.h"


#define BIT(n) (1ull << (n))
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The frontend's memory, one memfd. Ring 0 is its receive ring (the vhost's
 * tx), ring 1 its transmit ring (the vhost's rx). The two-region layout cuts
 * the same file at SPLIT, where no ring or buffer slot straddles.
 */
#define QSIZE 256u
#define MEM_SIZE (4u << 20)
#define SPLIT (2u << 20)
#define DESC_OFF(r) ((uint64_t)(r) * 0x4000)
#define AVAIL_OFF(r) (DESC_OFF(r) + 0x1000)
#define USED_OFF(r) (DESC_OFF(r) + 0x2000)
#define RXBUF_OFF 0x10000u
#define RXBUF_LEN 2048u
#define TXBUF_OFF 0x100000u
#define TXBUF_LEN 8192u
#define SCRATCH_OFF 0x300000u
#define SCRATCH_LEN 0x100000u
#define HDR 12u
#define FRAME_MAX (72u * 1024)

#define POOL_BUFS 4096u
#define MEM_SLOTS 8u
/* Cases need at least this many runs in all (round 1 included). */
#define TOTAL_RUNS 10000
#define GOOD_FRAMES 100
/* Waits that should end in microseconds; the bound only matters when the vhost is broken. */
#define WAIT_MS 3000
#define EOF_MS 2000
/* The vhost's own timeout for a message that has started to arrive (vhost.c). */
#define MSG_TIMEOUT_MS 1000
#define IDLE_POLL_MS 5
#define RSS_SLACK_KIB 4096
/*
 * Known failures repeat every round at little cost; a vhost that makes every
 * wait run to its bound does not, so the rounds stop after this long.
 */
#define MAX_LOOP_MS 300000

#define F_REQ VHOST_USER_VERSION
#define F_ACK (VHOST_USER_VERSION | VHOST_USER_NEED_REPLY_MASK)

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Mappings of the frontends' memfds still in this process: the vhost's must all be gone. */
static int count_fe_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "memfd:hostile-fe"))
			n++;
	fclose(f);
	return n;
}

/* --------------------------------------------------------------- frames */

static const uint32_t mixed_sizes[] = { 60,  1514, 14,   4000, 128, 8000, 64,  2048,
					700, 3000, 1500, 42,  256, 5000, 1024, 2049 };

static uint32_t frame_len(uint32_t seed, unsigned k)
{
	return mixed_sizes[(seed + k * 7) % NELEM(mixed_sizes)];
}

/* Eight bytes a step: filling and hashing every frame bytewise cost more than the sessions. */
static void frame_fill(uint8_t *p, uint32_t len, uint32_t seed, unsigned k)
{
	uint64_t x = ((uint64_t)seed * 2654435761u + k * 40503u) << 1 | 1;

	for (uint32_t i = 0; i < len; i += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(p + i, &x, len - i < 8 ? len - i : 8);
	}
}

/*
 * A hash of a byte stream that may arrive in pieces of any length: the same
 * bytes give the same hash however they are split.
 */
struct fh {
	uint64_t h, w;
	unsigned n;             /* bytes in w */
	uint64_t len;
};

static void fh_mix(struct fh *f)
{
	f->h = (f->h ^ f->w) * 0x9e3779b97f4a7c15ull;
	f->h ^= f->h >> 29;
	f->w = 0;
	f->n = 0;
}

static void fh_add(struct fh *f, const uint8_t *p, uint32_t len)
{
	f->len += len;
	while (len && f->n) {
		f->w |= (uint64_t)*p++ << (8 * f->n);
		len--;
		if (++f->n == 8)
			fh_mix(f);
	}
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&f->w, p, 8);
		fh_mix(f);
	}
	while (len--)
		f->w |= (uint64_t)*p++ << (8 * f->n++);
}

static uint64_t fh_end(struct fh *f)
{
	if (f->n)
		fh_mix(f);
	f->w = f->len;
	fh_mix(f);
	return f->h;
}

#define FH0 { .h = 0xcbf29ce484222325ull }

static uint64_t bytes_hash(const uint8_t *p, uint32_t len)
{
	struct fh f = FH0;

	fh_add(&f, p, len);
	return fh_end(&f);
}

static uint64_t frame_hash(uint32_t seed, unsigned k, uint32_t len)
{
	static uint8_t tmp[FRAME_MAX];

	frame_fill(tmp, len, seed, k);
	return bytes_hash(tmp, len);
}

/* ------------------------------------------------------ the vhost thread */

/* What the vhost handed the program, reduced to what a case checks. */
struct rxrec {
	uint32_t len;
	uint64_t hash;
	bool seg_ok;
	struct vuser_net_hdr vnet;
};

#define LOG_MAX 256

/*
 * The vhost's thread and what it publishes. Control calls (info, stats)
 * stay on this thread, as vhost.h asks; the test reads snapshots.
 */
struct srv {
	struct vuser_vhost *v;
	pthread_t thr;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int wakefd;
	/* Below: under mu. */
	bool stop, hold, held;
	uint64_t begun;           /* passes started */
	uint64_t gen;             /* passes finished: the snapshot is from pass gen */
	struct vuser_vhost_info info;
	struct vuser_port_stats st;
	struct rxrec log[LOG_MAX];
	unsigned nlog;
	unsigned log_lost;
	uint64_t job_id;
	unsigned job_n, job_sent;
	uint32_t job_seed;
	const uint32_t *job_sizes;
	unsigned write_fail;
	int burst_err;
	long long max_process_us;
};

static struct srv S;

static void srv_record(const struct vuser_buf *b, struct rxrec *r)
{
	struct fh h = FH0;
	uint32_t sum = 0;
	unsigned segs = 0;

	for (const struct vuser_buf *s = b; s && segs < 4096; s = s->next, segs++) {
		fh_add(&h, vuser_buf_data(s), s->data_len);
		sum += s->data_len;
	}
	r->len = b->pkt_len;
	r->hash = fh_end(&h);
	r->seg_ok = sum == b->pkt_len && segs == b->nb_segs;
	r->vnet = b->vnet;
}

static void *srv_main(void *arg)
{
	static uint8_t frame[FRAME_MAX];
	struct srv *s = arg;

	for (;;) {
		struct vuser_buf *b[64];
		struct rxrec recs[64];
		struct vuser_vhost_info info;
		struct vuser_port_stats st;
		unsigned job_from, job_left, k = 0;
		uint32_t seed;
		const uint32_t *sizes;
		uint64_t job_id, pass;
		int nrx, ntx = 0, werr = 0;
		long long t0, dt;

		pthread_mutex_lock(&s->mu);
		while (s->hold && !s->stop) {
			struct timespec ts;

			s->held = true;
			pthread_cond_broadcast(&s->cv);
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&s->cv, &s->mu, &ts);
		}
		s->held = false;
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		pass = ++s->begun;
		job_id = s->job_id;
		job_from = s->job_sent;
		job_left = s->job_n - s->job_sent;
		seed = s->job_seed;
		sizes = s->job_sizes;
		pthread_mutex_unlock(&s->mu);

		t0 = now_us();
		vuser_vhost_process(s->v);
		dt = now_us() - t0;

		nrx = vuser_vhost_rx_burst(s->v, 0, b, 64);
		for (int i = 0; i < nrx; i++) {
			srv_record(b[i], &recs[i]);
			vuser_buf_free(b[i]);
		}
		if (job_left) {
			k = job_left < 32 ? job_left : 32;
			if (vuser_vhost_buf_alloc_bulk(s->v, b, k) == 0) {
				for (unsigned i = 0; i < k; i++) {
					uint32_t len = sizes ? sizes[job_from + i] : frame_len(seed, job_from + i);

					frame_fill(frame, len, seed, job_from + i);
					if (vuser_buf_write(b[i], frame, len))
						werr++;
				}
				ntx = vuser_vhost_tx_burst(s->v, 0, b, k);
				/* What was not taken is the program's: regenerated on the next pass. */
				for (unsigned i = ntx < 0 ? 0 : (unsigned)ntx; i < k; i++)
					vuser_buf_free(b[i]);
			} else {
				werr++;
			}
		}
		vuser_vhost_info(s->v, &info);
		vuser_vhost_stats(s->v, &st);

		pthread_mutex_lock(&s->mu);
		for (int i = 0; i < nrx; i++) {
			if (s->nlog < LOG_MAX)
				s->log[s->nlog++] = recs[i];
			else
				s->log_lost++;
		}
		if (nrx < 0 || ntx < 0)
			s->burst_err++;
		s->write_fail += (unsigned)werr;
		if (ntx > 0 && job_id == s->job_id)
			s->job_sent += (unsigned)ntx;
		if (dt > s->max_process_us)
			s->max_process_us = dt;
		s->info = info;
		s->st = st;
		s->gen = pass;
		pthread_cond_broadcast(&s->cv);
		pthread_mutex_unlock(&s->mu);

		if (nrx <= 0 && ntx <= 0) {
			/* The datapath has no fd to wait on: the test wakes us when it posts. */
			struct pollfd pf[2] = { { .fd = vuser_vhost_fd(s->v), .events = POLLIN },
						{ .fd = s->wakefd, .events = POLLIN } };
			uint64_t drain;

			if (poll(pf, 2, IDLE_POLL_MS) > 0 && pf[1].revents &&
			    read(s->wakefd, &drain, sizeof(drain)) < 0)
				drain = 0;
		}
	}
	return NULL;
}

static void srv_wake(void)
{
	uint64_t one = 1;

	if (write(S.wakefd, &one, sizeof(one)) < 0)
		return;
}

typedef bool (*srv_pred)(const void *arg);

/* Wait, bounded, until pred holds on the vhost thread's latest snapshot. */
static bool srv_wait(int ms, srv_pred pred, const void *arg)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&S.mu);
	while (!(ok = pred(arg)))
		if (pthread_cond_timedwait(&S.cv, &S.mu, &ts) == ETIMEDOUT) {
			ok = pred(arg);
			break;
		}
	pthread_mutex_unlock(&S.mu);
	return ok;
}

static bool p_gen(const void *a)
{
	return S.gen >= *(const uint64_t *)a;
}

static bool p_ready(const void *a)
{
	return S.info.ready && S.info.connections == *(const uint64_t *)a;
}

static bool p_gone(const void *a)
{
	return S.info.connections >= *(const uint64_t *)a && !S.info.connected;
}

static bool p_accepted(const void *a)
{
	return S.info.connections >= *(const uint64_t *)a;
}

static bool p_cut(const void *a)
{
	return S.info.violations > *(const uint64_t *)a && !S.info.connected;
}

static bool p_nlog(const void *a)
{
	return S.nlog >= *(const unsigned *)a;
}

static bool p_rxdrops(const void *a)
{
	return S.st.rx[0].drops >= *(const uint64_t *)a;
}

static bool p_job_done(const void *a)
{
	(void)a;
	return S.job_sent >= S.job_n;
}

static bool p_held(const void *a)
{
	(void)a;
	return S.held;
}

static void srv_snap(struct vuser_vhost_info *info, struct vuser_port_stats *st)
{
	pthread_mutex_lock(&S.mu);
	if (info)
		*info = S.info;
	if (st)
		*st = S.st;
	pthread_mutex_unlock(&S.mu);
}

/*
 * Wait for a whole pass of the vhost thread that began after this call: what
 * the test did before it has been processed and is in the snapshot.
 */
static void srv_settle(void)
{
	uint64_t g;

	pthread_mutex_lock(&S.mu);
	g = S.begun + 1;
	pthread_mutex_unlock(&S.mu);
	srv_wake();
	CHECK(srv_wait(WAIT_MS, p_gen, &g));
}

static void srv_log_reset(void)
{
	pthread_mutex_lock(&S.mu);
	S.nlog = 0;
	S.log_lost = 0;
	pthread_mutex_unlock(&S.mu);
}

static void srv_job(unsigned n, uint32_t seed, const uint32_t *sizes)
{
	pthread_mutex_lock(&S.mu);
	S.job_id++;
	S.job_n = n;
	S.job_sent = 0;
	S.job_seed = seed;
	S.job_sizes = sizes;
	pthread_mutex_unlock(&S.mu);
	srv_wake();
}

/* After this no frame of an older job reaches any frontend. */
static void srv_job_cancel(void)
{
	srv_job(0, 0, NULL);
	srv_settle();
}

static void srv_hold(bool on)
{
	pthread_mutex_lock(&S.mu);
	S.hold = on;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
	srv_wake();
	if (on)
		CHECK(srv_wait(WAIT_MS, p_held, NULL));
}

/* ------------------------------------------------------- the frontend */

struct fe_vq {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	uint16_t avail_idx;
	uint16_t used_seen;
	/* Private chain bookkeeping: never read back from shared memory. */
	uint16_t free[QSIZE];
	unsigned nfree;
	uint16_t pnext[QSIZE];
	uint16_t nchain[QSIZE];   /* descriptors in the chain at this head; 0: not posted */
	unsigned outstanding;
	/*
	 * The packed layout (fe->packed) in the same place: descriptors where the
	 * split table is, the driver area where avail is, the device area where
	 * used is. nchain is then indexed by buffer id.
	 */
	struct vring_packed_desc *pd;
	struct vring_packed_desc_event *pdrv, *pdev;
	uint16_t ppos;            /* next position to make available ... */
	bool pwrap;               /* ... and its wrap counter */
	uint16_t pused;           /* next position the device writes a used descriptor ... */
	bool puwrap;              /* ... and the wrap counter it writes */
	unsigned pinflight;       /* ring positions in flight */
};

struct fe {
	int sock, memfd;
	int kick[2], call[2];
	uint8_t *mem;
	uint64_t base;            /* = the mapping's address: gpa and qva alike */
	uint64_t conn_id;         /* the vhost's connections count while this one is served */
	uint64_t offered, poffered;
	uint64_t features, protocol;
	unsigned scratch;
	unsigned stray;           /* bytes or fds the vhost sent that nobody asked for */
	uint64_t calls;           /* notifications read from the receive ring's call fd */
	bool packed;              /* VIRTIO_F_RING_PACKED negotiated */
	struct fe_vq vq[2];
};

static char sock_path[VUSER_PATH_MAX];

static void *fe_ptr(struct fe *fe, uint64_t addr)
{
	return fe->mem + (addr - fe->base);
}

static uint64_t fe_addr(const struct fe *fe, uint64_t off)
{
	return fe->base + off;
}

static int connect_path(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void fe_vq_reset(struct fe *fe, unsigned r)
{
	struct fe_vq *q = &fe->vq[r];

	q->desc = fe_ptr(fe, fe_addr(fe, DESC_OFF(r)));
	q->avail = fe_ptr(fe, fe_addr(fe, AVAIL_OFF(r)));
	q->used = fe_ptr(fe, fe_addr(fe, USED_OFF(r)));
	q->pd = (void *)q->desc;
	q->pdrv = (void *)q->avail;
	q->pdev = (void *)q->used;
	q->ppos = q->pused = 0;
	q->pwrap = q->puwrap = true;
	q->pinflight = 0;
	q->avail_idx = q->used_seen = 0;
	q->nfree = 0;
	for (unsigned i = QSIZE; i-- > 0;)
		q->free[q->nfree++] = (uint16_t)i;
	memset(q->nchain, 0, sizeof(q->nchain));
	q->outstanding = 0;
}

/*
 * Guest memory outlives its frontend here, as a guest's does: the test keeps
 * a few memfds mapped and hands each new frontend one, zeroed, so that it
 * looks just like a fresh one. Faulting in fresh pages for every one of the
 * 10,000 sessions cost more than the sessions themselves; the vhost still
 * maps, touches and unmaps the memory anew every session.
 */
#define MEM_POOL 4

static struct {
	int fd;
	uint8_t *mem;
} mem_pool[MEM_POOL];
static unsigned mem_pooled;

static bool mem_get(int *fd, uint8_t **mem)
{
	void *m;

	if (mem_pooled) {
		mem_pooled--;
		*fd = mem_pool[mem_pooled].fd;
		*mem = mem_pool[mem_pooled].mem;
		memset(*mem, 0, MEM_SIZE);
		return true;
	}
	*fd = memfd_create("hostile-fe", MFD_CLOEXEC);
	if (*fd < 0)
		return false;
	m = ftruncate(*fd, MEM_SIZE) < 0
		    ? MAP_FAILED
		    : mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	if (m == MAP_FAILED) {
		close(*fd);
		*fd = -1;
		return false;
	}
	*mem = m;
	return true;
}

static void mem_put(int fd, uint8_t *mem)
{
	if (mem_pooled < MEM_POOL) {
		mem_pool[mem_pooled].fd = fd;
		mem_pool[mem_pooled].mem = mem;
		mem_pooled++;
		return;
	}
	munmap(mem, MEM_SIZE);
	close(fd);
}

/* Before counting what the vhost left mapped or open. */
static void mem_pool_drain(void)
{
	while (mem_pooled) {
		mem_pooled--;
		munmap(mem_pool[mem_pooled].mem, MEM_SIZE);
		close(mem_pool[mem_pooled].fd);
	}
}

static void fe_close(struct fe *fe)
{
	if (fe->sock >= 0)
		close(fe->sock);
	for (int i = 0; i < 2; i++) {
		if (fe->kick[i] >= 0)
			close(fe->kick[i]);
		if (fe->call[i] >= 0)
			close(fe->call[i]);
		fe->kick[i] = fe->call[i] = -1;
	}
	if (fe->mem)
		mem_put(fe->memfd, fe->mem);
	fe->mem = NULL;
	fe->sock = fe->memfd = -1;
}

/* The connection comes last: the vhost accepts it while the rest is ready. */
static bool fe_open(struct fe *fe)
{
	struct vuser_vhost_info info;

	memset(fe, 0, sizeof(*fe));
	fe->sock = fe->memfd = -1;
	fe->kick[0] = fe->kick[1] = fe->call[0] = fe->call[1] = -1;
	if (!mem_get(&fe->memfd, &fe->mem))
		goto fail;
	fe->base = (uint64_t)(uintptr_t)fe->mem;
	for (int i = 0; i < 2; i++) {
		fe->kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		fe->call[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (fe->kick[i] < 0 || fe->call[i] < 0)
			goto fail;
		fe_vq_reset(fe, (unsigned)i);
	}
	fe->scratch = 0;
	srv_snap(&info, NULL);
	fe->conn_id = info.connections + 1;
	fe->sock = connect_path();
	if (fe->sock < 0)
		goto fail;
	return true;
fail:
	fprintf(stderr, "fe_open: %s\n", strerror(errno));
	fe_close(fe);
	return false;
}

/* ---------------------------------------------------------- the socket */

static int send_wire(int sock, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * 16)];
		struct cmsghdr align;
	} ctl;
	const uint8_t *p = buf;

	if (nfds > 16)
		return -EINVAL;
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
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		nfds = 0;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One message: the 12-byte header, then exactly size payload bytes. */
static int fe_send(struct fe *fe, uint32_t req, uint32_t flags, const void *pl, uint32_t size,
		   const int *fds, int nfds)
{
	uint8_t wire[VHOST_USER_HDR_SIZE + 512];
	struct vhost_user_hdr h = { .request = req, .flags = flags, .size = size };

	if (size > sizeof(wire) - VHOST_USER_HDR_SIZE)
		return -EINVAL;
	memcpy(wire, &h, VHOST_USER_HDR_SIZE);
	if (size)
		memcpy(wire + VHOST_USER_HDR_SIZE, pl, size);
	return send_wire(fe->sock, wire, VHOST_USER_HDR_SIZE + size, fds, nfds);
}

static int fe_send_u64(struct fe *fe, uint32_t req, uint32_t flags, uint64_t v)
{
	return fe_send(fe, req, flags, &v, sizeof(v), NULL, 0);
}

static int fe_send_state(struct fe *fe, uint32_t req, uint32_t flags, uint32_t index, uint32_t num)
{
	struct vhost_vring_state s = { .index = index, .num = num };

	return fe_send(fe, req, flags, &s, sizeof(s), NULL, 0);
}

/* Exactly len bytes within ms; 0, -ETIMEDOUT or -ECONNRESET (the vhost hung up). */
static int recv_exact(struct fe *fe, void *buf, size_t len, int ms)
{
	long long deadline = now_ms() + ms;
	uint8_t *p = buf;

	while (len) {
		union {
			char b[CMSG_SPACE(sizeof(int) * 16)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = { .iov_base = p, .iov_len = len };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b,
				     .msg_controllen = sizeof(ctl.b) };
		struct pollfd pf = { .fd = fe->sock, .events = POLLIN };
		long long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0)
			return -ETIMEDOUT;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		n = recvmsg(fe->sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return errno == ECONNRESET ? -ECONNRESET : -errno;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
				int in;

				memcpy(&in, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
				close(in);
				fe->stray++;
			}
		}
		if (n == 0)
			return -ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A reply to req of exactly size bytes. */
static int fe_reply(struct fe *fe, uint32_t req, void *pl, uint32_t size)
{
	struct vhost_user_hdr h;
	uint8_t junk[512];
	int err = recv_exact(fe, &h, VHOST_USER_HDR_SIZE, WAIT_MS);

	if (err) {
		fprintf(stderr, "reply to request %u: %s\n", req, strerror(-err));
		return err;
	}
	if (h.request != req || h.flags != (VHOST_USER_VERSION | VHOST_USER_REPLY_MASK) ||
	    h.size != size) {
		fprintf(stderr, "reply to request %u: request %u flags 0x%x size %u, want size %u\n",
			req, h.request, h.flags, h.size, size);
		if (h.size <= sizeof(junk))
			recv_exact(fe, junk, h.size, WAIT_MS);
		return -EPROTO;
	}
	return size ? recv_exact(fe, pl, size, WAIT_MS) : 0;
}

static int fe_get_u64(struct fe *fe, uint32_t req, uint64_t *out)
{
	int err = fe_send(fe, req, F_REQ, NULL, 0, NULL, 0);

	return err ? err : fe_reply(fe, req, out, sizeof(*out));
}

/* REPLY_ACK's status for a request sent with NEED_REPLY. */
static int fe_ack(struct fe *fe, uint32_t req, uint64_t *status)
{
	return fe_reply(fe, req, status, sizeof(*status));
}

/*
 * EOF within ms, reading and counting whatever comes first (nothing should:
 * the messages that break the rules have no reply). Returns the time it
 * took, or -1.
 */
static long long wait_eof(int sock, int ms, unsigned *stray)
{
	long long t0 = now_ms(), deadline = t0 + ms;

	for (;;) {
		struct pollfd pf = { .fd = sock, .events = POLLIN };
		long long left = deadline - now_ms();
		char buf[256];
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		n = recv(sock, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return now_ms() - t0;
		if (n > 0)
			*stray += (unsigned)n;
	}
}

/* -------------------------------------------------------- the handshake */

static const uint64_t GOOD_FEATURES = BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
				      BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |
				      BIT(VIRTIO_NET_F_CSUM) | BIT(VIRTIO_NET_F_MAC);
static const uint64_t GOOD_PROTOCOL = BIT(VHOST_USER_PROTOCOL_F_MQ) | BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |
				      BIT(VHOST_USER_PROTOCOL_F_CONFIG) |
				      BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
				      BIT(VHOST_USER_PROTOCOL_F_STATUS);
/* What vhost.h documents as offered by default. */
static const uint64_t MUST_OFFER = BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
				   BIT(VIRTIO_NET_F_MRG_RXBUF) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |
				   BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VIRTIO_F_IN_ORDER) |
				   BIT(VIRTIO_F_RING_PACKED);

struct hs {
	uint64_t features;
	uint64_t protocol;
	bool two_regions;
	bool post_rx;
	uint16_t base[2];
};

enum {
	HS_OWNER,
	HS_GET_FEATURES,
	HS_PROTOCOL,
	HS_SET_FEATURES,
	HS_MEM,
	HS_RING0,
	HS_RING1,
	HS_ENABLE,
	HS_END
};

static struct hs hs_default(void)
{
	return (struct hs){ .features = GOOD_FEATURES, .protocol = GOOD_PROTOCOL, .post_rx = true };
}

/* Packed rings; a base is then a position (bits 0..14) and a wrap counter (bit 15). */
static struct hs hs_packed(void)
{
	struct hs o = hs_default();

	o.features |= BIT(VIRTIO_F_RING_PACKED);
	o.base[0] = o.base[1] = 0x8000;
	return o;
}

static struct vhost_user_memory_region fe_region(const struct fe *fe, uint64_t off, uint64_t size)
{
	return (struct vhost_user_memory_region){ .guest_phys_addr = fe_addr(fe, off),
						  .memory_size = size,
						  .userspace_addr = fe_addr(fe, off),
						  .mmap_offset = off };
}

/* SET_MEM_TABLE claiming nregions, carrying npl regions of payload and nfds fds. */
static int fe_send_mem(struct fe *fe, uint32_t nregions, const struct vhost_user_memory_region *r,
		       unsigned npl, const int *fds, int nfds)
{
	struct vhost_user_memory m = { .nregions = nregions };

	memcpy(m.regions, r, npl * sizeof(*r));
	return fe_send(fe, VHOST_USER_SET_MEM_TABLE, F_REQ, &m, VHOST_USER_MEM_SIZE(npl), fds, nfds);
}

static int fe_mem_table(struct fe *fe, bool two)
{
	struct vhost_user_memory_region r[2];
	int fds[2] = { fe->memfd, fe->memfd };

	if (!two) {
		r[0] = fe_region(fe, 0, MEM_SIZE);
		return fe_send_mem(fe, 1, r, 1, fds, 1);
	}
	r[0] = fe_region(fe, 0, SPLIT);
	r[1] = fe_region(fe, SPLIT, MEM_SIZE - SPLIT);
	return fe_send_mem(fe, 2, r, 2, fds, 2);
}

static int fe_send_addr(struct fe *fe, uint32_t idx, uint64_t desc, uint64_t avail, uint64_t used)
{
	struct vhost_vring_addr a = { .index = idx, .desc_user_addr = desc, .used_user_addr = used,
				      .avail_user_addr = avail };

	return fe_send(fe, VHOST_USER_SET_VRING_ADDR, F_REQ, &a, sizeof(a), NULL, 0);
}

/* The ring's own memory as a fresh driver leaves it; used->idx starts at base too. */
static void fe_ring_init(struct fe *fe, unsigned r, uint16_t base)
{
	struct fe_vq *q = &fe->vq[r];

	fe_vq_reset(fe, r);
	if (fe->packed) {
		/*
		 * Every descriptor as the previous lap left it, used: both bits 0
		 * before a lap with wrap counter 1, both 1 before one with 0.
		 */
		memset(q->pd, 0, QSIZE * sizeof(*q->pd));
		if (!(base >> 15))
			for (unsigned i = 0; i < QSIZE; i++)
				q->pd[i].flags = (1u << VRING_PACKED_DESC_F_AVAIL) |
						 (1u << VRING_PACKED_DESC_F_USED);
		/* Notifications wanted for every used buffer; the device's area is its own. */
		*q->pdrv = (struct vring_packed_desc_event){ 0, VRING_PACKED_EVENT_FLAG_ENABLE };
		*q->pdev = (struct vring_packed_desc_event){ 0, 0 };
		q->ppos = q->pused = base & 0x7fff;
		q->pwrap = q->puwrap = base >> 15;
		return;
	}
	q->avail_idx = q->used_seen = base;
	q->avail->flags = 0;
	q->avail->idx = base;
	q->used->flags = 0;
	q->used->idx = base;
}

static int fe_ring_msgs(struct fe *fe, unsigned r, uint32_t num, uint16_t base, uint64_t desc,
			uint64_t avail, uint64_t used)
{
	uint64_t idx = r;
	int err;

	err = fe_send_state(fe, VHOST_USER_SET_VRING_NUM, F_REQ, r, num);
	err = err ? err : fe_send_state(fe, VHOST_USER_SET_VRING_BASE, F_REQ, r, base);
	err = err ? err : fe_send_addr(fe, r, desc, avail, used);
	err = err ? err : fe_send(fe, VHOST_USER_SET_VRING_CALL, F_REQ, &idx, 8, &fe->call[r], 1);
	err = err ? err : fe_send(fe, VHOST_USER_SET_VRING_KICK, F_REQ, &idx, 8, &fe->kick[r], 1);
	return err;
}

static int fe_ring_default(struct fe *fe, unsigned r, uint16_t base)
{
	fe_ring_init(fe, r, base);
	return fe_ring_msgs(fe, r, QSIZE, base, fe_addr(fe, DESC_OFF(r)), fe_addr(fe, AVAIL_OFF(r)),
			    fe_addr(fe, USED_OFF(r)));
}

struct seg {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
};

/* Packed descriptor flags that make a descriptor available in the lap wrap. */
static uint16_t pk_avail(bool wrap, uint16_t flags)
{
	return (uint16_t)(flags | (wrap ? 1u << VRING_PACKED_DESC_F_AVAIL : 1u << VRING_PACKED_DESC_F_USED));
}

static void pk_advance(struct fe_vq *q, unsigned n)
{
	q->ppos = (uint16_t)(q->ppos + n);
	if (q->ppos >= QSIZE) {
		q->ppos = (uint16_t)(q->ppos - QSIZE);
		q->pwrap = !q->pwrap;
	}
	q->pinflight += n;
}

/*
 * Make a chain of n descriptors available at the next position, under buffer
 * id: the rest first, the head's flags last with a release store (2.7.6).
 * The caller checked there is room. Returns the head's position.
 */
static uint16_t pk_chain(struct fe *fe, unsigned r, const struct seg *s, unsigned n, uint16_t id)
{
	struct fe_vq *q = &fe->vq[r];
	uint16_t head = q->ppos, pos = head, hflags = 0;
	bool wrap = q->pwrap;

	for (unsigned i = 0; i < n; i++) {
		uint16_t f = pk_avail(wrap, (uint16_t)(s[i].flags | (i + 1 < n ? VRING_DESC_F_NEXT : 0)));

		q->pd[pos].addr = s[i].addr;
		q->pd[pos].len = s[i].len;
		q->pd[pos].id = id;
		if (i)
			q->pd[pos].flags = f;
		else
			hflags = f;
		if (++pos == QSIZE) {
			pos = 0;
			wrap = !wrap;
		}
	}
	__atomic_store_n(&q->pd[head].flags, hflags, __ATOMIC_RELEASE);
	q->nchain[id] = (uint16_t)n;
	q->outstanding++;
	pk_advance(q, n);
	return head;
}

/*
 * The next used descriptor of ring r: 1 with *id and *len (its chain is then
 * given back), 0 when there is none, -1 when the device wrote one that names
 * no chain in flight.
 */
static int pk_used(struct fe *fe, unsigned r, uint16_t *id, uint32_t *len)
{
	struct fe_vq *q = &fe->vq[r];
	struct vring_packed_desc *d = &q->pd[q->pused];
	uint16_t f = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
	bool a = f & (1u << VRING_PACKED_DESC_F_AVAIL), u = f & (1u << VRING_PACKED_DESC_F_USED);
	unsigned n;

	/* Nothing in flight: what lies ahead is last lap's, not news. */
	if (!q->outstanding || a != q->puwrap || u != q->puwrap)
		return 0;
	*id = d->id;
	*len = d->len;
	if (*id >= QSIZE || !q->nchain[*id]) {
		fprintf(stderr, "ring %u: used id %u at %u was not posted (flags %#x len %u, ppos %u pinflight %u out %u)\n", r, *id, q->pused, f, *len, q->ppos, q->pinflight, q->outstanding);
		return -1;
	}
	n = q->nchain[*id];
	q->nchain[*id] = 0;
	q->outstanding--;
	q->pinflight -= n;
	q->pused = (uint16_t)(q->pused + n);
	if (q->pused >= QSIZE) {
		q->pused = (uint16_t)(q->pused - QSIZE);
		q->puwrap = !q->puwrap;
	}
	return 1;
}

static void fe_publish(struct fe *fe, unsigned r)
{
	/* Packed: each chain was published by its head's flags. */
	if (fe->packed)
		return;
	__atomic_store_n(&fe->vq[r].avail->idx, fe->vq[r].avail_idx, __ATOMIC_RELEASE);
}

static void fe_rx_post(struct fe *fe, uint16_t id)
{
	struct fe_vq *q = &fe->vq[0];

	if (fe->packed) {
		pk_chain(fe, 0, &(struct seg){ fe_addr(fe, RXBUF_OFF + (uint64_t)id * RXBUF_LEN),
					      RXBUF_LEN, VRING_DESC_F_WRITE }, 1, id);
		return;
	}
	q->desc[id] = (struct vring_desc){ fe_addr(fe, RXBUF_OFF + (uint64_t)id * RXBUF_LEN), RXBUF_LEN,
					   VRING_DESC_F_WRITE, 0 };
	q->nchain[id] = 1;
	q->outstanding++;
	q->avail->ring[q->avail_idx++ & (QSIZE - 1)] = id;
}

static void fe_rx_post_all(struct fe *fe)
{
	for (unsigned i = 0; i < QSIZE; i++)
		fe_rx_post(fe, (uint16_t)i);
	fe_publish(fe, 0);
}

/* Steps [from, to) of the handshake a good frontend does. */
static bool fe_hs(struct fe *fe, const struct hs *o, int from, int to)
{
	bool proto = o->features & BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	int st, err = 0;
	uint64_t status;

	for (st = from; st < to && !err; st++) {
		switch (st) {
		case HS_OWNER:
			err = fe_send(fe, VHOST_USER_SET_OWNER, F_REQ, NULL, 0, NULL, 0);
			break;
		case HS_GET_FEATURES:
			err = fe_get_u64(fe, VHOST_USER_GET_FEATURES, &fe->offered);
			if (!err && (fe->offered & MUST_OFFER) != MUST_OFFER) {
				fprintf(stderr, "GET_FEATURES 0x%llx lacks documented features\n",
					(unsigned long long)fe->offered);
				err = -EPROTO;
			}
			break;
		case HS_PROTOCOL:
			if (!proto)
				break;
			err = fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &fe->poffered);
			err = err ? err : fe_send_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, F_REQ, o->protocol);
			fe->protocol = o->protocol;
			break;
		case HS_SET_FEATURES:
			err = fe_send_u64(fe, VHOST_USER_SET_FEATURES, F_REQ, o->features);
			fe->features = o->features;
			fe->packed = o->features & BIT(VIRTIO_F_RING_PACKED);
			break;
		case HS_MEM:
			err = fe_mem_table(fe, o->two_regions);
			break;
		case HS_RING0:
		case HS_RING1:
			err = fe_ring_default(fe, (unsigned)(st - HS_RING0), o->base[st - HS_RING0]);
			break;
		case HS_ENABLE:
			if (o->post_rx)
				fe_rx_post_all(fe);
			if (!proto)
				break;
			err = fe_send_state(fe, VHOST_USER_SET_VRING_ENABLE, F_REQ, 0, 1);
			if (fe->protocol & BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK)) {
				/* The ack means every message before it was handled too. */
				err = err ? err : fe_send_state(fe, VHOST_USER_SET_VRING_ENABLE, F_ACK, 1, 1);
				err = err ? err : fe_ack(fe, VHOST_USER_SET_VRING_ENABLE, &status);
				if (!err && status) {
					fprintf(stderr, "SET_VRING_ENABLE refused\n");
					err = -EPROTO;
				}
			} else {
				err = err ? err : fe_send_state(fe, VHOST_USER_SET_VRING_ENABLE, F_REQ, 1, 1);
			}
			break;
		default:
			break;
		}
	}
	if (err)
		fprintf(stderr, "handshake step %d: %s\n", st - 1, strerror(-err));
	CHECK(!err);
	return !err;
}

static bool fe_wait_ready(struct fe *fe)
{
	bool ok = srv_wait(WAIT_MS, p_ready, &fe->conn_id);

	CHECK(ok);
	return ok;
}

static bool fe_ready(struct fe *fe, const struct hs *o)
{
	return fe_hs(fe, o, HS_OWNER, HS_END) && fe_wait_ready(fe);
}

/* ------------------------------------------------------- the datapath */

/* 16-aligned bytes in the scratch area (region 1 in the two-region layout). */
static uint64_t fe_scratch(struct fe *fe, uint32_t len)
{
	uint64_t a = fe_addr(fe, SCRATCH_OFF + fe->scratch);

	fe->scratch += (len + 15) & ~15u;
	if (fe->scratch > SCRATCH_LEN) {
		fprintf(stderr, "scratch area exhausted\n");
		abort();
	}
	return a;
}

static void fe_desc(struct fe *fe, unsigned r, uint16_t i, uint64_t addr, uint32_t len,
		    uint16_t flags, uint16_t next)
{
	fe->vq[r].desc[i] = (struct vring_desc){ addr, len, flags, next };
}

/* Make head available and tell the vhost thread, as a kick would. */
static void fe_push(struct fe *fe, unsigned r, uint16_t head)
{
	struct fe_vq *q = &fe->vq[r];

	q->avail->ring[q->avail_idx++ & (QSIZE - 1)] = head;
	fe_publish(fe, r);
	if (!(__atomic_load_n(&q->used->flags, __ATOMIC_ACQUIRE) & VRING_USED_F_NO_NOTIFY)) {
		uint64_t one = 1;

		if (write(fe->kick[r], &one, sizeof(one)) < 0)
			fe->stray++;
	}
	srv_wake();
}

/* Give back transmit chains the vhost has used; checks each entry. */
static unsigned fe_tx_reclaim(struct fe *fe)
{
	struct fe_vq *q = &fe->vq[1];
	uint16_t idx;
	unsigned n = 0;

	if (fe->packed) {
		uint16_t id;
		uint32_t len;
		int got;

		while ((got = pk_used(fe, 1, &id, &len)) > 0)
			n++;
		CHECK(got == 0);
		return n;
	}
	idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
	if ((uint16_t)(idx - q->used_seen) > q->outstanding) {
		fprintf(stderr, "tx used idx %u moved by more than %u outstanding\n", idx, q->outstanding);
		CHECK(0);
		q->used_seen = idx;
		return 0;
	}
	while (q->used_seen != idx) {
		struct vring_used_elem e = q->used->ring[q->used_seen++ & (QSIZE - 1)];
		uint16_t d;

		if (e.id >= QSIZE || !q->nchain[e.id]) {
			fprintf(stderr, "tx used id %u was not posted\n", e.id);
			CHECK(0);
			continue;
		}
		d = (uint16_t)e.id;
		for (unsigned i = q->nchain[e.id]; i; i--) {
			q->free[q->nfree++] = d;
			d = q->pnext[d];
		}
		q->nchain[e.id] = 0;
		q->outstanding--;
		n++;
	}
	return n;
}

/* A chain of n descriptors from the free list, linked in order; returns the head or -1. */
static int fe_chain(struct fe *fe, unsigned r, const struct seg *s, unsigned n)
{
	struct fe_vq *q = &fe->vq[r];
	uint16_t d[QSIZE];

	if (q->nfree < n)
		fe_tx_reclaim(fe);
	if (q->nfree < n || !n)
		return -1;
	for (unsigned i = 0; i < n; i++)
		d[i] = q->free[--q->nfree];
	for (unsigned i = 0; i < n; i++) {
		bool more = i + 1 < n;

		fe_desc(fe, r, d[i], s[i].addr, s[i].len,
			(uint16_t)(s[i].flags | (more ? VRING_DESC_F_NEXT : 0)), more ? d[i + 1] : 0);
		q->pnext[d[i]] = more ? d[i + 1] : 0;
	}
	q->nchain[d[0]] = (uint16_t)n;
	q->outstanding++;
	return d[0];
}

/*
 * Post frame k on the transmit ring, laid out one of three legal ways: header
 * and data in one buffer, header and data apart, or both through an
 * indirect table.
 */
/*
 * The same three layouts on a packed ring, under the head position as buffer
 * id (unique while the chain is in flight), in that id's transmit slot.
 */
static bool pk_tx_frame(struct fe *fe, uint32_t seed, unsigned k, uint32_t len, unsigned mode)
{
	struct fe_vq *q = &fe->vq[1];
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };
	uint16_t id = q->ppos;
	uint64_t slot = fe_addr(fe, TXBUF_OFF + (uint64_t)id * TXBUF_LEN);
	uint8_t *p = fe_ptr(fe, slot);

	if (QSIZE - q->pinflight < 2)
		fe_tx_reclaim(fe);
	if (QSIZE - q->pinflight < 2)
		return false;
	switch (mode) {
	case 0:
		memcpy(p, &h, HDR);
		frame_fill(p + HDR, len, seed, k);
		pk_chain(fe, 1, &(struct seg){ slot, HDR + len, 0 }, 1, id);
		break;
	case 1: {
		struct seg sg[2] = { { slot, HDR, 0 }, { slot + 64, len, 0 } };

		memcpy(p, &h, HDR);
		frame_fill(p + 64, len, seed, k);
		pk_chain(fe, 1, sg, 2, id);
		break;
	}
	default: {
		struct vring_packed_desc *t = (struct vring_packed_desc *)p;

		/* In a table the order is the chain: no NEXT needed. */
		t[0] = (struct vring_packed_desc){ slot + 64, HDR, 0, 0 };
		t[1] = (struct vring_packed_desc){ slot + 128, len, 0, 0 };
		memcpy(p + 64, &h, HDR);
		frame_fill(p + 128, len, seed, k);
		pk_chain(fe, 1, &(struct seg){ slot, 2 * sizeof(*t), VRING_DESC_F_INDIRECT }, 1, id);
		break;
	}
	}
	return true;
}

static bool fe_tx_frame(struct fe *fe, uint32_t seed, unsigned k, uint32_t len, unsigned mode)
{
	struct fe_vq *q = &fe->vq[1];
	struct virtio_net_hdr_mrg_rxbuf h = { 0 };
	uint16_t d0, d1;
	uint8_t *p0;
	int head;

	if (fe->packed)
		return pk_tx_frame(fe, seed, k, len, mode);
	if (q->nfree < 2)
		fe_tx_reclaim(fe);
	if (q->nfree < 2)
		return false;
	d0 = q->free[q->nfree - 1];
	d1 = q->free[q->nfree - 2];
	p0 = fe_ptr(fe, fe_addr(fe, TXBUF_OFF + (uint64_t)d0 * TXBUF_LEN));
	switch (mode) {
	case 0:
		memcpy(p0, &h, HDR);
		frame_fill(p0 + HDR, len, seed, k);
		head = fe_chain(fe, 1, &(struct seg){ fe_addr(fe, TXBUF_OFF + (uint64_t)d0 * TXBUF_LEN),
						     HDR + len, 0 }, 1);
		break;
	case 1: {
		uint8_t *p1 = fe_ptr(fe, fe_addr(fe, TXBUF_OFF + (uint64_t)d1 * TXBUF_LEN));
		struct seg s[2] = { { fe_addr(fe, TXBUF_OFF + (uint64_t)d0 * TXBUF_LEN), HDR, 0 },
				    { fe_addr(fe, TXBUF_OFF + (uint64_t)d1 * TXBUF_LEN), len, 0 } };

		memcpy(p0, &h, HDR);
		frame_fill(p1, len, seed, k);
		head = fe_chain(fe, 1, s, 2);
		break;
	}
	default: {
		uint64_t slot = fe_addr(fe, TXBUF_OFF + (uint64_t)d0 * TXBUF_LEN);
		struct vring_desc *t = (struct vring_desc *)p0;

		t[0] = (struct vring_desc){ slot + 64, HDR, VRING_DESC_F_NEXT, 1 };
		t[1] = (struct vring_desc){ slot + 128, len, 0, 0 };
		memcpy(p0 + 64, &h, HDR);
		frame_fill(p0 + 128, len, seed, k);
		head = fe_chain(fe, 1, &(struct seg){ slot, 2 * sizeof(struct vring_desc),
						     VRING_DESC_F_INDIRECT }, 1);
		break;
	}
	}
	if (head < 0)
		return false;
	q->avail->ring[q->avail_idx++ & (QSIZE - 1)] = (uint16_t)head;
	return true;
}

static bool rec_matches(const struct rxrec *r, uint32_t len, uint64_t hash, const char *what,
			unsigned k)
{
	if (r->len == len && r->hash == hash && r->seg_ok)
		return true;
	fprintf(stderr, "%s frame %u: len %u (want %u), %s, segments %s\n", what, k, r->len, len,
		r->hash == hash ? "bytes equal" : "bytes differ", r->seg_ok ? "consistent" : "inconsistent");
	return false;
}

/*
 * What fe_tx_traffic() sends: by default every layout in turn (one buffer,
 * header apart, indirect) at mixed sizes. tx_single sends every frame as one
 * descriptor, which is how the vhost's four-at-a-time receive step finds
 * them; tx_len, when not 0, gives every frame that length.
 */
static bool tx_single;
static uint32_t tx_len;

/* Send n frames to the vhost and check each as the program received it. */
static void fe_tx_traffic(struct fe *fe, unsigned n, uint32_t seed)
{
	struct vuser_port_stats s0, s1;
	uint64_t bytes = 0;
	long long deadline = now_ms() + WAIT_MS;
	unsigned k = 0, modes = fe->features & BIT(VIRTIO_RING_F_INDIRECT_DESC) ? 3 : 2;
	bool ok;

	srv_settle();
	srv_snap(NULL, &s0);
	srv_log_reset();
	while (k < n && now_ms() < deadline) {
		uint32_t len = tx_len ? tx_len : frame_len(seed, k);

		if (fe_tx_frame(fe, seed, k, len, tx_single ? 0 : k % modes)) {
			bytes += len;
			k++;
			continue;
		}
		fe_publish(fe, 1);
		srv_wake();
		sleep_ms(1);
	}
	fe_publish(fe, 1);
	srv_wake();
	CHECK_EQ(k, n);
	ok = srv_wait(WAIT_MS, p_nlog, &n);
	CHECK(ok);
	pthread_mutex_lock(&S.mu);
	CHECK_EQ(S.nlog, n);
	for (unsigned i = 0; i < S.nlog && i < n; i++)
		if (!rec_matches(&S.log[i], tx_len ? tx_len : frame_len(seed, i),
				 frame_hash(seed, i, tx_len ? tx_len : frame_len(seed, i)), "tx", i)) {
			CHECK(0);
			break;
		}
	pthread_mutex_unlock(&S.mu);
	/* The vhost publishes used entries before it hands the frames over. */
	fe_tx_reclaim(fe);
	CHECK_EQ(fe->vq[1].outstanding, 0);
	srv_snap(NULL, &s1);
	CHECK_EQ(s1.rx[0].packets - s0.rx[0].packets, n);
	CHECK_EQ(s1.rx[0].bytes - s0.rx[0].bytes, bytes);
	CHECK_EQ(s1.rx[0].drops, s0.rx[0].drops);
	CHECK_EQ(s1.rx[0].errors, s0.rx[0].errors);
}

/*
 * Receive frames k0 .. k0+n-1 of the vhost's current job, merged or not, and
 * check every byte; each buffer goes back on the ring once read.
 */
static uint8_t rx_got[FRAME_MAX], rx_want[FRAME_MAX];

/*
 * One used receive buffer (id, elen bytes), already taken off the ring: add
 * it to the frame being merged, check the frame when it is whole, post the
 * buffer again. False when the device wrote something impossible.
 */
static bool rx_entry(struct fe *fe, uint16_t id, uint32_t elen, uint32_t seed, const uint32_t *sizes,
		     unsigned k0, unsigned *done, unsigned *need, unsigned *have, uint32_t *len)
{
	bool mrg = fe->features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	const uint8_t *p = fe_ptr(fe, fe_addr(fe, RXBUF_OFF + (uint64_t)id * RXBUF_LEN));
	uint32_t off = 0;

	if (elen > RXBUF_LEN) {
		fprintf(stderr, "rx used id %u len %u: beyond the buffer\n", id, elen);
		return false;
	}
	if (!*need) {
		unsigned nb = p[10] | (unsigned)p[11] << 8;

		if (elen < HDR || !nb || nb > 64 || (!mrg && nb != 1)) {
			fprintf(stderr, "rx frame %u: len %u num_buffers %u\n", k0 + *done, elen, nb);
			return false;
		}
		*need = nb;
		*have = 0;
		*len = 0;
		off = HDR;
	}
	if (*len + elen - off > FRAME_MAX)
		return false;
	memcpy(rx_got + *len, p + off, elen - off);
	*len += elen - off;
	fe_rx_post(fe, id);
	if (++*have == *need) {
		unsigned k = k0 + *done;
		uint32_t wl = sizes ? sizes[k] : frame_len(seed, k);

		frame_fill(rx_want, wl, seed, k);
		(*done)++;
		*need = 0;
		if (*len != wl || memcmp(rx_got, rx_want, wl)) {
			fprintf(stderr, "rx frame %u: %u bytes (want %u), %s\n", k, *len, wl,
				*len == wl ? "bytes differ" : "length differs");
			return false;
		}
	}
	return true;
}

static unsigned fe_rx_expect(struct fe *fe, uint32_t seed, const uint32_t *sizes, unsigned k0,
			     unsigned n)
{
	struct fe_vq *q = &fe->vq[0];
	bool bad = false;
	long long deadline = now_ms() + WAIT_MS;
	unsigned done = 0, need = 0, have = 0;
	uint32_t len = 0;

	while (done < n && !bad && now_ms() < deadline) {
		uint16_t idx;

		if (fe->packed) {
			uint16_t id;
			uint32_t elen;
			int got = pk_used(fe, 0, &id, &elen);

			if (got < 0) {
				bad = true;
				break;
			}
			if (!got) {
				struct pollfd pf = { .fd = fe->call[0], .events = POLLIN };
				uint64_t c;

				if (poll(&pf, 1, 2) > 0 && read(fe->call[0], &c, sizeof(c)) == sizeof(c))
					fe->calls += c;
				continue;
			}
			if (!rx_entry(fe, id, elen, seed, sizes, k0, &done, &need, &have, &len))
				bad = true;
			srv_wake();
			continue;
		}
		idx = __atomic_load_n(&q->used->idx, __ATOMIC_ACQUIRE);
		if (idx == q->used_seen) {
			struct pollfd pf = { .fd = fe->call[0], .events = POLLIN };
			uint64_t c;

			if (poll(&pf, 1, 2) > 0 && read(fe->call[0], &c, sizeof(c)) == sizeof(c))
				fe->calls += c;
			continue;
		}
		if ((uint16_t)(idx - q->used_seen) > q->outstanding) {
			fprintf(stderr, "rx used idx moved by %u with %u buffers posted\n",
				(uint16_t)(idx - q->used_seen), q->outstanding);
			bad = true;
			break;
		}
		while (q->used_seen != idx && !bad) {
			struct vring_used_elem e = q->used->ring[q->used_seen++ & (QSIZE - 1)];

			if (e.id >= QSIZE || !q->nchain[e.id]) {
				fprintf(stderr, "rx used id %u len %u: not a posted buffer\n", e.id, e.len);
				bad = true;
				break;
			}
			q->nchain[e.id] = 0;
			q->outstanding--;
			if (!rx_entry(fe, (uint16_t)e.id, e.len, seed, sizes, k0, &done, &need, &have, &len))
				bad = true;
		}
		fe_publish(fe, 0);
		srv_wake();
	}
	if (done != n || bad)
		fprintf(stderr, "rx: %u of %u frames%s\n", done, n, bad ? ", a bad one" : "");
	CHECK(!bad);
	CHECK_EQ(done, n);
	return done;
}

static void fe_rx_traffic(struct fe *fe, unsigned n, uint32_t seed, const uint32_t *sizes)
{
	struct vuser_port_stats s0, s1;
	uint64_t bytes = 0, c, calls;

	for (unsigned k = 0; k < n; k++)
		bytes += sizes ? sizes[k] : frame_len(seed, k);
	srv_snap(NULL, &s0);
	if (read(fe->call[0], &c, sizeof(c)) < 0)
		c = 0;
	calls = fe->calls;
	srv_job(n, seed, sizes);
	fe_rx_expect(fe, seed, sizes, 0, n);
	CHECK(srv_wait(WAIT_MS, p_job_done, NULL));
	srv_settle();
	srv_snap(NULL, &s1);
	CHECK_EQ(s1.tx[0].packets - s0.tx[0].packets, n);
	CHECK_EQ(s1.tx[0].bytes - s0.tx[0].bytes, bytes);
	CHECK_EQ(s1.tx[0].drops, s0.tx[0].drops);
	CHECK_EQ(s1.tx[0].errors, s0.tx[0].errors);
	/* The driver asked for interrupts (avail flags 0): it must have had at least one. */
	if (read(fe->call[0], &c, sizeof(c)) == sizeof(c))
		fe->calls += c;
	CHECK(fe->calls > calls);
	srv_job_cancel();
}

static void fe_traffic(struct fe *fe, unsigned n, uint32_t seed)
{
	fe_tx_traffic(fe, n, seed);
	fe_rx_traffic(fe, n, seed ^ 0x5a5a5a5au, NULL);
}

/* Stop the rings as QEMU does and check where the vhost says each one stopped. */
static void fe_close_good(struct fe *fe)
{
	struct vhost_vring_state st;

	if (fe->features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		CHECK(!fe_send_state(fe, VHOST_USER_SET_VRING_ENABLE, F_REQ, 0, 0));
		CHECK(!fe_send_state(fe, VHOST_USER_SET_VRING_ENABLE, F_REQ, 1, 0));
	}
	for (unsigned r = 0; r < 2; r++) {
		CHECK(!fe_send_state(fe, VHOST_USER_GET_VRING_BASE, F_REQ, r, 0));
		CHECK(!fe_reply(fe, VHOST_USER_GET_VRING_BASE, &st, sizeof(st)));
		CHECK_EQ(st.index, r);
		/* rx: every buffer it filled and we read; tx: every chain we posted. */
		if (fe->packed)
			CHECK_EQ(st.num, r ? (uint32_t)(fe->vq[1].ppos | fe->vq[1].pwrap << 15)
					   : (uint32_t)(fe->vq[0].pused | fe->vq[0].puwrap << 15));
		else
			CHECK_EQ(st.num, r ? fe->vq[1].avail_idx : fe->vq[0].used_seen);
	}
	CHECK_EQ(fe->stray, 0);
	fe_close(fe);
}

/* ---------------------------------------------------- a good frontend */

static unsigned good_count;

static void good_session(void)
{
	struct vuser_vhost_info i0, i1;
	struct hs o = hs_default();
	struct fe fe;
	uint64_t conn;

	good_count++;
	srv_snap(&i0, NULL);
	if (!fe_open(&fe)) {
		CHECK(0);
		return;
	}
	conn = fe.conn_id;
	/* Ring indexes that wrap during the session, and both memory layouts. */
	o.base[0] = (uint16_t)(good_count * 7919u);
	o.base[1] = (uint16_t)(0xffff - good_count % 64);
	o.two_regions = good_count % 3 == 1;
	/* Every other one packed, from a position and wrap counter of its own. */
	if (good_count % 2) {
		o.features |= BIT(VIRTIO_F_RING_PACKED);
		o.base[0] = (uint16_t)(o.base[0] % QSIZE | (o.base[0] & 0x8000));
		o.base[1] = (uint16_t)(o.base[1] % QSIZE | (o.base[1] & 0x8000));
	}
	if (good_count % 4 == 3)
		o.features &= ~BIT(VHOST_USER_F_PROTOCOL_FEATURES);
	if (fe_ready(&fe, &o))
		fe_traffic(&fe, GOOD_FRAMES, good_count);
	fe_close_good(&fe);
	CHECK(srv_wait(WAIT_MS, p_gone, &conn));
	srv_snap(&i1, NULL);
	CHECK_EQ(i1.violations, i0.violations);
	CHECK_EQ(i1.connections, i0.connections + 1);
	CHECK_EQ(i1.mem_regions, 0);
}

/* ---------------------------------------------------------------- cases */

enum { EX_CUT, EX_ALIVE };

struct expect {
	int kind;
	const char *word;      /* in the reason the vhost gives */
	int eof_ms;            /* the cut-off must come within this */
	int min_ms;            /* and not before this (timeouts) */
	int ring_err;          /* ring whose error counter a datapath cut-off bumps; -1: none */
	unsigned sessions;     /* connections the case makes */
};

static void cut(struct expect *ex, const char *word)
{
	ex->kind = EX_CUT;
	ex->word = word;
}

static void cut_dp(struct expect *ex, unsigned ring, const char *word)
{
	cut(ex, word);
	ex->ring_err = (int)ring;
}

/* Handshake up to (not including) step, with the default settings. */
static bool hs_to(struct fe *fe, int step)
{
	struct hs o = hs_default();

	return fe_hs(fe, &o, HS_OWNER, step);
}

/* ......................................................... memory tables */

static void c_mem_zero(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, MEM_SIZE);

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 0, &r, 1, &fe->memfd, 1);
	cut(ex, "no regions");
}

static void fill_pieces(struct fe *fe, struct vhost_user_memory_region *r, int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		r[i] = fe_region(fe, (uint64_t)i * (MEM_SIZE / 8), MEM_SIZE / 8);
		fds[i] = fe->memfd;
	}
}

static void c_mem_nine(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r[8];
	int fds[8];

	hs_to(fe, HS_MEM);
	fill_pieces(fe, r, fds, 8);
	fe_send_mem(fe, 9, r, 8, fds, 8);
	cut(ex, "more than 8");
}

static void c_mem_nine_fds(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r[8];
	int fds[9];

	hs_to(fe, HS_MEM);
	fill_pieces(fe, r, fds, 8);
	fds[8] = fe->memfd;
	fe_send_mem(fe, 8, r, 8, fds, 9);
	cut(ex, "more than 8 fds");
}

static void c_mem_fewer_fds(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r[2] = { fe_region(fe, 0, SPLIT),
						 fe_region(fe, SPLIT, MEM_SIZE - SPLIT) };

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 2, r, 2, &fe->memfd, 1);
	cut(ex, "different number of fds");
}

static void c_mem_more_fds(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, MEM_SIZE);
	int fds[2] = { fe->memfd, fe->memfd };

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 1, &r, 1, fds, 2);
	cut(ex, "different number of fds");
}

static void c_mem_short(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, MEM_SIZE);
	int fds[2] = { fe->memfd, fe->memfd };

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 2, &r, 1, fds, 2);
	cut(ex, "shorter than its region count");
}

static void c_mem_overlap(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r[2] = { fe_region(fe, 0, SPLIT),
						 fe_region(fe, SPLIT / 2, SPLIT) };
	int fds[2] = { fe->memfd, fe->memfd };

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 2, r, 2, fds, 2);
	cut(ex, "overlaps another");
}

static void c_mem_offset_overflow(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, 0x2000);

	r.mmap_offset = UINT64_MAX - 0xfff;
	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 1, &r, 1, &fe->memfd, 1);
	cut(ex, "overflows");
}

static void c_mem_gpa_wrap(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, 0x2000);

	r.guest_phys_addr = UINT64_MAX - 0xfff;
	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 1, &r, 1, &fe->memfd, 1);
	cut(ex, "overflows");
}

static void c_mem_size0(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, 0);

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 1, &r, 1, &fe->memfd, 1);
	cut(ex, "is empty");
}

static void c_mem_beyond_file(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, 2ull * MEM_SIZE);

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 1, &r, 1, &fe->memfd, 1);
	cut(ex, "larger than its file");
}

static void c_mem_unmappable(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r = fe_region(fe, 0, MEM_SIZE);
	int efd = eventfd(0, EFD_CLOEXEC);

	hs_to(fe, HS_MEM);
	fe_send_mem(fe, 1, &r, 1, &efd, 1);
	close(efd);
	cut(ex, "cannot be mapped");
}

static void c_mem_remap_loses_ring(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	/* Only the buffers: the running rings at the bottom fall out of the table. */
	struct vhost_user_memory_region r = fe_region(fe, TXBUF_OFF, MEM_SIZE - TXBUF_OFF);

	fe_ready(fe, &o);
	fe_send_mem(fe, 1, &r, 1, &fe->memfd, 1);
	cut(ex, "ring outside");
}

/* ......................................................... ring setup */

static void c_ring_unmapped(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_ring_init(fe, 0, 0);
	fe_ring_msgs(fe, 0, QSIZE, 0, fe_addr(fe, MEM_SIZE + 0x10000), fe_addr(fe, AVAIL_OFF(0)),
		     fe_addr(fe, USED_OFF(0)));
	cut(ex, "ring outside");
}

static void c_ring_off_end(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_ring_init(fe, 0, 0);
	fe_ring_msgs(fe, 0, QSIZE, 0, fe_addr(fe, DESC_OFF(0)), fe_addr(fe, MEM_SIZE - 0x100),
		     fe_addr(fe, USED_OFF(0)));
	cut(ex, "ring outside");
}

static void c_ring_straddle(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();

	o.two_regions = true;
	fe_hs(fe, &o, HS_OWNER, HS_RING0);
	fe_ring_init(fe, 0, 0);
	fe_ring_msgs(fe, 0, QSIZE, 0, fe_addr(fe, SPLIT - 0x800), fe_addr(fe, AVAIL_OFF(0)),
		     fe_addr(fe, USED_OFF(0)));
	cut(ex, "across regions");
}

static void c_ring_misaligned(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_ring_init(fe, 0, 0);
	fe_ring_msgs(fe, 0, QSIZE, 0, fe_addr(fe, DESC_OFF(0) + 8), fe_addr(fe, AVAIL_OFF(0)),
		     fe_addr(fe, USED_OFF(0)));
	cut(ex, "misaligned");
}

static void c_ring_used_misaligned(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_ring_init(fe, 0, 0);
	fe_ring_msgs(fe, 0, QSIZE, 0, fe_addr(fe, DESC_OFF(0)), fe_addr(fe, AVAIL_OFF(0)),
		     fe_addr(fe, USED_OFF(0) + 2));
	cut(ex, "misaligned");
}

static void c_ring_index(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_state(fe, VHOST_USER_SET_VRING_NUM, F_REQ, 200, QSIZE);
	cut(ex, "does not exist");
}

static void c_kick_index(struct fe *fe, struct expect *ex)
{
	uint64_t u = 5;

	hs_to(fe, HS_RING0);
	fe_send(fe, VHOST_USER_SET_VRING_KICK, F_REQ, &u, 8, &fe->kick[0], 1);
	cut(ex, "does not exist");
}

static void c_ring_size0(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_state(fe, VHOST_USER_SET_VRING_NUM, F_REQ, 0, 0);
	cut(ex, "size zero");
}

/* Legal for a packed ring, so judged when the split ring starts. */
static void c_ring_size300(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_ring_init(fe, 0, 0);
	fe_ring_msgs(fe, 0, 300, 0, fe_addr(fe, DESC_OFF(0)), fe_addr(fe, AVAIL_OFF(0)),
		     fe_addr(fe, USED_OFF(0)));
	cut(ex, "power of two");
}

static void c_ring_size_huge(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_state(fe, VHOST_USER_SET_VRING_NUM, F_REQ, 0, 65536);
	cut(ex, "above 32768");
}

static void c_ring_base_big(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_state(fe, VHOST_USER_SET_VRING_BASE, F_REQ, 0, 0x10000);
	cut(ex, "16-bit");
}

static void c_kick_before_mem(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_MEM);
	fe_send_state(fe, VHOST_USER_SET_VRING_NUM, F_REQ, 0, QSIZE);
	fe_send_addr(fe, 0, fe_addr(fe, DESC_OFF(0)), fe_addr(fe, AVAIL_OFF(0)), fe_addr(fe, USED_OFF(0)));
	fe_send(fe, VHOST_USER_SET_VRING_KICK, F_REQ, &(uint64_t){ 0 }, 8, &fe->kick[0], 1);
	cut(ex, "before any memory");
}

static void c_num_running(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();

	fe_ready(fe, &o);
	fe_send_state(fe, VHOST_USER_SET_VRING_NUM, F_REQ, 0, 128);
	cut(ex, "running ring");
}

static void c_enable_two(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_ENABLE);
	fe_send_state(fe, VHOST_USER_SET_VRING_ENABLE, F_REQ, 0, 2);
	cut(ex, "other than 0 or 1");
}

/* ......................................................... framing */

static void c_unknown_99(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_GET_FEATURES);
	fe_send(fe, 99, F_REQ, NULL, 0, NULL, 0);
	cut(ex, "unknown request 99");
}

static void c_unknown_0(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_GET_FEATURES);
	fe_send(fe, 0, F_REQ, NULL, 0, NULL, 0);
	cut(ex, "unknown request 0");
}

static void c_unknown_iotlb(struct fe *fe, struct expect *ex)
{
	uint8_t pl[64] = { 0 };

	hs_to(fe, HS_MEM);
	fe_send(fe, VHOST_USER_IOTLB_MSG, F_REQ, pl, sizeof(pl), NULL, 0);
	cut(ex, "unknown request 22");
}

static void c_trunc_payload(struct fe *fe, struct expect *ex)
{
	struct vhost_user_hdr h = { VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 40 };
	uint8_t wire[VHOST_USER_HDR_SIZE + 10] = { 0 };

	hs_to(fe, HS_MEM);
	memcpy(wire, &h, VHOST_USER_HDR_SIZE);
	send_wire(fe->sock, wire, sizeof(wire), NULL, 0);
	cut(ex, "truncated (timed out)");
	ex->min_ms = MSG_TIMEOUT_MS - 100;
	ex->eof_ms = MSG_TIMEOUT_MS + EOF_MS;
}

static void c_trunc_header(struct fe *fe, struct expect *ex)
{
	struct vhost_user_hdr h = { VHOST_USER_SET_FEATURES, VHOST_USER_VERSION, 8 };

	hs_to(fe, HS_SET_FEATURES);
	send_wire(fe->sock, &h, 6, NULL, 0);
	cut(ex, "message header");
	ex->min_ms = MSG_TIMEOUT_MS - 100;
	ex->eof_ms = MSG_TIMEOUT_MS + EOF_MS;
}

static void c_trunc_close(struct fe *fe, struct expect *ex)
{
	struct vhost_user_hdr h = { VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 40 };
	uint8_t wire[VHOST_USER_HDR_SIZE + 10] = { 0 };

	hs_to(fe, HS_MEM);
	memcpy(wire, &h, VHOST_USER_HDR_SIZE);
	send_wire(fe->sock, wire, sizeof(wire), NULL, 0);
	shutdown(fe->sock, SHUT_WR);
	cut(ex, "truncated (connection closed)");
}

static void c_oversized(struct fe *fe, struct expect *ex)
{
	struct vhost_user_hdr h = { VHOST_USER_SET_MEM_TABLE, VHOST_USER_VERSION, 0x10000 };
	uint8_t wire[VHOST_USER_HDR_SIZE + 64] = { 0 };

	hs_to(fe, HS_MEM);
	memcpy(wire, &h, VHOST_USER_HDR_SIZE);
	send_wire(fe->sock, wire, sizeof(wire), NULL, 0);
	cut(ex, "oversized");
}

static void c_wrong_size(struct fe *fe, struct expect *ex)
{
	uint32_t f = 1;

	hs_to(fe, HS_SET_FEATURES);
	fe_send(fe, VHOST_USER_SET_FEATURES, F_REQ, &f, sizeof(f), NULL, 0);
	cut(ex, "payload of 4 bytes");
}

static void c_reply_flag(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_GET_FEATURES);
	fe_send(fe, VHOST_USER_GET_FEATURES, VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, NULL, 0, NULL, 0);
	cut(ex, "bad flags 0x5");
}

static void c_bad_version(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_GET_FEATURES);
	fe_send(fe, VHOST_USER_GET_FEATURES, 0x2, NULL, 0, NULL, 0);
	cut(ex, "bad flags 0x2");
}

static void c_fd_on_owner(struct fe *fe, struct expect *ex)
{
	fe_send(fe, VHOST_USER_SET_OWNER, F_REQ, NULL, 0, &fe->kick[0], 1);
	cut(ex, "SET_OWNER: 1 fds");
}

static void c_kick_two_fds(struct fe *fe, struct expect *ex)
{
	uint64_t u = 0;

	hs_to(fe, HS_RING0);
	fe_send(fe, VHOST_USER_SET_VRING_KICK, F_REQ, &u, 8, fe->kick, 2);
	cut(ex, "2 fds");
}

static void c_kick_nofd_with_fd(struct fe *fe, struct expect *ex)
{
	uint64_t u = VHOST_USER_VRING_NOFD_MASK;

	hs_to(fe, HS_RING0);
	fe_send(fe, VHOST_USER_SET_VRING_KICK, F_REQ, &u, 8, &fe->kick[0], 1);
	cut(ex, "no-fd flag");
}

static void c_kick_missing_fd(struct fe *fe, struct expect *ex)
{
	uint64_t u = 1;

	hs_to(fe, HS_RING0);
	fe_send(fe, VHOST_USER_SET_VRING_CALL, F_REQ, &u, 8, NULL, 0);
	cut(ex, "no-fd flag");
}

static void c_kick_unknown_bits(struct fe *fe, struct expect *ex)
{
	uint64_t u = 1ull << 40;

	hs_to(fe, HS_RING0);
	fe_send(fe, VHOST_USER_SET_VRING_CALL, F_REQ, &u, 8, &fe->call[0], 1);
	cut(ex, "unknown bits");
}

/* ......................................................... negotiation */

static uint64_t lowest_clear(uint64_t v)
{
	for (unsigned b = 0; b < 64; b++)
		if (!(v & BIT(b)))
			return BIT(b);
	return 0;
}

static void c_features_not_offered(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_SET_FEATURES);
	fe_send_u64(fe, VHOST_USER_SET_FEATURES, F_REQ, GOOD_FEATURES | lowest_clear(fe->offered));
	cut(ex, "not offered");
}

static void c_features_no_v1(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_SET_FEATURES);
	fe_send_u64(fe, VHOST_USER_SET_FEATURES, F_REQ, GOOD_FEATURES & ~BIT(VIRTIO_F_VERSION_1));
	cut(ex, "VERSION_1");
}

static void c_protocol_not_offered(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_PROTOCOL);
	CHECK(!fe_get_u64(fe, VHOST_USER_GET_PROTOCOL_FEATURES, &fe->poffered));
	fe_send_u64(fe, VHOST_USER_SET_PROTOCOL_FEATURES, F_REQ, lowest_clear(fe->poffered));
	cut(ex, "not offered");
}

/* GET_CONFIG as a frontend that negotiated CONFIG may send it, then one that lies about its size. */
static void c_get_config_big(struct fe *fe, struct expect *ex)
{
	struct vhost_user_config c = { .offset = 0, .size = 10 };
	struct vuser_vhost_info info;
	struct virtio_net_config nc;

	hs_to(fe, HS_MEM);
	CHECK(!fe_send(fe, VHOST_USER_GET_CONFIG, F_REQ, &c, 12 + c.size, NULL, 0));
	CHECK(!fe_reply(fe, VHOST_USER_GET_CONFIG, &c, 12 + 10));
	memcpy(&nc, c.region, 10);
	srv_snap(&info, NULL);
	CHECK(!memcmp(nc.mac, info.mac, 6));
	CHECK(nc.status & VIRTIO_NET_S_LINK_UP);
	c = (struct vhost_user_config){ .offset = 0, .size = 300 };
	fe_send(fe, VHOST_USER_GET_CONFIG, F_REQ, &c, sizeof(c), NULL, 0);
	cut(ex, "GET_CONFIG");
}

/* Without CONFIG negotiated the request is refused with an empty reply, and the session goes on. */
static void c_get_config_unnegotiated(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	struct vhost_user_config c = { .offset = 0, .size = 10 };

	o.protocol &= ~BIT(VHOST_USER_PROTOCOL_F_CONFIG);
	fe_hs(fe, &o, HS_OWNER, HS_MEM);
	CHECK(!fe_send(fe, VHOST_USER_GET_CONFIG, F_REQ, &c, 12 + c.size, NULL, 0));
	CHECK(!fe_reply(fe, VHOST_USER_GET_CONFIG, &c, 0));
	if (fe_hs(fe, &o, HS_MEM, HS_END) && fe_wait_ready(fe))
		fe_traffic(fe, 10, 17);
	ex->kind = EX_ALIVE;
}

/*
 * After a request that makes the vhost translate running rings again: no
 * frame handed over twice, no used index moved, no cut-off. Returns true
 * when the session is intact.
 */
static bool check_no_replay(struct fe *fe, const char *what)
{
	struct vuser_vhost_info info;
	uint16_t used0, used1;
	unsigned replayed;
	bool ok;

	/* Give a replay time to show: a few passes of the datapath. */
	for (int i = 0; i < 3; i++)
		srv_settle();
	pthread_mutex_lock(&S.mu);
	replayed = S.nlog;
	info = S.info;
	pthread_mutex_unlock(&S.mu);
	used0 = __atomic_load_n(&fe->vq[0].used->idx, __ATOMIC_ACQUIRE);
	used1 = __atomic_load_n(&fe->vq[1].used->idx, __ATOMIC_ACQUIRE);
	ok = !replayed && info.connected && used0 == fe->vq[0].used_seen &&
	     used1 == fe->vq[1].used_seen;
	if (!ok)
		fprintf(stderr,
			"after %s on running rings: %u old frame(s) handed over again; used idx "
			"tx %u rx %u where the frontend had seen %u and %u; %s%s\n",
			what, replayed, used1, used0, fe->vq[1].used_seen, fe->vq[0].used_seen,
			info.connected ? "still connected" : "cut off: ",
			info.connected ? "" : info.last_violation);
	CHECK_EQ(replayed, 0);
	CHECK(info.connected);
	CHECK_EQ(used1, fe->vq[1].used_seen);
	CHECK_EQ(used0, fe->vq[0].used_seen);
	return ok;
}

/* ......................................................... memory slots */

static int fe_send_memreg(struct fe *fe, uint32_t req, uint32_t flags,
			  struct vhost_user_memory_region r, const int *fds, int nfds)
{
	struct vhost_user_memory_single m = { .region = r };

	return fe_send(fe, req, flags, &m, sizeof(m), fds, nfds);
}

/*
 * ADD/REM_MEM_REG and GET_MAX_MEM_SLOTS without CONFIGURE_MEM_SLOTS: the rule
 * table refuses them (REPLY_ACK status 1, an empty reply) without a cut-off,
 * the fd is closed, the table is unchanged, and the session goes on.
 */
static void c_memreg_unnegotiated(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	struct vuser_vhost_info info;
	uint64_t status = 0;

	o.protocol &= ~BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	fe_hs(fe, &o, HS_OWNER, HS_RING0);
	CHECK(!fe_send_memreg(fe, VHOST_USER_ADD_MEM_REG, F_ACK,
			      fe_region(fe, 0, MEM_SIZE), &fe->memfd, 1));
	CHECK(!fe_ack(fe, VHOST_USER_ADD_MEM_REG, &status));
	CHECK_EQ(status, 1);
	status = 0;
	CHECK(!fe_send_memreg(fe, VHOST_USER_REM_MEM_REG, F_ACK, fe_region(fe, 0, MEM_SIZE), NULL, 0));
	CHECK(!fe_ack(fe, VHOST_USER_REM_MEM_REG, &status));
	CHECK_EQ(status, 1);
	CHECK(!fe_send(fe, VHOST_USER_GET_MAX_MEM_SLOTS, F_REQ, NULL, 0, NULL, 0));
	CHECK(!fe_reply(fe, VHOST_USER_GET_MAX_MEM_SLOTS, NULL, 0));
	srv_settle();
	srv_snap(&info, NULL);
	CHECK_EQ(info.mem_regions, 1);
	if (fe_hs(fe, &o, HS_RING0, HS_END) && fe_wait_ready(fe))
		fe_traffic(fe, 10, 18);
	ex->kind = EX_ALIVE;
}

/* The legal use: a table of the low half, the high half added, used, and removed again. */
static void c_memreg_good(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	struct vhost_user_memory_region lo = fe_region(fe, 0, SPLIT), hi = fe_region(fe, SPLIT, MEM_SIZE - SPLIT);
	struct vuser_vhost_info info;
	uint64_t status = 1, slots = 0;
	unsigned one = 1;
	int head;

	fe_hs(fe, &o, HS_OWNER, HS_MEM);
	CHECK(!fe_get_u64(fe, VHOST_USER_GET_MAX_MEM_SLOTS, &slots));
	CHECK_EQ(slots, MEM_SLOTS);
	CHECK(!fe_send_mem(fe, 1, &lo, 1, &fe->memfd, 1));
	CHECK(!fe_send_memreg(fe, VHOST_USER_ADD_MEM_REG, F_ACK, hi, &fe->memfd, 1));
	CHECK(!fe_ack(fe, VHOST_USER_ADD_MEM_REG, &status));
	CHECK_EQ(status, 0);
	if (!fe_hs(fe, &o, HS_RING0, HS_END) || !fe_wait_ready(fe))
		return;
	srv_snap(&info, NULL);
	CHECK_EQ(info.mem_regions, 2);
	fe_traffic(fe, 20, 19);
	/* A frame whose buffers live in the added region only. */
	{
		uint64_t h = fe_scratch(fe, HDR), d = fe_scratch(fe, 300);
		struct seg s[2] = { { h, HDR, 0 }, { d, 300, 0 } };

		memset(fe_ptr(fe, h), 0, HDR);
		frame_fill(fe_ptr(fe, d), 300, 77, 0);
		srv_log_reset();
		head = fe_chain(fe, 1, s, 2);
		CHECK(head >= 0);
		fe_push(fe, 1, (uint16_t)head);
		CHECK(srv_wait(WAIT_MS, p_nlog, &one));
		pthread_mutex_lock(&S.mu);
		CHECK(S.nlog == 1 && rec_matches(&S.log[0], 300, frame_hash(77, 0, 300), "added region", 0));
		pthread_mutex_unlock(&S.mu);
		fe_tx_reclaim(fe);
	}
	status = 1;
	srv_log_reset();
	CHECK(!fe_send_memreg(fe, VHOST_USER_REM_MEM_REG, F_ACK, hi, NULL, 0));
	CHECK(!fe_ack(fe, VHOST_USER_REM_MEM_REG, &status));
	CHECK_EQ(status, 0);
	srv_settle();
	check_no_replay(fe, "REM_MEM_REG");
	srv_snap(&info, NULL);
	CHECK_EQ(info.mem_regions, 1);
	CHECK(info.ready);
	ex->kind = EX_ALIVE;
}

/*
 * A table sent again while the rings run, as QEMU does on memory hotplug,
 * and features sent again: the rings must go on from where they are, not
 * from the base they started at (which would hand the program every frame
 * since then a second time and rewind the used index).
 */
static void c_mem_retable_running(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	uint64_t f;

	o.base[0] = 100;
	o.base[1] = 200;
	if (!fe_ready(fe, &o))
		return;
	fe_traffic(fe, 20, 33);
	srv_log_reset();
	CHECK(!fe_mem_table(fe, false));
	/* A request with a reply of its own: everything before it has been handled. */
	CHECK(!fe_get_u64(fe, VHOST_USER_GET_FEATURES, &f));
	srv_settle();
	ex->kind = EX_ALIVE;
	if (check_no_replay(fe, "SET_MEM_TABLE"))
		fe_traffic(fe, 10, 34);
}

static void c_features_again_running(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	uint64_t f;

	o.base[0] = 300;
	o.base[1] = 400;
	if (!fe_ready(fe, &o))
		return;
	fe_traffic(fe, 20, 35);
	srv_log_reset();
	CHECK(!fe_send_u64(fe, VHOST_USER_SET_FEATURES, F_REQ, o.features));
	CHECK(!fe_get_u64(fe, VHOST_USER_GET_FEATURES, &f));
	srv_settle();
	ex->kind = EX_ALIVE;
	if (check_no_replay(fe, "SET_FEATURES"))
		fe_traffic(fe, 10, 36);
}

static void c_memreg_rem_unknown(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_memreg(fe, VHOST_USER_REM_MEM_REG, F_REQ, fe_region(fe, 0, SPLIT), NULL, 0);
	cut(ex, "REM_MEM_REG names no region");
}

static void c_memreg_add_overlap(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_memreg(fe, VHOST_USER_ADD_MEM_REG, F_REQ, fe_region(fe, SPLIT, 0x1000), &fe->memfd, 1);
	cut(ex, "overlaps another");
}

static void c_memreg_add_nofd(struct fe *fe, struct expect *ex)
{
	hs_to(fe, HS_RING0);
	fe_send_memreg(fe, VHOST_USER_ADD_MEM_REG, F_REQ, fe_region(fe, 0, 0x1000), NULL, 0);
	cut(ex, "ADD_MEM_REG: 0 fds");
}

/* mem_slots=8: a full table of eight, and one more is one too many. */
static void c_memreg_slots_full(struct fe *fe, struct expect *ex)
{
	struct vhost_user_memory_region r[8], extra;
	int fds[8];

	hs_to(fe, HS_MEM);
	fill_pieces(fe, r, fds, 8);
	fe_send_mem(fe, 8, r, 8, fds, 8);
	extra = fe_region(fe, 0, 0x1000);
	extra.guest_phys_addr = extra.userspace_addr = fe_addr(fe, MEM_SIZE);
	fe_send_memreg(fe, VHOST_USER_ADD_MEM_REG, F_REQ, extra, &fe->memfd, 1);
	cut(ex, "one too many");
}

/* ......................................................... connections */

static void c_second_frontend(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	struct vuser_vhost_info info;
	unsigned stray = 0;
	int s2;

	if (!fe_ready(fe, &o))
		return;
	s2 = connect_path();
	CHECK(s2 >= 0);
	if (s2 >= 0) {
		CHECK(wait_eof(s2, EOF_MS, &stray) >= 0);
		CHECK_EQ(stray, 0);
		close(s2);
	}
	fe_traffic(fe, 10, 20);
	srv_snap(&info, NULL);
	CHECK_EQ(info.connections, fe->conn_id);
	ex->kind = EX_ALIVE;
}

/*
 * A frontend that hangs up and a new one that connects before the vhost
 * thread runs again, as a program reopening its port does: the old session
 * is over, so the new frontend must be served.
 */
static void c_reconnect(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	uint64_t first;

	if (!fe_ready(fe, &o))
		return;
	first = fe->conn_id;
	srv_hold(true);
	fe_close(fe);
	if (!fe_open(fe)) {
		srv_hold(false);
		return;
	}
	fe->conn_id = first + 1;
	srv_hold(false);
	ex->kind = EX_ALIVE;
	ex->sessions = 2;
	if (fe_ready(fe, &o))
		fe_traffic(fe, 10, 21);
	else
		ex->sessions = 1; /* refused: the harness need not wait for a session that never came */
}

/* ......................................................... the datapath */

static bool dp_default(struct fe *fe)
{
	struct hs o = hs_default();

	return fe_ready(fe, &o);
}

/* A valid header in scratch memory. */
static uint64_t sc_hdr(struct fe *fe)
{
	uint64_t a = fe_scratch(fe, HDR);

	memset(fe_ptr(fe, a), 0, HDR);
	return a;
}

static uint64_t sc_data(struct fe *fe, uint32_t len)
{
	uint64_t a = fe_scratch(fe, len);

	frame_fill(fe_ptr(fe, a), len, 3, 3);
	return a;
}

static void c_dp_loop(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	fe_desc(fe, 1, 0, sc_hdr(fe), HDR, VRING_DESC_F_NEXT, 1);
	fe_desc(fe, 1, 1, sc_data(fe, 64), 64, VRING_DESC_F_NEXT, 0);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "loops");
}

static void c_dp_next_beyond(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	fe_desc(fe, 1, 0, sc_hdr(fe), HDR, VRING_DESC_F_NEXT, QSIZE);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "next beyond");
}

static void c_dp_chain_long(struct fe *fe, struct expect *ex)
{
	uint64_t d;

	if (!dp_default(fe))
		return;
	d = sc_data(fe, QSIZE * 16);
	/* Every descriptor once, then on again: one more than the ring holds. */
	for (unsigned i = 0; i < QSIZE; i++)
		fe_desc(fe, 1, (uint16_t)i, d + i * 16, 16, VRING_DESC_F_NEXT, (uint16_t)((i + 1) % QSIZE));
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "longer than its table");
}

static uint64_t sc_table(struct fe *fe, unsigned n)
{
	uint64_t t = fe_scratch(fe, n * (uint32_t)sizeof(struct vring_desc));

	memset(fe_ptr(fe, t), 0, n * sizeof(struct vring_desc));
	return t;
}

static void c_dp_ind_nested(struct fe *fe, struct expect *ex)
{
	uint64_t t, t2;
	struct vring_desc *tp;

	if (!dp_default(fe))
		return;
	t = sc_table(fe, 2);
	t2 = sc_table(fe, 2);
	tp = fe_ptr(fe, t);
	tp[0] = (struct vring_desc){ t2, 32, VRING_DESC_F_INDIRECT, 0 };
	((struct vring_desc *)fe_ptr(fe, t2))[0] = (struct vring_desc){ sc_hdr(fe), HDR, 0, 0 };
	fe_desc(fe, 1, 0, t, 32, VRING_DESC_F_INDIRECT, 0);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "inside an indirect");
}

static void c_dp_ind_loop(struct fe *fe, struct expect *ex)
{
	uint64_t t;
	struct vring_desc *tp;

	if (!dp_default(fe))
		return;
	t = sc_table(fe, 2);
	tp = fe_ptr(fe, t);
	tp[0] = (struct vring_desc){ sc_hdr(fe), HDR, VRING_DESC_F_NEXT, 1 };
	tp[1] = (struct vring_desc){ sc_data(fe, 64), 64, VRING_DESC_F_NEXT, 0 };
	fe_desc(fe, 1, 0, t, 32, VRING_DESC_F_INDIRECT, 0);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "loops");
}

static void dp_ind_len(struct fe *fe, uint32_t len)
{
	uint64_t t = sc_table(fe, QSIZE + 2);
	struct vring_desc *tp = fe_ptr(fe, t);

	tp[0] = (struct vring_desc){ sc_hdr(fe), HDR, 0, 0 };
	fe_desc(fe, 1, 0, t, len, VRING_DESC_F_INDIRECT, 0);
	fe_push(fe, 1, 0);
}

static void c_dp_ind_empty(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	dp_ind_len(fe, 0);
	cut_dp(ex, 1, "indirect table empty");
}

static void c_dp_ind_ragged(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	dp_ind_len(fe, 24);
	cut_dp(ex, 1, "ragged");
}

static void c_dp_ind_long(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	dp_ind_len(fe, (QSIZE + 1) * 16);
	cut_dp(ex, 1, "longer than the ring");
}

static void c_dp_ind_unnegotiated(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();

	o.features &= ~BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (!fe_ready(fe, &o))
		return;
	dp_ind_len(fe, 16);
	cut_dp(ex, 1, "without VIRTIO_RING_F_INDIRECT_DESC");
}

static void c_dp_ind_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	fe_desc(fe, 1, 0, fe_addr(fe, MEM_SIZE + 0x1000), 32, VRING_DESC_F_INDIRECT, 0);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "indirect table outside");
}

static void c_dp_ind_next(struct fe *fe, struct expect *ex)
{
	uint64_t t;

	if (!dp_default(fe))
		return;
	t = sc_table(fe, 1);
	((struct vring_desc *)fe_ptr(fe, t))[0] = (struct vring_desc){ sc_hdr(fe), HDR, 0, 0 };
	fe_desc(fe, 1, 0, t, 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT, 1);
	fe_desc(fe, 1, 1, sc_data(fe, 64), 64, 0, 0);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "VRING_DESC_F_NEXT");
}

static void dp_bad_buffer(struct fe *fe, uint64_t addr, uint32_t len)
{
	fe_desc(fe, 1, 0, sc_hdr(fe), HDR, VRING_DESC_F_NEXT, 1);
	fe_desc(fe, 1, 1, addr, len, 0, 0);
	fe_push(fe, 1, 0);
}

static void c_dp_buf_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	dp_bad_buffer(fe, fe_addr(fe, MEM_SIZE + 0x1000), 64);
	cut_dp(ex, 1, "buffer outside");
}

static void c_dp_buf_wrap(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	dp_bad_buffer(fe, UINT64_MAX - 0xfff, 0x2000);
	cut_dp(ex, 1, "buffer outside");
}

static void c_dp_buf_straddle(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();

	o.two_regions = true;
	if (!fe_ready(fe, &o))
		return;
	dp_bad_buffer(fe, fe_addr(fe, SPLIT - 32), 64);
	cut_dp(ex, 1, "across regions");
}

static void c_dp_avail_jump(struct fe *fe, struct expect *ex)
{
	struct fe_vq *q = &fe->vq[1];

	if (!dp_default(fe))
		return;
	fe_desc(fe, 1, 0, sc_hdr(fe), HDR, 0, 0);
	for (unsigned i = 0; i < QSIZE; i++)
		q->avail->ring[i] = 0;
	q->avail_idx = (uint16_t)(q->avail_idx + QSIZE + 1);
	fe_publish(fe, 1);
	srv_wake();
	cut_dp(ex, 1, "avail idx moved");
}

static void c_dp_head_beyond(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	fe_push(fe, 1, QSIZE);
	cut_dp(ex, 1, "names a descriptor beyond");
}

static void c_dp_tx_writable(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	fe_desc(fe, 1, 0, sc_hdr(fe), HDR, VRING_DESC_F_NEXT, 1);
	fe_desc(fe, 1, 1, sc_data(fe, 64), 64, VRING_DESC_F_WRITE, 0);
	fe_push(fe, 1, 0);
	cut_dp(ex, 1, "writable descriptor in a transmit chain");
}

/* Legal: the 12-byte header one byte per descriptor, the data in pieces. */
static void c_dp_hdr_split(struct fe *fe, struct expect *ex)
{
	struct virtio_net_hdr_mrg_rxbuf h = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .hdr_len = 0x1234,
					      .csum_start = 0x22, .csum_offset = 0x10 };
	struct vuser_port_stats s0, s1;
	struct seg s[HDR + 4];
	uint8_t data[100];
	unsigned n = 0, one = 1;
	int head;

	if (!dp_default(fe))
		return;
	frame_fill(data, sizeof(data), 4, 4);
	for (unsigned i = 0; i < HDR; i++) {
		uint64_t a = fe_scratch(fe, 1);

		*(uint8_t *)fe_ptr(fe, a) = ((const uint8_t *)&h)[i];
		s[n++] = (struct seg){ a, 1, 0 };
	}
	for (unsigned i = 0, off = 0; i < 4; i++) {
		uint32_t len = i < 3 ? 1 : (uint32_t)sizeof(data) - off;
		uint64_t a = fe_scratch(fe, len);

		memcpy(fe_ptr(fe, a), data + off, len);
		s[n++] = (struct seg){ a, len, 0 };
		off += len;
	}
	srv_settle();
	srv_snap(NULL, &s0);
	srv_log_reset();
	head = fe_chain(fe, 1, s, n);
	CHECK(head >= 0);
	fe_push(fe, 1, (uint16_t)head);
	CHECK(srv_wait(WAIT_MS, p_nlog, &one));
	pthread_mutex_lock(&S.mu);
	CHECK_EQ(S.nlog, 1);
	CHECK(rec_matches(&S.log[0], sizeof(data), bytes_hash(data, sizeof(data)), "split header", 0));
	CHECK_EQ(S.log[0].vnet.flags, h.flags);
	CHECK_EQ(S.log[0].vnet.hdr_len, h.hdr_len);
	CHECK_EQ(S.log[0].vnet.csum_start, h.csum_start);
	CHECK_EQ(S.log[0].vnet.csum_offset, h.csum_offset);
	pthread_mutex_unlock(&S.mu);
	fe_tx_reclaim(fe);
	CHECK_EQ(fe->vq[1].outstanding, 0);
	srv_snap(NULL, &s1);
	CHECK_EQ(s1.rx[0].drops, s0.rx[0].drops);
	fe_traffic(fe, 10, 22);
	ex->kind = EX_ALIVE;
}

/* A chain the vhost must drop and count, returning it, and then go on. */
static void dp_dropped(struct fe *fe, const struct seg *s, unsigned n, uint32_t seed)
{
	struct vuser_port_stats s0, s1;
	uint64_t want;
	int head;

	srv_settle();
	srv_snap(NULL, &s0);
	want = s0.rx[0].drops + 1;
	head = fe_chain(fe, 1, s, n);
	CHECK(head >= 0);
	fe_push(fe, 1, (uint16_t)head);
	CHECK(srv_wait(WAIT_MS, p_rxdrops, &want));
	srv_settle();
	srv_snap(NULL, &s1);
	CHECK_EQ(s1.rx[0].drops, s0.rx[0].drops + 1);
	CHECK_EQ(s1.rx[0].packets, s0.rx[0].packets);
	CHECK_EQ(s1.rx[0].errors, s0.rx[0].errors);
	fe_tx_reclaim(fe);
	CHECK_EQ(fe->vq[1].outstanding, 0);
	fe_traffic(fe, 10, seed);
}

static void c_dp_short(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	dp_dropped(fe, &(struct seg){ sc_data(fe, 8), 8, 0 }, 1, 23);
	ex->kind = EX_ALIVE;
}

static void c_dp_too_big(struct fe *fe, struct expect *ex)
{
	const uint32_t len = 70000;
	struct seg s[2];

	if (!dp_default(fe))
		return;
	s[0] = (struct seg){ sc_hdr(fe), HDR, 0 };
	s[1] = (struct seg){ sc_data(fe, len), len, 0 };
	dp_dropped(fe, s, 2, 24);
	ex->kind = EX_ALIVE;
}

/* Receive-ring cases: the vhost finds the lie when it delivers a frame. */
static bool dp_rx_setup(struct fe *fe)
{
	struct hs o = hs_default();

	o.post_rx = false;
	return fe_ready(fe, &o);
}

static void c_dp_rx_readable(struct fe *fe, struct expect *ex)
{
	if (!dp_rx_setup(fe))
		return;
	fe_desc(fe, 0, 0, fe_addr(fe, RXBUF_OFF), RXBUF_LEN, 0, 0);
	fe_push(fe, 0, 0);
	srv_job(1, 25, NULL);
	cut_dp(ex, 0, "readable descriptor in a receive chain");
}

static void c_dp_rx_read_after_write(struct fe *fe, struct expect *ex)
{
	if (!dp_rx_setup(fe))
		return;
	/* The first buffer too small for the frame, so the vhost must walk on. */
	fe_desc(fe, 0, 0, fe_addr(fe, RXBUF_OFF), 4, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1);
	fe_desc(fe, 0, 1, fe_addr(fe, RXBUF_OFF + RXBUF_LEN), RXBUF_LEN, 0, 0);
	fe_push(fe, 0, 0);
	srv_job(1, 26, NULL);
	cut_dp(ex, 0, "readable descriptor after a writable one");
}

static void c_dp_rx_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_rx_setup(fe))
		return;
	fe_desc(fe, 0, 0, fe_addr(fe, MEM_SIZE + 0x1000), RXBUF_LEN, VRING_DESC_F_WRITE, 0);
	fe_push(fe, 0, 0);
	srv_job(1, 27, NULL);
	cut_dp(ex, 0, "buffer outside");
}

static void c_dp_rx_avail_jump(struct fe *fe, struct expect *ex)
{
	struct fe_vq *q = &fe->vq[0];

	if (!dp_rx_setup(fe))
		return;
	fe_desc(fe, 0, 0, fe_addr(fe, RXBUF_OFF), RXBUF_LEN, VRING_DESC_F_WRITE, 0);
	for (unsigned i = 0; i < QSIZE; i++)
		q->avail->ring[i] = 0;
	q->avail_idx = (uint16_t)(q->avail_idx + QSIZE + 1);
	fe_publish(fe, 0);
	srv_job(1, 28, NULL);
	cut_dp(ex, 0, "avail idx moved");
}

/* Without MRG_RXBUF a frame larger than one receive buffer is dropped and counted; the next fits. */
static const uint32_t nomrg_sizes[] = { 3000, 100 };
/* Frames that fit one 2 KiB receive buffer with their header. */
static const uint32_t small_sizes[] = { 60, 1514, 14, RXBUF_LEN - HDR, 128, 64, 700, 1500, 42, 256 };

static void c_dp_rx_nomrg_drop(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_default();
	struct vuser_port_stats s0, s1;

	o.features &= ~BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (!fe_ready(fe, &o))
		return;
	srv_snap(NULL, &s0);
	srv_job(2, 29, nomrg_sizes);
	fe_rx_expect(fe, 29, nomrg_sizes, 1, 1);
	CHECK(srv_wait(WAIT_MS, p_job_done, NULL));
	srv_settle();
	srv_snap(NULL, &s1);
	CHECK_EQ(s1.tx[0].drops, s0.tx[0].drops + 1);
	CHECK_EQ(s1.tx[0].packets, s0.tx[0].packets + 1);
	CHECK_EQ(s1.tx[0].bytes, s0.tx[0].bytes + nomrg_sizes[1]);
	CHECK_EQ(s1.tx[0].errors, s0.tx[0].errors);
	srv_job_cancel();
	fe_tx_traffic(fe, 10, 30);
	fe_rx_traffic(fe, NELEM(small_sizes), 31, small_sizes);
	ex->kind = EX_ALIVE;
}


/*
 * Four receive buffers side by side, as the device takes them in one step,
 * one of them (bad) breaking a rule: the device must still find it and
 * name it. Four frames of 64 bytes, which each fit one buffer.
 */
enum rx4_bad { RX4_READABLE, RX4_OUTSIDE, RX4_HEAD_BEYOND, RX4_NEXT_UNAVAIL };
static const uint32_t rx4_sizes[4] = { 64, 64, 64, 64 };

static void sp_rx_four(struct fe *fe, unsigned bad, enum rx4_bad how)
{
	for (uint16_t i = 0; i < 4; i++) {
		uint64_t addr = fe_addr(fe, RXBUF_OFF + (uint64_t)i * RXBUF_LEN);
		uint16_t flags = VRING_DESC_F_WRITE;

		if (i == bad && how == RX4_READABLE)
			flags = 0;
		if (i == bad && how == RX4_OUTSIDE)
			addr = fe_addr(fe, MEM_SIZE + 0x1000);
		fe_desc(fe, 0, i, addr, RXBUF_LEN, flags, 0);
		fe_push(fe, 0, i == bad && how == RX4_HEAD_BEYOND ? QSIZE : i);
	}
	srv_job(4, 46, rx4_sizes);
}

static void c_dp_rx4_readable(struct fe *fe, struct expect *ex)
{
	if (!dp_rx_setup(fe))
		return;
	sp_rx_four(fe, 2, RX4_READABLE);
	cut_dp(ex, 0, "readable descriptor in a receive chain");
}

static void c_dp_rx4_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_rx_setup(fe))
		return;
	sp_rx_four(fe, 3, RX4_OUTSIDE);
	cut_dp(ex, 0, "buffer outside");
}

static void c_dp_rx4_head_beyond(struct fe *fe, struct expect *ex)
{
	if (!dp_rx_setup(fe))
		return;
	sp_rx_four(fe, 2, RX4_HEAD_BEYOND);
	cut_dp(ex, 0, "names a descriptor beyond");
}

/*
 * Legal: frames of one descriptor each, many in a row, as the vhost's
 * receive step takes them four at a time: first all small, so that every
 * step is whole, then of mixed sizes, where a frame longer than one of the
 * vhost's buffers (or a step that meets the end of the burst) sends the
 * device back to one chain at a time. Every frame checked, byte for byte,
 * and every chain given back.
 */
static void tx_single_runs(struct fe *fe)
{
	/* Two runs of each: the second goes round the end of the ring. */
	tx_single = true;
	tx_len = 64;
	fe_tx_traffic(fe, LOG_MAX - 6, 47);
	fe_tx_traffic(fe, LOG_MAX - 6, 48);
	tx_len = 0;
	fe_tx_traffic(fe, LOG_MAX - 6, 49);
	fe_tx_traffic(fe, LOG_MAX - 6, 50);
	tx_single = false;
}

static void c_dp_tx_single(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	tx_single_runs(fe);
	ex->kind = EX_ALIVE;
}

/*
 * Four transmit chains of one descriptor each, made available together, one
 * of them (bad) breaking a rule: the receive step that takes four at a time
 * must not swallow it, and the device names it.
 */
enum tx4_bad { TX4_WRITABLE, TX4_OUTSIDE, TX4_HEAD_BEYOND, TX4_NEXT_UNAVAIL };

static void sp_tx_four(struct fe *fe, unsigned bad, enum tx4_bad how)
{
	struct fe_vq *q = &fe->vq[1];

	for (uint16_t i = 0; i < 4; i++) {
		uint64_t addr = sc_data(fe, HDR + 64);
		uint16_t flags = 0;

		memset(fe_ptr(fe, addr), 0, HDR);
		if (i == bad && how == TX4_WRITABLE)
			flags = VRING_DESC_F_WRITE;
		if (i == bad && how == TX4_OUTSIDE)
			addr = fe_addr(fe, MEM_SIZE + 0x1000);
		fe_desc(fe, 1, i, addr, HDR + 64, flags, 0);
		q->avail->ring[q->avail_idx++ & (QSIZE - 1)] =
			i == bad && how == TX4_HEAD_BEYOND ? (uint16_t)QSIZE : i;
	}
	fe_publish(fe, 1);
	srv_wake();
}

static void c_dp_tx4_writable(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	sp_tx_four(fe, 2, TX4_WRITABLE);
	cut_dp(ex, 1, "writable descriptor in a transmit chain");
}

static void c_dp_tx4_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	sp_tx_four(fe, 3, TX4_OUTSIDE);
	cut_dp(ex, 1, "buffer outside");
}

static void c_dp_tx4_head_beyond(struct fe *fe, struct expect *ex)
{
	if (!dp_default(fe))
		return;
	sp_tx_four(fe, 1, TX4_HEAD_BEYOND);
	cut_dp(ex, 1, "names a descriptor beyond");
}

/* ...................................................... the packed layout */

static bool dp_packed(struct fe *fe, bool post_rx)
{
	struct hs o = hs_packed();

	o.post_rx = post_rx;
	return fe_ready(fe, &o);
}

/* One packed descriptor at position pos of ring r, flags as given (released). */
static void pk_desc(struct fe *fe, unsigned r, uint16_t pos, uint64_t addr, uint32_t len, uint16_t id,
		    uint16_t flags)
{
	struct vring_packed_desc *d = &fe->vq[r].pd[pos];

	d->addr = addr;
	d->len = len;
	d->id = id;
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

#define PK_ON(f) pk_avail(true, (uint16_t)(f))   /* available in the first lap */
#define PK_OFF(f) pk_avail(false, (uint16_t)(f)) /* available only in the second */

static uint64_t sc_ptable(struct fe *fe, unsigned n)
{
	uint64_t t = fe_scratch(fe, n * (uint32_t)sizeof(struct vring_packed_desc));

	memset(fe_ptr(fe, t), 0, n * sizeof(struct vring_packed_desc));
	return t;
}

/* The chain goes on into a descriptor the driver never made available. */
static void c_pk_next_unavail(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_desc(fe, 1, 1, sc_data(fe, 64), 64, 0, 0);
	pk_desc(fe, 1, 0, sc_hdr(fe), HDR, 0, PK_ON(VRING_DESC_F_NEXT));
	srv_wake();
	cut_dp(ex, 1, "not available");
}

/* A chain across the end of the ring whose tail still carries the old lap's flags. */
static void c_pk_wrap_confusion(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_packed();

	o.base[1] = (uint16_t)((QSIZE - 2) | 0x8000);
	if (!fe_ready(fe, &o))
		return;
	pk_desc(fe, 1, 0, sc_data(fe, 64), 64, 7, PK_ON(0));
	pk_desc(fe, 1, QSIZE - 1, sc_data(fe, 64), 64, 7, PK_ON(VRING_DESC_F_NEXT));
	pk_desc(fe, 1, QSIZE - 2, sc_hdr(fe), HDR, 7, PK_ON(VRING_DESC_F_NEXT));
	srv_wake();
	cut_dp(ex, 1, "not available");
}

/*
 * Legal: a descriptor whose flags say "used" (AVAIL == USED) or "next lap"
 * is not available and must be left alone; then the frontend behaves.
 */
static void c_pk_stale_flags(struct fe *fe, struct expect *ex)
{
	struct vuser_port_stats s0, s1;

	if (!dp_packed(fe, true))
		return;
	srv_snap(NULL, &s0);
	pk_desc(fe, 1, 0, sc_hdr(fe), HDR, 0,
		(1u << VRING_PACKED_DESC_F_AVAIL) | (1u << VRING_PACKED_DESC_F_USED));
	srv_wake();
	srv_settle();
	pk_desc(fe, 1, 0, sc_hdr(fe), HDR, 0, PK_OFF(0));
	srv_wake();
	srv_settle();
	srv_snap(NULL, &s1);
	CHECK_EQ(s1.rx[0].packets, s0.rx[0].packets);
	CHECK_EQ(s1.rx[0].drops, s0.rx[0].drops);
	fe_traffic(fe, 20, 41);
	ex->kind = EX_ALIVE;
}

static void c_pk_ind_nested(struct fe *fe, struct expect *ex)
{
	uint64_t t;
	struct vring_packed_desc *d;

	if (!dp_packed(fe, true))
		return;
	t = sc_ptable(fe, 2);
	d = fe_ptr(fe, t);
	d[0] = (struct vring_packed_desc){ t, 2 * sizeof(*d), 0, VRING_DESC_F_INDIRECT };
	pk_desc(fe, 1, 0, t, 2 * sizeof(*d), 0, PK_ON(VRING_DESC_F_INDIRECT));
	srv_wake();
	cut_dp(ex, 1, "inside an indirect");
}

static void c_pk_ind_next(struct fe *fe, struct expect *ex)
{
	uint64_t t;

	if (!dp_packed(fe, true))
		return;
	t = sc_ptable(fe, 2);
	pk_desc(fe, 1, 1, sc_data(fe, 64), 64, 0, PK_ON(0));
	pk_desc(fe, 1, 0, t, 2 * sizeof(struct vring_packed_desc), 0,
		PK_ON(VRING_DESC_F_INDIRECT | VRING_DESC_F_NEXT));
	srv_wake();
	cut_dp(ex, 1, "with VRING_DESC_F_NEXT");
}

static void c_pk_ind_ragged(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_desc(fe, 1, 0, sc_ptable(fe, 2), 24, 0, PK_ON(VRING_DESC_F_INDIRECT));
	srv_wake();
	cut_dp(ex, 1, "ragged");
}

static void c_pk_ind_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_desc(fe, 1, 0, fe_addr(fe, MEM_SIZE - 16), 32, 0, PK_ON(VRING_DESC_F_INDIRECT));
	srv_wake();
	cut_dp(ex, 1, "indirect table outside");
}

static void c_pk_ind_unnegotiated(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_packed();

	o.features &= ~BIT(VIRTIO_RING_F_INDIRECT_DESC);
	if (!fe_ready(fe, &o))
		return;
	pk_desc(fe, 1, 0, sc_ptable(fe, 2), 32, 0, PK_ON(VRING_DESC_F_INDIRECT));
	srv_wake();
	cut_dp(ex, 1, "without VIRTIO_RING_F_INDIRECT_DESC");
}

static void c_pk_buf_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_desc(fe, 1, 1, fe_addr(fe, MEM_SIZE + 0x1000), 64, 0, PK_ON(0));
	pk_desc(fe, 1, 0, sc_hdr(fe), HDR, 0, PK_ON(VRING_DESC_F_NEXT));
	srv_wake();
	cut_dp(ex, 1, "buffer outside");
}

static void c_pk_tx_writable(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_desc(fe, 1, 1, sc_data(fe, 64), 64, 0, PK_ON(VRING_DESC_F_WRITE));
	pk_desc(fe, 1, 0, sc_hdr(fe), HDR, 0, PK_ON(VRING_DESC_F_NEXT));
	srv_wake();
	cut_dp(ex, 1, "writable descriptor in a transmit chain");
}

static void c_pk_rx_readable(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, false))
		return;
	pk_desc(fe, 0, 0, fe_addr(fe, RXBUF_OFF), RXBUF_LEN, 0, PK_ON(0));
	srv_job(1, 42, NULL);
	cut_dp(ex, 0, "readable descriptor in a receive chain");
}

/* A receive chain too short for the frame that runs into an unavailable descriptor. */
static void c_pk_rx_next_unavail(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, false))
		return;
	pk_desc(fe, 0, 1, fe_addr(fe, RXBUF_OFF + RXBUF_LEN), RXBUF_LEN, 0, PK_OFF(VRING_DESC_F_WRITE));
	pk_desc(fe, 0, 0, fe_addr(fe, RXBUF_OFF), 4, 0, PK_ON(VRING_DESC_F_WRITE | VRING_DESC_F_NEXT));
	srv_job(1, 43, NULL);
	cut_dp(ex, 0, "not available");
}

/* The four-in-a-row cases of sp_rx_four on a packed ring. */
static void pk_rx_four(struct fe *fe, unsigned bad, enum rx4_bad how)
{
	for (uint16_t i = 0; i < 4; i++) {
		uint64_t addr = fe_addr(fe, RXBUF_OFF + (uint64_t)i * RXBUF_LEN);
		uint16_t flags = VRING_DESC_F_WRITE;

		if (i == bad && how == RX4_READABLE)
			flags = 0;
		if (i == bad && how == RX4_OUTSIDE)
			addr = fe_addr(fe, MEM_SIZE + 0x1000);
		if (i == bad && how == RX4_NEXT_UNAVAIL)
			flags |= VRING_DESC_F_NEXT;
		/* What follows a chain that goes on was never made available. */
		if (how == RX4_NEXT_UNAVAIL && i == bad + 1)
			continue;
		pk_desc(fe, 0, i, addr, RXBUF_LEN, i, PK_ON(flags));
	}
	srv_job(4, 45, rx4_sizes);
}

static void c_pk_rx4_readable(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, false))
		return;
	pk_rx_four(fe, 2, RX4_READABLE);
	cut_dp(ex, 0, "readable descriptor in a receive chain");
}

static void c_pk_rx4_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, false))
		return;
	pk_rx_four(fe, 3, RX4_OUTSIDE);
	cut_dp(ex, 0, "buffer outside");
}

static void c_pk_rx4_next_unavail(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, false))
		return;
	pk_rx_four(fe, 2, RX4_NEXT_UNAVAIL);
	cut_dp(ex, 0, "not available");
}

static void c_pk_tx_single(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	tx_single_runs(fe);
	ex->kind = EX_ALIVE;
}

/* The packed form of sp_tx_four(): the first head last, so all four show at once. */
static void pk_tx_four(struct fe *fe, unsigned bad, enum tx4_bad how)
{
	for (int i = 3; i >= 0; i--) {
		uint64_t addr = sc_data(fe, HDR + 64);
		uint16_t flags = 0;

		memset(fe_ptr(fe, addr), 0, HDR);
		if ((unsigned)i == bad && how == TX4_WRITABLE)
			flags = VRING_DESC_F_WRITE;
		if ((unsigned)i == bad && how == TX4_OUTSIDE)
			addr = fe_addr(fe, MEM_SIZE + 0x1000);
		if ((unsigned)i == bad && how == TX4_NEXT_UNAVAIL)
			flags = VRING_DESC_F_NEXT;
		/* What follows a chain that goes on was never made available. */
		if (how == TX4_NEXT_UNAVAIL && (unsigned)i == bad + 1)
			continue;
		pk_desc(fe, 1, (uint16_t)i, addr, HDR + 64, (uint16_t)i, PK_ON(flags));
	}
	srv_wake();
}

static void c_pk_tx4_writable(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_tx_four(fe, 2, TX4_WRITABLE);
	cut_dp(ex, 1, "writable descriptor in a transmit chain");
}

static void c_pk_tx4_outside(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_tx_four(fe, 3, TX4_OUTSIDE);
	cut_dp(ex, 1, "buffer outside");
}

static void c_pk_tx4_next_unavail(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	pk_tx_four(fe, 1, TX4_NEXT_UNAVAIL);
	cut_dp(ex, 1, "not available");
}

static void c_pk_base_beyond(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_packed();

	fe_hs(fe, &o, HS_OWNER, HS_RING0);
	fe_ring_init(fe, 0, 0x8000);
	fe_ring_msgs(fe, 0, QSIZE, 300 | 0x8000, fe_addr(fe, DESC_OFF(0)), fe_addr(fe, AVAIL_OFF(0)),
		     fe_addr(fe, USED_OFF(0)));
	cut(ex, "base beyond the ring");
}

static void c_pk_layout_change(struct fe *fe, struct expect *ex)
{
	if (!dp_packed(fe, true))
		return;
	fe_send_u64(fe, VHOST_USER_SET_FEATURES, F_REQ, GOOD_FEATURES);
	cut(ex, "changes the ring layout");
}

/* Legal: packed rings moving frames both ways, every layout, across a wrap. */
static void c_pk_good_wrap(struct fe *fe, struct expect *ex)
{
	struct hs o = hs_packed();

	o.base[0] = (uint16_t)((QSIZE - 3) | 0x8000);
	o.base[1] = (uint16_t)(QSIZE - 5);
	if (!fe_ready(fe, &o))
		return;
	fe_traffic(fe, LOG_MAX - 16, 44);
	ex->kind = EX_ALIVE;
}

/* ---------------------------------------------------------------- the run */

struct tcase {
	const char *name;
	void (*fn)(struct fe *fe, struct expect *ex);
	bool slow;      /* waits for the vhost's 1 s timeout: first round only */
};

static const struct tcase cases[] = {
	{ "mem: 0 regions", c_mem_zero, false },
	{ "mem: nregions 9", c_mem_nine, false },
	{ "mem: 9 fds", c_mem_nine_fds, false },
	{ "mem: fewer fds than regions", c_mem_fewer_fds, false },
	{ "mem: more fds than regions", c_mem_more_fds, false },
	{ "mem: payload short of nregions", c_mem_short, false },
	{ "mem: overlapping regions", c_mem_overlap, false },
	{ "mem: offset+size overflows", c_mem_offset_overflow, false },
	{ "mem: gpa+size wraps", c_mem_gpa_wrap, false },
	{ "mem: size 0", c_mem_size0, false },
	{ "mem: region larger than file", c_mem_beyond_file, false },
	{ "mem: fd cannot be mapped", c_mem_unmappable, false },
	{ "mem: new table drops a ring", c_mem_remap_loses_ring, false },
	{ "mem: table again while running", c_mem_retable_running, false },
	{ "ring: desc unmapped", c_ring_unmapped, false },
	{ "ring: avail off the end", c_ring_off_end, false },
	{ "ring: desc straddles regions", c_ring_straddle, false },
	{ "ring: desc misaligned", c_ring_misaligned, false },
	{ "ring: used misaligned", c_ring_used_misaligned, false },
	{ "ring: SET_VRING_NUM index 200", c_ring_index, false },
	{ "ring: SET_VRING_KICK index 5", c_kick_index, false },
	{ "ring: size 0", c_ring_size0, false },
	{ "ring: size 300", c_ring_size300, false },
	{ "ring: size 65536", c_ring_size_huge, false },
	{ "ring: base 0x10000", c_ring_base_big, false },
	{ "ring: kick before memory", c_kick_before_mem, false },
	{ "ring: resize a running ring", c_num_running, false },
	{ "ring: enable 2", c_enable_two, false },
	{ "msg: unknown request 99", c_unknown_99, false },
	{ "msg: request 0", c_unknown_0, false },
	{ "msg: IOTLB_MSG (no rule)", c_unknown_iotlb, false },
	{ "msg: payload truncated (timeout)", c_trunc_payload, true },
	{ "msg: header truncated (timeout)", c_trunc_header, true },
	{ "msg: payload truncated (close)", c_trunc_close, false },
	{ "msg: size 0x10000", c_oversized, false },
	{ "msg: wrong payload size", c_wrong_size, false },
	{ "msg: reply flag in a request", c_reply_flag, false },
	{ "msg: version bits 2", c_bad_version, false },
	{ "fds: SET_OWNER with an fd", c_fd_on_owner, false },
	{ "fds: SET_VRING_KICK with 2", c_kick_two_fds, false },
	{ "fds: NOFD flag and an fd", c_kick_nofd_with_fd, false },
	{ "fds: no NOFD flag, no fd", c_kick_missing_fd, false },
	{ "fds: vring fd unknown bits", c_kick_unknown_bits, false },
	{ "neg: features not offered", c_features_not_offered, false },
	{ "neg: features without VERSION_1", c_features_no_v1, false },
	{ "neg: features again while running", c_features_again_running, false },
	{ "neg: protocol not offered", c_protocol_not_offered, false },
	{ "neg: GET_CONFIG size 300", c_get_config_big, false },
	{ "neg: GET_CONFIG unnegotiated", c_get_config_unnegotiated, false },
	{ "slots: ADD/REM unnegotiated", c_memreg_unnegotiated, false },
	{ "slots: ADD, use, REM", c_memreg_good, false },
	{ "slots: REM of a region never added", c_memreg_rem_unknown, false },
	{ "slots: ADD overlapping", c_memreg_add_overlap, false },
	{ "slots: ADD without an fd", c_memreg_add_nofd, false },
	{ "slots: ADD beyond mem_slots", c_memreg_slots_full, false },
	{ "conn: second frontend", c_second_frontend, false },
	{ "conn: reconnect before the vhost runs", c_reconnect, false },
	{ "dp: descriptor loop", c_dp_loop, false },
	{ "dp: next beyond the ring", c_dp_next_beyond, false },
	{ "dp: chain longer than the ring", c_dp_chain_long, false },
	{ "dp: nested indirect", c_dp_ind_nested, false },
	{ "dp: loop in an indirect table", c_dp_ind_loop, false },
	{ "dp: indirect len 0", c_dp_ind_empty, false },
	{ "dp: indirect len 24", c_dp_ind_ragged, false },
	{ "dp: indirect longer than the ring", c_dp_ind_long, false },
	{ "dp: indirect unnegotiated", c_dp_ind_unnegotiated, false },
	{ "dp: indirect table outside", c_dp_ind_outside, false },
	{ "dp: indirect with NEXT", c_dp_ind_next, false },
	{ "dp: buffer outside memory", c_dp_buf_outside, false },
	{ "dp: buffer address wraps", c_dp_buf_wrap, false },
	{ "dp: buffer straddles regions", c_dp_buf_straddle, false },
	{ "dp: header over 1-byte descs", c_dp_hdr_split, false },
	{ "dp: total shorter than header", c_dp_short, false },
	{ "dp: frame over 64 KiB", c_dp_too_big, false },
	{ "dp: avail idx jumps", c_dp_avail_jump, false },
	{ "dp: avail names head 256", c_dp_head_beyond, false },
	{ "dp: writable desc in tx chain", c_dp_tx_writable, false },
	{ "dp: readable desc in rx chain", c_dp_rx_readable, false },
	{ "dp: readable after writable", c_dp_rx_read_after_write, false },
	{ "dp: rx buffer outside memory", c_dp_rx_outside, false },
	{ "dp: rx avail idx jumps", c_dp_rx_avail_jump, false },
	{ "dp: rx frame too big, no MRG", c_dp_rx_nomrg_drop, false },
	{ "dp: rx 4 in a row, 3rd readable", c_dp_rx4_readable, false },
	{ "dp: rx 4 in a row, 4th outside memory", c_dp_rx4_outside, false },
	{ "dp: rx 4 in a row, 3rd head 256", c_dp_rx4_head_beyond, false },
	{ "dp: tx frames of one desc, in a row", c_dp_tx_single, false },
	{ "dp: tx 4 in a row, 3rd writable", c_dp_tx4_writable, false },
	{ "dp: tx 4 in a row, 4th outside memory", c_dp_tx4_outside, false },
	{ "dp: tx 4 in a row, 2nd head 256", c_dp_tx4_head_beyond, false },
	{ "packed: chain into unavailable desc", c_pk_next_unavail, false },
	{ "packed: chain across the wrap, old lap", c_pk_wrap_confusion, false },
	{ "packed: used/next-lap flags left alone", c_pk_stale_flags, false },
	{ "packed: nested indirect", c_pk_ind_nested, false },
	{ "packed: indirect with NEXT", c_pk_ind_next, false },
	{ "packed: indirect len 24", c_pk_ind_ragged, false },
	{ "packed: indirect table outside", c_pk_ind_outside, false },
	{ "packed: indirect unnegotiated", c_pk_ind_unnegotiated, false },
	{ "packed: buffer outside memory", c_pk_buf_outside, false },
	{ "packed: writable desc in tx chain", c_pk_tx_writable, false },
	{ "packed: readable desc in rx chain", c_pk_rx_readable, false },
	{ "packed: rx chain into unavailable", c_pk_rx_next_unavail, false },
	{ "packed: rx 4 in a row, 3rd readable", c_pk_rx4_readable, false },
	{ "packed: rx 4 in a row, 4th outside memory", c_pk_rx4_outside, false },
	{ "packed: rx 4 in a row, 3rd into unavailable", c_pk_rx4_next_unavail, false },
	{ "packed: tx frames of one desc, in a row", c_pk_tx_single, false },
	{ "packed: tx 4 in a row, 3rd writable", c_pk_tx4_writable, false },
	{ "packed: tx 4 in a row, 4th outside memory", c_pk_tx4_outside, false },
	{ "packed: tx 4 in a row, 2nd into unavailable", c_pk_tx4_next_unavail, false },
	{ "packed: base beyond the ring", c_pk_base_beyond, false },
	{ "packed: layout changed while running", c_pk_layout_change, false },
	{ "packed: traffic across the wrap", c_pk_good_wrap, false },
};

static void run_case(const struct tcase *tc)
{
	struct expect ex = { .kind = EX_CUT, .eof_ms = EOF_MS, .ring_err = -1, .sessions = 1 };
	struct vuser_vhost_info i0, i1;
	struct vuser_port_stats s0, s1;
	uint64_t last;
	struct fe fe;

	srv_snap(&i0, &s0);
	CHECK(!i0.connected);
	if (!fe_open(&fe)) {
		CHECK(0);
		return;
	}
	tc->fn(&fe, &ex);
	last = i0.connections + ex.sessions;
	if (ex.kind == EX_CUT) {
		long long took = fe.sock >= 0 ? wait_eof(fe.sock, ex.eof_ms, &fe.stray) : -1;

		if (took < 0)
			fprintf(stderr, "no EOF within %d ms\n", ex.eof_ms);
		CHECK(took >= 0);
		CHECK(took < 0 || took >= ex.min_ms);
		CHECK_EQ(fe.stray, 0);
		CHECK(srv_wait(WAIT_MS, p_cut, &i0.violations));
		srv_settle();
		srv_snap(&i1, &s1);
		CHECK_EQ(i1.violations, i0.violations + 1);
		CHECK(ex.word != NULL);
		if (ex.word)
			CHECK_STR_HAS(i1.last_violation, ex.word);
		CHECK(!i1.connected);
		CHECK_EQ(i1.mem_regions, 0);
		CHECK_EQ(i1.connections, last);
		CHECK_EQ(s1.rx[0].errors - s0.rx[0].errors, ex.ring_err == 1);
		CHECK_EQ(s1.tx[0].errors - s0.tx[0].errors, ex.ring_err == 0);
		fe_close(&fe);
	} else {
		CHECK(srv_wait(WAIT_MS, p_accepted, &last));
		srv_settle();
		srv_snap(&i1, NULL);
		if (i1.violations != i0.violations)
			fprintf(stderr, "cut off although the frontend was within the rules: %s\n",
				i1.last_violation);
		CHECK_EQ(i1.violations, i0.violations);
		CHECK(i1.connected);
		CHECK_EQ(fe.stray, 0);
		fe_close(&fe);
		CHECK(srv_wait(WAIT_MS, p_gone, &last));
		srv_settle();
		srv_snap(&i1, &s1);
		CHECK_EQ(i1.violations, i0.violations);
		CHECK_EQ(i1.connections, last);
		CHECK_EQ(s1.rx[0].errors, s0.rx[0].errors);
		CHECK_EQ(s1.tx[0].errors, s0.tx[0].errors);
	}
	srv_job_cancel();
	good_session();
}

/*
 * Later rounds repeat round 1's checks: a case's messages are shown only the
 * first time it fails there, rather than once per round.
 */
static bool case_printed[NELEM(cases)];
static unsigned case_fails[NELEM(cases)];

static void run_quietly(size_t i, int round)
{
	int before = t_failures;
	char *text = NULL;
	size_t len = 0;
	FILE *saved = stderr, *ms = open_memstream(&text, &len);

	if (ms)
		stderr = ms;
	run_case(&cases[i]);
	stderr = saved;
	if (ms)
		fclose(ms);
	if (t_failures != before) {
		case_fails[i]++;
		if (!case_printed[i]) {
			fprintf(stderr, "case \"%s\" failed in round %d:\n%s", cases[i].name, round,
				text ? text : "");
			case_printed[i] = true;
		}
	}
	free(text);
}

static int rounds_wanted(size_t nfast)
{
	const char *e = getenv("VUSER_HOSTILE_ROUNDS");

	if (e && *e) {
		int r = atoi(e);

		return r > 0 ? r : 1;
	}
	return (int)((TOTAL_RUNS + nfast - 1) / nfast);
}

int main(void)
{
	char dir[] = "/tmp/vuser-hostile-fe.XXXXXX";
	char devargs[256];
	int fds_start, fds_warm, fds_end, fds_final, rounds, runs = 0;
	long rss_warm, rss_end;
	size_t nfast = 0;
	long long t0, t_loop;
	pthread_condattr_t ca;
	int err;

	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	fds_start = t_count_fds();

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(sock_path, sizeof(sock_path), "%s/v.sock", dir);
	snprintf(devargs, sizeof(devargs), "path=%s,mem_slots=%u,pool=%u", sock_path, MEM_SLOTS,
		 POOL_BUFS);
	err = vuser_vhost_open(devargs, &S.v);
	if (err) {
		fprintf(stderr, "vuser_vhost_open(%s): %s\n", devargs, vuser_last_error());
		rmdir(dir);
		return 1;
	}
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&S.cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&S.mu, NULL);
	S.wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (S.wakefd < 0 || pthread_create(&S.thr, NULL, srv_main, &S)) {
		fprintf(stderr, "cannot start the vhost thread\n");
		vuser_vhost_close(S.v);
		rmdir(dir);
		return 1;
	}
	srv_settle();

	for (size_t i = 0; i < NELEM(cases); i++)
		nfast += !cases[i].slow;
	rounds = rounds_wanted(nfast);

	/* Round 1, every case, each reported; it is also the warm-up. */
	t0 = now_ms();
	for (size_t i = 0; i < NELEM(cases); i++) {
		int before = t_failures;
		long long t = now_ms();

		run_case(&cases[i]);
		runs++;
		printf("%-40s %s (%lld ms)\n", cases[i].name, t_failures == before ? "ok" : "FAIL",
		       now_ms() - t);
		if (t_failures != before) {
			case_fails[i]++;
			case_printed[i] = true;
		}
	}
	printf("round 1: %zu cases in %lld ms\n", NELEM(cases), now_ms() - t0);
	mem_pool_drain();
	fds_warm = t_count_fds();
	rss_warm = t_rss_kib();

	t_loop = now_ms();
	for (int r = 2; r <= rounds; r++) {
		if (now_ms() - t_loop > MAX_LOOP_MS) {
			fprintf(stderr, "stopping after round %d: over %d ms\n", r - 1, MAX_LOOP_MS);
			CHECK(0);
			break;
		}
		for (size_t i = 0; i < NELEM(cases); i++) {
			if (cases[i].slow)
				continue;
			run_quietly(i, r);
			runs++;
		}
	}
	t_loop = now_ms() - t_loop;
	mem_pool_drain();
	fds_end = t_count_fds();
	rss_end = t_rss_kib();

	pthread_mutex_lock(&S.mu);
	S.stop = true;
	pthread_cond_broadcast(&S.cv);
	pthread_mutex_unlock(&S.mu);
	srv_wake();
	pthread_join(S.thr, NULL);

	printf("%d case runs (%d rounds), rounds 2..%d in %lld ms (%.2f ms a case with its good frontend)\n",
	       runs, rounds, rounds, t_loop,
	       runs > (int)NELEM(cases) ? (double)t_loop / (runs - (int)NELEM(cases)) : 0.0);
	printf("good frontends: %u; longest vuser_vhost_process(): %lld us\n", good_count,
	       S.max_process_us);
	printf("fds %d after round 1, %d at the end; RSS %ld -> %ld KiB\n", fds_warm, fds_end, rss_warm,
	       rss_end);
	for (size_t i = 0; i < NELEM(cases); i++)
		if (case_fails[i])
			printf("FAILED: \"%s\" in %u round(s)\n", cases[i].name, case_fails[i]);

	CHECK_EQ(fds_end, fds_warm);
	CHECK_EQ(count_fe_maps(), 0);
	CHECK(rss_warm > 0 && rss_end > 0);
#if T_ASAN
	printf("RSS not compared under AddressSanitizer\n");
#else
	CHECK(rss_end - rss_warm <= RSS_SLACK_KIB);
#endif
	CHECK_EQ(S.burst_err, 0);
	CHECK_EQ(S.write_fail, 0);
	CHECK_EQ(S.log_lost, 0);

	/* Every buffer the vhost ever took from its pool came back. */
	{
		static struct vuser_buf *all[POOL_BUFS];

		int got = vuser_vhost_buf_alloc_bulk(S.v, all, POOL_BUFS);

		CHECK_EQ(got, 0);
		if (!got)
			vuser_buf_free_bulk(all, POOL_BUFS);
	}
	vuser_vhost_close(S.v);
	close(S.wakefd);
	pthread_cond_destroy(&S.cv);
	pthread_mutex_destroy(&S.mu);
	CHECK(access(sock_path, F_OK) != 0);
	CHECK_EQ(rmdir(dir), 0);
	fds_final = t_count_fds();
	printf("fds %d at start, %d at exit\n", fds_start, fds_final);
	CHECK_EQ(fds_final, fds_start);
	return t_result();
}
