/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The few helpers every test program uses. A test program checks one
 * behaviour, prints what failed, and exits 0 (pass), 1 (fail) or 77 (skip:
 * counted as skipped, never as passed).
 */
#ifndef VUSER_TESTLIB_H
#define VUSER_TESTLIB_H

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define T_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define T_ASAN 1
#endif
#endif
#ifndef T_ASAN
#define T_ASAN 0
#endif
#if T_ASAN
/* ASan's quarantine holds freed memory resident; drain it before reading RSS. */
void __sanitizer_purge_allocator(void);
#endif

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

/* Open fds of this process, not counting the one used to count them. */
static inline int t_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1;
}

/* Resident memory of this process in KiB, or -1. */
static inline long t_rss_kib(void)
{
	long size = 0, res = -1;
	FILE *f;

#if T_ASAN
	__sanitizer_purge_allocator();
#endif
	f = fopen("/proc/self/statm", "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = -1;
	fclose(f);
	return res < 0 ? -1 : res * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline int t_result(void)
{
	if (t_failures)
		fprintf(stderr, "%d check(s) failed\n", t_failures);
	return t_failures ? 1 : 0;
}

#endif
