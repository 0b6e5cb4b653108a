/* SPDX-License-Identifier: BSD-3-Clause */
#include "base/lines.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

bool vlines_can_flush(void)
{
#if defined(__x86_64__)
	unsigned eax, ebx, ecx, edx;

	/* CPUID.(EAX=7,ECX=0):EBX bit 23: clflushopt. */
	return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & (1u << 23));
#else
	return false;
#endif
}

static uint64_t now(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
#else
	return 0;
#endif
}

void vtrial_init(struct vtrial *t)
{
	*t = (struct vtrial){ .can = vlines_can_flush() };
}

void vtrial_step(struct vtrial *t)
{
	vtrial_step_at(t, now());
}

void vtrial_step_at(struct vtrial *t, uint64_t tn)
{
	const uint64_t dt = tn - t->t0;

	if (!t->step) {
		/* Settled: start a trial once in a while (at once the first time). */
		if (t->t0 && dt < VTRIAL_SETTLE)
			return;
		t->step = 1;
		t->on = false;
	} else {
		if (dt < VTRIAL_WINDOW)
			return;
		t->rate[t->step - 1] = (t->frames << 20) / dt;
		if (t->step < 4) {
			t->step++;
			t->on = !(t->step & 1);
		} else {
			/*
			 * On only if each "on" window beat both "off" ones: traffic
			 * that grows or shrinks through the trial (a sender starting
			 * up) must not pass for a gain.
			 */
			const uint64_t on = t->rate[1] < t->rate[3] ? t->rate[1] : t->rate[3];
			const uint64_t off = t->rate[0] > t->rate[2] ? t->rate[0] : t->rate[2];

			t->step = 0;
			t->on = on > off + off / 32;
		}
	}
	t->t0 = tn;
	t->frames = 0;
}
