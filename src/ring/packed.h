/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Packed virtqueue, driver half (virtio 1.1, 2.7). One descriptor ring that
 * both sides write: we make descriptors available by setting AVAIL to our
 * wrap counter and USED to its inverse, the device hands them back with both
 * bits equal to its own. Every used descriptor is checked against what we
 * posted (its buffer id, its length) before it is followed, and the ids and
 * chain lengths we rely on live in private memory.
 */
#ifndef VUSER_RING_PACKED_H
#define VUSER_RING_PACKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vuser/uapi/virtio_ring.h"
#include "vuser/vuser.h"

struct vpacked_slot {
	struct vuser_buf *buf;  /* frame posted under this buffer id, NULL when free */
	uint32_t len;           /* bytes the device may write (device-writable buffers) */
	uint16_t ndesc;         /* ring positions the chain takes */
	uint16_t next;          /* free ids (not in order: in order, an id is a position) */
};

struct vpacked {
	/* Shared with the device. */
	struct vring_packed_desc *desc;
	struct vring_packed_desc_event *driver;  /* ours: used-buffer notifications */
	struct vring_packed_desc_event *device;  /* the device's: available-buffer ones */
	/* Private. */
	uint16_t size;
	uint16_t avail_pos;     /* next position to make available */
	uint16_t used_pos;      /* next position the device writes a used descriptor */
	bool avail_wrap;
	bool used_wrap;
	bool in_order;
	bool broken;            /* the device wrote a descriptor we cannot follow */
	uint16_t num_free;      /* free ring positions */
	uint16_t free_id;       /* head of the free buffer ids (not in order) */
	uint16_t inflight;      /* chains posted and not yet used */
	bool pending;           /* in order: a batch only partly taken, up to ... */
	uint16_t pending_id;    /* ... this id (a head position), whose used ... */
	uint32_t pending_len;   /* ... length is this */
	struct vpacked_slot *slots;
	uint64_t errors;
};

size_t vpacked_mem_size(unsigned size);
#define VPACKED_MEM_ALIGN 4096

/* Lay out a ring of size entries (1..32768, any value) in mem. 0 or -ENOMEM. */
int vpacked_init(struct vpacked *vq, void *mem, unsigned size, bool in_order);
void vpacked_destroy(struct vpacked *vq);

static inline unsigned vpacked_free_descs(const struct vpacked *vq)
{
	return vq->broken ? 0 : vq->num_free;
}

unsigned vpacked_post_rx(struct vpacked *vq, struct vuser_buf **b, unsigned n, unsigned hdr);

/*
 * Post up to n frames for the device to read, one chain each, the header
 * hdr bytes before the data. The whole burst becomes available at once,
 * through the first head's flags, written last (see packed.c).
 */
unsigned vpacked_post_tx(struct vpacked *vq, struct vuser_buf **b, unsigned n, unsigned hdr);
/* After posting: true when the device wants a kick (a full fence; see split.h). */
bool vpacked_wants_kick(struct vpacked *vq);
unsigned vpacked_take_used(struct vpacked *vq, struct vuser_buf **b, uint32_t *lens, unsigned n,
			   bool check_len);

/*
 * The device is gone: every chain still posted (an in-order batch half
 * taken included) goes back to its pool; returns how many. The ring is
 * unusable until vpacked_init() lays it out again.
 */
unsigned vpacked_release(struct vpacked *vq);

#endif
