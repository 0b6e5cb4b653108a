/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The buffer pool (src/base/pool.c): all-or-nothing bulk get, put, chains,
 * where the segments live, last freed first taken, and the stack under
 * several threads. Buffers are checked by identity against pool->bufs, and
 * the free stack is
 * read directly at the end, so a lost or duplicated buffer cannot hide
 * behind a count that happens to add up.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "base/arena.h"
#include "base/pool.h"
#include "testlib.h"

static int arena_for(struct varena *a, unsigned nbufs)
{
	if (varena_create(a, vpool_mem_size(nbufs) + 4096, "test-pool")) {
		fprintf(stderr, "varena_create failed\n");
		exit(1);
	}
	return 0;
}

/* Every buffer exactly once on the free stack: no loss, no double free. */
static void check_pool_whole(const struct vuser_pool *p)
{
	uint8_t *seen = calloc(p->nb, 1);
	unsigned nfree = vpool_count_free(p), dup = 0, bad = 0;

	CHECK_EQ(nfree, p->nb);
	CHECK_EQ(p->lock, 0);
	for (unsigned i = 0; i < nfree && i < p->nb; i++) {
		struct vuser_buf *b = p->stack[i];
		ptrdiff_t k = b - p->bufs;

		if (k < 0 || (size_t)k >= p->nb)
			bad++;
		else if (seen[k]++)
			dup++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(dup, 0);
	free(seen);
}

static int cmp_base(const void *x, const void *y)
{
	const struct vuser_buf *a = *(struct vuser_buf *const *)x;
	const struct vuser_buf *b = *(struct vuser_buf *const *)y;

	return a->base < b->base ? -1 : a->base > b->base;
}

static void test_basic(unsigned n)
{
	struct varena a;
	struct vuser_pool p;
	struct vuser_buf **b = calloc(n + 1, sizeof(*b));
	uint8_t *lo, *hi;

	arena_for(&a, n);
	/* Something carved first: the pool need not start at the arena's base. */
	CHECK(varena_carve(&a, 100, 8) != NULL);
	CHECK_EQ(vpool_init(&p, &a, n), 0);
	CHECK_EQ(p.nb, n);
	CHECK_EQ(vpool_count_free(&p), n);
	check_pool_whole(&p);

	/* Zero is a valid request that takes nothing (vuser_buf_alloc_bulk passes it on). */
	CHECK_EQ(vpool_get(&p, b, 0), 0);
	vpool_put(&p, b, 0);
	CHECK_EQ(vpool_count_free(&p), n);
	check_pool_whole(&p);

	/* All or nothing: one too many takes none. */
	CHECK_EQ(vpool_get(&p, b, n + 1), 0);
	CHECK_EQ(vpool_count_free(&p), n);
	CHECK_EQ(vpool_get(&p, b, n), n);
	CHECK_EQ(vpool_count_free(&p), 0);
	CHECK_EQ(vpool_get(&p, b + n, 1), 0);

	lo = a.base;
	hi = a.base + a.size;
	qsort(b, n, sizeof(*b), cmp_base);
	for (unsigned i = 0; i < n; i++) {
		CHECK(b[i] >= p.bufs && b[i] < p.bufs + n);
		CHECK(b[i]->base >= lo && b[i]->base + VPOOL_SEG_SIZE <= hi);
		CHECK(b[i]->base >= p.mem_lo && b[i]->base + VPOOL_SEG_SIZE <= p.mem_hi);
		CHECK_EQ(b[i]->iova, (uint64_t)(uintptr_t)b[i]->base);
		CHECK_EQ(b[i]->room, VPOOL_SEG_SIZE);
		CHECK(b[i]->pool == &p);
		CHECK_EQ(b[i]->data_off, VUSER_BUF_HEADROOM);
		CHECK_EQ(b[i]->nb_segs, 1);
		CHECK(b[i]->next == NULL);
		/* Distinct segments, back to back, none overlapping. */
		if (i)
			CHECK_EQ(b[i]->base - b[i - 1]->base, VPOOL_SEG_SIZE);
	}
	/* The backend maps the segments: they must be usable memory end to end. */
	for (unsigned i = 0; i < n; i++)
		memset(b[i]->base, (int)i, VPOOL_SEG_SIZE);

	if (n >= 4) {
		unsigned k = n / 2;

		vpool_put(&p, b, k);
		CHECK_EQ(vpool_count_free(&p), k);
		/* Asking for more than is free takes none, even when some are free. */
		CHECK_EQ(vpool_get(&p, b, k + 1), 0);
		CHECK_EQ(vpool_count_free(&p), k);
		CHECK_EQ(vpool_get(&p, b, k - 1), k - 1);
		CHECK_EQ(vpool_count_free(&p), 1);
		vpool_put(&p, b, k - 1);
		vpool_put(&p, b + k, n - k);
	} else {
		vpool_put(&p, b, n);
	}
	CHECK_EQ(vpool_count_free(&p), n);
	check_pool_whole(&p);

	/* Many get/put rounds of every size. */
	for (unsigned r = 0; r < 10 * n + 7; r++) {
		unsigned k = 1 + r % n;

		CHECK_EQ(vpool_get(&p, b, k), k);
		vpool_put(&p, b, k);
	}
	check_pool_whole(&p);

	/* Last freed, first taken: the buffers still in cache go out again. */
	if (n >= 2) {
		struct vuser_buf *x[2], *y[2];

		CHECK_EQ(vpool_get(&p, x, 2), 2);
		vpool_put(&p, &x[1], 1);
		vpool_put(&p, &x[0], 1);
		CHECK_EQ(vpool_get(&p, y, 2), 2);
		CHECK(y[0] == x[0] && y[1] == x[1]);
		vpool_put(&p, y, 2);
	}
	check_pool_whole(&p);

	vpool_destroy(&p);
	varena_destroy(&a);
	free(b);
}

static int nb_logged;

static void count_log(enum vuser_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
	nb_logged++;
}

static void test_too_small(void)
{
	struct varena a;
	struct vuser_pool p;

	arena_for(&a, 4);
	vuser_set_log(count_log, NULL, VUSER_LOG_ERR);
	/* The arena rounds to a page; far more than a page's worth cannot fit. */
	CHECK_EQ(vpool_init(&p, &a, (unsigned)(a.size / VPOOL_SEG_SIZE) + 1), -ENOMEM);
	CHECK_EQ(nb_logged, 1);
	CHECK_STR_HAS(vuser_last_error(), "arena too small");
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	varena_destroy(&a);
}

/* Link segs into one frame, as the public append calls would. */
static struct vuser_buf *link_chain(struct vuser_buf **segs, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		segs[i]->next = i + 1 < n ? segs[i + 1] : NULL;
		segs[i]->data_len = 1;
	}
	segs[0]->nb_segs = (uint16_t)n;
	return segs[0];
}

static void test_put_chains(void)
{
	struct varena a;
	struct vuser_pool p1, p2;
	struct vuser_buf *s1[200], *s2[100], *mixed[20], *chains[4];

	if (varena_create(&a, vpool_mem_size(300) + 4096, "test-pool-chains")) {
		fprintf(stderr, "varena_create failed\n");
		exit(1);
	}
	CHECK_EQ(vpool_init(&p1, &a, 200), 0);
	CHECK_EQ(vpool_init(&p2, &a, 100), 0);
	CHECK(p1.mem_hi <= p2.mem_lo);

	CHECK_EQ(vpool_get(&p1, s1, 200), 200);
	CHECK_EQ(vpool_get(&p2, s2, 100), 100);
	/* Longer than the 64-buffer batch put_chains gathers internally. */
	chains[0] = link_chain(s1, 150);
	chains[1] = link_chain(s1 + 150, 1);
	/* Segments from two pools in one chain: each goes home. */
	for (unsigned i = 0; i < 20; i++)
		mixed[i] = i % 2 ? s2[i / 2] : s1[151 + i / 2];
	chains[2] = link_chain(mixed, 20);
	chains[3] = link_chain(s2 + 10, 90);
	vpool_put_chains(chains, 4);
	CHECK_EQ(vpool_count_free(&p1), 161);
	CHECK_EQ(vpool_count_free(&p2), 100);
	/* The rest of p1 singly, through the chain call with one-segment chains. */
	for (unsigned i = 161; i < 200; i++)
		s1[i]->next = NULL;
	vpool_put_chains(s1 + 161, 39);
	vpool_put_chains(NULL, 0);
	check_pool_whole(&p1);
	check_pool_whole(&p2);
	vpool_destroy(&p1);
	vpool_destroy(&p2);
	varena_destroy(&a);
}

/* ------------------------------------------------------------------ */
/* Concurrency */

#ifndef NTHREADS
#define NTHREADS 4
#endif
#ifndef ITERS
#define ITERS 50000
#endif
#define MAXHOLD 48
#define NBUFS 128 /* less than NTHREADS * MAXHOLD: gets fail under contention too */

struct run {
	struct vuser_pool *pool;
	pthread_barrier_t start;  /* all at once: staggered starts barely overlap */
	unsigned iters;
	int cpu;                /* pin every thread here, or -1 */
};

struct worker {
	pthread_t th;
	struct run *run;
	uint32_t id;
	uint64_t rng;
	/* Counted here, checked by main: CHECK is not thread-safe. */
	unsigned long iters, gets, fails, bad_count, bad_range, stolen;
};

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint32_t wrnd(struct worker *w, uint32_t bound)
{
	w->rng ^= w->rng << 13;
	w->rng ^= w->rng >> 7;
	w->rng ^= w->rng << 17;
	return (uint32_t)(w->rng % bound);
}

/*
 * The tag goes both in the segment (shared memory) and in the metadata, and
 * carries a serial so a buffer handed out, back and out again to the same
 * thread is also told apart.
 */
static uint64_t tag_of(const struct worker *w, unsigned long serial)
{
	return ((uint64_t)w->id << 48) | serial;
}

static void tag(struct worker *w, struct vuser_buf *b, unsigned long serial)
{
	uint64_t t = tag_of(w, serial);

	memcpy(b->base + VUSER_BUF_HEADROOM, &t, sizeof(t));
	b->pkt_len = (uint32_t)t ^ w->id;
	b->data_len = w->id;
}

static bool tag_ok(const struct worker *w, const struct vuser_buf *b, unsigned long serial)
{
	uint64_t t;

	memcpy(&t, b->base + VUSER_BUF_HEADROOM, sizeof(t));
	return t == tag_of(w, serial) && b->pkt_len == ((uint32_t)t ^ w->id) &&
	       b->data_len == w->id;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct vuser_pool *p = w->run->pool;
	struct vuser_buf *held[MAXHOLD];
	unsigned long serial[MAXHOLD], next_serial = 1;
	unsigned nheld = 0, it;

	if (w->run->cpu >= 0) {
		cpu_set_t one;

		CPU_ZERO(&one);
		CPU_SET(w->run->cpu, &one);
		pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	}
	pthread_barrier_wait(&w->run->start);
	for (it = 0; it < w->run->iters; it++) {
		bool get = nheld == 0 || (nheld < MAXHOLD && wrnd(w, 2));

		if (get) {
			unsigned k = 1 + wrnd(w, MAXHOLD - nheld < 16 ? MAXHOLD - nheld : 16);
			unsigned got = vpool_get(p, held + nheld, k);

			if (got == 0) {
				w->fails++;
				continue;
			}
			if (got != k)
				w->bad_count++;
			for (unsigned i = nheld; i < nheld + got; i++) {
				if (held[i] < p->bufs || held[i] >= p->bufs + p->nb) {
					w->bad_range++;
					continue;
				}
				serial[i] = next_serial++;
				tag(w, held[i], serial[i]);
			}
			nheld += got;
			w->gets++;
		} else {
			/* Give back a random run from the end, after checking nobody else wrote it. */
			unsigned k = 1 + wrnd(w, nheld);

			for (unsigned i = nheld - k; i < nheld; i++)
				if (!tag_ok(w, held[i], serial[i]))
					w->stolen++;
			vpool_put(p, held + nheld - k, k);
			nheld -= k;
		}
	}
	w->iters = it;
	for (unsigned i = 0; i < nheld; i++)
		if (!tag_ok(w, held[i], serial[i]))
			w->stolen++;
	if (nheld)
		vpool_put(p, held, nheld);
	return NULL;
}

static void test_threads(int cpu)
{
	struct varena a;
	struct vuser_pool p;
	struct worker w[NTHREADS];
	struct run run = { .pool = &p, .iters = ITERS, .cpu = cpu };
	unsigned long total = 0;
	double t0, secs;

	arena_for(&a, NBUFS);
	CHECK_EQ(vpool_init(&p, &a, NBUFS), 0);
	pthread_barrier_init(&run.start, NULL, NTHREADS);
	t0 = now();
	for (unsigned i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .run = &run, .id = i + 1,
					.rng = 0x2545f4914f6cdd1dull * (i + 1) };
		if (pthread_create(&w[i].th, NULL, worker_main, &w[i])) {
			fprintf(stderr, "pthread_create failed\n");
			exit(1);
		}
	}
	for (unsigned i = 0; i < NTHREADS; i++) {
		struct timespec limit;

		/* Far beyond any honest run: only a thread stuck inside the pool gets here. */
		clock_gettime(CLOCK_REALTIME, &limit);
		limit.tv_sec += 30;
		if (pthread_timedjoin_np(w[i].th, NULL, &limit)) {
			fprintf(stderr, "%s:%d: check failed: thread %u stuck in vpool_get/put for 30 s\n",
				__FILE__, __LINE__, w[i].id);
			t_failures++;
			fflush(NULL);
			_exit(t_result());
		}
	}
	secs = now() - t0;
	pthread_barrier_destroy(&run.start);

	for (unsigned i = 0; i < NTHREADS; i++) {
		CHECK_EQ(w[i].bad_count, 0);
		CHECK_EQ(w[i].bad_range, 0);
		CHECK_EQ(w[i].stolen, 0);
		CHECK_EQ(w[i].iters, ITERS);
		total += w[i].iters;
		printf("thread %u: %lu iterations, %lu gets, %lu refused\n", w[i].id, w[i].iters,
		       w[i].gets, w[i].fails);
	}
	printf("%u threads%s: %lu iterations in %.2f s\n", NTHREADS, cpu >= 0 ? " on one CPU" : "",
	       total, secs);
	check_pool_whole(&p);
	vpool_destroy(&p);
	varena_destroy(&a);
}

/*
 * A zero-sized get or put next to a real one on another thread. Claiming an
 * empty span leaves head where it was, so the other thread can claim the
 * same start, publish past it, and leave the empty claimer waiting for a
 * tail that has already gone by. A hang here is reported, not waited out.
 */
static struct vuser_pool *zero_pool;
static int zero_stop;

static void *zero_main(void *arg)
{
	struct vuser_buf *b[1];
	double end = now() + 0.5;

	(void)arg;
	for (unsigned i = 0; i < 2000000 && !(i % 1024 == 0 && now() > end); i++) {
		vpool_get(zero_pool, b, 0);
		vpool_put(zero_pool, b, 0);
	}
	return NULL;
}

static void *busy_main(void *arg)
{
	struct vuser_buf *b[4];

	(void)arg;
	while (!__atomic_load_n(&zero_stop, __ATOMIC_RELAXED))
		if (vpool_get(zero_pool, b, 4))
			vpool_put(zero_pool, b, 4);
	return NULL;
}

static void test_zero_concurrent(void)
{
	struct varena a;
	struct vuser_pool p;
	pthread_t z, busy;
	struct timespec limit;

	arena_for(&a, 64);
	CHECK_EQ(vpool_init(&p, &a, 64), 0);
	zero_pool = &p;
	if (pthread_create(&busy, NULL, busy_main, NULL) ||
	    pthread_create(&z, NULL, zero_main, NULL)) {
		fprintf(stderr, "pthread_create failed\n");
		exit(1);
	}
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 5;
	if (pthread_timedjoin_np(z, NULL, &limit)) {
		/* The stuck thread cannot be stopped: report and leave. */
		fprintf(stderr, "%s:%d: check failed: vpool_get/vpool_put(n = 0) beside a "
				"concurrent get/put never returned\n", __FILE__, __LINE__);
		t_failures++;
		fflush(NULL);
		_exit(t_result());
	}
	__atomic_store_n(&zero_stop, 1, __ATOMIC_RELAXED);
	pthread_join(busy, NULL);
	check_pool_whole(&p);
	vpool_destroy(&p);
	varena_destroy(&a);
}

/* The first CPU this process may run on. */
static int first_cpu(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set))
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	return -1;
}

int main(void)
{
	test_basic(1);
	test_basic(64);
	test_basic(100);
	test_basic(257);
	test_too_small();
	test_put_chains();
	/* Threads spread over the cores: real simultaneity. */
	test_threads(-1);
	/*
	 * All on one CPU: preempted at any instruction, including while
	 * holding the stack's lock.
	 */
	if (first_cpu() >= 0)
		test_threads(first_cpu());
	/* Last: on failure it cannot clean up and leaves at once. */
	test_zero_concurrent();
	return t_result();
}
