/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port control: open (negotiate with the backend and lay out the arena),
 * the emulated control queue, link state, statistics and close.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/log.h"
#include "port/port.h"
#include "vuser/uapi/vhost_user.h"
#include "vuser/uapi/virtio_net.h"

#define BIT(n) (1ull << (n))

/*
 * Features the driver can use. CTRL_VQ, MAC and STATUS are emulated in the
 * port and never asked of the backend, as DPDK's virtio_user does.
 */
#define VPORT_BASE_FEATURES (BIT(VIRTIO_F_VERSION_1))
#define VPORT_PROTOCOL_FEATURES \
	(BIT(VHOST_USER_PROTOCOL_F_MQ) | BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) | \
	 BIT(VHOST_USER_PROTOCOL_F_STATUS))

/*
 * Buffers per port: a full rx ring and a full tx ring per queue pair, plus
 * room for what a program holds between bursts.
 */
static unsigned pool_size(const struct vuser_port_config *cfg)
{
	return cfg->queues * cfg->queue_size * 2 + cfg->queues * 512 + 1024;
}

void vport_kick(struct vport_queue *q)
{
	uint64_t one = 1;

	/* A failed kick is not fatal: the link check reports a dead backend. */
	if (write(q->kickfd, &one, sizeof(one)) < 0)
		q->st.errors++;
}

static void random_mac(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6) {
		uint64_t t = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;

		memcpy(mac, &t, 6);
	}
	mac[0] = (uint8_t)((mac[0] & ~1u) | 2u); /* unicast, locally administered */
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void queues_destroy(struct vuser_port *p)
{
	for (unsigned q = 0; p->rxq && q < p->cfg.queues; q++) {
		struct vport_queue *qs[2] = { &p->rxq[q], &p->txq[q] };

		for (int i = 0; i < 2; i++) {
			vring_destroy(&qs[i]->vq);
			close_fd(&qs[i]->kickfd);
			close_fd(&qs[i]->callfd);
		}
	}
	free(p->rxq);
	free(p->txq);
	p->rxq = p->txq = NULL;
}

static int queue_init(struct vuser_port *p, struct vport_queue *q)
{
	bool packed = p->features & BIT(VIRTIO_F_RING_PACKED);
	void *mem = varena_carve(&p->arena, vring_mem_size(packed, p->cfg.queue_size), VRING_MEM_ALIGN);

	if (!mem)
		return verr(-ENOMEM, "arena too small for the rings");
	if (vring_init(&q->vq, packed, mem, p->cfg.queue_size, p->features & BIT(VIRTIO_F_IN_ORDER)))
		return verr(-ENOMEM, "no memory for ring state");
	q->refill_min = p->cfg.queue_size / 4 < 16 ? (uint16_t)(p->cfg.queue_size / 4) : 16;
	if (!q->refill_min)
		q->refill_min = 1;
	q->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	q->callfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kickfd < 0 || q->callfd < 0)
		return verr(-errno, "eventfd: %s", strerror(errno));
	return 0;
}

static int queues_create(struct vuser_port *p)
{
	unsigned n = p->cfg.queues;

	p->rxq = aligned_alloc(64, n * sizeof(*p->rxq));
	p->txq = aligned_alloc(64, n * sizeof(*p->txq));
	if (!p->rxq || !p->txq) {
		free(p->rxq);
		free(p->txq);
		p->rxq = p->txq = NULL;
		return verr(-ENOMEM, "no memory for %u queue pairs", n);
	}
	memset(p->rxq, 0, n * sizeof(*p->rxq));
	memset(p->txq, 0, n * sizeof(*p->txq));
	for (unsigned q = 0; q < n; q++) {
		p->rxq[q].kickfd = p->rxq[q].callfd = -1;
		p->txq[q].kickfd = p->txq[q].callfd = -1;
	}
	for (unsigned q = 0; q < n; q++) {
		int err = queue_init(p, &p->rxq[q]);

		if (!err)
			err = queue_init(p, &p->txq[q]);
		if (err)
			return err;
	}
	return 0;
}

/* Size the arena for the rings and the pool before anything is carved. */
static size_t arena_size(const struct vuser_port_config *cfg)
{
	/* Room for either layout: packed_vq=1 still gets split rings from a backend without packed. */
	size_t split = vring_mem_size(false, cfg->queue_size), packed = vring_mem_size(true, cfg->queue_size);
	size_t ring = valign_up(split > packed ? split : packed, VRING_MEM_ALIGN);

	return ring * 2 * cfg->queues + vpool_mem_size(pool_size(cfg)) + 64;
}

static int negotiate(struct vuser_port *p)
{
	const struct vbackend_ops *ops = p->be->ops;
	uint64_t want = VPORT_BASE_FEATURES;
	int err;

	err = ops->set_owner(p->be);
	if (!err)
		err = ops->get_features(p->be, &p->backend_features);
	if (err)
		return err;
	if (!(p->backend_features & BIT(VIRTIO_F_VERSION_1)))
		return verr(-ENOTSUP, "backend %s does not offer VIRTIO_F_VERSION_1 (features 0x%llx)",
			    p->cfg.path, (unsigned long long)p->backend_features);
	if (p->backend_features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
		want |= BIT(VHOST_USER_F_PROTOCOL_FEATURES);
		err = ops->set_protocol_features(p->be, VPORT_PROTOCOL_FEATURES,
						 &p->protocol_features);
		if (err)
			return err;
	}
	if (p->cfg.queues > 1) {
		uint64_t max = 0;

		if (!(p->backend_features & BIT(VIRTIO_NET_F_MQ)) ||
		    !(p->protocol_features & BIT(VHOST_USER_PROTOCOL_F_MQ)))
			return verr(-ENOTSUP, "queues=%u: backend %s does not offer multi-queue",
				    p->cfg.queues, p->cfg.path);
		err = ops->get_queue_num(p->be, &max);
		if (err)
			return err;
		if (p->cfg.queues > max)
			return verr(-ERANGE, "queues=%u: backend %s supports %llu queue pairs",
				    p->cfg.queues, p->cfg.path, (unsigned long long)max);
		want |= BIT(VIRTIO_NET_F_MQ);
	}
	if (p->cfg.mrg_rxbuf)
		want |= BIT(VIRTIO_NET_F_MRG_RXBUF);
	if (p->cfg.in_order)
		want |= BIT(VIRTIO_F_IN_ORDER);
	if (p->cfg.packed_vq)
		want |= BIT(VIRTIO_F_RING_PACKED);
	p->features = p->backend_features & want;
	/* A backend without packed rings gets split ones, which need a power of two. */
	if (!(p->features & BIT(VIRTIO_F_RING_PACKED)) &&
	    (p->cfg.queue_size & (p->cfg.queue_size - 1)))
		return verr(-ENOTSUP, "queue_size=%u: backend %s offers no packed rings, and split rings need a power of two",
			    p->cfg.queue_size, p->cfg.path);
	p->mrg_rxbuf = p->features & BIT(VIRTIO_NET_F_MRG_RXBUF);
	/* VERSION_1 always carries num_buffers in the header (5.1.6). */
	p->hdr_len = sizeof(struct virtio_net_hdr_mrg_rxbuf);
	return ops->set_status(p->be, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
}

static int ring_setup(struct vuser_port *p, unsigned idx, struct vport_queue *q)
{
	const struct vbackend_ops *ops = p->be->ops;
	int err;

	uint64_t desc, avail, used;
	/* Packed rings start at index 0 with both wrap counters at 1 (bits 15 and 31). */
	unsigned base = q->vq.packed ? (1u << 15) | (1u << 31) : 0;

	vring_addrs(&q->vq, &desc, &avail, &used);
	err = ops->set_vring_num(p->be, idx, vring_size(&q->vq));
	if (!err)
		err = ops->set_vring_base(p->be, idx, base);
	if (!err)
		err = ops->set_vring_addr(p->be, idx, desc, avail, used);
	/* The backend takes the kick fd as the sign that a ring is ready: last. */
	if (!err)
		err = ops->set_vring_kick(p->be, idx, q->kickfd);
	return err;
}

static int rx_fill(struct vuser_port *p, struct vport_queue *q)
{
	struct vuser_buf *b[64];
	unsigned left = vring_free_descs(&q->vq);

	while (left) {
		unsigned n = left < 64 ? left : 64;

		if (!vpool_get(&p->pool, b, n))
			return verr(-ENOMEM, "buffer pool too small to fill the rx rings");
		for (unsigned i = 0; i < n; i++)
			vbuf_reset(b[i]);
		vring_post_rx(&q->vq, b, n, p->hdr_len);
		left -= n;
	}
	vring_publish(&q->vq);
	return 0;
}

static int enable_pairs(struct vuser_port *p, unsigned n)
{
	for (unsigned q = 0; q < p->cfg.queues; q++) {
		bool on = q < n;
		int err;

		/* Without PROTOCOL_FEATURES rings start enabled and the message does not exist. */
		if (p->features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
			err = p->be->ops->set_vring_enable(p->be, vport_rx_ring(q), on);
			if (!err)
				err = p->be->ops->set_vring_enable(p->be, vport_tx_ring(q), on);
			if (err)
				return err;
		}
		__atomic_store_n(&p->rxq[q].enabled, on, __ATOMIC_RELEASE);
		__atomic_store_n(&p->txq[q].enabled, on, __ATOMIC_RELEASE);
	}
	p->active_pairs = n;
	return 0;
}

static int start(struct vuser_port *p)
{
	const struct vbackend_ops *ops = p->be->ops;
	unsigned q;
	int err;

	/* CALL first for every ring: DPDK's vhost allocates its rings on it. */
	for (q = 0; q < p->cfg.queues; q++) {
		err = ops->set_vring_call(p->be, vport_rx_ring(q), p->rxq[q].callfd);
		if (!err)
			err = ops->set_vring_call(p->be, vport_tx_ring(q), p->txq[q].callfd);
		if (err)
			return err;
	}
	err = ops->set_features(p->be, p->features);
	if (!err)
		err = ops->set_status(p->be, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
						     VIRTIO_CONFIG_S_FEATURES_OK);
	if (!err)
		err = ops->set_mem_table(p->be, p->arena.fd, (uintptr_t)p->arena.base, p->arena.size);
	if (err)
		return err;
	for (q = 0; q < p->cfg.queues; q++) {
		err = rx_fill(p, &p->rxq[q]);
		if (!err)
			err = ring_setup(p, vport_rx_ring(q), &p->rxq[q]);
		if (!err)
			err = ring_setup(p, vport_tx_ring(q), &p->txq[q]);
		if (err)
			return err;
	}
	err = ops->set_status(p->be, VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
					     VIRTIO_CONFIG_S_FEATURES_OK | VIRTIO_CONFIG_S_DRIVER_OK);
	if (!err)
		err = enable_pairs(p, p->cfg.queues);
	return err;
}

VUSER_API int vuser_port_open_config(const struct vuser_port_config *cfg, struct vuser_port **out)
{
	struct vuser_port *p;
	int err;

	if (!cfg || !out)
		return verr(-EINVAL, "vuser_port_open_config: NULL argument");
	err = vuser_port_config_check(cfg);
	if (err)
		return err;
	p = calloc(1, sizeof(*p));
	if (!p)
		return verr(-ENOMEM, "no memory for a port");
	p->cfg = *cfg;
	p->arena.fd = -1;
	if (cfg->mac_set)
		memcpy(p->mac, cfg->mac, 6);
	else
		random_mac(p->mac);

	err = vhost_user_client_create(cfg->path, &p->be);
	if (err)
		goto free_port;
	err = negotiate(p);
	if (err)
		goto close_backend;
	err = varena_create(&p->arena, arena_size(cfg), "vuser-port");
	if (err)
		goto close_backend;
	err = queues_create(p);
	if (err)
		goto destroy_queues;
	err = vpool_init(&p->pool, &p->arena, pool_size(cfg));
	if (err)
		goto destroy_queues;
	err = start(p);
	if (err)
		goto destroy_pool;
	__atomic_store_n(&p->link_up, 1, __ATOMIC_RELEASE);
	*out = p;
	return 0;

destroy_pool:
	vpool_destroy(&p->pool);
destroy_queues:
	queues_destroy(p);
	varena_destroy(&p->arena);
close_backend:
	p->be->ops->destroy(p->be);
free_port:
	free(p);
	return err;
}

VUSER_API int vuser_port_open(const char *devargs, struct vuser_port **out)
{
	struct vuser_port_config cfg;
	int err;

	if (!out)
		return verr(-EINVAL, "vuser_port_open: NULL out");
	err = vuser_port_config_parse(devargs, &cfg);
	if (err)
		return err;
	return vuser_port_open_config(&cfg, out);
}

static void link_down(struct vuser_port *p)
{
	__atomic_store_n(&p->link_up, 0, __ATOMIC_RELEASE);
}

static void stop(struct vuser_port *p)
{
	const struct vbackend_ops *ops = p->be->ops;
	unsigned base;

	/* Best effort: a backend that fails here is dropped all the same. */
	if (enable_pairs(p, 0))
		return;
	for (unsigned r = 0; r < 2 * p->cfg.queues; r++)
		if (ops->get_vring_base(p->be, r, &base))
			return;
	ops->set_status(p->be, 0);
}

VUSER_API void vuser_port_close(struct vuser_port *p)
{
	if (!p)
		return;
	if (__atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE) && !p->be->ops->gone(p->be))
		stop(p);
	link_down(p);
	p->be->ops->destroy(p->be);
	vpool_destroy(&p->pool);
	queues_destroy(p);
	varena_destroy(&p->arena);
	free(p);
}

VUSER_API int vuser_port_process(struct vuser_port *p)
{
	if (!p)
		return verr(-EINVAL, "vuser_port_process: NULL port");
	if (__atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE) && p->be->ops->gone(p->be)) {
		link_down(p);
		vlog(VUSER_LOG_WARN, "path=%s: backend closed the connection: link down",
		     p->cfg.path);
		return 1;
	}
	return 0;
}

VUSER_API int vuser_port_link(struct vuser_port *p)
{
	if (!p)
		return verr(-EINVAL, "vuser_port_link: NULL port");
	vuser_port_process(p);
	return __atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE);
}

VUSER_API int vuser_port_fd(struct vuser_port *p)
{
	int fd;

	if (!p)
		return verr(-EINVAL, "vuser_port_fd: NULL port");
	fd = p->be->ops->fd(p->be);
	return fd >= 0 ? fd : verr(-ENOTCONN, "path=%s: no backend connection", p->cfg.path);
}

/*
 * The control queue, emulated: a command is handled here and turned into
 * vhost-user messages, as a device would have handled it.
 */
static uint8_t ctrl_command(struct vuser_port *p, uint8_t class, uint8_t cmd,
			    const void *data, size_t len)
{
	uint16_t pairs;

	if (class == VIRTIO_NET_CTRL_MQ && cmd == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET &&
	    len == sizeof(pairs)) {
		memcpy(&pairs, data, sizeof(pairs));
		if (pairs < VIRTIO_NET_CTRL_MQ_VQ_PAIRS_MIN || pairs > p->cfg.queues)
			return VIRTIO_NET_ERR;
		return enable_pairs(p, pairs) ? VIRTIO_NET_ERR : VIRTIO_NET_OK;
	}
	return VIRTIO_NET_ERR;
}

VUSER_API int vuser_port_set_queue_pairs(struct vuser_port *p, unsigned n)
{
	uint16_t pairs = (uint16_t)n;

	if (!p)
		return verr(-EINVAL, "vuser_port_set_queue_pairs: NULL port");
	if (!p->cfg.cq)
		return verr(-ENOTSUP, "set_queue_pairs needs the control queue (cq=1)");
	if (n < 1 || n > p->cfg.queues)
		return verr(-ERANGE, "set_queue_pairs: %u is outside 1..%u", n, p->cfg.queues);
	if (!__atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE))
		return verr(-ENOTCONN, "path=%s: link is down", p->cfg.path);
	if (ctrl_command(p, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs,
			 sizeof(pairs)) != VIRTIO_NET_OK)
		return verr(-EIO, "set_queue_pairs %u: %s", n, vuser_last_error());
	return 0;
}

VUSER_API int vuser_port_info(struct vuser_port *p, struct vuser_port_info *info)
{
	if (!p || !info)
		return verr(-EINVAL, "vuser_port_info: NULL argument");
	memset(info, 0, sizeof(*info));
	info->backend_features = p->backend_features;
	info->features = p->features;
	info->protocol_features = p->protocol_features;
	info->queues = p->cfg.queues;
	info->active_queues = p->active_pairs;
	info->queue_size = p->cfg.queue_size;
	info->nb_bufs = p->pool.nb;
	info->free_bufs = vpool_count_free(&p->pool);
	info->arena_size = p->arena.size;
	memcpy(info->mac, p->mac, 6);
	return 0;
}

static void stats_read(const struct vport_queue *q, struct vuser_queue_stats *s)
{
	s->packets = __atomic_load_n(&q->st.packets, __ATOMIC_RELAXED);
	s->bytes = __atomic_load_n(&q->st.bytes, __ATOMIC_RELAXED);
	s->drops = __atomic_load_n(&q->st.drops, __ATOMIC_RELAXED);
	s->errors = __atomic_load_n(&q->st.errors, __ATOMIC_RELAXED) +
		    __atomic_load_n(vring_errors(&q->vq), __ATOMIC_RELAXED);
}

VUSER_API int vuser_port_stats(struct vuser_port *p, struct vuser_port_stats *st)
{
	if (!p || !st)
		return verr(-EINVAL, "vuser_port_stats: NULL argument");
	memset(st, 0, sizeof(*st));
	st->nb_queues = p->cfg.queues;
	for (unsigned q = 0; q < p->cfg.queues; q++) {
		stats_read(&p->rxq[q], &st->rx[q]);
		stats_read(&p->txq[q], &st->tx[q]);
	}
	return 0;
}
