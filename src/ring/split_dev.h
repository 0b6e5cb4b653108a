/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue, device half (virtio 1.1, 2.6), over a frontend's memory.
 * Nothing read from the rings is trusted: each descriptor is copied once
 * from shared memory and checked before use, chains are bounded by the ring
 * (or indirect table) size so loops end, and every buffer must lie inside
 * one mapped region. A violation returns -EPROTO with a reason; the caller
 * cuts the frontend off.
 */
#ifndef VUSER_RING_SPLIT_DEV_H
#define VUSER_RING_SPLIT_DEV_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/memtable.h"
#include "vuser/uapi/virtio_ring.h"

#define VDSPLIT_SHADOW 64

struct vdsplit {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	const struct vmem *mem;
	uint16_t size;
	uint16_t mask;
	uint16_t last_avail;     /* next avail entry to take */
	uint16_t avail_seen;     /* avail idx as last read: entries before it are there */
	uint16_t used_idx;       /* next used index to publish */
	uint16_t shadow_n;       /* used entries held back: the last shadow_n before used_idx */
	uint16_t signalled;      /* used idx at the last notification (event idx) */
	bool event_idx;
	bool indirect;
	bool in_order;           /* VIRTIO_F_IN_ORDER: used entries may cover batches */
	int callfd;              /* -1: the frontend wants no notifications */
	const char *why;         /* reason for the last -EPROTO */
	/*
	 * Used entries of a burst, kept here and written out together when
	 * it is published: the driver reads those lines, so each store to
	 * them waits for a transfer, and a stalled store among the copies
	 * holds up every store behind it.
	 */
	struct vring_used_elem shadow[VDSPLIT_SHADOW];
};

/*
 * Chains a device takes in one step when each is one plain descriptor
 * (vdsplit_batch, vdpacked_batch): four packed descriptors fill a line.
 */
#define VD_BATCH 4

/* One buffer of a chain, translated. */
struct vdseg {
	uint8_t *p;
	uint32_t len;
	bool write;
};

/*
 * The checks every buffer of a chain passes, in either layout: no readable
 * buffer after a writable one, and the whole buffer inside one mapped
 * region. 1 with *seg filled, 0 for an empty buffer (skip it), -1 with *why
 * set.
 */
static inline int vdseg_check(const struct vmem *mem, uint64_t addr, uint32_t len, uint16_t flags,
			      bool *seen_write, struct vdseg *seg, const char **why)
{
	if (flags & VRING_DESC_F_WRITE) {
		*seen_write = true;
	} else if (*seen_write) {
		*why = "readable descriptor after a writable one";
		return -1;
	}
	if (!len)
		return 0;
	seg->p = vmem_gpa(mem, addr, len);
	if (!seg->p) {
		*why = "buffer outside the frontend's memory or across regions";
		return -1;
	}
	seg->len = len;
	seg->write = flags & VRING_DESC_F_WRITE;
	return 1;
}

/*
 * What each chain of a batch (vdsplit_batch, vdpacked_batch) must be: one
 * plain descriptor, no NEXT and no INDIRECT, writable exactly when rx,
 * non-empty, and inside one mapped region. True with *seg filled; false
 * leaves the rule for the chain walk to name.
 */
static inline bool vdseg_plain(const struct vmem *mem, uint64_t addr, uint32_t len, uint16_t flags,
			       bool rx, struct vdseg *seg)
{
	const uint16_t kind = VRING_DESC_F_NEXT | VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE;

	if ((flags & kind) != (rx ? VRING_DESC_F_WRITE : 0) || !len)
		return false;
	seg->p = vmem_gpa(mem, addr, len);
	seg->len = len;
	seg->write = rx;
	return seg->p != NULL;
}

/*
 * The checks an indirect descriptor passes, in either layout (2.6.5.3.1,
 * 2.7.7): the feature negotiated, no NEXT flag, a table of whole entries no
 * longer than the ring, inside one mapped region. Both layouts' entries are
 * 16 bytes. The table with *n entries, or NULL with *why set. Out of line:
 * indirect tables are the rare turn.
 */
#define VD_DESC_BYTES 16u
const void *vdindirect_table(const struct vmem *mem, bool negotiated, uint64_t addr, uint32_t len,
			     uint16_t flags, unsigned ring_size, uint32_t *n, const char **why);

/* Iterator over one chain; state is private and bounded. */
struct vdwalk {
	const struct vring_desc *table;
	uint32_t table_size;
	uint32_t budget;         /* descriptors left before the chain is a loop */
	uint16_t idx;
	bool indirect;
	bool seen_write;
	bool done;
};

/*
 * Point the ring at translated addresses (the caller checked that each part
 * lies in one region) and reset its indexes to base.
 */
void vdsplit_init(struct vdsplit *vq, const struct vmem *mem, void *desc, void *avail,
		  void *used, unsigned size, uint16_t base, bool event_idx, bool indirect);

/*
 * Point a running ring at new translated addresses (the memory table or the
 * features changed under it), keeping its position.
 */
void vdsplit_remap(struct vdsplit *vq, void *desc, void *avail, void *used, bool event_idx,
		   bool indirect);

/* Bytes of the avail and used parts of a ring of size entries (with event words). */
static inline uint64_t vdsplit_avail_bytes(unsigned size) { return 4 + 2ull * size + 2; }
static inline uint64_t vdsplit_used_bytes(unsigned size) { return 4 + 8ull * size + 2; }

/*
 * Entries the driver has made available and we have not taken, or -EPROTO
 * when its index moved by more than the ring holds.
 */
int vdsplit_avail_count(struct vdsplit *vq);

/*
 * At least want entries, from what the last read of the index showed when
 * that is enough (the driver only ever adds entries), else from a new read:
 * a device that fills buffers the driver posted long ago then need not
 * fetch the index's line, which the driver writes at every refill. Fewer
 * than want means fewer are there; -EPROTO as vdsplit_avail_count().
 */
static inline int vdsplit_avail_atleast(struct vdsplit *vq, unsigned want)
{
	uint16_t known = (uint16_t)(vq->avail_seen - vq->last_avail);

	return known >= want && known <= vq->size ? known : vdsplit_avail_count(vq);
}

/* Records why the ring broke a rule and returns -EPROTO; out of line, a rare turn. */
int vdsplit_violation(struct vdsplit *vq, const char *why);

/* The head at avail position last_avail + i, checked; -EPROTO when out of range. */
static inline int vdsplit_head(struct vdsplit *vq, uint16_t i)
{
	uint16_t head = READ_ONCE(vq->avail->ring[(uint16_t)(vq->last_avail + i) & vq->mask]);

	if (unlikely(head >= vq->size))
		return vdsplit_violation(vq, "avail ring names a descriptor beyond the ring");
	return head;
}

/*
 * The common case in one step: VD_BATCH chains at avail positions
 * last_avail + i on (the caller knows they are available), each one plain
 * descriptor: a head inside the ring, no NEXT, no INDIRECT, non-empty,
 * inside one mapped region, writable exactly when rx. True with seg[] and
 * head[] filled, each descriptor read once; false, having changed nothing,
 * when any of that does not hold: the caller then walks the chains one by
 * one, which also names whatever rule was broken.
 */
static inline bool vdsplit_batch(const struct vdsplit *vq, uint16_t i, bool rx,
				 struct vdseg seg[VD_BATCH], uint16_t head[VD_BATCH])
{
	for (unsigned k = 0; k < VD_BATCH; k++) {
		uint16_t h = READ_ONCE(vq->avail->ring[(uint16_t)(vq->last_avail + i + k) & vq->mask]);
		const struct vring_desc *d;

		if (h >= vq->size)
			return false;
		d = &vq->desc[h];
		if (!vdseg_plain(vq->mem, READ_ONCE(d->addr), READ_ONCE(d->len), READ_ONCE(d->flags),
				 rx, &seg[k]))
			return false;
		head[k] = h;
	}
	return true;
}

static inline void vdwalk_start(const struct vdsplit *vq, uint16_t head, struct vdwalk *w)
{
	w->table = vq->desc;
	w->table_size = vq->size;
	w->budget = vq->size;
	w->idx = head;
	w->indirect = false;
	w->seen_write = false;
	w->done = false;
}

/* Out of line: step into the indirect table a descriptor (addr, len, flags) names; 0 or -EPROTO. */
int vdwalk_indirect(struct vdsplit *vq, struct vdwalk *w, uint64_t addr, uint32_t len,
		    uint16_t flags);

/*
 * 1 with *seg filled, 0 at the end of the chain, -EPROTO on a violation.
 * Inline: it runs once or twice a frame, and a plain descriptor needs no
 * more than its checks.
 */
static inline int vdwalk_next(struct vdsplit *vq, struct vdwalk *w, struct vdseg *seg)
{
	for (;;) {
		const struct vring_desc *src;
		uint64_t addr;
		uint32_t len;
		uint16_t flags, next;
		int ret;

		if (w->done)
			return 0;
		if (unlikely(!w->budget))
			return vdsplit_violation(vq, "descriptor chain loops or is longer than its table");
		w->budget--;
		/* One copy of each field: the driver may rewrite them under us. */
		src = &w->table[w->idx];
		addr = READ_ONCE(src->addr);
		len = READ_ONCE(src->len);
		flags = READ_ONCE(src->flags);
		next = READ_ONCE(src->next);

		if (unlikely(flags & VRING_DESC_F_INDIRECT)) {
			ret = vdwalk_indirect(vq, w, addr, len, flags);
			if (ret)
				return ret;
			continue;
		}
		if (flags & VRING_DESC_F_NEXT) {
			if (unlikely(next >= w->table_size))
				return vdsplit_violation(vq, "descriptor next beyond its table");
			w->idx = next;
		} else {
			w->done = true;
		}
		ret = vdseg_check(vq->mem, addr, len, flags, &w->seen_write, seg, &vq->why);
		if (ret)
			return ret < 0 ? -EPROTO : 1;
	}
}

/* Write the held-back used entries into the ring (not visible until published). */
static inline void vdsplit_flush_used(struct vdsplit *vq)
{
	uint16_t at = (uint16_t)(vq->used_idx - vq->shadow_n);

	for (unsigned i = 0; i < vq->shadow_n; i++) {
		struct vring_used_elem *e = &vq->used->ring[(uint16_t)(at + i) & vq->mask];

		e->id = vq->shadow[i].id;
		e->len = vq->shadow[i].len;
	}
	vq->shadow_n = 0;
}

/* Record a used entry (not visible until vdsplit_publish). */
static inline void vdsplit_put_used(struct vdsplit *vq, uint16_t head, uint32_t len)
{
	if (unlikely(vq->shadow_n == VDSPLIT_SHADOW))
		vdsplit_flush_used(vq);
	vq->shadow[vq->shadow_n++] = (struct vring_used_elem){ head, len };
	vq->used_idx++;
}

/* Take back the last n entries recorded and not yet published. */
static inline void vdsplit_unput(struct vdsplit *vq, uint16_t n)
{
	vq->used_idx = (uint16_t)(vq->used_idx - n);
	/* Entries flushed already stay in the ring unpublished, to be overwritten. */
	vq->shadow_n = (uint16_t)(n < vq->shadow_n ? vq->shadow_n - n : 0);
}

/*
 * In order only: one used entry for the last of count chains taken; the
 * index moves by count (2.6.9), so the driver skips the slots between.
 */
static inline void vdsplit_put_used_batch(struct vdsplit *vq, uint16_t last, uint32_t len,
					  uint16_t count)
{
	struct vring_used_elem *e;

	if (vq->shadow_n)
		vdsplit_flush_used(vq);
	e = &vq->used->ring[vq->used_idx & vq->mask];
	e->id = last;
	e->len = len;
	vq->used_idx = (uint16_t)(vq->used_idx + count);
}

/* Publish the used entries and notify the driver if it asked to be. */
void vdsplit_publish(struct vdsplit *vq);

#endif
