/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/compat.h"
#include "ring/packed_dev.h"

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)

static void set_ring(struct vdpacked *vq, void *desc, void *driver, void *device,
		     bool event_idx, bool indirect)
{
	vq->desc = desc;
	vq->driver = driver;
	vq->device = device;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	/* We poll: the driver need not kick (2.7.10). */
	WRITE_ONCE(vq->device->off_wrap, 0);
	WRITE_ONCE(vq->device->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
}

int vdpacked_init(struct vdpacked *vq, const struct vmem *mem, void *desc, void *driver,
		  void *device, unsigned size, uint32_t base, bool event_idx, bool indirect)
{
	uint16_t pos = base & 0x7fff;

	if (pos >= size || base >> 16)
		return -ERANGE;
	if (!vq->shadow || vq->size != size) {
		struct vdpacked_used *s = realloc(vq->shadow, size * sizeof(*s));

		if (!s)
			return -ENOMEM;
		vq->shadow = s;
	}
	vq->mem = mem;
	vq->size = (uint16_t)size;
	/* Nothing is in flight at a (re)start: both sides stand at the base. */
	vq->avail_pos = vq->used_pos = pos;
	vq->avail_wrap = vq->used_wrap = base & 0x8000;
	vq->nshadow = 0;
	vq->why = NULL;
	set_ring(vq, desc, driver, device, event_idx, indirect);
	return 0;
}

void vdpacked_remap(struct vdpacked *vq, void *desc, void *driver, void *device,
		    bool event_idx, bool indirect)
{
	set_ring(vq, desc, driver, device, event_idx, indirect);
}

void vdpacked_destroy(struct vdpacked *vq)
{
	free(vq->shadow);
	vq->shadow = NULL;
	vq->size = 0;
}

static int violation(struct vdpacked *vq, const char *why)
{
	vq->why = why;
	return -EPROTO;
}

int vdpwalk_next_desc(struct vdpacked *vq, struct vdpwalk *w, struct vdseg *seg)
{
	for (;;) {
		const struct vring_packed_desc *src;
		uint64_t addr;
		uint32_t len;
		uint16_t flags;
		int ret;

		if (w->done)
			return 0;
		if (w->table) {
			if (w->table_idx == w->table_size) {
				w->done = true;
				return 0;
			}
			src = &w->table[w->table_idx++];
			addr = READ_ONCE(src->addr);
			len = READ_ONCE(src->len);
			flags = READ_ONCE(src->flags);
			/* In a table the order is the chain (2.7.5): NEXT means nothing. */
			if (unlikely(flags & VRING_DESC_F_INDIRECT))
				return violation(vq, "indirect table inside an indirect table");
			/*
			 * Nor, here, does WRITE: the queue says which way a table's
			 * buffers go. DPDK's virtio driver leaves WRITE set on the
			 * header entry of its packed transmit tables; the device only
			 * ever reads a transmit chain and writes a receive chain anyway.
			 */
			flags = (uint16_t)((flags & ~VRING_DESC_F_WRITE) |
					   (w->rx ? VRING_DESC_F_WRITE : 0));
		} else {
			if (unlikely(w->ndesc == vq->size))
				return violation(vq, "descriptor chain longer than the ring");
			src = &vq->desc[w->pos];
			/* The head's flags were read with an acquire; the rest need their own. */
			flags = w->ndesc ? __atomic_load_n(&src->flags, __ATOMIC_ACQUIRE)
					 : READ_ONCE(src->flags);
			if (unlikely(!vdpacked_is_avail(flags, w->wrap)))
				return violation(vq, "chain continues into a descriptor that is not available");
			addr = READ_ONCE(src->addr);
			len = READ_ONCE(src->len);
			w->id = READ_ONCE(src->id);
			w->ndesc++;
			if (++w->pos == vq->size) {
				w->pos = 0;
				w->wrap = !w->wrap;
			}
			if (flags & VRING_DESC_F_INDIRECT) {
				w->table = vdindirect_table(vq->mem, vq->indirect, addr, len, flags,
							    vq->size, &w->table_size, &vq->why);
				if (unlikely(!w->table))
					return -EPROTO;
				w->table_idx = 0;
				continue;
			}
			if (!(flags & VRING_DESC_F_NEXT))
				w->done = true;
		}
		ret = vdseg_check(vq->mem, addr, len, flags, &w->seen_write, seg, &vq->why);
		if (ret)
			return ret < 0 ? -EPROTO : 1;
	}
}

int vdpwalk_finish(struct vdpacked *vq, struct vdpwalk *w)
{
	struct vdseg seg;
	int ret;

	while ((ret = vdpwalk_next(vq, w, &seg)) > 0)
		;
	return ret;
}

/*
 * Linear position in a lap pair: positions of the lap with wrap counter 1
 * come first. Differences modulo 2 * size order any two points less than a
 * lap apart, which is all the event check needs.
 */
static inline uint32_t lin(uint16_t pos, bool wrap, uint16_t size)
{
	return wrap ? pos : (uint32_t)pos + size;
}

static bool want_signal(struct vdpacked *vq, uint16_t old_pos, bool old_wrap)
{
	uint16_t flags = READ_ONCE(vq->driver->flags);
	uint32_t span, from, event, two = 2u * vq->size;
	uint16_t off_wrap;

	if (flags == VRING_PACKED_EVENT_FLAG_DISABLE)
		return false;
	if (flags != VRING_PACKED_EVENT_FLAG_DESC || !vq->event_idx)
		return true;
	/* 2.7.10: signal once the used descriptor at off_wrap has been written. */
	off_wrap = READ_ONCE(vq->driver->off_wrap);
	if ((off_wrap & 0x7fff) >= vq->size)
		return true;
	from = lin(old_pos, old_wrap, vq->size);
	span = (lin(vq->used_pos, vq->used_wrap, vq->size) + two - from) % two;
	event = lin(off_wrap & 0x7fff, off_wrap >> 15, vq->size);
	return (event + two - from) % two < span;
}

void vdpacked_publish(struct vdpacked *vq)
{
	const uint16_t old_pos = vq->used_pos;
	const bool old_wrap = vq->used_wrap;
	struct vring_packed_desc *first = &vq->desc[old_pos];
	uint16_t first_flags = 0;
	uint16_t pos = old_pos;
	bool wrap = old_wrap;

	if (!vq->nshadow)
		return;
	for (unsigned i = 0; i < vq->nshadow; i++) {
		const struct vdpacked_used *u = &vq->shadow[i];
		struct vring_packed_desc *d = &vq->desc[pos];
		uint16_t flags = (uint16_t)((wrap ? F_AVAIL | F_USED : 0) |
					    (u->len ? VRING_DESC_F_WRITE : 0));

		d->id = u->id;
		d->len = u->len;
		if (i)
			d->flags = flags;
		else
			first_flags = flags;
		pos = (uint16_t)(pos + u->ndesc);
		if (pos >= vq->size) {
			pos = (uint16_t)(pos - vq->size);
			wrap = !wrap;
		}
	}
	/*
	 * The driver reads used descriptors in ring order from the first: a
	 * release store of its flags makes every one before it visible together.
	 */
	__atomic_store_n(&first->flags, first_flags, __ATOMIC_RELEASE);
	vq->used_pos = pos;
	vq->used_wrap = wrap;
	vq->nshadow = 0;
	if (vq->callfd < 0)
		return;
	/* The flags must be visible before we read the driver's wish, or both sides miss. */
	vfence_full();
	if (want_signal(vq, old_pos, old_wrap)) {
		uint64_t one = 1;

		/* A full counter only means a notification is already pending. */
		if (write(vq->callfd, &one, sizeof(one)) < 0)
			return;
	}
}
