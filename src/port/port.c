/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Port control: open (lay out the arena, then start the first session or
 * listen for one), sessions with a backend (negotiated from scratch each
 * time, torn down when the backend leaves), reconnection, the emulated
 * control queue, link state, statistics and close.
 *
 * A session's life: the transport connects (client) or accepts (server);
 * features, memory and rings are negotiated; the rings are laid out afresh
 * and the rx rings filled; the queue pairs the program asked for are
 * enabled; the link goes up and the datapath may run. When the backend
 * leaves, the datapath is stopped queue by queue, every buffer the rings
 * held goes back to the pool, and the port waits for the next backend
 * (server) or tries to reach it again with a bounded backoff (client).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "base/compat.h"
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
 * Client-mode reconnection: the first attempt this long after the backend
 * left, doubling after each failure up to the cap (the vhost device's client
 * mode uses the same bounds). A backend that restarts is usually back within
 * the first attempts; one that stays away costs an attempt every 2 s.
 */
#define VPORT_BACKOFF_MIN_MS 50
#define VPORT_BACKOFF_MAX_MS 2000
/* Backends turned away in one process() call while a session runs. */
#define VPORT_REFUSE_MAX 16

/*
 * Buffers per port: a full rx ring and a full tx ring per queue pair, plus
 * room for what a program holds between bursts.
 */
static unsigned pool_size(const struct vuser_port_config *cfg)
{
	return cfg->queues * cfg->queue_size * 2 + cfg->queues * 512 + 1024;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* ------------------------------------------------------ quiescing queues */

/* Stop the queue's bursts: after this no burst touches its ring (base/gate.h). */
static void queue_stop(struct vport_queue *q)
{
	vgate_close(&q->gate);
}

static void queue_go(struct vport_queue *q)
{
	vgate_open(&q->gate, true);
}

/* ------------------------------------------------------- queues and rings */

/* Bytes one ring may take: either layout, as the backend decides per session. */
static size_t ring_room(const struct vuser_port_config *cfg)
{
	size_t split = vring_mem_size(false, cfg->queue_size);
	size_t packed = vring_mem_size(true, cfg->queue_size);

	return valign_up(split > packed ? split : packed, VRING_MEM_ALIGN);
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
	q->mem = varena_carve(&p->arena, ring_room(&p->cfg), VRING_MEM_ALIGN);
	if (!q->mem)
		return verr(-ENOMEM, "arena too small for the rings");
	/*
	 * The same kick eventfd serves every session: the backend gets copies.
	 * No call eventfd: the port polls, and SET_VRING_CALL without one
	 * (VHOST_USER_VRING_NOFD_MASK) tells the backend not to signal, which
	 * spares it a barrier and a read of our flags on every burst. With
	 * notify=0 there is no kick eventfd either: SET_VRING_KICK without one
	 * tells the backend to poll.
	 */
	q->callfd = -1;
	q->kickfd = -1;
	if (!p->cfg.notify)
		return 0;
	q->kickfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->kickfd < 0)
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
	return ring_room(cfg) * 2 * cfg->queues + vpool_mem_size(pool_size(cfg)) + 64;
}

/*
 * Lay every ring out afresh in its room, in the layout and mode this
 * session negotiated: the device starts at index 0 with nothing posted.
 */
static int rings_layout(struct vuser_port *p)
{
	bool packed = p->features & BIT(VIRTIO_F_RING_PACKED);
	bool in_order = p->features & BIT(VIRTIO_F_IN_ORDER);
	unsigned size = p->cfg.queue_size;

	for (unsigned i = 0; i < 2 * p->cfg.queues; i++) {
		struct vport_queue *q = i & 1 ? &p->txq[i / 2] : &p->rxq[i / 2];

		vring_destroy(&q->vq);
		if (vring_init(&q->vq, packed, q->mem, size, in_order))
			return verr(-ENOMEM, "no memory for ring state");
		q->refill_min = size / 4 < 16 ? (uint16_t)(size / 4) : 16;
		if (!q->refill_min)
			q->refill_min = 1;
	}
	return 0;
}

/*
 * Take back everything the rings held (the datapath is stopped): every
 * posted buffer, a merged frame half received, and the ring's error count,
 * which lives in the ring and moves to the queue's counters.
 */
static void queue_release(struct vport_queue *q)
{
	uint64_t errs = *vring_errors(&q->vq);

	vring_release(&q->vq);
	if (q->part_head)
		vpool_put_chains(&q->part_head, 1);
	q->part_head = q->part_tail = NULL;
	q->part_left = 0;
	vring_destroy(&q->vq);
	memset(&q->vq, 0, sizeof(q->vq));
	if (errs)
		__atomic_store_n(&q->st.errors, q->st.errors + errs, __ATOMIC_RELAXED);
}

static int negotiate(struct vuser_port *p)
{
	const struct vbackend_ops *ops = p->be->ops;
	uint64_t want = VPORT_BASE_FEATURES;
	int err;

	/* Nothing carries over from an earlier backend. */
	p->backend_features = p->features = p->protocol_features = 0;
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
	/*
	 * VIRTIO_RING_F_EVENT_IDX is not asked for: it would move the device's
	 * kick wish off used->idx's cache line, which helps against vuser's
	 * vhost, but DPDK's vhost then does more work per burst and moves
	 * fewer frames (24.5 -> 23.0 Mpps at 64 bytes here).
	 */
	p->features = p->backend_features & want;
	/* A backend without packed rings gets split ones, which need a power of two. */
	if (!(p->features & BIT(VIRTIO_F_RING_PACKED)) &&
	    (p->cfg.queue_size & (p->cfg.queue_size - 1)))
		return verr(-ENOTSUP, "queue_size=%u: backend %s offers no packed rings, and split rings need a power of two",
			    p->cfg.queue_size, p->cfg.path);
	p->mrg_rxbuf = p->features & BIT(VIRTIO_NET_F_MRG_RXBUF);
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
		vport_post_rx(p, q, b, n);
		left -= n;
	}
	vring_publish(&q->vq);
	return 0;
}

/*
 * Enable the first n pairs at the backend and disable the rest. A queue
 * being disabled stops its datapath first; one being enabled moves frames
 * once the backend has it (and the link is up).
 */
static int enable_pairs(struct vuser_port *p, unsigned n)
{
	bool up = __atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE);

	for (unsigned q = 0; q < p->cfg.queues; q++) {
		bool on = q < n;
		int err;

		if (!on) {
			queue_stop(&p->rxq[q]);
			queue_stop(&p->txq[q]);
		}
		/* Without PROTOCOL_FEATURES rings start enabled and the message does not exist. */
		if (p->features & BIT(VHOST_USER_F_PROTOCOL_FEATURES)) {
			err = p->be->ops->set_vring_enable(p->be, vport_rx_ring(q), on);
			if (!err)
				err = p->be->ops->set_vring_enable(p->be, vport_tx_ring(q), on);
			if (err)
				return err;
		}
		p->rxq[q].enabled = p->txq[q].enabled = on;
		if (on && up) {
			queue_go(&p->rxq[q]);
			queue_go(&p->txq[q]);
		}
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
	/* The pairs the program asked for, in this session as in the last. */
	if (!err)
		err = enable_pairs(p, p->want_pairs);
	return err;
}

/* -------------------------------------------------------------- sessions */

static void link_set(struct vuser_port *p, int up)
{
	if (__atomic_load_n(&p->link_up, __ATOMIC_RELAXED) == up)
		return;
	__atomic_store_n(&p->link_up, up, __ATOMIC_RELEASE);
	p->link_changes++;
}

/* The transport has a fresh connection: watch it from the port's fd. */
static void session_watch(struct vuser_port *p)
{
	struct epoll_event ev = { .events = EPOLLIN };

	p->session_fd = p->be->ops->fd(p->be);
	ev.data.fd = p->session_fd;
	if (p->session_fd >= 0 && epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->session_fd, &ev) < 0)
		vlog(VUSER_LOG_WARN, "path=%s: epoll_ctl: %s", p->cfg.path, strerror(errno));
}

/*
 * Everything a backend set up goes, the rest stays: negotiate from scratch,
 * lay the rings out again, fill them, enable the pairs, link up.
 */
static int session_start(struct vuser_port *p)
{
	int err;

	err = negotiate(p);
	if (!err)
		err = rings_layout(p);
	if (!err)
		err = start(p);
	if (err)
		return err;
	p->connections++;
	link_set(p, 1);
	for (unsigned q = 0; q < p->cfg.queues; q++) {
		if (p->rxq[q].enabled) {
			queue_go(&p->rxq[q]);
			queue_go(&p->txq[q]);
		}
	}
	return 0;
}

/*
 * The session is over (the backend left, broke a rule, or the port is
 * closing): link down, every queue's datapath stopped, the connection
 * closed, every buffer back in the pool. Safe to call with no session.
 */
static void session_end(struct vuser_port *p)
{
	link_set(p, 0);
	for (unsigned q = 0; p->rxq && q < p->cfg.queues; q++) {
		queue_stop(&p->rxq[q]);
		queue_stop(&p->txq[q]);
	}
	if (p->session_fd >= 0)
		epoll_ctl(p->epfd, EPOLL_CTL_DEL, p->session_fd, NULL);
	p->session_fd = -1;
	if (p->be)
		p->be->ops->disconnect(p->be);
	for (unsigned q = 0; p->rxq && q < p->cfg.queues; q++) {
		queue_release(&p->rxq[q]);
		queue_release(&p->txq[q]);
		p->rxq[q].enabled = p->txq[q].enabled = false;
	}
	p->active_pairs = 0;
}

/* Client mode: when the next attempt is due, the timer makes the port's fd readable. */
static void timer_update(struct vuser_port *p)
{
	struct itimerspec its = { 0 };

	if (!p->cfg.server && p->cfg.reconnect && p->session_fd < 0) {
		/* 0 would disarm the timer: a due attempt is "1 ns after boot". */
		long long at = p->next_connect_ms > 0 ? p->next_connect_ms : 0;

		its.it_value.tv_sec = at / 1000;
		its.it_value.tv_nsec = (at % 1000) * 1000000 + 1;
	}
	if (timerfd_settime(p->timerfd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
		vlog(VUSER_LOG_WARN, "path=%s: timerfd_settime: %s", p->cfg.path, strerror(errno));
}

static void backoff_reset(struct vuser_port *p)
{
	p->backoff_ms = VPORT_BACKOFF_MIN_MS;
	p->next_connect_ms = now_ms() + p->backoff_ms;
}

/* Connect, or accept a waiting backend, and run a session's start on it. */
static int session_try(struct vuser_port *p)
{
	int err = p->be->ops->connect(p->be);

	if (err)
		return err;
	session_watch(p);
	err = session_start(p);
	if (err) {
		vlog(VUSER_LOG_WARN, "path=%s: no session with this backend: %s", p->cfg.path,
		     vuser_last_error());
		session_end(p);
		return err;
	}
	vlog(VUSER_LOG_INFO, "path=%s: backend connected (connection %llu): link up", p->cfg.path,
	     (unsigned long long)p->connections);
	return 0;
}

static void client_reconnect(struct vuser_port *p)
{
	long long t = now_ms();
	int err;

	if (t < p->next_connect_ms)
		return;
	err = session_try(p);
	if (!err) {
		p->backoff_ms = 0;
		return;
	}
	/* Never given up: the wait grows to its cap and stays there. */
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : VPORT_BACKOFF_MIN_MS;
	if (p->backoff_ms > VPORT_BACKOFF_MAX_MS)
		p->backoff_ms = VPORT_BACKOFF_MAX_MS;
	p->next_connect_ms = now_ms() + p->backoff_ms;
	vlog(VUSER_LOG_DEBUG, "path=%s: reconnect failed (%s); next attempt in %u ms", p->cfg.path,
	     strerror(-err), p->backoff_ms);
}

static void server_accept(struct vuser_port *p)
{
	if (p->session_fd >= 0) {
		/* One backend per port: a second one learns at once, not by timeout. */
		for (int i = 0; i < VPORT_REFUSE_MAX && p->be->ops->refuse(p->be); i++)
			vlog(VUSER_LOG_WARN, "path=%s: refusing a second backend", p->cfg.path);
		return;
	}
	session_try(p);
}

/* ------------------------------------------------------------ open, close */

/* Every resource, released in any state: fds start at -1, pointers at NULL. */
static void port_free(struct vuser_port *p)
{
	session_end(p);
	if (p->be)
		p->be->ops->destroy(p->be);
	vpool_destroy(&p->pool);
	queues_destroy(p);
	varena_destroy(&p->arena);
	close_fd(&p->timerfd);
	close_fd(&p->epfd);
	free(p);
}

static int control_fds(struct vuser_port *p)
{
	struct epoll_event ev = { .events = EPOLLIN };

	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0)
		return verr(-errno, "epoll_create1: %s", strerror(errno));
	p->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (p->timerfd < 0)
		return verr(-errno, "timerfd_create: %s", strerror(errno));
	ev.data.fd = p->timerfd;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->timerfd, &ev) < 0)
		return verr(-errno, "epoll_ctl: %s", strerror(errno));
	return 0;
}

VUSER_API int vuser_port_open_config(const struct vuser_port_config *cfg, struct vuser_port **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct vuser_port *p;
	int err;

	if (!cfg || !out)
		return verr(-EINVAL, "vuser_port_open_config: NULL argument");
	err = vuser_port_config_check(cfg);
	if (err)
		return err;
	vgate_setup();
	p = calloc(1, sizeof(*p));
	if (!p)
		return verr(-ENOMEM, "no memory for a port");
	p->cfg = *cfg;
	p->arena.fd = p->epfd = p->timerfd = p->session_fd = -1;
	if (cfg->mac_set)
		memcpy(p->mac, cfg->mac, 6);
	else
		random_mac(p->mac);
	/* VERSION_1 always carries num_buffers in the header (5.1.6). */
	p->hdr_len = sizeof(struct virtio_net_hdr_mrg_rxbuf);
	p->want_pairs = cfg->queues;

	err = varena_create(&p->arena, arena_size(cfg), "vuser-port");
	if (!err)
		err = queues_create(p);
	if (!err)
		err = vpool_init(&p->pool, &p->arena, pool_size(cfg));
	if (!err)
		err = control_fds(p);
	if (!err)
		err = vhost_user_create(cfg->path, cfg->server, &p->be);
	if (err)
		goto fail;
	if (cfg->server) {
		/* Nothing to wait for here: the link comes up when a backend connects. */
		ev.data.fd = p->be->ops->listen_fd(p->be);
		if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, ev.data.fd, &ev) < 0) {
			err = verr(-errno, "epoll_ctl: %s", strerror(errno));
			goto fail;
		}
	} else {
		/* The first backend must be there: a wrong path shows now, not as a link that never comes up. */
		err = p->be->ops->connect(p->be);
		if (err) {
			err = verr(err, "path=%s: cannot connect to the vhost-user socket: %s",
				   cfg->path, strerror(-err));
			goto fail;
		}
		session_watch(p);
		err = session_start(p);
		if (err)
			goto fail;
		/* The link starts up; changes count from here. */
		p->link_changes = 0;
	}
	timer_update(p);
	*out = p;
	return 0;

fail:
	port_free(p);
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

/* Tell a live backend the rings stop, so that it lets go of them cleanly. */
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
	port_free(p);
}

/* --------------------------------------------------------- control work */

VUSER_API int vuser_port_process(struct vuser_port *p)
{
	uint64_t changes, expired;

	if (!p)
		return verr(-EINVAL, "vuser_port_process: NULL port");
	changes = p->link_changes;
	/* Drained first: a due attempt is judged below, and the timer re-armed after. */
	if (read(p->timerfd, &expired, sizeof(expired)) < 0)
		expired = 0;
	/* A session that ended is noticed before a new backend is judged a second one. */
	if (p->session_fd >= 0 && p->be->ops->gone(p->be)) {
		const char *next = p->cfg.server ? "; waiting for the next backend"
				   : p->cfg.reconnect ? "; reconnecting" : "";

		vlog(VUSER_LOG_WARN, "path=%s: backend closed the connection: link down%s",
		     p->cfg.path, next);
		session_end(p);
		backoff_reset(p);
	}
	if (p->cfg.server)
		server_accept(p);
	else if (p->session_fd < 0 && p->cfg.reconnect)
		client_reconnect(p);
	timer_update(p);
	return p->link_changes != changes;
}

VUSER_API int vuser_port_wait_link(struct vuser_port *p, int timeout_ms)
{
	long long end = timeout_ms < 0 ? 0 : now_ms() + timeout_ms;

	if (!p)
		return verr(-EINVAL, "vuser_port_wait_link: NULL port");
	for (;;) {
		struct epoll_event ev;
		long long left;
		int wait = 100, err;

		err = vuser_port_process(p);
		if (err < 0)
			return err;
		if (__atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE))
			return 0;
		if (!p->cfg.server && !p->cfg.reconnect)
			return verr(-ENOTCONN, "path=%s: link down and reconnect=0: it stays down",
				    p->cfg.path);
		if (timeout_ms >= 0) {
			left = end - now_ms();
			if (left <= 0)
				return vnote(-ETIMEDOUT, "path=%s: no backend within %d ms",
					     p->cfg.path, timeout_ms);
			if (left < wait)
				wait = (int)left;
		}
		/*
		 * The port's fd turns readable for every event that matters; the
		 * slice only bounds how late a missed one would be seen.
		 */
		if (epoll_wait(p->epfd, &ev, 1, wait) < 0 && errno == EINTR)
			return vnote(-EINTR, "vuser_port_wait_link: interrupted by a signal");
	}
}

VUSER_API int vuser_port_link(struct vuser_port *p)
{
	if (!p)
		return verr(-EINVAL, "vuser_port_link: NULL port");
	return __atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE);
}

VUSER_API int vuser_port_fd(struct vuser_port *p)
{
	return p ? p->epfd : verr(-EINVAL, "vuser_port_fd: NULL port");
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
	/* With no backend the wish is kept: the next session starts with it. */
	if (!__atomic_load_n(&p->link_up, __ATOMIC_ACQUIRE)) {
		p->want_pairs = n;
		return 0;
	}
	if (ctrl_command(p, VIRTIO_NET_CTRL_MQ, VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET, &pairs,
			 sizeof(pairs)) != VIRTIO_NET_OK)
		return verr(-EIO, "set_queue_pairs %u: %s", n, vuser_last_error());
	p->want_pairs = n;
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
	info->connections = p->connections;
	info->link_changes = p->link_changes;
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
