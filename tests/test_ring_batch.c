/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The device half's four-at-once step over both layouts (vdpacked_batch /
 * vdpacked_take_batch, vdsplit_batch): it takes four one-descriptor chains
 * only when every rule the one-by-one walk checks holds for all four, and
 * otherwise changes nothing, so that the walk can name the broken rule.
 * Each case below breaks one rule at each of the four places.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "base/memtable.h"
#include "ring/packed_dev.h"
#include "ring/split_dev.h"
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
static void pk_good(unsigned at, bool wrap, bool rx)
{
	desc[at].addr = GPA + (uint64_t)at * BUFLEN;
	desc[at].len = BUFLEN;
	desc[at].id = (uint16_t)(10 + at);
	desc[at].flags = avail_flags(wrap, rx ? VRING_DESC_F_WRITE : 0);
}

/* A ring of SIZE whose next chain is at pos, in the lap wrap; four good descriptors from pos. */
static void pk_setup(struct vdpacked *vq, uint16_t pos, bool wrap, bool rx)
{
	memset(desc, 0, sizeof(desc));
	CHECK_EQ(vdpacked_init(vq, &mem, desc, &drv, &dev, SIZE, pos | (uint32_t)wrap << 15, false,
			       true), 0);
	for (unsigned i = 0; i < 4; i++)
		pk_good((pos + i) % SIZE, wrap, rx);
}

/* The step refuses, and the ring's state is as it was. */
static void pk_refused(struct vdpacked *vq, bool rx, const char *what, unsigned where)
{
	struct vdseg seg[VD_BATCH];
	uint16_t id[VD_BATCH];
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
static void pk_taken(struct vdpacked *vq, bool rx)
{
	struct vdseg seg[VD_BATCH];
	uint16_t id[VD_BATCH];
	uint32_t len[VD_BATCH] = { 1, 2, 3, 4 };
	uint16_t pos = vq->avail_pos;
	bool wrap = vq->avail_wrap;
	unsigned nshadow = vq->nshadow;

	if (!vdpacked_batch(vq, rx, seg, id)) {
		fprintf(stderr, "four good descriptors at %u refused\n", pos);
		t_failures++;
		return;
	}
	for (unsigned i = 0; i < VD_BATCH; i++) {
		unsigned at = pos + i;

		CHECK(seg[i].p == area + (size_t)at * BUFLEN);
		CHECK_EQ(seg[i].len, BUFLEN);
		CHECK_EQ(seg[i].write, rx);
		CHECK_EQ(id[i], 10 + at);
	}
	vdpacked_take_batch(vq, id, len);
	CHECK_EQ(vq->nshadow, nshadow + 4);
	for (unsigned i = 0; i < VD_BATCH; i++) {
		CHECK_EQ(vq->shadow[nshadow + i].id, 10 + pos + i);
		CHECK_EQ(vq->shadow[nshadow + i].ndesc, 1);
		CHECK_EQ(vq->shadow[nshadow + i].len, len[i]);
	}
	CHECK_EQ(vq->avail_pos, (pos + 4) % SIZE);
	CHECK_EQ(vq->avail_wrap, pos + 4 == SIZE ? !wrap : wrap);
}

static void packed(bool rx)
{
	struct vdpacked vq = { 0 };

	/* Good: at the start, and at the end of the lap, which then turns. */
	pk_setup(&vq, 0, true, rx);
	pk_taken(&vq, rx);
	pk_setup(&vq, 4, true, rx);
	pk_taken(&vq, rx);
	CHECK_EQ(vq.avail_wrap, false);
	/* The second lap's flags are the other way round. */
	for (unsigned i = 0; i < 4; i++)
		pk_good(i, false, rx);
	pk_taken(&vq, rx);

	for (unsigned w = 0; w < 4; w++) {
		pk_setup(&vq, 0, true, rx);
		desc[w].flags = avail_flags(true, rx ? 0 : VRING_DESC_F_WRITE);
		pk_refused(&vq, rx, rx ? "readable in a receive chain" : "writable in a transmit chain", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].flags |= VRING_DESC_F_NEXT;
		pk_refused(&vq, rx, "NEXT", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].flags |= VRING_DESC_F_INDIRECT;
		pk_refused(&vq, rx, "INDIRECT", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].flags = 0;
		pk_refused(&vq, rx, "not made available", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].flags |= F_USED;
		pk_refused(&vq, rx, "already used", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].flags = avail_flags(false, rx ? VRING_DESC_F_WRITE : 0);
		pk_refused(&vq, rx, "available only in the next lap", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].len = 0;
		pk_refused(&vq, rx, "empty", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].addr = GPA + MEMSZ;
		pk_refused(&vq, rx, "outside memory", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].addr = GPA + MEMSZ - BUFLEN / 2;
		pk_refused(&vq, rx, "running off the region", w);

		pk_setup(&vq, 0, true, rx);
		desc[w].addr = GPA - 1;
		pk_refused(&vq, rx, "starting before the region", w);
	}
	/*
	 * Four good ones that cross the end of the ring are the walk's
	 * job; what lies past the ring is never a descriptor.
	 */
	pk_setup(&vq, 6, true, rx);
	for (unsigned i = SIZE; i < SIZE + 4; i++)
		pk_good(i, true, rx);
	pk_refused(&vq, rx, "crossing the end of the ring", 0);
	/* No room left in the shadow list for four more. */
	pk_setup(&vq, 0, true, rx);
	vq.nshadow = SIZE - 3;
	pk_refused(&vq, rx, "a full shadow list", 0);
	vdpacked_destroy(&vq);
}

/* ----------------------------------------------------------------- split */

/* One entry past the table: memory that happens to look like a good descriptor. */
static struct vring_desc sdesc[SIZE + 1];
static struct {
	struct vring_avail a;
	uint16_t ring[SIZE + 1];
} savail;
static struct {
	struct vring_used u;
	struct vring_used_elem ring[SIZE];
	uint16_t event;
} sused;

/* A good plain descriptor at table index d, its own buffer. */
static void sp_good(unsigned d, bool rx)
{
	sdesc[d] = (struct vring_desc){ .addr = GPA + (uint64_t)d * BUFLEN, .len = BUFLEN,
					.flags = rx ? VRING_DESC_F_WRITE : 0 };
}

/*
 * A ring whose next avail entry is at index base; the four entries from
 * there name heads 7, 5, 3, 1 (any order is the driver's), each good.
 */
static const uint16_t heads[4] = { 7, 5, 3, 1 };

static void sp_setup(struct vdsplit *vq, uint16_t base, bool rx)
{
	memset(sdesc, 0, sizeof(sdesc));
	memset(&savail, 0, sizeof(savail));
	memset(&sused, 0, sizeof(sused));
	vdsplit_init(vq, &mem, sdesc, &savail.a, &sused.u, SIZE, base, false, true);
	for (unsigned k = 0; k < 4; k++) {
		savail.a.ring[(uint16_t)(base + k) & (SIZE - 1)] = heads[k];
		sp_good(heads[k], rx);
	}
	savail.a.idx = (uint16_t)(base + 4);
}

static void sp_refused(struct vdsplit *vq, bool rx, const char *what, unsigned where)
{
	struct vdseg seg[VD_BATCH];
	uint16_t head[VD_BATCH];
	uint16_t last = vq->last_avail, used = vq->used_idx;

	if (vdsplit_batch(vq, 0, rx, seg, head)) {
		fprintf(stderr, "split: taken although %s (entry %u)\n", what, where);
		t_failures++;
	}
	CHECK_EQ(vq->last_avail, last);
	CHECK_EQ(vq->used_idx, used);
	CHECK(vq->why == NULL);
}

static void sp_taken(struct vdsplit *vq, uint16_t i, bool rx)
{
	struct vdseg seg[VD_BATCH];
	uint16_t head[VD_BATCH];

	if (!vdsplit_batch(vq, i, rx, seg, head)) {
		fprintf(stderr, "split: four good chains at %u refused\n", vq->last_avail + i);
		t_failures++;
		return;
	}
	for (unsigned k = 0; k < VD_BATCH; k++) {
		CHECK_EQ(head[k], heads[k]);
		CHECK(seg[k].p == area + (size_t)heads[k] * BUFLEN);
		CHECK_EQ(seg[k].len, BUFLEN);
		CHECK_EQ(seg[k].write, rx);
	}
}

static void split(bool rx)
{
	struct vdsplit vq = { 0 };

	/* Good: from the start, and across the end of the avail ring and of the index. */
	sp_setup(&vq, 0, rx);
	sp_taken(&vq, 0, rx);
	sp_setup(&vq, SIZE - 2, rx);
	sp_taken(&vq, 0, rx);
	sp_setup(&vq, 65534, rx);
	sp_taken(&vq, 0, rx);
	/* Found from an offset into the burst (i), as the caller asks. */
	sp_setup(&vq, 4, rx);
	vq.last_avail = 2;
	sp_taken(&vq, 2, rx);

	for (unsigned w = 0; w < 4; w++) {
		uint16_t h = heads[w];

		sp_setup(&vq, 0, rx);
		savail.a.ring[w] = SIZE;
		sp_good(SIZE, rx);
		sp_refused(&vq, rx, "a head beyond the ring", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].flags = rx ? 0 : VRING_DESC_F_WRITE;
		sp_refused(&vq, rx, rx ? "readable in a receive chain" : "writable in a transmit chain", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].flags |= VRING_DESC_F_NEXT;
		sp_refused(&vq, rx, "NEXT", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].flags |= VRING_DESC_F_INDIRECT;
		sp_refused(&vq, rx, "INDIRECT", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].len = 0;
		sp_refused(&vq, rx, "empty", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].addr = GPA + MEMSZ;
		sp_refused(&vq, rx, "outside memory", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].addr = GPA + MEMSZ - BUFLEN / 2;
		sp_refused(&vq, rx, "running off the region", w);

		sp_setup(&vq, 0, rx);
		sdesc[h].addr = GPA - 1;
		sp_refused(&vq, rx, "starting before the region", w);
	}
}

int main(void)
{
	vmem_init(&mem, 8);
	mem.n = 1;
	mem.r[0] = (struct vmem_region){ .gpa = GPA, .size = MEMSZ, .host = area };

	for (int rx = 0; rx < 2; rx++) {
		packed(rx);
		split(rx);
	}
	return t_result();
}
