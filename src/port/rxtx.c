/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The port's datapath: one call per burst, no syscall unless the backend asks
 * for a kick (never with notify=0), no lock, no allocation. Frames travel
 * with their virtio-net header in the buffer's headroom, so a single-segment
 * frame is a single descriptor.
 */
#include <errno.h>
#include <string.h>

#include "base/compat.h"
#include "base/log.h"
#include "port/port.h"
#include "vuser/uapi/virtio_net.h"

#define VPORT_BURST 64

/*
 * A burst runs inside the queue's gate (base/gate.h; port.c's queue_stop()
 * shuts it). A burst that finds the queue stopped leaves at once and moves
 * nothing.
 */
static inline bool enter(struct vport_queue *q)
{
	return vgate_enter(&q->gate);
}

/* Everything the burst wrote, counters included, is done before the control side may look. */
static inline void leave(struct vport_queue *q)
{
	vgate_leave(&q->gate);
}

static inline void stat_add(uint64_t *c, uint64_t v)
{
	/* Single writer per queue; the relaxed store lets stats readers run concurrently. */
	__atomic_store_n(c, *c + v, __ATOMIC_RELAXED);
}

/*
 * Make a burst's descriptors visible, and kick the backend if it asks. With
 * notify=0 the backend polls (it got no kick fd) and is never asked: the
 * full fence before its flags are read is the one wait for this burst's
 * stores to leave the core, and it is skipped.
 */
static inline void publish(const struct vuser_port *p, struct vport_queue *q)
{
	vring_publish(&q->vq);
	if (p->cfg.notify && vring_wants_kick(&q->vq))
		vport_kick(q);
}

static void rx_refill(struct vuser_port *p, struct vport_queue *q)
{
	struct vuser_buf *b[VPORT_BURST];
	bool posted = false;

	for (;;) {
		unsigned n = vring_free_descs(&q->vq);

		if (n > VPORT_BURST)
			n = VPORT_BURST;
		/*
		 * Refill in batches, since each publish costs a barrier, but never
		 * let a small ring run dry waiting for a batch.
		 */
		if (n < q->refill_min && !(n && !vring_inflight(&q->vq)))
			break;
		if (!vpool_get(&p->pool, b, n))
			break;
		vport_post_rx(p, q, b, n);
		posted = true;
	}
	if (posted)
		publish(p, q);
}

static inline void rx_drop(struct vuser_buf *m, uint64_t *drops)
{
	vpool_put_chains(&m, 1);
	(*drops)++;
}

VUSER_API int vuser_rx_burst(struct vuser_port *p, unsigned qi, struct vuser_buf **out, unsigned n)
{
	struct vuser_buf *segs[VPORT_BURST];
	uint32_t lens[VPORT_BURST];
	uint64_t bytes = 0, drops = 0, errors = 0;
	const unsigned hdr = p->hdr_len;
	struct vport_queue *q;
	unsigned nb = 0;

	if (unlikely(qi >= p->cfg.queues))
		return -EINVAL;
	q = &p->rxq[qi];
	if (unlikely(!enter(q)))
		return 0;

	while (nb < n) {
		unsigned want = n - nb < VPORT_BURST ? n - nb : VPORT_BURST;
		unsigned got = vring_take_used(&q->vq, segs, lens, want, true);

		if (!got)
			break;
		for (unsigned i = 0; i < got; i++) {
			struct vuser_buf *m = segs[i];
			uint32_t len = lens[i];

			if (!q->part_head) {
				const struct virtio_net_hdr_mrg_rxbuf *h =
					(const void *)(m->base + VUSER_BUF_HEADROOM - hdr);
				uint16_t nbufs = 1;

				if (unlikely(len < hdr)) {
					errors++;
					rx_drop(m, &drops);
					continue;
				}
				/*
				 * A device spreads a frame over more buffers only after
				 * filling each but the last (5.1.6.4.2): a buffer it did
				 * not fill holds a whole frame, and its header (whose
				 * other fields need offloads the port does not offer) is
				 * not worth a cache miss.
				 */
				if (p->mrg_rxbuf && len >= m->room - (VUSER_BUF_HEADROOM - hdr)) {
					/* Read once: the device could change it under us. */
					nbufs = READ_ONCE(h->num_buffers);
					if (unlikely(nbufs == 0 || nbufs > vring_size(&q->vq))) {
						errors++;
						rx_drop(m, &drops);
						continue;
					}
				}
				m->data_off = VUSER_BUF_HEADROOM;
				m->data_len = len - hdr;
				m->pkt_len = m->data_len;
				if (nbufs == 1) {
					bytes += m->pkt_len;
					out[nb++] = m;
					continue;
				}
				q->part_head = q->part_tail = m;
				q->part_left = (uint16_t)(nbufs - 1);
				continue;
			}
			/* Later buffers of a merged frame carry no header of their own. */
			m->data_off = VUSER_BUF_HEADROOM - hdr;
			m->data_len = len;
			q->part_tail->next = m;
			q->part_tail = m;
			q->part_head->pkt_len += len;
			q->part_head->nb_segs++;
			if (--q->part_left == 0) {
				bytes += q->part_head->pkt_len;
				out[nb++] = q->part_head;
				q->part_head = NULL;
			}
		}
		rx_refill(p, q);
		if (got < want)
			break;
	}
	if (nb) {
		stat_add(&q->st.packets, nb);
		stat_add(&q->st.bytes, bytes);
	}
	if (unlikely(drops | errors)) {
		stat_add(&q->st.drops, drops);
		stat_add(&q->st.errors, errors);
	}
	leave(q);
	return (int)nb;
}

/*
 * A frame the ring can ever carry: ours, with room for the header, lengths
 * in range, no more segments than the ring has descriptors. *len gets its
 * length.
 */
static inline bool tx_frame_ok(const struct vuser_port *p, const struct vport_queue *q,
			       const struct vuser_buf *m, unsigned hdr, uint64_t *len)
{
	const struct vuser_buf *s = m;
	unsigned k = 0;

	*len = 0;
	if (unlikely(m->data_off < hdr || m->nb_segs > vring_size(&q->vq)))
		return false;
	do {
		if (unlikely(s->pool != &p->pool || (uint64_t)s->data_off + s->data_len > s->room))
			return false;
		*len += s->data_len;
		k++;
		s = s->next;
	} while (s && k <= m->nb_segs);
	return !s && k == m->nb_segs;
}

/*
 * Take back what the device is done with. Returns how many descriptors that
 * freed.
 */
static unsigned tx_reclaim(struct vport_queue *q)
{
	struct vuser_buf *done[VPORT_BURST];
	unsigned before = vring_free_descs(&q->vq), got;

	do {
		got = vring_take_used(&q->vq, done, NULL, VPORT_BURST, false);
		if (got)
			vpool_put_chains(done, got);
	} while (got == VPORT_BURST);
	return vring_free_descs(&q->vq) - before;
}

/*
 * Give a frame its transmit header: all zero, since the port offers no
 * offload and num_buffers is zero on transmit (5.1.6.2). A device that reads
 * the header holds its line afterwards (DPDK's vhost asks for every
 * descriptor's first line), so a store there must take the line back on
 * every lap: the header is written only when it does not say zero already.
 * Looking costs a load, which waits for a transfer when the device wrote
 * the line, as on a buffer that came back from the receive ring: so only a
 * buffer this port last sent with its header at the same place is looked
 * at, and any other simply gets the store. What is sent is twelve zero
 * bytes either way; tx_hdr_off only picks the cheaper way to get there.
 */
static inline void tx_hdr(struct vuser_buf *m, unsigned hdr)
{
	uint8_t *h = vuser_buf_data(m) - hdr;
	uint64_t lo;
	uint32_t hi;

	/* The header is always the 12-byte one (VERSION_1): constant sizes inline. */
	_Static_assert(sizeof(struct virtio_net_hdr_mrg_rxbuf) == 12, "header size");
	if (m->tx_hdr_off == m->data_off) {
		memcpy(&lo, h, sizeof(lo));
		memcpy(&hi, h + sizeof(lo), sizeof(hi));
		if (!(lo | hi))
			return;
	}
	memset(h, 0, sizeof(struct virtio_net_hdr_mrg_rxbuf));
	m->tx_hdr_off = m->data_off;
}

VUSER_API int vuser_tx_burst(struct vuser_port *p, unsigned qi, struct vuser_buf **b, unsigned n)
{
	const unsigned hdr = p->hdr_len;
	uint64_t bytes = 0, drops = 0, pkts = 0;
	struct vport_queue *q;
	unsigned i = 0, room;
	bool reclaimed = false;

	if (unlikely(qi >= p->cfg.queues))
		return -EINVAL;
	q = &p->txq[qi];
	if (unlikely(!enter(q)))
		return 0;

	/* Frames are checked and given headers only as far as the ring has room. */
	room = vring_free_descs(&q->vq);
	vring_prefetch_tx(&q->vq, n < room ? n : room);
	if (!n)
		tx_reclaim(q);
	while (i < n) {
		unsigned j = i;
		bool bad = false;

		while (j < n) {
			uint64_t len;

			if (unlikely(!tx_frame_ok(p, q, b[j], hdr, &len))) {
				bad = true;
				break;
			}
			if (b[j]->nb_segs > room) {
				/*
				 * Sent frames are taken back only when their slots
				 * are needed (or when asked, with n == 0): the used
				 * entries are lines the device's core wrote, and
				 * fetching them on every burst puts a line transfer
				 * between the cores on each frame's way out.
				 */
				if (reclaimed)
					break;
				room += tx_reclaim(q);
				reclaimed = true;
				continue;
			}
			room -= b[j]->nb_segs;
			bytes += len;
			tx_hdr(b[j], hdr);
			j++;
		}
		if (j > i) {
			vring_post_tx(&q->vq, b + i, j - i, hdr);
			pkts += j - i;
			i = j;
		}
		if (!bad)
			break;
		/* Not a frame this port can send: consumed and counted, not queued. */
		vpool_put_chains(&b[i], 1);
		drops++;
		i++;
	}
	if (pkts) {
		publish(p, q);
		stat_add(&q->st.packets, pkts);
		stat_add(&q->st.bytes, bytes);
	}
	if (unlikely(drops))
		stat_add(&q->st.drops, drops);
	leave(q);
	return (int)i;
}
