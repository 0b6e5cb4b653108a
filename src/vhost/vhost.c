/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost-user device: the socket, the session and every message a
 * virtio-net frontend sends. One table describes each request (its name,
 * payload size, fd count and whether it has a reply of its own); a message
 * that does not fit its row never reaches a handler. A frontend that breaks
 * a rule is cut off: its memory unmapped, its fds closed, the reason kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "base/compat.h"
#include "base/log.h"
#include "base/sock.h"
#include "vhost/dev.h"
#include "vuser/uapi/virtio_net.h"

#define BIT(n) (1ull << (n))
/* Once a message has started to arrive, the rest must follow within this. */
#define VHOST_MSG_TIMEOUT_MS 1000
#define VHOST_BACKOFF_MIN_MS 50
#define VHOST_BACKOFF_MAX_MS 2000

#define VHOST_PROTOCOL_FEATURES                                                         \
	(BIT(VHOST_USER_PROTOCOL_F_MQ) | BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK) |          \
	 BIT(VHOST_USER_PROTOCOL_F_CONFIG) | BIT(VHOST_USER_PROTOCOL_F_RESET_DEVICE) |   \
	 BIT(VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS) | BIT(VHOST_USER_PROTOCOL_F_STATUS))

/* What a handler tells the dispatcher. */
enum { MSG_OK = 0, MSG_REFUSED = 1, MSG_VIOLATION = -1 };

struct vmsg {
	struct vhost_user_hdr hdr;
	union vhost_user_payload p;
	int fds[VSOCK_MAX_FDS];
	int nfds;
	/* The reply, for requests that have one. */
	union vhost_user_payload reply;
	uint32_t reply_size;
	const char *why;      /* set with MSG_VIOLATION */
	struct vhq *ring;     /* the ring a RING_* request names, checked */
};

typedef int (*vmsg_handler)(struct vuser_vhost *v, struct vmsg *m);

/* Requests that name a ring by the first u32 of their payload. */
enum { RING_NONE, RING_ANY, RING_STOPPED };

struct vmsg_rule {
	const char *name;
	uint16_t min_size;
	uint16_t max_size;
	uint8_t min_fds;
	uint8_t max_fds;
	bool has_reply;
	uint64_t needs_protocol;   /* request only valid when this was negotiated */
	vmsg_handler handle;
	uint8_t ring;              /* RING_ANY: must name a ring; RING_STOPPED: a stopped one */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void close_fds(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close_fd(&fds[i]);
}

static int bad(struct vmsg *m, const char *why)
{
	m->why = why;
	return MSG_VIOLATION;
}

/* ------------------------------------------------------ quiescing rings */

static void ring_stop_datapath(struct vhq *r)
{
	vgate_close(&r->gate);
}

/* One barrier for all the rings: it may cost an interrupt on every core. */
static void rings_stop_datapath(struct vuser_vhost *v)
{
	for (unsigned i = 0; i < v->nrings; i++)
		vgate_shut(&v->rings[i].gate);
	vgate_sync();
	for (unsigned i = 0; i < v->nrings; i++)
		vgate_wait(&v->rings[i].gate);
}

static void ring_set_callfd(struct vhq *r, int fd)
{
	r->vq.callfd = fd;
	r->pq.callfd = fd;
}

/* The packed layout: descriptor ring, driver area, device area (2.7). */
static int ring_translate_packed(struct vuser_vhost *v, struct vhq *r, const char **why)
{
	const struct vhost_vring_addr *a = &r->addr;
	const bool event_idx = v->features & BIT(VIRTIO_RING_F_EVENT_IDX);
	const bool indirect = v->features & BIT(VIRTIO_RING_F_INDIRECT_DESC);
	void *desc, *driver, *device;
	int ret;

	if ((a->desc_user_addr & (VRING_DESC_ALIGN - 1)) || (a->avail_user_addr & 3) ||
	    (a->used_user_addr & 3)) {
		*why = "packed ring address misaligned";
		return -1;
	}
	desc = vmem_qva(&v->mem, a->desc_user_addr, vdpacked_desc_bytes(r->num));
	driver = vmem_qva(&v->mem, a->avail_user_addr, VDPACKED_EVENT_BYTES);
	device = vmem_qva(&v->mem, a->used_user_addr, VDPACKED_EVENT_BYTES);
	if (!desc || !driver || !device) {
		*why = "ring outside the frontend's memory or across regions";
		return -1;
	}
	ring_set_callfd(r, r->callfd);
	r->pq.in_order = v->features & BIT(VIRTIO_F_IN_ORDER);
	if (r->started) {
		vdpacked_remap(&r->pq, desc, driver, device, event_idx, indirect);
		return 0;
	}
	ret = vdpacked_init(&r->pq, &v->mem, desc, driver, device, r->num, r->base, event_idx,
			    indirect);
	if (ret == -ERANGE)
		*why = "packed ring base beyond the ring";
	else if (ret)
		*why = "no memory for the ring's used list";
	return ret ? -1 : 0;
}

/* Translate a started ring's addresses against the current memory table. */
static int ring_translate(struct vuser_vhost *v, struct vhq *r, const char **why)
{
	const struct vhost_vring_addr *a = &r->addr;
	void *desc, *avail, *used;

	if (!r->addr_set || !r->num) {
		*why = "ring kicked before its size and addresses were set";
		return -1;
	}
	if (!r->started)
		r->packed = v->features & BIT(VIRTIO_F_RING_PACKED);
	if (r->packed)
		return ring_translate_packed(v, r, why);
	if (r->num & (r->num - 1)) {
		*why = "split ring size not a power of two";
		return -1;
	}
	if ((a->desc_user_addr & (VRING_DESC_ALIGN - 1)) || (a->avail_user_addr & 1) ||
	    (a->used_user_addr & 3)) {
		*why = "ring address misaligned";
		return -1;
	}
	desc = vmem_qva(&v->mem, a->desc_user_addr, (uint64_t)r->num * sizeof(struct vring_desc));
	avail = vmem_qva(&v->mem, a->avail_user_addr, vdsplit_avail_bytes(r->num));
	used = vmem_qva(&v->mem, a->used_user_addr, vdsplit_used_bytes(r->num));
	if (!desc || !avail || !used) {
		*why = "ring outside the frontend's memory or across regions";
		return -1;
	}
	ring_set_callfd(r, r->callfd);
	/* A running ring keeps its place: only a (re)start begins at the base. */
	if (r->started)
		vdsplit_remap(&r->vq, desc, avail, used, v->features & BIT(VIRTIO_RING_F_EVENT_IDX),
			      v->features & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	else
		vdsplit_init(&r->vq, &v->mem, desc, avail, used, r->num, r->base,
			     v->features & BIT(VIRTIO_RING_F_EVENT_IDX),
			     v->features & BIT(VIRTIO_RING_F_INDIRECT_DESC));
	r->vq.in_order = v->features & BIT(VIRTIO_F_IN_ORDER);
	return 0;
}

/* Recompute which rings the datapath may use, and whether the device is ready. */
static void update_live(struct vuser_vhost *v)
{
	/*
	 * virtio-net enables queue pairs from the first one up, so the device
	 * moves frames exactly while pair 0 runs; a frontend tearing down
	 * stops pair 0 first, and no other queue may keep going after it.
	 */
	v->ready = v->connfd >= 0 && v->features_set && v->mem.n && v->rings[0].started &&
		   v->rings[0].enabled && v->rings[1].started && v->rings[1].enabled;
	for (unsigned i = 0; i < v->nrings; i++) {
		struct vhq *r = &v->rings[i];
		bool live = v->ready && r->started && r->enabled;

		ring_set_callfd(r, r->callfd);
		vgate_open(&r->gate, live);
	}
}

static void ring_reset(struct vhq *r)
{
	close_fd(&r->kickfd);
	close_fd(&r->callfd);
	close_fd(&r->errfd);
	r->num = 0;
	r->base = 0;
	r->addr_set = false;
	r->started = false;
	r->enabled = false;
	vtrial_init(&r->trial);
	ring_set_callfd(r, -1);
}

/* Forget the session: the next frontend starts from nothing. */
static void session_reset(struct vuser_vhost *v)
{
	rings_stop_datapath(v);
	for (unsigned i = 0; i < v->nrings; i++)
		ring_reset(&v->rings[i]);
	vmem_clear(&v->mem);
	v->features = 0;
	v->protocol = 0;
	v->status = 0;
	v->features_set = false;
	v->ready = false;
}

static void disconnect(struct vuser_vhost *v)
{
	if (v->connfd >= 0) {
		epoll_ctl(v->epfd, EPOLL_CTL_DEL, v->connfd, NULL);
		close_fd(&v->connfd);
	}
	session_reset(v);
	if (v->cfg.client) {
		v->backoff_ms = VHOST_BACKOFF_MIN_MS;
		v->next_connect = now_s() + v->backoff_ms / 1000.0;
	}
}

static void cut_off(struct vuser_vhost *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void cut_off(struct vuser_vhost *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->last_violation, sizeof(v->last_violation), fmt, ap);
	va_end(ap);
	v->violations++;
	vlog(VUSER_LOG_WARN, "vhost %s: frontend cut off: %s", v->cfg.path, v->last_violation);
	disconnect(v);
}

/* ------------------------------------------------------------- handlers */

static int h_get_features(struct vuser_vhost *v, struct vmsg *m)
{
	m->reply.u64 = v->features_offered;
	m->reply_size = sizeof(uint64_t);
	return MSG_OK;
}

static int h_set_features(struct vuser_vhost *v, struct vmsg *m)
{
	uint64_t f = m->p.u64;

	if (f & ~v->features_offered)
		return bad(m, "SET_FEATURES asks for features that were not offered");
	if (!(f & BIT(VIRTIO_F_VERSION_1)))
		return bad(m, "SET_FEATURES without VIRTIO_F_VERSION_1");
	for (unsigned i = 0; i < v->nrings; i++)
		if (v->rings[i].started && ((f ^ v->features) & BIT(VIRTIO_F_RING_PACKED)))
			return bad(m, "SET_FEATURES changes the ring layout under a running ring");
	rings_stop_datapath(v);
	v->features = f;
	v->features_set = true;
	v->hdr_len = sizeof(struct virtio_net_hdr_mrg_rxbuf);
	/* Without PROTOCOL_FEATURES rings start enabled (vhost-user.rst, "Ring states"). */
	if (!(f & BIT(VHOST_USER_F_PROTOCOL_FEATURES)))
		for (unsigned i = 0; i < v->nrings; i++)
			v->rings[i].enabled = true;
	/* Started rings pick up EVENT_IDX/INDIRECT from the new features. */
	for (unsigned i = 0; i < v->nrings; i++) {
		const char *why;

		if (v->rings[i].started && ring_translate(v, &v->rings[i], &why))
			return bad(m, why);
	}
	return MSG_OK;
}

static int h_set_owner(struct vuser_vhost *v, struct vmsg *m)
{
	(void)v;
	(void)m;
	return MSG_OK;
}

static int h_reset(struct vuser_vhost *v, struct vmsg *m)
{
	(void)m;
	session_reset(v);
	return MSG_OK;
}

static int h_get_protocol_features(struct vuser_vhost *v, struct vmsg *m)
{
	m->reply.u64 = v->protocol_offered;
	m->reply_size = sizeof(uint64_t);
	return MSG_OK;
}

static int h_set_protocol_features(struct vuser_vhost *v, struct vmsg *m)
{
	if (m->p.u64 & ~v->protocol_offered)
		return bad(m, "SET_PROTOCOL_FEATURES asks for features that were not offered");
	v->protocol = m->p.u64;
	return MSG_OK;
}

static int h_get_queue_num(struct vuser_vhost *v, struct vmsg *m)
{
	m->reply.u64 = v->cfg.queues;
	m->reply_size = sizeof(uint64_t);
	return MSG_OK;
}

/* After the memory changed, rings that run must be translated again. */
static int mem_changed(struct vuser_vhost *v, struct vmsg *m)
{
	for (unsigned i = 0; i < v->nrings; i++) {
		const char *why;

		if (v->rings[i].started && ring_translate(v, &v->rings[i], &why))
			return bad(m, why);
	}
	return MSG_OK;
}

static int add_region(struct vuser_vhost *v, struct vmsg *m,
		      const struct vhost_user_memory_region *reg, int *fd)
{
	static _Thread_local char why[128];
	int err = vmem_add(&v->mem, reg, *fd, why, sizeof(why));

	*fd = -1; /* vmem_add owns it now, success or not */
	return err ? bad(m, why) : MSG_OK;
}

static int h_set_mem_table(struct vuser_vhost *v, struct vmsg *m)
{
	const struct vhost_user_memory *mem = &m->p.memory;
	int ret;

	if (!mem->nregions || mem->nregions > VHOST_MEMORY_BASELINE_NREGIONS)
		return bad(m, "SET_MEM_TABLE with no regions or more than 8");
	if (m->hdr.size < VHOST_USER_MEM_SIZE(mem->nregions))
		return bad(m, "SET_MEM_TABLE shorter than its region count");
	if ((unsigned)m->nfds != mem->nregions)
		return bad(m, "SET_MEM_TABLE with a different number of fds than regions");
	rings_stop_datapath(v);
	vmem_clear(&v->mem);
	for (unsigned i = 0; i < mem->nregions; i++) {
		ret = add_region(v, m, &mem->regions[i], &m->fds[i]);
		if (ret)
			return ret;
	}
	return mem_changed(v, m);
}

static int h_get_max_mem_slots(struct vuser_vhost *v, struct vmsg *m)
{
	m->reply.u64 = v->mem.max;
	m->reply_size = sizeof(uint64_t);
	return MSG_OK;
}

static int h_add_mem_reg(struct vuser_vhost *v, struct vmsg *m)
{
	int ret;

	rings_stop_datapath(v);
	ret = add_region(v, m, &m->p.memreg.region, &m->fds[0]);
	return ret ? ret : mem_changed(v, m);
}

static int h_rem_mem_reg(struct vuser_vhost *v, struct vmsg *m)
{
	rings_stop_datapath(v);
	if (vmem_remove(&v->mem, &m->p.memreg.region))
		return bad(m, "REM_MEM_REG names no region that was added");
	return mem_changed(v, m);
}

static struct vhq *ring_of(struct vuser_vhost *v, uint32_t index)
{
	return index < v->nrings ? &v->rings[index] : NULL;
}

static int h_set_vring_num(struct vuser_vhost *v, struct vmsg *m)
{
	uint32_t num = m->p.state.num;

	(void)v;
	/* Split rings also need a power of two: judged when the ring starts. */
	if (!num || num > VIRTQ_MAX_SIZE)
		return bad(m, "size zero or above 32768");
	m->ring->num = num;
	return MSG_OK;
}

static int h_set_vring_base(struct vuser_vhost *v, struct vmsg *m)
{
	/*
	 * Packed rings: bits 0..14 the avail position, bit 15 its wrap counter,
	 * and a frontend may put the used ones in bits 16..31; with nothing in
	 * flight at a start they are the same, so the low half is what counts.
	 */
	if (!(v->features & BIT(VIRTIO_F_RING_PACKED)) && m->p.state.num > 0xffff)
		return bad(m, "base beyond a 16-bit index");
	m->ring->base = (uint16_t)m->p.state.num;
	return MSG_OK;
}

static int h_set_vring_addr(struct vuser_vhost *v, struct vmsg *m)
{
	(void)v;
	m->ring->addr = m->p.addr;
	m->ring->addr_set = true;
	return MSG_OK;
}

static int h_get_vring_base(struct vuser_vhost *v, struct vmsg *m)
{
	struct vhq *r = m->ring;

	(void)v;
	ring_stop_datapath(r);
	m->reply.state.index = m->p.state.index;
	if (!r->started)
		m->reply.state.num = r->base;
	else if (r->packed)
		m->reply.state.num = vdpacked_base(&r->pq);
	else
		m->reply.state.num = r->vq.last_avail;
	m->reply_size = sizeof(m->reply.state);
	/* The ring is stopped now (vhost-user.rst): it restarts on the next kick. */
	r->base = (uint16_t)m->reply.state.num;
	r->started = false;
	close_fd(&r->kickfd);
	return MSG_OK;
}

/* KICK, CALL and ERR carry the ring index, maybe a no-fd flag, and the fd. */
static int vring_fd(struct vuser_vhost *v, struct vmsg *m, struct vhq **rp, int *fd)
{
	uint64_t u = m->p.u64;
	bool nofd = u & VHOST_USER_VRING_NOFD_MASK;

	if (u & ~(uint64_t)(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK))
		return bad(m, "vring fd message with unknown bits set");
	*rp = ring_of(v, (uint32_t)(u & VHOST_USER_VRING_IDX_MASK));
	if (!*rp)
		return bad(m, "vring fd message for a ring that does not exist");
	if (nofd != (m->nfds == 0))
		return bad(m, "vring fd message whose fd count contradicts its no-fd flag");
	*fd = nofd ? -1 : m->fds[0];
	if (!nofd)
		m->fds[0] = -1;
	return MSG_OK;
}

static int h_set_vring_kick(struct vuser_vhost *v, struct vmsg *m)
{
	const char *why;
	struct vhq *r;
	int fd, ret;

	ret = vring_fd(v, m, &r, &fd);
	if (ret)
		return ret;
	ring_stop_datapath(r);
	close_fd(&r->kickfd);
	r->kickfd = fd;
	/* A kick on a running ring (a new fd) keeps its place; otherwise start at the base. */
	if (!v->mem.n) {
		r->started = false;
		return bad(m, "ring kicked before any memory was set");
	}
	if (ring_translate(v, r, &why)) {
		r->started = false;
		return bad(m, why);
	}
	r->started = true;
	return MSG_OK;
}

static int h_set_vring_call(struct vuser_vhost *v, struct vmsg *m)
{
	struct vhq *r;
	int fd, ret;

	ret = vring_fd(v, m, &r, &fd);
	if (ret)
		return ret;
	ring_stop_datapath(r);
	close_fd(&r->callfd);
	r->callfd = fd;
	return MSG_OK;
}

static int h_set_vring_err(struct vuser_vhost *v, struct vmsg *m)
{
	struct vhq *r;
	int fd, ret;

	ret = vring_fd(v, m, &r, &fd);
	if (ret)
		return ret;
	close_fd(&r->errfd);
	r->errfd = fd;
	return MSG_OK;
}

static int h_set_vring_enable(struct vuser_vhost *v, struct vmsg *m)
{
	struct vhq *r = m->ring;

	(void)v;
	if (m->p.state.num > 1)
		return bad(m, "SET_VRING_ENABLE with a value other than 0 or 1");
	if (!m->p.state.num)
		ring_stop_datapath(r);
	r->enabled = m->p.state.num;
	return MSG_OK;
}

static int h_set_status(struct vuser_vhost *v, struct vmsg *m)
{
	if (m->p.u64 > 0xff)
		return bad(m, "SET_STATUS beyond 8 bits");
	v->status = (uint8_t)m->p.u64;
	return MSG_OK;
}

static int h_get_status(struct vuser_vhost *v, struct vmsg *m)
{
	m->reply.u64 = v->status;
	m->reply_size = sizeof(uint64_t);
	return MSG_OK;
}

static int h_get_config(struct vuser_vhost *v, struct vmsg *m)
{
	const struct vhost_user_config *c = &m->p.config;
	struct virtio_net_config cfg = { .status = VIRTIO_NET_S_LINK_UP,
					 .max_virtqueue_pairs = (uint16_t)v->cfg.queues,
					 .mtu = 1500 };

	if (c->size > VHOST_USER_MAX_CONFIG_SIZE || c->offset > VHOST_USER_MAX_CONFIG_SIZE ||
	    c->offset + c->size > VHOST_USER_MAX_CONFIG_SIZE ||
	    m->hdr.size != offsetof(struct vhost_user_config, region) + c->size)
		return bad(m, "GET_CONFIG with an offset or size that does not fit");
	memcpy(cfg.mac, v->cfg.mac, 6);
	m->reply.config = *c;
	memset(m->reply.config.region, 0, c->size);
	if (c->offset < sizeof(cfg))
		memcpy(m->reply.config.region, (uint8_t *)&cfg + c->offset,
		       c->size < sizeof(cfg) - c->offset ? c->size : sizeof(cfg) - c->offset);
	m->reply_size = m->hdr.size;
	return MSG_OK;
}

/* Requests this device knows but does not take: refused, never followed. */
static int h_refuse(struct vuser_vhost *v, struct vmsg *m)
{
	(void)v;
	(void)m;
	return MSG_REFUSED;
}

#define P(f) BIT(VHOST_USER_PROTOCOL_F_##f)
#define U64 sizeof(uint64_t)
#define STATE sizeof(struct vhost_vring_state)
#define MEMREG sizeof(struct vhost_user_memory_single)

static const struct vmsg_rule rules[VHOST_USER_MAX] = {
	[VHOST_USER_GET_FEATURES] = { "GET_FEATURES", 0, 0, 0, 0, true, 0, h_get_features },
	[VHOST_USER_SET_FEATURES] = { "SET_FEATURES", U64, U64, 0, 0, false, 0, h_set_features },
	[VHOST_USER_SET_OWNER] = { "SET_OWNER", 0, 0, 0, 0, false, 0, h_set_owner },
	[VHOST_USER_RESET_OWNER] = { "RESET_OWNER", 0, 0, 0, 0, false, 0, h_reset },
	[VHOST_USER_SET_MEM_TABLE] = { "SET_MEM_TABLE", VHOST_USER_MEM_SIZE(1),
				       sizeof(struct vhost_user_memory), 1,
				       VHOST_MEMORY_BASELINE_NREGIONS, false, 0, h_set_mem_table },
	[VHOST_USER_SET_LOG_BASE] = { "SET_LOG_BASE", 0, 40, 0, 1, false, 0, h_refuse },
	[VHOST_USER_SET_LOG_FD] = { "SET_LOG_FD", 0, 8, 0, 1, false, 0, h_refuse },
	[VHOST_USER_SET_VRING_NUM] = { "SET_VRING_NUM", STATE, STATE, 0, 0, false, 0, h_set_vring_num,
				       RING_STOPPED },
	[VHOST_USER_SET_VRING_ADDR] = { "SET_VRING_ADDR", sizeof(struct vhost_vring_addr),
					sizeof(struct vhost_vring_addr), 0, 0, false, 0,
					h_set_vring_addr, RING_STOPPED },
	[VHOST_USER_SET_VRING_BASE] = { "SET_VRING_BASE", STATE, STATE, 0, 0, false, 0,
					h_set_vring_base, RING_STOPPED },
	[VHOST_USER_GET_VRING_BASE] = { "GET_VRING_BASE", STATE, STATE, 0, 0, true, 0,
					h_get_vring_base, RING_ANY },
	[VHOST_USER_SET_VRING_KICK] = { "SET_VRING_KICK", U64, U64, 0, 1, false, 0, h_set_vring_kick },
	[VHOST_USER_SET_VRING_CALL] = { "SET_VRING_CALL", U64, U64, 0, 1, false, 0, h_set_vring_call },
	[VHOST_USER_SET_VRING_ERR] = { "SET_VRING_ERR", U64, U64, 0, 1, false, 0, h_set_vring_err },
	[VHOST_USER_GET_PROTOCOL_FEATURES] = { "GET_PROTOCOL_FEATURES", 0, 0, 0, 0, true, 0,
					       h_get_protocol_features },
	[VHOST_USER_SET_PROTOCOL_FEATURES] = { "SET_PROTOCOL_FEATURES", U64, U64, 0, 0, false, 0,
					       h_set_protocol_features },
	[VHOST_USER_GET_QUEUE_NUM] = { "GET_QUEUE_NUM", 0, 0, 0, 0, true, P(MQ), h_get_queue_num },
	[VHOST_USER_SET_VRING_ENABLE] = { "SET_VRING_ENABLE", STATE, STATE, 0, 0, false, 0,
					  h_set_vring_enable, RING_ANY },
	[VHOST_USER_SEND_RARP] = { "SEND_RARP", 0, U64, 0, 0, false, 0, h_refuse },
	[VHOST_USER_NET_SET_MTU] = { "NET_SET_MTU", 0, U64, 0, 0, false, 0, h_refuse },
	[VHOST_USER_SET_BACKEND_REQ_FD] = { "SET_BACKEND_REQ_FD", 0, U64, 0, 1, false, 0, h_refuse },
	[VHOST_USER_SET_VRING_ENDIAN] = { "SET_VRING_ENDIAN", 0, STATE, 0, 0, false, 0, h_refuse },
	[VHOST_USER_GET_CONFIG] = { "GET_CONFIG", offsetof(struct vhost_user_config, region),
				    sizeof(struct vhost_user_config), 0, 0, true, P(CONFIG),
				    h_get_config },
	[VHOST_USER_SET_CONFIG] = { "SET_CONFIG", offsetof(struct vhost_user_config, region),
				    sizeof(struct vhost_user_config), 0, 0, false, P(CONFIG),
				    h_refuse },
	[VHOST_USER_RESET_DEVICE] = { "RESET_DEVICE", 0, 0, 0, 0, false, P(RESET_DEVICE), h_reset },
	[VHOST_USER_GET_MAX_MEM_SLOTS] = { "GET_MAX_MEM_SLOTS", 0, 0, 0, 0, true,
					   P(CONFIGURE_MEM_SLOTS), h_get_max_mem_slots },
	[VHOST_USER_ADD_MEM_REG] = { "ADD_MEM_REG", MEMREG, MEMREG, 1, 1, false,
				     P(CONFIGURE_MEM_SLOTS), h_add_mem_reg },
	[VHOST_USER_REM_MEM_REG] = { "REM_MEM_REG", MEMREG, MEMREG, 0, 1, false,
				     P(CONFIGURE_MEM_SLOTS), h_rem_mem_reg },
	[VHOST_USER_SET_STATUS] = { "SET_STATUS", U64, U64, 0, 0, false, P(STATUS), h_set_status },
	[VHOST_USER_GET_STATUS] = { "GET_STATUS", 0, 0, 0, 0, true, P(STATUS), h_get_status },
};

static const char *req_name(uint32_t req)
{
	return req < VHOST_USER_MAX && rules[req].name ? rules[req].name : "unknown request";
}

static int send_reply(struct vuser_vhost *v, const struct vmsg *m, const void *payload,
		      uint32_t size)
{
	uint8_t wire[VHOST_USER_HDR_SIZE + sizeof(union vhost_user_payload)];
	struct vhost_user_hdr h = { .request = m->hdr.request,
				    .flags = VHOST_USER_VERSION | VHOST_USER_REPLY_MASK,
				    .size = size };

	memcpy(wire, &h, VHOST_USER_HDR_SIZE);
	memcpy(wire + VHOST_USER_HDR_SIZE, payload, size);
	return vsock_send(v->connfd, wire, VHOST_USER_HDR_SIZE + size, NULL, 0);
}

/*
 * Read one message and act on it. Returns 0 when handled, 1 when there was
 * nothing to read, or -1 when the session is over (frontend gone or cut off).
 */
static int handle_one(struct vuser_vhost *v)
{
	struct vmsg m = { .nfds = 0 };
	const struct vmsg_rule *rule;
	struct pollfd pfd = { .fd = v->connfd, .events = POLLIN };
	bool want_ack;
	int err, ret;

	if (poll(&pfd, 1, 0) <= 0)
		return 1;
	err = vsock_recv(v->connfd, &m.hdr, VHOST_USER_HDR_SIZE, m.fds, &m.nfds, VSOCK_MAX_FDS,
			 VHOST_MSG_TIMEOUT_MS);
	if (err == -ECONNRESET && !m.nfds) {
		vlog(VUSER_LOG_INFO, "vhost %s: frontend closed the session", v->cfg.path);
		disconnect(v);
		return -1;
	}
	if (err) {
		close_fds(m.fds, m.nfds);
		cut_off(v, "reading a message header: %s",
			err == -EBADMSG ? "more than 8 fds" : strerror(-err));
		return -1;
	}
	rule = m.hdr.request < VHOST_USER_MAX ? &rules[m.hdr.request] : NULL;
	if ((m.hdr.flags & VHOST_USER_VERSION_MASK) != VHOST_USER_VERSION ||
	    (m.hdr.flags & VHOST_USER_REPLY_MASK)) {
		close_fds(m.fds, m.nfds);
		cut_off(v, "%s: bad flags 0x%x", req_name(m.hdr.request), m.hdr.flags);
		return -1;
	}
	if (m.hdr.size > sizeof(m.p)) {
		close_fds(m.fds, m.nfds);
		cut_off(v, "%s: oversized payload of %u bytes", req_name(m.hdr.request), m.hdr.size);
		return -1;
	}
	if (m.hdr.size) {
		int more = 0;

		err = vsock_recv(v->connfd, &m.p, m.hdr.size, m.fds + m.nfds, &more,
				 VSOCK_MAX_FDS - m.nfds, VHOST_MSG_TIMEOUT_MS);
		m.nfds += more;
		if (err) {
			close_fds(m.fds, m.nfds);
			cut_off(v, "%s: reading a %u-byte payload: %s", req_name(m.hdr.request),
				m.hdr.size, err == -ETIMEDOUT ? "truncated (timed out)" :
					    err == -ECONNRESET ? "truncated (connection closed)" :
									strerror(-err));
			return -1;
		}
	}
	if (!rule || !rule->handle) {
		close_fds(m.fds, m.nfds);
		cut_off(v, "unknown request %u", m.hdr.request);
		return -1;
	}
	if (m.hdr.size < rule->min_size || m.hdr.size > rule->max_size) {
		close_fds(m.fds, m.nfds);
		cut_off(v, "%s: payload of %u bytes, expected %u..%u", rule->name, m.hdr.size,
			rule->min_size, rule->max_size);
		return -1;
	}
	if (m.nfds < rule->min_fds || m.nfds > rule->max_fds) {
		close_fds(m.fds, m.nfds);
		cut_off(v, "%s: %d fds, expected %u..%u", rule->name, m.nfds, rule->min_fds,
			rule->max_fds);
		return -1;
	}
	vlog(VUSER_LOG_DEBUG, "vhost %s: %s size %u fds %d", v->cfg.path, rule->name, m.hdr.size,
	     m.nfds);
	/* Decided before the handler: a reset forgets REPLY_ACK but still owes its ack. */
	want_ack = (m.hdr.flags & VHOST_USER_NEED_REPLY_MASK) &&
		   (v->protocol & BIT(VHOST_USER_PROTOCOL_F_REPLY_ACK));
	if (rule->ring) {
		m.ring = ring_of(v, m.p.state.index);
		if (!m.ring) {
			close_fds(m.fds, m.nfds);
			cut_off(v, "%s: ring %u does not exist", rule->name, m.p.state.index);
			return -1;
		}
		if (rule->ring == RING_STOPPED && m.ring->started) {
			close_fds(m.fds, m.nfds);
			cut_off(v, "%s: ring %u is a running ring", rule->name, m.p.state.index);
			return -1;
		}
	}
	if (rule->needs_protocol && !(v->protocol & rule->needs_protocol))
		ret = MSG_REFUSED;
	else
		ret = rule->handle(v, &m);
	close_fds(m.fds, m.nfds);
	if (ret == MSG_VIOLATION) {
		cut_off(v, "%s: %s", rule->name, m.why);
		return -1;
	}
	update_live(v);
	if (rule->has_reply) {
		/* A request with a reply of its own that we refuse gets an empty one. */
		err = send_reply(v, &m, &m.reply, ret == MSG_OK ? m.reply_size : 0);
	} else if (want_ack) {
		uint64_t status = ret == MSG_OK ? 0 : 1;

		err = send_reply(v, &m, &status, sizeof(status));
	} else {
		err = 0;
	}
	if (ret == MSG_REFUSED)
		vlog(VUSER_LOG_INFO, "vhost %s: refused %s", v->cfg.path, rule->name);
	if (err) {
		disconnect(v);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------- connections */

static void attach(struct vuser_vhost *v, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };

	session_reset(v);
	v->connfd = fd;
	ev.data.fd = fd;
	epoll_ctl(v->epfd, EPOLL_CTL_ADD, fd, &ev);
	v->connections++;
}

static void accept_pending(struct vuser_vhost *v)
{
	int fd = accept4(v->listenfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	/* Blocking reads with a bounded poll are simpler than partial message state. */
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	/* The current frontend may have hung up without our noticing yet. */
	if (v->connfd >= 0 && vsock_peer_gone(v->connfd)) {
		vlog(VUSER_LOG_INFO, "vhost %s: frontend closed the session", v->cfg.path);
		disconnect(v);
	}
	if (v->connfd >= 0) {
		/* One frontend per socket: a second one learns at once, not by timeout. */
		vlog(VUSER_LOG_WARN, "vhost %s: refusing a second frontend", v->cfg.path);
		close(fd);
		return;
	}
	attach(v, fd);
}

static void try_connect(struct vuser_vhost *v)
{
	double t = now_s();
	int fd;

	if (t < v->next_connect)
		return;
	fd = vsock_connect(v->cfg.path);
	if (fd < 0) {
		v->backoff_ms = v->backoff_ms ? v->backoff_ms * 2 : VHOST_BACKOFF_MIN_MS;
		if (v->backoff_ms > VHOST_BACKOFF_MAX_MS)
			v->backoff_ms = VHOST_BACKOFF_MAX_MS;
		v->next_connect = t + v->backoff_ms / 1000.0;
		return;
	}
	v->backoff_ms = 0;
	attach(v, fd);
}

VUSER_API int vuser_vhost_process(struct vuser_vhost *v)
{
	bool was_ready;
	uint64_t drain;
	double start;

	if (!v)
		return verr(-EINVAL, "vuser_vhost_process: NULL vhost");
	was_ready = v->ready;
	/* Drain first: a wake-up that raced with the flag must not stay readable. */
	if (read(v->evfd, &drain, sizeof(drain)) < 0)
		drain = 0;
	if (__atomic_exchange_n(&v->violation_pending, 0, __ATOMIC_ACQ_REL)) {
		if (v->connfd >= 0)
			cut_off(v, "%s", v->datapath_why ? v->datapath_why : "ring violation");
	}
	/*
	 * Messages first: a session that ended is noticed before a new
	 * frontend is judged a second one. Bounded in count and time, so a
	 * frontend that floods or drips cannot keep the caller here.
	 */
	start = now_s();
	for (int i = 0; i < 64 && v->connfd >= 0 && now_s() - start < 0.1; i++)
		if (handle_one(v))
			break;
	if (v->listenfd >= 0)
		accept_pending(v);
	else if (v->connfd < 0)
		try_connect(v);
	return v->ready != was_ready;
}

VUSER_API int vuser_vhost_wait_ready(struct vuser_vhost *v, int timeout_ms)
{
	double end = now_s() + timeout_ms / 1000.0;

	if (!v)
		return verr(-EINVAL, "vuser_vhost_wait_ready: NULL vhost");
	for (;;) {
		struct pollfd pfd = { .fd = v->epfd, .events = POLLIN };
		double left;

		vuser_vhost_process(v);
		if (v->ready)
			return 1;
		left = end - now_s();
		if (left <= 0)
			return 0;
		/* Client mode has nothing to poll between attempts: wake up for them. */
		poll(&pfd, 1, left > 0.05 ? 50 : (int)(left * 1000) + 1);
	}
}

/* ----------------------------------------------------------- life cycle */

static int listen_on(struct vuser_vhost *v)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, err;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", v->cfg.path);
	/* A socket file left by a dead server would make bind fail; anything else stays. */
	if (lstat(v->cfg.path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return verr(-EEXIST, "path=%s: exists and is not a socket", v->cfg.path);
		unlink(v->cfg.path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return verr(-errno, "socket: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 4) < 0) {
		err = -errno;
		close(fd);
		return verr(err, "path=%s: cannot listen: %s", v->cfg.path, strerror(-err));
	}
	v->listenfd = fd;
	return 0;
}

static unsigned pool_size(const struct vuser_vhost_config *cfg)
{
	return cfg->pool ? cfg->pool : 4096 + cfg->queues * 2048;
}

VUSER_API int vuser_vhost_open_config(const struct vuser_vhost_config *cfg, struct vuser_vhost **out)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct vuser_vhost *v;
	int err;

	if (!cfg || !out)
		return verr(-EINVAL, "vuser_vhost_open_config: NULL argument");
	err = vuser_vhost_config_check(cfg);
	if (err)
		return err;
	vgate_setup();
	v = calloc(1, sizeof(*v));
	if (!v)
		return verr(-ENOMEM, "no memory for a vhost device");
	v->cfg = *cfg;
	v->listenfd = v->connfd = v->evfd = -1;
	v->arena.fd = -1;
	if (!cfg->mac_set) {
		if (getrandom(v->cfg.mac, 6, 0) != 6)
			memset(v->cfg.mac, 0x5a, 6);
		v->cfg.mac[0] = (uint8_t)((v->cfg.mac[0] & ~1u) | 2u);
	}
	vmem_init(&v->mem, cfg->mem_slots);
	v->features_offered = BIT(VIRTIO_F_VERSION_1) | BIT(VHOST_USER_F_PROTOCOL_FEATURES) |
			      BIT(VIRTIO_NET_F_MQ) | BIT(VIRTIO_NET_F_CSUM) |
			      BIT(VIRTIO_NET_F_GUEST_CSUM) | BIT(VIRTIO_NET_F_MAC) |
			      (cfg->mrg_rxbuf ? BIT(VIRTIO_NET_F_MRG_RXBUF) : 0) |
			      (cfg->in_order ? BIT(VIRTIO_F_IN_ORDER) : 0) |
			      (cfg->indirect ? BIT(VIRTIO_RING_F_INDIRECT_DESC) : 0) |
			      (cfg->event_idx ? BIT(VIRTIO_RING_F_EVENT_IDX) : 0) |
			      (cfg->packed_vq ? BIT(VIRTIO_F_RING_PACKED) : 0);
	v->protocol_offered = VHOST_PROTOCOL_FEATURES;
	v->nrings = 2 * cfg->queues;
	v->rings = aligned_alloc(64, v->nrings * sizeof(*v->rings));
	if (!v->rings) {
		err = verr(-ENOMEM, "no memory for %u rings", v->nrings);
		goto free_vhost;
	}
	memset(v->rings, 0, v->nrings * sizeof(*v->rings));
	for (unsigned i = 0; i < v->nrings; i++) {
		v->rings[i].kickfd = v->rings[i].callfd = v->rings[i].errfd = -1;
		vtrial_init(&v->rings[i].trial);
		ring_set_callfd(&v->rings[i], -1);
	}
	err = varena_create(&v->arena, vpool_mem_size(pool_size(cfg)) + 64, "vuser-vhost");
	if (err)
		goto free_rings;
	err = vpool_init(&v->pool, &v->arena, pool_size(cfg));
	if (err)
		goto free_arena;
	v->epfd = epoll_create1(EPOLL_CLOEXEC);
	v->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (v->epfd < 0 || v->evfd < 0) {
		err = verr(-errno, "epoll/eventfd: %s", strerror(errno));
		goto close_fds;
	}
	ev.data.fd = v->evfd;
	epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->evfd, &ev);
	if (!cfg->client) {
		err = listen_on(v);
		if (err)
			goto close_fds;
		ev.data.fd = v->listenfd;
		epoll_ctl(v->epfd, EPOLL_CTL_ADD, v->listenfd, &ev);
	} else {
		try_connect(v);
	}
	*out = v;
	return 0;

close_fds:
	close_fd(&v->epfd);
	close_fd(&v->evfd);
	vpool_destroy(&v->pool);
free_arena:
	varena_destroy(&v->arena);
free_rings:
	free(v->rings);
free_vhost:
	free(v);
	return err;
}

VUSER_API int vuser_vhost_open(const char *devargs, struct vuser_vhost **out)
{
	struct vuser_vhost_config cfg;
	int err;

	if (!out)
		return verr(-EINVAL, "vuser_vhost_open: NULL out");
	err = vuser_vhost_config_parse(devargs, &cfg);
	return err ? err : vuser_vhost_open_config(&cfg, out);
}

VUSER_API void vuser_vhost_close(struct vuser_vhost *v)
{
	if (!v)
		return;
	disconnect(v);
	if (v->listenfd >= 0) {
		close_fd(&v->listenfd);
		unlink(v->cfg.path);
	}
	close_fd(&v->epfd);
	close_fd(&v->evfd);
	vpool_destroy(&v->pool);
	varena_destroy(&v->arena);
	for (unsigned i = 0; i < v->nrings; i++)
		vdpacked_destroy(&v->rings[i].pq);
	free(v->rings);
	free(v);
}

VUSER_API int vuser_vhost_fd(struct vuser_vhost *v)
{
	return v ? v->epfd : verr(-EINVAL, "vuser_vhost_fd: NULL vhost");
}

VUSER_API int vuser_vhost_ready(struct vuser_vhost *v)
{
	return v ? v->ready : verr(-EINVAL, "vuser_vhost_ready: NULL vhost");
}

VUSER_API int vuser_vhost_info(struct vuser_vhost *v, struct vuser_vhost_info *info)
{
	if (!v || !info)
		return verr(-EINVAL, "vuser_vhost_info: NULL argument");
	memset(info, 0, sizeof(*info));
	info->features = v->features;
	info->protocol_features = v->protocol;
	info->queues = v->cfg.queues;
	info->mem_regions = v->mem.n;
	info->connections = v->connections;
	info->violations = v->violations;
	snprintf(info->last_violation, sizeof(info->last_violation), "%s", v->last_violation);
	info->connected = v->connfd >= 0;
	info->ready = v->ready;
	memcpy(info->mac, v->cfg.mac, 6);
	return 0;
}

VUSER_API int vuser_vhost_stats(struct vuser_vhost *v, struct vuser_port_stats *st)
{
	if (!v || !st)
		return verr(-EINVAL, "vuser_vhost_stats: NULL argument");
	memset(st, 0, sizeof(*st));
	st->nb_queues = v->cfg.queues;
	for (unsigned q = 0; q < v->cfg.queues; q++) {
		const struct vuser_queue_stats *rx = &v->rings[2 * q + 1].st;
		const struct vuser_queue_stats *tx = &v->rings[2 * q].st;

		st->rx[q] = (struct vuser_queue_stats){
			__atomic_load_n(&rx->packets, __ATOMIC_RELAXED),
			__atomic_load_n(&rx->bytes, __ATOMIC_RELAXED),
			__atomic_load_n(&rx->drops, __ATOMIC_RELAXED),
			__atomic_load_n(&rx->errors, __ATOMIC_RELAXED) };
		st->tx[q] = (struct vuser_queue_stats){
			__atomic_load_n(&tx->packets, __ATOMIC_RELAXED),
			__atomic_load_n(&tx->bytes, __ATOMIC_RELAXED),
			__atomic_load_n(&tx->drops, __ATOMIC_RELAXED),
			__atomic_load_n(&tx->errors, __ATOMIC_RELAXED) };
	}
	return 0;
}

VUSER_API int vuser_vhost_buf_alloc_bulk(struct vuser_vhost *v, struct vuser_buf **b, unsigned n)
{
	if (!vpool_get(&v->pool, b, n))
		return n ? -ENOBUFS : 0;
	for (unsigned i = 0; i < n; i++)
		vbuf_reset(b[i]);
	return 0;
}

VUSER_API int vuser_vhost_rx_burst(struct vuser_vhost *v, unsigned q, struct vuser_buf **b,
				   unsigned n)
{
	if (unlikely(q >= v->cfg.queues))
		return -EINVAL;
	int got = vhost_rx(v, &v->rings[2 * q + 1], b, n);

	/* Idle: get ready to answer, the likeliest thing to happen next. */
	if (!got)
		vhost_warm_tx(&v->rings[2 * q]);
	return got;
}

VUSER_API int vuser_vhost_tx_burst(struct vuser_vhost *v, unsigned q, struct vuser_buf **b,
				   unsigned n)
{
	if (unlikely(q >= v->cfg.queues))
		return -EINVAL;
	return vhost_tx(v, &v->rings[2 * q], b, n);
}
