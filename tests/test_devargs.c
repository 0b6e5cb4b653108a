/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The devargs parser and the configuration checks: every rule, accepted and
 * refused. A refusal must return the exact errno and leave exactly one
 * message, and that message must quote what the user has to fix.
 */
#include "vuser/vuser.h"
#include "testlib.h"

#define SOCK "/tmp/vuser-test-devargs.sock"

static int nb_logged;

static void count_log(enum vuser_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)msg;
	(void)arg;
	nb_logged++;
}

/* A refusal: the errno, one message, and what the message must quote. */
static void expect_err(int ret, int err, const char *has1, const char *has2,
		       const char *what, int before)
{
	CHECK_EQ(ret, err);
	CHECK_EQ(nb_logged, 1);
	CHECK_STR_HAS(vuser_last_error(), has1);
	if (has2)
		CHECK_STR_HAS(vuser_last_error(), has2);
	if (t_failures != before)
		fprintf(stderr, "  case %s -> %d \"%s\"\n", what, ret, vuser_last_error());
}

static void bad(const char *devargs, int err, const char *has1, const char *has2)
{
	struct vuser_port_config cfg;
	int before = t_failures, ret;

	nb_logged = 0;
	vuser_set_log(count_log, NULL, VUSER_LOG_ERR);
	ret = vuser_port_config_parse(devargs, &cfg);
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	expect_err(ret, err, has1, has2, devargs ? devargs : "(null)", before);
}

static void bad_config(const struct vuser_port_config *cfg, int err, const char *has1,
		       const char *has2, const char *what)
{
	int before = t_failures, ret;

	nb_logged = 0;
	vuser_set_log(count_log, NULL, VUSER_LOG_ERR);
	ret = vuser_port_config_check(cfg);
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	expect_err(ret, err, has1, has2, what, before);
}

static void same_config(const struct vuser_port_config *got,
			const struct vuser_port_config *want)
{
	CHECK(!strcmp(got->path, want->path));
	CHECK(!strcmp(got->iface, want->iface));
	CHECK(!memcmp(got->mac, want->mac, sizeof(want->mac)));
	CHECK_EQ(got->mac_set, want->mac_set);
	CHECK_EQ(got->cq, want->cq);
	CHECK_EQ(got->cq_set, want->cq_set);
	CHECK_EQ(got->server, want->server);
	CHECK_EQ(got->reconnect, want->reconnect);
	CHECK_EQ(got->mrg_rxbuf, want->mrg_rxbuf);
	CHECK_EQ(got->in_order, want->in_order);
	CHECK_EQ(got->packed_vq, want->packed_vq);
	CHECK_EQ(got->notify, want->notify);
	CHECK_EQ(got->queues, want->queues);
	CHECK_EQ(got->queue_size, want->queue_size);
}

static void good(const char *devargs, const struct vuser_port_config *want)
{
	struct vuser_port_config cfg;
	int before = t_failures;

	CHECK_EQ(vuser_port_config_parse(devargs, &cfg), 0);
	same_config(&cfg, want);
	/* What the parser accepts, the checker accepts. */
	CHECK_EQ(vuser_port_config_check(&cfg), 0);
	if (t_failures != before)
		fprintf(stderr, "  case %s -> \"%s\"\n", devargs, vuser_last_error());
}

static struct vuser_port_config with_path(const char *path)
{
	struct vuser_port_config cfg;

	vuser_port_config_init(&cfg);
	strcpy(cfg.path, path);
	return cfg;
}

static const struct bad_case {
	const char *devargs;
	int err;
	const char *has1, *has2;
} bad_cases[] = {
	/* the string's shape */
	{ NULL, -EINVAL, "devargs empty", "path" },
	{ "", -EINVAL, "devargs empty", "path" },
	{ ",path=" SOCK, -EINVAL, "empty item", ",path=" SOCK },
	{ "path=" SOCK ",", -EINVAL, "empty item", "path=" SOCK "," },
	{ "path=" SOCK ",,queues=2", -EINVAL, "empty item", ",,queues=2" },
	{ "path=" SOCK ",queues", -EINVAL, "\"queues\"", "not key=value" },
	{ "path", -EINVAL, "\"path\"", "not key=value" },
	{ "path=" SOCK ",=4", -EINVAL, "\"=4\"", "empty key" },
	{ "path=" SOCK ",queues=", -EINVAL, "queues=", "empty value" },
	{ "path=", -EINVAL, "path=", "empty value" },
	{ "path=" SOCK ",foo=bar", -EINVAL, "foo=bar", "unknown key" },
	{ "path=" SOCK ",PATH=/tmp/x", -EINVAL, "PATH=/tmp/x", "unknown key" },
	{ "path=" SOCK ", queues=2", -EINVAL, " queues=2", "unknown key" },
	{ "path=" SOCK ",queues =2", -EINVAL, "queues =2", "unknown key" },
	{ "path=" SOCK ",queues=2,queues=2", -EINVAL, "queues=2", "given twice" },
	{ "path=" SOCK ",path=/tmp/other", -EINVAL, "path=/tmp/other", "given twice" },
	{ "path=" SOCK ",cq=1,cq=0", -EINVAL, "cq=0", "given twice" },
	{ "path=" SOCK ",mac=02:00:00:00:00:01,mac=02:00:00:00:00:02", -EINVAL,
	  "mac=02:00:00:00:00:02", "given twice" },

	/* numbers */
	{ "path=" SOCK ",queue_size=256k", -EINVAL, "queue_size=256k", "not a number" },
	{ "path=" SOCK ",queue_size= 4", -EINVAL, "queue_size= 4", "not a number" },
	{ "path=" SOCK ",queue_size=4 ", -EINVAL, "queue_size=4 ", "not a number" },
	{ "path=" SOCK ",queue_size=1.5", -EINVAL, "queue_size=1.5", "not a number" },
	{ "path=" SOCK ",queue_size=0x", -EINVAL, "queue_size=0x", "not a number" },
	{ "path=" SOCK ",queue_size=0x1g", -EINVAL, "queue_size=0x1g", "not a number" },
	{ "path=" SOCK ",queue_size=1e3", -EINVAL, "queue_size=1e3", "not a number" },
	{ "path=" SOCK ",queues=-1", -EINVAL, "queues=-1", "not a number" },
	{ "path=" SOCK ",queues=+1", -EINVAL, "queues=+1", "not a number" },
	{ "path=" SOCK ",queues=1.5", -EINVAL, "queues=1.5", "not a number" },
	{ "path=" SOCK ",queues=x2", -EINVAL, "queues=x2", "not a number" },
	{ "path=" SOCK ",queues=0b1", -EINVAL, "queues=0b1", "not a number" },
	{ "path=" SOCK ",queues=0", -ERANGE, "queues=0", "1..32" },
	{ "path=" SOCK ",queues=00", -ERANGE, "queues=00", "1..32" },
	{ "path=" SOCK ",queues=33", -ERANGE, "queues=33", "1..32" },
	{ "path=" SOCK ",queues=0x21", -ERANGE, "queues=0x21", "1..32" },
	/* 2^32 + 1: would be 1 if cut to an unsigned */
	{ "path=" SOCK ",queues=4294967297", -ERANGE, "queues=4294967297", "1..32" },
	/* 2^64 + 1: would be 1 if the overflow wrapped */
	{ "path=" SOCK ",queues=18446744073709551617", -ERANGE,
	  "queues=18446744073709551617", "1..32" },
	{ "path=" SOCK ",queues=0x10000000000000001", -ERANGE,
	  "queues=0x10000000000000001", "1..32" },
	{ "path=" SOCK ",queue_size=0", -EINVAL, "queue_size=0", "not a power of two in 1..32768" },
	{ "path=" SOCK ",queue_size=300", -EINVAL, "queue_size=300",
	  "not a power of two in 1..32768" },
	{ "path=" SOCK ",queue_size=0x12c", -EINVAL, "queue_size=0x12c", "1..32768" },
	{ "path=" SOCK ",queue_size=3", -EINVAL, "queue_size=3", "1..32768" },
	{ "path=" SOCK ",queue_size=32769", -ERANGE, "queue_size=32769", "1..32768" },
	{ "path=" SOCK ",queue_size=65536", -ERANGE, "queue_size=65536", "1..32768" },
	/* 2^32 + 256 */
	{ "path=" SOCK ",queue_size=4294967552", -ERANGE, "queue_size=4294967552", "1..32768" },
	{ "path=" SOCK ",queue_size=18446744073709551616", -ERANGE,
	  "queue_size=18446744073709551616", "1..32768" },

	/* flags */
	{ "path=" SOCK ",cq=2", -EINVAL, "cq=2", "not 0 or 1" },
	{ "path=" SOCK ",cq=01", -EINVAL, "cq=01", "not 0 or 1" },
	{ "path=" SOCK ",cq=true", -EINVAL, "cq=true", "not 0 or 1" },
	{ "path=" SOCK ",cq=", -EINVAL, "cq=", "empty value" },
	{ "path=" SOCK ",server=yes", -EINVAL, "server=yes", "not 0 or 1" },
	{ "path=" SOCK ",server=-1", -EINVAL, "server=-1", "not 0 or 1" },
	{ "path=" SOCK ",reconnect=2", -EINVAL, "reconnect=2", "not 0 or 1" },
	{ "path=" SOCK ",reconnect=", -EINVAL, "reconnect=", "empty value" },
	{ "path=" SOCK ",reconnect=1,reconnect=1", -EINVAL, "reconnect=1", "given twice" },
	{ "path=" SOCK ",mrg_rxbuf=0x1", -EINVAL, "mrg_rxbuf=0x1", "not 0 or 1" },
	{ "path=" SOCK ",mrg_rxbuf= 1", -EINVAL, "mrg_rxbuf= 1", "not 0 or 1" },
	{ "path=" SOCK ",in_order=1 ", -EINVAL, "in_order=1 ", "not 0 or 1" },
	{ "path=" SOCK ",in_order=on", -EINVAL, "in_order=on", "not 0 or 1" },
	{ "path=" SOCK ",packed_vq=10", -EINVAL, "packed_vq=10", "not 0 or 1" },
	{ "path=" SOCK ",packed_vq=false", -EINVAL, "packed_vq=false", "not 0 or 1" },
	{ "path=" SOCK ",notify=2", -EINVAL, "notify=2", "not 0 or 1" },
	{ "path=" SOCK ",notify", -EINVAL, "notify", NULL },
	{ "path=" SOCK ",notify=0,notify=0", -EINVAL, "notify=0", "given twice" },

	/* path and iface */
	{ "queues=2", -EINVAL, "path is mandatory", NULL },
	{ "mac=02:00:00:00:00:01,cq=1", -EINVAL, "path is mandatory", NULL },
	{ "path=/dev/vhost-net", -ENOTSUP, "path=/dev/vhost-net",
	  "vhost-kernel backend not supported yet" },
	{ "path=/dev/vhost-vdpa-0", -ENOTSUP, "path=/dev/vhost-vdpa-0",
	  "vhost-kernel backend not supported yet" },
	/* a character device, though not under the vhost name */
	{ "path=/dev/null", -ENOTSUP, "path=/dev/null", "vhost-kernel backend not supported yet" },
	{ "path=" SOCK ",iface=tap0", -ENOTSUP, "iface=tap0",
	  "iface applies to the vhost-kernel backend, which vuser does not support yet" },
	{ "path=" SOCK ",iface=fifteen-chars-x", -ENOTSUP, "iface=fifteen-chars-x", "vhost-kernel" },
	{ "path=" SOCK ",iface=sixteen-chars-xx", -ENAMETOOLONG, "iface=sixteen-chars-xx",
	  "at most 15" },

	/* mac */
	{ "path=" SOCK ",mac=02:00:00:00:00", -EINVAL, "mac=02:00:00:00:00", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00:01:02", -EINVAL, "mac=02:00:00:00:00:01:02", "xx:xx" },
	{ "path=" SOCK ",mac=2:00:00:00:00:01", -EINVAL, "mac=2:00:00:00:00:01", "xx:xx" },
	{ "path=" SOCK ",mac=2:0:0:0:0:1", -EINVAL, "mac=2:0:0:0:0:1", "xx:xx" },
	{ "path=" SOCK ",mac=02-00-00-00-00-01", -EINVAL, "mac=02-00-00-00-00-01", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00:0g", -EINVAL, "mac=02:00:00:00:00:0g", "xx:xx" },
	{ "path=" SOCK ",mac=020000000001", -EINVAL, "mac=020000000001", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00:01 ", -EINVAL, "mac=02:00:00:00:00:01 ", "xx:xx" },
	{ "path=" SOCK ",mac= 02:00:00:00:00:1", -EINVAL, "mac= 02:00:00:00:00:1", "xx:xx" },
	{ "path=" SOCK ",mac=02:00:00:00:00::", -EINVAL, "mac=02:00:00:00:00::", "xx:xx" },
	{ "path=" SOCK ",mac=01:00:5e:00:00:01", -EINVAL, "mac=01:00:5e:00:00:01", "multicast" },
	{ "path=" SOCK ",mac=33:33:00:00:00:01", -EINVAL, "mac=33:33:00:00:00:01", "multicast" },
	{ "path=" SOCK ",mac=ff:ff:ff:ff:ff:ff", -EINVAL, "mac=ff:ff:ff:ff:ff:ff", "broadcast" },
	{ "path=" SOCK ",mac=FF:FF:FF:FF:FF:FF", -EINVAL, "mac=FF:FF:FF:FF:FF:FF", "broadcast" },
	{ "path=" SOCK ",mac=00:00:00:00:00:00", -EINVAL, "mac=00:00:00:00:00:00", "all-zero" },

	/* combinations and what is not supported yet */
	{ "path=" SOCK ",queues=2,cq=0", -EINVAL, "cq=0 with queues=2",
	  "multi-queue needs the control queue (cq=1)" },
	{ "path=" SOCK ",cq=0,queues=32", -EINVAL, "cq=0 with queues=32", "cq=1" },
	/* a server takes every backend: reconnect=0 cannot mean anything there */
	{ "path=" SOCK ",server=1,reconnect=0", -EINVAL, "reconnect=0 with server=1",
	  "reconnect applies to client mode" },
	{ "reconnect=0,path=" SOCK ",server=1", -EINVAL, "reconnect=0 with server=1", NULL },
	/* a wrong value is reported before an unsupported feature */
	{ "path=" SOCK ",server=1,queues=2,cq=0", -EINVAL, "cq=0 with queues=2", NULL },
	{ "path=" SOCK ",server=1,iface=tap0", -ENOTSUP, "iface=tap0", "vhost-kernel" },
};

static void test_bad_devargs(void)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		bad(bad_cases[i].devargs, bad_cases[i].err, bad_cases[i].has1, bad_cases[i].has2);
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
	struct vuser_port_config want;

	long_path(buf, VUSER_PATH_MAX - 1);
	want = with_path(buf + strlen("path="));
	good(buf, &want);

	long_path(buf, VUSER_PATH_MAX);
	bad(buf, -ENAMETOOLONG, "path=/tmp/aaaa", "108 characters, at most 107");

	/* A long value is quoted cut short, so the reason still fits. */
	long_path(buf, 400);
	bad(buf, -ENAMETOOLONG, "path=/tmp/aaaa", "...: 400 characters, at most 107");
}

static void test_good_devargs(void)
{
	struct vuser_port_config want, cfg;

	vuser_port_config_init(&cfg);
	CHECK_EQ(cfg.path[0], '\0');
	CHECK_EQ(cfg.iface[0], '\0');
	CHECK_EQ(cfg.queues, 1);
	CHECK_EQ(cfg.queue_size, 256);
	CHECK_EQ(cfg.mrg_rxbuf, 1);
	CHECK_EQ(cfg.in_order, 1);
	CHECK_EQ(cfg.cq, 0);
	CHECK_EQ(cfg.cq_set, 0);
	CHECK_EQ(cfg.server, 0);
	CHECK_EQ(cfg.reconnect, 1);
	CHECK_EQ(cfg.packed_vq, 0);
	CHECK_EQ(cfg.notify, 1);
	CHECK_EQ(cfg.mac_set, 0);
	/* defaults need a path before they pass */
	bad_config(&cfg, -EINVAL, "path is mandatory", NULL, "init only");

	want = with_path(SOCK);
	good("path=" SOCK, &want);

	/* the first '=' splits: the rest is the value */
	want = with_path("/tmp/a=b");
	good("path=/tmp/a=b", &want);

	/* an existing directory is no character device */
	want = with_path("/tmp");
	good("path=/tmp", &want);

	want = with_path(SOCK);
	want.queues = 4;
	want.cq = true;		/* on by default with multi-queue */
	good("path=" SOCK ",queues=4", &want);

	want.queues = VUSER_MAX_QUEUE_PAIRS;
	good("path=" SOCK ",queues=32", &want);
	good("path=" SOCK ",queues=0x20", &want);
	want.cq_set = true;
	good("path=" SOCK ",queues=32,cq=1", &want);
	good("cq=1,queues=0X20,path=" SOCK, &want);

	want = with_path(SOCK);
	want.cq_set = true;
	good("path=" SOCK ",cq=0", &want);
	good("path=" SOCK ",cq=0,queues=1", &want);
	want.cq = true;
	good("path=" SOCK ",cq=1", &want);

	want = with_path(SOCK);
	want.queue_size = 32768;
	good("path=" SOCK ",queue_size=32768", &want);
	good("path=" SOCK ",queue_size=0x8000", &want);
	want.queue_size = 1;
	good("path=" SOCK ",queue_size=1", &want);
	want.queue_size = 1024;
	good("path=" SOCK ",queue_size=0x400", &want);
	good("path=" SOCK ",queue_size=0x0400", &want);
	good("path=" SOCK ",queue_size=0X400", &want);
	/* a leading 0 is decimal, not octal */
	want.queue_size = 64;
	good("path=" SOCK ",queue_size=064", &want);
	want.queue_size = 512;
	good("path=" SOCK ",queue_size=0x00000000000000000000200", &want);

	want = with_path(SOCK);
	want.mac_set = true;
	memcpy(want.mac, (uint8_t[6]){ 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x0f }, 6);
	good("path=" SOCK ",mac=AA:BB:CC:DD:EE:0F", &want);
	good("path=" SOCK ",mac=aa:bb:cc:dd:ee:0f", &want);
	good("path=" SOCK ",mac=Aa:bB:cc:DD:ee:0F", &want);
	/* only the lowest bit of the first octet means multicast */
	memcpy(want.mac, (uint8_t[6]){ 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff }, 6);
	good("path=" SOCK ",mac=fe:ff:ff:ff:ff:ff", &want);
	memcpy(want.mac, (uint8_t[6]){ 0, 0, 0, 0, 0, 1 }, 6);
	good("path=" SOCK ",mac=00:00:00:00:00:01", &want);

	want = with_path(SOCK);
	want.mrg_rxbuf = false;
	want.in_order = false;
	good("path=" SOCK ",mrg_rxbuf=0,in_order=0,server=0,packed_vq=0", &want);
	want.mrg_rxbuf = true;
	want.in_order = true;
	good("path=" SOCK ",mrg_rxbuf=1,in_order=1", &want);

	/* server mode; reconnect is the client's, on unless turned off */
	want = with_path(SOCK);
	want.server = true;
	good("path=" SOCK ",server=1", &want);
	good("server=1,reconnect=1,path=" SOCK, &want);
	want = with_path(SOCK);
	want.reconnect = false;
	good("path=" SOCK ",reconnect=0", &want);
	good("path=" SOCK ",server=0,reconnect=0", &want);
	want.reconnect = true;
	good("path=" SOCK ",reconnect=1", &want);

	/* kicks: on unless the backend is said to poll */
	want = with_path(SOCK);
	good("path=" SOCK ",notify=1", &want);
	want.notify = false;
	good("path=" SOCK ",notify=0", &want);
	good("notify=0,packed_vq=0,path=" SOCK, &want);

	/* every key at once, in another order */
	want = with_path(SOCK);
	want.queues = 8;
	want.queue_size = 1024;
	want.cq = true;
	want.cq_set = true;
	want.mac_set = true;
	want.in_order = false;
	memcpy(want.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 0, 0x42 }, 6);
	good("queue_size=1024,mac=02:00:00:00:00:42,in_order=0,packed_vq=0,server=0,"
	     "cq=1,mrg_rxbuf=1,queues=8,path=" SOCK, &want);

	/* A size that is not a power of two is fine once packed_vq=1 comes, before or after. */
	want = with_path(SOCK);
	want.packed_vq = true;
	want.queue_size = 1025;
	good("path=" SOCK ",queue_size=1025,packed_vq=1", &want);
	good("packed_vq=1,queue_size=0x401,path=" SOCK, &want);
	want.queue_size = 255;
	good("path=" SOCK ",packed_vq=1,queue_size=255", &want);
}

static void test_check(void)
{
	struct vuser_port_config cfg;

	cfg = with_path(SOCK);
	CHECK_EQ(vuser_port_config_check(&cfg), 0);
	cfg.queues = 2;
	cfg.cq = true;
	cfg.queue_size = 1024;
	cfg.mac_set = true;
	memcpy(cfg.mac, (uint8_t[6]){ 0x02, 0, 0, 0, 0, 1 }, 6);
	CHECK_EQ(vuser_port_config_check(&cfg), 0);

	/* mac is not looked at unless it is set */
	cfg = with_path(SOCK);
	memset(cfg.mac, 0xff, sizeof(cfg.mac));
	CHECK_EQ(vuser_port_config_check(&cfg), 0);

	cfg = with_path(SOCK);
	memset(cfg.path, 'a', sizeof(cfg.path));
	bad_config(&cfg, -ENAMETOOLONG, "path=aaaa", "not NUL-terminated within 108",
		   "unterminated path");

	cfg = with_path("");
	bad_config(&cfg, -EINVAL, "path is mandatory", NULL, "empty path");

	cfg = with_path(SOCK);
	memset(cfg.iface, 't', sizeof(cfg.iface));
	bad_config(&cfg, -ENAMETOOLONG, "iface=tttt", "not NUL-terminated within 16",
		   "unterminated iface");

	cfg = with_path(SOCK);
	cfg.queue_size = 3;
	bad_config(&cfg, -EINVAL, "queue_size=3", "not a power of two in 1..32768",
		   "queue_size 3");
	cfg.queue_size = 0;
	bad_config(&cfg, -EINVAL, "queue_size=0", "1..32768", "queue_size 0");
	cfg.queue_size = 65536;
	bad_config(&cfg, -ERANGE, "queue_size=65536", "1..32768", "queue_size 65536");
	cfg.queue_size = 1u << 31;
	bad_config(&cfg, -ERANGE, "queue_size=2147483648", "1..32768", "queue_size 2^31");

	cfg = with_path(SOCK);
	cfg.queues = 0;
	bad_config(&cfg, -ERANGE, "queues=0", "1..32", "queues 0");
	cfg.queues = VUSER_MAX_QUEUE_PAIRS + 1;
	cfg.cq = true;
	bad_config(&cfg, -ERANGE, "queues=33", "1..32", "queues 33");

	/* check() does not turn cq on: that default belongs to the devargs */
	cfg = with_path(SOCK);
	cfg.queues = 2;
	bad_config(&cfg, -EINVAL, "cq=0 with queues=2",
		   "multi-queue needs the control queue (cq=1)", "cq off with queues 2");
	cfg.cq_set = true;
	bad_config(&cfg, -EINVAL, "cq=0 with queues=2", "cq=1", "cq=0 set with queues 2");

	cfg = with_path(SOCK);
	cfg.mac_set = true;
	memcpy(cfg.mac, (uint8_t[6]){ 0x01, 0x00, 0x5e, 0, 0, 1 }, 6);
	bad_config(&cfg, -EINVAL, "mac=01:00:5e:00:00:01", "multicast", "multicast mac");
	memset(cfg.mac, 0xff, sizeof(cfg.mac));
	bad_config(&cfg, -EINVAL, "mac=ff:ff:ff:ff:ff:ff", "broadcast", "broadcast mac");
	memset(cfg.mac, 0, sizeof(cfg.mac));
	bad_config(&cfg, -EINVAL, "mac=00:00:00:00:00:00", "all-zero", "zero mac");

	cfg = with_path(SOCK);
	strcpy(cfg.iface, "tap0");
	bad_config(&cfg, -ENOTSUP, "iface=tap0", "vhost-kernel", "iface");

	cfg = with_path(SOCK);
	cfg.server = true;
	CHECK_EQ(vuser_port_config_check(&cfg), 0);
	cfg.reconnect = false;
	bad_config(&cfg, -EINVAL, "reconnect=0 with server=1", "client mode", "server, no reconnect");
	cfg.server = false;
	CHECK_EQ(vuser_port_config_check(&cfg), 0);

	/* Packed rings take any size; split rings need a power of two. */
	cfg = with_path(SOCK);
	cfg.packed_vq = true;
	cfg.queue_size = 1000;
	CHECK_EQ(vuser_port_config_check(&cfg), 0);
	cfg.packed_vq = false;
	bad_config(&cfg, -EINVAL, "queue_size=1000", "not a power of two", "packed_vq=1");

	cfg = with_path("/dev/vhost-net");
	bad_config(&cfg, -ENOTSUP, "path=/dev/vhost-net",
		   "vhost-kernel backend not supported yet", "/dev/vhost-net");
	cfg = with_path("/dev/null");
	bad_config(&cfg, -ENOTSUP, "path=/dev/null",
		   "vhost-kernel backend not supported yet", "/dev/null");

	/* the checker must not touch errno */
	cfg = with_path("/nonexistent/vuser.sock");
	errno = 1234;
	CHECK_EQ(vuser_port_config_check(&cfg), 0);
	CHECK_EQ(errno, 1234);
}

int main(void)
{
	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	test_bad_devargs();
	test_path_length();
	test_good_devargs();
	test_check();
	return t_result();
}
