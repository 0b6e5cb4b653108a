/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Split virtqueue, driver half (virtio 1.1, 2.6). The descriptor table and
 * avail ring are ours to write; the used ring is the device's, and every
 * entry read from it is checked against what we posted before it is used.
 * Bookkeeping (free list, which buffer a descriptor holds) lives in private
 * memory, so a device scribbling on the rings cannot steer the driver.
 */
#ifndef VUSER_RING_SPLIT_H
#define VUSER_RING_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compat.h"
#include "vuser/uapi/virtio_ring.h"
#include "vuser/vuser.h"

struct vsplit_slot {
	struct vuser_buf *buf;  /* frame posted with this head, NULL when free */
	uint32_t len;           /* bytes the device may write (device-writable chains) */
	uint16_t ndesc;
	uint16_t tail;          /* last descriptor of the chain */
};

struct vsplit {
	/* Shared with the device. */
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	/* Private. */
	uint16_t size;
	uint16_t mask;
	uint16_t avail_idx;     /* next avail index to publish */
	uint16_t last_used;     /* next used index to consume */
	uint16_t num_free;
	uint16_t free_head;
	uint16_t free_tail;
	uint16_t inflight;      /* chains posted and not yet used */
	uint16_t oldest;        /* head of the oldest chain in flight (in-order) */
	uint16_t batch_done;    /* chains of a batch entry already taken, and ... */
	struct vring_used_elem batch_entry;   /* ... that entry, as first read */
	bool in_order;
	uint16_t *next;         /* free list and chain links */
	struct vsplit_slot *slots;
	uint64_t errors;        /* used entries that broke the rules */
};

/* Bytes and alignment of the shared part of a ring of `size` entries. */
size_t vsplit_mem_size(unsigned size);
#define VSPLIT_MEM_ALIGN 4096

/*
 * Lay a ring of `size` (a power of two) out in mem, zeroed, with interrupts
 * suppressed: vuser polls. Returns 0 or -ENOMEM.
 */
int vsplit_init(struct vsplit *vq, void *mem, unsigned size, bool in_order);
void vsplit_destroy(struct vsplit *vq);

static inline unsigned vsplit_free_descs(const struct vsplit *vq)
{
	return vq->num_free;
}

/*
 * Post n device-writable buffers, one descriptor each, covering the segment
 * from data_off - hdr to its end. Returns how many were posted.
 */
unsigned vsplit_post_rx(struct vsplit *vq, struct vuser_buf **b, unsigned n, unsigned hdr);

/*
 * Before posting up to n descriptors: ask for the lines of the table they
 * will be written to, as far as the free list runs in ring order (in order,
 * it always does). The device's core read each line when it last took the
 * chains there, so every store to it must take the line back first; asked
 * for together, the transfers overlap instead of queueing one behind another
 * in the store buffer. The device polls the avail idx, not these lines, so
 * asking takes nothing it is waiting on. Only lines inside the table.
 */
static inline void vsplit_prefetch_tx(const struct vsplit *vq, unsigned n)
{
	const unsigned per_line = 64 / sizeof(struct vring_desc);
	const uint16_t first = (uint16_t)(vq->free_head & ~(per_line - 1));

	/* Nothing to post (a reclaim-only call, a full ring): no line to ask for. */
	if (!n)
		return;
	for (unsigned k = 0; k < n + (vq->free_head & (per_line - 1)); k += per_line)
		vprefetch_w(&vq->desc[(uint16_t)(first + k) & vq->mask]);
}

/*
 * Post n frames for the device to read, one chain each; the first descriptor
 * starts hdr bytes before the data (where the caller put the header).
 * Returns how many frames were posted (stops when descriptors run out).
 */
unsigned vsplit_post_tx(struct vsplit *vq, struct vuser_buf **b, unsigned n, unsigned hdr);

/* Make posted entries visible to the device. */
void vsplit_publish(struct vsplit *vq);

/*
 * After a publish: true when the device wants a kick. Asking costs a full
 * fence, which waits for every store of the burst to leave this core; a
 * driver whose device polls does not ask.
 */
bool vsplit_wants_kick(struct vsplit *vq);

/*
 * Take up to n completed chains: b[i] and the length the device wrote,
 * lens[i] (lens may be NULL). Entries naming a head not in flight, or a
 * length beyond what was posted (check_len), are counted in errors and
 * dropped; a dropped chain's buffers go back to their pool. In order with
 * lens NULL, no entry is read: used idx alone names the oldest chains done,
 * and an idx beyond what is in flight counts one error and frees nothing.
 */
unsigned vsplit_take_used(struct vsplit *vq, struct vuser_buf **b, uint32_t *lens,
			  unsigned n, bool check_len);

/*
 * The device is gone: give every chain still posted back to its pool and
 * return how many there were. The ring is left unusable until vsplit_init()
 * lays it out again (the next device starts from a clean ring).
 */
unsigned vsplit_release(struct vsplit *vq);

#endif
