/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The packed virtqueue driver half (src/ring/packed.c) against a device played
 * by this program over the shared descriptor ring (virtio 1.1, 2.7). The
 * device keeps its own positions and wrap counters and learns what was posted
 * only from the ring, as a real backend would, so a wrong descriptor or a
 * wrong wrap bit shows up as what the device reads, not as a private field.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "base/arena.h"
#include "base/compat.h"
#include "base/pool.h"
#include "ring/packed.h"
#include "testlib.h"

#define HDR 12 /* sizeof(struct virtio_net_hdr_mrg_rxbuf) */
#define F_AVAIL ((uint16_t)(1u << VRING_PACKED_DESC_F_AVAIL))
#define F_USED ((uint16_t)(1u << VRING_PACKED_DESC_F_USED))
#define F_WRAP (F_AVAIL | F_USED)
#define MAXD 8 /* longest chain the test builds or the device follows */

_Static_assert(sizeof(struct vring_packed_desc) == 16, "2.7.13: 16-byte descriptors");
_Static_assert(sizeof(struct vring_packed_desc_event) == 4, "2.7.14: 4-byte event areas");

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
/* The device: its own cursors and wrap counters, nothing else. */

struct dev {
	struct vring_packed_desc *desc;
	unsigned size;
	uint16_t avail_pos;   /* next descriptor to read */
	uint16_t used_pos;    /* next position to write a used descriptor */
	bool avail_wrap;
	bool used_wrap;
	unsigned avail_laps;
	unsigned used_laps;
	unsigned long torn;   /* chains whose head was visible before the rest */
};

struct dchain {
	unsigned n;
	uint16_t id;          /* from the last descriptor, where 2.7.6 puts it */
	uint16_t pos[MAXD];
	struct vring_packed_desc d[MAXD];
};

static void dev_init(struct dev *d, void *ring, unsigned size)
{
	/* 2.7.1: both wrap counters start at 1 on the device side too. */
	*d = (struct dev){ .desc = ring, .size = size, .avail_wrap = true, .used_wrap = true };
}

/* 2.7.1: available means AVAIL matches the wrap counter and USED does not. */
static bool desc_avail(uint16_t flags, bool wrap)
{
	return !!(flags & F_AVAIL) == wrap && !!(flags & F_USED) != wrap;
}

static uint16_t used_flags(bool wrap)
{
	return wrap ? F_WRAP : 0;
}

static uint16_t avail_bits(bool wrap)
{
	return wrap ? F_AVAIL : F_USED;
}

/*
 * The next available chain, read as a device reads it: the head's flags with
 * acquire, then the rest. Returns its length, or 0 when nothing is there. A
 * head whose later descriptors are not (yet) available is a torn chain: the
 * driver released the head too early. It is counted, not consumed, so this
 * also runs on a device thread where CHECK would race.
 */
static unsigned dev_pop(struct dev *d, struct dchain *c)
{
	unsigned pos = d->avail_pos;
	bool wrap = d->avail_wrap;
	uint16_t fl = __atomic_load_n(&d->desc[pos].flags, __ATOMIC_ACQUIRE);

	if (!desc_avail(fl, wrap))
		return 0;
	c->n = 0;
	for (;;) {
		if (c->n == MAXD || c->n == d->size) {
			d->torn++;
			return 0;
		}
		c->pos[c->n] = (uint16_t)pos;
		c->d[c->n] = d->desc[pos];
		c->d[c->n].flags = fl;
		c->n++;
		if (++pos == d->size) {
			pos = 0;
			wrap = !wrap;
		}
		if (!(fl & VRING_DESC_F_NEXT))
			break;
		fl = READ_ONCE(d->desc[pos].flags);
		if (!desc_avail(fl, wrap)) {
			d->torn++;
			return 0;
		}
	}
	c->id = c->d[c->n - 1].id;
	if (pos < d->avail_pos || (pos == d->avail_pos && wrap != d->avail_wrap))
		d->avail_laps++;
	d->avail_pos = (uint16_t)pos;
	d->avail_wrap = wrap;
	return c->n;
}

/* id and len before the flags, and the flags with release (2.7.21, device side). */
static void dev_put(struct vring_packed_desc *x, uint16_t id, uint32_t len, uint16_t flags)
{
	x->id = id;
	x->len = len;
	__atomic_store_n(&x->flags, flags, __ATOMIC_RELEASE);
}

/* One used descriptor at the next used position, then skip `skip` positions. */
static void dev_use(struct dev *d, uint16_t id, uint32_t len, unsigned skip)
{
	unsigned pos = d->used_pos + skip;

	dev_put(&d->desc[d->used_pos], id, len, used_flags(d->used_wrap));
	if (pos >= d->size) {
		pos -= d->size;
		d->used_wrap = !d->used_wrap;
		d->used_laps++;
	}
	d->used_pos = (uint16_t)pos;
}

/* ------------------------------------------------------------------ */
/* Fixture: one arena holding the ring and the pool, as a port lays them out. */

struct fx {
	struct varena a;
	struct vuser_pool pool;
	struct vpacked vq;
	struct dev dev;
	uint8_t *mem;
	unsigned size;
};

static void fx_init(struct fx *f, unsigned size, unsigned nbufs, bool in_order)
{
	size_t need = VPACKED_MEM_ALIGN + vpacked_mem_size(size) + 64 + vpool_mem_size(nbufs);

	memset(f, 0, sizeof(*f));
	if (varena_create(&f->a, need, "test-packed-ring")) {
		fprintf(stderr, "varena_create failed\n");
		exit(1);
	}
	f->mem = varena_carve(&f->a, vpacked_mem_size(size), VPACKED_MEM_ALIGN);
	if (!f->mem || vpool_init(&f->pool, &f->a, nbufs) ||
	    vpacked_init(&f->vq, f->mem, size, in_order)) {
		fprintf(stderr, "fixture setup failed for size %u\n", size);
		exit(1);
	}
	f->size = size;
	/* The device finds the ring where the layout says, not through vq. */
	dev_init(&f->dev, f->mem, size);
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
	CHECK_EQ(f->dev.torn, 0);
	vpacked_destroy(&f->vq);
	vpool_destroy(&f->pool);
	varena_destroy(&f->a);
}

static unsigned chain_segs(const struct vuser_buf *b)
{
	unsigned n = 0;

	for (; b; b = b->next)
		n++;
	return n;
}

/* Segments the ring still holds: what a broken ring strands. */
static unsigned ring_bufs(const struct vpacked *vq)
{
	unsigned n = 0;

	for (unsigned i = 0; i < vq->size; i++)
		n += chain_segs(vq->slots[i].buf);
	return n;
}

/* Every buffer is in the pool, in the ring, or held by the test. */
static void check_accounted(const struct fx *f, unsigned held)
{
	CHECK_EQ(vpool_count_free(&f->pool) + ring_bufs(&f->vq) + held, f->pool.nb);
}

/*
 * No call gives a broken ring's buffers back, so the test does, to be able
 * to prove none was lost or freed twice.
 */
static void ring_reclaim(struct vpacked *vq)
{
	for (unsigned i = 0; i < vq->size; i++) {
		if (vq->slots[i].buf)
			vpool_put_chains(&vq->slots[i].buf, 1);
		vq->slots[i].buf = NULL;
	}
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
	struct vuser_buf *segs[MAXD], *prev = NULL;
	uint32_t total = 0;

	if (nseg > MAXD || !vpool_get(&f->pool, segs, nseg))
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

/* What the device must read for a TX frame, descriptor by descriptor. */
static void check_tx_chain(const struct dchain *c, const struct vuser_buf *m)
{
	const struct vuser_buf *s = m;

	CHECK_EQ(c->n, m->nb_segs);
	for (unsigned k = 0; k < c->n && s; k++, s = s->next) {
		const struct vring_packed_desc *d = &c->d[k];
		unsigned h = k ? 0 : HDR;

		CHECK_EQ(d->addr, s->iova + s->data_off - h);
		CHECK_EQ(d->len, s->data_len + h);
		CHECK_EQ(d->flags & ~F_WRAP, k + 1 < c->n ? VRING_DESC_F_NEXT : 0);
	}
}

/* After everything used was taken, both sides agree on where used goes next. */
static void check_used_sync(const struct fx *f)
{
	CHECK(!f->vq.pending);
	CHECK_EQ(f->vq.used_pos, f->dev.used_pos);
	CHECK_EQ(f->vq.used_wrap, f->dev.used_wrap);
}

static void check_avail_sync(const struct fx *f)
{
	CHECK_EQ(f->vq.avail_pos, f->dev.avail_pos);
	CHECK_EQ(f->vq.avail_wrap, f->dev.avail_wrap);
}

/* ------------------------------------------------------------------ */

static void test_layout(unsigned size)
{
	struct fx f;
	uintptr_t desc, drv, devv;
	unsigned nonzero = 0;
	int before = t_failures;

	fx_init(&f, size, 4, false);
	/* Garbage first: vpacked_init must hand the device a zeroed ring. */
	memset(f.mem, 0xa5, vpacked_mem_size(size));
	vpacked_destroy(&f.vq);
	CHECK_EQ(vpacked_init(&f.vq, f.mem, size, false), 0);

	desc = (uintptr_t)f.vq.desc;
	drv = (uintptr_t)f.vq.driver;
	devv = (uintptr_t)f.vq.device;
	CHECK_EQ(desc, (uintptr_t)f.mem);
	CHECK_EQ(desc % 16, 0);
	CHECK_EQ(drv, desc + 16 * (uintptr_t)size);
	CHECK_EQ(drv % 4, 0);
	CHECK_EQ(devv % 64, 0);
	/* The device writes its area: nothing of ours may share its line. */
	CHECK((drv + 4 - 1) / 64 < devv / 64);
	CHECK(vpacked_mem_size(size) >= devv - desc + 4);
	/* Not a line beyond what the layout needs. */
	CHECK(vpacked_mem_size(size) <= 16 * (size_t)size + 4 + 63 + 4);
	CHECK_EQ(f.vq.driver->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	CHECK_EQ(f.vq.driver->off_wrap, 0);
	CHECK_EQ(f.vq.device->flags, 0);
	CHECK_EQ(f.vq.device->off_wrap, 0);
	for (size_t i = 0; i < vpacked_mem_size(size); i++)
		nonzero += f.mem[i] != 0;
	/* Only the DISABLE value of driver->flags. */
	CHECK_EQ(nonzero, 1);
	CHECK_EQ(vpacked_free_descs(&f.vq), size);
	CHECK_EQ(f.vq.size, size);
	CHECK(f.vq.avail_wrap && f.vq.used_wrap);
	CHECK_EQ(f.vq.inflight, 0);
	CHECK_EQ(f.vq.errors, 0);
	if (t_failures != before)
		fprintf(stderr, "  layout: size %u\n", size);
	fx_fini(&f);
}

static void test_post_rx(void)
{
	struct fx f;
	struct vuser_buf *b[12], *out[12];
	struct dchain c;
	uint16_t ids[8];
	uint32_t lens[12];
	unsigned seen = 0, n;

	fx_init(&f, 8, 32, false);
	for (unsigned i = 0; i < 12; i++) {
		b[i] = get1(&f);
		/* Different headroom per buffer: the descriptor must follow data_off. */
		b[i]->data_off = (uint16_t)(HDR + 4 * i);
	}
	n = vpacked_post_rx(&f.vq, b, 5, HDR);
	CHECK_EQ(n, 5);
	CHECK_EQ(vpacked_free_descs(&f.vq), 3);
	CHECK_EQ(f.vq.inflight, 5);
	/* Visible without publish: a packed ring has no index to move. */
	for (unsigned i = 0; i < 5; i++) {
		CHECK_EQ(dev_pop(&f.dev, &c), 1);
		CHECK_EQ(c.pos[0], i);
		CHECK_EQ(c.d[0].addr, b[i]->iova + b[i]->data_off - HDR);
		CHECK_EQ(c.d[0].len, rx_cap(b[i]));
		/* Ends exactly at the end of the segment. */
		CHECK_EQ(c.d[0].addr + c.d[0].len, b[i]->iova + VPOOL_SEG_SIZE);
		CHECK_EQ(c.d[0].flags, VRING_DESC_F_WRITE | F_AVAIL);
		CHECK(c.id < 8);
		CHECK(!(seen & (1u << c.id)));
		seen |= 1u << c.id;
		ids[i] = c.id;
	}
	CHECK_EQ(dev_pop(&f.dev, &c), 0);

	/* More than fits: only what fits, the rest stays the caller's. */
	n = vpacked_post_rx(&f.vq, b + 5, 7, HDR);
	CHECK_EQ(n, 3);
	CHECK_EQ(vpacked_free_descs(&f.vq), 0);
	CHECK_EQ(vpacked_post_rx(&f.vq, b + 8, 4, HDR), 0);
	for (unsigned i = 5; i < 8; i++) {
		CHECK_EQ(dev_pop(&f.dev, &c), 1);
		CHECK_EQ(c.pos[0], i);
		CHECK_EQ(c.d[0].addr, b[i]->iova + b[i]->data_off - HDR);
		CHECK_EQ(c.d[0].flags, VRING_DESC_F_WRITE | F_AVAIL);
		CHECK(c.id < 8 && !(seen & (1u << c.id)));
		seen |= 1u << c.id;
		ids[i] = c.id;
	}
	CHECK_EQ(seen, 0xff);
	/* Position 0 again, next lap: what is there is last lap's, not available. */
	CHECK_EQ(dev_pop(&f.dev, &c), 0);
	check_avail_sync(&f);

	for (unsigned i = 0; i < 8; i++)
		dev_use(&f.dev, ids[i], 60 + i, 1);
	n = vpacked_take_used(&f.vq, out, lens, 12, true);
	CHECK_EQ(n, 8);
	for (unsigned i = 0; i < n; i++) {
		CHECK(out[i] == b[i]);
		CHECK_EQ(lens[i], 60 + i);
	}
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 8);
	check_used_sync(&f);
	CHECK(!f.vq.used_wrap);

	/* Second lap: the wrap counter is 0, so USED is set and AVAIL clear. */
	CHECK_EQ(vpacked_post_rx(&f.vq, b, 8, HDR), 8);
	seen = 0;
	for (unsigned i = 0; i < 8; i++) {
		CHECK_EQ(dev_pop(&f.dev, &c), 1);
		CHECK_EQ(c.d[0].flags, VRING_DESC_F_WRITE | F_USED);
		CHECK(c.id < 8 && !(seen & (1u << c.id)));
		seen |= 1u << c.id;
		ids[i] = c.id;
	}
	for (unsigned i = 0; i < 8; i++)
		dev_use(&f.dev, ids[i], 1, 1);
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 12, true), 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK(out[i] == b[i]);
	check_used_sync(&f);
	CHECK(f.vq.used_wrap);

	vpool_put(&f.pool, b, 12);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* A ring of 7: no power of two, and chains cross its end. */
static void test_post_tx(void)
{
	static const uint32_t one[] = { 100 };
	static const uint32_t two[] = { 30, 40 };
	static const uint32_t three[] = { 1000, 700, 300 };
	static const uint32_t five[] = { 10, 20, 30, 40, 50 };
	struct fx f;
	struct vuser_buf *fr[5], *out[8];
	struct dchain c[4];
	uint32_t lens[8];
	unsigned n;

	fx_init(&f, 7, 32, false);
	fr[0] = make_frame(&f, 1, one);
	fr[1] = make_frame(&f, 3, three);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr, 2, HDR), 2);
	CHECK_EQ(vpacked_free_descs(&f.vq), 3);
	CHECK_EQ(f.vq.inflight, 2);

	/* Single segment: header and data in one device-readable descriptor. */
	CHECK_EQ(dev_pop(&f.dev, &c[0]), 1);
	CHECK_EQ(c[0].pos[0], 0);
	CHECK_EQ(c[0].d[0].addr, fr[0]->iova + fr[0]->data_off - HDR);
	CHECK_EQ(c[0].d[0].len, 100 + HDR);
	CHECK_EQ(c[0].d[0].flags, F_AVAIL);

	/* Chain: consecutive positions, NEXT on all but the last, the id on the last. */
	CHECK_EQ(dev_pop(&f.dev, &c[1]), 3);
	check_tx_chain(&c[1], fr[1]);
	for (unsigned k = 0; k < 3; k++) {
		CHECK_EQ(c[1].pos[k], 1 + k);
		CHECK_EQ(c[1].d[k].flags & F_WRAP, F_AVAIL);
	}
	CHECK(c[1].id < 7);
	CHECK(c[1].id != c[0].id);

	/* 3 free: a 5-segment frame does not fit and stops the burst there. */
	fr[2] = make_frame(&f, 5, five);
	fr[3] = make_frame(&f, 1, one);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr + 2, 2, HDR), 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 3);
	CHECK_EQ(dev_pop(&f.dev, &c[2]), 0);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr + 3, 1, HDR), 1);
	CHECK_EQ(vpacked_free_descs(&f.vq), 2);
	CHECK_EQ(dev_pop(&f.dev, &c[2]), 1);
	CHECK_EQ(c[2].pos[0], 4);
	check_tx_chain(&c[2], fr[3]);

	/* Completed out of order; the device skips each chain's own length. */
	dev_use(&f.dev, c[1].id, 0, 3);
	dev_use(&f.dev, c[2].id, 0, 1);
	dev_use(&f.dev, c[0].id, 0, 1);
	n = vpacked_take_used(&f.vq, out, lens, 8, false);
	CHECK_EQ(n, 3);
	CHECK(out[0] == fr[1] && out[1] == fr[3] && out[2] == fr[0]);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 7);
	check_used_sync(&f);

	/*
	 * From position 5 the 5-segment chain takes 5, 6, then 0, 1, 2 of the
	 * next lap: those three carry the flipped wrap bits, the head does not.
	 */
	CHECK_EQ(vpacked_post_tx(&f.vq, fr + 2, 1, HDR), 1);
	{
		static const uint16_t want_pos[5] = { 5, 6, 0, 1, 2 };
		static const uint16_t want_wrap[5] = { F_AVAIL, F_AVAIL, F_USED, F_USED, F_USED };

		for (unsigned k = 0; k < 5; k++) {
			const struct vring_packed_desc *d = &f.vq.desc[want_pos[k]];

			CHECK_EQ(d->flags & F_WRAP, want_wrap[k]);
			CHECK_EQ(d->flags & VRING_DESC_F_NEXT, k < 4 ? VRING_DESC_F_NEXT : 0);
		}
		CHECK_EQ(f.vq.desc[2].id, f.vq.desc[5].id);
	}
	CHECK_EQ(dev_pop(&f.dev, &c[3]), 5);
	check_tx_chain(&c[3], fr[2]);
	CHECK_EQ(c[3].pos[0], 5);
	CHECK_EQ(c[3].pos[4], 2);
	CHECK(!f.vq.avail_wrap);

	/* 2 free: a 2-segment frame fits exactly, then nothing does. */
	fr[4] = make_frame(&f, 2, two);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr + 4, 1, HDR), 1);
	CHECK_EQ(vpacked_free_descs(&f.vq), 0);
	CHECK_EQ(dev_pop(&f.dev, &c[0]), 2);
	check_tx_chain(&c[0], fr[4]);
	CHECK_EQ(c[0].d[0].flags, F_USED | VRING_DESC_F_NEXT);
	CHECK_EQ(c[0].d[1].flags, F_USED);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr, 1, HDR), 0);
	check_avail_sync(&f);

	dev_use(&f.dev, c[3].id, 0, 5);
	dev_use(&f.dev, c[0].id, 0, 2);
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 8, false), 2);
	CHECK(out[0] == fr[2] && out[1] == fr[4]);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 7);
	check_used_sync(&f);

	vpool_put_chains(fr, 5);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

static void test_publish(void)
{
	static const uint16_t kick[] = { VRING_PACKED_EVENT_FLAG_ENABLE,
					 VRING_PACKED_EVENT_FLAG_DESC, 3, 0xfffe, 0xffff };
	struct fx f;
	struct vuser_buf *b;
	uint8_t snap[sizeof(struct vring_packed_desc) * 8];

	fx_init(&f, 8, 8, false);
	b = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, &b, 1, HDR), 1);
	memcpy(snap, f.vq.desc, sizeof(snap));
	CHECK(vpacked_wants_kick(&f.vq));
	f.vq.device->flags = VRING_PACKED_EVENT_FLAG_DISABLE;
	CHECK(!vpacked_wants_kick(&f.vq));
	/*
	 * Anything but DISABLE asks for (or may ask for) a kick; kicking too
	 * often is safe, too rarely is a stall.
	 */
	for (unsigned i = 0; i < sizeof(kick) / sizeof(kick[0]); i++) {
		f.vq.device->flags = kick[i];
		CHECK(vpacked_wants_kick(&f.vq));
	}
	/* Asking writes nothing the device reads. */
	CHECK(!memcmp(snap, f.vq.desc, sizeof(snap)));
	CHECK_EQ(f.vq.driver->flags, VRING_PACKED_EVENT_FLAG_DISABLE);
	CHECK_EQ(f.vq.avail_pos, 1);
	ring_reclaim(&f.vq);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* Out of order: the device completes in any order and the caller sees that order. */
static void test_out_of_order(void)
{
	static const uint32_t l3[3] = { 64, 64, 64 };
	struct fx f;
	struct vuser_buf *b[8], *tx, *out[8];
	struct dchain c[8];
	uint32_t lens[8];

	fx_init(&f, 8, 32, false);
	for (unsigned i = 0; i < 3; i++)
		b[i] = get1(&f);
	tx = make_frame(&f, 3, l3);
	CHECK_EQ(vpacked_post_rx(&f.vq, b, 2, HDR), 2);
	CHECK_EQ(vpacked_post_tx(&f.vq, &tx, 1, HDR), 1);
	CHECK_EQ(vpacked_post_rx(&f.vq, b + 2, 1, HDR), 1);
	CHECK_EQ(vpacked_free_descs(&f.vq), 2);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(dev_pop(&f.dev, &c[i]), i == 2 ? 3 : 1);

	/* Reverse: each used descriptor at the next used position, skipping its chain. */
	dev_use(&f.dev, c[3].id, 103, 1);
	dev_use(&f.dev, c[2].id, 0, 3);
	dev_use(&f.dev, c[1].id, 101, 1);
	dev_use(&f.dev, c[0].id, 100, 1);
	/* A partial take leaves the rest in place and frees only what it took. */
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 1, true), 1);
	CHECK(out[0] == b[2]);
	CHECK_EQ(lens[0], 103);
	CHECK_EQ(vpacked_free_descs(&f.vq), 3);
	CHECK_EQ(f.vq.inflight, 3);
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 8, true), 3);
	CHECK(out[0] == tx && out[1] == b[1] && out[2] == b[0]);
	CHECK_EQ(lens[0], 0);
	CHECK_EQ(lens[1], 101);
	CHECK_EQ(lens[2], 100);
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 8, true), 0);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 8);
	CHECK_EQ(f.vq.inflight, 0);
	check_used_sync(&f);

	/* Ids come back for reuse; the next lap is met with the flipped counter. */
	for (unsigned i = 3; i < 8; i++)
		b[i] = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, b + 3, 5, HDR), 5);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(dev_pop(&f.dev, &c[i]), 1);
	{
		static const unsigned order[5] = { 2, 0, 4, 3, 1 };

		for (unsigned i = 0; i < 5; i++)
			dev_use(&f.dev, c[order[i]].id, order[i], 1);
		CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 8, true), 5);
		for (unsigned i = 0; i < 5; i++) {
			CHECK(out[i] == b[3 + order[i]]);
			CHECK_EQ(lens[i], order[i]);
		}
	}
	CHECK_EQ(f.vq.errors, 0);
	check_used_sync(&f);
	CHECK(!f.vq.used_wrap);
	vpool_put(&f.pool, b, 8);
	vpool_put_chains(&tx, 1);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* In order, one used descriptor per chain, and (2.7.9) one per batch. */
static void test_in_order(void)
{
	static const uint32_t segs[4] = { 1, 2, 1, 3 };
	static const uint32_t lens_tx[3] = { 64, 64, 64 };
	struct fx f;
	struct vuser_buf *b[5], *out[8], *fr[4];
	struct dchain c[8];
	uint32_t lens[8];
	unsigned n;

	fx_init(&f, 8, 32, true);

	for (unsigned i = 0; i < 5; i++)
		b[i] = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, b, 5, HDR), 5);
	for (unsigned i = 0; i < 5; i++)
		CHECK_EQ(dev_pop(&f.dev, &c[i]), 1);
	dev_use(&f.dev, c[0].id, 10, 1);
	dev_use(&f.dev, c[1].id, 11, 1);
	n = vpacked_take_used(&f.vq, out, lens, 8, true);
	CHECK_EQ(n, 2);
	CHECK(out[0] == b[0] && out[1] == b[1]);
	CHECK_EQ(lens[0], 10);
	CHECK_EQ(lens[1], 11);

	/* A batch of three named by its last id: all three, len 0 for the skipped. */
	dev_use(&f.dev, c[4].id, 50, 3);
	n = vpacked_take_used(&f.vq, out, lens, 8, true);
	CHECK_EQ(n, 3);
	CHECK(out[0] == b[2] && out[1] == b[3] && out[2] == b[4]);
	CHECK_EQ(lens[0], 0);
	CHECK_EQ(lens[1], 0);
	CHECK_EQ(lens[2], 50);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 8);
	check_used_sync(&f);
	vpool_put(&f.pool, b, 5);

	/* Chains of several descriptors, across the end of the ring (5,6,7,0,...). */
	for (unsigned i = 0; i < 4; i++)
		fr[i] = make_frame(&f, segs[i], lens_tx);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr, 4, HDR), 4);
	CHECK_EQ(vpacked_free_descs(&f.vq), 1);
	{
		unsigned expect = 5;

		for (unsigned i = 0; i < 4; i++) {
			CHECK_EQ(dev_pop(&f.dev, &c[i]), segs[i]);
			check_tx_chain(&c[i], fr[i]);
			for (unsigned k = 0; k < c[i].n; k++) {
				CHECK_EQ(c[i].pos[k], expect);
				expect = (expect + 1) % 8;
			}
		}
	}
	/* One used descriptor for all seven positions. */
	dev_use(&f.dev, c[3].id, 0, 7);
	n = vpacked_take_used(&f.vq, out, lens, 8, false);
	CHECK_EQ(n, 4);
	for (unsigned i = 0; i < n; i++) {
		CHECK(out[i] == fr[i]);
		CHECK_EQ(lens[i], 0);
	}
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 8);
	check_used_sync(&f);
	CHECK(!f.vq.used_wrap);

	/* Mixed: one chain alone, then a batch of two that starts mid-chain-list. */
	CHECK_EQ(vpacked_post_tx(&f.vq, fr, 3, HDR), 3);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(dev_pop(&f.dev, &c[i]), segs[i]);
	dev_use(&f.dev, c[0].id, 0, segs[0]);
	dev_use(&f.dev, c[2].id, 0, segs[1] + segs[2]);
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 8, false), 3);
	CHECK(out[0] == fr[0] && out[1] == fr[1] && out[2] == fr[2]);
	CHECK_EQ(f.vq.errors, 0);
	check_used_sync(&f);

	vpool_put_chains(fr, 4);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/*
 * A batch used descriptor covering more chains than the caller asks for: the
 * rest waits in vq->pending and arrives on later calls, none lost, even when
 * the device reuses the batch's used descriptor meanwhile and new used
 * descriptors land behind the batch.
 */
static void test_batch_over_n(void)
{
	static const uint32_t l2[2] = { 200, 300 };
	static const uint32_t l3[3] = { 1, 2, 3 };
	struct fx f;
	struct vuser_buf *fr[6], *x, *out[16];
	struct dchain c[8];
	uint32_t lens[16];
	unsigned total = 0, n, descs = 0;
	int before = t_failures;

	fx_init(&f, 16, 32, true);
	/* rx, tx2, rx, tx3, rx, rx: nine positions, six chains. */
	for (unsigned i = 0; i < 6; i++) {
		if (i == 1)
			fr[i] = make_frame(&f, 2, l2);
		else if (i == 3)
			fr[i] = make_frame(&f, 3, l3);
		else
			fr[i] = get1(&f);
		n = i == 1 || i == 3 ? vpacked_post_tx(&f.vq, &fr[i], 1, HDR)
				     : vpacked_post_rx(&f.vq, &fr[i], 1, HDR);
		CHECK_EQ(n, 1);
	}
	for (unsigned i = 0; i < 6; i++)
		descs += dev_pop(&f.dev, &c[i]);
	CHECK_EQ(descs, 9);
	dev_use(&f.dev, c[5].id, 9, 9);

	n = vpacked_take_used(&f.vq, out, lens, 2, true);
	CHECK_EQ(n, 2);
	total += n;
	CHECK(f.vq.pending);
	/* The driver must work from its copy, not re-read a descriptor it passed. */
	dev_put(&f.vq.desc[0], 0x7fff, 0xffffffffu, 0);
	/* A new chain behind the batch, completed before the batch is fully taken. */
	x = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, &x, 1, HDR), 1);
	CHECK_EQ(dev_pop(&f.dev, &c[6]), 1);
	CHECK_EQ(c[6].pos[0], 9);
	dev_use(&f.dev, c[6].id, 77, 1);

	for (unsigned call = 0; call < 6 && total < 6; call++) {
		n = vpacked_take_used(&f.vq, out + total, lens + total, call % 2 + 1, true);
		CHECK(n <= call % 2 + 1);
		total += n;
	}
	CHECK_EQ(total, 6);
	for (unsigned i = 0; i < total && i < 6; i++) {
		CHECK(out[i] == fr[i]);
		CHECK_EQ(lens[i], i == 5 ? 9 : 0);
	}
	CHECK(!f.vq.pending);
	CHECK_EQ(vpacked_take_used(&f.vq, out + 6, lens + 6, 4, true), 1);
	CHECK(out[6] == x);
	CHECK_EQ(lens[6], 77);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), 16);
	check_used_sync(&f);

	vpool_put_chains(out, 7);

	/* One at a time through a whole-ring batch. */
	{
		struct vuser_buf *r[16];
		unsigned got = 0;

		for (unsigned i = 0; i < 16; i++)
			r[i] = get1(&f);
		CHECK_EQ(vpacked_post_rx(&f.vq, r, 16, HDR), 16);
		for (unsigned i = 0; i < 16; i++)
			CHECK_EQ(dev_pop(&f.dev, &c[0]), 1);
		dev_use(&f.dev, c[0].id, 5, 16);
		for (unsigned call = 0; call < 20 && got < 16; call++)
			got += vpacked_take_used(&f.vq, out + got, lens + got, 1, true);
		CHECK_EQ(got, 16);
		for (unsigned i = 0; i < got; i++) {
			CHECK(out[i] == r[i]);
			CHECK_EQ(lens[i], i == 15 ? 5 : 0);
		}
		CHECK_EQ(f.vq.errors, 0);
		check_used_sync(&f);
		vpool_put(&f.pool, r, 16);
	}
	check_pool_whole(&f.pool);
	if (t_failures != before)
		fprintf(stderr, "  batch over n\n");
	fx_fini(&f);
}

/*
 * The device goes away with chains posted, some used but not taken (an
 * in-order batch half taken), then again from a ring it broke with an id it
 * never got. vpacked_release() gives every chain back to the pool exactly
 * once, and a ring laid out again in the same memory starts clean: position
 * 0, both wrap counters 1, nothing available, whatever was left there.
 */
static void test_release(bool in_order)
{
	static const uint32_t l3[3] = { 100, 200, 300 };
	struct fx f;
	struct vuser_buf *b[16], *fr[2], *out[16];
	struct dchain c[16];
	uint32_t lens[16];
	unsigned n, held = 0, descs = 0;
	int before = t_failures;

	fx_init(&f, 16, 64, in_order);
	for (unsigned i = 0; i < 8; i++)
		b[i] = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, b, 8, HDR), 8);
	for (unsigned i = 0; i < 2; i++)
		fr[i] = make_frame(&f, 3, l3);
	CHECK_EQ(vpacked_post_tx(&f.vq, fr, 2, HDR), 2);
	for (unsigned i = 0; i < 10; i++)
		descs += dev_pop(&f.dev, &c[i]);
	CHECK_EQ(descs, 14);
	if (in_order) {
		/* One used descriptor for the first six chains (six positions); two taken. */
		dev_use(&f.dev, c[5].id, 0, 6);
		n = vpacked_take_used(&f.vq, out, lens, 2, true);
		CHECK_EQ(n, 2);
		CHECK(f.vq.pending);
	} else {
		dev_use(&f.dev, c[1].id, 10, 1);
		dev_use(&f.dev, c[9].id, 0, 3);
		n = vpacked_take_used(&f.vq, out, lens, 1, true);
		CHECK_EQ(n, 1);
	}
	for (unsigned i = 0; i < n; i++)
		held += out[i]->nb_segs;

	CHECK_EQ(vpacked_release(&f.vq), 10 - n);
	CHECK_EQ(vpool_count_free(&f.pool) + held, f.pool.nb);
	CHECK_EQ(ring_bufs(&f.vq), 0);
	CHECK(!f.vq.pending);
	/* Released means stopped: nothing more goes in or comes out. */
	CHECK_EQ(vpacked_free_descs(&f.vq), 0);
	CHECK_EQ(vpacked_take_used(&f.vq, out + n, lens, 4, true), 0);
	CHECK_EQ(vpacked_release(&f.vq), 0);
	vpool_put_chains(out, n);
	check_pool_whole(&f.pool);

	vpacked_destroy(&f.vq);
	memset(f.mem, 0xa5, vpacked_mem_size(f.size));
	CHECK_EQ(vpacked_init(&f.vq, f.mem, f.size, in_order), 0);
	dev_init(&f.dev, f.mem, f.size);
	CHECK_EQ(f.vq.avail_pos, 0);
	CHECK(f.vq.avail_wrap && f.vq.used_wrap);
	CHECK_EQ(vpacked_free_descs(&f.vq), 16);
	CHECK_EQ(dev_pop(&f.dev, &c[0]), 0);
	for (unsigned i = 0; i < 16; i++)
		b[i] = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, b, 16, HDR), 16);
	for (unsigned i = 0; i < 16; i++) {
		CHECK_EQ(dev_pop(&f.dev, &c[i]), 1);
		dev_use(&f.dev, c[i].id, 60, 1);
	}
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 16, true), 16);
	CHECK_EQ(f.vq.errors, 0);
	check_used_sync(&f);
	vpool_put(&f.pool, out, 16);

	/* A device that broke the ring strands its chains; release takes them back too. */
	for (unsigned i = 0; i < 4; i++)
		b[i] = get1(&f);
	CHECK_EQ(vpacked_post_rx(&f.vq, b, 4, HDR), 4);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(dev_pop(&f.dev, &c[i]), 1);
	dev_use(&f.dev, 0x7fff, 60, 1);
	CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 16, true), 0);
	CHECK(f.vq.broken);
	CHECK_EQ(vpacked_release(&f.vq), 4);
	check_pool_whole(&f.pool);
	if (t_failures != before)
		fprintf(stderr, "  release (in_order=%d)\n", in_order);
	fx_fini(&f);
}

/* The smallest ring: every post is a new lap, and no chain fits. */
static void test_size1(bool in_order)
{
	static const uint32_t l2[2] = { 10, 10 };
	struct fx f;
	struct vuser_buf *b[2], *tx, *out[2];
	struct dchain c;
	uint32_t lens[2];

	fx_init(&f, 1, 8, in_order);
	b[0] = get1(&f);
	b[1] = get1(&f);
	tx = make_frame(&f, 2, l2);
	CHECK_EQ(vpacked_post_tx(&f.vq, &tx, 1, HDR), 0);
	for (unsigned lap = 0; lap < 6; lap++) {
		bool wrap = !(lap & 1);

		CHECK_EQ(vpacked_post_rx(&f.vq, b, 2, HDR), 1);
		CHECK_EQ(vpacked_free_descs(&f.vq), 0);
		CHECK_EQ(vpacked_post_tx(&f.vq, &tx, 1, HDR), 0);
		CHECK_EQ(dev_pop(&f.dev, &c), 1);
		CHECK_EQ(c.d[0].flags, VRING_DESC_F_WRITE | avail_bits(wrap));
		CHECK_EQ(c.id, 0);
		/* Not yet used: nothing to take. */
		CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 2, true), 0);
		dev_use(&f.dev, c.id, lap, 1);
		CHECK_EQ(vpacked_take_used(&f.vq, out, lens, 2, true), 1);
		CHECK(out[0] == b[0]);
		CHECK_EQ(lens[0], lap);
		CHECK_EQ(vpacked_free_descs(&f.vq), 1);
		check_used_sync(&f);
		CHECK_EQ(f.vq.used_wrap, !wrap);
	}
	CHECK_EQ(f.vq.errors, 0);
	vpool_put_chains(&tx, 1);
	vpool_put(&f.pool, b, 2);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/*
 * Many laps of both counters with chains of mixed length, so chains straddle
 * the end of the ring and batches cross it too; every seventh cycle fills the
 * whole ring, the one case where used and available positions coincide.
 */
static void test_wrap(unsigned size, bool in_order)
{
	struct fx f;
	struct vuser_buf **fr = calloc(size, sizeof(*fr)), **out = calloc(size, sizeof(*out));
	struct dchain *c = calloc(size, sizeof(*c));
	uint32_t *lens = calloc(size, sizeof(*lens));
	unsigned long chains = 0, straddles = 0;
	struct dchain extra;
	unsigned cyc;
	int before = t_failures;

	fx_init(&f, size, size + 8, in_order);
	for (cyc = 0; t_failures == before && (cyc < 64 || f.dev.used_laps < 5 ||
					      f.dev.avail_laps < 5); cyc++) {
		/* Usually a handful of chains; every seventh cycle, the whole ring. */
		unsigned want = cyc % 7 == 6 ? size : 1 + cyc % (size < 40 ? size : 40);
		unsigned k = 0, got = 0, skip = 0;

		while (k < want) {
			unsigned nseg = size < 3 ? 1 : 1 + (cyc + k) % 3;
			uint32_t l[3] = { 60, 70, 80 };
			struct vuser_buf *m;
			unsigned ok;

			if (nseg > vpacked_free_descs(&f.vq))
				nseg = 1;
			if (!vpacked_free_descs(&f.vq))
				break;
			if (nseg == 1 && (cyc + k) % 2) {
				m = get1(&f);
				ok = m ? vpacked_post_rx(&f.vq, &m, 1, HDR) : 0;
			} else {
				/* hdr 0 below: the head's length is exactly 100 per descriptor. */
			m = make_frame(&f, nseg, l);
				ok = m ? vpacked_post_tx(&f.vq, &m, 1, HDR) : 0;
			}
			CHECK_EQ(ok, 1);
			if (ok != 1)
				break;
			fr[k++] = m;
		}
		for (unsigned i = 0; i < k; i++) {
			CHECK_EQ(dev_pop(&f.dev, &c[i]), fr[i]->nb_segs);
			straddles += c[i].pos[c[i].n - 1] < c[i].pos[0];
			skip += c[i].n;
		}
		CHECK_EQ(dev_pop(&f.dev, &extra), 0);
		check_avail_sync(&f);

		if (in_order && cyc % 3 == 0) {
			dev_use(&f.dev, c[k - 1].id, 1, skip);
		} else if (in_order && cyc % 3 == 1 && k > 1) {
			unsigned mid = k / 2, s1 = 0;

			for (unsigned i = 0; i < mid; i++)
				s1 += c[i].n;
			dev_use(&f.dev, c[mid - 1].id, 2, s1);
			dev_use(&f.dev, c[k - 1].id, 3, skip - s1);
		} else {
			for (unsigned i = 0; i < k; i++) {
				unsigned j = in_order ? i : k - 1 - i;

				dev_use(&f.dev, c[j].id, (uint32_t)(j + 1), c[j].n);
			}
		}
		/*
		 * Small takes: batches larger than n go through vq->pending. The
		 * largest ring takes port-sized bursts, as a port would.
		 */
		for (unsigned call = 0; got < k && call < 2 * k + 4; call++)
			got += vpacked_take_used(&f.vq, out + got, lens + got,
						 size > 2048 ? 64 : 1 + call % 5, false);
		CHECK_EQ(got, k);
		for (unsigned i = 0; i < got && i < k; i++) {
			unsigned j = in_order ? i : k - 1 - i;
			uint32_t want_len;

			if (in_order && cyc % 3 == 0)
				want_len = i + 1 == k ? 1 : 0;
			else if (in_order && cyc % 3 == 1 && k > 1)
				want_len = i + 1 == k / 2 ? 2 : i + 1 == k ? 3 : 0;
			else
				want_len = j + 1;
			CHECK(out[i] == fr[j]);
			CHECK_EQ(lens[i], want_len);
		}
		vpool_put_chains(out, got);
		chains += k;
		CHECK_EQ(vpacked_free_descs(&f.vq), size);
		CHECK_EQ(f.vq.inflight, 0);
		check_used_sync(&f);
	}
	CHECK(f.dev.used_laps > 3 && f.dev.avail_laps > 3);
	if (size > 2)
		CHECK(straddles > 0);
	CHECK_EQ(f.vq.errors, 0);
	check_pool_whole(&f.pool);
	if (t_failures != before)
		fprintf(stderr, "  wrap: size %u in_order %d, cycle %u, %lu chains\n", size, in_order,
			cyc, chains);
	free(fr);
	free(out);
	free(c);
	free(lens);
	fx_fini(&f);
}

/* ------------------------------------------------------------------ */
/*
 * Random post/complete/take against a shadow model. A record per frame,
 * keyed by its first buffer; the device identifies frames by descriptor
 * address and tracks buffer ids only as the ring shows them.
 */

enum { R_FREE, R_POSTED, R_AT_DEVICE, R_USED };

struct rec {
	int state;
	bool rx;
	struct vuser_buf *buf;
	uint16_t id, ndesc;
	uint32_t cap;
};

struct expect {
	struct rec *r;
	uint32_t len;
};

struct model {
	struct fx f;
	struct rec *recs;       /* by pool buffer index of the first segment */
	bool *id_busy;          /* ids posted and not yet taken back */
	struct rec **devq;      /* chains the device holds, read order */
	unsigned ndev;
	struct expect *exp;     /* completions the driver must report, in order */
	unsigned exp_head, exp_tail, exp_cap;
	unsigned descs_out;     /* descriptors posted and not yet taken back */
	unsigned chains_out;
	unsigned long completed;
};

static struct rec *rec_of(struct model *m, struct vuser_buf *b)
{
	return &m->recs[b - m->f.pool.bufs];
}

static void m_post(struct model *m)
{
	struct fx *f = &m->f;
	unsigned size = f->size, free0 = vpacked_free_descs(&f->vq), n, k;
	struct vuser_buf *v[64];

	if (rnd(2)) {
		k = 1 + rnd(size + 2 < 64 ? size + 2 : 64);
		if (!vpool_get(&f->pool, v, k))
			return;
		for (unsigned i = 0; i < k; i++) {
			vbuf_reset(v[i]);
			v[i]->data_off = (uint16_t)(HDR + rnd(VUSER_BUF_HEADROOM - HDR));
		}
		n = vpacked_post_rx(&f->vq, v, k, HDR);
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

		k = 1 + rnd(size / 2 + 1 < 32 ? size / 2 + 1 : 32);
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
		n = vpacked_post_tx(&f->vq, v, k, HDR);
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
	CHECK_EQ(vpacked_free_descs(&f->vq), size - m->descs_out);
	CHECK_EQ(f->vq.inflight, m->chains_out);
}

/* The device reads every available chain and checks it against the buffers. */
static void m_device_pop(struct model *m)
{
	struct fx *f = &m->f;
	struct dchain c;

	while (dev_pop(&f->dev, &c)) {
		uint64_t lo = (uint64_t)(uintptr_t)f->pool.mem_lo;
		unsigned bi = (unsigned)((c.d[0].addr - lo) / VPOOL_SEG_SIZE);
		struct rec *r;

		if (c.d[0].addr < lo || bi >= f->pool.nb) {
			CHECK(!"available head names no pool buffer");
			return;
		}
		r = &m->recs[bi];
		CHECK_EQ(r->state, R_POSTED);
		CHECK_EQ(c.n, r->ndesc);
		if (r->state != R_POSTED || c.n != r->ndesc)
			return;
		if (r->rx) {
			CHECK_EQ(c.d[0].addr, r->buf->iova + r->buf->data_off - HDR);
			CHECK_EQ(c.d[0].len, r->cap);
			CHECK_EQ(c.d[0].flags & ~F_WRAP, VRING_DESC_F_WRITE);
		} else {
			check_tx_chain(&c, r->buf);
		}
		/* A buffer id names one chain in flight at a time. */
		CHECK(c.id < f->size);
		if (c.id >= f->size)
			return;
		CHECK(!m->id_busy[c.id]);
		m->id_busy[c.id] = true;
		r->id = c.id;
		r->state = R_AT_DEVICE;
		m->devq[m->ndev++] = r;
	}
	check_avail_sync(f);
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
			dev_use(d, r->id, len, r->ndesc);
			m_expect(m, r, len);
		}
		return;
	}
	if (rnd(2)) {
		/* One used descriptor for the batch: the id of its last chain. */
		struct rec *last = m->devq[c - 1];
		uint32_t len = m_len(last);
		unsigned skip = 0;

		for (unsigned i = 0; i < c; i++)
			skip += m->devq[i]->ndesc;
		for (unsigned i = 0; i + 1 < c; i++)
			m_expect(m, m->devq[i], 0);
		m_expect(m, last, len);
		dev_use(d, last->id, len, skip);
	} else {
		for (unsigned i = 0; i < c; i++) {
			uint32_t len = m_len(m->devq[i]);

			dev_use(d, m->devq[i]->id, len, m->devq[i]->ndesc);
			m_expect(m, m->devq[i], len);
		}
	}
	memmove(m->devq, m->devq + c, (m->ndev - c) * sizeof(m->devq[0]));
	m->ndev -= c;
}

static unsigned m_take(struct model *m, unsigned n)
{
	struct fx *f = &m->f;
	struct vuser_buf *out[64];
	uint32_t lens[64];
	unsigned got;

	if (n > 64)
		n = 64;
	got = vpacked_take_used(&f->vq, out, lens, n, true);
	CHECK(got <= n);
	for (unsigned i = 0; i < got; i++) {
		struct rec *r = rec_of(m, out[i]);
		struct expect e;

		if (m->exp_head == m->exp_tail) {
			CHECK(!"take_used returned a chain the device never completed");
			continue;
		}
		e = m->exp[m->exp_head++ % m->exp_cap];
		CHECK(e.r == r);
		CHECK_EQ(lens[i], e.len);
		CHECK_EQ(r->state, R_USED);
		m->id_busy[r->id] = false;
		m->descs_out -= r->ndesc;
		m->chains_out--;
		r->state = R_FREE;
		vpool_put_chains(&out[i], 1);
	}
	m->completed += got;
	CHECK_EQ(f->vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f->vq), f->size - m->descs_out);
	CHECK_EQ(f->vq.inflight, m->chains_out);
	/* Fewer than asked for means nothing used is left over. */
	if (got < n)
		CHECK_EQ(m->exp_head, m->exp_tail);
	if (m->exp_head == m->exp_tail)
		check_used_sync(f);
	return got;
}

static void m_publish(struct model *m)
{
	uint16_t fl = rnd(2) ? VRING_PACKED_EVENT_FLAG_DISABLE : (uint16_t)rnd(4);

	m->f.vq.device->flags = fl;
	CHECK_EQ(vpacked_wants_kick(&m->f.vq), fl != VRING_PACKED_EVENT_FLAG_DISABLE);
}

static void test_random(unsigned size, bool in_order, unsigned rounds)
{
	struct model m = { 0 };
	unsigned nbufs = 8 * size + 64;
	int before = t_failures;
	unsigned round;

	fx_init(&m.f, size, nbufs, in_order);
	m.recs = calloc(nbufs, sizeof(*m.recs));
	m.id_busy = calloc(size, sizeof(*m.id_busy));
	m.devq = calloc(size, sizeof(*m.devq));
	m.exp_cap = size;
	m.exp = calloc(m.exp_cap, sizeof(*m.exp));

	for (round = 0; round < rounds && t_failures == before; round++) {
		switch (rnd(6)) {
		case 0:
		case 1:
			m_post(&m);
			break;
		case 2:
			m_device_pop(&m);
			break;
		case 3:
			m_device_complete(&m);
			break;
		case 4:
			m_take(&m, 1 + rnd(size + 1));
			break;
		default:
			m_publish(&m);
			break;
		}
	}
	/* Drain: everything posted comes back exactly once. */
	m_device_pop(&m);
	while (m.ndev)
		m_device_complete(&m);
	while (m_take(&m, size))
		;
	CHECK_EQ(m.chains_out, 0);
	CHECK_EQ(m.descs_out, 0);
	CHECK_EQ(m.exp_head, m.exp_tail);
	CHECK_EQ(vpacked_free_descs(&m.f.vq), size);
	CHECK(m.completed > rounds / 50);
	CHECK(m.f.dev.used_laps > 3);
	check_pool_whole(&m.f.pool);
	if (t_failures != before)
		fprintf(stderr, "  random: size %u in_order %d, round %u\n", size, in_order, round);
	free(m.recs);
	free(m.id_busy);
	free(m.devq);
	free(m.exp);
	fx_fini(&m.f);
}

/* ------------------------------------------------------------------ */
/*
 * Hostile device. Every case starts from the same ring of 8: three RX
 * buffers at positions 0..2 and a three-descriptor TX chain at 3..5, all
 * read by the device; two positions free.
 */

struct hx {
	struct fx f;
	struct vuser_buf *rx[3], *tx;
	struct dchain c[4];
	struct vuser_buf *held[16];  /* handed back by take_used */
	uint32_t lens[16];
	unsigned nheld;
	const char *what;
	int before;
};

static void hx_init(struct hx *h, bool in_order, const char *what)
{
	static const uint32_t l3[3] = { 64, 64, 64 };

	memset(h, 0, sizeof(*h));
	h->what = what;
	h->before = t_failures;
	fx_init(&h->f, 8, 32, in_order);
	for (unsigned i = 0; i < 3; i++)
		h->rx[i] = get1(&h->f);
	CHECK_EQ(vpacked_post_rx(&h->f.vq, h->rx, 3, HDR), 3);
	h->tx = make_frame(&h->f, 3, l3);
	CHECK_EQ(vpacked_post_tx(&h->f.vq, &h->tx, 1, HDR), 1);
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(dev_pop(&h->f.dev, &h->c[i]), i < 3 ? 1 : 3);
	CHECK_EQ(vpacked_free_descs(&h->f.vq), 2);
}

static unsigned hx_take(struct hx *h, unsigned n)
{
	unsigned got;

	if (n > 16 - h->nheld)
		n = 16 - h->nheld;
	got = vpacked_take_used(&h->f.vq, h->held + h->nheld, h->lens + h->nheld, n, true);
	h->nheld += got;
	return got;
}

static unsigned hx_held_segs(const struct hx *h)
{
	unsigned n = 0;

	for (unsigned i = 0; i < h->nheld; i++)
		n += chain_segs(h->held[i]);
	return n;
}

/* No buffer lost: the pool, the ring and the test hold every one between them. */
static void hx_fini(struct hx *h)
{
	check_accounted(&h->f, hx_held_segs(h));
	vpool_put_chains(h->held, h->nheld);
	ring_reclaim(&h->f.vq);
	check_pool_whole(&h->f.pool);
	if (t_failures != h->before)
		fprintf(stderr, "  hostile case: %s (in_order=%d)\n", h->what, h->f.vq.in_order);
	fx_fini(&h->f);
}

/*
 * After a used descriptor the driver cannot place: counted once, the ring
 * stops for good (nothing posted, nothing taken, even for a valid used
 * descriptor written afterwards), and no buffer is lost.
 */
static void hx_check_broken(struct hx *h, uint64_t errs)
{
	struct vuser_buf *b = get1(&h->f), *out[4];
	struct dchain c;
	unsigned pfree;

	CHECK(h->f.vq.broken);
	CHECK_EQ(h->f.vq.errors, errs);
	CHECK_EQ(vpacked_free_descs(&h->f.vq), 0);
	/* The device carries on as if nothing happened. */
	dev_put(&h->f.vq.desc[h->f.vq.used_pos], h->c[3].id, 0, used_flags(h->f.vq.used_wrap));
	CHECK_EQ(vpacked_take_used(&h->f.vq, out, NULL, 4, true), 0);
	CHECK_EQ(vpacked_take_used(&h->f.vq, out, NULL, 4, false), 0);
	CHECK_EQ(h->f.vq.errors, errs);
	pfree = vpool_count_free(&h->f.pool);
	CHECK_EQ(vpacked_post_rx(&h->f.vq, &b, 1, HDR), 0);
	CHECK_EQ(vpacked_post_tx(&h->f.vq, &b, 1, HDR), 0);
	CHECK_EQ(dev_pop(&h->f.dev, &c), 0);
	CHECK_EQ(vpool_count_free(&h->f.pool), pfree);
	vpool_put(&h->f.pool, &b, 1);
}

enum bad_id { BAD_SIZE, BAD_FFFF, BAD_NEVER, BAD_MID_CHAIN, BAD_FREE_POS, BAD_DONE, BAD_DONE_IN_BATCH };

static void test_hostile_bad_id(bool in_order, enum bad_id kind, const char *what)
{
	struct hx h;
	uint16_t id = 0;

	hx_init(&h, in_order, what);
	switch (kind) {
	case BAD_SIZE:
		id = 8;
		break;
	case BAD_FFFF:
		id = 0xffff;
		break;
	case BAD_NEVER: {
		unsigned busy = 0;

		for (unsigned i = 0; i < 4; i++)
			busy |= 1u << h.c[i].id;
		while (busy & (1u << id))
			id++;
		CHECK(id < 8);
		break;
	}
	case BAD_MID_CHAIN:
		/* In order an id is a head's position: this one is inside the TX chain. */
		id = (uint16_t)(h.c[3].pos[0] + 1);
		CHECK(id != h.c[0].id && id != h.c[1].id && id != h.c[2].id && id != h.c[3].id);
		break;
	case BAD_FREE_POS:
		/* A position nothing is posted at (6 and 7 are free). */
		id = 7;
		CHECK(id != h.c[0].id && id != h.c[1].id && id != h.c[2].id && id != h.c[3].id);
		break;
	case BAD_DONE:
		dev_use(&h.f.dev, h.c[0].id, 5, 1);
		CHECK_EQ(hx_take(&h, 4), 1);
		id = h.c[0].id;
		break;
	case BAD_DONE_IN_BATCH:
		/* rx[0] was never named: it completed as the skipped part of a batch. */
		dev_use(&h.f.dev, h.c[1].id, 5, 2);
		CHECK_EQ(hx_take(&h, 4), 2);
		id = h.c[0].id;
		break;
	}
	dev_use(&h.f.dev, id, 0, 1);
	CHECK_EQ(hx_take(&h, 4), 0);
	hx_check_broken(&h, 1);
	hx_fini(&h);
}

/* A length beyond what was posted: dropped, counted, the buffer back in the pool. */
static void test_hostile_len(bool in_order)
{
	struct hx h;
	unsigned pfree;

	hx_init(&h, in_order, "len beyond the posted buffer");
	pfree = vpool_count_free(&h.f.pool);
	if (!in_order) {
		dev_use(&h.f.dev, h.c[1].id, rx_cap(h.rx[1]) + 1, 1);
		CHECK_EQ(hx_take(&h, 4), 0);
		CHECK_EQ(h.f.vq.errors, 1);
		CHECK_EQ(vpool_count_free(&h.f.pool), pfree + 1);
		CHECK_EQ(vpacked_free_descs(&h.f.vq), 3);
		CHECK(!h.f.vq.broken);
		/* Exactly the posted length is fine, and the ring goes on. */
		dev_use(&h.f.dev, h.c[0].id, rx_cap(h.rx[0]), 1);
		CHECK_EQ(hx_take(&h, 4), 1);
		CHECK(h.held[0] == h.rx[0]);
		CHECK_EQ(h.lens[0], rx_cap(h.rx[0]));
	} else {
		/* A batch whose last chain lies: the skipped ones still come back. */
		dev_use(&h.f.dev, h.c[2].id, rx_cap(h.rx[2]) + 100, 3);
		CHECK_EQ(hx_take(&h, 4), 2);
		CHECK(h.held[0] == h.rx[0] && h.held[1] == h.rx[1]);
		CHECK_EQ(h.lens[0], 0);
		CHECK_EQ(h.lens[1], 0);
		CHECK_EQ(h.f.vq.errors, 1);
		CHECK_EQ(vpool_count_free(&h.f.pool), pfree + 1);
		CHECK_EQ(vpacked_free_descs(&h.f.vq), 5);
		CHECK(!h.f.vq.broken);
	}
	/* Without check_len the caller gets the length as the device wrote it. */
	if (!in_order)
		dev_use(&h.f.dev, h.c[2].id, 3, 1);
	dev_use(&h.f.dev, h.c[3].id, 0x12345, 3);
	CHECK_EQ(vpacked_take_used(&h.f.vq, h.held + h.nheld, h.lens + h.nheld, 4, false),
		 in_order ? 1 : 2);
	h.nheld += in_order ? 1 : 2;
	CHECK_EQ(h.lens[h.nheld - 1], 0x12345);
	CHECK_EQ(h.f.vq.errors, 1);
	CHECK_EQ(vpacked_free_descs(&h.f.vq), 8);
	check_used_sync(&h.f);
	hx_fini(&h);
}

/*
 * Flags that do not say "used in this lap" at the next used position: not
 * used, not an error. The same descriptor with the right flags is taken.
 */
static void test_hostile_flags(bool in_order)
{
	struct hx h;
	uint16_t id;
	struct vring_packed_desc *d;

	hx_init(&h, in_order, "flags that are not used-in-this-lap");
	id = h.c[0].id;
	d = &h.f.vq.desc[0];
	/* AVAIL != USED, both ways round. */
	dev_put(d, id, 7, F_AVAIL);
	CHECK_EQ(hx_take(&h, 4), 0);
	dev_put(d, id, 7, F_USED);
	CHECK_EQ(hx_take(&h, 4), 0);
	/* Both equal to the old wrap counter: last lap's used descriptor. */
	dev_put(d, id, 7, 0);
	CHECK_EQ(hx_take(&h, 4), 0);
	/* Other flag bits do not make it used. */
	dev_put(d, id, 7, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT | F_AVAIL);
	CHECK_EQ(hx_take(&h, 4), 0);
	CHECK_EQ(h.f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&h.f.vq), 2);
	CHECK_EQ(h.f.vq.inflight, 4);
	/* ... but do not hide a real one. */
	dev_put(d, id, 7, F_WRAP | VRING_DESC_F_WRITE);
	CHECK_EQ(hx_take(&h, 4), 1);
	CHECK(h.held[0] == h.rx[0]);
	CHECK_EQ(h.lens[0], 7);
	/* That used descriptor went in by hand; the device's cursor follows it. */
	h.f.dev.used_pos = 1;
	dev_use(&h.f.dev, h.c[3].id, 0, in_order ? 5 : 3);
	if (!in_order) {
		dev_use(&h.f.dev, h.c[1].id, 0, 1);
		dev_use(&h.f.dev, h.c[2].id, 0, 1);
	}
	CHECK_EQ(hx_take(&h, 8), 3);
	CHECK_EQ(h.f.vq.errors, 0);
	check_used_sync(&h.f);

	/*
	 * Next lap (counter 0 from position 0): there both bits set is last
	 * lap's used pattern, and both clear is this lap's.
	 */
	{
		struct vuser_buf *x[2], *y = get1(&h.f);
		struct dchain c;

		x[0] = get1(&h.f);
		x[1] = get1(&h.f);
		CHECK_EQ(vpacked_post_rx(&h.f.vq, x, 2, HDR), 2);
		for (unsigned i = 0; i < 2; i++) {
			CHECK_EQ(dev_pop(&h.f.dev, &c), 1);
			dev_use(&h.f.dev, c.id, 1, 1);
		}
		CHECK_EQ(hx_take(&h, 4), 2);
		CHECK(!h.f.vq.used_wrap);
		CHECK_EQ(h.f.vq.used_pos, 0);
		CHECK_EQ(vpacked_post_rx(&h.f.vq, &y, 1, HDR), 1);
		CHECK_EQ(dev_pop(&h.f.dev, &c), 1);
		CHECK_EQ(c.pos[0], 0);
		CHECK_EQ(c.d[0].flags, VRING_DESC_F_WRITE | F_USED);
		dev_put(&h.f.vq.desc[0], c.id, 4, F_WRAP);
		CHECK_EQ(hx_take(&h, 4), 0);
		dev_put(&h.f.vq.desc[0], c.id, 4, F_AVAIL);
		CHECK_EQ(hx_take(&h, 4), 0);
		dev_put(&h.f.vq.desc[0], c.id, 4, F_USED);
		CHECK_EQ(hx_take(&h, 4), 0);
		CHECK_EQ(h.f.vq.errors, 0);
		dev_use(&h.f.dev, c.id, 4, 1);
		CHECK_EQ(hx_take(&h, 4), 1);
		CHECK(h.held[h.nheld - 1] == y);
		CHECK_EQ(h.lens[h.nheld - 1], 4);
		check_used_sync(&h.f);
	}
	CHECK_EQ(h.f.vq.errors, 0);
	hx_fini(&h);
}

/*
 * A used descriptor at a position that is not the next used one: in the
 * middle of a chain and in a free position. Neither is read; the proper
 * used descriptors that follow skip over them.
 */
static void test_hostile_position(bool in_order)
{
	struct hx h;
	struct dchain c[2];
	struct vuser_buf *b[2];

	hx_init(&h, in_order, "used descriptor at a position not next");
	dev_put(&h.f.vq.desc[4], h.c[3].id, 0, F_WRAP);
	dev_put(&h.f.vq.desc[7], h.c[0].id, 3, F_WRAP);
	dev_put(&h.f.vq.desc[1], h.c[1].id, 2, F_WRAP);
	CHECK_EQ(hx_take(&h, 8), 0);
	CHECK_EQ(h.f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&h.f.vq), 2);
	/* The real completions, in ring order, one per chain. */
	dev_use(&h.f.dev, h.c[0].id, 10, 1);
	dev_use(&h.f.dev, h.c[1].id, 11, 1);
	dev_use(&h.f.dev, h.c[2].id, 12, 1);
	dev_use(&h.f.dev, h.c[3].id, 0, 3);
	CHECK_EQ(hx_take(&h, 8), 4);
	for (unsigned i = 0; i < 3; i++) {
		CHECK(h.held[i] == h.rx[i]);
		CHECK_EQ(h.lens[i], 10 + i);
	}
	CHECK(h.held[3] == h.tx);
	CHECK_EQ(h.f.vq.errors, 0);
	check_used_sync(&h.f);
	/* Position 7 still carries the stray; posting there must replace it. */
	CHECK_EQ(hx_take(&h, 8), 0);
	for (unsigned i = 0; i < 2; i++)
		b[i] = get1(&h.f);
	CHECK_EQ(vpacked_post_rx(&h.f.vq, b, 2, HDR), 2);
	CHECK_EQ(dev_pop(&h.f.dev, &c[0]), 1);
	CHECK_EQ(dev_pop(&h.f.dev, &c[1]), 1);
	CHECK_EQ(c[1].pos[0], 7);
	CHECK_EQ(hx_take(&h, 8), 0);
	dev_use(&h.f.dev, c[0].id, 1, 1);
	dev_use(&h.f.dev, c[1].id, 2, 1);
	CHECK_EQ(hx_take(&h, 8), 2);
	CHECK(h.held[4] == b[0] && h.held[5] == b[1]);
	CHECK_EQ(h.f.vq.errors, 0);
	check_used_sync(&h.f);
	hx_fini(&h);
}

/*
 * The device rewrites descriptors the driver has consumed: flags flipped back
 * to "available", or re-marked used. The driver has moved on and must not
 * look back; the next lap overwrites them.
 */
static void test_hostile_flip_back(bool in_order)
{
	struct hx h;
	struct vuser_buf *b[8];
	struct dchain c;

	hx_init(&h, in_order, "flags flipped back after consumption");
	dev_use(&h.f.dev, h.c[0].id, 1, 1);
	dev_use(&h.f.dev, h.c[1].id, 2, 1);
	CHECK_EQ(hx_take(&h, 8), 2);
	dev_put(&h.f.vq.desc[0], h.c[2].id, 3, F_AVAIL);
	CHECK_EQ(hx_take(&h, 8), 0);
	dev_put(&h.f.vq.desc[0], h.c[2].id, 3, F_WRAP);
	dev_put(&h.f.vq.desc[1], h.c[3].id, 3, F_WRAP);
	CHECK_EQ(hx_take(&h, 8), 0);
	CHECK_EQ(h.f.vq.errors, 0);
	CHECK_EQ(h.f.vq.inflight, 2);
	dev_use(&h.f.dev, h.c[2].id, 3, 1);
	dev_use(&h.f.dev, h.c[3].id, 0, 3);
	CHECK_EQ(hx_take(&h, 8), 2);
	CHECK(h.held[2] == h.rx[2] && h.held[3] == h.tx);
	/* A full lap over the scribbled positions. */
	for (unsigned i = 0; i < 8; i++)
		b[i] = get1(&h.f);
	CHECK_EQ(vpacked_post_rx(&h.f.vq, b, 8, HDR), 8);
	for (unsigned i = 0; i < 8; i++) {
		CHECK_EQ(dev_pop(&h.f.dev, &c), 1);
		dev_use(&h.f.dev, c.id, i, 1);
	}
	CHECK_EQ(hx_take(&h, 8), 8);
	for (unsigned i = 0; i < 8; i++)
		CHECK(h.held[4 + i] == b[i]);
	CHECK_EQ(h.f.vq.errors, 0);
	check_used_sync(&h.f);
	hx_fini(&h);
}

/* A used descriptor with nothing in flight is not even read. */
static void test_hostile_idle(bool in_order)
{
	struct hx h;
	struct vuser_buf *b;
	struct dchain c;

	hx_init(&h, in_order, "used descriptor with nothing in flight");
	if (in_order) {
		dev_use(&h.f.dev, h.c[3].id, 0, 6);
	} else {
		for (unsigned i = 0; i < 4; i++)
			dev_use(&h.f.dev, h.c[i].id, 0, h.c[i].n);
	}
	CHECK_EQ(hx_take(&h, 8), 4);
	check_used_sync(&h.f);
	CHECK_EQ(h.f.vq.inflight, 0);
	/* Right position, right wrap, any id: nothing is owed, so nothing is read. */
	dev_put(&h.f.vq.desc[6], 0, 1, F_WRAP);
	CHECK_EQ(hx_take(&h, 8), 0);
	dev_put(&h.f.vq.desc[6], 0xffff, 1, F_WRAP);
	CHECK_EQ(hx_take(&h, 8), 0);
	CHECK_EQ(h.f.vq.errors, 0);
	CHECK(!h.f.vq.broken);
	/* Posting there replaces it: the next used descriptor is the real one. */
	b = get1(&h.f);
	CHECK_EQ(vpacked_post_rx(&h.f.vq, &b, 1, HDR), 1);
	CHECK_EQ(dev_pop(&h.f.dev, &c), 1);
	CHECK_EQ(c.pos[0], 6);
	CHECK_EQ(hx_take(&h, 8), 0);
	dev_use(&h.f.dev, c.id, 8, 1);
	CHECK_EQ(hx_take(&h, 8), 1);
	CHECK(h.held[4] == b);
	CHECK_EQ(h.lens[4], 8);
	CHECK_EQ(h.f.vq.errors, 0);
	hx_fini(&h);
}

static void test_hostile(bool in_order)
{
	test_hostile_bad_id(in_order, BAD_SIZE, "used id == size");
	test_hostile_bad_id(in_order, BAD_FFFF, "used id 0xffff");
	test_hostile_bad_id(in_order, BAD_NEVER, "id never posted");
	test_hostile_bad_id(in_order, BAD_MID_CHAIN, "id of a position inside a chain");
	test_hostile_bad_id(in_order, BAD_FREE_POS, "id of a free position");
	test_hostile_bad_id(in_order, BAD_DONE, "id already completed");
	if (in_order)
		test_hostile_bad_id(in_order, BAD_DONE_IN_BATCH, "id completed inside a batch");
	test_hostile_len(in_order);
	test_hostile_flags(in_order);
	test_hostile_position(in_order);
	test_hostile_flip_back(in_order);
	test_hostile_idle(in_order);
}

/* ------------------------------------------------------------------ */
/*
 * A device on its own thread. The driver posts TX chains whose head length
 * encodes their descriptor count, so a head released before the rest of its
 * chain would be seen as torn or as a chain of the wrong length.
 */

struct cdev {
	struct dev d;
	bool batches;
	uint64_t lo, hi;
	unsigned long chains;
	unsigned long bad;
	int stop;
};

static void *cdev_run(void *arg)
{
	struct cdev *cd = arg;
	struct dchain c[16];

	while (!__atomic_load_n(&cd->stop, __ATOMIC_ACQUIRE)) {
		unsigned k = 0, skip = 0;

		while (k < 16 && dev_pop(&cd->d, &c[k])) {
			if (c[k].d[0].len != 100 * c[k].n)
				cd->bad++;
			for (unsigned i = 0; i < c[k].n; i++)
				if (c[k].d[i].addr < cd->lo || c[k].d[i].addr >= cd->hi)
					cd->bad++;
			skip += c[k].n;
			k++;
		}
		if (!k) {
			sched_yield();
			continue;
		}
		if (cd->batches && k % 2) {
			dev_use(&cd->d, c[k - 1].id, 0, skip);
		} else {
			for (unsigned i = 0; i < k; i++)
				dev_use(&cd->d, c[i].id, 0, c[i].n);
		}
		cd->chains += k;
	}
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * A transmit burst becomes available whole: a device thread that finds the
 * first head of a burst available must find every other descriptor of it
 * available too (the driver writes the first head's flags last). Posted
 * one by one, the watcher catches a burst half made in most rounds.
 */
struct watch {
	const struct vring_packed_desc *desc;
	unsigned pos, n;
	uint16_t avail;         /* the burst's AVAIL/USED bits */
	unsigned round, ack;    /* main -> watcher, watcher -> main */
	unsigned watched, torn;
	int stop;
};

static void *watch_run(void *arg)
{
	struct watch *w = arg;
	unsigned seen = 0;

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		unsigned r = __atomic_load_n(&w->round, __ATOMIC_ACQUIRE);

		if (r == seen)
			continue;
		seen = r;
		while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) &&
		       (__atomic_load_n(&w->desc[w->pos].flags, __ATOMIC_ACQUIRE) & F_WRAP) != w->avail)
			;
		for (unsigned k = 1; k < w->n; k++)
			if ((__atomic_load_n(&w->desc[w->pos + k].flags, __ATOMIC_RELAXED) & F_WRAP) !=
			    w->avail) {
				w->torn++;
				break;
			}
		w->watched++;
		__atomic_store_n(&w->ack, r, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void test_burst_whole(void)
{
	enum { SIZE = 128, BURST = 32, ROUNDS = 2000 };
	static const uint32_t one[] = { 60 };
	struct fx f;
	struct watch w = { .n = BURST };
	struct vuser_buf *fr[BURST], *out[BURST];
	struct dchain c;
	pthread_t th;
	double t0 = now_s();

	fx_init(&f, SIZE, 2 * BURST, false);
	w.desc = f.vq.desc;
	if (pthread_create(&th, NULL, watch_run, &w)) {
		CHECK(!"pthread_create");
		fx_fini(&f);
		return;
	}
	for (unsigned r = 1; r <= ROUNDS; r++) {
		for (unsigned i = 0; i < BURST; i++)
			fr[i] = make_frame(&f, 1, one);
		w.pos = f.vq.avail_pos;
		w.avail = f.vq.avail_wrap ? F_AVAIL : F_USED;
		__atomic_store_n(&w.round, r, __ATOMIC_RELEASE);
		/* Give the watcher time to start polling the first head. */
		for (volatile unsigned spin = 0; spin < 2000; spin++)
			;
		CHECK_EQ(vpacked_post_tx(&f.vq, fr, BURST, HDR), BURST);
		while (__atomic_load_n(&w.ack, __ATOMIC_ACQUIRE) != r && now_s() - t0 < 10.0)
			sched_yield();
		if (__atomic_load_n(&w.ack, __ATOMIC_ACQUIRE) != r) {
			CHECK(!"watcher thread stalled");
			break;
		}
		for (unsigned i = 0; i < BURST; i++) {
			CHECK_EQ(dev_pop(&f.dev, &c), 1);
			dev_use(&f.dev, c.id, 0, 1);
		}
		CHECK_EQ(vpacked_take_used(&f.vq, out, NULL, BURST, false), BURST);
		vpool_put_chains(out, BURST);
	}
	__atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(w.watched, ROUNDS);
	CHECK_EQ(w.torn, 0);
	CHECK_EQ(f.vq.errors, 0);
	check_pool_whole(&f.pool);
	fx_fini(&f);
}

static void test_threaded(unsigned size, bool in_order)
{
	struct fx f;
	struct cdev cd;
	pthread_t th;
	struct vuser_buf **fifo = calloc(size, sizeof(*fifo)), *out[32];
	unsigned head = 0, tail = 0, want = 20000, posted = 0, done = 0;
	double t0 = now_s();
	int before = t_failures;

	fx_init(&f, size, size + 16, in_order);
	cd = (struct cdev){ .batches = in_order, .lo = (uint64_t)(uintptr_t)f.pool.mem_lo,
			    .hi = (uint64_t)(uintptr_t)f.pool.mem_hi };
	dev_init(&cd.d, f.mem, size);
	if (pthread_create(&th, NULL, cdev_run, &cd)) {
		CHECK(!"pthread_create");
		free(fifo);
		fx_fini(&f);
		return;
	}
	while (done < posted || (posted < want && now_s() - t0 < 1.0)) {
		unsigned got, progress = 0;

		if (now_s() - t0 > 5.0) {
			CHECK(!"device thread stalled");
			break;
		}
		while (posted < want && now_s() - t0 < 1.0) {
			unsigned nseg = 1 + (posted % 3 < size ? posted % 3 : 0);
			uint32_t l[3] = { 100 * nseg, 1, 2 };
			struct vuser_buf *m;

			if (nseg > vpacked_free_descs(&f.vq))
				break;
			/* hdr 0 below: the head's length is exactly 100 per descriptor. */
			m = make_frame(&f, nseg, l);
			if (!m || vpacked_post_tx(&f.vq, &m, 1, 0) != 1) {
				CHECK(!"post with room failed");
				if (m)
					vpool_put_chains(&m, 1);
				break;
			}
			fifo[tail++ % size] = m;
			posted++;
			progress++;
		}
		got = vpacked_take_used(&f.vq, out, NULL, 32, false);
		for (unsigned i = 0; i < got; i++) {
			CHECK(head != tail);
			CHECK(out[i] == fifo[head++ % size]);
		}
		vpool_put_chains(out, got);
		done += got;
		if (!progress && !got)
			sched_yield();
	}
	__atomic_store_n(&cd.stop, 1, __ATOMIC_RELEASE);
	pthread_join(th, NULL);
	CHECK_EQ(done, posted);
	CHECK(posted > 1000);
	CHECK_EQ(cd.bad, 0);
	CHECK_EQ(cd.d.torn, 0);
	CHECK_EQ(cd.chains, posted);
	CHECK_EQ(f.vq.errors, 0);
	CHECK_EQ(vpacked_free_descs(&f.vq), size);
	check_pool_whole(&f.pool);
	if (t_failures != before)
		fprintf(stderr, "  threaded: size %u in_order %d, %u posted %u done\n", size,
			in_order, posted, done);
	free(fifo);
	fx_fini(&f);
}

int main(void)
{
	static const unsigned sizes[] = { 1, 2, 7, 255, 256, 1000, 1025, 32768 };

	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		test_layout(sizes[i]);
	test_post_rx();
	test_post_tx();
	test_publish();
	test_out_of_order();
	test_in_order();
	test_batch_over_n();
	test_size1(false);
	test_size1(true);
	test_hostile(false);
	test_hostile(true);
	for (unsigned i = 0; i < 2; i++) {
		test_wrap(1, i);
		test_wrap(255, i);
		test_wrap(1025, i);
		test_wrap(32768, i);
	}
	for (unsigned i = 0; i < 2; i++) {
		test_random(8, i, 20000);
		test_random(255, i, 20000);
		test_random(1, i, 5000);
		test_random(1000, i, 5000);
	}
	test_threaded(8, false);
	test_burst_whole();
	test_threaded(8, true);
	test_threaded(255, true);
	test_release(false);
	test_release(true);
	return t_result();
}
