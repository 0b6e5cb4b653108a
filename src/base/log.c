/* SPDX-License-Identifier: BSD-3-Clause */
#include <stdarg.h>
#include <stdio.h>

#include "base/log.h"

static void log_stderr(enum vuser_log_level level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	fprintf(stderr, "vuser: %s\n", msg);
}

static vuser_log_fn log_fn = log_stderr;
static void *log_arg;
static enum vuser_log_level log_max = VUSER_LOG_WARN;

static _Thread_local char last_error[256];

VUSER_API const char *vuser_last_error(void)
{
	return last_error;
}

VUSER_API void vuser_set_log(vuser_log_fn fn, void *arg, enum vuser_log_level max_level)
{
	log_fn = fn;
	log_arg = arg;
	log_max = max_level;
}

static void vlog_va(enum vuser_log_level level, const char *fmt, va_list ap)
{
	char msg[256];

	if (!log_fn || level > log_max)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	log_fn(level, msg, log_arg);
}

void vlog(enum vuser_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_va(level, fmt, ap);
	va_end(ap);
}

int verr(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	if (log_fn && log_max >= VUSER_LOG_ERR)
		log_fn(VUSER_LOG_ERR, last_error, log_arg);
	return err;
}

int vnote(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}
