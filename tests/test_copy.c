/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The datapath's copies (src/base/compat.h): vcopy for the small pieces and
 * vcopy_out for frames written into a frontend's buffers, which changes
 * method at VCOPY_OUT_MIN. Every length around the changes of method, at
 * every alignment of both ends within a line, must land exactly: the bytes
 * copied equal the source, and not one byte before or after the destination
 * range is touched.
 */
#include <stdbool.h>
#include <stdint.h>

#include "base/compat.h"
#include "testlib.h"

#define AREA 8192
#define GUARD 64

static uint8_t src_area[AREA + 2 * GUARD];
static uint8_t dst_area[AREA + 2 * GUARD];

/* A pattern with no period a misplaced copy could hide behind. */
static uint8_t pat(size_t i)
{
	return (uint8_t)(i * 131 + (i >> 8) * 7 + 1);
}

static void one(bool out, size_t len, size_t soff, size_t doff)
{
	uint8_t *s = src_area + GUARD + soff;
	uint8_t *d = dst_area + GUARD + doff;
	size_t bad = 0;

	memset(dst_area, 0xa5, sizeof(dst_area));
	if (out)
		vcopy_out(d, s, len);
	else
		vcopy(d, s, len);
	for (size_t i = 0; i < sizeof(dst_area); i++) {
		const uint8_t *p = dst_area + i;
		uint8_t want = (p >= d && p < d + len) ? s[p - d] : 0xa5;

		if (*p != want)
			bad++;
	}
	if (bad) {
		fprintf(stderr, "%s: len %zu src +%zu dst +%zu: %zu wrong bytes\n",
			out ? "vcopy_out" : "vcopy", len, soff, doff, bad);
		t_failures++;
	}
}

int main(void)
{
	static const size_t offs[] = { 0, 1, 7, 8, 31, 32, 63 };
	static const size_t lens[] = {
		0, 1, 64, 65,
		VCOPY_OUT_MIN - 3, VCOPY_OUT_MIN - 2, VCOPY_OUT_MIN - 1, VCOPY_OUT_MIN,
		VCOPY_OUT_MIN + 1, VCOPY_OUT_MIN + 2, VCOPY_OUT_MIN + 3,
		1518, 2048, 4097, AREA - 64,
	};

	/* The source is only ever read. */
	for (size_t i = 0; i < sizeof(src_area); i++)
		src_area[i] = pat(i);
	/* Every short length (vcopy's fixed moves), then the method changes. */
	for (size_t l = 0; l <= 130; l++)
		one(false, l, 3, 5);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++)
		for (size_t a = 0; a < sizeof(offs) / sizeof(offs[0]); a++)
			for (size_t b = 0; b < sizeof(offs) / sizeof(offs[0]); b++) {
				one(true, lens[i], offs[a], offs[b]);
				one(false, lens[i], offs[a], offs[b]);
			}
	return t_result();
}
