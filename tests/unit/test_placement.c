/*
 * Where a client is, and which replica it should read from: the pure
 * decisions behind rack and region awareness (routing/placement.h, steer.h).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netinet/in.h>
#include <string.h>

#include "placement.h"
#include "steer.h"

/* The rules every case below is placed with. */
static struct kr_listener_rack listeners[] = {{9092, "eu-b"}, {19003, "ap-a"}};
static struct kr_cidr_rule cidrs[2];
static struct kr_region_rule regions[] = {{"us-*", "america"}};

static struct kr_placement rules(const char *own_rack)
{
	cr_assert(kr_cidr_parse("10.1.0.0/16", 11, &cidrs[0]));
	strcpy(cidrs[0].rack, "eu-c");
	cr_assert(kr_cidr_parse("fd00::/8", 8, &cidrs[1]));
	strcpy(cidrs[1].rack, "ap-b");
	return (struct kr_placement){own_rack, listeners, 2, cidrs, 2, regions, 1};
}

struct place_case {
	char name[64];
	char own_rack[16];  /* rack= */
	uint16_t port;      /* the listener the client connected to */
	char client_id[48]; /* "" = none */
	char peer[40];      /* "" = none */
	char rack[16];      /* expected */
	char region[16];    /* expected */
	enum kr_rack_source source;
};

static struct place_case cases[] = {
    {"client.id wins over everything", "us-a", 9092, "app,kstretch_rack=ap-c", "10.1.2.3", "ap-c", "ap",
     KR_RACK_CLIENT_ID},
    {"another system's hint counts", "us-a", 9092, "ws_az=us-b", "10.1.2.3", "us-b", "america", KR_RACK_CLIENT_ID},
    {"then the listener", "us-a", 9092, "app", "10.1.2.3", "eu-b", "eu", KR_RACK_LISTENER},
    {"then the source network", "us-a", 19001, "app", "10.1.2.3", "eu-c", "eu", KR_RACK_CIDR},
    {"IPv6 source network", "us-a", 19001, "", "fd00::7", "ap-b", "ap", KR_RACK_CIDR},
    {"IPv4-mapped source", "us-a", 19001, "", "::ffff:10.1.0.1", "eu-c", "eu", KR_RACK_CIDR},
    {"then kstretch's own rack", "us-a", 19001, "app", "192.168.0.1", "us-a", "america", KR_RACK_PROXY},
    {"no source address known", "us-a", 0, "", "", "us-a", "america", KR_RACK_PROXY},
    {"else unknown", "", 19001, "app", "192.168.0.1", "", "", KR_RACK_UNKNOWN},
    {"an empty hint is no hint", "", 19003, "kstretch_rack=", "", "ap-a", "ap", KR_RACK_LISTENER},
};

ParameterizedTestParameters(placement, first_match_wins)
{
	return cr_make_param_array(struct place_case, cases, sizeof(cases) / sizeof(cases[0]));
}

ParameterizedTest(struct place_case *c, placement, first_match_wins)
{
	struct kr_placement p = rules(c->own_rack);
	struct sockaddr_storage ss = {0};
	const struct sockaddr *peer = NULL;
	if (c->peer[0]) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, c->peer, &in4->sin_addr) == 1)
			in4->sin_family = AF_INET;
		else if (inet_pton(AF_INET6, c->peer, &in6->sin6_addr) == 1)
			in6->sin6_family = AF_INET6;
		else
			cr_assert_fail("bad test address %s", c->peer);
		peer = (const struct sockaddr *)&ss;
	}
	struct kr_client_place out;
	kr_client_place(&p, c->port, c->client_id[0] ? c->client_id : NULL, strlen(c->client_id), NULL, peer, &out);
	cr_assert_str_eq(out.rack, c->rack, "%s", c->name);
	cr_assert_str_eq(out.region, c->region, "%s", c->name);
	cr_assert_eq(out.source, c->source, "%s: %s", c->name, kr_rack_source_name(out.source));
}

Test(placement, no_rules_at_all_is_unknown)
{
	struct kr_placement none = {0};
	char rack[64] = "junk";
	cr_assert_eq(kr_client_rack(&none, 9092, "app", 3, NULL, NULL, rack, sizeof(rack)), KR_RACK_UNKNOWN);
	cr_assert_str_eq(rack, "");
	cr_assert_str_eq(kr_rack_source_name(KR_RACK_UNKNOWN), "unknown");
	cr_assert_str_eq(kr_rack_source_name(KR_RACK_CIDR), "rack.cidr");
}

/* ---- replica choice ---------------------------------------------------- */

Test(steer, a_local_in_sync_replica_is_chosen_and_never_the_leader)
{
	const struct kr_replica isr[] = {{1, "eu-a", "eu", true}, {2, "us-a", "us", true}, {3, "ap-a", "ap", true}};
	cr_assert_eq(kr_pick_local_replica(isr, 3, 1, "us-a", "us", 0), 2);
	cr_assert_eq(kr_pick_local_replica(isr, 3, 1, "ap-b", "ap", 7), 3);
	cr_assert_eq(kr_pick_local_replica(isr, 3, 1, "eu-b", "eu", 0), -1, "the leader is the local one");
	cr_assert_eq(kr_pick_local_replica(isr, 3, 1, "sa-a", "sa", 0), -1, "nothing in the region");
	cr_assert_eq(kr_pick_local_replica(isr, 3, 1, "", "", 0), -1, "unknown region");
}

Test(steer, the_clients_own_rack_first_then_spread_over_the_region)
{
	const struct kr_replica isr[] = {
	    {1, "eu-a", "eu", true}, {4, "us-b", "us", true}, {2, "us-a", "us", true}, {5, "us-c", "us", true}};
	for (uint64_t spread = 0; spread < 10; spread++)
		cr_assert_eq(kr_pick_local_replica(isr, 4, 1, "us-a", "us", spread), 2);
	bool seen[6] = {false};
	for (uint64_t spread = 0; spread < 10; spread++)
		seen[kr_pick_local_replica(isr, 4, 1, "us-z", "us", spread)] = true;
	cr_assert(seen[2] && seen[4] && seen[5] && !seen[1], "spread over the three us replicas");
}

Test(steer, replicas_kstretch_cannot_reach_are_skipped)
{
	const struct kr_replica isr[] = {{1, "eu-a", "eu", true}, {2, "us-a", "us", false}, {4, "us-b", "us", true}};
	cr_assert_eq(kr_pick_local_replica(isr, 3, 1, "us-a", "us", 0), 4);
	const struct kr_replica unknown[] = {{1, "eu-a", "eu", true}, {7, "", "", false}};
	cr_assert_eq(kr_pick_local_replica(unknown, 2, 1, "us-a", "us", 0), -1);
}

/* ---- the backoff table ------------------------------------------------- */

Test(steer, keys_differ_by_topic_and_partition)
{
	cr_assert_neq(kr_steer_key("orders", 6, 0), kr_steer_key("orders", 6, 1));
	cr_assert_neq(kr_steer_key("orders", 6, 0), kr_steer_key("order", 5, 0));
	cr_assert_eq(kr_steer_key("orders", 6, 3), kr_steer_key("orders", 6, 3));
}

Test(steer, a_partition_that_comes_back_is_held_for_the_backoff)
{
	struct kr_steer_table t;
	kr_steer_table_init(&t);
	uint64_t k = kr_steer_key("orders", 6, 0);
	cr_assert_eq(kr_steer_check(&t, k, 1000, 30000), KR_STEER_MAY);
	cr_assert(kr_steer_note_redirect(&t, k, 1000, 30000));
	/* the client comes back 2 s later: a fallback, counted once */
	cr_assert_eq(kr_steer_check(&t, k, 3000, 30000), KR_STEER_FELL_BACK);
	cr_assert_eq(kr_steer_check(&t, k, 3000, 30000), KR_STEER_HOLD);
	cr_assert_eq(kr_steer_check(&t, k, 32999, 30000), KR_STEER_HOLD);
	cr_assert_eq(kr_steer_check(&t, k, 33000, 30000), KR_STEER_MAY, "the backoff is over");
	cr_assert_eq(t.used, 0);
	kr_steer_table_free(&t);
}

Test(steer, a_return_after_the_window_is_routine)
{
	struct kr_steer_table t;
	kr_steer_table_init(&t);
	uint64_t k = kr_steer_key("orders", 6, 0);
	cr_assert(kr_steer_note_redirect(&t, k, 1000, 30000));
	cr_assert_eq(kr_steer_check(&t, k, 31000, 30000), KR_STEER_MAY, "e.g. the client's preferred replica expired");
	cr_assert_eq(kr_steer_check(&t, kr_steer_key("orders", 6, 1), 2000, 30000), KR_STEER_MAY, "other partitions");
	kr_steer_table_free(&t);
}

/*
 * A consumer of many partitions whose local follower fails: every redirected
 * partition comes back to the leader, and each must then stay there for the
 * whole backoff, however many there are (a fixed table of 64 forgot the
 * others, which were redirected again at every round and never read).
 */
static void rounds_with_a_failing_replica(int parts)
{
	struct kr_steer_table t;
	kr_steer_table_init(&t);
	for (int i = 0; i < parts; i++) {
		uint64_t k = kr_steer_key("wide", 4, i);
		cr_assert_eq(kr_steer_check(&t, k, 1000, 30000), KR_STEER_MAY);
		cr_assert(kr_steer_note_redirect(&t, k, 1000, 30000));
	}
	/* Every 500 ms the client fetches all of them from the leader again. */
	for (int64_t now = 1500; now <= 31500; now += 500) {
		int fell_back = 0, redirected = 0;
		for (int i = 0; i < parts; i++) {
			uint64_t k = kr_steer_key("wide", 4, i);
			switch (kr_steer_check(&t, k, now, 30000)) {
			case KR_STEER_FELL_BACK: fell_back++; break;
			case KR_STEER_HOLD: break;
			case KR_STEER_MAY:
				cr_assert(kr_steer_note_redirect(&t, k, now, 30000));
				redirected++;
				break;
			}
		}
		cr_assert_eq(fell_back, now == 1500 ? parts : 0, "%d partitions at %lld ms", parts, (long long)now);
		cr_assert_eq(redirected, now >= 31500 ? parts : 0, "%d partitions at %lld ms: redirected again",
		             parts, (long long)now);
	}
	cr_assert_eq(t.refused, 0);
	kr_steer_table_free(&t);
	cr_assert_null(t.slot);
}

Test(steer, a_failing_replica_holds_every_partition_back_whatever_their_number)
{
	static const int counts[] = {1, 63, 64, 65, 200, 5000};
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		rounds_with_a_failing_replica(counts[i]);
}

/* The table against a plain list of what it should hold, over random operations. */
Test(steer, the_table_answers_as_a_list_of_every_partition_would)
{
	enum { KEYS = 300 };
	struct {
		uint8_t state;
		int64_t until;
	} want[KEYS] = {{0}};
	struct kr_steer_table t;
	kr_steer_table_init(&t);
	uint32_t rnd = 12345;
	int64_t now = 0;
	for (int op = 0; op < 200000; op++) {
		rnd = rnd * 1103515245u + 12345u;
		int i = (int)((rnd >> 8) % KEYS);
		now += (rnd >> 4) % 3; /* a backoff of 700 ms: entries expire all along */
		uint64_t k = kr_steer_key("t", 1, i);
		enum kr_steer_verdict expect = KR_STEER_MAY;
		if (want[i].state && now < want[i].until)
			expect = want[i].state == KR_STEER_BACKOFF ? KR_STEER_HOLD : KR_STEER_FELL_BACK;
		if (want[i].state && now >= want[i].until)
			want[i].state = 0;
		if (expect == KR_STEER_FELL_BACK)
			want[i].state = KR_STEER_BACKOFF, want[i].until = now + 700;
		cr_assert_eq(kr_steer_check(&t, k, now, 700), expect, "op %d key %d", op, i);
		if (expect == KR_STEER_MAY && rnd >> 31) {
			cr_assert(kr_steer_note_redirect(&t, k, now, 700));
			want[i].state = KR_STEER_REDIRECTED, want[i].until = now + 700;
		}
		cr_assert_leq(t.used * 4, t.cap * 3);
	}
	kr_steer_table_free(&t);
}

Test(steer, past_the_limit_a_partition_is_not_redirected_instead_of_forgetting_another)
{
	struct kr_steer_table t;
	kr_steer_table_init(&t);
	for (uint32_t i = 0; i < KR_STEER_MAX; i++)
		cr_assert(kr_steer_note_redirect(&t, kr_steer_key("t", 1, (int32_t)i), 1000, 30000));
	cr_assert_eq(t.used, KR_STEER_MAX);
	cr_assert_leq((size_t)t.cap * sizeof(*t.slot), 4u << 20, "the memory bound: %u slots", t.cap);
	uint64_t extra = kr_steer_key("t", 1, -1);
	cr_assert_not(kr_steer_note_redirect(&t, extra, 2000, 30000), "no room: the caller keeps it with the leader");
	cr_assert_eq(t.refused, 1);
	cr_assert_eq(kr_steer_check(&t, extra, 2001, 30000), KR_STEER_MAY, "it was never redirected");
	cr_assert_not(kr_steer_note_redirect(&t, extra, 2002, 30000));
	cr_assert_eq(t.refused, 2);
	for (uint32_t i = 0; i < KR_STEER_MAX; i += 997)
		cr_assert_eq(kr_steer_check(&t, kr_steer_key("t", 1, (int32_t)i), 2001, 30000), KR_STEER_FELL_BACK,
		             "partition %u remembered", i);
	/* Once the others expire, there is room again and the table does not grow. */
	uint32_t cap = t.cap;
	cr_assert(kr_steer_note_redirect(&t, extra, 40000, 30000));
	cr_assert_eq(t.used, 1);
	cr_assert_leq(t.cap, cap);
	kr_steer_table_free(&t);
}

Test(steer, no_backoff_means_never_held)
{
	struct kr_steer_table t;
	kr_steer_table_init(&t);
	uint64_t k = kr_steer_key("x", 1, 0);
	cr_assert(kr_steer_note_redirect(&t, k, 1000, 0));
	cr_assert_eq(kr_steer_check(&t, k, 1000, 0), KR_STEER_MAY);
	cr_assert_null(t.slot, "nothing to remember");
}
