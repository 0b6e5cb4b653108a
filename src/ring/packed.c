/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "base/pool.h"
#include "ring/packed.h"

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)

/* The device's event structure gets a cache line of its own: it writes it. */
static size_t device_off(unsigned size)
{
	return ((size_t)size * sizeof(struct vring_packed_desc) +
		sizeof(struct vring_packed_desc_event) + 63) & ~(size_t)63;
}

size_t vpacked_mem_size(unsigned size)
{
	return device_off(size) + sizeof(struct vring_packed_desc_event);
}

int vpacked_init(struct vpacked *vq, void *mem, unsigned size, bool in_order)
{
	uint8_t *m = mem;

	memset(vq, 0, sizeof(*vq));
	memset(mem, 0, vpacked_mem_size(size));
	vq->slots = calloc(size, sizeof(*vq->slots));
	if (!vq->slots)
		return -ENOMEM;
	vq->desc = (struct vring_packed_desc *)m;
	vq->driver = (struct vring_packed_desc_event *)(m + (size_t)size * sizeof(*vq->desc));
	vq->device = (struct vring_packed_desc_event *)(m + device_off(size));
	vq->size = (uint16_t)size;
	/* Both wrap counters start at 1 (2.7.1). */
	vq->avail_wrap = true;
	vq->used_wrap = true;
	vq->in_order = in_order;
	vq->num_free = (uint16_t)size;
	for (unsigned i = 0; i < size; i++)
		vq->slots[i].next = (uint16_t)(i + 1);
	vq->free_id = 0;
	/* We poll: no used-buffer notifications (2.7.10). */
	vq->driver->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	return 0;
}

void vpacked_destroy(struct vpacked *vq)
{
	free(vq->slots);
	vq->slots = NULL;
}

static inline uint16_t avail_flags(const struct vpacked *vq)
{
	return vq->avail_wrap ? F_AVAIL : F_USED;
}

static inline void advance_avail(struct vpacked *vq)
{
	if (++vq->avail_pos == vq->size) {
		vq->avail_pos = 0;
		vq->avail_wrap = !vq->avail_wrap;
	}
}

/*
 * Take a buffer id. In order, a chain's id is its head's position: chains
 * come back in ring order, so the oldest in flight always starts at used_pos
 * and a used id says by itself how far a batch reaches. Otherwise ids come
 * from a free list.
 */
static inline uint16_t take_id(struct vpacked *vq)
{
	uint16_t id = vq->avail_pos;

	if (!vq->in_order) {
		id = vq->free_id;
		vq->free_id = vq->slots[id].next;
	}
	vq->inflight++;
	return id;
}

/*
 * The head's flags go last, with a release store: "the driver always makes
 * the first descriptor in the list available after the rest of the list has
 * been written out" (2.7.6), so the device never sees half a chain.
 */
static inline void put_head(struct vring_packed_desc *d, uint16_t flags)
{
	__atomic_store_n(&d->flags, flags, __ATOMIC_RELEASE);
}

unsigned vpacked_post_rx(struct vpacked *vq, struct vuser_buf **b, unsigned n, unsigned hdr)
{
	if (n > vpacked_free_descs(vq))
		n = vpacked_free_descs(vq);
	for (unsigned i = 0; i < n; i++) {
		struct vuser_buf *m = b[i];
		uint32_t off = m->data_off - hdr;
		uint16_t id = take_id(vq);
		struct vpacked_slot *s = &vq->slots[id];
		struct vring_packed_desc *d = &vq->desc[vq->avail_pos];

		s->buf = m;
		s->len = m->room - off;
		s->ndesc = 1;
		d->addr = m->iova + off;
		d->len = s->len;
		d->id = id;
		put_head(d, (uint16_t)(avail_flags(vq) | VRING_DESC_F_WRITE));
		advance_avail(vq);
	}
	vq->num_free -= (uint16_t)n;
	return n;
}

/*
 * Ask for the lines that up to n descriptors from avail_pos will be written
 * to, all but the first. The device's core read each line (and wrote a used
 * descriptor into some) on the last lap, so every store must take the line
 * back; asked for together, the transfers overlap instead of queueing in
 * the store buffer. The first line is the one the device polls for the next
 * head, and the rest become visible only through that head (below), so the
 * device has no reason to read them while they are written.
 */
static inline void prefetch_tx_lines(const struct vpacked *vq, unsigned n)
{
	const unsigned per_line = 64 / sizeof(struct vring_packed_desc);
	const unsigned in_line = vq->avail_pos & (per_line - 1);

	for (unsigned k = per_line; k < n + in_line; k += per_line) {
		unsigned pos = vq->avail_pos - in_line + k;

		if (pos >= vq->size)
			pos -= vq->size;
		/* A ring smaller than the burst: only lines inside it. */
		if (pos < vq->size)
			vprefetch_w(&vq->desc[pos]);
	}
}

/*
 * A burst is made available as one batch (2.7.13.1): every head but the
 * first is written with a plain store, and the first with the release,
 * last. The device takes descriptors in ring order, so it sees the burst
 * whole. Posted one by one, a device polling the next head reads each line
 * while it is being filled, and every store after that has to take the
 * line back; DPDK's vhost also finds lines of four partly filled and takes
 * them one descriptor at a time.
 */
unsigned vpacked_post_tx(struct vpacked *vq, struct vuser_buf **b, unsigned n, unsigned hdr)
{
	struct vring_packed_desc *first = NULL;
	uint16_t first_flags = 0;
	unsigned i;

	prefetch_tx_lines(vq, n < vq->num_free ? n : vq->num_free);

	for (i = 0; i < n; i++) {
		struct vuser_buf *m = b[i];
		unsigned nseg = m->nb_segs;
		struct vring_packed_desc *head;
		uint16_t head_flags, id;

		if (nseg > vpacked_free_descs(vq))
			break;
		id = take_id(vq);
		vq->slots[id] = (struct vpacked_slot){ .buf = m, .ndesc = (uint16_t)nseg,
						       .next = vq->slots[id].next };
		head = &vq->desc[vq->avail_pos];
		head->addr = m->iova + m->data_off - hdr;
		head->len = m->data_len + hdr;
		head->id = id;
		head_flags = (uint16_t)(avail_flags(vq) | (m->next ? VRING_DESC_F_NEXT : 0));
		advance_avail(vq);
		for (struct vuser_buf *s = m->next; s; s = s->next) {
			struct vring_packed_desc *d = &vq->desc[vq->avail_pos];

			d->addr = s->iova + s->data_off;
			d->len = s->data_len;
			/* Buffer id in the last descriptor (2.7.6); in every one does no harm. */
			d->id = id;
			d->flags = (uint16_t)(avail_flags(vq) | (s->next ? VRING_DESC_F_NEXT : 0));
			advance_avail(vq);
		}
		if (!first) {
			first = head;
			first_flags = head_flags;
		} else {
			head->flags = head_flags;
		}
		vq->num_free -= (uint16_t)nseg;
	}
	if (first)
		put_head(first, first_flags);
	return i;
}

bool vpacked_wants_kick(struct vpacked *vq)
{
	/* Each head was released as it was posted; the device's wish is read after them all. */
	vfence_full();
	return READ_ONCE(vq->device->flags) != VRING_PACKED_EVENT_FLAG_DISABLE;
}

static inline void release_chain(struct vpacked *vq, uint16_t id)
{
	struct vpacked_slot *s = &vq->slots[id];

	vq->num_free += s->ndesc;
	vq->used_pos = (uint16_t)(vq->used_pos + s->ndesc);
	if (vq->used_pos >= vq->size) {
		vq->used_pos = (uint16_t)(vq->used_pos - vq->size);
		vq->used_wrap = !vq->used_wrap;
	}
	s->buf = NULL;
	vq->inflight--;
}

static inline void free_id(struct vpacked *vq, uint16_t id)
{
	if (vq->in_order)
		return;
	vq->slots[id].next = vq->free_id;
	vq->free_id = id;
}

/* Hand a completed chain's frame to the caller, or drop it if its length is impossible. */
static inline bool hand_out(struct vpacked *vq, struct vuser_buf *m, uint32_t room, uint32_t len,
			    bool check_len, struct vuser_buf **out)
{
	if (unlikely(check_len && len > room)) {
		vq->errors++;
		vpool_put_chains(&m, 1);
		return false;
	}
	*out = m;
	return true;
}

/* Complete the chain with this id: its positions and id free, its frame handed out. */
static inline bool complete(struct vpacked *vq, uint16_t id, uint32_t len, bool check_len,
			    struct vuser_buf **out)
{
	struct vpacked_slot *s = &vq->slots[id];
	struct vuser_buf *m = s->buf;
	uint32_t room = s->len;

	release_chain(vq, id);
	free_id(vq, id);
	return hand_out(vq, m, room, len, check_len, out);
}

/* Where a used id stands among the ring positions in flight, oldest first. */
static inline unsigned inflight_offset(const struct vpacked *vq, uint16_t id)
{
	return id >= vq->used_pos ? (unsigned)(id - vq->used_pos)
				  : (unsigned)id + vq->size - vq->used_pos;
}

/*
 * In order: chains from the oldest (at used_pos) up to the one the batch's
 * used descriptor names come back together, each with length 0 but that
 * last one. When every chain in flight is one descriptor (the count of
 * chains equals that of positions), they sit at consecutive positions and
 * are taken without following one to find the next.
 */
static unsigned take_batch(struct vpacked *vq, struct vuser_buf **b, uint32_t *lens, unsigned n,
			   bool check_len)
{
	const uint16_t last = vq->pending_id;
	unsigned got = 0;

	if (vq->inflight == vq->size - vq->num_free) {
		const unsigned whole = inflight_offset(vq, last) + 1;
		unsigned span = whole < n ? whole : n, k;
		uint16_t pos = vq->used_pos;

		for (k = 0; k < span; k++) {
			struct vpacked_slot *s = &vq->slots[pos];
			struct vuser_buf *m = s->buf;
			uint32_t l = pos == last ? vq->pending_len : 0;

			s->buf = NULL;
			if (hand_out(vq, m, s->len, l, check_len, &b[got])) {
				if (lens)
					lens[got] = l;
				got++;
			}
			if (++pos == vq->size) {
				pos = 0;
				vq->used_wrap = !vq->used_wrap;
			}
		}
		vq->used_pos = pos;
		vq->num_free = (uint16_t)(vq->num_free + span);
		vq->inflight = (uint16_t)(vq->inflight - span);
		vq->pending = span < whole;
		return got;
	}
	while (got < n && vq->pending && vq->inflight) {
		uint16_t h = vq->used_pos;
		uint32_t l = h == last ? vq->pending_len : 0;

		vq->pending = h != last;
		if (complete(vq, h, l, check_len, &b[got])) {
			if (lens)
				lens[got] = l;
			got++;
		}
	}
	return got;
}

unsigned vpacked_take_used(struct vpacked *vq, struct vuser_buf **b, uint32_t *lens, unsigned n,
			   bool check_len)
{
	unsigned got = 0;

	while (got < n && vq->inflight && !vq->broken) {
		struct vring_packed_desc *d;
		uint16_t id, flags;
		uint32_t len;
		bool avail, used;

		if (vq->pending) {
			/* The used descriptor of this batch is behind us already. */
			got += take_batch(vq, b + got, lens ? lens + got : NULL, n - got, check_len);
			continue;
		}
		d = &vq->desc[vq->used_pos];
		/* 2.7.21: the flags first, the rest only after them: acquire. */
		flags = __atomic_load_n(&d->flags, __ATOMIC_ACQUIRE);
		avail = flags & F_AVAIL;
		used = flags & F_USED;
		if (avail != used || used != vq->used_wrap)
			break;
		id = READ_ONCE(d->id);
		len = READ_ONCE(d->len);
		/*
		 * A used descriptor we cannot place: how far to skip is
		 * unknowable, so the ring is not followed any further. Only
		 * an id in flight has a buffer; in order, that is the head
		 * position of a chain in flight, which bounds the batch.
		 */
		if (unlikely(id >= vq->size || !vq->slots[id].buf)) {
			vq->errors++;
			vq->broken = true;
			break;
		}
		if (vq->in_order) {
			vq->pending = true;
			vq->pending_id = id;
			vq->pending_len = len;
			continue;
		}
		if (complete(vq, id, len, check_len, &b[got])) {
			if (lens)
				lens[got] = len;
			got++;
		}
	}
	return got;
}

unsigned vpacked_release(struct vpacked *vq)
{
	unsigned n = 0;

	for (unsigned i = 0; vq->slots && i < vq->size; i++) {
		struct vuser_buf *m = vq->slots[i].buf;

		if (!m)
			continue;
		vq->slots[i].buf = NULL;
		vpool_put_chains(&m, 1);
		n++;
	}
	vq->inflight = 0;
	vq->num_free = 0;
	vq->pending = false;
	/* Nothing may be posted or taken until the ring is laid out again. */
	vq->broken = true;
	return n;
}
