/* The regional virtual cluster's layout (routing/regional): every node
 * computes the same leaders, spread evenly, and a node joining or leaving
 * moves only the partitions it must. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "regional.h"

#define PARTS 20000

Test(regional, the_jump_hash_stays_in_range_and_is_deterministic)
{
	for (uint64_t k = 0; k < 1000; k++) {
		int32_t b = kr_jump_hash(k * UINT64_C(0x9E3779B97F4A7C15), 7);
		cr_assert(b >= 0 && b < 7);
		cr_assert_eq(b, kr_jump_hash(k * UINT64_C(0x9E3779B97F4A7C15), 7));
		cr_assert_eq(kr_jump_hash(k, 1), 0);
	}
	cr_assert_eq(kr_jump_hash(42, 0), 0);
	cr_assert_eq(kr_jump_hash(42, -3), 0);
	cr_assert(kr_jump_hash(UINT64_MAX, INT32_MAX) >= 0);
}

Test(regional, partitions_spread_evenly_over_the_nodes)
{
	const int32_t ids[] = {3, 8, 11, 20, 31};
	int count[5] = {0};
	for (int32_t p = 0; p < PARTS; p++) {
		int32_t leader = kr_virtual_leader(ids, 5, "orders", 6, p);
		bool known = false;
		for (int i = 0; i < 5; i++) {
			if (ids[i] == leader) {
				count[i]++;
				known = true;
			}
		}
		cr_assert(known, "leader %d is not one of the nodes", leader);
	}
	for (int i = 0; i < 5; i++) /* 4000 each expected; 5 % either way is generous for 20000 draws */
		cr_assert(count[i] > PARTS / 5 * 95 / 100 && count[i] < PARTS / 5 * 105 / 100, "node %d leads %d", ids[i],
		          count[i]);
	cr_assert_eq(kr_virtual_leader(ids, 0, "orders", 6, 1), -1);
}

Test(regional, a_node_joining_moves_only_its_share_and_only_to_itself)
{
	const int32_t four[] = {1, 2, 3, 4}, five[] = {1, 2, 3, 4, 5};
	int moved = 0;
	for (int32_t p = 0; p < PARTS; p++) {
		char topic[32];
		int n = snprintf(topic, sizeof(topic), "t%d", p % 50);
		int32_t before = kr_virtual_leader(four, 4, topic, (size_t)n, p), after = kr_virtual_leader(five, 5, topic,
		                                                                                             (size_t)n, p);
		if (before != after) {
			cr_assert_eq(after, 5, "a partition moved from %d to %d, not to the new node", before, after);
			moved++;
		}
	}
	/* 1/5 of them expected to move. */
	cr_assert(moved > PARTS / 5 * 9 / 10 && moved < PARTS / 5 * 11 / 10, "%d of %d moved", moved, PARTS);
}

Test(regional, keys_tell_topics_and_partitions_apart)
{
	cr_assert_neq(kr_partition_key("ab", 2, 1), kr_partition_key("a", 1, 1));
	cr_assert_neq(kr_partition_key("orders", 6, 1), kr_partition_key("orders", 6, 2));
	cr_assert_eq(kr_partition_key("orders", 6, 1), kr_partition_key("orders-x", 6, 1), "only topic_len bytes count");
}

Test(regional, a_node_id_from_its_address_is_stable_positive_and_distinct)
{
	int32_t a = kr_regional_node_id("10.0.0.1", 9092), b = kr_regional_node_id("10.0.0.2", 9092),
	        c = kr_regional_node_id("10.0.0.1", 9093);
	cr_assert(a >= 1 && a <= (1 << 30));
	cr_assert_eq(a, kr_regional_node_id("10.0.0.1", 9092));
	cr_assert(a != b && a != c && b != c);
	char host[400];
	memset(host, 'h', sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	cr_assert(kr_regional_node_id(host, 1) >= 1, "a name longer than any address is cut, not overrun");
}
