/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Sending lines back to memory once they have been read, where that makes
 * their writer faster, and finding out whether it does.
 *
 * A frontend writes each frame into a buffer the device read on the last
 * lap, so its store must first take the line away from the device's core.
 * When the two cores share a cache that is quick, and a flush would only
 * send the writer to memory. When they are far apart (other dies or
 * sockets, as a host may place two vCPUs) it can cost more than a read from
 * memory: on such a host DPDK's virtio_user sent 30 % more into a device
 * that flushed every line it had copied, and 22 % less on the same host
 * with the two vCPUs close. Timing single loads does not tell the two cases
 * apart (the device's own look-ahead has most lines here before it reads
 * them), so struct vtrial measures what a flush is for: frames per second,
 * with and without, a few times a second, and keeps the faster.
 */
#ifndef VUSER_BASE_LINES_H
#define VUSER_BASE_LINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True where vlines_flush() does something (x86-64 with clflushopt). */
bool vlines_can_flush(void);

/* Write back and drop every line of [p, p + len) from every cache. */
static inline void vlines_flush(const void *p, size_t len)
{
#if defined(__x86_64__)
	uintptr_t a = (uintptr_t)p & ~(uintptr_t)63;
	const uintptr_t end = (uintptr_t)p + len;

	for (; a < end; a += 64)
		__asm__ volatile("clflushopt %0" ::"m"(*(const char *)a));
#else
	(void)p;
	(void)len;
#endif
}

/*
 * Two ways of running a loop, measured against each other: four windows
 * of about 16 ms (off, on, off, on), then about a second on when each "on"
 * window moved at least 3 % more frames per cycle than both "off" ones, else
 * off; then again. Off when neither wins: no traffic, traffic that changed
 * during the trial, or a sender (or a ping-pong) that the flush does not
 * help.
 */
#define VTRIAL_WINDOW (1ull << 25)  /* time stamp cycles: 16 ms at 2 GHz */
#define VTRIAL_SETTLE (1ull << 31)  /* about 1 s at 2 GHz */

struct vtrial {
	uint64_t t0;        /* start of the window (time stamp counter) */
	uint64_t frames;    /* frames in it */
	uint64_t rate[4];   /* frames per 2^20 cycles in each window of the trial */
	uint16_t tick;
	uint8_t step;       /* 0: settled; 1-4: the trial's windows */
	bool on;
	bool can;           /* vlines_can_flush(): else always off */
};

void vtrial_init(struct vtrial *t);
void vtrial_step(struct vtrial *t);
/* vtrial_step() with the time stamp given (for tests). */
void vtrial_step_at(struct vtrial *t, uint64_t now);

/* After every poll: frames it moved. Looks at the clock one poll in 64. */
static inline void vtrial_tick(struct vtrial *t, unsigned frames)
{
	t->frames += frames;
	if (!(++t->tick & 63) && t->can)
		vtrial_step(t);
}

#endif
