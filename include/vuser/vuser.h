/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vuser: virtio-user networking.
 *
 * A port (struct vuser_port) is the driver side of a virtio-net device whose
 * device is a vhost backend: a vhost-user server at the other end of a Unix
 * socket. Its rings and packet buffers live in one memfd-backed arena shared
 * with the backend, so transmitting a buffer copies nothing.
 *
 * Conventions
 * - Every function that can fail returns a negative errno (or NULL for the
 *   few that return pointers) and never sets errno. The reason for the last
 *   failure in the calling thread, in words, is vuser_last_error().
 * - The library owns no thread. Control calls (open, close, process,
 *   wait_link, set_queue_pairs, info, stats) are made from one thread at a
 *   time. Each queue's rx and tx bursts are made from one thread at a time
 *   (one thread may own several queues); different queues may run on
 *   different threads, and may be the control thread or not.
 * - Buffer alloc and free are safe from any thread. vuser_port_link() is
 *   safe from any thread.
 *
 * Backends that come and go (server=1, or a client that reconnects)
 * - The program must call vuser_port_process() when vuser_port_fd() turns
 *   readable (or now and then: every few milliseconds to a second, as it
 *   likes). Nothing else is needed: sessions start and end there.
 * - Datapath threads need not know: they may keep calling the bursts while
 *   the backend dies, leaves or comes back. While the link is down every
 *   burst returns 0 and touches no ring; the control side waits for a burst
 *   in progress to end before it takes the rings back, and never waits for
 *   one that has not started.
 * - When a session ends, frames in the rings are lost: buffers posted for
 *   receive and frames sent but not yet consumed by the backend go back to
 *   the pool. Buffers the program holds stay the program's.
 */
#ifndef VUSER_VUSER_H
#define VUSER_VUSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most queue pairs one port can have. */
#define VUSER_MAX_QUEUE_PAIRS 32
/* Bytes before a buffer's data on allocation; the virtio-net header uses 12. */
#define VUSER_BUF_HEADROOM 128
/* Bytes of data one buffer segment holds. Larger frames are chains. */
#define VUSER_BUF_DATAROOM 2048
/* Longest path a Unix socket address holds, with its NUL. */
#define VUSER_PATH_MAX 108
/* Longest interface name, with its NUL (names of up to 15 characters). */
#define VUSER_IFNAME_MAX 16

/* ---------------------------------------------------------------- errors */

/*
 * The message that explains the last failure reported by a vuser call in this
 * thread ("" when none). The string belongs to the library and stays valid
 * until the next vuser call in this thread.
 */
const char *vuser_last_error(void);

enum vuser_log_level { VUSER_LOG_ERR = 0, VUSER_LOG_WARN, VUSER_LOG_INFO, VUSER_LOG_DEBUG };

/*
 * Where the library's messages go. By default errors and warnings are written
 * to stderr as "vuser: <message>". fn == NULL silences the library; messages
 * above max_level are not formatted at all. Not thread-safe against concurrent
 * logging: set it once at start-up.
 */
typedef void (*vuser_log_fn)(enum vuser_log_level level, const char *msg, void *arg);
void vuser_set_log(vuser_log_fn fn, void *arg, enum vuser_log_level max_level);

/* --------------------------------------------------------- configuration */

/*
 * A port's configuration. The devargs string keys are DPDK virtio_user's:
 *   path=<socket>   the vhost-user socket (mandatory)
 *   mac=<xx:xx:xx:xx:xx:xx>  unicast MAC (default: a random local one)
 *   cq=<0|1>        control queue; on by default when queues > 1
 *   queue_size=<n>  descriptors per ring, 1..32768 (256); a power of two
 *                   unless packed rings are in use
 *   queues=<n>      queue pairs, 1..VUSER_MAX_QUEUE_PAIRS (1)
 *   iface=<name>    tap name for vhost-kernel (not supported yet)
 *   server=<0|1>    listen on path instead of connecting (0): open returns
 *                   at once with the link down; each backend that connects
 *                   gets a session of its own, one at a time
 *   reconnect=<0|1> client mode: when the backend goes away, connect again
 *                   by itself, 50 ms after it left and then with a backoff
 *                   doubling up to 2 s, for as long as the port is open (1);
 *                   0 leaves the link down for good. Needs server=0.
 *   mrg_rxbuf=<0|1> mergeable receive buffers (1)
 *   in_order=<0|1>  in-order use of descriptors (1)
 *   packed_vq=<0|1> ask for packed rings (0); split rings when the
 *                   backend offers no VIRTIO_F_RING_PACKED
 *   notify=<0|1>    kick the backend when it asks for it (1). 0: no kick
 *                   eventfd, which tells a vhost-user backend to poll the
 *                   rings (VHOST_USER_VRING_NOFD_MASK), and no kicks, so
 *                   each burst skips the full fence and the read of the
 *                   backend's flags that deciding on a kick takes. Only for
 *                   backends that poll: DPDK's vhost in polling mode
 *                   (OVS-DPDK, testpmd), vuser's vhost. One that sleeps on
 *                   its kick fd, as libvhost-user's do or DPDK's with
 *                   receive interrupts on, would never see a frame.
 * Strings are copied into the struct: it owns no memory.
 */
struct vuser_port_config {
	char path[VUSER_PATH_MAX];
	char iface[VUSER_IFNAME_MAX];
	uint8_t mac[6];
	bool mac_set;      /* false: a random locally administered MAC */
	bool cq;           /* a program filling the struct sets it for queues > 1 */
	bool cq_set;       /* cq was given explicitly (parse turns cq on otherwise) */
	bool server;
	bool reconnect;
	bool mrg_rxbuf;
	bool in_order;
	bool packed_vq;
	bool notify;
	unsigned queues;
	unsigned queue_size;
};

/* Fill *cfg (not NULL) with the defaults (no path). */
void vuser_port_config_init(struct vuser_port_config *cfg);

/*
 * Parse a devargs string ("path=/x.sock,queues=2") into *cfg (not NULL),
 * starting from the defaults. Returns 0, or -EINVAL (malformed, unknown or
 * repeated key, bad value), -ERANGE (number out of range), -ENAMETOOLONG
 * (path or iface) or -ENOTSUP (an option vuser does not support yet), with
 * vuser_last_error() naming the key and the value. On failure *cfg holds
 * the defaults and whatever was parsed before the bad item.
 */
int vuser_port_config_parse(const char *devargs, struct vuser_port_config *cfg);

/*
 * Check a configuration's values and their combinations, for programs that
 * fill the struct themselves. Same errors as vuser_port_config_parse().
 */
int vuser_port_config_check(const struct vuser_port_config *cfg);

/* ------------------------------------------------------------------ port */

struct vuser_port;

/*
 * Open a port: parse devargs, map the arena, then
 * - client mode (server=0): connect to the backend, negotiate, fill the rx
 *   rings and enable every queue pair; the link is up on return. The first
 *   backend must be there: -ENOENT/-ECONNREFUSED when it is not.
 * - server mode (server=1): bind and listen on path (a stale socket file
 *   there is replaced, anything else is not: -EEXIST) and return at once
 *   with the link down; see vuser_port_wait_link().
 * On success *out owns the port until vuser_port_close(). Returns 0 or a
 * negative errno: -EINVAL/-ERANGE/-ENAMETOOLONG/-ENOTSUP bad configuration
 * (see vuser_port_config_parse), -ENOENT/-ECONNREFUSED no backend, -EPROTO
 * a backend that broke the protocol, -ETIMEDOUT a backend that did not
 * answer within 5 s, -ENOMEM.
 */
int vuser_port_open(const char *devargs, struct vuser_port **out);
int vuser_port_open_config(const struct vuser_port_config *cfg, struct vuser_port **out);

/*
 * Stop the rings (disable, GET_VRING_BASE each), close the session, stop
 * listening (server mode: the socket file is removed) and free everything,
 * buffers included: any struct vuser_buf of this port still held by the
 * program is invalid afterwards. No burst may be running, nor start later.
 * p may be NULL.
 */
void vuser_port_close(struct vuser_port *p);

/*
 * 1 link up, 0 down, as of the last control call; -EINVAL for a NULL p.
 * A plain read, safe from any thread: noticing that a backend left, or
 * that a new one is there, is vuser_port_process()'s work.
 */
int vuser_port_link(struct vuser_port *p);

/*
 * A file descriptor that becomes readable when control work waits: the
 * backend closed its session (or spoke unasked), a backend is waiting to be
 * accepted (server mode), or a reconnection attempt is due (client mode).
 * The same fd for the port's life (an epoll fd: poll it for POLLIN or add
 * it to an epoll set). Owned by the port; do not close or read it.
 */
int vuser_port_fd(struct vuser_port *p);

/*
 * Do the waiting control work: notice a backend that left (link down, the
 * datapath stopped queue by queue, every buffer in the rings back in the
 * pool, the rings reset), accept the next backend (server mode) or try to
 * reconnect when the backoff has run out (client mode, reconnect=1), and
 * negotiate a new session from scratch (features, memory, rings, the queue
 * pairs last set with vuser_port_set_queue_pairs(), status). It does not
 * wait for anything but a connected backend's replies during a handshake
 * (each bounded by 5 s). A backend that fails the handshake is dropped and
 * logged, not returned as an error: the port goes on waiting or retrying.
 * Returns 1 if the link went down or came up (or both) during the call, 0
 * if not, or a negative errno. One thread at a time (a control call).
 */
int vuser_port_process(struct vuser_port *p);

/*
 * Call vuser_port_process() until the link is up, sleeping on the port's fd
 * in between, for at most timeout_ms (negative: no limit). Returns 0 when
 * the link is up, -ETIMEDOUT when the time ran out, -EINTR when a signal
 * interrupted the wait, -ENOTCONN at once when nothing can bring the link
 * back (client mode with reconnect=0), or another negative errno.
 */
int vuser_port_wait_link(struct vuser_port *p, int timeout_ms);

/*
 * The emulated control queue's VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET: use the first
 * n queue pairs (1..queues); the others are disabled at the backend, and
 * their bursts return 0 (a burst running on one is waited for). Needs cq.
 * The choice holds for every later session too; made while the link is
 * down, it waits for the next one. Returns 0 or a negative errno.
 */
int vuser_port_set_queue_pairs(struct vuser_port *p, unsigned n);

/* Features are those of the current session, or of the last one while the link is down. */
struct vuser_port_info {
	uint64_t backend_features;   /* what the backend offered */
	uint64_t features;           /* what was negotiated */
	uint64_t protocol_features;  /* negotiated vhost-user protocol features */
	unsigned queues;             /* queue pairs configured */
	unsigned active_queues;      /* queue pairs enabled now */
	unsigned queue_size;
	unsigned nb_bufs;            /* buffers in the port's pool */
	unsigned free_bufs;          /* of which free now (approximate) */
	size_t arena_size;           /* bytes of the shared arena */
	uint64_t connections;        /* sessions that reached link up since open */
	uint64_t link_changes;       /* times the link went down or up since open returned */
	uint8_t mac[6];
};
int vuser_port_info(struct vuser_port *p, struct vuser_port_info *info);

struct vuser_queue_stats {
	uint64_t packets;
	uint64_t bytes;
	uint64_t drops;    /* rx: frames dropped as malformed; tx: not sent */
	uint64_t errors;   /* device misbehaviour seen on this ring */
};

struct vuser_port_stats {
	unsigned nb_queues;
	struct vuser_queue_stats rx[VUSER_MAX_QUEUE_PAIRS];
	struct vuser_queue_stats tx[VUSER_MAX_QUEUE_PAIRS];
};
/* A snapshot of the per-queue counters (read while bursts run is fine). */
int vuser_port_stats(struct vuser_port *p, struct vuser_port_stats *st);

/* --------------------------------------------------------------- buffers */

/*
 * A packet buffer. The metadata lives in private memory; the data in the
 * port's shared arena. A frame larger than one segment is a chain linked by
 * `next`; the first segment holds pkt_len and nb_segs.
 * The program may read every field and write data_off, data_len, pkt_len,
 * nb_segs, next and vnet; the rest belongs to the library.
 */
/*
 * The offload part of a frame's virtio-net header (virtio 1.1, 5.1.6), kept
 * beside the frame: a vhost device fills it from what the frontend sent and
 * passes it on when the frontend negotiated the matching offload.
 */
struct vuser_net_hdr {
	uint8_t flags;          /* VIRTIO_NET_HDR_F_NEEDS_CSUM, _DATA_VALID */
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
};

struct vuser_buf {
	uint8_t *base;          /* start of the segment's room (headroom first) */
	uint16_t data_off;      /* data starts at base + data_off */
	uint16_t nb_segs;
	uint32_t data_len;      /* bytes of data in this segment */
	uint32_t pkt_len;       /* bytes of the whole frame (first segment) */
	uint32_t room;          /* bytes from base to the end of the segment */
	struct vuser_buf *next;
	struct vuser_pool *pool;
	uint64_t iova;          /* address of base as the backend knows it */
	struct vuser_net_hdr vnet; /* first segment; zero unless an offload is in use */
	uint16_t tx_hdr_off;    /* the library's: data_off when the port last sent it with a zero header */
};

static inline uint8_t *vuser_buf_data(const struct vuser_buf *b)
{
	return b->base + b->data_off;
}

static inline uint32_t vuser_buf_tailroom(const struct vuser_buf *b)
{
	return b->room - b->data_off - b->data_len;
}

/*
 * Take n buffers from the port's pool, each with data_off = headroom,
 * data_len = pkt_len = 0, nb_segs = 1. All or none: returns 0, or -ENOBUFS
 * and takes none. The program owns them until it frees or transmits them.
 */
int vuser_buf_alloc_bulk(struct vuser_port *p, struct vuser_buf **b, unsigned n);
struct vuser_buf *vuser_buf_alloc(struct vuser_port *p);

/* Return a whole chain to its pool. b may be NULL. */
void vuser_buf_free(struct vuser_buf *b);
void vuser_buf_free_bulk(struct vuser_buf **b, unsigned n);

/*
 * Append len bytes of room at the end of a frame, adding segments from the
 * pool when the last one is full. Returns a pointer to the room when it is
 * contiguous in the last segment, or NULL; use vuser_buf_write() for frames
 * that span segments.
 */
uint8_t *vuser_buf_append(struct vuser_buf *b, uint32_t len);

/*
 * Set a frame's length to len bytes copied from src, chaining segments as
 * needed. The frame must be a single fresh segment. Returns 0 or -ENOBUFS
 * (the frame is then left as one empty segment).
 */
int vuser_buf_write(struct vuser_buf *b, const void *src, uint32_t len);

/* Copy up to len bytes of a frame, from offset off, into dst. Returns bytes copied. */
uint32_t vuser_buf_read(const struct vuser_buf *b, uint32_t off, void *dst, uint32_t len);

/* -------------------------------------------------------------- datapath */

/*
 * Receive up to n frames from queue pair q into b[]. Returns how many (0 when
 * none, or when the link is down or the pair disabled), or -EINVAL for a bad
 * q. The program owns the returned buffers. No syscall, lock or allocation
 * on this path. Safe to call while another thread runs the control calls
 * (see "Backends that come and go" above).
 */
int vuser_rx_burst(struct vuser_port *p, unsigned q, struct vuser_buf **b, unsigned n);

/*
 * Send up to n frames on queue pair q. Returns how many the port took, or
 * -EINVAL for a bad q; the port owns those and frees them after the backend
 * is done, when a later call needs their ring slots: up to a ring's worth
 * of sent frames can be off the pool. A call with n == 0 frees every sent
 * frame the backend is done with. b[count..n-1] are still the program's
 * (the ring is full, or the link is down). A frame the port can never send
 * — not its own buffers, data_off < 12, a segment past its room, nb_segs
 * not matching the chain or larger than the ring — is taken, freed and
 * counted in the queue's tx drops rather than sent.
 */
int vuser_tx_burst(struct vuser_port *p, unsigned q, struct vuser_buf **b, unsigned n);

#ifdef __cplusplus
}
#endif

#endif
