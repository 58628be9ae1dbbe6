/*
 * The in-flight rings: FIFO order kept across growth and wrap-around, the
 * cap honoured, a push undone.
 */
#include <criterion/criterion.h>

#include "ring.h"

struct entry {
	int32_t corr;
	int16_t api;
};

Test(ring, entries_come_out_in_order_across_growth_and_wrap_around)
{
	struct kx_ring r;
	cr_assert(kx_ring_init(&r, sizeof(struct entry), 2));
	int32_t next_in = 0, next_out = 0;
	/* Waves that leave the head mid-array when the ring has to grow. */
	int waves[][2] = {{2, 1}, {5, 3}, {20, 10}, {40, 53}};
	for (size_t w = 0; w < sizeof(waves) / sizeof(waves[0]); w++) {
		for (int i = 0; i < waves[w][0]; i++) {
			struct entry e = {next_in, (int16_t)(next_in % 7)};
			cr_assert(kx_ring_push(&r, &e, 1000));
			next_in++;
		}
		for (int i = 0; i < waves[w][1]; i++) {
			const struct entry *e = kx_ring_head(&r);
			cr_assert_not_null(e);
			cr_assert_eq(e->corr, next_out);
			cr_assert_eq(e->api, next_out % 7);
			kx_ring_pop(&r);
			next_out++;
		}
	}
	cr_assert_eq(r.cnt, 0);
	cr_assert_null(kx_ring_head(&r));
	cr_assert_leq(r.cap, 64, "grew to %u for at most 36 entries at once", r.cap);
	kx_ring_free(&r);
}

Test(ring, a_full_ring_refuses_past_its_cap_and_a_push_can_be_undone)
{
	struct kx_ring r;
	cr_assert(kx_ring_init(&r, sizeof(struct entry), 1));
	for (int i = 0; i < 5; i++)
		cr_assert(kx_ring_push(&r, &(struct entry){i, 0}, 5));
	cr_assert_not(kx_ring_push(&r, &(struct entry){5, 0}, 5));
	cr_assert_eq(r.cnt, 5);
	cr_assert_leq(r.cap, 5, "never more room than the cap");
	kx_ring_drop_last(&r);
	cr_assert(kx_ring_push(&r, &(struct entry){9, 0}, 5));
	int32_t want[] = {0, 1, 2, 3, 9};
	for (int i = 0; i < 5; i++) {
		cr_assert_eq(((const struct entry *)kx_ring_head(&r))->corr, want[i]);
		kx_ring_pop(&r);
	}
	kx_ring_free(&r);
}
