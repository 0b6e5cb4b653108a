/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Configurations from devargs strings: the port's (vuser.h) and the vhost
 * device's (vhost.h), each described by a table of keys that one parser and
 * one checker walk, so that both read and refuse values the same way.
 *
 * The port's keys and defaults are DPDK virtio_user's, so that a devargs
 * string written for it means the same here. The parser is stricter: DPDK
 * reads numbers with strtoull() and silently takes whatever prefix parses, so
 * "queue_size=256k" is 256 and "queues=-1" is 2^64 - 1; vuser refuses any
 * value it would have to guess at, and says which one.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "vuser/vhost.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * The most characters of the input quoted in one message: the last-error
 * buffer holds 255, and the reason that follows the quote must survive.
 */
#define QUOTE_MAX 100

/* A piece of the devargs string: items are parsed in place, unterminated. */
struct span {
	const char *s;
	size_t len;
};

/* The arguments of "%.*s%s" that quote sp, cut to QUOTE_MAX with "...". */
#define QUOTE(sp)                                                       \
	(int)((sp).len > QUOTE_MAX ? QUOTE_MAX : (sp).len), (sp).s,     \
	(sp).len > QUOTE_MAX ? "..." : ""

/* ------------------------------------------------------------ the tables */

enum key_kind {
	KEY_STRING,     /* char[size], NUL-terminated */
	KEY_FLAG,       /* bool, from "0" or "1" */
	KEY_COUNT,      /* unsigned, within a struct range */
	KEY_MAC,        /* uint8_t[6], a station's address */
};

struct range {
	unsigned long long min, max;
	bool pow2;      /* virtio split rings: Queue Size must be a power of two */
	bool pow2_split;/* ... but only split ones: judged once packed_vq is known */
	bool zero_auto; /* 0 below min still means "let the library pick" */
};

struct key {
	const char *name;
	enum key_kind kind;
	size_t off;                     /* of the value in the config struct */
	size_t size;                    /* KEY_STRING: bytes, NUL included */
	const struct range *range;      /* KEY_COUNT */
	/*
	 * A bool that records the key was given: a MAC is only checked once
	 * set, and the port's cq default depends on whether cq was given.
	 */
	bool marked;
	size_t mark_off;
	const char *mandatory;          /* what the value names, if it must be given */
};

/*
 * The offset of T's member m, refused at compile time unless m has type C
 * (arrays as their element pointer): the tables store through untyped
 * offsets, where a bool taken for an unsigned would corrupt its neighbours.
 */
#define FIELD(T, m, C)                                                          \
	(offsetof(T, m) + 0 * sizeof(char[_Generic(((T *)0)->m, C: 1, default: -1)]))

#define STRING(T, m) .kind = KEY_STRING, .off = FIELD(T, m, char *), .size = sizeof(((T *)0)->m)
#define FLAG(T, m) .kind = KEY_FLAG, .off = FIELD(T, m, bool)
#define COUNT(T, m, r) .kind = KEY_COUNT, .off = FIELD(T, m, unsigned), .range = &(r)
#define MARK(T, m) .marked = true, .mark_off = FIELD(T, m, bool)
/* The parser writes all six bytes. */
#define MAC(T, m, set)                                                          \
	.kind = KEY_MAC,                                                        \
	.off = FIELD(T, m, uint8_t *) + 0 * sizeof(char[sizeof(((T *)0)->m) == 6 ? 1 : -1]), \
	MARK(T, set)

static const struct range queue_pairs_range = { .min = 1, .max = VUSER_MAX_QUEUE_PAIRS };
/* The virtio split ring's limit on Queue Size. */
static const struct range queue_size_range = { .min = 1, .max = 32768, .pow2 = true,
						.pow2_split = true };

/*
 * A rule that depends on a key that may come later in the string (a queue
 * size that is not a power of two is fine for packed rings only): its
 * message is written while the value is at hand, as the user typed it, and
 * raised once every item is in.
 */
static _Thread_local struct {
	int err;
	char msg[200];
} deferred;
static const struct range mem_slots_range = { .min = 1, .max = VUSER_VHOST_MAX_MEM_SLOTS };
/* vhost.h's bounds; 0 leaves the size to the device, from queues. */
static const struct range pool_range = { .min = 64, .max = 1048576, .zero_auto = true };

#define P struct vuser_port_config
/* In the order the checker reports them: the socket first. */
static const struct key port_keys[] = {
	{ "path", STRING(P, path), .mandatory = "vhost-user socket" },
	{ "iface", STRING(P, iface) },
	{ "queues", COUNT(P, queues, queue_pairs_range) },
	{ "queue_size", COUNT(P, queue_size, queue_size_range) },
	{ "mac", MAC(P, mac, mac_set) },
	{ "cq", FLAG(P, cq), MARK(P, cq_set) },
	{ "server", FLAG(P, server) },
	{ "reconnect", FLAG(P, reconnect) },
	{ "mrg_rxbuf", FLAG(P, mrg_rxbuf) },
	{ "in_order", FLAG(P, in_order) },
	{ "packed_vq", FLAG(P, packed_vq) },
	{ "notify", FLAG(P, notify) },
};
#undef P

#define V struct vuser_vhost_config
static const struct key vhost_keys[] = {
	{ "path", STRING(V, path), .mandatory = "vhost-user socket" },
	{ "client", FLAG(V, client) },
	{ "queues", COUNT(V, queues, queue_pairs_range) },
	{ "mac", MAC(V, mac, mac_set) },
	{ "mrg_rxbuf", FLAG(V, mrg_rxbuf) },
	{ "in_order", FLAG(V, in_order) },
	{ "indirect", FLAG(V, indirect) },
	{ "event_idx", FLAG(V, event_idx) },
	{ "packed_vq", FLAG(V, packed_vq) },
	{ "mem_slots", COUNT(V, mem_slots, mem_slots_range) },
	{ "pool", COUNT(V, pool, pool_range) },
};
#undef V

/* The parser remembers the keys seen in one unsigned. */
_Static_assert(ARRAY_SIZE(port_keys) <= 32, "too many port keys");
_Static_assert(ARRAY_SIZE(vhost_keys) <= 32, "too many vhost keys");

static void *field(void *cfg, size_t off)
{
	return (char *)cfg + off;
}

static const void *cfield(const void *cfg, size_t off)
{
	return (const char *)cfg + off;
}

/* ------------------------------------------------------------- the rules */

/*
 * The rules on values are shared by the parser (which quotes the value as
 * written, "0x12c") and the checker (which can only print the number, 300).
 * Each returns why the value is refused (and sets *err), or NULL.
 */

/*
 * Above the limit is -ERANGE even for a power of two, so that 65536 reads as
 * too large rather than malformed; 0 and the other non-powers are -EINVAL.
 */
static const char *range_bad(const struct range *r, unsigned long long n, int *err,
			     char *why, size_t size)
{
	char span[80];

	if (r->zero_auto && n == 0)
		return NULL;
	snprintf(span, sizeof(span), "%s%s%llu..%llu", r->zero_auto ? "0 (auto) or " : "",
		 r->pow2 ? "a power of two in " : "", r->min, r->max);
	if (n > r->max) {
		*err = -ERANGE;
	} else if (r->pow2 && (n == 0 || (n & (n - 1)))) {
		*err = -EINVAL;
		snprintf(why, size, "not %s", span);
		return why;
	} else if (n < r->min) {
		*err = -ERANGE;
	} else {
		return NULL;
	}
	/* A span that starts with words reads as a sentence of its own. */
	snprintf(why, size, "out of range%s%s", r->pow2 || r->zero_auto ? ": " : " ", span);
	return why;
}

/* The device would answer to every station in the group, or to none. */
static const char *mac_bad(const uint8_t mac[6])
{
	static const uint8_t zero[6];

	if (mac[0] & 1)
		return "a multicast or broadcast address, not a station's";
	if (!memcmp(mac, zero, sizeof(zero)))
		return "the all-zero address";
	return NULL;
}

/* Whether path names a character device, without touching errno. */
static bool is_chrdev(const char *path)
{
	int saved_errno = errno;
	struct stat st;
	bool chrdev;

	chrdev = !stat(path, &st) && S_ISCHR(st.st_mode);
	errno = saved_errno;
	return chrdev;
}

/* -------------------------------------------------------------- parsing */

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decimal, or hex after "0x". A leading 0 does not mean octal, as it would
 * for strtoull(): "064" is 64. Overflow saturates, so that it lands in the
 * caller's range check as the -ERANGE it is instead of wrapping into range.
 */
static bool parse_number(struct span v, unsigned long long *out)
{
	const unsigned long long max = ~0ULL;
	unsigned long long n = 0;
	unsigned base = 10;
	size_t i = 0;

	if (v.len > 2 && v.s[0] == '0' && (v.s[1] == 'x' || v.s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	for (; i < v.len; i++) {
		int d = hex_digit(v.s[i]);

		if (d < 0 || (unsigned)d >= base)
			return false;
		if (n > (max - (unsigned)d) / base)
			n = max;
		else
			n = n * base + (unsigned)d;
	}
	*out = n;
	return true;
}

static int parse_string(struct span item, struct span v, char *dst, size_t size)
{
	if (v.len >= size)
		return verr(-ENAMETOOLONG, "devargs: %.*s%s: %zu characters, at most %zu",
			    QUOTE(item), v.len, size - 1);
	memcpy(dst, v.s, v.len);
	dst[v.len] = '\0';
	return 0;
}

/* Only "0" and "1": "true", "2" or "01" may mean something else to the writer. */
static int parse_flag(struct span item, struct span v, bool *flag)
{
	if (v.len != 1 || (v.s[0] != '0' && v.s[0] != '1'))
		return verr(-EINVAL, "devargs: %.*s%s: not 0 or 1", QUOTE(item));
	*flag = v.s[0] == '1';
	return 0;
}

static int parse_count(struct span item, struct span v, unsigned *dst, const struct range *r)
{
	unsigned long long n;
	char why[128];
	int err;

	if (!parse_number(v, &n))
		return verr(-EINVAL, "devargs: %.*s%s: not a number (decimal, or hex after 0x)",
			    QUOTE(item));
	/* Before the cast: 2^32 + 1 must not pass as 1. */
	if (range_bad(r, n, &err, why, sizeof(why))) {
		if (!(r->pow2_split && n >= r->min && n <= r->max))
			return verr(err, "devargs: %.*s%s: %s", QUOTE(item), why);
		deferred.err = err;
		snprintf(deferred.msg, sizeof(deferred.msg), "devargs: %.*s%s: %s (packed_vq=1 allows any size)",
			 QUOTE(item), why);
	}
	*dst = (unsigned)n;
	return 0;
}

static int parse_mac(struct span item, struct span v, uint8_t *dst)
{
	uint8_t mac[6];
	const char *why;
	int i, hi, lo;

	if (v.len != 17)
		goto malformed;
	for (i = 0; i < 6; i++) {
		hi = hex_digit(v.s[3 * i]);
		lo = hex_digit(v.s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && v.s[3 * i + 2] != ':'))
			goto malformed;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	why = mac_bad(mac);
	if (why)
		return verr(-EINVAL, "devargs: %.*s%s: %s", QUOTE(item), why);
	memcpy(dst, mac, sizeof(mac));
	return 0;

malformed:
	return verr(-EINVAL, "devargs: %.*s%s: not xx:xx:xx:xx:xx:xx in hex", QUOTE(item));
}

static int parse_value(const struct key *k, struct span item, struct span v, void *cfg)
{
	void *dst = field(cfg, k->off);
	int ret = 0;

	switch (k->kind) {
	case KEY_STRING:
		ret = parse_string(item, v, dst, k->size);
		break;
	case KEY_FLAG:
		ret = parse_flag(item, v, dst);
		break;
	case KEY_COUNT:
		ret = parse_count(item, v, dst, k->range);
		break;
	case KEY_MAC:
		ret = parse_mac(item, v, dst);
		break;
	}
	if (!ret && k->marked)
		*(bool *)field(cfg, k->mark_off) = true;
	return ret;
}

static const struct key *find_key(const struct key *keys, size_t nb, struct span name)
{
	size_t i;

	for (i = 0; i < nb; i++)
		if (strlen(keys[i].name) == name.len && !memcmp(keys[i].name, name.s, name.len))
			return &keys[i];
	return NULL;
}

/*
 * Parse devargs into cfg (already holding the defaults), item by item; the
 * checks across keys are the caller's, once every item is in.
 */
static int parse_items(const struct key *keys, size_t nb, const char *devargs, void *cfg)
{
	struct span all, item, name, v;
	const char *p, *end, *eq;
	const struct key *k;
	unsigned seen = 0, bit;
	size_t i;
	int ret;

	if (!devargs || !*devargs) {
		for (i = 0; i < nb; i++)
			if (keys[i].mandatory)
				return verr(-EINVAL, "devargs empty: %s=<%s> is mandatory",
					    keys[i].name, keys[i].mandatory);
		return 0;
	}
	all = (struct span){ devargs, strlen(devargs) };

	for (p = devargs;; p = end + 1) {
		end = strchrnul(p, ',');
		item = (struct span){ p, (size_t)(end - p) };
		if (!item.len)
			return verr(-EINVAL, "devargs \"%.*s%s\": empty item (leading, trailing or double ',')",
				    QUOTE(all));
		eq = memchr(p, '=', item.len);
		if (!eq)
			return verr(-EINVAL, "devargs: \"%.*s%s\": not key=value", QUOTE(item));
		name = (struct span){ p, (size_t)(eq - p) };
		v = (struct span){ eq + 1, (size_t)(end - eq - 1) };
		if (!name.len)
			return verr(-EINVAL, "devargs: \"%.*s%s\": empty key", QUOTE(item));
		k = find_key(keys, nb, name);
		if (!k)
			return verr(-EINVAL, "devargs: %.*s%s: unknown key", QUOTE(item));
		/*
		 * Which of the two was meant is a guess. DPDK takes the default
		 * for a doubled key (and calls a doubled path missing): worse.
		 */
		bit = 1u << (k - keys);
		if (seen & bit)
			return verr(-EINVAL, "devargs: %.*s%s: %s given twice", QUOTE(item), k->name);
		seen |= bit;
		if (!v.len)
			return verr(-EINVAL, "devargs: %s=: empty value", k->name);
		ret = parse_value(k, item, v, cfg);
		if (ret < 0)
			return ret;
		if (!*end)
			return 0;
	}
}

/* ------------------------------------------------------------- checking */

/*
 * The rules of each key on its own, in table order. who prefixes the
 * messages: "devargs" when the values came from a string, "config" when the
 * program filled the struct.
 */
static int check_keys(const struct key *keys, size_t nb, const void *cfg, const char *who)
{
	const struct key *k;
	const uint8_t *mac;
	const char *why, *s;
	char buf[128];
	unsigned n;
	size_t len;
	int err;

	for (k = keys; k < keys + nb; k++) {
		switch (k->kind) {
		case KEY_STRING:
			s = cfield(cfg, k->off);
			len = strnlen(s, k->size);
			if (len == k->size)
				return verr(-ENAMETOOLONG, "%s: %s=%.*s: not NUL-terminated within %zu bytes",
					    who, k->name, (int)k->size, s, k->size);
			if (!len && k->mandatory)
				return verr(-EINVAL, "%s: %s is mandatory (%s=<%s>)",
					    who, k->name, k->name, k->mandatory);
			break;
		case KEY_FLAG:
			break;
		case KEY_COUNT:
			n = *(const unsigned *)cfield(cfg, k->off);
			/* The power-of-two rule of a split-only range is the caller's. */
			if (range_bad(k->range, n, &err, buf, sizeof(buf)) &&
			    !(k->range->pow2_split && n >= k->range->min && n <= k->range->max))
				return verr(err, "%s: %s=%u: %s", who, k->name, n, buf);
			break;
		case KEY_MAC:
			if (k->marked && !*(const bool *)cfield(cfg, k->mark_off))
				break;
			mac = cfield(cfg, k->off);
			why = mac_bad(mac);
			if (why)
				return verr(-EINVAL, "%s: %s=%02x:%02x:%02x:%02x:%02x:%02x: %s",
					    who, k->name, mac[0], mac[1], mac[2], mac[3],
					    mac[4], mac[5], why);
			break;
		}
	}
	return 0;
}

/*
 * Wrong values are reported before unsupported features: those are the
 * caller's to fix whatever vuser learns to support later.
 */
static int port_check(const struct vuser_port_config *cfg, const char *who)
{
	int ret;

	ret = check_keys(port_keys, ARRAY_SIZE(port_keys), cfg, who);
	if (ret < 0)
		return ret;
	if (!cfg->packed_vq && (cfg->queue_size & (cfg->queue_size - 1)))
		return verr(-EINVAL, "%s: queue_size=%u: not a power of two in 1..32768 (packed_vq=1 allows any size)",
			    who, cfg->queue_size);
	if (cfg->queues > 1 && !cfg->cq)
		return verr(-EINVAL, "%s: cq=0 with queues=%u: multi-queue needs the control queue (cq=1)",
			    who, cfg->queues);
	/*
	 * A listening port takes every backend that connects; there is nothing
	 * for reconnect=0 to turn off, and it most likely meant something else.
	 */
	if (cfg->server && !cfg->reconnect)
		return verr(-EINVAL, "%s: reconnect=0 with server=1: a server port always accepts the next backend; reconnect applies to client mode",
			    who);

	/* The prefix catches /dev/vhost-net and friends on a host without them. */
	if (is_chrdev(cfg->path) || !strncmp(cfg->path, "/dev/vhost", strlen("/dev/vhost")))
		return verr(-ENOTSUP, "%s: path=%s: a vhost-kernel device; vhost-kernel backend not supported yet",
			    who, cfg->path);
	if (cfg->iface[0])
		return verr(-ENOTSUP, "%s: iface=%s: iface applies to the vhost-kernel backend, which vuser does not support yet",
			    who, cfg->iface);
	return 0;
}

static int vhost_check(const struct vuser_vhost_config *cfg, const char *who)
{
	int ret;

	ret = check_keys(vhost_keys, ARRAY_SIZE(vhost_keys), cfg, who);
	if (ret < 0)
		return ret;
	/*
	 * Opening the device unlinks a stale file at path before it binds:
	 * a path under /dev/ is a device node given by mistake, never a
	 * socket to replace.
	 */
	if (is_chrdev(cfg->path) || !strncmp(cfg->path, "/dev/", strlen("/dev/")))
		return verr(-EINVAL, "%s: path=%s: a character device or under /dev/, not a vhost-user socket path",
			    who, cfg->path);
	return 0;
}

/* ---------------------------------------------------------------- port */

VUSER_API void vuser_port_config_init(struct vuser_port_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->queues = 1;
	cfg->queue_size = 256;
	cfg->mrg_rxbuf = true;
	cfg->in_order = true;
	cfg->reconnect = true;
	cfg->notify = true;
}

/* On failure *cfg holds the defaults and whatever was parsed before the error. */
VUSER_API int vuser_port_config_parse(const char *devargs, struct vuser_port_config *cfg)
{
	int ret;

	vuser_port_config_init(cfg);
	deferred.err = 0;
	ret = parse_items(port_keys, ARRAY_SIZE(port_keys), devargs, cfg);
	if (ret < 0)
		return ret;
	if (deferred.err && !cfg->packed_vq)
		return verr(deferred.err, "%s", deferred.msg);
	/* DPDK's default: multi-queue is steered through the control queue. */
	if (!cfg->cq_set && cfg->queues > 1)
		cfg->cq = true;
	return port_check(cfg, "devargs");
}

VUSER_API int vuser_port_config_check(const struct vuser_port_config *cfg)
{
	return port_check(cfg, "config");
}

/* --------------------------------------------------------------- vhost */

VUSER_API void vuser_vhost_config_init(struct vuser_vhost_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->queues = 1;
	cfg->mrg_rxbuf = true;
	cfg->in_order = true;
	cfg->indirect = true;
	cfg->event_idx = true;
	cfg->packed_vq = true;
	cfg->mem_slots = 64;
}

VUSER_API int vuser_vhost_config_parse(const char *devargs, struct vuser_vhost_config *cfg)
{
	int ret;

	vuser_vhost_config_init(cfg);
	ret = parse_items(vhost_keys, ARRAY_SIZE(vhost_keys), devargs, cfg);
	if (ret < 0)
		return ret;
	return vhost_check(cfg, "devargs");
}

VUSER_API int vuser_vhost_config_check(const struct vuser_vhost_config *cfg)
{
	return vhost_check(cfg, "config");
}
