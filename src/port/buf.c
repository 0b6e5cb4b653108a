/* SPDX-License-Identifier: BSD-3-Clause */
/* The public buffer calls: thin layers over the port's pool. */
#include <errno.h>
#include <string.h>

#include "base/compat.h"
#include "base/log.h"
#include "port/port.h"

VUSER_API int vuser_buf_alloc_bulk(struct vuser_port *p, struct vuser_buf **b, unsigned n)
{
	if (!vpool_get(&p->pool, b, n))
		return n ? -ENOBUFS : 0;
	/*
	 * The program is about to write these frames, and the device's core
	 * read each buffer's first line when it last carried one: a store
	 * there must first take that line back. Asked for now, the transfers
	 * run side by side; left to the stores, each waits its turn at the
	 * head of the store buffer, and a burst's worth of them set the pace
	 * of the whole transmit path.
	 */
	for (unsigned i = 0; i < n; i++) {
		vbuf_reset(b[i]);
		vprefetch_w(vuser_buf_data(b[i]));
	}
	return 0;
}

VUSER_API struct vuser_buf *vuser_buf_alloc(struct vuser_port *p)
{
	struct vuser_buf *b = NULL;

	return vuser_buf_alloc_bulk(p, &b, 1) ? NULL : b;
}

VUSER_API void vuser_buf_free(struct vuser_buf *b)
{
	if (b)
		vpool_put_chains(&b, 1);
}

VUSER_API void vuser_buf_free_bulk(struct vuser_buf **b, unsigned n)
{
	vpool_put_chains(b, n);
}

static struct vuser_buf *last_seg(struct vuser_buf *b)
{
	while (b->next)
		b = b->next;
	return b;
}

VUSER_API uint8_t *vuser_buf_append(struct vuser_buf *b, uint32_t len)
{
	struct vuser_buf *t = last_seg(b), *s;
	uint8_t *room;

	if (vuser_buf_tailroom(t) >= len) {
		room = vuser_buf_data(t) + t->data_len;
		t->data_len += len;
		b->pkt_len += len;
		return room;
	}
	if (len > VUSER_BUF_DATAROOM || !vpool_get(b->pool, &s, 1))
		return NULL;
	vbuf_reset(s);
	s->data_len = len;
	t->next = s;
	b->nb_segs++;
	b->pkt_len += len;
	return vuser_buf_data(s);
}

VUSER_API int vuser_buf_write(struct vuser_buf *b, const void *src, uint32_t len)
{
	const uint8_t *from = src;
	struct vuser_buf *t = b;
	uint32_t left = len;

	for (;;) {
		uint32_t room = t->room - t->data_off;
		uint32_t k = left < room ? left : room;

		memcpy(vuser_buf_data(t), from, k);
		t->data_len = k;
		from += k;
		left -= k;
		if (!left)
			break;
		if (!vpool_get(b->pool, &t->next, 1)) {
			vuser_buf_free(b->next);
			vbuf_reset(b);
			return -ENOBUFS;
		}
		t = t->next;
		vbuf_reset(t);
		b->nb_segs++;
	}
	b->pkt_len = len;
	return 0;
}

VUSER_API uint32_t vuser_buf_read(const struct vuser_buf *b, uint32_t off, void *dst, uint32_t len)
{
	uint8_t *to = dst;
	uint32_t done = 0;

	for (const struct vuser_buf *s = b; s && done < len; s = s->next) {
		uint32_t k;

		if (off >= s->data_len) {
			off -= s->data_len;
			continue;
		}
		k = s->data_len - off;
		if (k > len - done)
			k = len - done;
		memcpy(to + done, vuser_buf_data(s) + off, k);
		done += k;
		off = 0;
	}
	return done;
}
