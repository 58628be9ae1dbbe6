/*
 * JoinGroup and the consumer protocol's subscription in it: decoded both
 * sides of the flexible boundary, every malformation survived, and the
 * rack of a v3 subscription set (KIP-881), only where one is named.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

/* A consumer subscription v3 to topic t, no user data, no owned partitions, rack eu-west-1a. */
#define SUB_V3_RACK "0003 00000001 0001 74 ffffffff 00000000 ffffffff 000a 65752d776573742d3161"
#define SUB_V3_EU   "0003 00000001 0001 74 ffffffff 00000000 ffffffff 0002 6575"
#define SUB_V3_NONE "0003 00000001 0001 74 ffffffff 00000000 ffffffff ffff"
#define SUB_V1      "0001 00000001 0001 74 ffffffff 00000000"

static const char join_v5[] = "000b 0005 00000001 0004 6b636174"
                              "0001 67 00002710 0000ea60 0000 ffff 0008 636f6e73756d6572"
                              "00000002 0005 72616e6765 00000021 " SUB_V3_RACK /* range */
                              "000b 636f6f7065726174697665 00000011 " SUB_V1;  /* cooperative: v1, no rack */
static const char join_v9[] = "000b 0009 00000001 0004 6b636174 00"
                              "02 67 00002710 0000ea60 01 00 09 636f6e73756d6572"
                              "02 06 72616e6765 22 " SUB_V3_RACK " 00"
                              "00 00"; /* Reason null, tags */

static struct kp_struct *decoded(struct kp_arena *a, const char *hex, int16_t ver, size_t *n)
{
	*n = unhex(hex, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(a, true, 11, ver, buf, *n);
	cr_assert(m.body);
	return m.body;
}

static void metadata_is(const struct kp_struct *req, int32_t i, const char *hex)
{
	uint8_t want[256];
	size_t n = unhex(hex, want, sizeof(want));
	struct kp_span got = item(&req->v[KP_JOIN_GROUP_REQ_PROTOCOLS], i)->v[KP_JOIN_GROUP_PROTOCOL_METADATA].s;
	cr_assert_eq((size_t)got.len, n, "protocol %d: %d bytes, want %zu", i, got.len, n);
	cr_assert_arr_eq(got.ptr, want, n, "protocol %d", i);
}

Test(joingroup, field_indexes_match_the_table)
{
	const struct kp_schema *req = &kp_join_group_request;
	cr_assert_eq(kp_field_index(req, "ProtocolType"), KP_JOIN_GROUP_REQ_PROTOCOL_TYPE);
	cr_assert_eq(kp_field_index(req, "Protocols"), KP_JOIN_GROUP_REQ_PROTOCOLS);
	cr_assert_eq(kp_field_index(sub(req, KP_JOIN_GROUP_REQ_PROTOCOLS), "Metadata"),
	             KP_JOIN_GROUP_PROTOCOL_METADATA);
	cr_assert_eq(kp_field_index(&kp_consumer_subscription, "RackId"), KP_SUBSCRIPTION_RACK_ID);
	cr_assert_eq(kp_field_index(&kp_consumer_group_heartbeat_request, "RackId"),
	             KP_CONSUMER_GROUP_HEARTBEAT_REQ_RACK_ID);
}

Test(joingroup, a_v3_subscriptions_rack_becomes_the_region_and_nothing_else_changes)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n;
	struct kp_struct *req = decoded(&a, join_v5, 5, &n);
	check_malformations(true, 11, 5, buf, n);
	struct kp_span eu = {(const uint8_t *)"eu", 2};
	cr_assert_eq(kp_join_group_set_rack(&a, req, eu), 1, "only the v3 subscription names a rack");
	metadata_is(req, 0, SUB_V3_EU);
	metadata_is(req, 1, SUB_V1);
	cr_assert_eq(kp_join_group_set_rack(&a, req, eu), 0, "already the region");

	req = decoded(&a, join_v9, 9, &n);
	check_malformations(true, 11, 9, buf, n);
	cr_assert_eq(kp_join_group_set_rack(&a, req, eu), 1);
	metadata_is(req, 0, SUB_V3_EU);
	kp_arena_free(&a);
}

Test(joingroup, other_protocols_no_rack_and_unreadable_subscriptions_are_left_as_they_are)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	struct kp_span eu = {(const uint8_t *)"eu", 2};
	size_t n;
	/* Kafka Connect's protocol type, with consumer-looking metadata. */
	struct kp_struct *req = decoded(&a,
	                                "000b 0005 00000001 0004 6b636174 0001 67 00002710 0000ea60 0000 ffff"
	                                "0007 636f6e6e656374 00000001 0005 72616e6765 00000021 " SUB_V3_RACK,
	                                5, &n);
	cr_assert_eq(kp_join_group_set_rack(&a, req, eu), 0);
	metadata_is(req, 0, SUB_V3_RACK);
	/* No rack named; a subscription of a later version; one that does not decode. */
	req = decoded(&a,
	              "000b 0005 00000001 0004 6b636174 0001 67 00002710 0000ea60 0000 ffff 0008 636f6e73756d6572"
	              "00000003 0001 61 00000017 " SUB_V3_NONE
	              " 0001 62 00000021 0004 00000001 0001 74 ffffffff 00000000 ffffffff 000a 65752d776573742d3161"
	              " 0001 63 00000005 0003 000000",
	              5, &n);
	cr_assert_eq(kp_join_group_set_rack(&a, req, eu), 0);
	metadata_is(req, 0, SUB_V3_NONE);
	kp_arena_free(&a);
}
