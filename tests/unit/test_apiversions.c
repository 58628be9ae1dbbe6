/*
 * ApiVersions: hand-checked vectors, written from Kafka's definitions, on
 * each side of the flexible boundary (v2 | v3), and the tagged fields.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[512];

Test(apiversions, v0_response)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000007"        /* correlation_id */
	                 "0000"            /* ErrorCode */
	                 "00000001"        /* ApiKeys: 1 */
	                 "0012 0000 0002", /* ApiVersions 0..2 */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_API_VERSIONS, 0, buf, n);
	cr_assert_eq(m.resp.correlation_id, 7);
	const struct kp_value *keys = &m.body->v[kp_field_index(&kp_api_versions_response, "ApiKeys")];
	cr_assert_eq(keys->a.cnt, 1);
	cr_assert_eq(keys->a.items[0].st->v[2].i, 2);
	kp_arena_free(&a);
}

Test(apiversions, v2_response_has_throttle_time_and_no_tags)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000001 0000 00000000 00000064", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_API_VERSIONS, 2, buf, n);
	cr_assert_eq(m.body->v[kp_field_index(&kp_api_versions_response, "ThrottleTimeMs")].i, 100);
	kp_arena_free(&a);
}

Test(apiversions, v3_response_is_flexible_but_keeps_header_v0)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000007"                   /* header v0: no tag section */
	                 "0000"                       /* ErrorCode */
	                 "03"                         /* ApiKeys: compact, 2 */
	                 "0000 0000 000b 00"          /* Produce 0..11, no tags */
	                 "0012 0000 0004 00"          /* ApiVersions 0..4 */
	                 "00000000"                   /* ThrottleTimeMs */
	                 "01 01 08 0000000000000005", /* tag 1 FinalizedFeaturesEpoch = 5 */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_API_VERSIONS, 3, buf, n);
	int epoch = kp_field_index(&kp_api_versions_response, "FinalizedFeaturesEpoch");
	cr_assert(m.body->v[epoch].present);
	cr_assert_eq(m.body->v[epoch].i, 5);
	cr_assert_eq(m.resp.header_version, 0);
	kp_arena_free(&a);
}

Test(apiversions, v3_request_carries_the_client_software)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0012 0003 0000002a 0004 6b636174 00" /* header v2, client "kcat" */
	                 "09 6b73747265746368"                 /* ClientSoftwareName "kstretch" */
	                 "06 302e312e30"                       /* ClientSoftwareVersion "0.1.0" */
	                 "00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.api_key, KP_API_API_VERSIONS);
	struct kp_span name = m.body->v[0].s;
	cr_assert(name.len == 8 && memcmp(name.ptr, "kstretch", 8) == 0);
	kp_arena_free(&a);
}

Test(apiversions, unknown_tagged_fields_survive_a_round_trip)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000007 0000 01 00000000"
	                 "02 01 08 0000000000000009 09 02 abcd", /* known tag 1, unknown tag 9 */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_API_VERSIONS, 3, buf, n);
	cr_assert_eq(m.body->unknown_cnt, 1);
	cr_assert_eq(m.body->unknown[0].tag, 9);
	cr_assert_eq(m.body->unknown[0].data.len, 2);
	kp_arena_free(&a);
}

Test(apiversions, tags_out_of_order_or_repeated_are_malformed)
{
	const char *bad[] = {
	    "00000007 0000 01 00000000 02 01 08 0000000000000009 00 01 01", /* 1 then 0 */
	    "00000007 0000 01 00000000 02 03 01 01 03 01 01",               /* 3 twice */
	};
	for (size_t i = 0; i < 2; i++) {
		struct kp_arena a;
		struct kp_cursor c;
		struct kp_message m;
		kp_arena_init(&a, 0);
		size_t n = unhex(bad[i], buf, sizeof(buf));
		kp_cursor_init(&c, buf, n);
		cr_assert_not(kp_message_decode(&a, &c, false, KP_API_API_VERSIONS, 3, &m));
		cr_assert_eq(c.err, KP_ERR_BAD_TAGS, "case %zu: %s", i, kp_error_name(c.err));
		kp_arena_free(&a);
	}
}

Test(apiversions, a_known_tag_with_the_wrong_size_is_malformed)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000007 0000 01 00000000 01 01 09 0000000000000009 00", buf, sizeof(buf));
	kp_cursor_init(&c, buf, n);
	cr_assert_not(kp_message_decode(&a, &c, false, KP_API_API_VERSIONS, 3, &m));
	cr_assert_eq(c.err, KP_ERR_TRAILING);
	cr_assert_str_eq(c.err_field, "FinalizedFeaturesEpoch");
	kp_arena_free(&a);
}

Test(apiversions, every_malformation_of_the_vectors_fails_cleanly)
{
	size_t n = unhex("00000007 0000 03 0000 0000 000b 00 0012 0000 0004 00 00000000 01 01 08 0000000000000005", buf,
	                 sizeof(buf));
	check_malformations(false, KP_API_API_VERSIONS, 3, buf, n);
}

/* The error of an answer in any form: ErrorCode leads every version's body. */
Test(apiversions, the_error_code_is_read_from_an_answer_in_any_form)
{
	const struct {
		const char *body; /* after the header */
		int16_t error;
	} forms[] = {
	    {"0023 00000002 0003 0000 000d 0012 0000 0003", 35}, /* v0 layout, the broker's ranges */
	    {"0023 00000000", 35},                               /* v0 layout, no ranges */
	    {"0023 01 00000000 00", 35},                         /* flexible layout, no ranges */
	    {"0023 01", 35},                                     /* flexible, cut short after the array */
	    {"0023", 35},                                        /* the code alone */
	    {"0023 00000003 0003 00", 35},                       /* v0 layout, ranges cut short */
	    {"0000 02 0012 0000 0004 00 00000000 00", 0},        /* a successful v3 answer */
	    {"ffff", -1},                                        /* UNKNOWN_SERVER_ERROR */
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		size_t n = unhex(forms[i].body, buf, sizeof(buf));
		int16_t error = 12345;
		struct kp_cursor c;
		cr_assert(kp_api_versions_error(buf, n, &error, &c), "form %zu: %s", i, kp_error_name(c.err));
		cr_assert_eq(error, forms[i].error, "form %zu: error %d", i, error);
		cr_assert_eq(c.pos, 2, "form %zu: nothing after the code is read", i);
	}
}

Test(apiversions, an_answer_shorter_than_its_error_code_is_refused)
{
	int16_t error;
	struct kp_cursor c;
	buf[0] = 0x00;
	cr_assert_not(kp_api_versions_error(buf, 0, &error, &c));
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
	cr_assert_str_eq(c.err_field, "ErrorCode");
	cr_assert_not(kp_api_versions_error(buf, 1, &error, NULL));
}

/* v5 (KIP-1242): the client names the cluster and node it means to reach. */
Test(apiversions, v5_request_names_the_cluster_and_the_node)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0012 0005 0000002a 0001 63 00" /* header v2, client "c" */
	                 "05 6a617661"                   /* ClientSoftwareName "java" */
	                 "06 342e342e30"                 /* ClientSoftwareVersion "4.4.0" */
	                 "08 636c7573746572"             /* ClusterId "cluster" */
	                 "00000003"                      /* NodeId 3 */
	                 "00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert(span_is(field(m.body, "ClusterId")->s, "cluster"));
	cr_assert_eq(field(m.body, "NodeId")->i, 3);

	/* Before the client knows them: null and -1. */
	n = unhex("0012 0005 0000002b 0001 63 00 05 6a617661 06 342e342e30 00 ffffffff 00", buf, sizeof(buf));
	m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(field(m.body, "ClusterId")->s.len, -1);
	cr_assert_eq(field(m.body, "NodeId")->i, -1);

	/* v4 has neither. */
	n = unhex("0012 0004 0000002c 0001 63 00 05 6a617661 06 342e342e30 00", buf, sizeof(buf));
	m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_not(field(m.body, "ClusterId")->present);
	cr_assert_not(field(m.body, "NodeId")->present);
	kp_arena_free(&a);
}

Test(apiversions, v5_response_has_the_v4_layout)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000007 0000 02 0012 0000 0005 00 00000000 00", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_API_VERSIONS, 5, buf, n);
	const struct kp_value *keys = field(m.body, "ApiKeys");
	cr_assert_eq(keys->a.items[0].st->v[2].i, 5);
	check_malformations(false, KP_API_API_VERSIONS, 5, buf, n);
	kp_arena_free(&a);
}
