/* SPDX-License-Identifier: BSD-3-Clause */
/* CPU hints and the memory barriers the rings name by the rule they enforce. */
#ifndef VUSER_BASE_COMPAT_H
#define VUSER_BASE_COMPAT_H

#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax() __builtin_ia32_pause()
#else
#define cpu_relax() __asm__ volatile("" ::: "memory")
#endif

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* A single read of shared memory that the compiler may not repeat or tear. */
#define READ_ONCE(x) (*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

/*
 * A full barrier (StoreLoad included). On x86 a locked add to the stack does
 * it in fewer cycles than mfence, and orders the same normal memory.
 */
static inline void vfence_full(void)
{
#if defined(__x86_64__)
	__asm__ volatile("lock; addl $0,-4(%%rsp)" ::: "memory", "cc");
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

/*
 * Ask for a line in a state that lets this core write it without another
 * transfer. Where the instruction is missing (older Intel) it decodes as a
 * no-op.
 */
static inline void vprefetch_w(const void *p)
{
#if defined(__x86_64__)
	__asm__ volatile("prefetchw %0" ::"m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/*
 * Copy n bytes where n is usually small (a 64-byte frame, a 12-byte header):
 * fixed-size overlapping moves the compiler inlines, instead of a call into
 * the C library that costs more than the copy.
 */
static inline void vcopy(void *restrict dst, const void *restrict src, unsigned long n)
{
	unsigned char *d = dst;
	const unsigned char *s = src;

	if (n > 64) {
		__builtin_memcpy(d, s, n);
		return;
	}
	if (n >= 32) {
		__builtin_memcpy(d, s, 32);
		__builtin_memcpy(d + n - 32, s + n - 32, 32);
	} else if (n >= 16) {
		__builtin_memcpy(d, s, 16);
		__builtin_memcpy(d + n - 16, s + n - 16, 16);
	} else if (n >= 8) {
		__builtin_memcpy(d, s, 8);
		__builtin_memcpy(d + n - 8, s + n - 8, 8);
	} else if (n >= 4) {
		__builtin_memcpy(d, s, 4);
		__builtin_memcpy(d + n - 4, s + n - 4, 4);
	} else if (n) {
		d[0] = s[0];
		d[n / 2] = s[n / 2];
		d[n - 1] = s[n - 1];
	}
}

/*
 * Copy a large frame into a frontend's buffer. Its lines are seldom in this
 * core's cache (a frontend like DPDK's cycles its buffers through a large
 * pool), and a vector store must first fetch the line it overwrites; a long
 * rep movsb lets the CPU write whole lines without that read. Below about a
 * kilobyte, or into lines this core already holds, the vector copy wins, so
 * smaller copies keep it (docs/bench.md). Sanitizer builds keep the checked
 * copy: the instruction is invisible to them.
 */
#define VCOPY_OUT_MIN 1024
#if defined(__SANITIZE_ADDRESS__)
#define VCOPY_CHECKED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VCOPY_CHECKED 1
#endif
#endif
static inline void vcopy_out(void *restrict dst, const void *restrict src, unsigned long n)
{
#if defined(__x86_64__) && !defined(VCOPY_CHECKED)
	if (n >= VCOPY_OUT_MIN) {
		__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
		return;
	}
#endif
	vcopy(dst, src, n);
}

#endif
