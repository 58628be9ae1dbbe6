/*
 * DescribeProducers (protocol/describeproducers.c): a hand-written v0
 * request and response, from Kafka's definitions, decode and re-encode byte
 * for byte and survive every truncation and hostile length; a request cut by
 * destination carries each destination's partitions in the client's order,
 * and the destinations' answers (in any order, one destination failed) merge
 * back in the client's order.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "describeproducers.h"

#define NOT_LEADER 6

static uint8_t buf[1024];

/* Topics [a [0 1 2], bb [5]] */
static const char request[] = "003d 0000 00000004 0004 6b636174 00" /* header v2: key 61 v0 */
                              "03"                                  /* Topics: 2 */
                              "02 61 04 00000000 00000001 00000002 00"
                              "03 6262 02 00000005 00"
                              "00";
/* ThrottleTimeMs 7, Topics [a [1: one producer]] */
static const char response[] = "00000004 00"
                               "00000007 02"
                               "02 61 02"
                               "00000001 0000 00"
                               "02 000000000000002a 00000003 00000009 0000018c00000000 00000000 ffffffffffffffff 00"
                               "00"
                               "00 00";

Test(describeproducers, vectors_round_trip_and_survive_malformation)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.api_key, KP_API_DESCRIBE_PRODUCERS);
	cr_assert_eq(kp_describe_producers_count(m.body), 4);
	check_malformations(true, -1, -1, buf, n);
	n = unhex(response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_DESCRIBE_PRODUCERS, 0, buf, n);
	cr_assert_eq(field(m.body, "ThrottleTimeMs")->i, 7);
	check_malformations(false, KP_API_DESCRIBE_PRODUCERS, 0, buf, n);
	cr_assert_eq(kp_describe_producers_count(m.body), -1, "a response is not a request");
	kp_arena_free(&a);
}

static struct kp_struct *answer(struct kp_arena *a, const char *topic, const int32_t *index, int cnt, int16_t err)
{
	const struct kp_schema *ts = sub(&kp_describe_producers_response, KP_DESCRIBE_PRODUCERS_RESP_TOPICS);
	const struct kp_schema *ps = sub(ts, KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS);
	struct kp_struct *r = kp_struct_new(a, &kp_describe_producers_response, 0);
	struct kp_struct *t = kp_struct_new(a, ts, 0);
	struct kp_value *parts = kp_arena_alloc(a, (size_t)cnt * sizeof(*parts));
	for (int i = cnt - 1, k = 0; i >= 0; i--, k++) { /* the broker's own order: reversed */
		struct kp_struct *p = kp_struct_new(a, ps, 0);
		p->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITION_INDEX].i = index[i];
		p->v[KP_DESCRIBE_PRODUCERS_RESP_ERROR_CODE].i = err;
		parts[k] = (struct kp_value){.st = p, .present = true};
	}
	t->v[KP_DESCRIBE_PRODUCERS_RESP_TOPIC_NAME].s = (struct kp_span){(const uint8_t *)topic, (int32_t)strlen(topic)};
	t->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS].a = (struct kp_list){parts, cnt};
	struct kp_value *topics = kp_arena_alloc(a, sizeof(*topics));
	topics[0] = (struct kp_value){.st = t, .present = true};
	r->v[KP_DESCRIBE_PRODUCERS_RESP_TOPICS].a = (struct kp_list){topics, 1};
	return r;
}

Test(describeproducers, a_request_cut_by_leader_merges_back_in_the_clients_order)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	/* a/0 -> 1, a/1 -> 0, a/2 -> 1, bb/5 -> 2 (fails) ; ndest 3 */
	const int32_t dest[] = {1, 0, 1, 2};
	struct kp_split s;
	cr_assert(kp_describe_producers_split(&a, m.body, 0, dest, 4, 3, &s));
	cr_assert_not(kp_describe_producers_split(&a, m.body, 0, dest, 3, 3, &s), "a wrong count");
	cr_assert(kp_describe_producers_split(&a, m.body, 0, dest, 4, 3, &s));
	const struct kp_struct *d1 = s.dests[1].request;
	cr_assert_not_null(d1);
	const struct kp_value *t1 = &d1->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS];
	cr_assert_eq(t1->a.cnt, 1);
	const struct kp_value *idx = &item(t1, 0)->v[KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES];
	cr_assert_eq(idx->a.cnt, 2);
	cr_assert_eq(idx->a.items[0].i, 0);
	cr_assert_eq(idx->a.items[1].i, 2);
	cr_assert(span_is(item(&s.dests[2].request->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS], 0)->v[0].s, "bb"));

	const int32_t a1[] = {0, 2}, a0[] = {1};
	struct kp_struct *resp[3] = {answer(&a, "a", a0, 1, 0), answer(&a, "a", a1, 2, 0), NULL};
	struct kp_struct *mg = kp_split_merge(&a, &kp_split_describe_producers_response, &s, resp, NOT_LEADER);
	cr_assert_not_null(mg);
	const struct kp_value *topics = &mg->v[KP_DESCRIBE_PRODUCERS_RESP_TOPICS];
	cr_assert_eq(topics->a.cnt, 2);
	const struct kp_value *pa = &item(topics, 0)->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS];
	cr_assert_eq(pa->a.cnt, 3);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(item(pa, i)->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITION_INDEX].i, i, "client order");
		cr_assert_eq(item(pa, i)->v[KP_DESCRIBE_PRODUCERS_RESP_ERROR_CODE].i, 0);
	}
	const struct kp_value *pb = &item(topics, 1)->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS];
	cr_assert_eq(item(pb, 0)->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITION_INDEX].i, 5);
	cr_assert_eq(item(pb, 0)->v[KP_DESCRIBE_PRODUCERS_RESP_ERROR_CODE].i, NOT_LEADER, "its broker failed");
	kp_arena_free(&a);
}

Test(describeproducers, partitions_that_go_nowhere_are_answered_with_the_merges_error)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	const int32_t dest[] = {-1, -1, -1, -1};
	struct kp_split s;
	cr_assert(kp_describe_producers_split(&a, m.body, 0, dest, 4, 1, &s));
	cr_assert_null(s.dests[0].request, "nothing to send");
	struct kp_struct *resp[1] = {NULL};
	struct kp_struct *mg = kp_split_merge(&a, &kp_split_describe_producers_response, &s, resp, NOT_LEADER);
	const struct kp_value *topics = &mg->v[KP_DESCRIBE_PRODUCERS_RESP_TOPICS];
	cr_assert_eq(topics->a.cnt, 2);
	cr_assert_eq(item(&item(topics, 0)->v[KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS], 2)->v[1].i, NOT_LEADER);
	const int32_t bad[] = {0, 0, 5, 0};
	cr_assert_not(kp_describe_producers_split(&a, m.body, 0, bad, 4, 1, &s), "a destination out of range");
	kp_arena_free(&a);
}
