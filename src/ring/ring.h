/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The driver half of a virtqueue, split or packed: one dispatch point per
 * operation, the bodies in split.c and packed.c. The branch is taken once
 * per burst and always the same way for a ring, so it predicts perfectly.
 */
#ifndef VUSER_RING_RING_H
#define VUSER_RING_RING_H

#include "ring/packed.h"
#include "ring/split.h"

struct vring_drv {
	bool packed;
	union {
		struct vsplit s;
		struct vpacked p;
	};
};

#define VRING_MEM_ALIGN 4096

static inline size_t vring_mem_size(bool packed, unsigned size)
{
	return packed ? vpacked_mem_size(size) : vsplit_mem_size(size);
}

static inline int vring_init(struct vring_drv *r, bool packed, void *mem, unsigned size,
			     bool in_order)
{
	r->packed = packed;
	return packed ? vpacked_init(&r->p, mem, size, in_order)
		      : vsplit_init(&r->s, mem, size, in_order);
}

static inline void vring_destroy(struct vring_drv *r)
{
	if (r->packed)
		vpacked_destroy(&r->p);
	else
		vsplit_destroy(&r->s);
}

/* Every chain still posted back to its pool; re-init the ring before reuse. */
static inline unsigned vring_release(struct vring_drv *r)
{
	return r->packed ? vpacked_release(&r->p) : vsplit_release(&r->s);
}

static inline unsigned vring_size(const struct vring_drv *r)
{
	return r->packed ? r->p.size : r->s.size;
}

static inline unsigned vring_free_descs(const struct vring_drv *r)
{
	return r->packed ? vpacked_free_descs(&r->p) : vsplit_free_descs(&r->s);
}

static inline unsigned vring_inflight(const struct vring_drv *r)
{
	return r->packed ? r->p.inflight : r->s.inflight;
}

static inline const uint64_t *vring_errors(const struct vring_drv *r)
{
	return r->packed ? &r->p.errors : &r->s.errors;
}

/* The three areas as vhost-user's SET_VRING_ADDR names them. */
static inline void vring_addrs(const struct vring_drv *r, uint64_t *desc, uint64_t *avail,
			       uint64_t *used)
{
	*desc = r->packed ? (uintptr_t)r->p.desc : (uintptr_t)r->s.desc;
	*avail = r->packed ? (uintptr_t)r->p.driver : (uintptr_t)r->s.avail;
	*used = r->packed ? (uintptr_t)r->p.device : (uintptr_t)r->s.used;
}

/*
 * Before posting up to n frames for the device to read, while the frames
 * are checked: split rings only. vpacked_post_tx() asks for its lines
 * itself, just before it writes them: asked for this early, they measured
 * slower into vuser's vhost.
 */
static inline void vring_prefetch_tx(const struct vring_drv *r, unsigned n)
{
	if (!r->packed)
		vsplit_prefetch_tx(&r->s, n);
}

static inline unsigned vring_post_rx(struct vring_drv *r, struct vuser_buf **b, unsigned n,
				     unsigned hdr)
{
	return r->packed ? vpacked_post_rx(&r->p, b, n, hdr) : vsplit_post_rx(&r->s, b, n, hdr);
}

static inline unsigned vring_post_tx(struct vring_drv *r, struct vuser_buf **b, unsigned n,
				     unsigned hdr)
{
	return r->packed ? vpacked_post_tx(&r->p, b, n, hdr) : vsplit_post_tx(&r->s, b, n, hdr);
}

/* Packed heads are visible once posted; a split ring publishes its avail idx. */
static inline void vring_publish(struct vring_drv *r)
{
	if (!r->packed)
		vsplit_publish(&r->s);
}

static inline bool vring_wants_kick(struct vring_drv *r)
{
	return r->packed ? vpacked_wants_kick(&r->p) : vsplit_wants_kick(&r->s);
}

static inline unsigned vring_take_used(struct vring_drv *r, struct vuser_buf **b, uint32_t *lens,
				       unsigned n, bool check_len)
{
	return r->packed ? vpacked_take_used(&r->p, b, lens, n, check_len)
			 : vsplit_take_used(&r->s, b, lens, n, check_len);
}

#endif
