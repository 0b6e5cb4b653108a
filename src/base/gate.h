/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A gate between one queue's datapath and the control side. The datapath
 * marks itself busy for the length of a burst and runs only while the gate
 * is open; the control side shuts the gate and waits for busy to drop
 * before it changes the ring or the memory under it.
 *
 * That is Dekker's handshake, and it needs a full barrier on each side
 * between the store and the load. The datapath runs millions of times a
 * second and the control side almost never, so the barrier is made
 * asymmetric when the kernel allows: the control side asks membarrier(2)
 * to run one on every thread of the process, and the datapath gets away
 * with a compiler barrier. Without membarrier both sides fence.
 */
#ifndef VUSER_BASE_GATE_H
#define VUSER_BASE_GATE_H

#include <sched.h>
#include <stdbool.h>

#include "base/compat.h"

struct vgate {
	int busy;
	int live;
};

/* Set once by vgate_setup(): membarrier stands in for the datapath's fence. */
extern bool vgate_asymmetric;

/* Call before any gate is used (from open paths); cheap after the first time. */
void vgate_setup(void);

static inline bool vgate_enter(struct vgate *g)
{
	__atomic_store_n(&g->busy, 1, __ATOMIC_RELAXED);
	if (likely(vgate_asymmetric))
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
	else
		vfence_full();
	/* Acquire: what the control side set up before opening is ours to read. */
	if (likely(__atomic_load_n(&g->live, __ATOMIC_ACQUIRE)))
		return true;
	__atomic_store_n(&g->busy, 0, __ATOMIC_RELEASE);
	return false;
}

static inline void vgate_leave(struct vgate *g)
{
	__atomic_store_n(&g->busy, 0, __ATOMIC_RELEASE);
}

static inline void vgate_open(struct vgate *g, bool live)
{
	__atomic_store_n(&g->live, live, __ATOMIC_RELEASE);
}

/* Shut without waiting: the datapath's own way to stop using a broken ring. */
static inline void vgate_shut(struct vgate *g)
{
	__atomic_store_n(&g->live, 0, __ATOMIC_RELAXED);
}

/*
 * After shutting gates: make the shutting visible to every datapath thread
 * (or see their busy marks), then wait for each gate's burst to end.
 */
void vgate_sync(void);

static inline void vgate_wait(const struct vgate *g)
{
	unsigned spins = 0;

	while (__atomic_load_n(&g->busy, __ATOMIC_ACQUIRE)) {
		/* A burst preempted on a busy machine needs the CPU to finish. */
		if (++spins & 63)
			cpu_relax();
		else
			sched_yield();
	}
}

static inline void vgate_close(struct vgate *g)
{
	vgate_shut(g);
	vgate_sync();
	vgate_wait(g);
}

#endif
