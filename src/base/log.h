/* SPDX-License-Identifier: BSD-3-Clause */
/* Messages and the per-thread "last error" behind vuser_last_error(). */
#ifndef VUSER_BASE_LOG_H
#define VUSER_BASE_LOG_H

#include "vuser/vuser.h"

/* Marks a definition as part of the public ABI (the rest is hidden). */
#define VUSER_API __attribute__((visibility("default")))

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vuser speaks the virtio 1.x little-endian layouts natively: little-endian hosts only"
#endif

void vlog(enum vuser_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Record fmt as this thread's last error, log it, and return err (a negative
 * errno), so that error paths read `return verr(-EINVAL, "...", ...)`.
 */
int verr(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * The same without logging, for outcomes the caller asked for and expects
 * often (a wait that timed out): the reason is there if it wants it.
 */
int vnote(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
