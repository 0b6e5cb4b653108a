/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The few helpers every test program uses. A test program checks one
 * behaviour, prints what failed, and exits 0 (pass), 1 (fail) or 77 (skip:
 * counted as skipped, never as passed).
 */
#ifndef VUSER_TESTLIB_H
#define VUSER_TESTLIB_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_failures;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,   \
				__LINE__, #cond);                                \
			t_failures++;                                            \
		}                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                           \
	do {                                                                     \
		long long ta_ = (long long)(a), tb_ = (long long)(b);            \
		if (ta_ != tb_) {                                                \
			fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", \
				__FILE__, __LINE__, #a, #b, ta_, tb_);           \
			t_failures++;                                            \
		}                                                                \
	} while (0)

#define CHECK_STR_HAS(s, sub)                                                    \
	do {                                                                     \
		const char *ts_ = (s);                                           \
		if (!ts_ || !strstr(ts_, (sub))) {                               \
			fprintf(stderr, "%s:%d: check failed: \"%s\" contains \"%s\"\n", \
				__FILE__, __LINE__, ts_ ? ts_ : "(null)", (sub)); \
			t_failures++;                                            \
		}                                                                \
	} while (0)

static inline int t_result(void)
{
	if (t_failures)
		fprintf(stderr, "%d check(s) failed\n", t_failures);
	return t_failures ? 1 : 0;
}

#endif
