/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * vuser-pmd: a testpmd for one vuser port (driver side, --port) or one vuser
 * vhost device (device side, --vhost). It forwards, generates or sinks
 * frames, and in echo mode verifies every frame that a peer sends back.
 * It uses the public API only.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vuser/vhost.h"
#include "vuser/vuser.h"

enum mode { M_TXONLY, M_RXONLY, M_IO, M_MACSWAP, M_ECHO, M_PINGPONG };
static const char *const mode_names[] = { "txonly", "rxonly", "io", "macswap", "echo",
					  "pingpong" };

#define MAX_BURST 512
#define MAX_FRAME 65535
/* Echo frames: Ethernet header, then this header, then a seq-derived pattern. */
#define ECHO_ETHERTYPE 0x88b5
#define ECHO_MAGIC 0x52535556u /* "VUSR" */
#define PROBE_MAGIC 0x45425250u /* "PRBE": not counted, see echo_probe() */
#define ECHO_HDR_OFF 14
#define ECHO_PAYLOAD_OFF (ECHO_HDR_OFF + 20)
#define ECHO_MIN_FRAME 60
/* Sequence numbers in flight are tracked in a bitmap ring this large. */
#define SEQ_BITS 22
#define SEQ_RING (1u << SEQ_BITS)
/*
 * Ping-pong keeps every round-trip time so that the median and the 99th
 * percentile are exact; past this many samples (a run of minutes) it stops
 * rather than grow without bound.
 */
#define RTT_MAX_SAMPLES (1u << 24)

struct opts {
	const char *devargs;
	bool vhost;              /* devargs name a vhost device, not a port */
	double wait_ready;       /* vhost: seconds to wait for a frontend */
	enum mode mode;
	uint32_t size_min, size_max;
	uint64_t count;          /* 0: no limit */
	double duration;         /* 0: no limit */
	unsigned burst;
	int cpu;                 /* -1: not pinned */
	double stats;            /* 0: no live line */
	bool json;
	unsigned window;         /* echo: frames in flight per queue, 0 = auto */
	unsigned drain_ms;
	unsigned active_queues;  /* 0: all */
	double warmup;           /* seconds left out of the rates and round-trip times */
};

struct qstate {
	uint64_t rx, tx;
	uint64_t probes_back;
	uint64_t rx_up;          /* frames received since the link last came up */
	unsigned inflight;
};

struct run {
	struct opts o;
	struct vuser_port *port;
	struct vuser_vhost *vhost;
	struct vuser_port_info info;
	unsigned nq;
	struct qstate q[VUSER_MAX_QUEUE_PAIRS];
	uint64_t tx_packets, rx_packets, tx_bytes, rx_bytes;
	uint64_t dropped, bad_payload, verified;
	uint64_t probes_sent, probes_back;
	uint64_t next_seq;
	uint64_t *seen;          /* echo: bitmap of sequence numbers in flight */
	uint32_t next_size;
	bool link;               /* as last seen by the loop */
	bool comes_back;         /* port: the link can come up again (server or reconnect) */
	bool probing;            /* echo: a new session, no probe back yet */
	uint64_t link_changes;   /* downs and ups seen since the run started */
	uint64_t connections;    /* sessions the library reports, as last seen */
	uint64_t lost_link_down; /* echo: frames in flight when the link went down */
	double next_probe;
	bool down_bursts_nonzero;
	double t_start, t_end;
	/* The rates cover [t_rate, t_end]: the counters as they were at t_rate. */
	double t_rate;
	uint64_t rate_tx0, rate_rx0;
	uint8_t peer_mac[6];
	/* pingpong */
	uint64_t *rtt;           /* round-trip times in ns, in arrival order */
	size_t rtt_n, rtt_cap;
	uint64_t late, timeouts;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Round trips take microseconds: whole nanoseconds, no rounding through a double. */
static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vuser-pmd --port DEVARGS | --vhost DEVARGS [options]\n"
		"  --port DEVARGS       driver side: path=/run/vhost.sock,queues=2 (keys as DPDK virtio_user)\n"
		"  --vhost DEVARGS      device side: path=/run/vhost.sock[,client=1,queues=N,...]\n"
		"  --wait-ready S       how long to wait for a frontend (--vhost) or a backend\n"
		"                       (--port with server=1) and, in echo mode, for the peer\n"
		"                       to return a first probe (default 60)\n"
		"  --mode MODE          txonly | rxonly | io | macswap | echo | pingpong (default io)\n"
		"                       pingpong: one verified frame in flight on queue 0; the\n"
		"                       round-trip times' median and 99th percentile are reported\n"
		"  --pkt-size N|MIN-MAX frame bytes without FCS, 60..65535 (default 64; echo 64-1518)\n"
		"  --count N            txonly/echo/pingpong: send N frames; others: stop after N received\n"
		"  --duration S         stop after S seconds\n"
		"  --warmup S           leave the first S seconds out of the rates (and round-trip times)\n"
		"  --burst N            frames per burst, 1..%d (default 32)\n"
		"  --cpu N              pin the datapath thread to core N\n"
		"  --stats S            print a live line to stderr every S seconds\n"
		"  --json               print one JSON summary object on stdout at the end\n"
		"  --window N           echo: frames in flight per queue (default: half an rx ring)\n"
		"  --drain-ms MS        echo: how long to wait for the last frames; pingpong: for\n"
		"                       each reply before it counts as a timeout (default 2000)\n"
		"  --active-queues N    use only the first N queue pairs (control queue MQ command)\n"
		"  --verbose            log the library's informational and debug messages\n"
		"A port with server=1 or reconnect=1 (the default) keeps running when its\n"
		"backend goes away and carries on when one is back; with server=0,reconnect=0\n"
		"the run ends when the link goes down.\n"
		"exit: 0 run completed, 1 port could not be opened, 2 usage error\n",
		MAX_BURST);
}

static void log_stderr(enum vuser_log_level level, const char *msg, void *arg)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };

	(void)arg;
	fprintf(stderr, "vuser %s: %s\n", names[level], msg);
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "wait-ready", required_argument, NULL, 'W' },
		{ "mode", required_argument, NULL, 'm' },
		{ "pkt-size", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'u' },
		{ "burst", required_argument, NULL, 'b' },
		{ "cpu", required_argument, NULL, 'c' },
		{ "stats", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },
		{ "window", required_argument, NULL, 'w' },
		{ "drain-ms", required_argument, NULL, 'D' },
		{ "active-queues", required_argument, NULL, 'A' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool size_given = false;
	uint64_t v, v2;
	char *end;
	int c;

	*o = (struct opts){ .mode = M_IO, .size_min = 64, .size_max = 64, .burst = 32,
			    .cpu = -1, .drain_ms = 2000, .wait_ready = 60 };
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'V':
			if (o->devargs) {
				fprintf(stderr, "vuser-pmd: give one of --port and --vhost, once\n");
				return -1;
			}
			o->devargs = optarg;
			o->vhost = c == 'V';
			break;
		case 'W': {
			double d = strtod(optarg, &end);

			if (*end || d <= 0) {
				fprintf(stderr, "vuser-pmd: --wait-ready %s: want a positive number of seconds\n",
					optarg);
				return -1;
			}
			o->wait_ready = d;
			break;
		}
		case 'm': {
			unsigned i;

			for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
				if (!strcmp(optarg, mode_names[i]))
					break;
			if (i == sizeof(mode_names) / sizeof(mode_names[0])) {
				fprintf(stderr, "vuser-pmd: --mode %s: not one of txonly, rxonly, io, macswap, echo, pingpong\n",
					optarg);
				return -1;
			}
			o->mode = (enum mode)i;
			break;
		}
		case 's': {
			char lo_s[32];
			const char *dash = strchr(optarg, '-');

			if (dash && (size_t)(dash - optarg) < sizeof(lo_s)) {
				memcpy(lo_s, optarg, (size_t)(dash - optarg));
				lo_s[dash - optarg] = 0;
				if (parse_u64(lo_s, &v) || parse_u64(dash + 1, &v2))
					goto bad_size;
			} else if (parse_u64(optarg, &v)) {
				goto bad_size;
			} else {
				v2 = v;
			}
			if (v < ECHO_MIN_FRAME || v2 > MAX_FRAME || v > v2)
				goto bad_size;
			o->size_min = (uint32_t)v;
			o->size_max = (uint32_t)v2;
			size_given = true;
			break;
bad_size:
			fprintf(stderr, "vuser-pmd: --pkt-size %s: want N or MIN-MAX within %d..%d\n",
				optarg, ECHO_MIN_FRAME, MAX_FRAME);
			return -1;
		}
		case 'n':
			if (parse_u64(optarg, &o->count)) {
				fprintf(stderr, "vuser-pmd: --count %s: not a number\n", optarg);
				return -1;
			}
			break;
		case 'd':
		case 'S': {
			double d = strtod(optarg, &end);

			if (*end || d <= 0) {
				fprintf(stderr, "vuser-pmd: --%s %s: want a positive number of seconds\n",
					c == 'd' ? "duration" : "stats", optarg);
				return -1;
			}
			*(c == 'd' ? &o->duration : &o->stats) = d;
			break;
		}
		case 'u': {
			double d = strtod(optarg, &end);

			if (*end || d < 0) {
				fprintf(stderr, "vuser-pmd: --warmup %s: want a number of seconds >= 0\n",
					optarg);
				return -1;
			}
			o->warmup = d;
			break;
		}
		case 'b':
			if (parse_u64(optarg, &v) || v < 1 || v > MAX_BURST) {
				fprintf(stderr, "vuser-pmd: --burst %s: want 1..%d\n", optarg, MAX_BURST);
				return -1;
			}
			o->burst = (unsigned)v;
			break;
		case 'c':
			if (parse_u64(optarg, &v) || v >= CPU_SETSIZE) {
				fprintf(stderr, "vuser-pmd: --cpu %s: not a core number\n", optarg);
				return -1;
			}
			o->cpu = (int)v;
			break;
		case 'j':
			o->json = true;
			break;
		case 'w':
			if (parse_u64(optarg, &v) || v < 1 || v > SEQ_RING / 4 / VUSER_MAX_QUEUE_PAIRS) {
				fprintf(stderr, "vuser-pmd: --window %s: want 1..%u\n", optarg,
					SEQ_RING / 4 / VUSER_MAX_QUEUE_PAIRS);
				return -1;
			}
			o->window = (unsigned)v;
			break;
		case 'D':
			if (parse_u64(optarg, &v) || v > 600000) {
				fprintf(stderr, "vuser-pmd: --drain-ms %s: want 0..600000\n", optarg);
				return -1;
			}
			o->drain_ms = (unsigned)v;
			break;
		case 'A':
			if (parse_u64(optarg, &v) || v < 1 || v > VUSER_MAX_QUEUE_PAIRS) {
				fprintf(stderr, "vuser-pmd: --active-queues %s: want 1..%d\n", optarg,
					VUSER_MAX_QUEUE_PAIRS);
				return -1;
			}
			o->active_queues = (unsigned)v;
			break;
		case 'v':
			vuser_set_log(log_stderr, NULL, VUSER_LOG_DEBUG);
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vuser-pmd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->vhost && o->active_queues) {
		fprintf(stderr, "vuser-pmd: --active-queues applies to --port only\n");
		return -1;
	}
	if (!o->devargs) {
		fprintf(stderr, "vuser-pmd: --port DEVARGS or --vhost DEVARGS is required\n");
		usage(stderr);
		return -1;
	}
	if (o->mode == M_ECHO && !size_given) {
		o->size_min = 64;
		o->size_max = 1518;
	}
	return 0;
}

/* ------------------------------------------------------------------ frames */

static uint32_t frame_size(struct run *r)
{
	uint32_t s = r->next_size;

	if (r->o.size_min == r->o.size_max)
		return s;
	/* Walk the range with a stride prime to its width: every size, spread out. */
	r->next_size += 211;
	if (r->next_size > r->o.size_max)
		r->next_size = r->o.size_min + (r->next_size - r->o.size_max - 1) % (r->o.size_max - r->o.size_min + 1);
	return s;
}

static void put_eth(uint8_t *f, const uint8_t dst[6], const uint8_t src[6], uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = (uint8_t)(type >> 8);
	f[13] = (uint8_t)type;
}

/*
 * The checksum: a 64-bit multiply-xor over 8-byte words (bytes for the tail),
 * so that verifying a frame costs little next to moving it.
 */
static uint64_t sum_step(uint64_t sum, uint64_t w)
{
	return (sum ^ w) * 0x100000001b3ull;
}

static uint32_t sum_final(uint64_t sum)
{
	return (uint32_t)(sum ^ (sum >> 32));
}

/* The payload pattern and its checksum both derive from seq: nothing is stored. */
static uint32_t echo_fill(uint8_t *p, uint32_t len, uint64_t seq)
{
	uint64_t x = seq * 0x9e3779b97f4a7c15ull + 1, sum = 0xcbf29ce484222325ull;
	uint32_t i = 0;

	for (; i + 8 <= len; i += 8) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		memcpy(p + i, &x, 8);
		sum = sum_step(sum, x);
	}
	for (; i < len; i++) {
		p[i] = (uint8_t)(x >> ((i & 7) * 8));
		sum = sum_step(sum, p[i]);
	}
	return sum_final(sum);
}

static uint32_t echo_sum(const uint8_t *p, uint32_t len)
{
	uint64_t sum = 0xcbf29ce484222325ull, w;
	uint32_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, p + i, 8);
		sum = sum_step(sum, w);
	}
	for (; i < len; i++)
		sum = sum_step(sum, p[i]);
	return sum_final(sum);
}

/*
 * Write a frame from the template: small frames in 32-byte moves the
 * compiler inlines (as testpmd's txonly does with rte_memcpy), larger ones
 * through memcpy.
 */
static inline void copy_frame(uint8_t *restrict d, const uint8_t *restrict s, uint32_t len)
{
	if (len > 128 || len < 32) {
		memcpy(d, s, len);
		return;
	}
	for (uint32_t off = 0; off + 32 <= len; off += 32)
		memcpy(d + off, s + off, 32);
	memcpy(d + len - 32, s + len - 32, 32);
}

static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int build_echo(struct run *r, struct vuser_buf *b, uint64_t seq, uint8_t *scratch)
{
	uint32_t len = frame_size(r);
	uint32_t sum;

	put_eth(scratch, r->peer_mac, r->info.mac, ECHO_ETHERTYPE);
	sum = echo_fill(scratch + ECHO_PAYLOAD_OFF, len - ECHO_PAYLOAD_OFF, seq);
	wr32(scratch + ECHO_HDR_OFF, ECHO_MAGIC);
	wr64(scratch + ECHO_HDR_OFF + 4, seq);
	wr32(scratch + ECHO_HDR_OFF + 12, len);
	wr32(scratch + ECHO_HDR_OFF + 16, sum);
	return vuser_buf_write(b, scratch, len);
}

static bool seen_test_clear(struct run *r, uint64_t seq)
{
	uint64_t bit = seq & (SEQ_RING - 1);
	uint64_t mask = 1ull << (bit & 63);

	if (!(r->seen[bit >> 6] & mask))
		return false;
	r->seen[bit >> 6] &= ~mask;
	return true;
}

static void seen_set(struct run *r, uint64_t seq)
{
	uint64_t bit = seq & (SEQ_RING - 1);

	r->seen[bit >> 6] |= 1ull << (bit & 63);
}

/*
 * Check one returned frame: known seq in flight, intact length and payload.
 * *seq_out gets its sequence number when it passes.
 */
static bool verify_echo(struct run *r, const struct vuser_buf *b, uint8_t *scratch,
			uint64_t *seq_out)
{
	const uint8_t *f = vuser_buf_data(b);
	uint32_t len = b->pkt_len;
	uint64_t seq;

	if (len < ECHO_MIN_FRAME || len > MAX_FRAME)
		return false;
	if (b->nb_segs > 1) {
		if (vuser_buf_read(b, 0, scratch, len) != len)
			return false;
		f = scratch;
	}
	/* io returns frames as they were; macswap swaps the addresses. */
	if (memcmp(f + 6, r->info.mac, 6) && memcmp(f, r->info.mac, 6))
		return false;
	if (f[12] != (ECHO_ETHERTYPE >> 8) || f[13] != (ECHO_ETHERTYPE & 0xff) ||
	    rd32(f + ECHO_HDR_OFF) != ECHO_MAGIC || rd32(f + ECHO_HDR_OFF + 12) != len)
		return false;
	seq = rd64(f + ECHO_HDR_OFF + 4);
	if (seq >= r->next_seq || r->next_seq - seq >= SEQ_RING / 2)
		return false;
	if (echo_sum(f + ECHO_PAYLOAD_OFF, len - ECHO_PAYLOAD_OFF) != rd32(f + ECHO_HDR_OFF + 16))
		return false;
	*seq_out = seq;
	return seen_test_clear(r, seq);
}

static bool is_probe(const struct vuser_buf *b)
{
	const uint8_t *f = vuser_buf_data(b);

	return b->data_len >= ECHO_MIN_FRAME && f[12] == (ECHO_ETHERTYPE >> 8) &&
	       f[13] == (ECHO_ETHERTYPE & 0xff) && rd32(f + ECHO_HDR_OFF) == PROBE_MAGIC;
}

/* Set the IPv4 and UDP lengths and the IPv4 header checksum for a frame of len bytes. */
static void set_lengths(uint8_t *t, uint32_t len)
{
	uint32_t sum = 0;

	t[16] = (uint8_t)((len - 14) >> 8);
	t[17] = (uint8_t)(len - 14);
	t[38] = (uint8_t)((len - 34) >> 8);
	t[39] = (uint8_t)(len - 34);
	t[24] = t[25] = 0;
	for (int i = 14; i < 34; i += 2)
		sum += (uint32_t)t[i] << 8 | t[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	t[24] = (uint8_t)(~sum >> 8);
	t[25] = (uint8_t)~sum;
}

/* A plain UDP/IPv4 frame, as testpmd's txonly sends (UDP checksum 0: none). */
static void build_template(uint8_t *t, const uint8_t *src, const uint8_t *dst, uint32_t len)
{
	static const uint8_t ip_udp[28] = {
		0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2,
		0x04, 0xd2, 0x16, 0x2e, 0, 0, 0, 0,
	};

	memset(t, 0, len);
	put_eth(t, dst, src, 0x0800);
	memcpy(t + 14, ip_udp, sizeof(ip_udp));
	set_lengths(t, len);
}

/* --------------------------------------------------------------- datapath */

/* The two roles behind one set of calls. */
static int ep_alloc(struct run *r, struct vuser_buf **b, unsigned n)
{
	return r->vhost ? vuser_vhost_buf_alloc_bulk(r->vhost, b, n)
			: vuser_buf_alloc_bulk(r->port, b, n);
}

static int ep_rx(struct run *r, unsigned q, struct vuser_buf **b, unsigned n)
{
	return r->vhost ? vuser_vhost_rx_burst(r->vhost, q, b, n) : vuser_rx_burst(r->port, q, b, n);
}

static int ep_tx(struct run *r, unsigned q, struct vuser_buf **b, unsigned n)
{
	return r->vhost ? vuser_vhost_tx_burst(r->vhost, q, b, n) : vuser_tx_burst(r->port, q, b, n);
}

/*
 * 1 when frames can move. Also does the waiting control work, and says how
 * many sessions the library has seen (a backend can leave and the next one
 * arrive within one call).
 */
static int ep_link(struct run *r, uint64_t *connections)
{
	if (r->vhost) {
		struct vuser_vhost_info vi;

		vuser_vhost_process(r->vhost);
		vuser_vhost_info(r->vhost, &vi);
		*connections = vi.connections;
		return vuser_vhost_ready(r->vhost);
	}
	vuser_port_process(r->port);
	vuser_port_info(r->port, &r->info);
	*connections = r->info.connections;
	return vuser_port_link(r->port);
}

/* Nothing moves while the link is down: sleep on the control fd instead of spinning. */
static void ep_idle(struct run *r, int ms)
{
	struct pollfd pfd = { .events = POLLIN };

	pfd.fd = r->vhost ? vuser_vhost_fd(r->vhost) : vuser_port_fd(r->port);
	if (pfd.fd >= 0)
		poll(&pfd, 1, ms);
}

static void ep_stats(struct run *r, struct vuser_port_stats *st)
{
	if (r->vhost)
		vuser_vhost_stats(r->vhost, st);
	else
		vuser_port_stats(r->port, st);
}

static void ep_close(struct run *r)
{
	vuser_port_close(r->port);
	vuser_vhost_close(r->vhost);
}

static void check_bursts_after_down(struct run *r)
{
	struct vuser_buf *b[32];

	/* The contract: with the link down, bursts move nothing. */
	for (unsigned q = 0; q < r->nq; q++) {
		if (ep_rx(r, q, b, 32) != 0)
			r->down_bursts_nonzero = true;
		if (!ep_alloc(r, b, 1)) {
			b[0]->data_len = b[0]->pkt_len = 64;
			if (ep_tx(r, q, b, 1) != 0)
				r->down_bursts_nonzero = true;
			else
				vuser_buf_free(b[0]);
		}
	}
}

static void do_tx(struct run *r, unsigned q, unsigned n, uint8_t *scratch)
{
	struct vuser_buf *b[MAX_BURST];
	int sent;

	if (!n || ep_alloc(r, b, n))
		return;
	for (unsigned i = 0; i < n; i++) {
		if (r->o.mode == M_ECHO) {
			if (build_echo(r, b[i], r->next_seq + i, scratch)) {
				vuser_buf_free_bulk(b + i, n - i);
				n = i;
				break;
			}
		} else {
			uint32_t len = frame_size(r);

			/* Frames of mixed sizes each carry their own lengths. */
			if (r->o.size_min != r->o.size_max)
				set_lengths(scratch, len);
			if (len <= vuser_buf_tailroom(b[i])) {
				copy_frame(vuser_buf_data(b[i]), scratch, len);
				b[i]->data_len = b[i]->pkt_len = len;
			} else if (vuser_buf_write(b[i], scratch, len)) {
				vuser_buf_free_bulk(b + i, n - i);
				n = i;
				break;
			}
		}
	}
	sent = ep_tx(r, q, b, n);
	if (sent < 0)
		sent = 0;
	for (int i = 0; i < sent; i++)
		r->tx_bytes += b[i]->pkt_len;
	if (r->o.mode == M_ECHO) {
		for (int i = 0; i < sent; i++)
			seen_set(r, r->next_seq + (uint64_t)i);
		r->next_seq += (uint64_t)sent;
		r->q[q].inflight += (unsigned)sent;
		/* Unsent echo frames are rebuilt next time with the same numbers. */
		vuser_buf_free_bulk(b + sent, n - (unsigned)sent);
	} else if ((unsigned)sent < n) {
		r->dropped += n - (unsigned)sent;
		vuser_buf_free_bulk(b + sent, n - (unsigned)sent);
	}
	r->tx_packets += (uint64_t)sent;
	r->q[q].tx += (uint64_t)sent;
}

static void do_rx(struct run *r, unsigned q, uint8_t *scratch)
{
	struct vuser_buf *b[MAX_BURST];
	int n = ep_rx(r, q, b, r->o.burst);

	if (n <= 0)
		return;
	r->rx_packets += (uint64_t)n;
	r->q[q].rx += (uint64_t)n;
	r->q[q].rx_up += (uint64_t)n;
	for (int i = 0; i < n; i++)
		r->rx_bytes += b[i]->pkt_len;

	switch (r->o.mode) {
	case M_ECHO:
		for (int i = 0; i < n; i++) {
			if (is_probe(b[i])) {
				/* A late answer to a probe: not part of the count. */
				r->probes_back++;
				r->q[q].probes_back++;
				r->rx_packets--;
				r->q[q].rx--;
				r->q[q].rx_up--;
				r->rx_bytes -= b[i]->pkt_len;
				/* The peer of a new session forwards: counted frames may go. */
				r->probing = false;
				continue;
			}
			uint64_t seq;

			if (verify_echo(r, b[i], scratch, &seq)) {
				r->verified++;
				if (r->q[q].inflight)
					r->q[q].inflight--;
			} else {
				r->bad_payload++;
			}
		}
		vuser_buf_free_bulk(b, (unsigned)n);
		break;
	case M_MACSWAP:
		for (int i = 0; i < n; i++) {
			uint8_t *f = vuser_buf_data(b[i]), t[6];

			if (b[i]->data_len < 12)
				continue;
			memcpy(t, f, 6);
			memcpy(f, f + 6, 6);
			memcpy(f + 6, t, 6);
		}
		/* fall through */
	case M_IO: {
		int sent = ep_tx(r, q, b, (unsigned)n);

		if (sent < 0)
			sent = 0;
		for (int i = 0; i < sent; i++)
			r->tx_bytes += b[i]->pkt_len;
		r->tx_packets += (uint64_t)sent;
		r->q[q].tx += (uint64_t)sent;
		if (sent < n) {
			r->dropped += (uint64_t)(n - sent);
			vuser_buf_free_bulk(b + sent, (unsigned)(n - sent));
		}
		break;
	}
	default:
		vuser_buf_free_bulk(b, (unsigned)n);
	}
}

static void since_up(const struct run *r, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = 0;
	for (unsigned q = 0; q < r->nq && len < size; q++)
		len += (size_t)snprintf(buf + len, size - len, "%s%" PRIu64, q ? "/" : "",
					r->q[q].rx_up);
}

/*
 * One line per period. The link state comes with the number of times it
 * changed, and "since up" gives each queue's frames received since the link
 * last came up, so that a reader can tell traffic resumed on every queue.
 */
static void live_line(struct run *r, double t, double dt, uint64_t dtx, uint64_t drx)
{
	char up[VUSER_MAX_QUEUE_PAIRS * 21];

	since_up(r, up, sizeof(up));
	fprintf(stderr,
		"[%7.1fs] link %-4s changes %" PRIu64 " tx %8.3f Mpps rx %8.3f Mpps | sent %" PRIu64
		" recv %" PRIu64 " verified %" PRIu64 " dropped %" PRIu64 " bad %" PRIu64
		" | since up: rx %s\n",
		t - r->t_start, r->link ? "up" : "down", r->link_changes, (double)dtx / dt / 1e6,
		(double)drx / dt / 1e6, r->tx_packets, r->rx_packets, r->verified, r->dropped,
		r->bad_payload, up);
}

/* The link went down: what was in flight is gone with the rings. */
static void link_went_down(struct run *r, bool still_down)
{
	char up[VUSER_MAX_QUEUE_PAIRS * 21];

	r->link = false;
	r->link_changes++;
	since_up(r, up, sizeof(up));
	fprintf(stderr, "vuser-pmd: link down (change %" PRIu64 "): the %s went away; since up: rx %s\n",
		r->link_changes, r->vhost ? "frontend" : "backend", up);
	for (unsigned q = 0; q < r->nq; q++) {
		r->lost_link_down += r->q[q].inflight;
		r->q[q].inflight = 0;
	}
	if (still_down)
		check_bursts_after_down(r);
}

/* A new session: counts since up start again, and echo waits for a probe to come back. */
static void link_came_up(struct run *r)
{
	r->link = true;
	r->link_changes++;
	for (unsigned q = 0; q < r->nq; q++)
		r->q[q].rx_up = 0;
	fprintf(stderr, "vuser-pmd: link up (change %" PRIu64 ", connection %" PRIu64 ")\n",
		r->link_changes, r->connections);
	if (r->o.mode == M_ECHO) {
		r->probing = true;
		r->next_probe = 0;
	}
}

/* Notice link changes; a session replaced within one call counts as down and up. */
static void link_watch(struct run *r)
{
	uint64_t conns = r->connections;
	bool up = ep_link(r, &conns);
	bool fresh = conns != r->connections;

	r->connections = conns;
	if (r->link && (!up || fresh))
		link_went_down(r, !up);
	if (up && !r->link)
		link_came_up(r);
}

static unsigned echo_window(const struct run *r)
{
	unsigned segs = (r->o.size_max + 12 + VUSER_BUF_DATAROOM - 1) / VUSER_BUF_DATAROOM;
	unsigned w = r->info.queue_size / 2 / segs;

	if (r->o.window)
		return r->o.window;
	return w ? w : 1;
}

/* One uncounted probe frame per queue. */
static void send_probes(struct run *r)
{
	struct vuser_buf *b[1];

	for (unsigned q = 0; q < r->nq; q++) {
		if (ep_alloc(r, b, 1))
			continue;
		memset(vuser_buf_data(b[0]), 0, ECHO_MIN_FRAME);
		put_eth(vuser_buf_data(b[0]), r->peer_mac, r->info.mac, ECHO_ETHERTYPE);
		wr32(vuser_buf_data(b[0]) + ECHO_HDR_OFF, PROBE_MAGIC);
		b[0]->data_len = b[0]->pkt_len = ECHO_MIN_FRAME;
		if (ep_tx(r, q, b, 1) == 1)
			r->probes_sent++;
		else
			vuser_buf_free(b[0]);
	}
}

/*
 * A peer may throw away what arrives before it forwards: testpmd empties
 * its queues when forwarding starts. Send uncounted probes until one comes
 * back, so that every counted frame meets a peer that returns it. A session
 * that starts later in the run does the same from the loop (r->probing).
 */
static bool echo_probe(struct run *r)
{
	double end = now() + r->o.wait_ready, next = 0;

	while (!stop_requested && now() < end) {
		struct vuser_buf *b[32];
		uint64_t conns;

		if (!ep_link(r, &conns))
			return false;
		if (now() >= next) {
			send_probes(r);
			next = now() + 0.02;
		}
		for (unsigned q = 0; q < r->nq; q++) {
			int n = ep_rx(r, q, b, 32);
			bool back = false;

			for (int i = 0; i < n; i++) {
				back |= is_probe(b[i]);
				r->probes_back += is_probe(b[i]);
				r->q[q].probes_back += is_probe(b[i]);
			}
			if (n > 0)
				vuser_buf_free_bulk(b, (unsigned)n);
			if (back)
				return true;
		}
	}
	return false;
}

/* The first time the warm-up is over: the rates count from here. */
static void rate_mark(struct run *r, double t)
{
	if (r->t_rate == 0 && t - r->t_start >= r->o.warmup) {
		r->t_rate = t;
		r->rate_tx0 = r->tx_packets;
		r->rate_rx0 = r->rx_packets;
	}
}

/* How often the loops do the control work (vuser_*_process) while the link is up. */
#define WATCH_EVERY_S 0.002

static void run_loop(struct run *r)
{
	uint8_t *scratch = malloc(MAX_FRAME);
	double t_next_stats, t_last_stats, t_drain = 0, t_watch = 0;
	uint64_t last_tx = 0, last_rx = 0;
	unsigned window = echo_window(r);

	if (!scratch)
		return;
	if (r->o.mode == M_TXONLY)
		build_template(scratch, r->info.mac, r->peer_mac, r->o.size_max);
	r->t_start = t_last_stats = now();
	t_next_stats = r->t_start + (r->o.stats > 0 ? r->o.stats : 1e9);

	r->link = true;
	for (uint64_t iter = 0; !stop_requested; iter++) {
		/* With the link down, or before a new session's peer forwards, frames are not built. */
		bool sending = (r->o.mode == M_TXONLY || r->o.mode == M_ECHO) && r->link && !r->probing;

		if (r->probing && now() >= r->next_probe) {
			send_probes(r);
			r->next_probe = now() + 0.02;
		}
		for (unsigned q = 0; q < r->nq; q++) {
			if (sending) {
				uint64_t want = r->o.burst;

				if (r->o.count && r->o.count - r->tx_packets < want)
					want = r->o.count - r->tx_packets;
				if (r->o.mode == M_ECHO)
					want = r->q[q].inflight >= window ? 0
						: (window - r->q[q].inflight < want ? window - r->q[q].inflight : want);
				do_tx(r, q, (unsigned)want, scratch);
			}
			if (r->o.mode != M_TXONLY)
				do_rx(r, q, scratch);
		}

		if (iter & 255)
			continue;
		double t = now();

		rate_mark(r, t);
		/*
		 * The control work costs system calls: every few milliseconds is
		 * soon enough for link changes, and keeps them out of the
		 * datapath's way (the ping-pong's tail latency shows them).
		 */
		if (!r->link || t >= t_watch) {
			link_watch(r);
			t_watch = t + WATCH_EVERY_S;
		}
		if (!r->link) {
			/* A port with reconnect=0 stays down; the others wait for the next peer. */
			if (!r->vhost && !r->comes_back)
				break;
			ep_idle(r, 10);
		}
		if (t >= t_next_stats) {
			live_line(r, t, t - t_last_stats, r->tx_packets - last_tx,
				  r->rx_packets - last_rx);
			last_tx = r->tx_packets;
			last_rx = r->rx_packets;
			t_last_stats = t;
			t_next_stats += r->o.stats;
		}
		if (r->o.duration && t - r->t_start >= r->o.duration)
			break;
		if (r->o.count) {
			if (r->o.mode == M_TXONLY && r->tx_packets >= r->o.count)
				break;
			if (r->o.mode == M_ECHO && r->tx_packets >= r->o.count) {
				/* Frames lost with a session will not come back: not waited for. */
				if (r->verified + r->bad_payload + r->lost_link_down >= r->tx_packets)
					break;
				if (!t_drain)
					t_drain = t;
				if ((t - t_drain) * 1000 >= r->o.drain_ms)
					break;
			}
			if (r->o.mode != M_TXONLY && r->o.mode != M_ECHO && r->rx_packets >= r->o.count)
				break;
		}
	}
	r->t_end = now();
	if (r->o.stats > 0)
		live_line(r, r->t_end, r->t_end - t_last_stats, r->tx_packets - last_tx,
			  r->rx_packets - last_rx);
	free(scratch);
}

/* ---------------------------------------------------------------- pingpong */

static int rtt_add(struct run *r, uint64_t ns)
{
	if (r->rtt_n == r->rtt_cap) {
		size_t cap = r->rtt_cap ? r->rtt_cap * 2 : 65536;
		uint64_t *n;

		if (cap > RTT_MAX_SAMPLES)
			return -1;
		n = realloc(r->rtt, cap * sizeof(*n));
		if (!n)
			return -1;
		r->rtt = n;
		r->rtt_cap = cap;
	}
	r->rtt[r->rtt_n++] = ns;
	return 0;
}

/*
 * One frame that came back while a ping was in flight. True when it is the
 * reply to sequence number want; anything else is counted for what it is
 * (a late probe, the late reply to a frame that timed out, a bad frame).
 */
static bool pingpong_reply(struct run *r, const struct vuser_buf *b, uint64_t want,
			   uint8_t *scratch)
{
	uint64_t seq;

	if (is_probe(b)) {
		r->probes_back++;
		r->q[0].probes_back++;
		return false;
	}
	r->rx_packets++;
	r->q[0].rx++;
	r->rx_bytes += b->pkt_len;
	if (!verify_echo(r, b, scratch, &seq)) {
		r->bad_payload++;
		return false;
	}
	r->verified++;
	if (seq == want)
		return true;
	r->late++;
	return false;
}

/*
 * One frame in flight on queue 0. Each frame is built before the clock is
 * read and its reply checked after, so the timed span is the send, the
 * peer's turn-around and the receive: what a request/response program
 * would see. Polling, not waiting on the call fd: both sides busy-poll, as
 * in the throughput modes. A reply missing for --drain-ms counts as a
 * timeout and the next frame goes out; should it turn up later it counts as
 * late, not as a round trip.
 */
static void run_pingpong(struct run *r)
{
	uint8_t *scratch = malloc(MAX_FRAME);
	struct vuser_buf *b[32];
	uint64_t timeout_ns = (uint64_t)r->o.drain_ms * 1000000u;
	uint64_t last_tx = 0, last_rx = 0;
	double t_next_stats, t_last_stats, t_watch = 0;

	if (!scratch)
		return;
	r->t_start = t_last_stats = now();
	t_next_stats = r->t_start + (r->o.stats > 0 ? r->o.stats : 1e9);

	for (uint64_t iter = 0; !stop_requested; iter++) {
		uint64_t seq = r->next_seq, t0, t1 = 0;
		double t = now();
		uint32_t len;
		bool back = false;

		rate_mark(r, t);
		if (r->o.count && r->tx_packets >= r->o.count)
			break;
		if (r->o.duration && t - r->t_start >= r->o.duration)
			break;
		if (!(iter & 255) && t >= t_watch) {
			link_watch(r);
			t_watch = t + WATCH_EVERY_S;
			/* One frame in flight needs a peer: a round trip cannot outlive it. */
			if (!r->link)
				break;
		}
		if (t >= t_next_stats) {
			live_line(r, t, t - t_last_stats, r->tx_packets - last_tx,
				  r->rx_packets - last_rx);
			last_tx = r->tx_packets;
			last_rx = r->rx_packets;
			t_last_stats = t;
			t_next_stats += r->o.stats;
		}
		/* With one frame out at a time the pool cannot run dry unless buffers leak. */
		if (ep_alloc(r, b, 1)) {
			fprintf(stderr, "vuser-pmd: pingpong: no free buffer\n");
			break;
		}
		if (build_echo(r, b[0], seq, scratch)) {
			vuser_buf_free(b[0]);
			fprintf(stderr, "vuser-pmd: pingpong: cannot build a frame\n");
			break;
		}
		len = b[0]->pkt_len;
		t0 = now_ns();
		if (ep_tx(r, 0, b, 1) != 1) {
			/* No room yet: the ring still holds earlier frames. Rebuilt next turn. */
			vuser_buf_free(b[0]);
			r->dropped++;
			continue;
		}
		seen_set(r, seq);
		r->next_seq++;
		r->tx_packets++;
		r->q[0].tx++;
		r->tx_bytes += len;

		for (unsigned polls = 1; !back && !stop_requested; polls++) {
			int n = ep_rx(r, 0, b, 32);

			if (n > 0) {
				t1 = now_ns();
				for (int i = 0; i < n; i++)
					back |= pingpong_reply(r, b[i], seq, scratch);
				vuser_buf_free_bulk(b, (unsigned)n);
			} else if (!(polls & 1023) && now_ns() - t0 > timeout_ns) {
				r->timeouts++;
				break;
			}
		}
		if (back && t - r->t_start >= r->o.warmup && rtt_add(r, t1 - t0)) {
			fprintf(stderr, "vuser-pmd: pingpong: %u round-trip times kept, the most it keeps: stopping\n",
				RTT_MAX_SAMPLES);
			break;
		}
	}
	r->t_end = now();
	if (r->o.stats > 0)
		live_line(r, r->t_end, r->t_end - t_last_stats, r->tx_packets - last_tx,
			  r->rx_packets - last_rx);
	free(scratch);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct rtt_summary {
	uint64_t min, median, p99, max;
	double mean;
};

/* Nearest-rank percentiles: every figure is a time that was measured. */
static void rtt_summarize(struct run *r, struct rtt_summary *s)
{
	size_t n = r->rtt_n;
	double sum = 0;

	*s = (struct rtt_summary){ 0 };
	if (!n)
		return;
	qsort(r->rtt, n, sizeof(r->rtt[0]), cmp_u64);
	for (size_t i = 0; i < n; i++)
		sum += (double)r->rtt[i];
	s->min = r->rtt[0];
	s->max = r->rtt[n - 1];
	s->median = r->rtt[(n + 1) / 2 - 1];
	s->p99 = r->rtt[(n * 99 + 99) / 100 - 1];
	s->mean = sum / (double)n;
}

/* ------------------------------------------------------------------ report */

/* This process's memory as the kernel counts it, in KiB; -1 when unknown. */
struct mem_use {
	long rss, hwm, anon, shmem;
};

static void read_mem(struct mem_use *m)
{
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	*m = (struct mem_use){ -1, -1, -1, -1 };
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		sscanf(line, "VmRSS: %ld", &m->rss);
		sscanf(line, "VmHWM: %ld", &m->hwm);
		sscanf(line, "RssAnon: %ld", &m->anon);
		sscanf(line, "RssShmem: %ld", &m->shmem);
	}
	fclose(f);
}

static void report(struct run *r)
{
	struct vuser_port_stats st;
	struct rtt_summary rs;
	struct mem_use mem;
	double el = r->t_end - r->t_start;
	bool verifying = r->o.mode == M_ECHO || r->o.mode == M_PINGPONG;
	uint64_t lost = verifying ? r->tx_packets - r->verified : 0;
	uint64_t rx_err = 0, tx_err = 0, rx_drops = 0, tx_drops = 0;
	/* A run shorter than its warm-up is rated as a whole. */
	double t_rate = r->t_rate ? r->t_rate : r->t_start;
	double el_rate = r->t_end - t_rate;
	uint64_t rate_tx = r->tx_packets - (r->t_rate ? r->rate_tx0 : 0);
	uint64_t rate_rx = r->rx_packets - (r->t_rate ? r->rate_rx0 : 0);

	if (el <= 0)
		el = 1e-9;
	if (el_rate <= 0)
		el_rate = 1e-9;
	rtt_summarize(r, &rs);
	read_mem(&mem);
	ep_stats(r, &st);
	for (unsigned q = 0; q < st.nb_queues; q++) {
		rx_err += st.rx[q].errors;
		tx_err += st.tx[q].errors;
		rx_drops += st.rx[q].drops;
		tx_drops += st.tx[q].drops;
	}
	if (r->o.json) {
		printf("{\"mode\":\"%s\",\"features\":\"0x%llx\",\"packed\":%d,\"elapsed\":%.3f,\"tx_packets\":%" PRIu64 ",\"rx_packets\":%" PRIu64
		       ",\"tx_bytes\":%" PRIu64 ",\"rx_bytes\":%" PRIu64 ",\"tx_pps\":%.0f,\"rx_pps\":%.0f"
		       ",\"dropped\":%" PRIu64 ",\"bad_payload\":%" PRIu64 ",\"lost\":%" PRIu64
		       ",\"verified\":%" PRIu64 ",\"active_queues\":%u,\"link\":%d,\"down_bursts_ok\":%s"
		       ",\"link_changes\":%" PRIu64 ",\"connections\":%" PRIu64 ",\"lost_link_down\":%" PRIu64
		       ",\"rx_errors\":%" PRIu64 ",\"tx_errors\":%" PRIu64 ",\"rx_drops\":%" PRIu64
		       ",\"tx_drops\":%" PRIu64 ",\"probes_sent\":%" PRIu64 ",\"probes_back\":%" PRIu64,
		       mode_names[r->o.mode], (unsigned long long)r->info.features,
		       (int)((r->info.features >> 34) & 1), el, r->tx_packets, r->rx_packets, r->tx_bytes, r->rx_bytes,
		       (double)rate_tx / el_rate, (double)rate_rx / el_rate, r->dropped,
		       r->bad_payload, lost, r->verified, r->info.active_queues, r->link ? 1 : 0,
		       r->down_bursts_nonzero ? "false" : "true", r->link_changes, r->connections,
		       r->lost_link_down, rx_err, tx_err, rx_drops, tx_drops,
		       r->probes_sent, r->probes_back);
		printf(",\"rate_elapsed\":%.3f,\"vm_rss_kb\":%ld,\"vm_hwm_kb\":%ld,\"rss_anon_kb\":%ld"
		       ",\"rss_shmem_kb\":%ld",
		       el_rate, mem.rss, mem.hwm, mem.anon, mem.shmem);
		/* The vhost's pool is private memory, counted in its RSS: no arena. */
		if (!r->vhost)
			printf(",\"arena_size\":%zu,\"nb_bufs\":%u,\"queue_size\":%u", r->info.arena_size,
			       r->info.nb_bufs, r->info.queue_size);
		if (r->o.mode == M_PINGPONG)
			printf(",\"rtt_count\":%zu,\"rtt_min_ns\":%" PRIu64 ",\"rtt_median_ns\":%" PRIu64
			       ",\"rtt_p99_ns\":%" PRIu64 ",\"rtt_max_ns\":%" PRIu64 ",\"rtt_mean_ns\":%.0f"
			       ",\"late\":%" PRIu64 ",\"timeouts\":%" PRIu64,
			       r->rtt_n, rs.min, rs.median, rs.p99, rs.max, rs.mean, r->late, r->timeouts);
		printf(",\"queues\":[");
		for (unsigned q = 0; q < r->nq; q++)
			printf("%s{\"rx\":%" PRIu64 ",\"tx\":%" PRIu64 ",\"probes_back\":%" PRIu64 "}",
			       q ? "," : "", r->q[q].rx, r->q[q].tx, r->q[q].probes_back);
		printf("]}\n");
	} else {
		printf("mode %s: %.2f s, sent %" PRIu64 " (%.3f Mpps), received %" PRIu64
		       " (%.3f Mpps), dropped %" PRIu64 "\n",
		       mode_names[r->o.mode], el, r->tx_packets, (double)rate_tx / el_rate / 1e6,
		       r->rx_packets, (double)rate_rx / el_rate / 1e6, r->dropped);
		if (r->o.mode == M_ECHO)
			printf("echo: verified %" PRIu64 ", lost %" PRIu64 " (%" PRIu64
			       " in flight when the link went down), bad payload %" PRIu64 "\n",
			       r->verified, lost, r->lost_link_down, r->bad_payload);
		else if (verifying)
			printf("%s: verified %" PRIu64 ", lost %" PRIu64 ", bad payload %" PRIu64 "\n",
			       mode_names[r->o.mode], r->verified, lost, r->bad_payload);
		if (r->o.mode == M_PINGPONG)
			printf("pingpong: %zu round trips, min %.3f median %.3f p99 %.3f max %.3f us;"
			       " late %" PRIu64 ", timeouts %" PRIu64 "\n",
			       r->rtt_n, (double)rs.min / 1e3, (double)rs.median / 1e3, (double)rs.p99 / 1e3,
			       (double)rs.max / 1e3, r->late, r->timeouts);
		printf("memory: VmRSS %ld KiB, VmHWM %ld KiB", mem.rss, mem.hwm);
		if (!r->vhost)
			printf(", arena %zu KiB", r->info.arena_size / 1024);
		printf("\n");
		printf("port: rx errors %" PRIu64 ", tx errors %" PRIu64 ", link %s, %" PRIu64
		       " link changes\n", rx_err, tx_err, r->link ? "up" : "down", r->link_changes);
	}
	fflush(stdout);
}

static int pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

int main(int argc, char **argv)
{
	static struct run r;
	struct sigaction sa = { .sa_handler = on_signal };
	int err;

	if (parse_opts(argc, argv, &r.o))
		return 2;
	if (r.o.cpu >= 0 && (err = pin(r.o.cpu)) != 0) {
		fprintf(stderr, "vuser-pmd: --cpu %d: %s\n", r.o.cpu, strerror(err));
		return 2;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (r.o.vhost) {
		struct vuser_vhost_info vi;

		err = vuser_vhost_open(r.o.devargs, &r.vhost);
		if (err) {
			fprintf(stderr, "vuser-pmd: cannot open vhost device: %s\n", strerror(-err));
			return 1;
		}
		/* In slices, so that a signal stops the wait promptly. */
		for (double waited = 0; !stop_requested && waited < r.o.wait_ready; waited += 0.1)
			if (vuser_vhost_wait_ready(r.vhost, 100) == 1)
				break;
		if (!vuser_vhost_ready(r.vhost)) {
			if (stop_requested)
				fprintf(stderr, "vuser-pmd: stopped before a frontend became ready\n");
			else
				fprintf(stderr, "vuser-pmd: no frontend became ready within %.0f s\n",
					r.o.wait_ready);
			vuser_vhost_close(r.vhost);
			return 1;
		}
		vuser_vhost_info(r.vhost, &vi);
		/* What the first frontend negotiated: the JSON's "features" and "packed". */
		r.info.features = vi.features;
		r.connections = vi.connections;
		r.info.queues = vi.queues;
		r.info.active_queues = vi.queues;
		r.info.queue_size = 256;
		memcpy(r.info.mac, vi.mac, 6);
	} else {
		struct vuser_port_config cfg;

		err = vuser_port_open(r.o.devargs, &r.port);
		if (err) {
			/* The library has already said why on stderr. */
			fprintf(stderr, "vuser-pmd: cannot open port: %s\n", strerror(-err));
			return 1;
		}
		/* The devargs parsed once already: this cannot fail now. */
		vuser_port_config_parse(r.o.devargs, &cfg);
		r.comes_back = cfg.server || cfg.reconnect;
		/* Kept for every session, the first one included when it is yet to come. */
		if (r.o.active_queues && (err = vuser_port_set_queue_pairs(r.port, r.o.active_queues))) {
			fprintf(stderr, "vuser-pmd: --active-queues %u: %s\n", r.o.active_queues,
				vuser_last_error());
			vuser_port_close(r.port);
			return 1;
		}
		/* A listening port starts with the link down. In slices, so that a signal stops the wait. */
		for (double waited = 0; !stop_requested && waited < r.o.wait_ready; waited += 0.1)
			if (vuser_port_wait_link(r.port, 100) != -ETIMEDOUT)
				break;
		if (!vuser_port_link(r.port)) {
			if (stop_requested)
				fprintf(stderr, "vuser-pmd: stopped before a backend connected\n");
			else
				fprintf(stderr, "vuser-pmd: no backend connected within %g s\n",
					r.o.wait_ready);
			vuser_port_close(r.port);
			return 1;
		}
		vuser_port_info(r.port, &r.info);
		r.connections = r.info.connections;
		/* Every session has its line, the first one too: a reader counts them. */
		fprintf(stderr, "vuser-pmd: link up (connection %" PRIu64 ")\n", r.connections);
	}
	r.nq = r.info.queues;
	r.next_size = r.o.size_min;
	memcpy(r.peer_mac, (const uint8_t[6]){ 0x02, 0, 0, 0, 0, 0x01 }, 6);
	if (r.o.mode == M_ECHO || r.o.mode == M_PINGPONG) {
		r.seen = calloc(SEQ_RING / 64, sizeof(uint64_t));
		if (!r.seen) {
			fprintf(stderr, "vuser-pmd: out of memory\n");
			ep_close(&r);
			return 1;
		}
	}
	if ((r.o.mode == M_ECHO || r.o.mode == M_PINGPONG) && !echo_probe(&r)) {
		fprintf(stderr, "vuser-pmd: the peer returned no frame within %.0f s: is it forwarding?\n",
			r.o.wait_ready);
		free(r.seen);
		ep_close(&r);
		return 1;
	}
	if (r.o.mode == M_PINGPONG)
		run_pingpong(&r);
	else
		run_loop(&r);
	report(&r);
	free(r.rtt);
	free(r.seen);
	ep_close(&r);
	return 0;
}
