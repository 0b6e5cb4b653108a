/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed virtqueue, device half (virtio 1.1, 2.7), over a frontend's memory.
 * The same rules as the split device half: every descriptor is copied once
 * and checked before use, a chain ends within the ring (or its indirect
 * table), every buffer lies inside one mapped region, and a violation
 * returns -EPROTO with a reason for the caller to cut the frontend off.
 *
 * A chain is available when its head's AVAIL bit equals our avail wrap
 * counter and its USED bit does not; every later descriptor of the chain
 * must be available in the same sense for its own position (a chain that
 * runs into descriptors of the previous lap is wrap confusion, not a chain).
 * Used descriptors are kept in a private shadow list while a burst runs, so
 * a frame that does not fit can give its chains back untouched, and are
 * written at the end of the burst, the first one's flags last.
 */
#ifndef VUSER_RING_PACKED_DEV_H
#define VUSER_RING_PACKED_DEV_H

#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "base/memtable.h"
#include "ring/split_dev.h"
#include "vuser/uapi/virtio_ring.h"

struct vdpacked_used {
	uint16_t id;
	uint16_t ndesc;          /* ring positions the chain took */
	uint32_t len;
};

struct vdpacked {
	struct vring_packed_desc *desc;
	struct vring_packed_desc_event *driver;  /* the driver's: which used buffers to signal */
	struct vring_packed_desc_event *device;  /* ours: we poll, so kicks are disabled */
	const struct vmem *mem;
	uint16_t size;
	uint16_t avail_pos;      /* next position to look for an available chain */
	uint16_t used_pos;       /* next position to write a used descriptor */
	bool avail_wrap;
	bool used_wrap;
	bool event_idx;
	bool indirect;
	bool in_order;           /* VIRTIO_F_IN_ORDER: one used descriptor may cover a batch */
	int callfd;              /* -1: the frontend wants no notifications */
	const char *why;         /* reason for the last -EPROTO */
	unsigned nshadow;        /* used descriptors not yet written */
	struct vdpacked_used *shadow;   /* size entries, private */
};

/* Where a burst stood, to give back the chains of a frame that did not fit. */
struct vdpacked_mark {
	uint16_t avail_pos;
	bool avail_wrap;
	unsigned nshadow;
};

/* Iterator over one chain at the avail position; private and bounded. */
struct vdpwalk {
	const struct vring_packed_desc *table;   /* indirect table, NULL in the ring */
	uint32_t table_size;
	uint32_t table_idx;
	uint16_t pos;            /* ring position of the next descriptor */
	bool wrap;               /* the avail wrap counter that position must carry */
	uint16_t ndesc;          /* ring positions taken so far */
	uint16_t id;             /* buffer id, from the chain's last descriptor */
	bool rx;                 /* a receive chain: the device writes it */
	bool seen_write;
	bool done;
};

/* Bytes of the ring parts for size entries. */
static inline uint64_t vdpacked_desc_bytes(unsigned size) { return 16ull * size; }
#define VDPACKED_EVENT_BYTES 4

/*
 * Point the ring at translated addresses and set both positions from a
 * SET_VRING_BASE value (bits 0..14 position, bit 15 wrap counter). The
 * shadow list is allocated here: -ENOMEM, or -ERANGE for a position beyond
 * the ring.
 */
int vdpacked_init(struct vdpacked *vq, const struct vmem *mem, void *desc, void *driver,
		  void *device, unsigned size, uint32_t base, bool event_idx, bool indirect);
void vdpacked_remap(struct vdpacked *vq, void *desc, void *driver, void *device,
		    bool event_idx, bool indirect);
void vdpacked_destroy(struct vdpacked *vq);

/* The GET_VRING_BASE value: position and wrap counter of the next chain. */
static inline uint32_t vdpacked_base(const struct vdpacked *vq)
{
	return vq->avail_pos | (uint32_t)vq->avail_wrap << 15;
}

static inline bool vdpacked_is_avail(uint16_t flags, bool wrap)
{
	bool avail = flags & (1u << VRING_PACKED_DESC_F_AVAIL);
	bool used = flags & (1u << VRING_PACKED_DESC_F_USED);

	return avail == wrap && used != wrap;
}

/*
 * Is a chain available at the avail position? (an acquire: its contents
 * follow). A burst takes at most a ring's worth: a driver that flips flags
 * of chains we hold could otherwise make one burst go round forever.
 */
static inline bool vdpacked_avail(const struct vdpacked *vq)
{
	uint16_t flags;

	if (unlikely(vq->nshadow >= vq->size))
		return false;
	flags = __atomic_load_n(&vq->desc[vq->avail_pos].flags, __ATOMIC_ACQUIRE);

	return vdpacked_is_avail(flags, vq->avail_wrap);
}

/*
 * Start walking the chain at the avail position (the caller saw it
 * available); rx: a receive chain, which the device writes.
 */
static inline void vdpwalk_start(const struct vdpacked *vq, struct vdpwalk *w, bool rx)
{
	w->rx = rx;
	w->table = NULL;
	w->table_size = 0;
	w->table_idx = 0;
	w->pos = vq->avail_pos;
	w->wrap = vq->avail_wrap;
	w->ndesc = 0;
	w->id = 0;
	w->seen_write = false;
	w->done = false;
}

int vdpwalk_next_desc(struct vdpacked *vq, struct vdpwalk *w, struct vdseg *seg);

/* 1 with *seg filled, 0 at the end of the chain, -EPROTO on a violation. */
static inline int vdpwalk_next(struct vdpacked *vq, struct vdpwalk *w, struct vdseg *seg)
{
	/* The end of a chain is seen here, without a call: once per chain. */
	return w->done ? 0 : vdpwalk_next_desc(vq, w, seg);
}

/* Walk what is left of a chain (to learn its id and length), or -EPROTO. */
int vdpwalk_finish(struct vdpacked *vq, struct vdpwalk *w);

/* Take the walked chain: it is used with len bytes written (not visible yet). */
static inline void vdpacked_take(struct vdpacked *vq, const struct vdpwalk *w, uint32_t len)
{
	vq->shadow[vq->nshadow++] = (struct vdpacked_used){ w->id, w->ndesc, len };
	vq->avail_pos = w->pos;
	vq->avail_wrap = w->wrap;
}

/*
 * Record a chain of ndesc positions the device only read. In order it joins
 * the batch the last used descriptor covers, which now names its id (2.7.9),
 * so the burst writes one descriptor instead of one per chain. A batch spans
 * at most a ring, which keeps every position arithmetic below 2 * size.
 */
static inline void vdpacked_shadow_read(struct vdpacked *vq, uint16_t id, uint16_t ndesc)
{
	struct vdpacked_used *last = vq->nshadow ? &vq->shadow[vq->nshadow - 1] : NULL;

	if (vq->in_order && last && !last->len && (unsigned)last->ndesc + ndesc <= vq->size) {
		last->id = id;
		last->ndesc = (uint16_t)(last->ndesc + ndesc);
		return;
	}
	vq->shadow[vq->nshadow++] = (struct vdpacked_used){ id, ndesc, 0 };
}

/* The same as vdpacked_take() for a walked chain the device only read. */
static inline void vdpacked_take_read(struct vdpacked *vq, const struct vdpwalk *w)
{
	vdpacked_shadow_read(vq, w->id, w->ndesc);
	vq->avail_pos = w->pos;
	vq->avail_wrap = w->wrap;
}

/*
 * The common case in one step: VD_BATCH chains of one descriptor each at
 * the avail position, in one lap of the ring, all available, none with
 * NEXT or INDIRECT, each buffer non-empty, inside one mapped region, and
 * writable exactly when rx. True with seg[] and id[] filled (each
 * descriptor read once, after its flags); false when any of that does not
 * hold, having changed nothing: the caller then walks the chains one by
 * one, which also names whatever rule was broken.
 */
static inline bool vdpacked_batch(const struct vdpacked *vq, bool rx,
				  struct vdseg seg[VD_BATCH], uint16_t id[VD_BATCH])
{
	const struct vring_packed_desc *d = &vq->desc[vq->avail_pos];
	uint16_t flags[VD_BATCH];

	if (vq->avail_pos + VD_BATCH > vq->size || vq->nshadow + VD_BATCH > vq->size)
		return false;
	for (unsigned i = 0; i < VD_BATCH; i++)
		flags[i] = __atomic_load_n(&d[i].flags, __ATOMIC_ACQUIRE);
	for (unsigned i = 0; i < VD_BATCH; i++)
		if (!vdpacked_is_avail(flags[i], vq->avail_wrap))
			return false;
	for (unsigned i = 0; i < VD_BATCH; i++) {
		if (!vdseg_plain(vq->mem, READ_ONCE(d[i].addr), READ_ONCE(d[i].len), flags[i], rx,
				 &seg[i]))
			return false;
		id[i] = READ_ONCE(d[i].id);
	}
	return true;
}

/* Move the avail position past a batch vdpacked_batch() found (it never crosses the end). */
static inline void vdpacked_skip_batch(struct vdpacked *vq)
{
	vq->avail_pos = (uint16_t)(vq->avail_pos + VD_BATCH);
	if (vq->avail_pos == vq->size) {
		vq->avail_pos = 0;
		vq->avail_wrap = !vq->avail_wrap;
	}
}

/* Take a batch vdpacked_batch() found: each chain used with len[i] bytes written. */
static inline void vdpacked_take_batch(struct vdpacked *vq, const uint16_t id[VD_BATCH],
				       const uint32_t len[VD_BATCH])
{
	for (unsigned i = 0; i < VD_BATCH; i++)
		vq->shadow[vq->nshadow++] = (struct vdpacked_used){ id[i], 1, len[i] };
	vdpacked_skip_batch(vq);
}

/* Take a batch vdpacked_batch() found as chains the device only read (a transmit ring). */
static inline void vdpacked_take_read_batch(struct vdpacked *vq, const uint16_t id[VD_BATCH])
{
	for (unsigned i = 0; i < VD_BATCH; i++)
		vdpacked_shadow_read(vq, id[i], 1);
	vdpacked_skip_batch(vq);
}

static inline struct vdpacked_mark vdpacked_mark(const struct vdpacked *vq)
{
	return (struct vdpacked_mark){ vq->avail_pos, vq->avail_wrap, vq->nshadow };
}

static inline void vdpacked_rewind(struct vdpacked *vq, struct vdpacked_mark m)
{
	vq->avail_pos = m.avail_pos;
	vq->avail_wrap = m.avail_wrap;
	vq->nshadow = m.nshadow;
}

/* Write the used descriptors taken so far and notify the driver if it asked to be. */
void vdpacked_publish(struct vdpacked *vq);

#endif
