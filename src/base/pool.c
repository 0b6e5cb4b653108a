/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/compat.h"
#include "base/pool.h"

int vpool_init(struct vuser_pool *pool, struct varena *a, unsigned n)
{
	uint32_t cap = 1;
	uint8_t *mem;

	while (cap < n)
		cap <<= 1;
	mem = varena_carve(a, vpool_mem_size(n), 64);
	if (!mem)
		return verr(-ENOMEM, "arena too small for %u buffers", n);
	pool->bufs = calloc(n, sizeof(*pool->bufs));
	pool->ring = calloc(cap, sizeof(*pool->ring));
	if (!pool->bufs || !pool->ring) {
		vpool_destroy(pool);
		return verr(-ENOMEM, "no memory for %u buffer descriptors", n);
	}
	pool->nb = n;
	pool->mask = cap - 1;
	pool->mem_lo = mem;
	pool->mem_hi = mem + vpool_mem_size(n);
	for (unsigned i = 0; i < n; i++) {
		struct vuser_buf *b = &pool->bufs[i];

		b->base = mem + (size_t)i * VPOOL_SEG_SIZE;
		b->room = VPOOL_SEG_SIZE;
		b->iova = (uint64_t)(uintptr_t)b->base;
		b->pool = pool;
		vbuf_reset(b);
		pool->ring[i] = b;
	}
	pool->prod.head = pool->prod.tail = n;
	pool->cons.head = pool->cons.tail = 0;
	return 0;
}

void vpool_destroy(struct vuser_pool *pool)
{
	free(pool->bufs);
	free(pool->ring);
	pool->bufs = NULL;
	pool->ring = NULL;
}

/*
 * Wait for earlier claimers to publish. A claimer preempted between its CAS
 * and its publish holds everyone up, so after a short spin give the CPU
 * away: with more threads than cores, spinning only delays it further.
 *
 * The load acquires: our own publish is a plain store, which does not carry
 * an earlier claimer's release along, so a thread that acquires our tail
 * sees the earlier claimer's slots only if we synchronized with it first.
 */
static void wait_turn(const uint32_t *tail, uint32_t head)
{
	unsigned spins = 0;

	while (__atomic_load_n(tail, __ATOMIC_ACQUIRE) != head) {
		if (++spins & 63)
			cpu_relax();
		else
			sched_yield();
	}
}

/*
 * Both directions follow one protocol: claim a span by moving `head` with a
 * CAS, copy, then wait for earlier claimers to publish and move `tail` with a
 * release store, which makes the copied pointers visible to the other side.
 */
unsigned vpool_get(struct vuser_pool *pool, struct vuser_buf **b, unsigned n)
{
	uint32_t head, next, avail;

	/* An empty claim would wait for a tail that has already moved past it. */
	if (!n)
		return 0;
	head = __atomic_load_n(&pool->cons.head, __ATOMIC_RELAXED);
	do {
		avail = __atomic_load_n(&pool->prod.tail, __ATOMIC_ACQUIRE) - head;
		if (avail < n)
			return 0;
		next = head + n;
	} while (!__atomic_compare_exchange_n(&pool->cons.head, &head, next, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < n; i++)
		b[i] = pool->ring[(head + i) & pool->mask];
	wait_turn(&pool->cons.tail, head);
	__atomic_store_n(&pool->cons.tail, next, __ATOMIC_RELEASE);
	return n;
}

void vpool_put(struct vuser_pool *pool, struct vuser_buf *const *b, unsigned n)
{
	uint32_t head, next;

	if (!n)
		return;
	/* The ring holds every buffer of the pool, so a put never finds it full. */
	head = __atomic_load_n(&pool->prod.head, __ATOMIC_RELAXED);
	do {
		next = head + n;
	} while (!__atomic_compare_exchange_n(&pool->prod.head, &head, next, true,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	for (unsigned i = 0; i < n; i++)
		pool->ring[(head + i) & pool->mask] = b[i];
	wait_turn(&pool->prod.tail, head);
	__atomic_store_n(&pool->prod.tail, next, __ATOMIC_RELEASE);
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
	return __atomic_load_n(&pool->prod.tail, __ATOMIC_RELAXED) -
	       __atomic_load_n(&pool->cons.tail, __ATOMIC_RELAXED);
}
