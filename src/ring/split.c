/* SPDX-License-Identifier: BSD-3-Clause */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/compat.h"
#include "base/pool.h"
#include "ring/split.h"

static size_t avail_off(unsigned size)
{
	return (size_t)size * sizeof(struct vring_desc);
}

/*
 * The used ring starts on its own cache line: the device writes it while we
 * write desc and avail, and sharing a line would bounce it between cores.
 */
static size_t used_off(unsigned size)
{
	return (avail_off(size) + sizeof(struct vring_avail) + (size + 1) * sizeof(uint16_t) + 63) &
	       ~(size_t)63;
}

size_t vsplit_mem_size(unsigned size)
{
	return used_off(size) + sizeof(struct vring_used) +
	       size * sizeof(struct vring_used_elem) + sizeof(uint16_t);
}

int vsplit_init(struct vsplit *vq, void *mem, unsigned size, bool in_order)
{
	uint8_t *m = mem;

	memset(vq, 0, sizeof(*vq));
	memset(mem, 0, vsplit_mem_size(size));
	vq->next = calloc(size, sizeof(*vq->next));
	vq->slots = calloc(size, sizeof(*vq->slots));
	if (!vq->next || !vq->slots) {
		vsplit_destroy(vq);
		return -ENOMEM;
	}
	vq->desc = (struct vring_desc *)m;
	vq->avail = (struct vring_avail *)(m + avail_off(size));
	vq->used = (struct vring_used *)(m + used_off(size));
	vq->size = (uint16_t)size;
	vq->mask = (uint16_t)(size - 1);
	vq->in_order = in_order;
	vq->num_free = (uint16_t)size;
	vq->free_head = 0;
	vq->free_tail = (uint16_t)(size - 1);
	for (unsigned i = 0; i < size; i++)
		vq->next[i] = (uint16_t)((i + 1) & vq->mask);
	/* We poll: the device need not signal used buffers (2.6.7). */
	vq->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	return 0;
}

void vsplit_destroy(struct vsplit *vq)
{
	free(vq->next);
	free(vq->slots);
	vq->next = NULL;
	vq->slots = NULL;
}

/*
 * Descriptors come off the head of a FIFO free list and go back on its tail.
 * With in-order use the device returns chains in the order they were made,
 * so the list stays in ring order and every chain is a run of consecutive
 * descriptors, which is what lets the device skip used entries (2.6.10.1).
 */
static inline void put_avail(struct vsplit *vq, uint16_t head)
{
	uint16_t *slot = &vq->avail->ring[vq->avail_idx & vq->mask];

	/*
	 * In order, a slot usually names the same head lap after lap: leave
	 * its line alone then, so the device's copy stays valid and it reads
	 * the slot without a transfer.
	 */
	if (READ_ONCE(*slot) != head)
		WRITE_ONCE(*slot, head);
	vq->avail_idx++;
	vq->inflight++;
}

unsigned vsplit_post_rx(struct vsplit *vq, struct vuser_buf **b, unsigned n, unsigned hdr)
{
	if (n > vq->num_free)
		n = vq->num_free;
	for (unsigned i = 0; i < n; i++) {
		uint16_t d = vq->free_head;
		struct vuser_buf *m = b[i];
		uint32_t off = m->data_off - hdr;
		struct vsplit_slot *s = &vq->slots[d];

		vq->free_head = vq->next[d];
		s->buf = m;
		s->len = m->room - off;
		s->ndesc = 1;
		s->tail = d;
		vq->desc[d] = (struct vring_desc){ .addr = m->iova + off, .len = s->len,
						   .flags = VRING_DESC_F_WRITE };
		put_avail(vq, d);
	}
	vq->num_free -= (uint16_t)n;
	return n;
}

unsigned vsplit_post_tx(struct vsplit *vq, struct vuser_buf **b, unsigned n, unsigned hdr)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct vuser_buf *m = b[i];
		uint16_t head = vq->free_head, d = head, prev = head;
		unsigned nseg = m->nb_segs;

		if (nseg > vq->num_free)
			break;
		vq->desc[d] = (struct vring_desc){ .addr = m->iova + m->data_off - hdr,
						   .len = m->data_len + hdr };
		for (struct vuser_buf *s = m->next; s; s = s->next) {
			vq->desc[prev].flags = VRING_DESC_F_NEXT;
			vq->desc[prev].next = vq->next[prev];
			d = vq->next[prev];
			vq->desc[d] = (struct vring_desc){ .addr = s->iova + s->data_off,
							   .len = s->data_len };
			prev = d;
		}
		vq->free_head = vq->next[d];
		vq->num_free -= (uint16_t)nseg;
		vq->slots[head] = (struct vsplit_slot){ .buf = m, .ndesc = (uint16_t)nseg,
							.tail = d };
		put_avail(vq, head);
	}
	return i;
}

void vsplit_publish(struct vsplit *vq)
{
	/*
	 * 2.6.13.6: "The driver MUST perform a suitable memory barrier before
	 * the idx update, to ensure the device sees the most up-to-date copy"
	 * of the descriptors and ring entries: a release store.
	 */
	__atomic_store_n(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
}

bool vsplit_wants_kick(struct vsplit *vq)
{
	/*
	 * 2.6.13.7: the driver must make the idx update visible before it reads
	 * the device's flags, or both sides can miss each other: a full fence.
	 */
	vfence_full();
	return !(READ_ONCE(vq->used->flags) & VRING_USED_F_NO_NOTIFY);
}

static inline void free_chain(struct vsplit *vq, uint16_t head)
{
	struct vsplit_slot *s = &vq->slots[head];

	if (vq->num_free)
		vq->next[vq->free_tail] = head;
	else
		vq->free_head = head;
	vq->free_tail = s->tail;
	vq->num_free += s->ndesc;
	vq->inflight--;
	s->buf = NULL;
}

/* Heads in flight, oldest first, as far as `want`: how many chains to it, or 0. */
static unsigned inorder_distance(const struct vsplit *vq, uint16_t want)
{
	uint16_t h = vq->oldest;

	for (unsigned k = 1; k <= vq->inflight; k++) {
		if (h == want)
			return k;
		h = (uint16_t)((vq->slots[h].tail + 1) & vq->mask);
	}
	return 0;
}

/*
 * In order, and with no length wanted (sent frames): used idx alone says how
 * many chains are done (2.6.9), and they are the oldest ones. No entry is
 * read, so the line the device's core has just written is never fetched;
 * an entry could only name what the idx already says. An idx that claims
 * more than is in flight is an error and frees nothing: the count restarts
 * from it.
 */
static unsigned take_inorder_by_idx(struct vsplit *vq, struct vuser_buf **b, unsigned n,
				    uint16_t used_idx, uint16_t avail)
{
	unsigned got = 0;

	if (unlikely(avail > vq->inflight)) {
		vq->errors++;
		vq->last_used = used_idx;
		return 0;
	}
	for (; got < n && got < avail; got++) {
		uint16_t h = vq->oldest;
		struct vsplit_slot *s = &vq->slots[h];

		b[got] = s->buf;
		vq->oldest = (uint16_t)((s->tail + 1) & vq->mask);
		free_chain(vq, h);
	}
	vq->last_used = (uint16_t)(vq->last_used + got);
	return got;
}

unsigned vsplit_take_used(struct vsplit *vq, struct vuser_buf **b, uint32_t *lens,
			  unsigned n, bool check_len)
{
	/* 2.6.8: read idx before the entries it covers: an acquire load. */
	uint16_t used_idx = __atomic_load_n(&vq->used->idx, __ATOMIC_ACQUIRE);
	uint16_t avail = (uint16_t)(used_idx - vq->last_used);
	unsigned got = 0;

	if (!avail) {
		/*
		 * Nothing yet: ask for the line of the next entry. The device
		 * writes it before the idx, so a poller that asks while it
		 * waits finds the entry here when the idx moves, rather than
		 * fetching the two one after the other.
		 */
		__builtin_prefetch(&vq->used->ring[vq->last_used & vq->mask]);
		return 0;
	}
	if (vq->in_order && !lens && !vq->batch_done)
		return take_inorder_by_idx(vq, b, n, used_idx, avail);
	/*
	 * At most a ring of entries, plus the chains of a part-taken batch:
	 * freeing them let the device complete as many more.
	 */
	if (unlikely(avail > vq->size + vq->batch_done)) {
		/*
		 * More than a ring can hold: the index is garbage. Look at one
		 * ring's worth; every entry is checked on its own below.
		 */
		vq->errors++;
		avail = vq->size;
	}
	while (avail && got < n) {
		struct vring_used_elem e;
		unsigned span = 1, skip;
		bool partial = false;
		struct vsplit_slot *s;

		if (vq->batch_done) {
			/*
			 * The rest of a batch an earlier call took part of. Its
			 * entry is not read again: the chains freed since then
			 * let the device move on, and its slot may be reused.
			 */
			e = vq->batch_entry;
		} else {
			e.id = READ_ONCE(vq->used->ring[vq->last_used & vq->mask].id);
			e.len = READ_ONCE(vq->used->ring[vq->last_used & vq->mask].len);
		}
		if (unlikely(e.id >= vq->size || !vq->slots[e.id].buf)) {
			vq->errors++;
			goto skip;
		}
		if (vq->in_order && e.id != vq->oldest) {
			/*
			 * A batch (2.6.9): this entry completes every older chain
			 * too, and used idx moved by the batch's size, so the next
			 * entry is that many slots on.
			 */
			span = inorder_distance(vq, (uint16_t)e.id);
			if (unlikely(!span || vq->batch_done + span > avail)) {
				vq->errors++;
				goto skip;
			}
		}
		/* What the entry covers: the chains taken by earlier calls and these. */
		skip = vq->batch_done + span;
		if (span > n - got) {
			/*
			 * The batch is larger than the caller's room: complete
			 * what fits and leave the entry; the next call measures
			 * the rest from the new oldest chain.
			 */
			span = n - got;
			partial = true;
		}
		for (unsigned k = 0; k < span; k++) {
			uint16_t h = vq->in_order ? vq->oldest : (uint16_t)e.id;
			uint32_t len = h == e.id && !partial ? e.len : 0;

			s = &vq->slots[h];
			if (vq->in_order)
				vq->oldest = (uint16_t)((s->tail + 1) & vq->mask);
			if (unlikely(check_len && len > s->len)) {
				struct vuser_buf *bad = s->buf;

				vq->errors++;
				free_chain(vq, h);
				vpool_put_chains(&bad, 1);
				continue;
			}
			b[got] = s->buf;
			if (lens)
				lens[got] = len;
			got++;
			free_chain(vq, h);
		}
		if (partial) {
			vq->batch_done = (uint16_t)(vq->batch_done + span);
			vq->batch_entry = e;
			break;
		}
		vq->batch_done = 0;
		vq->last_used = (uint16_t)(vq->last_used + skip);
		avail = (uint16_t)(avail - skip);
		continue;
skip:
		vq->batch_done = 0;
		vq->last_used++;
		avail--;
	}
	return got;
}

unsigned vsplit_release(struct vsplit *vq)
{
	unsigned n = 0;

	/* Only private bookkeeping is read: what the device wrote says nothing now. */
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
	vq->batch_done = 0;
	return n;
}
