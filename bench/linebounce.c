/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The floor under every ping-pong in the bench: how long one cache line
 * takes to go from one core to the other and back, with nothing else done.
 * Two threads, pinned to the two cores, each write a counter in a line of
 * its own and spin until the other's counter answers.
 *
 * Every virtio round trip in the bench is built of such transfers: each
 * way, the side that polls sees an index or descriptor the other side wrote,
 * then reads the frame it covers.
 *
 * Usage: linebounce [CPU_A CPU_B [ROUND_TRIPS]]   (default 0 1 2000000)
 * Prints the mean nanoseconds per round trip. Every wait is bounded: a
 * partner that stops answering for a second ends the run with exit code 1.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct line {
	_Alignas(64) volatile uint64_t v;
	char pad[64 - sizeof(uint64_t)];
};

static struct line ping, pong;
static volatile int stop;
static uint64_t rounds;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Spin until *p == want; false after a second without it (or when told to stop). */
static int await(volatile uint64_t *p, uint64_t want)
{
	unsigned spins = 0;
	double deadline = 0;

	while (*p != want) {
		if (stop)
			return 0;
		if (++spins == 1u << 20) {
			spins = 0;
			if (!deadline)
				deadline = now() + 1.0;
			else if (now() > deadline)
				return 0;
		}
	}
	return 1;
}

static void *answer(void *arg)
{
	if (pin(*(int *)arg)) {
		stop = 1;
		return NULL;
	}
	for (uint64_t i = 1; i <= rounds; i++) {
		if (!await(&ping.v, i)) {
			stop = 1;
			break;
		}
		pong.v = i;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int a = argc > 2 ? atoi(argv[1]) : 0, b = argc > 2 ? atoi(argv[2]) : 1;
	pthread_t th;
	double t0, t1;
	int ok = 1;

	rounds = argc > 3 ? strtoull(argv[3], NULL, 10) : 2000000;
	if (!rounds || pin(a)) {
		fprintf(stderr, "linebounce: cannot run on cpu %d (or no round trips)\n", a);
		return 2;
	}
	if (pthread_create(&th, NULL, answer, &b)) {
		fprintf(stderr, "linebounce: cannot start the second thread\n");
		return 2;
	}
	t0 = now();
	for (uint64_t i = 1; i <= rounds && ok; i++) {
		ping.v = i;
		ok = await(&pong.v, i);
	}
	t1 = now();
	stop = 1;
	pthread_join(th, NULL);
	if (!ok) {
		fprintf(stderr, "linebounce: the thread on cpu %d stopped answering\n", b);
		return 1;
	}
	printf("%.1f\n", (t1 - t0) * 1e9 / (double)rounds);
	return 0;
}
