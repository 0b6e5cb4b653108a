/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/compat.h"
#include "base/pool.h"

/* A buffer's metadata is one cache line: the datapath touches it per frame. */
_Static_assert(sizeof(struct vuser_buf) == 64, "struct vuser_buf grew past a cache line");

int vpool_init(struct vuser_pool *pool, struct varena *a, unsigned n)
{
	uint8_t *mem;

	mem = varena_carve(a, vpool_mem_size(n), 64);
	if (!mem)
		return verr(-ENOMEM, "arena too small for %u buffers", n);
	pool->bufs = calloc(n, sizeof(*pool->bufs));
	pool->stack = calloc(n, sizeof(*pool->stack));
	if (!pool->bufs || !pool->stack) {
		vpool_destroy(pool);
		return verr(-ENOMEM, "no memory for %u buffer descriptors", n);
	}
	pool->nb = n;
	pool->mem_lo = mem;
	pool->mem_hi = mem + vpool_mem_size(n);
	/* Backwards, so that the first buffers taken are the lowest in memory. */
	for (unsigned i = 0; i < n; i++) {
		struct vuser_buf *b = &pool->bufs[i];

		b->base = mem + (size_t)i * VPOOL_SEG_SIZE;
		b->room = VPOOL_SEG_SIZE;
		b->iova = (uint64_t)(uintptr_t)b->base;
		b->pool = pool;
		vbuf_reset(b);
		pool->stack[n - 1 - i] = b;
	}
	pool->lock = 0;
	pool->top = n;
	return 0;
}

void vpool_destroy(struct vuser_pool *pool)
{
	free(pool->bufs);
	free(pool->stack);
	pool->bufs = NULL;
	pool->stack = NULL;
}

/*
 * The lock is held for a copy of at most a burst of pointers; a holder that
 * was preempted is waited for with the CPU given up now and then.
 */
static void lock(struct vuser_pool *pool)
{
	unsigned spins = 0;

	while (__atomic_exchange_n(&pool->lock, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&pool->lock, __ATOMIC_RELAXED)) {
			if (++spins & 63)
				cpu_relax();
			else
				sched_yield();
		}
	}
}

static void unlock(struct vuser_pool *pool)
{
	__atomic_store_n(&pool->lock, 0, __ATOMIC_RELEASE);
}

unsigned vpool_get(struct vuser_pool *pool, struct vuser_buf **b, unsigned n)
{
	uint32_t top;

	if (!n)
		return 0;
	lock(pool);
	top = pool->top;
	if (top < n) {
		unlock(pool);
		return 0;
	}
	top -= n;
	/* The most recently freed first: their lines are the likeliest to be in cache. */
	for (unsigned i = 0; i < n; i++)
		b[i] = pool->stack[top + n - 1 - i];
	__atomic_store_n(&pool->top, top, __ATOMIC_RELAXED);
	unlock(pool);
	return n;
}

void vpool_put(struct vuser_pool *pool, struct vuser_buf *const *b, unsigned n)
{
	uint32_t top;

	if (!n)
		return;
	lock(pool);
	/* The stack holds every buffer of the pool, so a put never finds it full. */
	top = pool->top;
	for (unsigned i = 0; i < n; i++)
		pool->stack[top + i] = b[i];
	__atomic_store_n(&pool->top, top + n, __ATOMIC_RELAXED);
	unlock(pool);
}

void vpool_put_chains(struct vuser_buf *const *b, unsigned n)
{
	struct vuser_buf *batch[64];
	struct vuser_pool *pool = NULL;
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		for (struct vuser_buf *s = b[i], *nx; s; s = nx) {
			nx = s->next;
			if (k == 64 || (pool && s->pool != pool)) {
				vpool_put(pool, batch, k);
				k = 0;
			}
			pool = s->pool;
			batch[k++] = s;
		}
	}
	if (k)
		vpool_put(pool, batch, k);
}

unsigned vpool_count_free(const struct vuser_pool *pool)
{
	return __atomic_load_n(&pool->top, __ATOMIC_RELAXED);
}
