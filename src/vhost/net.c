/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost device's datapath: copy frames out of the frontend's transmit
 * chains and into its receive chains. Every chain is walked through the
 * checked iterators of ring/split_dev.c and ring/packed_dev.c; a chain that
 * breaks the rules stops the queue and asks the control side to cut the
 * frontend off. The copying is the same for both layouts: only finding,
 * walking and returning chains differ, behind the small helpers below.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "base/compat.h"
#include "base/log.h"
#include "vhost/dev.h"
#include "vuser/uapi/virtio_net.h"

#define BIT(n) (1ull << (n))
#define VHOST_BURST 64
/* A transmit call of at least this many frames is a burst (see struct src_pos). */
#define VHOST_BULK_MIN 4
/* Largest frame taken from a frontend: 64 KiB, as a TSO-less virtio-net allows. */
#define VHOST_MAX_FRAME 65536u
/* VERSION_1 is required, so the header always has num_buffers: 12 bytes. */
#define VHDR ((uint32_t)sizeof(struct virtio_net_hdr_mrg_rxbuf))

static inline bool enter(struct vhq *r)
{
	return vgate_enter(&r->gate);
}

static inline void leave(struct vhq *r)
{
	vgate_leave(&r->gate);
}

/* One chain's iterator, over either layout. */
struct walk {
	bool packed;
	union {
		struct vdwalk s;
		struct vdpwalk p;
	};
};

static inline int walk_next(struct vhq *r, struct walk *w, struct vdseg *seg)
{
	return w->packed ? vdpwalk_next(&r->pq, &w->p, seg) : vdwalk_next(&r->vq, &w->s, seg);
}

static inline int ring_violation(struct vhq *r, const char *why)
{
	if (r->packed)
		r->pq.why = why;
	else
		r->vq.why = why;
	return -EPROTO;
}

static inline void stat_add(uint64_t *c, uint64_t v)
{
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

/*
 * The ring broke a rule: stop using it and wake the control side, which
 * cuts the frontend off. The datapath itself never closes or unmaps.
 */
static void violate(struct vuser_vhost *v, struct vhq *r)
{
	uint64_t one = 1;

	vgate_shut(&r->gate);
	v->datapath_why = r->packed ? r->pq.why : r->vq.why;
	r->st.errors++;
	__atomic_store_n(&v->violation_pending, 1, __ATOMIC_RELEASE);
	if (write(v->evfd, &one, sizeof(one)) < 0)
		return;
}

/* The end of every burst that got through: publish, leave, count. */
static void burst_done(struct vhq *r, uint16_t consumed, uint64_t pkts, uint64_t bytes,
		       uint64_t drops)
{
	if (r->packed) {
		vdpacked_publish(&r->pq);
	} else {
		r->vq.last_avail += consumed;
		if (consumed)
			vdsplit_publish(&r->vq);
	}
	leave(r);
	stat_add(&r->st.packets, pkts);
	stat_add(&r->st.bytes, bytes);
	if (drops)
		stat_add(&r->st.drops, drops);
}

/* --------------------------------------------------- from the frontend */

/* The offload fields of a transmit header (VHDR bytes at h, any alignment) for the program. */
static inline void vnet_from_hdr(struct vuser_buf *f, const uint8_t *h)
{
	struct virtio_net_hdr_mrg_rxbuf x;

	memcpy(&x, h, VHDR);
	f->vnet = (struct vuser_net_hdr){ x.flags, x.gso_type, x.hdr_len,
					  x.gso_size, x.csum_start, x.csum_offset };
}

/*
 * Copy one transmit chain into a fresh buffer chain. Returns 1 with *out
 * set, 0 when the frame was dropped (counted by the caller), -EPROTO on a
 * violation, -ENOBUFS when the pool ran dry (the chain is left in place).
 */
static int copy_from_chain(struct vuser_vhost *v, struct vhq *r, struct walk *w,
			   struct vuser_buf *first, struct vuser_buf **out)
{
	uint8_t hdr[VHDR];
	const unsigned hdr_len = VHDR;
	/*
	 * Without CSUM (the only transmit offload offered) the driver must send
	 * a header of zeros (5.1.6.2.1): it is stepped over, not read, which
	 * saves a transfer from the driver's core per frame.
	 */
	const bool read_hdr = v->features & BIT(VIRTIO_NET_F_CSUM);
	const bool flush = r->trial.on;
	struct vuser_buf *seg = first, *extra = NULL;
	uint32_t got_hdr = 0, total = 0;
	bool too_big = false;
	struct vdseg s;
	int ret;

	while ((ret = walk_next(r, w, &s)) > 0) {
		const uint8_t *p = s.p;
		uint32_t len = s.len;

		if (unlikely(s.write)) {
			ret = ring_violation(r, "writable descriptor in a transmit chain");
			break;
		}
		if (likely(!got_hdr && len >= VHDR)) {
			/* The usual layout: the whole header in the first buffer. */
			if (read_hdr) {
				memcpy(hdr, p, VHDR);
				if (flush)
					vlines_flush(p, VHDR);
			}
			got_hdr = VHDR;
			p += VHDR;
			len -= VHDR;
		} else if (got_hdr < hdr_len) {
			uint32_t k = hdr_len - got_hdr < len ? hdr_len - got_hdr : len;

			if (read_hdr) {
				memcpy(hdr + got_hdr, p, k);
				if (flush)
					vlines_flush(p, k);
			}
			got_hdr += k;
			p += k;
			len -= k;
		}
		if (!len || too_big)
			continue;
		if (total + len > VHOST_MAX_FRAME) {
			/* Keep walking: the chain must still be checked to the end. */
			too_big = true;
			continue;
		}
		total += len;
		while (len) {
			uint32_t room = seg->room - seg->data_off - seg->data_len;
			uint32_t k;

			if (!room) {
				struct vuser_buf *n;

				if (!vpool_get(&v->pool, &n, 1)) {
					vpool_put_chains(&extra, extra ? 1 : 0);
					first->next = NULL;
					return -ENOBUFS;
				}
				vbuf_reset(n);
				seg->next = n;
				if (!extra)
					extra = n;
				seg = n;
				first->nb_segs++;
				continue;
			}
			k = len < room ? len : room;
			vcopy(vuser_buf_data(seg) + seg->data_len, p, k);
			/* Flushed once read, never before: the copy would fetch it back. */
			if (flush)
				vlines_flush(p, k);
			seg->data_len += k;
			p += k;
			len -= k;
		}
	}
	if (ret < 0 || too_big || got_hdr < hdr_len) {
		if (extra)
			vpool_put_chains(&extra, 1);
		vbuf_reset(first);
		return ret < 0 ? ret : 0;
	}
	first->pkt_len = total;
	if (read_hdr) {
		vnet_from_hdr(first, hdr);
	}
	*out = first;
	return 1;
}

/*
 * Where the first buffer of the chain i places on sits, read without any
 * check (0 when the slot names no descriptor): for the hints below only,
 * nothing read here is trusted or kept. A packed ring is guessed to hold one
 * descriptor per chain.
 */
static inline uint64_t split_addr_ahead(const struct vdsplit *vq, uint16_t i)
{
	uint16_t head = READ_ONCE(vq->avail->ring[(uint16_t)(vq->last_avail + i) & vq->mask]);

	return head < vq->size ? READ_ONCE(vq->desc[head].addr) : 0;
}

static inline uint64_t packed_addr_ahead(const struct vdpacked *vq, unsigned i)
{
	unsigned pos = vq->avail_pos + i;

	if (pos >= vq->size)
		pos -= vq->size;
	return pos < vq->size ? READ_ONCE(vq->desc[pos].addr) : 0;
}

/*
 * Ask for the start of a chain some frames ahead while this one is copied:
 * its first line would otherwise stall a copy on a transfer from the
 * driver's core. The header's line only when it will be read (it mostly
 * shares no line with the frame). A bad address prefetches nothing.
 */
#define PREFETCH_AHEAD 3
static inline void prefetch_buf(const struct vmem *mem, uint64_t addr, bool hdr)
{
	const uint8_t *p = vmem_gpa(mem, addr, VHDR + 64);

	if (!p)
		return;
	if (hdr)
		__builtin_prefetch(p);
	__builtin_prefetch(p + VHDR);
}

/*
 * Four transmit chains of one descriptor each, found by vdpacked_batch() or
 * vdsplit_batch() (at avail position at), into four fresh buffers with none
 * of the general walk: the way drivers send frames that fit one buffer
 * (vuser's port, DPDK's virtio PMD with the header in the headroom). Per
 * frame, the walk's state, its checks one descriptor at a time and its
 * calls cost more than the copy of a small frame. False, having changed
 * nothing, when a chain or a frame is anything else (no frame after the
 * header, more than one buffer holds); the caller then goes chain by
 * chain, which also names any rule that was broken. True with out[] set and
 * id[] naming the chains, for the caller to mark used.
 */
static bool rx_batch(struct vhq *r, uint16_t at, struct vuser_buf *const *fresh,
		     struct vuser_buf **out, bool read_hdr, uint64_t *bytes, uint16_t id[VD_BATCH])
{
	const bool flush = r->trial.on;
	struct vdseg seg[VD_BATCH];

	if (r->packed ? !vdpacked_batch(&r->pq, false, seg, id)
		      : !vdsplit_batch(&r->vq, at, false, seg, id))
		return false;
	for (unsigned i = 0; i < VD_BATCH; i++)
		if (seg[i].len <= VHDR ||
		    seg[i].len - VHDR > fresh[i]->room - VUSER_BUF_HEADROOM)
			return false;
	for (unsigned i = 0; i < VD_BATCH; i++) {
		struct vuser_buf *f = fresh[i];
		const uint32_t len = seg[i].len - VHDR;

		vbuf_reset(f);
		if (read_hdr)
			vnet_from_hdr(f, seg[i].p);
		vcopy(vuser_buf_data(f), seg[i].p + VHDR, len);
		if (flush)
			vlines_flush(seg[i].p + (read_hdr ? 0 : VHDR), len + (read_hdr ? VHDR : 0));
		f->data_len = len;
		f->pkt_len = len;
		out[i] = f;
		*bytes += len;
	}
	return true;
}

/*
 * The packed ring does not say how many chains wait: take buffers for a
 * burst once the first chain is there, and give back what was not needed.
 */
static int rx_packed(struct vuser_vhost *v, struct vhq *r, struct vuser_buf **b, unsigned n)
{
	struct vuser_buf *fresh[VHOST_BURST];
	struct vdpacked *pq = &r->pq;
	unsigned want = n < VHOST_BURST ? n : VHOST_BURST;
	const bool read_hdr = v->features & BIT(VIRTIO_NET_F_CSUM);
	uint64_t bytes = 0, drops = 0;
	unsigned nb = 0, taken = 0;

	if (!want || !vdpacked_avail(pq)) {
		vtrial_tick(&r->trial, 0);
		leave(r);
		return 0;
	}
	/* The first frame's line is on its way while the pool is locked. */
	prefetch_buf(pq->mem, packed_addr_ahead(pq, 0), read_hdr);
	while (want && !vpool_get(&v->pool, fresh, want))
		want /= 2;
	for (; taken < want; taken++) {
		struct walk w = { .packed = true };
		int ret;

		if (taken && !vdpacked_avail(pq))
			break;
		if (want - taken >= VD_BATCH) {
			uint16_t id[VD_BATCH];

			for (unsigned k = 0; k < VD_BATCH; k++)
				prefetch_buf(pq->mem, packed_addr_ahead(pq, PREFETCH_AHEAD + k), read_hdr);
			if (rx_batch(r, 0, fresh + taken, b + nb, read_hdr, &bytes, id)) {
				vdpacked_take_read_batch(pq, id);
				taken += VD_BATCH - 1;
				nb += VD_BATCH;
				continue;
			}
		}
		prefetch_buf(pq->mem, packed_addr_ahead(pq, PREFETCH_AHEAD), read_hdr);
		vdpwalk_start(pq, &w.p, false);
		vbuf_reset(fresh[taken]);
		ret = copy_from_chain(v, r, &w, fresh[taken], &b[nb]);
		if (unlikely(ret == -EPROTO)) {
			vpool_put(&v->pool, fresh + taken, want - taken);
			leave(r);
			violate(v, r);
			stat_add(&r->st.packets, nb);
			return (int)nb;
		}
		if (unlikely(ret == -ENOBUFS))
			break;
		if (ret) {
			bytes += b[nb]->pkt_len;
			nb++;
		} else {
			drops++;
			vpool_put(&v->pool, &fresh[taken], 1);
		}
		vdpacked_take_read(pq, &w.p);
	}
	if (taken < want)
		vpool_put(&v->pool, fresh + taken, want - taken);
	burst_done(r, (uint16_t)taken, nb, bytes, drops);
	vtrial_tick(&r->trial, nb);
	return (int)nb;
}

int vhost_rx(struct vuser_vhost *v, struct vhq *r, struct vuser_buf **b, unsigned n)
{
	struct vuser_buf *fresh[VHOST_BURST];
	const bool read_hdr = v->features & BIT(VIRTIO_NET_F_CSUM);
	uint64_t bytes = 0, drops = 0;
	unsigned nb = 0, taken = 0;
	uint16_t last = 0;
	int avail;

	if (unlikely(!enter(r)))
		return 0;
	if (r->packed)
		return rx_packed(v, r, b, n);
	avail = vdsplit_avail_count(&r->vq);
	if (unlikely(avail < 0))
		goto violation;
	if (!avail) {
		/*
		 * Nothing yet: ask for the lines the next chain will be read
		 * from, the avail entry and (chains laid out in ring order, as
		 * in-order drivers do) its descriptor. When the driver writes
		 * them, the next idle poll fetches them again while the driver
		 * is still on its way to the idx, so the burst that sees the
		 * idx finds them here instead of fetching one after the other.
		 * Only lines inside the rings; nothing read is trusted.
		 */
		uint16_t slot = r->vq.last_avail & r->vq.mask;

		__builtin_prefetch(&r->vq.avail->ring[slot]);
		__builtin_prefetch(&r->vq.desc[slot]);
		vtrial_tick(&r->trial, 0);
		leave(r);
		return 0;
	}
	if ((unsigned)avail > n)
		avail = (int)n;
	if (avail > VHOST_BURST)
		avail = VHOST_BURST;
	/* The first frames' lines are on their way while the pool is locked. */
	for (int i = 0; i < avail && i < PREFETCH_AHEAD; i++)
		prefetch_buf(r->vq.mem, split_addr_ahead(&r->vq, (uint16_t)i), read_hdr);
	/* A pool running low still moves what it can. */
	while (avail && !vpool_get(&v->pool, fresh, (unsigned)avail))
		avail /= 2;
	if (!avail) {
		leave(r);
		return 0;
	}
	for (; taken < (unsigned)avail; taken++) {
		int head;
		struct walk w;
		int ret;

		if ((unsigned)avail - taken >= VD_BATCH) {
			uint16_t id[VD_BATCH];

			for (unsigned k = taken + PREFETCH_AHEAD;
			     k < taken + PREFETCH_AHEAD + VD_BATCH && k < (unsigned)avail; k++)
				prefetch_buf(r->vq.mem, split_addr_ahead(&r->vq, (uint16_t)k),
					     read_hdr);
			if (rx_batch(r, (uint16_t)taken, fresh + taken, b + nb, read_hdr, &bytes,
				     id)) {
				if (!r->vq.in_order)
					for (unsigned k = 0; k < VD_BATCH; k++)
						vdsplit_put_used(&r->vq, id[k], 0);
				last = id[VD_BATCH - 1];
				taken += VD_BATCH - 1;
				nb += VD_BATCH;
				continue;
			}
		}
		head = vdsplit_head(&r->vq, (uint16_t)taken);
		if (taken + PREFETCH_AHEAD < (unsigned)avail)
			prefetch_buf(r->vq.mem,
				     split_addr_ahead(&r->vq, (uint16_t)(taken + PREFETCH_AHEAD)),
				     read_hdr);

		if (unlikely(head < 0))
			goto violation_free;
		vbuf_reset(fresh[taken]);
		w.packed = false;
		vdwalk_start(&r->vq, (uint16_t)head, &w.s);
		ret = copy_from_chain(v, r, &w, fresh[taken], &b[nb]);
		if (unlikely(ret == -EPROTO))
			goto violation_free;
		if (unlikely(ret == -ENOBUFS))
			break;
		if (ret) {
			bytes += b[nb]->pkt_len;
			nb++;
		} else {
			drops++;
			vpool_put(&v->pool, &fresh[taken], 1);
		}
		last = (uint16_t)head;
		if (!r->vq.in_order)
			vdsplit_put_used(&r->vq, last, 0);
	}
	/*
	 * In order, one used entry names the last chain of the burst and the
	 * index moves by all of them (2.6.9): one cache line for the driver to
	 * read instead of one per eight frames.
	 */
	if (r->vq.in_order && taken)
		vdsplit_put_used_batch(&r->vq, last, 0, (uint16_t)taken);
	if (taken < (unsigned)avail)
		vpool_put(&v->pool, fresh + taken, (unsigned)avail - taken);
	burst_done(r, (uint16_t)taken, nb, bytes, drops);
	vtrial_tick(&r->trial, nb);
	return (int)nb;

violation_free:
	/* Frames already copied are the program's; the rest go back. */
	vpool_put(&v->pool, fresh + taken, (unsigned)avail - taken);
	leave(r);
	violate(v, r);
	stat_add(&r->st.packets, nb);
	return (int)nb;
violation:
	leave(r);
	violate(v, r);
	return 0;
}

/* ----------------------------------------------------- to the frontend */

/* RFC 1071 sum over a frame chain, from byte off to the end. */
static uint16_t csum_chain(const struct vuser_buf *b, uint32_t off)
{
	uint64_t sum = 0;
	bool odd = false;

	for (const struct vuser_buf *s = b; s; s = s->next) {
		const uint8_t *p = vuser_buf_data(s);
		uint32_t len = s->data_len;

		if (off >= len) {
			off -= len;
			continue;
		}
		p += off;
		len -= off;
		off = 0;
		for (uint32_t i = 0; i < len; i++) {
			sum += odd ? p[i] : (uint32_t)p[i] << 8;
			odd = !odd;
		}
	}
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void put_byte(struct vuser_buf *b, uint32_t off, uint8_t val)
{
	for (struct vuser_buf *s = b; s; s = s->next) {
		if (off < s->data_len) {
			vuser_buf_data(s)[off] = val;
			return;
		}
		off -= s->data_len;
	}
}

/*
 * A frame whose checksum the sender left to the device, going to a frontend
 * that did not negotiate GUEST_CSUM: finish the checksum here (5.1.6.2).
 */
static void csum_complete(struct vuser_buf *b)
{
	uint32_t start = b->vnet.csum_start, at = start + b->vnet.csum_offset;
	uint16_t c;

	if (start >= b->pkt_len || at + 2 > b->pkt_len)
		return;
	c = csum_chain(b, start);
	put_byte(b, at, (uint8_t)(c >> 8));
	put_byte(b, at + 1, (uint8_t)c);
	b->vnet.flags &= (uint8_t)~VIRTIO_NET_HDR_F_NEEDS_CSUM;
}

/*
 * Write a receive header only where it differs from what the buffer holds.
 * A frontend reuses its receive buffers and does not write their headers, so
 * the one left from a buffer's last lap mostly says the same; a store would
 * take the line from the frontend's core only for it to read the line back.
 * The compare reads the frontend's memory, which it may change under us as
 * it may after any store: it only decides whether to store.
 */
static inline void put_hdr(uint8_t *p, const uint8_t *hdr)
{
	uint64_t a, b;
	uint32_t c, d;

	memcpy(&a, p, 8);
	memcpy(&b, hdr, 8);
	memcpy(&c, p + 8, 4);
	memcpy(&d, hdr + 8, 4);
	if (a != b || c != d)
		memcpy(p, hdr, VHDR);
}

/* The copy into a frontend's buffer: vcopy_out() for a burst (see vhost_tx), else vcopy(). */
static inline void copy_out(bool bulk, uint8_t *dst, const uint8_t *src, uint32_t n)
{
	if (bulk)
		vcopy_out(dst, src, n);
	else
		vcopy(dst, src, n);
}

/* The receive header of frame f: one buffer, and its checksum request when offered. */
static inline struct virtio_net_hdr_mrg_rxbuf rx_hdr(const struct vuser_buf *f, bool guest_csum)
{
	struct virtio_net_hdr_mrg_rxbuf h = { .num_buffers = 1 };

	if (guest_csum) {
		h.flags = f->vnet.flags;
		h.csum_start = f->vnet.csum_start;
		h.csum_offset = f->vnet.csum_offset;
	}
	return h;
}

/* Where we are in the source frame while filling receive chains. */
struct src_pos {
	const struct vuser_buf *seg;
	uint32_t off;
	uint32_t left;          /* bytes of the frame not yet copied */
	bool bulk;              /* part of a burst: large pieces go by vcopy_out() */
};

/*
 * Fill one receive chain from the header (first chain only) and the frame.
 * Returns bytes written, or -EPROTO. nb_ptr gets where num_buffers lives.
 */
static int fill_chain(struct vhq *r, struct walk *w, const uint8_t *hdr, uint32_t *hdr_left,
		      struct src_pos *src, uint8_t *nb_ptr[2], uint32_t hdr_len)
{
	struct vdseg s;
	uint32_t written = 0;
	int ret;

	while ((ret = walk_next(r, w, &s)) > 0) {
		uint8_t *p = s.p;
		uint32_t room = s.len;

		if (unlikely(!s.write))
			return ring_violation(r, "readable descriptor in a receive chain");
		if (*hdr_left == hdr_len && room >= VHDR) {
			/* The usual layout: the whole header in the first buffer. */
			put_hdr(p, hdr);
			nb_ptr[0] = p + offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers);
			nb_ptr[1] = nb_ptr[0] + 1;
			p += hdr_len;
			room -= hdr_len;
			written += hdr_len;
			*hdr_left = 0;
		}
		while (*hdr_left && room) {
			uint32_t at = hdr_len - *hdr_left;

			/* num_buffers may be split across tiny descriptors: remember each byte. */
			if (at == offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers))
				nb_ptr[0] = p;
			else if (at == offsetof(struct virtio_net_hdr_mrg_rxbuf, num_buffers) + 1)
				nb_ptr[1] = p;
			*p++ = hdr[at];
			(*hdr_left)--;
			room--;
			written++;
		}
		while (src->left && room) {
			uint32_t have = src->seg->data_len - src->off;
			uint32_t k = have < room ? have : room;

			if (!have) {
				src->seg = src->seg->next;
				src->off = 0;
				continue;
			}
			copy_out(src->bulk, p, vuser_buf_data(src->seg) + src->off, k);
			p += k;
			room -= k;
			written += k;
			src->off += k;
			src->left -= k;
		}
		if (!src->left && !*hdr_left)
			break;
	}
	/*
	 * Split: whatever we did not walk is not ours to judge until the
	 * frontend reuses it. Packed: the chain's id and length are at its end.
	 */
	if (ret > 0 && w->packed)
		ret = vdpwalk_finish(&r->pq, &w->p);
	return ret < 0 ? ret : (int)written;
}

/*
 * Four frames of one segment each into four one-descriptor receive chains,
 * found by vdsplit_batch() (at avail position at) or vdpacked_batch(), with
 * none of the general walk. Drivers post their receive buffers so (vuser's
 * port, DPDK's virtio PMD), each with room for the header and a whole
 * frame. Per frame the walk cost more than the copy of a small one: its
 * state, its checks one descriptor at a time, and on packed rings its calls
 * and a second read of the flags. False, having changed nothing, when
 * anything differs from that; the caller then goes frame by frame.
 */
static bool tx_batch(struct vhq *r, struct vuser_buf *const *b, uint16_t at, bool guest_csum,
		     bool bulk, uint64_t *bytes)
{
	struct vdseg seg[VD_BATCH];
	uint16_t id[VD_BATCH];
	uint32_t len[VD_BATCH];

	for (unsigned i = 0; i < VD_BATCH; i++) {
		const struct vuser_buf *f = b[i];

		if (f->next || f->data_len != f->pkt_len ||
		    (f->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM && !guest_csum))
			return false;
	}
	if (r->packed ? !vdpacked_batch(&r->pq, true, seg, id)
		      : !vdsplit_batch(&r->vq, at, true, seg, id))
		return false;
	for (unsigned i = 0; i < VD_BATCH; i++)
		if (seg[i].len < VHDR + b[i]->pkt_len)
			return false;
	for (unsigned i = 0; i < VD_BATCH; i++) {
		const struct vuser_buf *f = b[i];
		const struct virtio_net_hdr_mrg_rxbuf h = rx_hdr(f, guest_csum);

		put_hdr(seg[i].p, (const uint8_t *)&h);
		copy_out(bulk, seg[i].p + VHDR, vuser_buf_data(f), f->pkt_len);
		len[i] = VHDR + f->pkt_len;
		*bytes += f->pkt_len;
	}
	if (r->packed) {
		vdpacked_take_batch(&r->pq, id, len);
	} else {
		for (unsigned i = 0; i < VD_BATCH; i++)
			vdsplit_put_used(&r->vq, id[i], len[i]);
	}
	return true;
}

/*
 * Called when a receive burst found nothing: bring the frontend's next
 * receive buffer (its descriptor, and its first two lines for writing) into
 * this core's cache, so that the frame that arrives next can be answered
 * without waiting on those transfers. The frontend does not touch a buffer
 * it has made available, so nobody is robbed of a line it needs. A hint
 * only: nothing read here is trusted or kept.
 */
void vhost_warm_tx(struct vhq *r)
{
	uint64_t addr = 0;
	const uint8_t *p;

	if (unlikely(!enter(r)))
		return;
	if (r->packed) {
		if (vdpacked_avail(&r->pq))
			addr = packed_addr_ahead(&r->pq, 0);
	} else if (READ_ONCE(r->vq.avail->idx) != r->vq.last_avail) {
		addr = split_addr_ahead(&r->vq, 0);
	}
	p = addr ? vmem_gpa(r->packed ? r->pq.mem : r->vq.mem, addr, 128) : NULL;
	if (p) {
		vprefetch_w(p);
		vprefetch_w(p + 64);
	}
	leave(r);
}

int vhost_tx(struct vuser_vhost *v, struct vhq *r, struct vuser_buf **b, unsigned n)
{
	const bool mrg = v->features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	const bool guest_csum = v->features & BIT(VIRTIO_NET_F_GUEST_CSUM);
	const uint32_t hdr_len = VHDR;
	/*
	 * A call of a few frames is mostly a reply someone waits for (light
	 * load, a ping-pong): the plain copy into lines that vhost_warm_tx
	 * brought here answers sooner. A burst is bound by how fast lines can
	 * be written, where vcopy_out() is faster.
	 */
	const bool bulk = n >= VHOST_BULK_MIN;
	uint64_t bytes = 0, drops = 0;
	unsigned sent = 0, done = 0;
	uint16_t used = 0;
	int avail = 0;

	if (unlikely(!enter(r)))
		return 0;
	if (!r->packed) {
		avail = vdsplit_avail_atleast(&r->vq, n);
		if (unlikely(avail < 0))
			goto violation;
	}

	for (; done < n; done++) {
		struct vuser_buf *f = b[done];
		struct virtio_net_hdr_mrg_rxbuf h;
		struct src_pos src = { f, 0, f->pkt_len, bulk };
		uint32_t hdr_left = hdr_len;
		uint8_t *nb_ptr[2] = { NULL, NULL };
		/* Packed only: where to give this frame's chains back if it does not fit. */
		struct vdpacked_mark mark = { 0 };
		uint16_t nbufs = 0;

		/* Four at a time where the ring and the frames allow it. */
		if (n - done >= VD_BATCH && (r->packed || (int)used + VD_BATCH <= avail) &&
		    tx_batch(r, b + done, used, guest_csum, bulk, &bytes)) {
			done += VD_BATCH - 1;
			used += VD_BATCH;
			sent += VD_BATCH;
			continue;
		}
		if (f->vnet.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM && !guest_csum)
			csum_complete(f);
		h = rx_hdr(f, guest_csum);
		if (r->packed)
			mark = vdpacked_mark(&r->pq);
		while (src.left || hdr_left) {
			struct walk w;
			int head = 0, wl;

			if (!mrg && nbufs)
				break;
			if (r->packed) {
				if (!vdpacked_avail(&r->pq))
					break;
				w.packed = true;
				vdpwalk_start(&r->pq, &w.p, true);
			} else {
				if ((int)(used + nbufs) >= avail) {
					/* Merged frames may need more than the count read at the start. */
					avail = vdsplit_avail_atleast(&r->vq, used + nbufs + 1);
					if (unlikely(avail < 0))
						goto violation;
					if ((int)(used + nbufs) >= avail)
						break;
				}
				head = vdsplit_head(&r->vq, (uint16_t)(used + nbufs));
				if (unlikely(head < 0))
					goto violation;
				w.packed = false;
				vdwalk_start(&r->vq, (uint16_t)head, &w.s);
			}
			wl = fill_chain(r, &w, (const uint8_t *)&h, &hdr_left, &src, nb_ptr, hdr_len);
			if (unlikely(wl < 0))
				goto violation;
			if (r->packed)
				vdpacked_take(&r->pq, &w.p, (uint32_t)wl);
			else
				vdsplit_put_used(&r->vq, (uint16_t)head, (uint32_t)wl);
			nbufs++;
		}
		if (src.left || hdr_left) {
			/* Not enough room: take back this frame's entries, unpublished. */
			if (r->packed)
				vdpacked_rewind(&r->pq, mark);
			else
				vdsplit_unput(&r->vq, nbufs);
			if (!mrg && nbufs) {
				/* The buffer is too small for the frame: drop the frame, keep the buffer. */
				drops++;
				continue;
			}
			break;
		}
		/* The header went out saying one buffer: only a merged frame changes it. */
		if (nbufs != 1) {
			if (nb_ptr[0])
				*nb_ptr[0] = (uint8_t)nbufs;
			if (nb_ptr[1])
				*nb_ptr[1] = (uint8_t)(nbufs >> 8);
		}
		used += nbufs;
		bytes += f->pkt_len;
		sent++;
	}
	burst_done(r, used, sent, bytes, drops);
	/* Every frame taken, sent or dropped, back to its pool in one go. */
	vpool_put_chains(b, done);
	return (int)done;

violation:
	/* Frames not delivered stay the program's; entries not published are void. */
	leave(r);
	violate(v, r);
	stat_add(&r->st.packets, sent);
	vpool_put_chains(b, done);
	return (int)done;
}
