/*
 * FindCoordinator: hand-checked vectors, written from Kafka's definitions,
 * at v0 and v2 (one key, non-flexible), v3 (one key, flexible) and v4-v6
 * (batched keys); a response captured from the cluster simulator; unknown
 * tagged fields in a Coordinator.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

/* v2: throttle time first, a null error message, no coordinator yet. */
static const char v2_response[] = "00000002"  /* correlation_id */
                                  "00000000"  /* ThrottleTimeMs */
                                  "000f"      /* ErrorCode 15 COORDINATOR_NOT_AVAILABLE */
                                  "ffff"      /* ErrorMessage null */
                                  "ffffffff"  /* NodeId -1 */
                                  "0000"      /* Host "" */
                                  "ffffffff"; /* Port -1 */

/* v4: two keys, one found and one not. */
static const char v4_response[] = "00000004 00"                                        /* header v1 */
                                  "00000000"                                           /* ThrottleTimeMs */
                                  "03"                                                 /* Coordinators: 2 */
                                  "06 67726f7570 00000001 03 6231 00002384 0000 00 00" /* "group" at 1 b1:9092 */
                                  "03 6732 ffffffff 01 ffffffff 000f 04 6e2f61 00"     /* "g2": 15, "n/a" */
                                  "00";

Test(findcoordinator, field_indexes_used_by_routing_match_the_tables)
{
	const struct kp_schema *r = &kp_find_coordinator_response;
	const struct kp_schema *c = r->fields[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS].sub;
	cr_assert_eq(kp_field_index(r, "NodeId"), KP_FIND_COORDINATOR_RESPONSE_NODE_ID);
	cr_assert_eq(kp_field_index(r, "Host"), KP_FIND_COORDINATOR_RESPONSE_HOST);
	cr_assert_eq(kp_field_index(r, "Port"), KP_FIND_COORDINATOR_RESPONSE_PORT);
	cr_assert_eq(kp_field_index(r, "Coordinators"), KP_FIND_COORDINATOR_RESPONSE_COORDINATORS);
	cr_assert_not_null(c);
	cr_assert_eq(kp_field_index(c, "NodeId"), KP_FIND_COORDINATOR_COORDINATOR_NODE_ID);
	cr_assert_eq(kp_field_index(c, "Host"), KP_FIND_COORDINATOR_COORDINATOR_HOST);
	cr_assert_eq(kp_field_index(c, "Port"), KP_FIND_COORDINATOR_COORDINATOR_PORT);
}

Test(findcoordinator, v0_asks_for_a_group_and_gets_one_address)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("000a 0000 00000001 0004 6b636174 0005 67726f7570", buf, sizeof(buf)); /* Key "group" */
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.api_key, KP_API_FIND_COORDINATOR);
	cr_assert(span_is(field(m.body, "Key")->s, "group"));
	cr_assert_not(field(m.body, "KeyType")->present);

	n = unhex("00000001 0000 00000002 0002 6232 00002385", buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_FIND_COORDINATOR, 0, buf, n);
	cr_assert_not(field(m.body, "ThrottleTimeMs")->present);
	cr_assert_eq(field(m.body, "NodeId")->i, 2);
	cr_assert(span_is(field(m.body, "Host")->s, "b2"));
	cr_assert_eq(field(m.body, "Port")->i, 9093);
	kp_arena_free(&a);
}

Test(findcoordinator, v2_has_a_key_type_and_a_nullable_error_message)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("000a 0002 00000002 0004 6b636174 0003 747831 01", buf, sizeof(buf)); /* "tx1", transaction */
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(field(m.body, "KeyType")->i, 1);

	n = unhex(v2_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_FIND_COORDINATOR, 2, buf, n);
	cr_assert_eq(field(m.body, "ErrorCode")->i, 15);
	cr_assert_eq(field(m.body, "ErrorMessage")->s.len, -1);
	cr_assert_eq(field(m.body, "Host")->s.len, 0);
	cr_assert_eq(field(m.body, "NodeId")->i, -1);
	kp_arena_free(&a);
}

Test(findcoordinator, v3_is_flexible_with_one_key)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("000a 0003 00000003 0004 6b636174 00 06 67726f7570 00 00", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert(m.flexible);
	cr_assert(span_is(field(m.body, "Key")->s, "group"));

	n = unhex("00000003 00 00000000 0000 00 00000003 03 6233 00002386 00", buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_FIND_COORDINATOR, 3, buf, n);
	cr_assert_eq(m.resp.header_version, 1);
	cr_assert_eq(field(m.body, "ErrorMessage")->s.len, -1);
	cr_assert(span_is(field(m.body, "Host")->s, "b3"));
	cr_assert_not(field(m.body, "Coordinators")->present);
	kp_arena_free(&a);
}

Test(findcoordinator, v4_to_v6_batch_keys_and_coordinators)
{
	for (int16_t v = 4; v <= 6; v++) {
		struct kp_arena a;
		char hex[256];
		kp_arena_init(&a, 0);
		snprintf(hex, sizeof(hex), "000a %04x 00000004 0004 6b636174 00 00 03 06 67726f7570 03 6732 00", v);
		size_t n = unhex(hex, buf, sizeof(buf));
		struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
		cr_assert_eq(m.api_version, v);
		cr_assert_not(field(m.body, "Key")->present);
		const struct kp_value *keys = field(m.body, "CoordinatorKeys");
		cr_assert_eq(keys->a.cnt, 2);
		cr_assert(span_is(keys->a.items[1].s, "g2"));

		n = unhex(v4_response, buf, sizeof(buf));
		m = check_roundtrip(&a, false, KP_API_FIND_COORDINATOR, v, buf, n);
		cr_assert_not(field(m.body, "NodeId")->present);
		const struct kp_value *cs = field(m.body, "Coordinators");
		cr_assert_eq(cs->a.cnt, 2);
		const struct kp_struct *c0 = cs->a.items[0].st, *c1 = cs->a.items[1].st;
		cr_assert(span_is(field(c0, "Key")->s, "group"));
		cr_assert(span_is(field(c0, "Host")->s, "b1"));
		cr_assert_eq(field(c0, "Port")->i, 9092);
		cr_assert_eq(field(c0, "ErrorMessage")->s.len, -1);
		cr_assert_eq(field(c1, "ErrorCode")->i, 15);
		cr_assert(span_is(field(c1, "ErrorMessage")->s, "n/a"));
		kp_arena_free(&a);
	}
}

Test(findcoordinator, a_response_captured_from_the_simulator_round_trips)
{
	/* tests/vectors/findcoordinator/findcoordinator-v3-response.hex */
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("000000750000000000000000000000020a3132372e302e302e310000895300", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FIND_COORDINATOR, 3, buf, n);
	cr_assert_eq(field(m.body, "NodeId")->i, 2);
	cr_assert(span_is(field(m.body, "Host")->s, "127.0.0.1"));
	kp_arena_free(&a);
}

Test(findcoordinator, unknown_tagged_fields_in_a_coordinator_survive_a_round_trip)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000004 00 00000000 02"
	                 "06 67726f7570 00000001 03 6231 00002384 0000 00 01 07 01 ff" /* tag 7, 1 byte */
	                 "01 09 00",                                                   /* top level: tag 9, empty */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FIND_COORDINATOR, 4, buf, n);
	const struct kp_struct *c0 = field(m.body, "Coordinators")->a.items[0].st;
	cr_assert_eq(c0->unknown_cnt, 1);
	cr_assert_eq(c0->unknown[0].tag, 7);
	cr_assert_eq(m.body->unknown_cnt, 1);
	cr_assert_eq(m.body->unknown[0].tag, 9);
	kp_arena_free(&a);
}

Test(findcoordinator, every_malformation_of_the_vectors_fails_cleanly)
{
	size_t n = unhex(v2_response, buf, sizeof(buf));
	check_malformations(false, KP_API_FIND_COORDINATOR, 2, buf, n);
	n = unhex(v4_response, buf, sizeof(buf));
	check_malformations(false, KP_API_FIND_COORDINATOR, 4, buf, n);
}
