/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The buffer pool: fixed-size segments in the shared arena, their metadata
 * (struct vuser_buf) in private memory, and the free ones on a stack, so the
 * buffer freed last is taken first, while its lines are still in this
 * core's cache: a datapath that frees a burst and takes the next one keeps
 * reusing a few hot buffers instead of walking the whole pool (a FIFO free
 * list cost the vhost 10% at 64 bytes). Any thread may allocate and free;
 * a short lock guards the stack, taken once per bulk call, not per buffer.
 */
#ifndef VUSER_BASE_POOL_H
#define VUSER_BASE_POOL_H

#include <stdalign.h>
#include <stdint.h>

#include "base/arena.h"
#include "vuser/vuser.h"

struct vuser_pool {
	struct vuser_buf *bufs;   /* metadata, private memory */
	struct vuser_buf **stack; /* the free ones, [0, top); nb entries */
	uint32_t nb;
	uint8_t *mem_lo;          /* the segments' span in the arena */
	uint8_t *mem_hi;
	alignas(64) uint32_t lock;
	uint32_t top;
};

#define VPOOL_SEG_SIZE (VUSER_BUF_HEADROOM + VUSER_BUF_DATAROOM)

/* Bytes of arena that n segments need. */
static inline size_t vpool_mem_size(unsigned n)
{
	return (size_t)n * VPOOL_SEG_SIZE;
}

/* Set up n buffers carved from the arena. Returns 0 or -ENOMEM. */
int vpool_init(struct vuser_pool *pool, struct varena *a, unsigned n);
void vpool_destroy(struct vuser_pool *pool);

/* Take exactly n buffers (metadata not reset) or none; returns n or 0. */
unsigned vpool_get(struct vuser_pool *pool, struct vuser_buf **b, unsigned n);
/* Give back n single segments (not chains). */
void vpool_put(struct vuser_pool *pool, struct vuser_buf *const *b, unsigned n);
/* Give back whole chains. */
void vpool_put_chains(struct vuser_buf *const *b, unsigned n);

unsigned vpool_count_free(const struct vuser_pool *pool);

static inline void vbuf_reset(struct vuser_buf *b)
{
	b->data_off = VUSER_BUF_HEADROOM;
	b->data_len = 0;
	b->pkt_len = 0;
	b->nb_segs = 1;
	b->next = NULL;
	b->vnet = (struct vuser_net_hdr){ 0 };
}

#endif
