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

#endif
