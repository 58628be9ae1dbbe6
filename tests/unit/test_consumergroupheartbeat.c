/*
 * ConsumerGroupHeartbeat (KIP-848): hand-checked vectors, written from
 * Kafka's definitions, at v0 and v1 (SubscribedTopicRegex); flexible in
 * all versions. The response's Assignment is a nullable struct: an int8
 * marker (-1 null, else present) before it.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"
#include "skip.h"

static uint8_t buf[512];

#define TOPIC_ID "00112233445566778899aabbccddeeff"

/* A consumer joining: epoch 0, its subscription, rack and rebalance timeout. */
static const char v0_join[] = "0044 0000 00000007 0001 63 00" /* header v2, client "c" */
                              "02 67"                         /* GroupId "g" */
                              "03 6d31"                       /* MemberId "m1" */
                              "00000000"                      /* MemberEpoch 0: join */
                              "00"                            /* InstanceId null */
                              "05 65752d61"                   /* RackId "eu-a" */
                              "000493e0"                      /* RebalanceTimeoutMs 300000 */
                              "02 02 74"                      /* SubscribedTopicNames ["t"] */
                              "00"                            /* ServerAssignor null */
                              "01"                            /* TopicPartitions [] */
                              "00";

static const char v1_regex[] = "0044 0001 00000008 0001 63 00"
                               "02 67 03 6d31 00000002 00 00 ffffffff" /* g, m1, epoch 2, nulls, -1 */
                               "00"                                    /* SubscribedTopicNames null */
                               "04 742e2a"                             /* SubscribedTopicRegex "t.*" */
                               "00"                                    /* ServerAssignor null */
                               "00"                                    /* TopicPartitions null */
                               "00";

static const char v1_assigned[] = "00000008 00"                    /* header v1 */
                                  "00000000 0000 00"               /* ThrottleTimeMs, ErrorCode, ErrorMessage null */
                                  "03 6d31 00000002 00001388"      /* MemberId "m1", epoch 2, 5000 ms */
                                  "01"                             /* Assignment present */
                                  "02 " TOPIC_ID " 03 00000000 00000001 00" /* [{id, [0, 1]}] */
                                  "00"                             /* Assignment's tags */
                                  "00";

static const char v0_fenced[] = "00000007 00"
                                "00000000 006e 08 66656e636564 21" /* FENCED_MEMBER_EPOCH (110), "fenced", */
                                "00 ffffffff 00000000"             /* MemberId null, epoch -1, interval 0 */
                                "ff"                               /* Assignment null */
                                "00";

Test(consumergroupheartbeat, the_api_table_decodes_v0_and_v1)
{
	const struct kp_api *api = kp_api_get(68);
	cr_assert_not_null(api);
	cr_assert_str_eq(api->name, "ConsumerGroupHeartbeat");
	cr_assert(kp_api_decodes(api, 0, true) && kp_api_decodes(api, 1, false));
	cr_assert_not(kp_api_decodes(api, 2, true));
	cr_assert(kp_api_flexible(api, 0));
}

Test(consumergroupheartbeat, v0_join_request)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(v0_join, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.api_key, 68);
	cr_assert_eq(m.req.header_version, 2);
	cr_assert(span_is(field(m.body, "GroupId")->s, "g"));
	cr_assert_eq(field(m.body, "MemberEpoch")->i, 0);
	cr_assert_eq(field(m.body, "InstanceId")->s.len, -1);
	cr_assert(span_is(field(m.body, "RackId")->s, "eu-a"));
	cr_assert_eq(field(m.body, "RebalanceTimeoutMs")->i, 300000);
	const struct kp_value *topics = field(m.body, "SubscribedTopicNames");
	cr_assert_eq(topics->a.cnt, 1);
	cr_assert(span_is(topics->a.items[0].s, "t"));
	cr_assert_not(field(m.body, "SubscribedTopicRegex")->present, "v1+ only");
	cr_assert_eq(field(m.body, "TopicPartitions")->a.cnt, 0);
	kp_arena_free(&a);
}

Test(consumergroupheartbeat, v1_request_subscribes_by_regex)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(v1_regex, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(field(m.body, "SubscribedTopicNames")->a.cnt, -1);
	cr_assert(span_is(field(m.body, "SubscribedTopicRegex")->s, "t.*"));
	cr_assert_eq(field(m.body, "TopicPartitions")->a.cnt, -1, "null: unchanged since the last heartbeat");
	kp_arena_free(&a);
}

Test(consumergroupheartbeat, a_response_with_an_assignment)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(v1_assigned, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, 68, 1, buf, n);
	cr_assert_eq(field(m.body, "HeartbeatIntervalMs")->i, 5000);
	const struct kp_struct *as = field(m.body, "Assignment")->st;
	cr_assert_not_null(as);
	const struct kp_value *tps = field(as, "TopicPartitions");
	cr_assert_eq(tps->a.cnt, 1);
	const struct kp_value *parts = field(tps->a.items[0].st, "Partitions");
	cr_assert_eq(parts->a.cnt, 2);
	cr_assert_eq(parts->a.items[1].i, 1);
	cr_assert_eq(field(tps->a.items[0].st, "TopicId")->s.ptr[15], 0xff);
	kp_arena_free(&a);
}

Test(consumergroupheartbeat, an_error_response_has_a_null_assignment)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(v0_fenced, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, 68, 0, buf, n);
	cr_assert_eq(field(m.body, "ErrorCode")->i, 110);
	cr_assert(span_is(field(m.body, "ErrorMessage")->s, "fenced!"));
	cr_assert_eq(field(m.body, "MemberId")->s.len, -1);
	cr_assert_null(field(m.body, "Assignment")->st);
	kp_arena_free(&a);
}

/* Kafka reads any marker >= 0 as a present struct and writes 1. */
Test(consumergroupheartbeat, a_marker_of_zero_is_a_present_assignment_written_back_as_one)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	struct kp_writer w;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000008 00 00000000 0000 00 03 6d31 00000002 00001388 00 01 00 00", buf, sizeof(buf));
	kp_cursor_init(&c, buf, n);
	cr_assert(kp_message_decode(&a, &c, false, 68, 1, &m), "%s at %zu", kp_error_name(c.err), c.err_pos);
	cr_assert_not_null(field(m.body, "Assignment")->st);
	kp_writer_init(&w);
	kp_message_encode(&w, &m);
	size_t outlen;
	uint8_t *out = kp_writer_flatten(&w, &outlen);
	cr_assert_eq(outlen, n);
	cr_assert_eq(out[n - 4], 0x01, "the marker is written as 1");
	free(out);
	kp_writer_free(&w);
	kp_arena_free(&a);
}

Test(consumergroupheartbeat, a_truncated_or_bad_marker_fails_cleanly)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	/* The marker says present, the struct is missing. */
	size_t n = unhex("00000008 00 00000000 0000 00 03 6d31 00000002 00001388 01", buf, sizeof(buf));
	kp_cursor_init(&c, buf, n);
	cr_assert_not(kp_message_decode(&a, &c, false, 68, 1, &m));
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
	/* No marker at all. */
	n = unhex("00000008 00 00000000 0000 00 03 6d31 00000002 00001388", buf, sizeof(buf));
	kp_cursor_init(&c, buf, n);
	cr_assert_not(kp_message_decode(&a, &c, false, 68, 1, &m));
	cr_assert_str_eq(c.err_field, "Assignment");
	kp_arena_free(&a);
}

Test(consumergroupheartbeat, every_malformation_of_the_vectors_fails_cleanly)
{
	const char *vectors[] = {v0_join, v1_regex};
	for (size_t i = 0; i < 2; i++) {
		size_t n = unhex(vectors[i], buf, sizeof(buf));
		check_malformations(true, -1, -1, buf, n);
	}
	size_t n = unhex(v1_assigned, buf, sizeof(buf));
	check_malformations(false, 68, 1, buf, n);
	n = unhex(v0_fenced, buf, sizeof(buf));
	check_malformations(false, 68, 0, buf, n);
}

/* The walk over pieces (skip.c) reads the marker too: null and present. */
Test(consumergroupheartbeat, the_walk_over_pieces_steps_over_a_null_and_a_present_assignment)
{
	const char *vectors[] = {v1_assigned, v0_fenced};
	const int16_t versions[] = {1, 0};
	for (size_t i = 0; i < 2; i++) {
		size_t n = unhex(vectors[i], buf, sizeof(buf));
		struct iovec iov = {buf, n};
		struct kp_pieces p;
		uint32_t tags = 99;
		kp_pieces_init(&p, &iov, 1, n);
		cr_assert(kp_pieces_skip(&p, 5, "header"));
		cr_assert(kp_skip_to_tags(&p, &kp_consumer_group_heartbeat_response, versions[i], true, &tags),
		          "vector %zu: %s", i, kp_error_name(p.err));
		cr_assert_eq(tags, 0);
		cr_assert_eq(p.pos, n - 1, "vector %zu: at the top-level tag section", i);
	}
}
