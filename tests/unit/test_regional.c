/* The regional virtual cluster's layout (routing/regional): every node
 * computes the same leaders, spread evenly, and a node joining or leaving
 * moves only the partitions it must; the region's node set is read from a
 * list or DNS addresses alike on every node, refuses duplicates, and tells
 * when it changed. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinators.h"
#include "regional.h"
#include "regional_api.h"

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

/* ---- the region's node set ---------------------------------------------- */

static void nodes_from(struct kr_regional_nodes *set, const char *text)
{
	char why[256] = "";
	kr_regional_nodes_init(set);
	cr_assert(kr_regional_nodes_parse(set, text, why, sizeof(why)), "%s: %s", text, why);
	cr_assert(kr_regional_nodes_finish(set, why, sizeof(why)), "%s: %s", text, why);
}

Test(regional_nodes, a_list_is_parsed_and_sorted_by_id_with_ipv6_bare)
{
	struct kr_regional_nodes set;
	nodes_from(&set, " 7@kst-b.eu-west:9092 ,2@kst-a.eu-west:9093,5@[fd00::5]:9094,3@10.0.0.3:19092");
	cr_assert_eq(set.cnt, 4);
	cr_assert(set.finished);
	const int32_t ids[] = {2, 3, 5, 7};
	const char *hosts[] = {"kst-a.eu-west", "10.0.0.3", "fd00::5", "kst-b.eu-west"};
	const uint16_t ports[] = {9093, 19092, 9094, 9092};
	for (size_t i = 0; i < 4; i++) {
		cr_assert_eq(set.ids[i], ids[i]);
		cr_assert_eq(set.nodes[i].id, ids[i]);
		cr_assert_str_eq(set.nodes[i].host, hosts[i]);
		cr_assert_eq(set.nodes[i].port, ports[i]);
	}
	cr_assert_eq(kr_regional_nodes_index(&set, 5), 2);
	cr_assert_eq(kr_regional_nodes_index(&set, 2), 0);
	cr_assert_eq(kr_regional_nodes_index(&set, 7), 3);
	cr_assert_eq(kr_regional_nodes_index(&set, 4), -1);
	cr_assert_eq(kr_regional_nodes_index(&set, 8), -1);
	cr_assert_eq(kr_regional_controller(&set), 2, "the controller is the lowest id");
}

Test(regional_nodes, a_node_without_an_id_is_numbered_by_its_address)
{
	struct kr_regional_nodes set;
	nodes_from(&set, "kst-0.kst.eu:9092,kst-1.kst.eu:9092");
	int32_t a = kr_regional_node_id("kst-0.kst.eu", 9092), b = kr_regional_node_id("kst-1.kst.eu", 9092);
	cr_assert_eq(set.cnt, 2);
	cr_assert_eq(set.ids[0], a < b ? a : b);
	cr_assert_eq(set.ids[1], a < b ? b : a);
	cr_assert_str_eq(set.nodes[a < b ? 0 : 1].host, "kst-0.kst.eu");

	/* A DNS answer added one address at a time numbers the same. */
	struct kr_regional_nodes dns;
	kr_regional_nodes_init(&dns);
	cr_assert(kr_regional_nodes_add(&dns, -1, "kst-1.kst.eu", 12, 9092, NULL, 0));
	cr_assert(kr_regional_nodes_add(&dns, -1, "kst-0.kst.eu", 12, 9092, NULL, 0));
	cr_assert(kr_regional_nodes_finish(&dns, NULL, 0));
	cr_assert(kr_regional_nodes_equal(&set, &dns));
}

Test(regional_nodes, bad_lists_are_refused_with_the_reason)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"", "an empty item in the node list"},
	    {"1@a:1,,2@b:2", "an empty item in the node list"},
	    {"a.eu", "'a.eu' is not [ID@]HOST:PORT (an IPv6 address in brackets)"},
	    {"1@a.eu:0", "'1@a.eu:0': port '0' is not a number in 1..65535"},
	    {"1@a.eu:65536", "'1@a.eu:65536': port '65536' is not a number in 1..65535"},
	    {"1@a.eu:", "'1@a.eu:': port '' is not a number in 1..65535"},
	    {"x@a.eu:1", "'x@a.eu:1': node id 'x' is not an integer in 0..2147483647"},
	    {"-1@a.eu:1", "'-1@a.eu:1': node id '-1' is not an integer in 0..2147483647"},
	    {"2147483648@a.eu:1", "'2147483648@a.eu:1': node id '2147483648' is not an integer in 0..2147483647"},
	    {"@a.eu:1", "'@a.eu:1': node id '' is not an integer in 0..2147483647"},
	    {"1@::1:9092", "'1@::1:9092' is not [ID@]HOST:PORT (an IPv6 address in brackets)"},
	    {"1@[::1:9092", "'1@[::1:9092' is not [ID@]HOST:PORT (an IPv6 address in brackets)"},
	    {"1@[::1]9092", "'1@[::1]9092' is not [ID@]HOST:PORT (an IPv6 address in brackets)"},
	    {"1@[]:9092", "'' is not a host name or address of 1..255 characters"},
	    {"1@:9092", "'' is not a host name or address of 1..255 characters"},
	    {"1@a b:9092", "'a b' is not a host name or address of 1..255 characters"},
	    {"1@[fd00::zz]:9092", "'fd00::zz' is not a host name or address of 1..255 characters"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_regional_nodes set;
		char why[256] = "";
		kr_regional_nodes_init(&set);
		cr_assert_not(kr_regional_nodes_parse(&set, cases[i].text, why, sizeof(why)), "%s", cases[i].text);
		cr_assert_str_eq(why, cases[i].why, "%s", cases[i].text);
	}
}

Test(regional_nodes, duplicate_ids_and_addresses_and_an_empty_set_are_refused)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"1@a.eu:9092,2@b.eu:9092,1@c.eu:9092", "node id 1 is given to both a.eu:9092 and c.eu:9092"},
	    {"1@a.eu:9092,2@A.EU:9092", "A.EU:9092 is listed twice (nodes 1 and 2)"},
	    {"1@[fd00::1]:9092,2@[FD00::1]:9092", "FD00::1:9092 is listed twice (nodes 1 and 2)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kr_regional_nodes set;
		char why[256] = "";
		kr_regional_nodes_init(&set);
		cr_assert(kr_regional_nodes_parse(&set, cases[i].text, why, sizeof(why)), "%s: %s", cases[i].text, why);
		cr_assert_not(kr_regional_nodes_finish(&set, why, sizeof(why)), "%s", cases[i].text);
		cr_assert_str_eq(why, cases[i].why, "%s", cases[i].text);
		cr_assert_not(set.finished);
	}
	/* The same address on another port is another node. */
	struct kr_regional_nodes set;
	nodes_from(&set, "1@a.eu:9092,2@a.eu:9093");
	cr_assert_eq(set.cnt, 2);

	char why[64] = "";
	kr_regional_nodes_init(&set);
	cr_assert_not(kr_regional_nodes_finish(&set, why, sizeof(why)));
	cr_assert_str_eq(why, "no nodes");
	cr_assert_eq(kr_regional_controller(&set), -1);
	cr_assert_eq(kr_regional_leader(&set, "t", 1, 0), -1);
}

Test(regional_nodes, a_set_holds_at_most_64_nodes_and_hosts_of_255_characters)
{
	struct kr_regional_nodes set;
	char why[128] = "", host[300];
	kr_regional_nodes_init(&set);
	for (int i = 0; i < KR_REGIONAL_NODES_MAX; i++) {
		int n = snprintf(host, sizeof(host), "kst-%d", i);
		cr_assert(kr_regional_nodes_add(&set, i, host, (size_t)n, 9092, why, sizeof(why)), "%s", why);
	}
	cr_assert_not(kr_regional_nodes_add(&set, 64, "kst-64", 6, 9092, why, sizeof(why)));
	cr_assert_str_eq(why, "more than 64 nodes");
	cr_assert(kr_regional_nodes_finish(&set, why, sizeof(why)), "%s", why);
	cr_assert_eq(set.cnt, 64);

	memset(host, 'h', sizeof(host));
	kr_regional_nodes_init(&set);
	cr_assert(kr_regional_nodes_add(&set, 1, host, 255, 9092, why, sizeof(why)), "%s", why);
	cr_assert_eq(strlen(set.nodes[0].host), 255);
	cr_assert_not(kr_regional_nodes_add(&set, 2, host, 256, 9092, why, sizeof(why)));
	cr_assert_not(kr_regional_nodes_add(&set, 2, "a.eu", 4, 0, why, sizeof(why)));
	cr_assert_str_eq(why, "port 0 of a.eu is not a port");
}

Test(regional_nodes, sets_differ_when_a_node_joins_leaves_or_moves_and_not_by_order)
{
	struct kr_regional_nodes a, b, moved, joined, left, renamed;
	nodes_from(&a, "1@a.eu:9092,2@b.eu:9092,3@c.eu:9092");
	nodes_from(&b, "3@c.eu:9092,1@a.eu:9092,2@b.eu:9092");
	nodes_from(&moved, "1@a.eu:9092,2@b.eu:9093,3@c.eu:9092");
	nodes_from(&joined, "1@a.eu:9092,2@b.eu:9092,3@c.eu:9092,4@d.eu:9092");
	nodes_from(&left, "1@a.eu:9092,3@c.eu:9092");
	nodes_from(&renamed, "1@a.eu:9092,2@b2.eu:9092,3@c.eu:9092");
	cr_assert(kr_regional_nodes_equal(&a, &b));
	cr_assert_eq(kr_regional_nodes_digest(&a), kr_regional_nodes_digest(&b));
	const struct kr_regional_nodes *other[] = {&moved, &joined, &left, &renamed};
	for (size_t i = 0; i < 4; i++) {
		cr_assert_not(kr_regional_nodes_equal(&a, other[i]), "case %zu", i);
		cr_assert_not(kr_regional_nodes_equal(other[i], &a), "case %zu", i);
		cr_assert_neq(kr_regional_nodes_digest(&a), kr_regional_nodes_digest(other[i]), "case %zu", i);
	}
	/* The same id at another address is a change as well. */
	struct kr_regional_nodes swapped;
	nodes_from(&swapped, "1@b.eu:9092,2@a.eu:9092,3@c.eu:9092");
	cr_assert_not(kr_regional_nodes_equal(&a, &swapped));
	cr_assert_neq(kr_regional_nodes_digest(&a), kr_regional_nodes_digest(&swapped));
}

Test(regional_nodes, the_leader_is_kr_virtual_leaders_and_replicas_put_it_first)
{
	struct kr_regional_nodes set;
	nodes_from(&set, "30@c.eu:9092,10@a.eu:9092,20@b.eu:9092,40@d.eu:9092");
	for (int32_t p = 0; p < 200; p++) {
		int i = kr_regional_leader(&set, "orders", 6, p);
		cr_assert(i >= 0 && i < 4);
		cr_assert_eq(set.ids[i], kr_virtual_leader(set.ids, set.cnt, "orders", 6, p));
	}
	int32_t out[KR_REGIONAL_NODES_MAX];
	static const int32_t want[4][4] = {{10, 20, 30, 40}, {20, 10, 30, 40}, {30, 10, 20, 40}, {40, 10, 20, 30}};
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(kr_regional_replicas(&set, i, out), 4);
		cr_assert_arr_eq(out, want[i], sizeof(want[i]));
	}
	cr_assert_eq(kr_regional_replicas(&set, 4, out), 0);
	cr_assert_eq(kr_regional_replicas(&set, -1, out), 0);
}

Test(regional_nodes, coordinators_spread_over_the_nodes_the_same_way_on_every_node_and_by_key_type)
{
	struct kr_regional_nodes a, b;
	nodes_from(&a, "1@n1:9092,2@n2:9092,3@n3:9092");
	nodes_from(&b, "3@n3:9092,1@n1:9092,2@n2:9092"); /* the same set, read in another order */
	int per[3] = {0}, differ = 0;
	char key[32];
	for (int i = 0; i < 3000; i++) {
		int n = snprintf(key, sizeof(key), "group-%d", i);
		int g = kr_regional_coordinator(&a, 0, key, (size_t)n);
		cr_assert(g >= 0 && g < 3);
		cr_assert_eq(g, kr_regional_coordinator(&b, 0, key, (size_t)n));
		per[g]++;
		differ += g != kr_regional_coordinator(&a, 1, key, (size_t)n); /* the same string as a transactional id */
	}
	for (int g = 0; g < 3; g++)
		cr_assert(per[g] > 800 && per[g] < 1200, "node %d coordinates %d of 3000 groups", g, per[g]);
	cr_assert(differ > 1500, "a group and a transactional id of the same name land alike too often (%d)", differ);
	struct kr_regional_nodes empty = {0};
	cr_assert_eq(kr_regional_coordinator(&empty, 0, "g", 1), -1);
}

Test(coordinators, a_key_learned_is_found_until_forgotten_and_reported_stale_past_its_age)
{
	struct kr_coordinators c;
	kr_coordinators_init(&c, 1000);
	bool stale;
	cr_assert_eq(kr_coordinators_find(&c, 0, "g", 1, 0, &stale), -1, "nothing learned yet");
	cr_assert(kr_coordinators_learn(&c, 0, "g", 1, 3, 100));
	cr_assert_eq(kr_coordinators_find(&c, 0, "g", 1, 500, &stale), 3);
	cr_assert_not(stale);
	cr_assert_eq(kr_coordinators_find(&c, 1, "g", 1, 500, &stale), -1, "a transactional id is another key");
	cr_assert_eq(kr_coordinators_find(&c, 0, "g2", 2, 500, &stale), -1);
	cr_assert_eq(kr_coordinators_find(&c, 0, "g", 1, 1100, &stale), 3, "a stale entry is still used");
	cr_assert(stale);
	cr_assert(kr_coordinators_learn(&c, 0, "g", 1, 5, 1200)); /* looked up again: moved */
	cr_assert_eq(kr_coordinators_find(&c, 0, "g", 1, 1300, &stale), 5);
	cr_assert_not(stale);
	kr_coordinators_forget(&c, 0, "g", 1);
	cr_assert_eq(kr_coordinators_find(&c, 0, "g", 1, 1300, &stale), -1);
	char long_key[KR_COORD_KEY_MAX + 1];
	memset(long_key, 'k', sizeof(long_key));
	cr_assert_not(kr_coordinators_learn(&c, 0, long_key, sizeof(long_key), 1, 0), "too long to keep");
	cr_assert_eq(kr_coordinators_find(&c, 0, long_key, sizeof(long_key), 0, &stale), -1);
	cr_assert_not(kr_coordinators_learn(&c, 0, "g", 1, -1, 0), "no node");
	kr_coordinators_free(&c);
}

Test(coordinators, a_full_table_keeps_the_newest_key_of_each_slot_and_finds_no_wrong_one)
{
	struct kr_coordinators c;
	kr_coordinators_init(&c, 60000);
	char key[32];
	for (int i = 0; i < 3 * KR_COORD_SLOTS; i++) {
		int n = snprintf(key, sizeof(key), "group-%d", i);
		cr_assert(kr_coordinators_learn(&c, 0, key, (size_t)n, i % 7, 0));
	}
	int found = 0;
	bool stale;
	for (int i = 0; i < 3 * KR_COORD_SLOTS; i++) {
		int n = snprintf(key, sizeof(key), "group-%d", i);
		int32_t node = kr_coordinators_find(&c, 0, key, (size_t)n, 0, &stale);
		cr_assert(node == -1 || node == i % 7, "group-%d found at node %d", i, node);
		found += node >= 0;
	}
	cr_assert(found > KR_COORD_SLOTS / 2 && found <= KR_COORD_SLOTS, "%d keys kept", found);
	kr_coordinators_free(&c);
}

/* ---- regional_api: every API key's decision, and the broker a node stands for ---- */

static struct kx_topology *brokers_of(const int32_t *ids, const char *const *regions, size_t n)
{
	struct kx_topology *t = calloc(1, sizeof(*t) + n * sizeof(t->brokers[0]));
	cr_assert_not_null(t);
	t->broker_cnt = n;
	for (size_t i = 0; i < n; i++) {
		t->brokers[i].node_id = ids[i];
		snprintf(t->brokers[i].region, sizeof(t->brokers[i].region), "%s", regions[i]);
	}
	return t;
}

Test(regional_api, apis_that_name_real_brokers_or_that_no_client_sends_are_not_offered)
{
	/* Inter-broker and controller APIs, and the admin APIs whose requests or answers carry real broker ids. */
	static const int16_t trimmed[] = {4,  5,  6,  7,  27, 34, 35, 45, 46, 52, 53, 54, 55, 56, 58, 59, 62,
	                                  63, 64, 67, 70, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85, 86,
	                                  87, 90, 91, 92, 94, 95, 200, -1, INT16_MAX};
	for (size_t i = 0; i < sizeof(trimmed) / sizeof(trimmed[0]); i++) {
		cr_assert_not(kr_regional_api_offered(trimmed[i]), "key %d", trimmed[i]);
		cr_assert_str_eq(kr_regional_api_kind(kr_regional_api(trimmed[i])), "trimmed");
	}
	cr_assert_eq(kr_regional_api(0), KR_RAPI_SPLIT);
	cr_assert_eq(kr_regional_api(3), KR_RAPI_METADATA);
	cr_assert_eq(kr_regional_api(19), KR_RAPI_ANY, "CreateTopics: a broker forwards it to the controller");
	cr_assert_eq(kr_regional_api(32), KR_RAPI_CONFIGS);
	cr_assert_eq(kr_regional_api(44), KR_RAPI_CONFIGS);
	cr_assert_eq(kr_regional_api(60), KR_RAPI_CLUSTER);
	cr_assert_str_eq(kr_regional_api_kind(KR_RAPI_CONFIGS), "configs");
}

Test(regional_api, a_node_stands_for_a_broker_of_its_region_the_same_everywhere)
{
	static const int32_t ids[] = {101, 102, 103, 201, 202, 203};
	static const char *const regions[] = {"eu", "eu", "eu", "us", "us", "us"};
	struct kx_topology *t = brokers_of(ids, regions, 6);
	int hits[3] = {0};
	for (int32_t node = 1; node <= 300; node++) {
		int32_t b = kr_regional_stand_in(t, "eu", node);
		cr_assert(b >= 101 && b <= 103, "node %d stands for broker %d, not one of region eu", node, b);
		cr_assert_eq(kr_regional_stand_in(t, "eu", node), b, "deterministic");
		hits[b - 101]++;
	}
	for (int i = 0; i < 3; i++)
		cr_assert(hits[i] > 60, "broker %d stands for %d of 300 nodes: spread", 101 + i, hits[i]);
	int32_t us = kr_regional_stand_in(t, "us", 7);
	cr_assert(us >= 201 && us <= 203);
	int32_t any = kr_regional_stand_in(t, "ap", 7); /* no broker there: any broker */
	cr_assert(any >= 101 && any <= 203);
	cr_assert_eq(kr_regional_stand_in(t, NULL, 7), any, "no region: the same as a region without brokers");
	t->broker_cnt = 0;
	cr_assert_eq(kr_regional_stand_in(t, "eu", 7), -1);
	cr_assert_eq(kr_regional_stand_in(NULL, "eu", 7), -1);
	free(t);
}
