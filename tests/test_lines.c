/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * struct vtrial: a loop where one mode moves more frames per cycle must end
 * up in that mode after a trial, and in "off" when neither wins by 3 %; a
 * change of host is followed at the next trial. Driven by a made-up clock.
 * vlines_flush() must leave every byte as it was.
 */
#include <stdint.h>
#include <string.h>

#include "base/lines.h"
#include "testlib.h"

/*
 * polls of 1000 cycles each; frames per poll are off_fp or on_fp by mode.
 * Returns the cycles spent in "on" (to see what a settled loop runs).
 */
static uint64_t drive(struct vtrial *t, uint64_t *clock, uint64_t cycles, unsigned off_fp,
		      unsigned on_fp)
{
	uint64_t on_cycles = 0;

	for (uint64_t end = *clock + cycles; *clock < end; *clock += 1000) {
		t->frames += t->on ? on_fp : off_fp;
		on_cycles += t->on ? 1000 : 0;
		if (!(++t->tick & 63))
			vtrial_step_at(t, *clock);
	}
	return on_cycles;
}

static struct vtrial fresh(void)
{
	struct vtrial t;

	vtrial_init(&t);
	t.can = true;
	return t;
}

static void test_picks_faster(void)
{
	struct vtrial t = fresh();
	uint64_t clock = 1000, on;

	/* On moves 30 % more: after the first trial (4 windows) the loop runs on. */
	drive(&t, &clock, 5 * VTRIAL_WINDOW, 10, 13);
	CHECK(t.on);
	CHECK_EQ(t.step, 0);
	/* Settled, it stays on (the next trial is a settle period away). */
	on = drive(&t, &clock, VTRIAL_SETTLE / 2, 10, 13);
	CHECK(on >= VTRIAL_SETTLE / 2);

	/* The host changes: on is now 20 % slower. The next trial turns it off. */
	drive(&t, &clock, VTRIAL_SETTLE, 10, 8);
	drive(&t, &clock, 5 * VTRIAL_WINDOW, 10, 8);
	CHECK(!t.on);
	on = drive(&t, &clock, VTRIAL_SETTLE / 4, 10, 8);
	CHECK_EQ(on, 0);
}

static void test_no_winner_is_off(void)
{
	struct vtrial t = fresh();
	uint64_t clock = 1000;

	drive(&t, &clock, 5 * VTRIAL_WINDOW, 100, 100);
	CHECK(!t.on);
	/* 2 % better is within what a host's noise does: still off. */
	drive(&t, &clock, VTRIAL_SETTLE + 5 * VTRIAL_WINDOW, 100, 102);
	CHECK(!t.on);
	/* Traffic that starts during the trial (nothing in the first window) is no gain. */
	t = fresh();
	drive(&t, &clock, VTRIAL_WINDOW / 2, 0, 0);
	drive(&t, &clock, 5 * VTRIAL_WINDOW, 100, 100);
	CHECK(!t.on);
	/* No traffic at all. */
	t = fresh();
	drive(&t, &clock, 5 * VTRIAL_WINDOW, 0, 0);
	CHECK(!t.on);
	/* 5 % better: on. */
	t = fresh();
	drive(&t, &clock, 5 * VTRIAL_WINDOW, 100, 105);
	CHECK(t.on);
}

static void test_trials_are_short(void)
{
	struct vtrial t = fresh();
	uint64_t clock = 1000, on;

	/* Off wins: over ten settle periods, on runs only in trial windows. */
	on = drive(&t, &clock, 10 * VTRIAL_SETTLE, 10, 5);
	CHECK(on > 0);
	CHECK(on < 10 * 3 * VTRIAL_WINDOW);
	CHECK(!t.on);
}

static void test_flush_keeps_bytes(void)
{
	_Alignas(64) static uint8_t buf[4096];
	uint8_t copy[sizeof(buf)];

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	memcpy(copy, buf, sizeof(buf));
	vlines_flush(buf + 3, 1000);
	vlines_flush(buf + 64, 64);
	vlines_flush(buf + 100, 0);
	vlines_flush(buf, sizeof(buf));
	CHECK(!memcmp(copy, buf, sizeof(buf)));
}

int main(void)
{
	test_picks_faster();
	test_no_winner_is_off();
	test_trials_are_short();
	test_flush_keeps_bytes();
	return t_result();
}
