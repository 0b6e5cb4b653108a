/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The vhost device's devargs parser and configuration checks: every rule,
 * accepted and refused. A refusal must return the exact errno and leave
 * exactly one message, and that message must name the key and quote the
 * value the user has to fix.
 */
#include <unistd.h>

#include "vuser/vhost.h"
#include "testlib.h"

#define SOCK "/tmp/vuser-test-vhost-devargs.sock"
/* A symlink to /dev/null: a character device outside /dev/. */
#define CHR_LINK "/tmp/vuser-test-vhost-devargs.chr"

static int nb_logged;

static void count_log(enum vuser_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
	nb_logged++;
}

/*
 * A refusal: the errno, one message, and what the message must hold. key
 * and value are checked on their own and, both given, as "key=value", the
 * way the message quotes them.
 */
static void expect_err(int ret, int err, const char *key, const char *value,
		       const char *why, const char *what, int before)
{
	char kv[512];

	CHECK_EQ(ret, err);
	CHECK_EQ(nb_logged, 1);
	if (key)
		CHECK_STR_HAS(vuser_last_error(), key);
	if (value)
		CHECK_STR_HAS(vuser_last_error(), value);
	if (key && value) {
		snprintf(kv, sizeof(kv), "%s=%s", key, value);
		CHECK_STR_HAS(vuser_last_error(), kv);
	}
	if (why)
		CHECK_STR_HAS(vuser_last_error(), why);
	if (t_failures != before)
		fprintf(stderr, "  case %s -> %d \"%s\"\n", what, ret, vuser_last_error());
}

static void bad(const char *devargs, int err, const char *key, const char *value,
		const char *why)
{
	struct vuser_vhost_config cfg;
	int before = t_failures, ret;

	nb_logged = 0;
	vuser_set_log(count_log, NULL, VUSER_LOG_ERR);
	ret = vuser_vhost_config_parse(devargs, &cfg);
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	expect_err(ret, err, key, value, why, devargs ? devargs : "(null)", before);
}

static void bad_config(const struct vuser_vhost_config *cfg, int err, const char *key,
		       const char *value, const char *why, const char *what)
{
	int before = t_failures, ret;

	nb_logged = 0;
	vuser_set_log(count_log, NULL, VUSER_LOG_ERR);
	ret = vuser_vhost_config_check(cfg);
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	expect_err(ret, err, key, value, why, what, before);
}

static void same_config(const struct vuser_vhost_config *got,
			const struct vuser_vhost_config *want)
{
	CHECK(!strcmp(got->path, want->path));
	CHECK(!memcmp(got->mac, want->mac, sizeof(want->mac)));
	CHECK_EQ(got->mac_set, want->mac_set);
	CHECK_EQ(got->client, want->client);
	CHECK_EQ(got->mrg_rxbuf, want->mrg_rxbuf);
	CHECK_EQ(got->in_order, want->in_order);
	CHECK_EQ(got->indirect, want->indirect);
	CHECK_EQ(got->event_idx, want->event_idx);
	CHECK_EQ(got->packed_vq, want->packed_vq);
	CHECK_EQ(got->queues, want->queues);
	CHECK_EQ(got->mem_slots, want->mem_slots);
	CHECK_EQ(got->pool, want->pool);
}

static void good(const char *devargs, const struct vuser_vhost_config *want)
{
	struct vuser_vhost_config cfg;
	int before = t_failures;

	nb_logged = 0;
	vuser_set_log(count_log, NULL, VUSER_LOG_ERR);
	CHECK_EQ(vuser_vhost_config_parse(devargs, &cfg), 0);
	same_config(&cfg, want);
	/* What the parser accepts, the checker accepts. */
	CHECK_EQ(vuser_vhost_config_check(&cfg), 0);
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	CHECK_EQ(nb_logged, 0);
	if (t_failures != before)
		fprintf(stderr, "  case %s -> \"%s\"\n", devargs, vuser_last_error());
}

static struct vuser_vhost_config with_path(const char *path)
{
	struct vuser_vhost_config cfg;

	vuser_vhost_config_init(&cfg);
	strcpy(cfg.path, path);
	return cfg;
}

static const struct bad_case {
	const char *devargs;
	int err;
	const char *key, *value, *why;
} bad_cases[] = {
	/* the string's shape */
	{ NULL, -EINVAL, "path", "<vhost-user socket>", "devargs empty" },
	{ "", -EINVAL, "path", "<vhost-user socket>", "devargs empty" },
	{ ",path=" SOCK, -EINVAL, NULL, ",path=" SOCK, "empty item" },
	{ "path=" SOCK ",", -EINVAL, NULL, "path=" SOCK ",", "empty item" },
	{ "path=" SOCK ",,queues=2", -EINVAL, NULL, ",,queues=2", "empty item" },
	{ "path=" SOCK ",client", -EINVAL, NULL, "\"client\"", "not key=value" },
	{ "path", -EINVAL, NULL, "\"path\"", "not key=value" },
	{ "path=" SOCK ",=4", -EINVAL, NULL, "\"=4\"", "empty key" },
	{ "path=", -EINVAL, "path", "", "empty value" },
	{ "path=" SOCK ",queues=", -EINVAL, "queues", "", "empty value" },
	{ "path=" SOCK ",client=", -EINVAL, "client", "", "empty value" },
	{ "path=" SOCK ",mac=", -EINVAL, "mac", "", "empty value" },
	{ "path=" SOCK ",mem_slots=", -EINVAL, "mem_slots", "", "empty value" },
	{ "path=" SOCK ",pool=", -EINVAL, "pool", "", "empty value" },

	/* unknown keys, the port's among them */
	{ "path=" SOCK ",foo=bar", -EINVAL, "foo", "bar", "unknown key" },
	{ "path=" SOCK ",PATH=/tmp/x", -EINVAL, "PATH", "/tmp/x", "unknown key" },
	{ "path=" SOCK ", queues=2", -EINVAL, " queues", "2", "unknown key" },
	{ "path=" SOCK ",queues =2", -EINVAL, "queues ", "2", "unknown key" },
	{ "path=" SOCK ",queue_size=256", -EINVAL, "queue_size", "256", "unknown key" },
	{ "path=" SOCK ",cq=1", -EINVAL, "cq", "1", "unknown key" },
	{ "path=" SOCK ",server=1", -EINVAL, "server", "1", "unknown key" },
	{ "path=" SOCK ",server=0", -EINVAL, "server", "0", "unknown key" },
	{ "path=" SOCK ",packed_vq=2", -EINVAL, "packed_vq", "2", "not 0 or 1" },
	{ "path=" SOCK ",iface=tap0", -EINVAL, "iface", "tap0", "unknown key" },
	{ "path=" SOCK ",mem-slots=8", -EINVAL, "mem-slots", "8", "unknown key" },

	/* each key once */
	{ "path=" SOCK ",path=/tmp/other", -EINVAL, "path", "/tmp/other", "given twice" },
	{ "path=" SOCK ",client=1,client=1", -EINVAL, "client", "1", "given twice" },
	{ "path=" SOCK ",queues=2,queues=2", -EINVAL, "queues", "2", "given twice" },
	{ "path=" SOCK ",mac=02:00:00:00:00:01,mac=02:00:00:00:00:02", -EINVAL,
	  "mac", "02:00:00:00:00:02", "given twice" },
	{ "path=" SOCK ",mrg_rxbuf=0,mrg_rxbuf=1", -EINVAL, "mrg_rxbuf", "1", "given twice" },
	{ "path=" SOCK ",in_order=0,in_order=0", -EINVAL, "in_order", "0", "given twice" },
	{ "path=" SOCK ",indirect=1,indirect=0", -EINVAL, "indirect", "0", "given twice" },
	{ "path=" SOCK ",event_idx=1,event_idx=1", -EINVAL, "event_idx", "1", "given twice" },
	{ "path=" SOCK ",mem_slots=8,mem_slots=16", -EINVAL, "mem_slots", "16", "given twice" },
	{ "path=" SOCK ",pool=0,pool=128", -EINVAL, "pool", "128", "given twice" },
	/* a repeat is refused even when the first one was bad */
	{ "path=" SOCK ",queues=1,queues=", -EINVAL, "queues", "", "given twice" },

	/* queues */
	{ "path=" SOCK ",queues=-1", -EINVAL, "queues", "-1", "not a number" },
	{ "path=" SOCK ",queues=+1", -EINVAL, "queues", "+1", "not a number" },
	{ "path=" SOCK ",queues=1.5", -EINVAL, "queues", "1.5", "not a number" },
	{ "path=" SOCK ",queues=2k", -EINVAL, "queues", "2k", "not a number" },
	{ "path=" SOCK ",queues= 2", -EINVAL, "queues", " 2", "not a number" },
	{ "path=" SOCK ",queues=2 ", -EINVAL, "queues", "2 ", "not a number" },
	{ "path=" SOCK ",queues=0x", -EINVAL, "queues", "0x", "not a number" },
	{ "path=" SOCK ",queues=0b1", -EINVAL, "queues", "0b1", "not a number" },
	{ "path=" SOCK ",queues=0", -ERANGE, "queues", "0", "out of range 1..32" },
	{ "path=" SOCK ",queues=00", -ERANGE, "queues", "00", "1..32" },
	{ "path=" SOCK ",queues=33", -ERANGE, "queues", "33", "1..32" },
	{ "path=" SOCK ",queues=0x21", -ERANGE, "queues", "0x21", "1..32" },
	/* 2^32 + 1: would be 1 if cut to an unsigned */
	{ "path=" SOCK ",queues=4294967297", -ERANGE, "queues", "4294967297", "1..32" },
	/* 2^64 + 1: would be 1 if the overflow wrapped */
	{ "path=" SOCK ",queues=18446744073709551617", -ERANGE, "queues",
	  "18446744073709551617", "1..32" },

	/* mem_slots */
	{ "path=" SOCK ",mem_slots=64k", -EINVAL, "mem_slots", "64k", "not a number" },
	{ "path=" SOCK ",mem_slots=-1", -EINVAL, "mem_slots", "-1", "not a number" },
	{ "path=" SOCK ",mem_slots=auto", -EINVAL, "mem_slots", "auto", "not a number" },
	{ "path=" SOCK ",mem_slots=0", -ERANGE, "mem_slots", "0", "out of range 1..509" },
	{ "path=" SOCK ",mem_slots=510", -ERANGE, "mem_slots", "510", "1..509" },
	{ "path=" SOCK ",mem_slots=0x1fe", -ERANGE, "mem_slots", "0x1fe", "1..509" },
	/* 2^32 + 64 */
	{ "path=" SOCK ",mem_slots=4294967360", -ERANGE, "mem_slots", "4294967360", "1..509" },

	/* pool */
	{ "path=" SOCK ",pool=1M", -EINVAL, "pool", "1M", "not a number" },
	{ "path=" SOCK ",pool=auto", -EINVAL, "pool", "auto", "not a number" },
	{ "path=" SOCK ",pool=-64", -EINVAL, "pool", "-64", "not a number" },
	{ "path=" SOCK ",pool=1", -ERANGE, "pool", "1", "0 (auto) or 64..1048576" },
	{ "path=" SOCK ",pool=10", -ERANGE, "pool", "10", "out of range: 0 (auto) or 64..1048576" },
	{ "path=" SOCK ",pool=63", -ERANGE, "pool", "63", "64..1048576" },
	{ "path=" SOCK ",pool=1048577", -ERANGE, "pool", "1048577", "64..1048576" },
	{ "path=" SOCK ",pool=0x100001", -ERANGE, "pool", "0x100001", "64..1048576" },
	/* 2^32: would be 0, auto, if cut to an unsigned */
	{ "path=" SOCK ",pool=4294967296", -ERANGE, "pool", "4294967296", "64..1048576" },
	{ "path=" SOCK ",pool=18446744073709551616", -ERANGE, "pool",
	  "18446744073709551616", "64..1048576" },

	/* flags */
	{ "path=" SOCK ",client=2", -EINVAL, "client", "2", "not 0 or 1" },
	{ "path=" SOCK ",client=01", -EINVAL, "client", "01", "not 0 or 1" },
	{ "path=" SOCK ",client=true", -EINVAL, "client", "true", "not 0 or 1" },
	{ "path=" SOCK ",client=-1", -EINVAL, "client", "-1", "not 0 or 1" },
	{ "path=" SOCK ",mrg_rxbuf=0x1", -EINVAL, "mrg_rxbuf", "0x1", "not 0 or 1" },
	{ "path=" SOCK ",mrg_rxbuf= 1", -EINVAL, "mrg_rxbuf", " 1", "not 0 or 1" },
	{ "path=" SOCK ",in_order=1 ", -EINVAL, "in_order", "1 ", "not 0 or 1" },
	{ "path=" SOCK ",in_order=on", -EINVAL, "in_order", "on", "not 0 or 1" },
	{ "path=" SOCK ",indirect=yes", -EINVAL, "indirect", "yes", "not 0 or 1" },
	{ "path=" SOCK ",indirect=10", -EINVAL, "indirect", "10", "not 0 or 1" },
	{ "path=" SOCK ",event_idx=false", -EINVAL, "event_idx", "false", "not 0 or 1" },
	{ "path=" SOCK ",event_idx=00", -EINVAL, "event_idx", "00", "not 0 or 1" },

	/* path */
	{ "queues=2", -EINVAL, "path", "<vhost-user socket>", "path is mandatory" },
	{ "client=1,mac=02:00:00:00:00:01", -EINVAL, "path", NULL, "path is mandatory" },
	{ "path=/dev/null", -EINVAL, "path", "/dev/null", "vhost-user socket path" },
	{ "path=/dev/vhost-net", -EINVAL, "path", "/dev/vhost-net", "vhost-user socket path" },
	/* under /dev/ though no device (and maybe no file) */
	{ "path=/dev/shm/vuser.sock", -EINVAL, "path", "/dev/shm/vuser.sock",
	  "vhost-user socket path" },
	{ "path=/dev/", -EINVAL, "path", "/dev/", "vhost-user socket path" },
	/* a character device outside /dev/ */
	{ "path=" CHR_LINK, -EINVAL, "path", CHR_LINK, "vhost-user socket path" },
	/* a wrong value elsewhere is still reported, once */
	{ "path=/dev/null,queues=0", -ERANGE, "queues", "0", "1..32" },

	/* mac */
	{ "path=" SOCK ",mac=02:00:00:00:00", -EINVAL, "mac", "02:00:00:00:00", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00:01:02", -EINVAL, "mac", "02:00:00:00:00:01:02",
	  "xx:xx" },
	{ "path=" SOCK ",mac=2:0:0:0:0:1", -EINVAL, "mac", "2:0:0:0:0:1", "xx:xx" },
	{ "path=" SOCK ",mac=02-00-00-00-00-01", -EINVAL, "mac", "02-00-00-00-00-01", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00:0g", -EINVAL, "mac", "02:00:00:00:00:0g", "xx:xx" },
	{ "path=" SOCK ",mac=020000000001", -EINVAL, "mac", "020000000001", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00:01 ", -EINVAL, "mac", "02:00:00:00:00:01 ", "xx:xx" },
	{ "path=" SOCK ",mac=01:00:5e:00:00:01", -EINVAL, "mac", "01:00:5e:00:00:01", "multicast" },
	{ "path=" SOCK ",mac=33:33:00:00:00:01", -EINVAL, "mac", "33:33:00:00:00:01", "multicast" },
	{ "path=" SOCK ",mac=ff:ff:ff:ff:ff:ff", -EINVAL, "mac", "ff:ff:ff:ff:ff:ff", "broadcast" },
	{ "path=" SOCK ",mac=00:00:00:00:00:00", -EINVAL, "mac", "00:00:00:00:00:00", "all-zero" },
};

static void test_bad_devargs(void)
{
	const struct bad_case *c;

	for (c = bad_cases; c < bad_cases + sizeof(bad_cases) / sizeof(bad_cases[0]); c++)
		bad(c->devargs, c->err, c->key, c->value, c->why);
}

/*
 * Every field of the expected config, spelled out rather than derived from
 * vuser_vhost_config_init(), so that the defaults are under test too.
 */
#define WANT(path_, client_, queues_, mrg_rxbuf_, in_order_, indirect_, event_idx_, \
	     packed_vq_, mem_slots_, pool_)                                          \
	.path = path_, .client = client_, .queues = queues_, .mrg_rxbuf = mrg_rxbuf_, \
	.in_order = in_order_, .indirect = indirect_, .event_idx = event_idx_,       \
	.packed_vq = packed_vq_, .mem_slots = mem_slots_, .pool = pool_

#define MAC(a, b, c, d, e, f) .mac = { a, b, c, d, e, f }, .mac_set = true

static const struct good_case {
	const char *devargs;
	struct vuser_vhost_config want;
} good_cases[] = {
	/* path, client, queues, mrg_rxbuf, in_order, indirect, event_idx, packed_vq, mem_slots, pool */
	{ "path=" SOCK, { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	/* the first '=' splits: the rest is the value */
	{ "path=/tmp/a=b", { WANT("/tmp/a=b", 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	/* an existing directory is no character device */
	{ "path=/tmp", { WANT("/tmp", 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	/* a name that only starts with "/dev" is not under /dev/ */
	{ "path=/devices.sock", { WANT("/devices.sock", 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=dev/x.sock", { WANT("dev/x.sock", 0, 1, 1, 1, 1, 1, 1, 64, 0) } },

	{ "path=" SOCK ",client=1", { WANT(SOCK, 1, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",client=0", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",mrg_rxbuf=0", { WANT(SOCK, 0, 1, 0, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",mrg_rxbuf=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",in_order=0", { WANT(SOCK, 0, 1, 1, 0, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",in_order=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",indirect=0", { WANT(SOCK, 0, 1, 1, 1, 0, 1, 1, 64, 0) } },
	{ "path=" SOCK ",indirect=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",event_idx=0", { WANT(SOCK, 0, 1, 1, 1, 1, 0, 1, 64, 0) } },
	{ "path=" SOCK ",event_idx=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",packed_vq=0", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 0, 64, 0) } },
	{ "path=" SOCK ",packed_vq=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },

	{ "path=" SOCK ",queues=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",queues=4", { WANT(SOCK, 0, 4, 1, 1, 1, 1, 1, 64, 0) } },
	/* no control queue to ask for, unlike the port's cq */
	{ "path=" SOCK ",queues=32", { WANT(SOCK, 0, 32, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",queues=0x20", { WANT(SOCK, 0, 32, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",queues=0X0a", { WANT(SOCK, 0, 10, 1, 1, 1, 1, 1, 64, 0) } },
	/* a leading 0 is decimal, not octal */
	{ "path=" SOCK ",queues=010", { WANT(SOCK, 0, 10, 1, 1, 1, 1, 1, 64, 0) } },

	{ "path=" SOCK ",mem_slots=1", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 1, 0) } },
	{ "path=" SOCK ",mem_slots=8", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 8, 0) } },
	{ "path=" SOCK ",mem_slots=509", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 509, 0) } },
	{ "path=" SOCK ",mem_slots=0x1fd", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 509, 0) } },

	{ "path=" SOCK ",pool=0", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",pool=00", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0) } },
	{ "path=" SOCK ",pool=64", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 64) } },
	{ "path=" SOCK ",pool=4096", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 4096) } },
	{ "path=" SOCK ",pool=1048576", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 1048576) } },
	{ "path=" SOCK ",pool=0x100000", { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 1048576) } },

	{ "path=" SOCK ",mac=AA:BB:CC:DD:EE:0F",
	  { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0), MAC(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f) } },
	{ "path=" SOCK ",mac=aa:bB:Cc:dd:ee:0f",
	  { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0), MAC(0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f) } },
	/* only the lowest bit of the first octet means multicast */
	{ "path=" SOCK ",mac=fe:ff:ff:ff:ff:ff",
	  { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0), MAC(0xfe, 0xff, 0xff, 0xff, 0xff, 0xff) } },
	{ "path=" SOCK ",mac=00:00:00:00:00:01",
	  { WANT(SOCK, 0, 1, 1, 1, 1, 1, 1, 64, 0), MAC(0, 0, 0, 0, 0, 1) } },

	/* every key at once, in another order */
	{ "pool=2048,mem_slots=128,packed_vq=0,event_idx=0,indirect=0,in_order=0,mrg_rxbuf=0,"
	  "mac=02:00:00:00:00:42,queues=8,client=1,path=" SOCK,
	  { WANT(SOCK, 1, 8, 0, 0, 0, 0, 0, 128, 2048), MAC(0x02, 0, 0, 0, 0, 0x42) } },
};

static void test_good_devargs(void)
{
	const struct good_case *c;

	for (c = good_cases; c < good_cases + sizeof(good_cases) / sizeof(good_cases[0]); c++)
		good(c->devargs, &c->want);
}

static void test_defaults(void)
{
	struct vuser_vhost_config cfg;

	memset(&cfg, 0xa5, sizeof(cfg));
	vuser_vhost_config_init(&cfg);
	CHECK_EQ(cfg.path[0], '\0');
	CHECK_EQ(cfg.mac_set, 0);
	CHECK_EQ(cfg.client, 0);
	CHECK_EQ(cfg.queues, 1);
	CHECK_EQ(cfg.mrg_rxbuf, 1);
	CHECK_EQ(cfg.in_order, 1);
	CHECK_EQ(cfg.indirect, 1);
	CHECK_EQ(cfg.event_idx, 1);
	CHECK_EQ(cfg.packed_vq, 1);
	CHECK_EQ(cfg.mem_slots, 64);
	CHECK_EQ(cfg.pool, 0);
	/* defaults need a path before they pass */
	bad_config(&cfg, -EINVAL, "path", NULL, "path is mandatory", "init only");

	/* parse starts from the defaults, whatever the struct held */
	memset(&cfg, 0xa5, sizeof(cfg));
	CHECK_EQ(vuser_vhost_config_parse("path=" SOCK, &cfg), 0);
	CHECK_EQ(cfg.mac_set, 0);
	CHECK_EQ(cfg.mem_slots, 64);
	CHECK_EQ(cfg.pool, 0);
}

/* "path=/tmp/aaa...a" whose path is len characters. */
static const char *long_path(char *buf, size_t len)
{
	strcpy(buf, "path=/tmp/");
	memset(buf + strlen(buf), 'a', len - strlen("/tmp/"));
	buf[strlen("path=") + len] = '\0';
	return buf;
}

static void test_path_length(void)
{
	char buf[512];
	struct vuser_vhost_config want;

	long_path(buf, VUSER_PATH_MAX - 1);
	want = with_path(buf + strlen("path="));
	good(buf, &want);

	long_path(buf, VUSER_PATH_MAX);
	bad(buf, -ENAMETOOLONG, "path", "/tmp/aaaa", "108 characters, at most 107");

	/* A long value is quoted cut short, so the reason still fits. */
	long_path(buf, 400);
	bad(buf, -ENAMETOOLONG, "path", "/tmp/aaaa", "...: 400 characters, at most 107");
}

static void test_check(void)
{
	struct vuser_vhost_config cfg;

	cfg = with_path(SOCK);
	CHECK_EQ(vuser_vhost_config_check(&cfg), 0);
	cfg.client = true;
	cfg.queues = VUSER_MAX_QUEUE_PAIRS;
	cfg.mem_slots = VUSER_VHOST_MAX_MEM_SLOTS;
	cfg.pool = 1048576;
	cfg.mac_set = true;
	memcpy(cfg.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, 6);
	CHECK_EQ(vuser_vhost_config_check(&cfg), 0);
	cfg.mem_slots = 1;
	cfg.pool = 64;
	CHECK_EQ(vuser_vhost_config_check(&cfg), 0);

	/* mac is not looked at unless it is set */
	cfg = with_path(SOCK);
	memset(cfg.mac, 0xff, sizeof(cfg.mac));
	CHECK_EQ(vuser_vhost_config_check(&cfg), 0);

	cfg = with_path(SOCK);
	memset(cfg.path, 'a', sizeof(cfg.path));
	bad_config(&cfg, -ENAMETOOLONG, "path", "aaaa", "not NUL-terminated within 108",
		   "unterminated path");

	cfg = with_path("");
	bad_config(&cfg, -EINVAL, "path", NULL, "path is mandatory", "empty path");

	cfg = with_path("/dev/null");
	bad_config(&cfg, -EINVAL, "path", "/dev/null", "vhost-user socket path", "/dev/null");
	cfg = with_path("/dev/vhost-user.sock");
	bad_config(&cfg, -EINVAL, "path", "/dev/vhost-user.sock", "vhost-user socket path",
		   "under /dev/");
	cfg = with_path(CHR_LINK);
	bad_config(&cfg, -EINVAL, "path", CHR_LINK, "vhost-user socket path", "chrdev link");

	cfg = with_path(SOCK);
	cfg.queues = 0;
	bad_config(&cfg, -ERANGE, "queues", "0", "1..32", "queues 0");
	cfg.queues = VUSER_MAX_QUEUE_PAIRS + 1;
	bad_config(&cfg, -ERANGE, "queues", "33", "1..32", "queues 33");

	cfg = with_path(SOCK);
	cfg.mem_slots = 0;
	bad_config(&cfg, -ERANGE, "mem_slots", "0", "1..509", "mem_slots 0");
	cfg.mem_slots = VUSER_VHOST_MAX_MEM_SLOTS + 1;
	bad_config(&cfg, -ERANGE, "mem_slots", "510", "1..509", "mem_slots 510");

	cfg = with_path(SOCK);
	cfg.pool = 10;
	bad_config(&cfg, -ERANGE, "pool", "10", "0 (auto) or 64..1048576", "pool 10");
	cfg.pool = 63;
	bad_config(&cfg, -ERANGE, "pool", "63", "64..1048576", "pool 63");
	cfg.pool = 1048577;
	bad_config(&cfg, -ERANGE, "pool", "1048577", "64..1048576", "pool 1048577");

	cfg = with_path(SOCK);
	cfg.mac_set = true;
	memcpy(cfg.mac, (uint8_t[6]){ 0x01, 0x00, 0x5e, 0, 0, 1 }, 6);
	bad_config(&cfg, -EINVAL, "mac", "01:00:5e:00:00:01", "multicast", "multicast mac");
	memset(cfg.mac, 0xff, sizeof(cfg.mac));
	bad_config(&cfg, -EINVAL, "mac", "ff:ff:ff:ff:ff:ff", "broadcast", "broadcast mac");
	memset(cfg.mac, 0, sizeof(cfg.mac));
	bad_config(&cfg, -EINVAL, "mac", "00:00:00:00:00:00", "all-zero", "zero mac");

	/* the checker must not touch errno */
	cfg = with_path("/nonexistent/vuser.sock");
	errno = 1234;
	CHECK_EQ(vuser_vhost_config_check(&cfg), 0);
	CHECK_EQ(errno, 1234);
	cfg = with_path(CHR_LINK);
	errno = 1234;
	vuser_vhost_config_check(&cfg);
	CHECK_EQ(errno, 1234);
}

int main(void)
{
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	unlink(CHR_LINK);
	if (symlink("/dev/null", CHR_LINK)) {
		perror("symlink " CHR_LINK);
		return 1;
	}
	test_bad_devargs();
	test_defaults();
	test_good_devargs();
	test_path_length();
	test_check();
	unlink(CHR_LINK);
	return t_result();
}
