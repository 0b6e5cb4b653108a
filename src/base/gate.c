/* SPDX-License-Identifier: BSD-3-Clause */
#include <linux/membarrier.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/gate.h"

bool vgate_asymmetric;

static pthread_once_t once = PTHREAD_ONCE_INIT;

static void setup(void)
{
	/* Registration is per process and lasts; a kernel without it keeps both fences. */
	if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0)
		__atomic_store_n(&vgate_asymmetric, true, __ATOMIC_SEQ_CST);
}

void vgate_setup(void)
{
	pthread_once(&once, setup);
}

void vgate_sync(void)
{
	if (__atomic_load_n(&vgate_asymmetric, __ATOMIC_RELAXED) &&
	    syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) == 0)
		return;
	vfence_full();
}
