/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * A port's configuration: the defaults, the devargs parser and the checks.
 *
 * The keys and defaults are DPDK virtio_user's, so that a devargs string
 * written for it means the same here. The parser is stricter: DPDK reads
 * numbers with strtoull() and silently takes whatever prefix parses, so
 * "queue_size=256k" is 256 and "queues=-1" is 2^64 - 1; vuser refuses any
 * value it would have to guess at, and says which one.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"

/* The virtio split ring's limit on Queue Size. */
#define QUEUE_SIZE_MAX 32768

#define STR_(x) #x
#define STR(x) STR_(x)

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

/*
 * The rules on values, shared by the parser (which quotes the value as
 * written, "0x12c") and the checker (which can only print the number, 300).
 * Each returns why the value is refused and sets *err, or returns NULL.
 */

/*
 * Above the limit is -ERANGE even for a power of two, so that 65536 reads as
 * too large rather than malformed; 0 and the other non-powers are -EINVAL.
 */
static const char *queue_size_bad(unsigned long long n, int *err)
{
	if (n > QUEUE_SIZE_MAX) {
		*err = -ERANGE;
		return "out of range: a power of two in 1.." STR(QUEUE_SIZE_MAX);
	}
	if (n == 0 || (n & (n - 1))) {
		*err = -EINVAL;
		return "not a power of two in 1.." STR(QUEUE_SIZE_MAX);
	}
	return NULL;
}

static const char *queues_bad(unsigned long long n, int *err)
{
	if (n == 0 || n > VUSER_MAX_QUEUE_PAIRS) {
		*err = -ERANGE;
		return "out of range 1.." STR(VUSER_MAX_QUEUE_PAIRS);
	}
	return NULL;
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

static int parse_count(struct span item, struct span v, unsigned *dst,
		       const char *(*bad)(unsigned long long n, int *err))
{
	unsigned long long n;
	const char *why;
	int err;

	if (!parse_number(v, &n))
		return verr(-EINVAL, "devargs: %.*s%s: not a number (decimal, or hex after 0x)",
			    QUOTE(item));
	why = bad(n, &err);
	if (why)
		return verr(err, "devargs: %.*s%s: %s", QUOTE(item), why);
	*dst = (unsigned)n;
	return 0;
}

static int parse_path(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_string(item, v, cfg->path, sizeof(cfg->path));
}

static int parse_iface(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_string(item, v, cfg->iface, sizeof(cfg->iface));
}

static int parse_mac(struct span item, struct span v, struct vuser_port_config *cfg)
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
	memcpy(cfg->mac, mac, sizeof(mac));
	cfg->mac_set = true;
	return 0;

malformed:
	return verr(-EINVAL, "devargs: %.*s%s: not xx:xx:xx:xx:xx:xx in hex", QUOTE(item));
}

static int parse_queue_size(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_count(item, v, &cfg->queue_size, queue_size_bad);
}

static int parse_queues(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_count(item, v, &cfg->queues, queues_bad);
}

static int parse_cq(struct span item, struct span v, struct vuser_port_config *cfg)
{
	cfg->cq_set = true;
	return parse_flag(item, v, &cfg->cq);
}

static int parse_server(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_flag(item, v, &cfg->server);
}

static int parse_mrg_rxbuf(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_flag(item, v, &cfg->mrg_rxbuf);
}

static int parse_in_order(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_flag(item, v, &cfg->in_order);
}

static int parse_packed_vq(struct span item, struct span v, struct vuser_port_config *cfg)
{
	return parse_flag(item, v, &cfg->packed_vq);
}

static const struct devarg_key {
	const char *name;
	int (*parse)(struct span item, struct span v, struct vuser_port_config *cfg);
} keys[] = {
	{ "path", parse_path },
	{ "mac", parse_mac },
	{ "cq", parse_cq },
	{ "queue_size", parse_queue_size },
	{ "queues", parse_queues },
	{ "iface", parse_iface },
	{ "server", parse_server },
	{ "mrg_rxbuf", parse_mrg_rxbuf },
	{ "in_order", parse_in_order },
	{ "packed_vq", parse_packed_vq },
};

static int find_key(struct span key)
{
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == key.len && !memcmp(keys[i].name, key.s, key.len))
			return (int)i;
	return -1;
}

/*
 * who prefixes the messages: "devargs" when the values came from a string,
 * "config" when the program filled the struct.
 * Wrong values are reported before unsupported features: those are the
 * caller's to fix whatever vuser learns to support later.
 */
static int check(const struct vuser_port_config *cfg, const char *who)
{
	size_t path_len = strnlen(cfg->path, sizeof(cfg->path));
	size_t iface_len = strnlen(cfg->iface, sizeof(cfg->iface));
	const char *why;
	struct stat st;
	int err, saved_errno;
	bool chrdev;

	if (path_len == sizeof(cfg->path))
		return verr(-ENAMETOOLONG, "%s: path=%.*s: not NUL-terminated within %d bytes",
			    who, (int)sizeof(cfg->path), cfg->path, VUSER_PATH_MAX);
	if (!path_len)
		return verr(-EINVAL, "%s: path is mandatory (path=<vhost-user socket>)", who);
	if (iface_len == sizeof(cfg->iface))
		return verr(-ENAMETOOLONG, "%s: iface=%.*s: not NUL-terminated within %d bytes",
			    who, (int)sizeof(cfg->iface), cfg->iface, VUSER_IFNAME_MAX);
	why = queues_bad(cfg->queues, &err);
	if (why)
		return verr(err, "%s: queues=%u: %s", who, cfg->queues, why);
	why = queue_size_bad(cfg->queue_size, &err);
	if (why)
		return verr(err, "%s: queue_size=%u: %s", who, cfg->queue_size, why);
	if (cfg->queues > 1 && !cfg->cq)
		return verr(-EINVAL, "%s: cq=0 with queues=%u: multi-queue needs the control queue (cq=1)",
			    who, cfg->queues);
	if (cfg->mac_set) {
		why = mac_bad(cfg->mac);
		if (why)
			return verr(-EINVAL, "%s: mac=%02x:%02x:%02x:%02x:%02x:%02x: %s", who,
				    cfg->mac[0], cfg->mac[1], cfg->mac[2], cfg->mac[3],
				    cfg->mac[4], cfg->mac[5], why);
	}

	/* The library reports through its return value, never through errno. */
	saved_errno = errno;
	chrdev = !stat(cfg->path, &st) && S_ISCHR(st.st_mode);
	errno = saved_errno;
	/* The prefix catches /dev/vhost-net and friends on a host without them. */
	if (chrdev || !strncmp(cfg->path, "/dev/vhost", strlen("/dev/vhost")))
		return verr(-ENOTSUP, "%s: path=%s: a vhost-kernel device; vhost-kernel backend not supported yet",
			    who, cfg->path);
	if (iface_len)
		return verr(-ENOTSUP, "%s: iface=%s: iface applies to the vhost-kernel backend, which vuser does not support yet",
			    who, cfg->iface);
	if (cfg->server)
		return verr(-ENOTSUP, "%s: server=1: server mode is not supported yet", who);
	if (cfg->packed_vq)
		return verr(-ENOTSUP, "%s: packed_vq=1: packed rings are not supported yet", who);
	return 0;
}

VUSER_API void vuser_port_config_init(struct vuser_port_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->queues = 1;
	cfg->queue_size = 256;
	cfg->mrg_rxbuf = true;
	cfg->in_order = true;
}

/* On failure *cfg holds the defaults and whatever was parsed before the error. */
VUSER_API int vuser_port_config_parse(const char *devargs, struct vuser_port_config *cfg)
{
	struct span all, item, key, v;
	const char *p, *end, *eq;
	unsigned seen = 0;
	int k, ret;

	vuser_port_config_init(cfg);
	if (!devargs || !*devargs)
		return verr(-EINVAL, "devargs empty: path=<vhost-user socket> is mandatory");
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
		key = (struct span){ p, (size_t)(eq - p) };
		v = (struct span){ eq + 1, (size_t)(end - eq - 1) };
		if (!key.len)
			return verr(-EINVAL, "devargs: \"%.*s%s\": empty key", QUOTE(item));
		k = find_key(key);
		if (k < 0)
			return verr(-EINVAL, "devargs: %.*s%s: unknown key", QUOTE(item));
		/*
		 * Which of the two was meant is a guess. DPDK takes the default
		 * for a doubled key (and calls a doubled path missing): worse.
		 */
		if (seen & 1u << k)
			return verr(-EINVAL, "devargs: %.*s%s: %s given twice",
				    QUOTE(item), keys[k].name);
		seen |= 1u << k;
		if (!v.len)
			return verr(-EINVAL, "devargs: %s=: empty value", keys[k].name);
		ret = keys[k].parse(item, v, cfg);
		if (ret < 0)
			return ret;
		if (!*end)
			break;
	}

	/* DPDK's default: multi-queue is steered through the control queue. */
	if (!cfg->cq_set && cfg->queues > 1)
		cfg->cq = true;
	return check(cfg, "devargs");
}

VUSER_API int vuser_port_config_check(const struct vuser_port_config *cfg)
{
	return check(cfg, "config");
}
