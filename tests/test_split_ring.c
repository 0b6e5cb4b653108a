/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The split virtqueue driver half (src/ring/split.c) against a device played
 * by this program, which reads desc/avail and writes used entries straight in
 * the shared memory. The device side knows nothing of the driver's private
 * bookkeeping: it learns what was posted only from the rings, as a real
 * backend would, so a wrong descriptor shows up as a wrong descriptor.
 */
#include <stdbool.h>
#include <stdint.h>

#include "base/arena.h"
#include "base/pool.h"
#include "ring/split.h"
#include "testlib.h"

#define HDR 12 /* sizeof(struct virtio_net_hdr_mrg_rxbuf) */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

/* Fixed-seed xorshift: a failing round must replay identically. */
static uint32_t rnd(uint32_t bound)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return bound ? (uint32_t)(rng_state % bound) : 0;
}

/* ------------------------------------------------------------------ */
/* The device: its own avail/used cursors, nothing else. */

struct dev {
	struct vring_desc *desc;
	struct vring_avail *avail;
	struct vring_used *used;
	unsigned size;
	uint16_t avail_idx; /* next avail entry to read */
	uint16_t used_idx;  /* next used entry to write */
};

/* New heads the driver published, in avail order. */
static unsigned dev_pop(struct dev *d, uint16_t *heads, unsigned max)
{
	uint16_t idx = __atomic_load_n(&d->avail->idx, __ATOMIC_ACQUIRE);
	unsigned n = 0;

	while (d->avail_idx != idx && n < max) {
		heads[n++] = d->avail->ring[d->avail_idx % d->size];
		d->avail_idx++;
	}
	return n;
}

static void dev_write(struct dev *d, uint32_t id, uint32_t len)
{
	struct vring_used_elem *e = &d->used->ring[d->used_idx % d->size];

	e->id = id;
	e->len = len;
}

/* One used entry, made visible with the release the spec asks of the device. */
static void dev_complete(struct dev *d, uint32_t id, uint32_t len)
{
	dev_write(d, id, len);
	d->used_idx++;
	__atomic_store_n(&d->used->idx, d->used_idx, __ATOMIC_RELEASE);
}

/*
 * In order (2.6.9): one entry, naming the last chain, for a batch of count
 * chains; used idx moves by the batch size, the next entry goes after it.
 */
static void dev_complete_batch(struct dev *d, uint32_t id, uint32_t len, unsigned count)
{
	dev_write(d, id, len);
	d->used_idx = (uint16_t)(d->used_idx + count);
	__atomic_store_n(&d->used->idx, d->used_idx, __ATOMIC_RELEASE);
}

/*
 * Follow a chain the way a device does. Returns the number of descriptors,
 * or 0 when the chain does not end within `size` links (a loop).
 */
static unsigned dev_chain(const struct dev *d, uint16_t head, uint16_t *descs)
{
	uint16_t x = head;

	for (unsigned n = 0; n < d->size; n++) {
		if (x >= d->size)
			return 0;
		descs[n] = x;
		if (!(d->desc[x].flags & VRING_DESC_F_NEXT))
			return n + 1;
		x = d->desc[x].next;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Fixture: one arena holding the ring and the pool, as a port lays them out. */

struct fx {
	struct varena a;
	struct vuser_pool pool;
	struct vsplit vq;
	struct dev dev;
	uint8_t *mem;
	unsigned size;
};

static void fx_init(struct fx *f, unsigned size, unsigned nbufs, bool in_order)
{
	size_t need = VSPLIT_MEM_ALIGN + vsplit_mem_size(size) + 64 + vpool_mem_size(nbufs);

	memset(f, 0, sizeof(*f));
	if (varena_create(&f->a, need, "test-split-ring")) {
		fprintf(stderr, "varena_create failed\n");
		exit(1);
	}
	f->mem = varena_carve(&f->a, vsplit_mem_size(size), VSPLIT_MEM_ALIGN);
	if (!f->mem || vpool_init(&f->pool, &f->a, nbufs) ||
	    vsplit_init(&f->vq, f->mem, size, in_order)) {
		fprintf(stderr, "fixture setup failed for size %u\n", size);
		exit(1);
	}
	f->size = size;
	f->dev = (struct dev){ .desc = (struct vring_desc *)f->mem, .avail = f->vq.avail,
			       .used = f->vq.used, .size = size };
}

/* Every buffer exactly once on the free stack: no loss, no double free. */
static void check_pool_whole(const struct vuser_pool *p)
{
	uint8_t *seen = calloc(p->nb, 1);
	unsigned nfree = vpool_count_free(p), dup = 0, bad = 0;

	CHECK_EQ(nfree, p->nb);
	for (unsigned i = 0; i < nfree && i < p->nb; i++) {
		struct vuser_buf *b = p->stack[i];
		ptrdiff_t k = b - p->bufs;

		if (k < 0 || (size_t)k >= p->nb)
			bad++;
		else if (seen[k]++)
			dup++;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(dup, 0);
	free(seen);
}

static void fx_fini(struct fx *f)
{
	vsplit_destroy(&f->vq);
	vpool_destroy(&f->pool);
	varena_destroy(&f->a);
}

static struct vuser_buf *get1(struct fx *f)
{
	struct vuser_buf *b;

	if (!vpool_get(&f->pool, &b, 1))
		return NULL;
	vbuf_reset(b);
	return b;
}

/*
 * A frame of nseg segments with the given data lengths. Later segments start
 * at varying offsets so a descriptor that ignored data_off would be caught.
 */
static struct vuser_buf *make_frame(struct fx *f, unsigned nseg, const uint32_t *lens)
{
	struct vuser_buf *segs[8], *prev = NULL;
	uint32_t total = 0;

	if (nseg > 8 || !vpool_get(&f->pool, segs, nseg))
		return NULL;
	for (unsigned i = 0; i < nseg; i++) {
		vbuf_reset(segs[i]);
		if (i)
			segs[i]->data_off = (uint16_t)(i * 8 % VUSER_BUF_HEADROOM);
		segs[i]->data_len = lens[i];
		total += lens[i];
		if (prev)
			prev->next = segs[i];
		prev = segs[i];
	}
	segs[0]->nb_segs = (uint16_t)nseg;
	segs[0]->pkt_len = total;
	return segs[0];
}

static uint32_t rx_cap(const struct vuser_buf *b)
{
	return b->room - (b->data_off - HDR);
}

/* ------------------------------------------------------------------ */

static void test_layout(unsigned size)
{
	struct fx f;
	uintptr_t desc, avail, used, avail_end;
	size_t need;

	fx_init(&f, size, 4, false);
	/* Garbage first: vsplit_init must hand the device zeroed rings. */
	memset(f.mem, 0xa5, vsplit_mem_size(size));
	vsplit_destroy(&f.vq);
	CHECK_EQ(vsplit_init(&f.vq, f.mem, size, false), 0);

	desc = (uintptr_t)f.vq.desc;
	avail = (uintptr_t)f.vq.avail;
	used = (uintptr_t)f.vq.used;
	CHECK_EQ(desc, (uintptr_t)f.mem);
	CHECK_EQ(desc % VRING_DESC_ALIGN, 0);
	CHECK_EQ(avail, desc + size * sizeof(struct vring_desc));
	CHECK_EQ(avail % VRING_AVAIL_ALIGN, 0);
	/* flags, idx, ring[size], used_event */
	avail_end = avail + 4 + 2 * (uintptr_t)size + 2;
	CHECK_EQ(used % 64, 0);
	CHECK(used >= avail_end);
	/* Own line: nothing of avail (used_event included) on used's first line. */
	CHECK((avail_end - 1) / 64 < used / 64);
	/* flags, idx, ring[size], avail_event */
	need = used - desc + 4 + 8 * (size_t)size + 2;
	CHECK(vsplit_mem_size(size) >= need);
	CHECK_EQ(f.vq.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	CHECK_EQ(f.vq.avail->idx, 0);
	CHECK_EQ(f.vq.used->flags, 0);
	CHECK_EQ(f.vq.used->idx, 0);
	{
		unsigned nonzero = 0;

		for (size_t i = 0; i < vsplit_mem_size(size); i++)
			nonzero += f.mem[i] != 0;
		/* Only the NO_INTERRUPT bit of avail->flags. */
		CHECK_EQ(nonzero, 1);
	}
	CHECK_EQ(vsplit_free_descs(&f.vq), size);
	CHECK_EQ(f.vq.size, size);
	fx_fini(&f);
}

static void test_post_rx(void)
{
	struct fx f;
	struct vuser_buf *b[12], *out[12];
	uint16_t heads[12], seen = 0;
	uint32_t lens[12];
	unsigned n;

	fx_init(&f, 8, 32, false);
	for (unsigned i = 0; i < 12; i++) {
		b[i] = get1(&f);
		/* Different headroom per buffer: the descriptor must follow data_off. */
		b[i]->data_off = (uint16_t)(HDR + 4 * i);
	}
	n = vsplit_post_rx(&f.vq, b, 5, HDR);
	CHECK_EQ(n, 5);
	CHECK_EQ(vsplit_free_descs(&f.vq), 3);
	/* Nothing visible before publish. */
	CHECK_EQ(f.vq.avail->idx, 0);
	CHECK_EQ(dev_pop(&f.dev, heads, 12), 0);
	vsplit_publish(&f.vq);
	CHECK_EQ(f.vq.avail->idx, 5);
	CHECK_EQ(dev_pop(&f.dev, heads, 12), 5);
	for (unsigned i = 0; i < 5; i++) {
		const struct vring_desc *d = &f.vq.desc[heads[i]];

		CHECK(heads[i] < 8);
		CHECK(!(seen & (1u << heads[i])));
		seen |= (uint16_t)(1u << heads[i]);
		CHECK_EQ(d->addr, b[i]->iova + b[i]->data_off - HDR);
		CHECK_EQ(d->len, rx_cap(b[i]));
		/* Ends exactly at the end of the segment. */
		CHECK_EQ(d->addr + d->len, b[i]->iova + VPOOL_SEG_SIZE);
		CHECK_EQ(d->flags, VRING_DESC_F_WRITE);
	}

	/* More than fits: only what fits, the rest stays the caller's. */
	n = vsplit_post_rx(&f.vq, b + 5, 7, HDR);
	CHECK_EQ(n, 3);
	CHECK_EQ(vsplit_free_descs(&f.vq), 0);
	CHECK_EQ(vsplit_post_rx(&f.vq, b + 8, 4, HDR), 0);
	CHECK_EQ(f.vq.avail->idx, 5);
	vsplit_publish(&f.vq);
	CHECK_EQ(f.vq.avail->idx, 8);
	CHECK_EQ(dev_pop(&f.dev, heads + 5, 12), 3);
	for (unsigned i = 5; i < 8; i++) {
		CHECK(!(seen & (1u << heads[i])));
		seen |= (uint16_t)(1u << heads[i]);
		CHECK_EQ(f.vq.desc[heads[i]].addr, b[i]->iova + b[i]->data_off - HDR);
	}
	CHECK_EQ(seen, 0xff);

	for (unsigned i = 0; i < 8; i++)
		dev_complete(&f.dev, heads[i], 60 + i);
	n = vsplit_take_used(&f.vq, out, lens, 12, true);
	CHECK_EQ(n, 8);
	for (unsigned i = 0; i < n; i++) {
		CHECK(out[i] == b[i]);
		CHECK_EQ(lens[i], 60 + i);
	}
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 8);
	vpool_put(&f.pool, b, 12);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

static void test_post_tx(void)
{
	static const uint32_t one[] = { 100 };
	static const uint32_t three[] = { 1000, 700, 300 };
	static const uint32_t five[] = { 10, 20, 30, 40, 50 };
	struct fx f;
	struct vuser_buf *fr[4], *out[8];
	uint16_t heads[8], descs[8];
	uint32_t lens[8];
	unsigned n;

	fx_init(&f, 8, 32, false);
	fr[0] = make_frame(&f, 1, one);
	fr[1] = make_frame(&f, 3, three);
	CHECK_EQ(vsplit_post_tx(&f.vq, fr, 2, HDR), 2);
	CHECK_EQ(vsplit_free_descs(&f.vq), 4);
	CHECK_EQ(f.vq.avail->idx, 0);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 8), 2);

	/* Single segment: header and data in one device-readable descriptor. */
	CHECK_EQ(dev_chain(&f.dev, heads[0], descs), 1);
	CHECK_EQ(f.vq.desc[heads[0]].addr, fr[0]->iova + fr[0]->data_off - HDR);
	CHECK_EQ(f.vq.desc[heads[0]].len, 100 + HDR);
	CHECK_EQ(f.vq.desc[heads[0]].flags, 0);

	/* Chain: NEXT on all but the last, header only in front of the first. */
	CHECK_EQ(dev_chain(&f.dev, heads[1], descs), 3);
	{
		struct vuser_buf *s = fr[1];

		for (unsigned i = 0; i < 3; i++, s = s->next) {
			const struct vring_desc *d = &f.vq.desc[descs[i]];
			unsigned h = i ? 0 : HDR;

			CHECK(descs[i] != heads[0]);
			CHECK_EQ(d->addr, s->iova + s->data_off - h);
			CHECK_EQ(d->len, three[i] + h);
			CHECK_EQ(d->flags, i < 2 ? VRING_DESC_F_NEXT : 0);
		}
		CHECK(descs[0] != descs[1] && descs[1] != descs[2] && descs[0] != descs[2]);
	}

	/* 4 free: a 5-segment frame does not fit and stops the burst there. */
	fr[2] = make_frame(&f, 5, five);
	fr[3] = make_frame(&f, 1, one);
	CHECK_EQ(vsplit_post_tx(&f.vq, fr + 2, 2, HDR), 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 4);
	CHECK_EQ(vsplit_post_tx(&f.vq, fr + 3, 1, HDR), 1);
	CHECK_EQ(vsplit_free_descs(&f.vq), 3);
	vsplit_publish(&f.vq);
	CHECK_EQ(f.vq.avail->idx, 3);
	CHECK_EQ(dev_pop(&f.dev, heads + 2, 8), 1);
	CHECK_EQ(dev_chain(&f.dev, heads[2], descs), 1);

	dev_complete(&f.dev, heads[1], 0);
	dev_complete(&f.dev, heads[2], 0);
	dev_complete(&f.dev, heads[0], 0);
	n = vsplit_take_used(&f.vq, out, lens, 8, true);
	CHECK_EQ(n, 3);
	CHECK(out[0] == fr[1] && out[1] == fr[3] && out[2] == fr[0]);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 8);

	/* With the whole ring free, the 5-segment frame now fits. */
	CHECK_EQ(vsplit_post_tx(&f.vq, fr + 2, 1, HDR), 1);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 8), 1);
	CHECK_EQ(dev_chain(&f.dev, heads[0], descs), 5);
	dev_complete(&f.dev, heads[0], 0);
	CHECK_EQ(vsplit_take_used(&f.vq, out, NULL, 8, true), 1);
	CHECK(out[0] == fr[2]);

	vpool_put_chains(fr, 4);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

static void test_publish_kick(void)
{
	struct fx f;
	struct vuser_buf *b;

	fx_init(&f, 8, 8, false);
	b = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, &b, 1, HDR), 1);
	/* Posting alone shows the device nothing; publishing moves idx. */
	CHECK_EQ(f.vq.avail->idx, 0);
	vsplit_publish(&f.vq);
	CHECK_EQ(f.vq.avail->idx, 1);
	CHECK(vsplit_wants_kick(&f.vq));
	f.vq.used->flags = VRING_USED_F_NO_NOTIFY;
	CHECK(!vsplit_wants_kick(&f.vq));
	/* Other bits are not ours to interpret. */
	f.vq.used->flags = 0xfffe;
	CHECK(vsplit_wants_kick(&f.vq));
	f.vq.used->flags = 0;
	CHECK(vsplit_wants_kick(&f.vq));
	/* Publishing twice, or asking, must not advance idx again. */
	vsplit_publish(&f.vq);
	CHECK_EQ(f.vq.avail->idx, 1);
	vpool_put(&f.pool, &b, 1);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* Out of order: the device names chains in any order and the caller sees that order. */
static void test_out_of_order(void)
{
	struct fx f;
	struct vuser_buf *b[4], *out[4];
	uint16_t heads[4];
	uint32_t lens[4];

	fx_init(&f, 8, 16, false);
	for (unsigned i = 0; i < 4; i++)
		b[i] = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, b, 4, HDR), 4);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 4), 4);
	for (unsigned i = 0; i < 4; i++)
		dev_complete(&f.dev, heads[3 - i], 100 + i);
	/* Partial take leaves the rest in place. */
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 1, true), 1);
	CHECK(out[0] == b[3]);
	CHECK_EQ(lens[0], 100);
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 4, true), 3);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(out[i] == b[2 - i]);
		CHECK_EQ(lens[i], 101 + i);
	}
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 4, true), 0);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 8);
	vpool_put(&f.pool, b, 4);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* In order, one entry per chain, and (2.6.10.1) one entry per batch. */
static void test_in_order(void)
{
	static const uint32_t segs[4] = { 1, 2, 1, 3 };
	static const uint32_t lens_tx[3] = { 64, 64, 64 };
	struct fx f;
	struct vuser_buf *b[5], *out[8], *fr[4];
	uint16_t heads[8], descs[8];
	uint32_t lens[8];
	unsigned n;

	fx_init(&f, 8, 32, true);

	/* One entry per chain. */
	for (unsigned i = 0; i < 5; i++)
		b[i] = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, b, 5, HDR), 5);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 8), 5);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(heads[i], i); /* in-order drivers use descriptors in ring order */
	dev_complete(&f.dev, heads[0], 10);
	dev_complete(&f.dev, heads[1], 11);
	n = vsplit_take_used(&f.vq, out, lens, 8, true);
	CHECK_EQ(n, 2);
	CHECK(out[0] == b[0] && out[1] == b[1]);
	CHECK_EQ(lens[0], 10);
	CHECK_EQ(lens[1], 11);

	/* A batch of three with one entry naming the last: all three, len 0 for the skipped. */
	dev_complete_batch(&f.dev, heads[4], 50, 3);
	n = vsplit_take_used(&f.vq, out, lens, 8, true);
	CHECK_EQ(n, 3);
	CHECK(out[0] == b[2] && out[1] == b[3] && out[2] == b[4]);
	CHECK_EQ(lens[0], 0);
	CHECK_EQ(lens[1], 0);
	CHECK_EQ(lens[2], 50);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 8);
	vpool_put(&f.pool, b, 5);

	/* Chains of several descriptors, across the end of the table (5,6,7,0,...). */
	for (unsigned i = 0; i < 4; i++)
		fr[i] = make_frame(&f, segs[i], lens_tx);
	CHECK_EQ(vsplit_post_tx(&f.vq, fr, 4, HDR), 4);
	CHECK_EQ(vsplit_free_descs(&f.vq), 1);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 8), 4);
	{
		uint16_t expect = 5;

		for (unsigned i = 0; i < 4; i++) {
			unsigned nd = dev_chain(&f.dev, heads[i], descs);

			CHECK_EQ(nd, segs[i]);
			for (unsigned k = 0; k < nd; k++) {
				CHECK_EQ(descs[k], expect);
				expect = (uint16_t)((expect + 1) % 8);
			}
		}
	}
	dev_complete_batch(&f.dev, heads[3], 0, 4);
	n = vsplit_take_used(&f.vq, out, lens, 8, true);
	CHECK_EQ(n, 4);
	for (unsigned i = 0; i < n; i++) {
		CHECK(out[i] == fr[i]);
		CHECK_EQ(lens[i], 0);
	}
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 8);
	vpool_put_chains(fr, 4);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/*
 * The device goes away with chains posted, some of them used but not taken
 * (in-order: a batch half taken). vsplit_release() gives every chain the
 * ring holds back to the pool, exactly once, and a ring laid out again in
 * the same memory starts clean: the next device sees index 0 and nothing
 * posted, whatever the last one left there.
 */
static void test_release(bool in_order)
{
	static const uint32_t l3[3] = { 100, 200, 300 };
	struct fx f;
	struct vuser_buf *b[16], *fr[2], *out[16];
	uint16_t heads[16];
	uint32_t lens[16];
	unsigned n, held = 0, released;
	int before = t_failures;

	fx_init(&f, 16, 64, in_order);
	for (unsigned i = 0; i < 8; i++)
		b[i] = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, b, 8, HDR), 8);
	for (unsigned i = 0; i < 2; i++)
		fr[i] = make_frame(&f, 3, l3);
	CHECK_EQ(vsplit_post_tx(&f.vq, fr, 2, HDR), 2);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 16), 10);
	if (in_order) {
		/* One entry for the first six chains; the caller takes two of them. */
		dev_complete_batch(&f.dev, heads[5], 0, 6);
		n = vsplit_take_used(&f.vq, out, lens, 2, true);
		CHECK_EQ(n, 2);
	} else {
		dev_complete(&f.dev, heads[1], 10);
		dev_complete(&f.dev, heads[9], 0);
		n = vsplit_take_used(&f.vq, out, lens, 1, true);
		CHECK_EQ(n, 1);
	}
	for (unsigned i = 0; i < n; i++)
		held += out[i]->nb_segs;

	released = vsplit_release(&f.vq);
	CHECK_EQ(released, 10 - n);
	CHECK_EQ(vpool_count_free(&f.pool) + held, f.pool.nb);
	for (unsigned i = 0; i < f.size; i++)
		CHECK(f.vq.slots[i].buf == NULL);
	/* A second release finds nothing: teardown may run twice. */
	CHECK_EQ(vsplit_release(&f.vq), 0);
	vpool_put_chains(out, n);
	check_pool_whole(&f.pool);

	vsplit_destroy(&f.vq);
	memset(f.mem, 0xa5, vsplit_mem_size(f.size));
	CHECK_EQ(vsplit_init(&f.vq, f.mem, f.size, in_order), 0);
	CHECK_EQ(f.vq.avail->idx, 0);
	CHECK_EQ(f.vq.used->idx, 0);
	CHECK_EQ(f.vq.avail->flags, VRING_AVAIL_F_NO_INTERRUPT);
	CHECK_EQ(vsplit_free_descs(&f.vq), 16);
	f.dev = (struct dev){ .desc = (struct vring_desc *)f.mem, .avail = f.vq.avail,
			      .used = f.vq.used, .size = f.size };
	for (unsigned i = 0; i < 16; i++)
		b[i] = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, b, 16, HDR), 16);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 16), 16);
	for (unsigned i = 0; i < 16; i++)
		dev_complete(&f.dev, heads[i], 60);
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 16, true), 16);
	for (unsigned i = 0; i < 16; i++)
		CHECK(out[i] == b[i]);
	CHECK_EQ(f.vq.errors, 0);
	vpool_put(&f.pool, out, 16);
	check_pool_whole(&f.pool);
	if (t_failures != before)
		fprintf(stderr, "  release (in_order=%d)\n", in_order);
	fx_fini(&f);
}

/*
 * A batch entry covering more chains than the caller asked for. It must not
 * be lost, and the caller must still make progress when it keeps asking for
 * fewer than the batch: the port's bursts ask for at most 64 while a batch
 * may cover every chain of a 256-entry ring.
 */
static void test_in_order_batch_over_n(void)
{
	struct fx f;
	struct vuser_buf *b[4], *out[8];
	uint32_t lens[8];
	uint16_t heads[4];
	unsigned total = 0, n;

	fx_init(&f, 8, 16, true);
	for (unsigned i = 0; i < 4; i++)
		b[i] = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, b, 4, HDR), 4);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, heads, 4), 4);
	dev_complete_batch(&f.dev, heads[3], 9, 4);

	for (unsigned call = 0; call < 4 && total < 4; call++) {
		n = vsplit_take_used(&f.vq, out + total, lens + total, 2, true);
		CHECK(n <= 2);
		total += n;
	}
	if (total != 4)
		fprintf(stderr, "  in-order batch of 4, take_used(n=2) x4: %u chains taken "
				"(a caller that never asks for the whole batch is stuck)\n",
			total);
	CHECK_EQ(total, 4);
	/* Whatever is left must still be there for a larger request. */
	n = vsplit_take_used(&f.vq, out + total, lens + total, 8, true);
	total += n;
	CHECK_EQ(total, 4);
	for (unsigned i = 0; i < total && i < 4; i++) {
		CHECK(out[i] == b[i]);
		CHECK_EQ(lens[i], i == 3 ? 9 : 0);
	}
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 8);
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 8, true), 0);
	vpool_put(&f.pool, b, 4);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/* Hostile device. */

struct hctx {
	struct fx f;
	unsigned taken;          /* buffers handed back to the caller */
	uint64_t errs;           /* expected vq.errors */
};

static unsigned h_take(struct hctx *h, struct vuser_buf **out, uint32_t *lens, unsigned n)
{
	unsigned got = vsplit_take_used(&h->f.vq, out, lens, n, true);

	h->taken += got;
	return got;
}

/* Post one RX buffer and return the head the device sees. */
static uint16_t h_post_rx(struct hctx *h, struct vuser_buf **bp)
{
	struct vuser_buf *b = get1(&h->f);
	uint16_t head = 0xffff;

	*bp = b;
	CHECK_EQ(vsplit_post_rx(&h->f.vq, &b, 1, HDR), 1);
	vsplit_publish(&h->f.vq);
	CHECK_EQ(dev_pop(&h->f.dev, &head, 1), 1);
	return head;
}

/* A bad used entry: counted, nothing returned, nothing freed, no crash. */
static void h_bad(struct hctx *h, uint32_t id, uint32_t len, const char *what)
{
	struct vuser_buf *out[8];
	uint32_t lens[8];
	unsigned nfree = vsplit_free_descs(&h->f.vq), pfree = vpool_count_free(&h->f.pool);
	unsigned got;
	int before = t_failures;

	dev_complete(&h->f.dev, id, len);
	got = h_take(h, out, lens, 8);
	h->errs++;
	CHECK_EQ(got, 0);
	CHECK_EQ(h->f.vq.errors, h->errs);
	CHECK_EQ(vsplit_free_descs(&h->f.vq), nfree);
	CHECK_EQ(vpool_count_free(&h->f.pool), pfree);
	if (t_failures != before)
		fprintf(stderr, "  hostile case: %s (in_order=%d)\n", what, h->f.vq.in_order);
}

/*
 * After a lie about used->idx, device and driver agree again: the device
 * keeps the valid entries it wrote up to valid_end, and skips whatever the
 * driver has already read past that. How far the driver reads into a lying
 * index is its policy; the test only asks that it recovers.
 */
static void h_resync(struct hctx *h, uint16_t valid_end)
{
	struct fx *f = &h->f;

	f->dev.used_idx = valid_end;
	if ((int16_t)(f->vq.last_used - valid_end) > 0)
		f->dev.used_idx = f->vq.last_used;
	__atomic_store_n(&f->vq.used->idx, f->dev.used_idx, __ATOMIC_RELEASE);
}

/* The lie was counted; later checks count from here. */
static void h_lie_counted(struct hctx *h, uint64_t before)
{
	CHECK(h->f.vq.errors > before);
	h->errs = h->f.vq.errors;
}

/* A correct completion of the oldest in flight, after a bad one, still works. */
static void h_good(struct hctx *h, uint16_t head, struct vuser_buf *b, uint32_t len)
{
	struct vuser_buf *out[8];
	uint32_t lens[8];

	dev_complete(&h->f.dev, head, len);
	CHECK_EQ(h_take(h, out, lens, 8), 1);
	CHECK(out[0] == b);
	CHECK_EQ(lens[0], len);
	CHECK_EQ(h->f.vq.errors, h->errs);
	vpool_put_chains(&b, 1);
	h->taken--;
}

static void test_hostile(bool in_order)
{
	static const uint32_t l3[3] = { 64, 64, 64 };
	struct hctx h = { 0 };
	struct fx *f = &h.f;
	struct vuser_buf *b[4], *tx, *out[8];
	uint16_t hd[4], txh, descs[8];
	uint32_t lens[8];
	unsigned got;

	fx_init(f, 8, 32, in_order);
	for (unsigned i = 0; i < 4; i++)
		hd[i] = h_post_rx(&h, &b[i]);
	tx = make_frame(f, 3, l3);
	CHECK_EQ(vsplit_post_tx(&f->vq, &tx, 1, HDR), 1);
	vsplit_publish(&f->vq);
	CHECK_EQ(dev_pop(&f->dev, &txh, 1), 1);
	CHECK_EQ(dev_chain(&f->dev, txh, descs), 3);
	/* In flight: 4 RX (one descriptor each) and a 3-descriptor TX chain; 1 free. */
	CHECK_EQ(vsplit_free_descs(&f->vq), 1);

	h_bad(&h, 8, 0, "id == size");
	h_bad(&h, 0xffffffffu, 0, "id ~0");
	h_bad(&h, 0x10000u + hd[0], 0, "id aliasing a head in its low 16 bits");
	{
		uint16_t never = 0xffff;

		for (uint16_t d = 0; d < 8; d++) {
			bool used = d == descs[0] || d == descs[1] || d == descs[2];

			for (unsigned i = 0; i < 4; i++)
				used |= d == hd[i];
			if (!used)
				never = d;
		}
		CHECK(never != 0xffff);
		h_bad(&h, never, 0, "descriptor never posted");
	}
	h_bad(&h, descs[1], 0, "middle descriptor of a chain");
	h_bad(&h, descs[2], 0, "last descriptor of a chain");

	/* Completing the oldest correctly works after all that. */
	h_good(&h, hd[0], b[0], 33);
	h_bad(&h, hd[0], 33, "head already completed");

	/* Length beyond what was posted: dropped, counted, buffer back in the pool. */
	{
		unsigned pfree = vpool_count_free(&f->pool);

		dev_complete(&f->dev, hd[1], rx_cap(b[1]) + 1);
		got = h_take(&h, out, lens, 8);
		h.errs++;
		CHECK_EQ(got, 0);
		CHECK_EQ(f->vq.errors, h.errs);
		CHECK_EQ(vpool_count_free(&f->pool), pfree + 1);
		CHECK_EQ(vsplit_free_descs(&f->vq), 3);
		/* Its slot is no longer a head in flight. */
		h_bad(&h, hd[1], 1, "head dropped for a bad length");
	}
	/* Exactly the posted length is fine. */
	h_good(&h, hd[2], b[2], rx_cap(b[2]));

	if (in_order) {
		/*
		 * A batch whose last chain has a bad length: the earlier chains
		 * complete (len 0), the bad one is dropped.
		 */
		struct vuser_buf *extra;
		uint16_t eh = h_post_rx(&h, &extra);
		unsigned pfree = vpool_count_free(&f->pool);

		dev_complete_batch(&f->dev, eh, rx_cap(extra) + 100, 3);
		got = h_take(&h, out, lens, 8);
		h.errs++;
		CHECK_EQ(got, 2);
		CHECK(out[0] == b[3] && out[1] == tx);
		CHECK_EQ(lens[0], 0);
		CHECK_EQ(lens[1], 0);
		CHECK_EQ(f->vq.errors, h.errs);
		CHECK_EQ(vpool_count_free(&f->pool), pfree + 1);
		vpool_put_chains(out, got);
		h.taken -= got;
	} else {
		dev_complete(&f->dev, txh, 0);
		dev_complete(&f->dev, hd[3], 7);
		got = h_take(&h, out, lens, 8);
		CHECK_EQ(got, 2);
		CHECK(out[0] == tx && out[1] == b[3]);
		CHECK_EQ(lens[1], 7);
		CHECK_EQ(f->vq.errors, h.errs);
		vpool_put_chains(out, got);
		h.taken -= got;
	}
	CHECK_EQ(vsplit_free_descs(&f->vq), 8);
	CHECK_EQ(f->vq.inflight, 0);

	/* Nothing in flight at all: any entry is a lie. */
	{
		uint16_t at = f->dev.used_idx;

		h_bad(&h, 0, 0, "entry with nothing in flight");
		h_resync(&h, at);
		CHECK_EQ(h_take(&h, out, lens, 8), 0);
		h_lie_counted(&h, h.errs - 1);
	}

	/*
	 * used->idx running ahead of what is in flight, by less and by more
	 * than a ring. However far the driver reads into the lie, it must count
	 * it, return only what it posted, each once, and recover.
	 */
	static const unsigned jumps[] = { 5, 21, 0x7000 };

	for (unsigned j = 0; j < sizeof(jumps) / sizeof(jumps[0]); j++) {
		unsigned jump = jumps[j];
		struct vuser_buf *x[3], *y;
		uint16_t xh[3], yh;
		uint64_t before = f->vq.errors;
		unsigned total;

		for (unsigned i = 0; i < 3; i++)
			xh[i] = h_post_rx(&h, &x[i]);
		for (unsigned i = 0; i < 3; i++) {
			dev_write(&f->dev, xh[i], 20 + i);
			f->dev.used_idx++;
		}
		__atomic_store_n(&f->vq.used->idx, (uint16_t)(f->dev.used_idx + jump),
				 __ATOMIC_RELEASE);
		total = h_take(&h, out, lens, 8);
		CHECK(total <= 3);
		/* At most one ring's worth read: an index is no licence to lap the ring. */
		CHECK(f->vq.errors - before <= 8 + 1);
		CHECK((uint16_t)(f->vq.last_used - (f->dev.used_idx - 3)) <= 8);
		h_resync(&h, f->dev.used_idx);
		total += h_take(&h, out + total, lens + total, 8);
		h_lie_counted(&h, before);
		CHECK_EQ(total, 3);
		for (unsigned i = 0; i < total && i < 3; i++) {
			CHECK(out[i] == x[i]);
			CHECK_EQ(lens[i], 20 + i);
		}
		CHECK_EQ(f->vq.inflight, 0);
		vpool_put_chains(out, total);
		h.taken -= total;

		yh = h_post_rx(&h, &y);
		h_good(&h, yh, y, 5);
	}

	/* used->idx behind the driver's (a wrapped-around lie): the same rules. */
	{
		struct vuser_buf *y;
		uint16_t yh = h_post_rx(&h, &y), real = f->dev.used_idx;
		uint64_t before = f->vq.errors;
		unsigned total;

		dev_write(&f->dev, yh, 3);
		__atomic_store_n(&f->vq.used->idx, (uint16_t)(real - 1), __ATOMIC_RELEASE);
		total = h_take(&h, out, lens, 8);
		CHECK(total <= 1);
		h_resync(&h, (uint16_t)(real + 1));
		total += h_take(&h, out + total, lens + total, 8);
		h_lie_counted(&h, before);
		CHECK_EQ(total, 1);
		if (total == 1) {
			CHECK(out[0] == y);
			CHECK_EQ(lens[0], 3);
		}
		CHECK_EQ(f->vq.last_used, f->dev.used_idx);
		vpool_put_chains(out, total);
		h.taken -= total;

		yh = h_post_rx(&h, &y);
		h_good(&h, yh, y, 6);
	}

	/*
	 * A lie while chains are in flight that the device has not completed:
	 * stale entries left in the ring from earlier laps must not complete
	 * them. The ring is first filled with entries naming every descriptor.
	 */
	{
		struct vuser_buf *z[2], *y;
		uint16_t zh[2], yh;
		uint64_t before;
		unsigned total;

		for (unsigned i = 0; i < 8; i++)
			f->vq.used->ring[i] = (struct vring_used_elem){ .id = i, .len = 1 };
		zh[0] = h_post_rx(&h, &z[0]);
		zh[1] = h_post_rx(&h, &z[1]);
		before = f->vq.errors;
		/* The device completes only the second, and lies about idx. */
		dev_write(&f->dev, zh[1], 2);
		f->dev.used_idx++;
		__atomic_store_n(&f->vq.used->idx, (uint16_t)(f->dev.used_idx + 3),
				 __ATOMIC_RELEASE);
		total = h_take(&h, out, lens, 8);
		h_resync(&h, f->dev.used_idx);
		total += h_take(&h, out + total, lens + total, 8);
		h_lie_counted(&h, before);
		if (!in_order) {
			/*
			 * Out of order, a stale entry naming z[0]'s head is
			 * indistinguishable from a completion; only z[1] is
			 * certain. In order, z[1]'s entry completes both.
			 */
			CHECK(total >= 1 && total <= 2);
			for (unsigned i = 0; i < total; i++)
				CHECK(out[i] == z[0] || out[i] == z[1]);
			if (total == 1) {
				CHECK(out[0] == z[1]);
				h_good(&h, zh[0], z[0], 4);
			}
		} else {
			CHECK_EQ(total, 2);
			CHECK(out[0] == z[0] && out[1] == z[1]);
		}
		vpool_put_chains(out, total);
		h.taken -= total;
		yh = h_post_rx(&h, &y);
		h_good(&h, yh, y, 7);
	}

	CHECK_EQ(vsplit_free_descs(&f->vq), 8);
	CHECK_EQ(h.taken, 0);
	check_pool_whole(&f->pool);
	fx_fini(f);
}

/* ------------------------------------------------------------------ */
/*
 * Random post/complete against a shadow model. A record per frame, keyed by
 * its first buffer; the device identifies frames by descriptor address only.
 */

enum { R_FREE, R_POSTED, R_AT_DEVICE, R_USED };

struct rec {
	int state;
	bool rx;
	struct vuser_buf *buf;
	uint16_t head, ndesc;
	uint16_t descs[8];
	uint32_t cap;
};

struct expect {
	struct rec *r;
	uint32_t len;
};

struct model {
	struct fx f;
	struct rec *recs;       /* by pool buffer index of the first segment */
	int *owner;             /* descriptor -> buffer index of the chain holding it, or -1 */
	struct rec **devq;      /* chains the device holds, pop order */
	unsigned ndev;
	struct expect *exp;     /* completions the driver must report, in order */
	unsigned exp_head, exp_tail, exp_cap;
	unsigned descs_out;     /* descriptors posted and not yet taken back */
	unsigned chains_out;
	uint16_t next_desc;     /* in-order: where the next chain must start */
	uint16_t posted;        /* chains posted, mod 2^16 */
	uint16_t published;
	unsigned long completed;
};

static struct rec *rec_of(struct model *m, struct vuser_buf *b)
{
	return &m->recs[b - m->f.pool.bufs];
}

static void m_post(struct model *m)
{
	struct fx *f = &m->f;
	unsigned size = f->size, free0 = vsplit_free_descs(&f->vq), n, k;
	struct vuser_buf *v[64];

	if (rnd(2)) {
		k = 1 + rnd(size + 2);
		if (!vpool_get(&f->pool, v, k))
			return;
		for (unsigned i = 0; i < k; i++) {
			vbuf_reset(v[i]);
			v[i]->data_off = (uint16_t)(HDR + rnd(VUSER_BUF_HEADROOM - HDR));
		}
		n = vsplit_post_rx(&f->vq, v, k, HDR);
		CHECK_EQ(n, k < free0 ? k : free0);
		for (unsigned i = 0; i < n; i++) {
			struct rec *r = rec_of(m, v[i]);

			CHECK_EQ(r->state, R_FREE);
			*r = (struct rec){ .state = R_POSTED, .rx = true, .buf = v[i], .ndesc = 1,
					   .cap = rx_cap(v[i]) };
		}
		vpool_put(&f->pool, v + n, k - n);
	} else {
		uint32_t lens[4];
		unsigned need = 0, fit = 0;
		bool full = false;

		k = 1 + rnd(size / 2 + 1);
		for (unsigned i = 0; i < k; i++) {
			unsigned ns = 1 + rnd(4);

			for (unsigned s = 0; s < ns; s++)
				lens[s] = 1 + rnd(VUSER_BUF_DATAROOM);
			v[i] = make_frame(f, ns, lens);
			if (!v[i]) {
				k = i;
				break;
			}
			need += ns;
			if (!full && need <= free0)
				fit++;
			else
				full = true;
		}
		n = vsplit_post_tx(&f->vq, v, k, HDR);
		CHECK_EQ(n, fit);
		for (unsigned i = 0; i < n; i++) {
			struct rec *r = rec_of(m, v[i]);

			CHECK_EQ(r->state, R_FREE);
			*r = (struct rec){ .state = R_POSTED, .rx = false, .buf = v[i],
					   .ndesc = v[i]->nb_segs };
		}
		vpool_put_chains(v + n, k - n);
	}
	for (unsigned i = 0; i < n; i++)
		m->descs_out += rec_of(m, v[i])->ndesc;
	m->chains_out += n;
	m->posted = (uint16_t)(m->posted + n);
	CHECK_EQ(vsplit_free_descs(&f->vq), size - m->descs_out);
	/* Posted is not published. */
	CHECK_EQ(__atomic_load_n(&f->vq.avail->idx, __ATOMIC_ACQUIRE), m->published);
}

/* The device reads what was published and checks it against the buffers. */
static void m_device_pop(struct model *m)
{
	struct fx *f = &m->f;
	uint16_t heads[64], descs[8];
	unsigned n = dev_pop(&f->dev, heads, 64);

	for (unsigned i = 0; i < n; i++) {
		const struct vring_desc *d0 = &f->vq.desc[heads[i]];
		uint64_t off = d0->addr - (uint64_t)(uintptr_t)f->pool.mem_lo;
		unsigned bi = (unsigned)(off / VPOOL_SEG_SIZE), nd;
		struct rec *r;

		if (heads[i] >= f->size || d0->addr < (uint64_t)(uintptr_t)f->pool.mem_lo ||
		    bi >= f->pool.nb) {
			CHECK(!"published head names no pool buffer");
			continue;
		}
		r = &m->recs[bi];
		CHECK_EQ(r->state, R_POSTED);
		if (r->state != R_POSTED)
			continue;
		nd = dev_chain(&f->dev, heads[i], descs);
		CHECK_EQ(nd, r->ndesc);
		if (nd != r->ndesc)
			continue;
		r->head = heads[i];
		memcpy(r->descs, descs, nd * sizeof(descs[0]));
		{
			struct vuser_buf *s = r->buf;

			for (unsigned k = 0; k < nd; k++, s = s->next) {
				const struct vring_desc *d = &f->vq.desc[descs[k]];

				/* Never a descriptor of a chain still in flight. */
				CHECK_EQ(m->owner[descs[k]], -1);
				m->owner[descs[k]] = (int)bi;
				if (f->vq.in_order) {
					CHECK_EQ(descs[k], m->next_desc);
					m->next_desc = (uint16_t)((m->next_desc + 1) % f->size);
				}
				if (r->rx) {
					CHECK_EQ(d->addr, s->iova + s->data_off - HDR);
					CHECK_EQ(d->len, r->cap);
					CHECK_EQ(d->flags, VRING_DESC_F_WRITE);
				} else {
					unsigned h = k ? 0 : HDR;

					CHECK_EQ(d->addr, s->iova + s->data_off - h);
					CHECK_EQ(d->len, s->data_len + h);
					CHECK_EQ(d->flags, k + 1 < nd ? VRING_DESC_F_NEXT : 0);
				}
			}
		}
		r->state = R_AT_DEVICE;
		m->devq[m->ndev++] = r;
	}
}

static void m_publish(struct model *m)
{
	vsplit_publish(&m->f.vq);
	m->published = m->posted;
	CHECK_EQ(__atomic_load_n(&m->f.vq.avail->idx, __ATOMIC_ACQUIRE), m->published);
	m_device_pop(m);
}

static void m_expect(struct model *m, struct rec *r, uint32_t len)
{
	r->state = R_USED;
	m->exp[m->exp_tail++ % m->exp_cap] = (struct expect){ r, len };
}

static uint32_t m_len(struct rec *r)
{
	return r->rx ? rnd(r->cap + 1) : 0;
}

static void m_device_complete(struct model *m)
{
	struct dev *d = &m->f.dev;
	unsigned c;

	if (!m->ndev)
		return;
	c = 1 + rnd(m->ndev);
	if (!m->f.vq.in_order) {
		for (unsigned i = 0; i < c; i++) {
			unsigned pick = rnd(m->ndev);
			struct rec *r = m->devq[pick];
			uint32_t len = m_len(r);

			m->devq[pick] = m->devq[--m->ndev];
			dev_complete(d, r->head, len);
			m_expect(m, r, len);
		}
		return;
	}
	if (rnd(2)) {
		/* One entry for the batch: the head of its last chain. */
		struct rec *last = m->devq[c - 1];
		uint32_t len = m_len(last);

		for (unsigned i = 0; i + 1 < c; i++)
			m_expect(m, m->devq[i], 0);
		m_expect(m, last, len);
		dev_complete_batch(d, last->head, len, c);
	} else {
		for (unsigned i = 0; i < c; i++) {
			uint32_t len = m_len(m->devq[i]);

			dev_write(d, m->devq[i]->head, len);
			d->used_idx++;
			m_expect(m, m->devq[i], len);
		}
		/* Several entries under one idx update, as a device batches writes. */
		__atomic_store_n(&d->used->idx, d->used_idx, __ATOMIC_RELEASE);
	}
	memmove(m->devq, m->devq + c, (m->ndev - c) * sizeof(m->devq[0]));
	m->ndev -= c;
}

static unsigned m_take(struct model *m, unsigned n)
{
	struct fx *f = &m->f;
	struct vuser_buf *out[64];
	uint32_t lens[64];
	unsigned got = vsplit_take_used(&f->vq, out, lens, n, true);

	CHECK(got <= n);
	for (unsigned i = 0; i < got; i++) {
		struct rec *r = rec_of(m, out[i]);
		struct expect e = { 0 };

		if (m->exp_head == m->exp_tail) {
			CHECK(!"take_used returned a chain the device never completed");
			continue;
		}
		e = m->exp[m->exp_head++ % m->exp_cap];
		CHECK(e.r == r);
		CHECK_EQ(lens[i], e.len);
		CHECK_EQ(r->state, R_USED);
		for (unsigned k = 0; k < r->ndesc; k++) {
			CHECK_EQ(m->owner[r->descs[k]], (int)(r->buf - f->pool.bufs));
			m->owner[r->descs[k]] = -1;
		}
		m->descs_out -= r->ndesc;
		m->chains_out--;
		r->state = R_FREE;
		vpool_put_chains(&out[i], 1);
	}
	m->completed += got;
	CHECK_EQ(f->vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f->vq), f->size - m->descs_out);
	CHECK_EQ(f->vq.inflight, m->chains_out);
	return got;
}

static void test_random(unsigned size, bool in_order, unsigned rounds)
{
	struct model m = { 0 };
	unsigned nbufs = 8 * size + 64;
	int before = t_failures;

	fx_init(&m.f, size, nbufs, in_order);
	m.recs = calloc(nbufs, sizeof(*m.recs));
	m.owner = malloc(size * sizeof(*m.owner));
	m.devq = calloc(size, sizeof(*m.devq));
	m.exp_cap = size;
	m.exp = calloc(m.exp_cap, sizeof(*m.exp));
	for (unsigned i = 0; i < size; i++)
		m.owner[i] = -1;

	for (unsigned round = 0; round < rounds && t_failures == before; round++) {
		switch (rnd(5)) {
		case 0:
		case 1:
			m_post(&m);
			break;
		case 2:
			m_publish(&m);
			break;
		case 3:
			m_device_complete(&m);
			break;
		default:
			m_take(&m, 1 + rnd(size));
			break;
		}
	}
	/* Drain: everything posted comes back exactly once. */
	m_publish(&m);
	while (m.ndev)
		m_device_complete(&m);
	while (m_take(&m, size))
		;
	CHECK_EQ(m.chains_out, 0);
	CHECK_EQ(m.exp_head, m.exp_tail);
	CHECK_EQ(vsplit_free_descs(&m.f.vq), size);
	CHECK(m.completed > rounds / 50);
	check_pool_whole(&m.f.pool);
	if (t_failures != before)
		fprintf(stderr, "  random: size %u in_order %d\n", size, in_order);
	free(m.recs);
	free(m.owner);
	free(m.devq);
	free(m.exp);
	fx_fini(&m.f);
}

/* ------------------------------------------------------------------ */
/* More than 2^16 chains through a small ring: idx wrap on both sides. */

static void test_wrap(unsigned size, bool in_order)
{
	struct fx f;
	struct vuser_buf *b[8], *out[8];
	uint16_t heads[8];
	uint32_t lens[8];
	unsigned long total = 0;
	int before = t_failures;

	fx_init(&f, size, size + 4, in_order);
	for (unsigned cyc = 0; total < 70000 + 3 * size && t_failures == before; cyc++) {
		unsigned k = 1 + cyc % size, got;

		if (!vpool_get(&f.pool, b, k)) {
			CHECK(!"pool ran dry");
			break;
		}
		for (unsigned i = 0; i < k; i++)
			vbuf_reset(b[i]);
		CHECK_EQ(vsplit_post_rx(&f.vq, b, k, HDR), k);
		vsplit_publish(&f.vq);
		CHECK_EQ(dev_pop(&f.dev, heads, 8), k);
		if (in_order && k > 1 && cyc % 2) {
			dev_complete_batch(&f.dev, heads[k - 1], 1, k);
		} else {
			for (unsigned i = 0; i < k; i++) {
				unsigned j = in_order ? i : k - 1 - i;

				dev_complete(&f.dev, heads[j], (uint32_t)(j + 1));
			}
		}
		got = vsplit_take_used(&f.vq, out, lens, 8, true);
		CHECK_EQ(got, k);
		for (unsigned i = 0; i < got; i++) {
			unsigned j = in_order ? i : k - 1 - i;

			CHECK(out[i] == b[j]);
			if (in_order && k > 1 && cyc % 2)
				CHECK_EQ(lens[i], i + 1 == k ? 1 : 0);
			else
				CHECK_EQ(lens[i], j + 1);
		}
		vpool_put(&f.pool, out, got);
		total += k;
		CHECK_EQ(f.vq.avail->idx, (uint16_t)total);
		CHECK_EQ(f.vq.last_used, f.dev.used_idx);
	}
	CHECK(total > 65536);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), size);
	check_pool_whole(&f.pool);
	if (t_failures != before)
		fprintf(stderr, "  wrap: size %u in_order %d after %lu chains\n", size, in_order, total);
	fx_fini(&f);
}

/* The smallest ring: one descriptor, so a chain never fits. */
static void test_size1(bool in_order)
{
	static const uint32_t l2[2] = { 10, 10 };
	struct fx f;
	struct vuser_buf *b[2], *tx, *out[2];
	uint16_t head;
	uint32_t lens[2];

	fx_init(&f, 1, 8, in_order);
	b[0] = get1(&f);
	b[1] = get1(&f);
	CHECK_EQ(vsplit_post_rx(&f.vq, b, 2, HDR), 1);
	CHECK_EQ(vsplit_free_descs(&f.vq), 0);
	vsplit_publish(&f.vq);
	CHECK_EQ(dev_pop(&f.dev, &head, 1), 1);
	CHECK_EQ(head, 0);
	dev_complete(&f.dev, 1, 0);
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 2, true), 0);
	CHECK_EQ(f.vq.errors, 1);
	dev_complete(&f.dev, 0, 5);
	CHECK_EQ(vsplit_take_used(&f.vq, out, lens, 2, true), 1);
	CHECK(out[0] == b[0]);
	CHECK_EQ(lens[0], 5);
	tx = make_frame(&f, 2, l2);
	CHECK_EQ(vsplit_post_tx(&f.vq, &tx, 1, HDR), 0);
	CHECK_EQ(vsplit_free_descs(&f.vq), 1);
	vpool_put_chains(&tx, 1);
	vpool_put(&f.pool, b, 2);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

int main(void)
{
	static const unsigned sizes[] = { 1, 2, 8, 256, 32768 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		test_layout(sizes[i]);
	test_post_rx();
	test_post_tx();
	test_publish_kick();
	test_out_of_order();
	test_in_order();
	test_in_order_batch_over_n();
	test_hostile(false);
	test_hostile(true);
	test_size1(false);
	test_size1(true);
	test_random(8, false, 50000);
	test_random(8, true, 50000);
	test_random(16, false, 50000);
	test_random(16, true, 50000);
	test_random(1, false, 10000);
	test_random(1, true, 10000);
	test_wrap(8, false);
	test_wrap(8, true);
	test_wrap(1, false);
	test_wrap(1, true);
	test_release(false);
	test_release(true);
	return t_result();
}
