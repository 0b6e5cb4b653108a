/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A port that outlives its backends, against vuser's own vhost device run
 * on a thread of this program:
 *  1 server=1: open returns at once with the link down; a device that
 *    connects (client=1) gets a session; frames left in the rings when it
 *    goes away all return to the pool; the next one gets a fresh session,
 *    with the queue pairs set while the link was down; round after round.
 *  2 client mode: the device (a server) closes and comes back; the port
 *    reconnects by itself.
 *  3 reconnect=0: the link stays down, and wait_link says so at once.
 *  4 a second device connecting to a busy server port is turned away.
 *  5 a datapath thread keeps bursting on every queue while devices die and
 *    come back under it: nothing crashes, no buffer is lost or freed twice.
 *  6 a path that is not a socket is not replaced; close removes the socket.
 * fds and resident memory end where they began.
 */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "vuser/vhost.h"
#include "vuser/vuser.h"

#define QUEUES 2
#define ROUNDS 40
#define FRAMES 200
#define WAIT_MS 10000
#define RSS_SLACK_KIB 4096

static char dir[] = "/tmp/vuser-reconnect.XXXXXX";

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------- the device, on a thread */

/*
 * One vuser vhost device owned by a thread that opens it, serves it (its
 * control calls and an echo of every frame back on its queue pair) and
 * closes it when told to. With hold set it stops echoing: frames stay in
 * the port's rings, as they would in a backend that dies under load.
 */
struct peer {
	char devargs[200];
	pthread_t th;
	atomic_int stop;
	atomic_int hold;
	atomic_int opened;      /* 1 open, -1 failed */
	atomic_int connected;
};

static void *peer_run(void *arg)
{
	struct peer *pe = arg;
	struct vuser_vhost *v;
	struct vuser_buf *b[32];

	if (vuser_vhost_open(pe->devargs, &v)) {
		atomic_store(&pe->opened, -1);
		return NULL;
	}
	atomic_store(&pe->opened, 1);
	while (!atomic_load(&pe->stop)) {
		struct vuser_vhost_info vi;
		struct pollfd pfd = { .fd = vuser_vhost_fd(v), .events = POLLIN };

		vuser_vhost_process(v);
		vuser_vhost_info(v, &vi);
		atomic_store(&pe->connected, vi.connected);
		for (unsigned q = 0; q < QUEUES && !atomic_load(&pe->hold); q++) {
			int n = vuser_vhost_rx_burst(v, q, b, 32), k;

			if (n <= 0)
				continue;
			k = vuser_vhost_tx_burst(v, q, b, (unsigned)n);
			if (k < 0)
				k = 0;
			vuser_buf_free_bulk(b + k, (unsigned)(n - k));
		}
		/* Not ready: nothing to move, so wait for the socket (or the next retry). */
		if (!vuser_vhost_ready(v))
			poll(&pfd, 1, 5);
	}
	vuser_vhost_close(v);
	return NULL;
}

static bool peer_start(struct peer *pe, const char *sock, bool client)
{
	double end = now() + WAIT_MS / 1000.0;

	memset(pe, 0, sizeof(*pe));
	snprintf(pe->devargs, sizeof(pe->devargs), "path=%s,queues=%d%s", sock, QUEUES,
		 client ? ",client=1" : "");
	if (pthread_create(&pe->th, NULL, peer_run, pe))
		return false;
	while (!atomic_load(&pe->opened) && now() < end)
		sleep_ms(1);
	if (atomic_load(&pe->opened) != 1) {
		fprintf(stderr, "vhost %s did not open: %s\n", pe->devargs, vuser_last_error());
		pthread_join(pe->th, NULL);
		return false;
	}
	return true;
}

static void peer_stop(struct peer *pe)
{
	atomic_store(&pe->stop, 1);
	pthread_join(pe->th, NULL);
}

/* ------------------------------------------------------------- the port */

/* Call process() until the link is as wanted; 1 if it got there in time. */
static int await_link(struct vuser_port *p, int want)
{
	double end = now() + WAIT_MS / 1000.0;

	while (now() < end) {
		struct pollfd pfd = { .fd = vuser_port_fd(p), .events = POLLIN };

		CHECK(vuser_port_process(p) >= 0);
		if (vuser_port_link(p) == want)
			return 1;
		poll(&pfd, 1, 10);
	}
	return 0;
}

/* Frame seq of a round: its length and every byte follow from (q, tag, seq). */
static uint32_t frame_len(unsigned seq)
{
	/* 64 .. 3063 bytes: chains on the way out, merged buffers on the way back. */
	return 64 + (seq * 37) % 3000;
}

static void frame_fill(uint8_t *f, unsigned q, unsigned tag, unsigned seq)
{
	uint32_t len = frame_len(seq);

	memset(f, 0, 24);
	f[12] = 0x88;
	f[13] = 0xb5;
	f[14] = (uint8_t)q;
	memcpy(f + 16, &tag, sizeof(tag));
	memcpy(f + 20, &seq, sizeof(seq));
	for (uint32_t i = 24; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seq + tag);
}

/*
 * FRAMES frames on each of the first nq queues, and every one back, intact
 * and in order, on the queue it left by.
 */
static void exchange(struct vuser_port *p, unsigned nq, unsigned tag)
{
	static uint8_t want[3200], got_f[3200];

	for (unsigned q = 0; q < nq; q++) {
		unsigned sent = 0, got = 0, bad = 0;
		double end = now() + WAIT_MS / 1000.0;

		while (got < FRAMES && now() < end) {
			struct vuser_buf *b[16];
			int n;

			if (sent < FRAMES && sent - got < 32 && !vuser_buf_alloc_bulk(p, b, 1)) {
				frame_fill(want, q, tag, sent);
				if (vuser_buf_write(b[0], want, frame_len(sent)) == 0 &&
				    vuser_tx_burst(p, q, b, 1) == 1)
					sent++;
				else
					vuser_buf_free(b[0]);
			}
			n = vuser_rx_burst(p, q, b, 16);
			for (int i = 0; i < n; i++) {
				uint32_t len = b[i]->pkt_len;

				frame_fill(want, q, tag, got);
				if (len != frame_len(got) ||
				    vuser_buf_read(b[i], 0, got_f, len) != len ||
				    memcmp(want, got_f, len))
					bad++;
				got++;
			}
			if (n > 0)
				vuser_buf_free_bulk(b, (unsigned)n);
		}
		CHECK_EQ(got, FRAMES);
		CHECK_EQ(bad, 0);
	}
}

/*
 * What a backend that dies under load leaves: frames sent and not taken
 * (the device stopped reading), receive buffers posted. Returns how many
 * frames were sent.
 */
static unsigned leave_in_flight(struct vuser_port *p, struct peer *pe, unsigned nq)
{
	struct vuser_port_info info;
	unsigned sent = 0;

	atomic_store(&pe->hold, 1);
	/* A burst the device may already be in cannot echo once hold is seen. */
	sleep_ms(2);
	for (unsigned q = 0; q < nq; q++) {
		struct vuser_buf *b[16];
		int k;

		if (vuser_buf_alloc_bulk(p, b, 16))
			continue;
		for (unsigned i = 0; i < 16; i++) {
			frame_fill(vuser_buf_data(b[i]), q, 0, 0);
			b[i]->data_len = b[i]->pkt_len = 64;
		}
		k = vuser_tx_burst(p, q, b, 16);
		CHECK_EQ(k, 16);
		if (k < 0)
			k = 0;
		sent += (unsigned)k;
		vuser_buf_free_bulk(b + k, 16 - (unsigned)k);
	}
	CHECK_EQ(vuser_port_info(p, &info), 0);
	/* Posted rx buffers and the frames just sent are in the rings, not the pool. */
	CHECK(info.free_bufs + sent < info.nb_bufs);
	return sent;
}

/* The link is down: bursts move nothing, and the rings gave every buffer back. */
static void check_down(struct vuser_port *p)
{
	struct vuser_port_info info;
	struct vuser_buf *b[8];

	CHECK_EQ(vuser_port_link(p), 0);
	CHECK_EQ(vuser_port_info(p, &info), 0);
	CHECK_EQ(info.free_bufs, info.nb_bufs);
	CHECK_EQ(info.active_queues, 0);
	for (unsigned q = 0; q < QUEUES; q++) {
		CHECK_EQ(vuser_rx_burst(p, q, b, 8), 0);
		if (vuser_buf_alloc_bulk(p, b, 1) == 0) {
			b[0]->data_len = b[0]->pkt_len = 64;
			/* Refused: the buffer stays the program's. */
			CHECK_EQ(vuser_tx_burst(p, q, b, 1), 0);
			vuser_buf_free(b[0]);
		}
	}
}

/* The port's fd turns readable for the work that waits (bounded). */
static void check_fd_readable(struct vuser_port *p, const char *why)
{
	struct pollfd pfd = { .fd = vuser_port_fd(p), .events = POLLIN };

	if (poll(&pfd, 1, WAIT_MS) != 1) {
		fprintf(stderr, "port fd not readable: %s\n", why);
		t_failures++;
	}
}

/* ------------------------------------------------------------------ 1 */

static void test_server(unsigned rounds)
{
	struct vuser_port_info info;
	struct vuser_buf *b[4];
	char sock[96], args[160];
	struct vuser_port *p = NULL;
	struct peer pe;
	struct stat st;

	snprintf(sock, sizeof(sock), "%s/server.sock", dir);
	snprintf(args, sizeof(args), "path=%s,server=1,queues=%d", sock, QUEUES);
	CHECK_EQ(vuser_port_open(args, &p), 0);
	if (!p)
		return;
	/* Open waits for no one: the link is down until a backend comes. */
	CHECK_EQ(vuser_port_link(p), 0);
	CHECK(vuser_port_fd(p) >= 0);
	CHECK_EQ(vuser_port_wait_link(p, 0), -ETIMEDOUT);
	CHECK_EQ(vuser_port_wait_link(p, 20), -ETIMEDOUT);
	CHECK_EQ(vuser_port_process(p), 0);
	CHECK_EQ(vuser_rx_burst(p, 0, b, 4), 0);
	CHECK_EQ(vuser_port_info(p, &info), 0);
	CHECK_EQ(info.connections, 0);
	CHECK_EQ(info.link_changes, 0);
	CHECK_EQ(info.free_bufs, info.nb_bufs);
	CHECK(lstat(sock, &st) == 0 && S_ISSOCK(st.st_mode));

	for (unsigned r = 0; r < rounds; r++) {
		/* Every third session uses one pair, chosen while no backend is there. */
		unsigned pairs = r % 3 == 2 ? 1 : QUEUES;
		int before = t_failures;

		CHECK_EQ(vuser_port_set_queue_pairs(p, pairs), 0);
		if (!peer_start(&pe, sock, true))
			break;
		check_fd_readable(p, "a backend waits to be accepted");
		CHECK_EQ(vuser_port_wait_link(p, WAIT_MS), 0);
		CHECK_EQ(vuser_port_info(p, &info), 0);
		CHECK_EQ(info.connections, r + 1);
		CHECK_EQ(info.link_changes, 2 * r + 1);
		CHECK_EQ(info.active_queues, pairs);
		exchange(p, pairs, r);
		if (pairs < QUEUES && vuser_buf_alloc_bulk(p, b, 1) == 0) {
			b[0]->data_len = b[0]->pkt_len = 64;
			CHECK_EQ(vuser_tx_burst(p, QUEUES - 1, b, 1), 0);
			vuser_buf_free(b[0]);
		}
		leave_in_flight(p, &pe, pairs);
		peer_stop(&pe);
		check_fd_readable(p, "the backend left");
		CHECK_EQ(vuser_port_process(p), 1);
		check_down(p);
		CHECK_EQ(vuser_port_info(p, &info), 0);
		CHECK_EQ(info.link_changes, 2 * r + 2);
		if (t_failures != before) {
			fprintf(stderr, "  server round %u\n", r);
			break;
		}
	}
	vuser_port_close(p);
	/* The socket file goes with the port. */
	CHECK(lstat(sock, &st) != 0);
}

/* ------------------------------------------------------------------ 2 */

static void test_client(unsigned rounds)
{
	struct vuser_port_info info;
	char sock[96], args[160];
	struct vuser_port *p = NULL;
	struct peer pe;

	snprintf(sock, sizeof(sock), "%s/client.sock", dir);
	snprintf(args, sizeof(args), "path=%s,queues=%d", sock, QUEUES);
	if (!peer_start(&pe, sock, false))
		return;
	CHECK_EQ(vuser_port_open(args, &p), 0);
	if (!p) {
		peer_stop(&pe);
		return;
	}
	CHECK_EQ(vuser_port_link(p), 1);
	for (unsigned r = 0; r < rounds; r++) {
		int before = t_failures;

		exchange(p, QUEUES, r);
		leave_in_flight(p, &pe, QUEUES);
		peer_stop(&pe);
		CHECK(await_link(p, 0));
		check_down(p);
		/* Back on the same path: the port finds it by itself. */
		if (!peer_start(&pe, sock, false))
			break;
		CHECK_EQ(vuser_port_wait_link(p, WAIT_MS), 0);
		CHECK_EQ(vuser_port_info(p, &info), 0);
		CHECK_EQ(info.connections, r + 2);
		CHECK_EQ(info.link_changes, 2 * r + 2);
		CHECK_EQ(info.active_queues, QUEUES);
		if (t_failures != before) {
			fprintf(stderr, "  client round %u\n", r);
			break;
		}
	}
	exchange(p, QUEUES, 1000);
	vuser_port_close(p);
	peer_stop(&pe);
}

/* ------------------------------------------------------------------ 3 */

static void test_no_reconnect(void)
{
	struct vuser_port_info info;
	char sock[96], args[160];
	struct vuser_port *p = NULL;
	struct peer pe;

	snprintf(sock, sizeof(sock), "%s/noreconnect.sock", dir);
	snprintf(args, sizeof(args), "path=%s,queues=%d,reconnect=0", sock, QUEUES);
	if (!peer_start(&pe, sock, false))
		return;
	CHECK_EQ(vuser_port_open(args, &p), 0);
	if (!p) {
		peer_stop(&pe);
		return;
	}
	exchange(p, QUEUES, 1);
	peer_stop(&pe);
	CHECK(await_link(p, 0));
	check_down(p);
	/* Nothing will bring it back: said at once, not after the timeout. */
	CHECK_EQ(vuser_port_wait_link(p, WAIT_MS), -ENOTCONN);
	if (peer_start(&pe, sock, false)) {
		for (int i = 0; i < 20; i++) {
			CHECK_EQ(vuser_port_process(p), 0);
			sleep_ms(10);
		}
		CHECK_EQ(vuser_port_link(p), 0);
		CHECK_EQ(vuser_port_info(p, &info), 0);
		CHECK_EQ(info.connections, 1);
		peer_stop(&pe);
	}
	vuser_port_close(p);
}

/* ------------------------------------------------------------------ 4 */

static atomic_int refusals;

/* The program's one log function (set once: threads log), counting refusals. */
static void count_refusals(enum vuser_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	if (strstr(msg, "refusing a second backend"))
		atomic_fetch_add(&refusals, 1);
}

static void test_second_backend(void)
{
	struct vuser_port_info info;
	char sock[96], args[160];
	struct vuser_port *p = NULL;
	struct peer a, b;

	snprintf(sock, sizeof(sock), "%s/second.sock", dir);
	snprintf(args, sizeof(args), "path=%s,server=1,queues=%d", sock, QUEUES);
	CHECK_EQ(vuser_port_open(args, &p), 0);
	if (!p)
		return;
	if (peer_start(&a, sock, true)) {
		CHECK_EQ(vuser_port_wait_link(p, WAIT_MS), 0);
		if (peer_start(&b, sock, true)) {
			double end = now() + 0.3;

			/* b keeps trying (client mode backs off and retries); each try is turned away. */
			atomic_store(&refusals, 0);
			while (now() < end) {
				CHECK(vuser_port_process(p) >= 0);
				sleep_ms(5);
			}
			CHECK(atomic_load(&refusals) >= 1);
			CHECK_EQ(vuser_port_link(p), 1);
			CHECK_EQ(vuser_port_info(p, &info), 0);
			CHECK_EQ(info.connections, 1);
			exchange(p, QUEUES, 2);
			peer_stop(&b);
		}
		peer_stop(&a);
		CHECK(await_link(p, 0));
		check_down(p);
	}
	vuser_port_close(p);
}

/* ------------------------------------------------------------------ 5 */

struct dp {
	struct vuser_port *p;
	atomic_int stop;
	atomic_ullong moved;
};

/* A datapath thread that never looks at the link: it only bursts. */
static void *dp_run(void *arg)
{
	struct dp *d = arg;

	while (!atomic_load(&d->stop)) {
		for (unsigned q = 0; q < QUEUES; q++) {
			struct vuser_buf *b[32];
			int n, k;

			if (vuser_buf_alloc_bulk(d->p, b, 8) == 0) {
				for (unsigned i = 0; i < 8; i++) {
					frame_fill(vuser_buf_data(b[i]), q, 9, i);
					b[i]->data_len = b[i]->pkt_len = 64;
				}
				k = vuser_tx_burst(d->p, q, b, 8);
				if (k < 0)
					k = 0;
				vuser_buf_free_bulk(b + k, 8 - (unsigned)k);
			}
			n = vuser_rx_burst(d->p, q, b, 32);
			if (n > 0) {
				atomic_fetch_add(&d->moved, (unsigned long long)n);
				vuser_buf_free_bulk(b, (unsigned)n);
			}
		}
	}
	return NULL;
}

static void test_datapath_thread(unsigned rounds)
{
	char sock[96], args[160];
	struct dp d = { 0 };
	struct peer pe;
	pthread_t th;

	snprintf(sock, sizeof(sock), "%s/datapath.sock", dir);
	snprintf(args, sizeof(args), "path=%s,server=1,queues=%d", sock, QUEUES);
	CHECK_EQ(vuser_port_open(args, &d.p), 0);
	if (!d.p)
		return;
	if (pthread_create(&th, NULL, dp_run, &d)) {
		vuser_port_close(d.p);
		return;
	}
	for (unsigned r = 0; r < rounds; r++) {
		unsigned long long m0;
		double end;

		if (!peer_start(&pe, sock, true))
			break;
		CHECK_EQ(vuser_port_wait_link(d.p, WAIT_MS), 0);
		/* Frames move under the control thread's feet before the device goes. */
		m0 = atomic_load(&d.moved);
		end = now() + WAIT_MS / 1000.0;
		while (atomic_load(&d.moved) < m0 + 64 && now() < end) {
			CHECK(vuser_port_process(d.p) >= 0);
			sleep_ms(1);
		}
		CHECK(atomic_load(&d.moved) >= m0 + 64);
		peer_stop(&pe);
		CHECK(await_link(d.p, 0));
	}
	atomic_store(&d.stop, 1);
	pthread_join(th, NULL);
	/* The thread holds nothing now: every buffer is in the pool. */
	check_down(d.p);
	vuser_port_close(d.p);
}

/* ------------------------------------------------------------------ 6 */

static void test_paths(void)
{
	char path[96], args[160];
	struct vuser_port *p = NULL;
	struct stat st;
	FILE *f;

	snprintf(path, sizeof(path), "%s/not-a-socket", dir);
	f = fopen(path, "w");
	if (!f)
		return;
	fclose(f);
	snprintf(args, sizeof(args), "path=%s,server=1", path);
	CHECK_EQ(vuser_port_open(args, &p), -EEXIST);
	CHECK_STR_HAS(vuser_last_error(), "not a socket");
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	unlink(path);

	/* A client with no backend at open still fails at once, naming the path. */
	snprintf(path, sizeof(path), "%s/nobody.sock", dir);
	snprintf(args, sizeof(args), "path=%s", path);
	CHECK_EQ(vuser_port_open(args, &p), -ENOENT);
	CHECK_STR_HAS(vuser_last_error(), "nobody.sock");
}

int main(void)
{
	int fds0, fds1, before;
	long rss0, rss1;
	double t;

	vuser_set_log(count_refusals, NULL, VUSER_LOG_WARN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(dir))
		return 1;
	fds0 = t_count_fds();
	/* A first pass warms up thread stacks, stdio and the allocator. */
	test_client(2);
	rss0 = t_rss_kib();

#define RUN(name, call)                                                           \
	do {                                                                      \
		before = t_failures;                                              \
		t = now();                                                        \
		call;                                                             \
		printf("%-40s %s (%.0f ms)\n", name, t_failures == before ? "ok" : "FAIL", \
		       (now() - t) * 1000);                                       \
	} while (0)
	RUN("1 server, backends one after another", test_server(ROUNDS));
	RUN("2 client, reconnecting by itself", test_client(ROUNDS / 2));
	RUN("3 reconnect=0 stays down", test_no_reconnect());
	RUN("4 a second backend is turned away", test_second_backend());
	RUN("5 datapath thread across sessions", test_datapath_thread(ROUNDS / 2));
	RUN("6 paths", test_paths());

	fds1 = t_count_fds();
	rss1 = t_rss_kib();
	printf("fds %d -> %d, RSS %ld -> %ld KiB\n", fds0, fds1, rss0, rss1);
	CHECK_EQ(fds1, fds0);
#if T_ASAN
	/* The sanitizer's shadow grows with every arena mapped; LeakSanitizer checks the heap. */
	printf("RSS not compared under AddressSanitizer\n");
#else
	CHECK(rss1 - rss0 <= RSS_SLACK_KIB);
#endif
	rmdir(dir);
	return t_result();
}
