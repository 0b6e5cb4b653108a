/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Many vhost devices in one process, each serving its own port: one thread
 * runs four vuser_vhost devices (process + forward what each receives back
 * to its frontend), the main thread opens four ports on their sockets and
 * checks that every frame sent on port k comes back on port k, intact.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"
#include "vuser/vhost.h"
#include "vuser/vuser.h"

#define NDEV 4
#define FRAMES 2000

static struct vuser_vhost *dev[NDEV];
static atomic_int stop;

static void *serve(void *arg)
{
	struct vuser_buf *b[32];

	(void)arg;
	while (!atomic_load(&stop)) {
		for (int d = 0; d < NDEV; d++) {
			int n, k;

			vuser_vhost_process(dev[d]);
			n = vuser_vhost_rx_burst(dev[d], 0, b, 32);
			if (n <= 0)
				continue;
			k = vuser_vhost_tx_burst(dev[d], 0, b, (unsigned)n);
			vuser_buf_free_bulk(b + (k > 0 ? k : 0), (unsigned)(n - (k > 0 ? k : 0)));
		}
		usleep(10);
	}
	return NULL;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Send FRAMES frames tagged with the port's number and a sequence; read them back. */
static void exchange(struct vuser_port *p, int k)
{
	unsigned sent = 0, got = 0, bad = 0;
	double end = now() + 20;

	while (got < FRAMES && now() < end) {
		struct vuser_buf *b[16];
		int n;

		if (sent < FRAMES && sent - got < 64 && !vuser_buf_alloc_bulk(p, b, 1)) {
			uint8_t *f = vuser_buf_data(b[0]);

			memset(f, 0, 64);
			f[12] = 0x88;
			f[13] = 0xb5;
			f[14] = (uint8_t)k;
			memcpy(f + 16, &sent, sizeof(sent));
			b[0]->data_len = b[0]->pkt_len = 64 + (sent % 1400);
			if (vuser_tx_burst(p, 0, b, 1) == 1)
				sent++;
			else
				vuser_buf_free(b[0]);
		}
		n = vuser_rx_burst(p, 0, b, 16);
		for (int i = 0; i < n; i++) {
			const uint8_t *f = vuser_buf_data(b[i]);
			unsigned seq;

			memcpy(&seq, f + 16, sizeof(seq));
			if (f[14] != k || seq != got || b[i]->pkt_len != 64 + (seq % 1400))
				bad++;
			got++;
		}
		if (n > 0)
			vuser_buf_free_bulk(b, (unsigned)n);
	}
	CHECK_EQ(got, FRAMES);
	CHECK_EQ(bad, 0);
}

int main(void)
{
	char dir[] = "/tmp/vuser-many.XXXXXX";
	char args[NDEV][160];
	struct vuser_port *port[NDEV];
	pthread_t th;

	vuser_set_log(NULL, NULL, VUSER_LOG_ERR);
	if (!mkdtemp(dir))
		return 1;
	for (int d = 0; d < NDEV; d++) {
		snprintf(args[d], sizeof(args[d]), "path=%s/v%d.sock", dir, d);
		CHECK_EQ(vuser_vhost_open(args[d], &dev[d]), 0);
		if (!dev[d])
			return t_result();
	}
	pthread_create(&th, NULL, serve, NULL);
	for (int d = 0; d < NDEV; d++) {
		int err = vuser_port_open(args[d], &port[d]);

		CHECK_EQ(err, 0);
		if (err) {
			fprintf(stderr, "open %s: %s\n", args[d], vuser_last_error());
			port[d] = NULL;
		}
	}
	/* Frames carry their port's number: a device answering on the wrong socket shows. */
	for (int d = 0; d < NDEV; d++)
		if (port[d])
			exchange(port[d], d);
	for (int d = 0; d < NDEV; d++)
		vuser_port_close(port[d]);
	atomic_store(&stop, 1);
	pthread_join(th, NULL);
	for (int d = 0; d < NDEV; d++) {
		struct vuser_vhost_info vi;

		vuser_vhost_info(dev[d], &vi);
		CHECK_EQ(vi.connections, 1);
		CHECK_EQ(vi.violations, 0);
		vuser_vhost_close(dev[d]);
	}
	rmdir(dir);
	return t_result();
}
