/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <unistd.h>

#include "base/compat.h"
#include "ring/split_dev.h"

void vdsplit_init(struct vdsplit *vq, const struct vmem *mem, void *desc, void *avail,
		  void *used, unsigned size, uint16_t base, bool event_idx, bool indirect)
{
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->mem = mem;
	vq->size = (uint16_t)size;
	vq->mask = (uint16_t)(size - 1);
	vq->last_avail = base;
	vq->avail_seen = base;
	vq->used_idx = base;
	vq->shadow_n = 0;
	vq->signalled = base;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	vq->why = NULL;
	/* We poll: the driver need not kick (2.6.7.2). */
	WRITE_ONCE(vq->used->flags, VRING_USED_F_NO_NOTIFY);
}

void vdsplit_remap(struct vdsplit *vq, void *desc, void *avail, void *used, bool event_idx,
		   bool indirect)
{
	vq->desc = desc;
	vq->avail = avail;
	vq->used = used;
	vq->avail_seen = vq->last_avail;
	vq->event_idx = event_idx;
	vq->indirect = indirect;
	WRITE_ONCE(vq->used->flags, VRING_USED_F_NO_NOTIFY);
}

int vdsplit_violation(struct vdsplit *vq, const char *why)
{
	vq->why = why;
	return -EPROTO;
}

int vdsplit_avail_count(struct vdsplit *vq)
{
	/* 2.6.10: the driver's idx store is a release; pair it with an acquire. */
	uint16_t idx = __atomic_load_n(&vq->avail->idx, __ATOMIC_ACQUIRE);
	uint16_t n = (uint16_t)(idx - vq->last_avail);

	if (unlikely(n > vq->size))
		return vdsplit_violation(vq, "avail idx moved by more than the ring size");
	vq->avail_seen = idx;
	return n;
}

_Static_assert(sizeof(struct vring_desc) == VD_DESC_BYTES, "split descriptor size");
_Static_assert(sizeof(struct vring_packed_desc) == VD_DESC_BYTES, "packed descriptor size");

const void *vdindirect_table(const struct vmem *mem, bool negotiated, uint64_t addr, uint32_t len,
			     uint16_t flags, unsigned ring_size, uint32_t *n, const char **why)
{
	const void *t;

	if (unlikely(!negotiated)) {
		*why = "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC";
		return NULL;
	}
	if (unlikely(flags & VRING_DESC_F_NEXT)) {
		*why = "indirect descriptor with VRING_DESC_F_NEXT";
		return NULL;
	}
	if (unlikely(!len || len % VD_DESC_BYTES || len / VD_DESC_BYTES > ring_size)) {
		*why = "indirect table empty, ragged or longer than the ring";
		return NULL;
	}
	t = vmem_gpa(mem, addr, len);
	if (unlikely(!t)) {
		*why = "indirect table outside the frontend's memory";
		return NULL;
	}
	*n = len / VD_DESC_BYTES;
	return t;
}

int vdwalk_indirect(struct vdsplit *vq, struct vdwalk *w, uint64_t addr, uint32_t len,
		    uint16_t flags)
{
	if (unlikely(w->indirect))
		return vdsplit_violation(vq, "indirect table inside an indirect table");
	w->table = vdindirect_table(vq->mem, vq->indirect, addr, len, flags, vq->size,
				    &w->table_size, &vq->why);
	if (unlikely(!w->table))
		return -EPROTO;
	w->budget = w->table_size;
	w->idx = 0;
	w->indirect = true;
	return 0;
}

/* 2.6.7.2: notify when the new used idx passed used_event since the last time. */
static inline bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vdsplit_publish(struct vdsplit *vq)
{
	bool notify;

	vdsplit_flush_used(vq);
	/* 2.6.8.2: entries before idx, so a release store of idx. */
	__atomic_store_n(&vq->used->idx, vq->used_idx, __ATOMIC_RELEASE);
	if (vq->callfd < 0)
		return;
	/* The idx must be visible before we read the driver's wish, or both sides miss. */
	vfence_full();
	if (vq->event_idx) {
		uint16_t event = READ_ONCE(vq->avail->ring[vq->size]);

		notify = need_event(event, vq->used_idx, vq->signalled);
	} else {
		notify = !(READ_ONCE(vq->avail->flags) & VRING_AVAIL_F_NO_INTERRUPT);
	}
	vq->signalled = vq->used_idx;
	if (notify) {
		uint64_t one = 1;

		/* A full counter only means a notification is already pending. */
		if (write(vq->callfd, &one, sizeof(one)) < 0)
			return;
	}
}
