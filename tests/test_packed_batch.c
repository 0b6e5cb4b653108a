/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device half's four-at-once step over a packed ring
 * (vdpacked_batch / vdpacked_take_batch): it takes four one-descriptor
 * chains only when every rule the one-by-one walk checks holds for all
 * four, and otherwise changes nothing, so that the walk can name the broken
 * rule. Each case below breaks one rule at each of the four places.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/memtable.h"
#include "ring/packed_dev.h"
#include "testlib.h"

#define GPA 0x100000ull
#define MEMSZ 65536u
#define BUFLEN 2048u
#define SIZE 8u

static struct vmem mem;
static uint8_t area[MEMSZ];
/* Four entries past the ring: memory that happens to look like good descriptors. */
static struct vring_packed_desc desc[SIZE + 4];
static struct vring_packed_desc_event drv, dev;

#define F_AVAIL (1u << VRING_PACKED_DESC_F_AVAIL)
#define F_USED (1u << VRING_PACKED_DESC_F_USED)

/* The flags that make a descriptor available in the lap with wrap counter wrap. */
static uint16_t avail_flags(bool wrap, uint16_t f)
{
	return (uint16_t)(f | (wrap ? F_AVAIL : F_USED));
}

/* A good one-descriptor chain at position at, its own buffer and id 10 + at. */
static void good(unsigned at, bool wrap, bool rx)
{
	desc[at].addr = GPA + (uint64_t)at * BUFLEN;
	desc[at].len = BUFLEN;
	desc[at].id = (uint16_t)(10 + at);
	desc[at].flags = avail_flags(wrap, rx ? VRING_DESC_F_WRITE : 0);
}

/* A ring of SIZE whose next chain is at pos, in the lap wrap; four good descriptors from pos. */
static void setup(struct vdpacked *vq, uint16_t pos, bool wrap, bool rx)
{
	memset(desc, 0, sizeof(desc));
	CHECK_EQ(vdpacked_init(vq, &mem, desc, &drv, &dev, SIZE, pos | (uint32_t)wrap << 15, false,
			       true), 0);
	for (unsigned i = 0; i < 4; i++)
		good((pos + i) % SIZE, wrap, rx);
}

/* The step refuses, and the ring's state is as it was. */
static void refused(struct vdpacked *vq, bool rx, const char *what, unsigned where)
{
	struct vdseg seg[VDPACKED_BATCH];
	uint16_t id[VDPACKED_BATCH];
	uint16_t pos = vq->avail_pos;
	bool wrap = vq->avail_wrap;
	unsigned nshadow = vq->nshadow;

	if (vdpacked_batch(vq, rx, seg, id)) {
		fprintf(stderr, "taken although %s (descriptor %u)\n", what, where);
		t_failures++;
	}
	CHECK_EQ(vq->avail_pos, pos);
	CHECK_EQ(vq->avail_wrap, wrap);
	CHECK_EQ(vq->nshadow, nshadow);
}

/* The step takes the four at pos, with the right buffers and ids. */
static void taken(struct vdpacked *vq, bool rx)
{
	struct vdseg seg[VDPACKED_BATCH];
	uint16_t id[VDPACKED_BATCH];
	uint32_t len[VDPACKED_BATCH] = { 1, 2, 3, 4 };
	uint16_t pos = vq->avail_pos;
	bool wrap = vq->avail_wrap;
	unsigned nshadow = vq->nshadow;

	if (!vdpacked_batch(vq, rx, seg, id)) {
		fprintf(stderr, "four good descriptors at %u refused\n", pos);
		t_failures++;
		return;
	}
	for (unsigned i = 0; i < VDPACKED_BATCH; i++) {
		unsigned at = pos + i;

		CHECK(seg[i].p == area + (size_t)at * BUFLEN);
		CHECK_EQ(seg[i].len, BUFLEN);
		CHECK_EQ(seg[i].write, rx);
		CHECK_EQ(id[i], 10 + at);
	}
	vdpacked_take_batch(vq, id, len);
	CHECK_EQ(vq->nshadow, nshadow + 4);
	for (unsigned i = 0; i < VDPACKED_BATCH; i++) {
		CHECK_EQ(vq->shadow[nshadow + i].id, 10 + pos + i);
		CHECK_EQ(vq->shadow[nshadow + i].ndesc, 1);
		CHECK_EQ(vq->shadow[nshadow + i].len, len[i]);
	}
	CHECK_EQ(vq->avail_pos, (pos + 4) % SIZE);
	CHECK_EQ(vq->avail_wrap, pos + 4 == SIZE ? !wrap : wrap);
}

int main(void)
{
	struct vdpacked vq = { 0 };

	vmem_init(&mem, 8);
	mem.n = 1;
	mem.r[0] = (struct vmem_region){ .gpa = GPA, .size = MEMSZ, .host = area };

	for (int rx = 0; rx < 2; rx++) {
		/* Good: at the start, and at the end of the lap, which then turns. */
		setup(&vq, 0, true, rx);
		taken(&vq, rx);
		setup(&vq, 4, true, rx);
		taken(&vq, rx);
		CHECK_EQ(vq.avail_wrap, false);
		/* The second lap's flags are the other way round. */
		for (unsigned i = 0; i < 4; i++)
			good(i, false, rx);
		taken(&vq, rx);

		for (unsigned w = 0; w < 4; w++) {
			setup(&vq, 0, true, rx);
			desc[w].flags = avail_flags(true, rx ? 0 : VRING_DESC_F_WRITE);
			refused(&vq, rx, rx ? "readable in a receive chain" : "writable in a transmit chain", w);

			setup(&vq, 0, true, rx);
			desc[w].flags |= VRING_DESC_F_NEXT;
			refused(&vq, rx, "NEXT", w);

			setup(&vq, 0, true, rx);
			desc[w].flags |= VRING_DESC_F_INDIRECT;
			refused(&vq, rx, "INDIRECT", w);

			setup(&vq, 0, true, rx);
			desc[w].flags = 0;
			refused(&vq, rx, "not made available", w);

			setup(&vq, 0, true, rx);
			desc[w].flags |= F_USED;
			refused(&vq, rx, "already used", w);

			setup(&vq, 0, true, rx);
			desc[w].flags = avail_flags(false, rx ? VRING_DESC_F_WRITE : 0);
			refused(&vq, rx, "available only in the next lap", w);

			setup(&vq, 0, true, rx);
			desc[w].len = 0;
			refused(&vq, rx, "empty", w);

			setup(&vq, 0, true, rx);
			desc[w].addr = GPA + MEMSZ;
			refused(&vq, rx, "outside memory", w);

			setup(&vq, 0, true, rx);
			desc[w].addr = GPA + MEMSZ - BUFLEN / 2;
			refused(&vq, rx, "running off the region", w);

			setup(&vq, 0, true, rx);
			desc[w].addr = GPA - 1;
			refused(&vq, rx, "starting before the region", w);
		}
		/*
		 * Four good ones that cross the end of the ring are the walk's
		 * job; what lies past the ring is never a descriptor.
		 */
		setup(&vq, 6, true, rx);
		for (unsigned i = SIZE; i < SIZE + 4; i++)
			good(i, true, rx);
		refused(&vq, rx, "crossing the end of the ring", 0);
		/* No room left in the shadow list for four more. */
		setup(&vq, 0, true, rx);
		vq.nshadow = SIZE - 3;
		refused(&vq, rx, "a full shadow list", 0);
	}
	vdpacked_destroy(&vq);
	return t_result();
}
