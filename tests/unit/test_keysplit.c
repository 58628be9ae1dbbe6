/*
 * keysplit and groups.c: the group and transaction APIs that name several
 * keys (or none), from hand-written vectors of Kafka 4.4's definitions on
 * both sides of their flexible boundaries; every malformation of them; and
 * the split by key, the merge in the client's order and the gathering of
 * listings.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "coordinator.h"
#include "keysplit.h"
#include "messages.h"

static uint8_t buf[2048];

/* A body (no header) decoded from hex at ver; asserts it decodes whole. */
static struct kp_struct *body_of(struct kp_arena *a, const struct kp_schema *s, int16_t api, int16_t ver,
                                 const char *hex)
{
	static uint8_t bytes[4][1024];
	static int next;
	uint8_t *b = bytes[next++ % 4];
	size_t n = unhex(hex, b, 1024);
	struct kp_cursor c;
	kp_cursor_init(&c, b, n);
	struct kp_struct *st = kp_decode(a, &c, s, ver, kp_api_flexible(kp_api_get(api), ver), -1);
	cr_assert(st, "%s v%d: %s at %s", s->name, ver, kp_error_name(c.err), c.err_field ? c.err_field : "?");
	cr_assert_eq(c.pos, c.len, "%s v%d: trailing bytes", s->name, ver);
	return st;
}

/* st encoded at ver equals hex. */
static void encodes_to(const struct kp_struct *st, int16_t api, int16_t ver, const char *hex)
{
	uint8_t want[1024];
	size_t n = unhex(hex, want, sizeof(want));
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, st, ver, kp_api_flexible(kp_api_get(api), ver), -1);
	cr_assert(kp_writer_ok(&w));
	size_t len;
	uint8_t *got = kp_writer_flatten(&w, &len);
	cr_assert_eq(len, n, "%s v%d: %zu bytes, want %zu", st->schema->name, ver, len, n);
	cr_assert_arr_eq(got, want, n, "%s v%d", st->schema->name, ver);
	free(got);
	kp_writer_free(&w);
}

/* Decodes a whole frame body (header + body) both ways, then every malformation of it. */
static void vector(bool request, int16_t api, int16_t ver, const char *hex)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(hex, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, request, api, ver, buf, n);
	cr_assert(m.body, "api %d v%d", api, ver);
	check_malformations(request, api, ver, buf, n);
	kp_arena_free(&a);
}

/* ---- the vectors --------------------------------------------------------- */

Test(keysplit, the_group_and_transaction_apis_decode_and_encode_byte_for_byte)
{
	/* DescribeGroups v0 and v5 (flexible); v6 adds a group's ErrorMessage. */
	vector(true, 15, 0, "000f 0000 00000001 0004 6b636174  00000002 0002 6731 0002 6732");
	vector(false, 15, 0, "00000001  00000001 0000 0002 6731 0005 456d707479 0008 636f6e73756d6572 0000 00000000");
	vector(true, 15, 5, "000f 0005 00000001 0004 6b636174 00  04 03 6731 03 6732 03 6733 01 00");
	vector(false, 15, 5,
	       "00000001 00  00000000 02 0000 03 6731 06 456d707479 09 636f6e73756d6572 01"
	       "02 02 6d 00 02 63 02 68 01 01 00" /* a member: id m, client c, host h */
	       "80000000 00 00");
	vector(false, 15, 6,
	       "00000001 00  00000000 02 0010 0b 6e6f7420746865726521 03 6731 01 01 01 01 80000000 00 00");
	/* ListGroups v0, v4 (StatesFilter), v5 (TypesFilter, GroupType). */
	vector(true, 16, 0, "0010 0000 00000001 0004 6b636174");
	vector(false, 16, 0, "00000001  0000 00000001 0001 67 0008 636f6e73756d6572");
	vector(true, 16, 4, "0010 0004 00000001 0004 6b636174 00  02 07 537461626c65 00");
	vector(true, 16, 5, "0010 0005 00000001 0004 6b636174 00  01 02 09 636f6e73756d6572 00");
	vector(false, 16, 5,
	       "00000001 00  00000000 0000 02 02 67 09 636f6e73756d6572 07 537461626c65"
	       "08 636c6173736963 00 00");
	/* DeleteGroups v1, v2 (flexible), v3 (ErrorMessage). */
	vector(true, 42, 1, "002a 0001 00000001 0004 6b636174  00000001 0001 67");
	vector(false, 42, 1, "00000001  00000000 00000001 0001 67 0045");
	vector(true, 42, 2, "002a 0002 00000001 0004 6b636174 00  03 03 6731 03 6732 00");
	vector(false, 42, 3, "00000001 00  00000000 02 03 6731 0000 00 00 00");
	/* OffsetFetch v1 (one group), v7, v8 (several groups), v9 (member), v10 (topic ids). */
	vector(true, 9, 1, "0009 0001 00000001 0004 6b636174  0001 67 00000001 0001 74 00000001 00000000");
	vector(false, 9, 1, "00000001  00000001 0001 74 00000001 00000000 000000000000002a 0000 0000");
	vector(true, 9, 7, "0009 0007 00000001 0004 6b636174 00  02 67 00 01 00");
	vector(false, 9, 7,
	       "00000001 00  00000000 02 02 74 02 00000000 000000000000002a ffffffff 01 0000 00 00"
	       "0000 00");
	vector(true, 9, 8,
	       "0009 0008 00000001 0004 6b636174 00  03 02 61 00 00 02 62 02 02 74 02 00000000 00 00"
	       "00 00");
	vector(false, 9, 8,
	       "00000001 00  00000000 02 02 61 02 02 74 02 00000000 000000000000002a ffffffff 01 0000"
	       "00 00 0000 00 00");
	vector(true, 9, 9, "0009 0009 00000001 0004 6b636174 00  02 02 61 02 6d 00000005 00 00 01 00");
	vector(true, 9, 10,
	       "0009 000a 00000001 0004 6b636174 00  02 02 61 00 ffffffff"
	       "02 000102030405060708090a0b0c0d0e0f 02 00000000 00 00 00 00");
	vector(false, 9, 10,
	       "00000001 00  00000000 02 02 61 02 000102030405060708090a0b0c0d0e0f"
	       "02 00000000 000000000000002a ffffffff 00 0000 00 00 0000 00 00");
	/* ConsumerGroupDescribe v0 and v1 (MemberType). */
	vector(true, 69, 0, "0045 0000 00000001 0004 6b636174 00  02 02 67 00 00");
	vector(false, 69, 1,
	       "00000001 00  00000000 02 0000 00 02 67 07 537461626c65 00000003 00000003"
	       "08 756e69666f726d 02"
	       "02 6d 00 03 6575 00000003 02 63 02 68 02 02 74 00"           /* member m, rack eu, topic t */
	       "02 000102030405060708090a0b0c0d0e0f 02 74 02 00000000 00 00" /* Assignment */
	       "01 00"                                                       /* TargetAssignment: none */
	       "01 00 80000000 00 00");
	/* DescribeTransactions v0, ListTransactions v0-2. */
	vector(true, 65, 0, "0041 0000 00000001 0004 6b636174 00  02 03 7478 00");
	vector(false, 65, 0,
	       "00000001 00  00000000 02 0000 03 7478 08 4f6e676f696e67 0000ea60 0000000000000001"
	       "0000000000000007 0000 02 02 74 02 00000000 00 00 00");
	vector(true, 66, 0, "0042 0000 00000001 0004 6b636174 00  01 01 00");
	vector(true, 66, 1, "0042 0001 00000001 0004 6b636174 00  01 01 ffffffffffffffff 00");
	vector(true, 66, 2, "0042 0002 00000001 0004 6b636174 00  01 01 ffffffffffffffff 03 74 2a 00");
	vector(false, 66, 2, "00000001 00  00000000 0000 01 02 03 7478 0000000000000007 08 4f6e676f696e67 00 00");
}

Test(keysplit, layout_indexes_name_the_fields_they_say)
{
	const struct kp_keysplit_layout *ls[] = {
	    &kp_keysplit_describe_groups,         &kp_keysplit_delete_groups,         &kp_keysplit_offset_fetch,
	    &kp_keysplit_consumer_group_describe, &kp_keysplit_describe_transactions, &kp_keysplit_list_groups,
	    &kp_keysplit_list_transactions,
	};
	const char *keys[] = {"Groups", "GroupsNames", "Groups", "GroupIds", "TransactionalIds", NULL, NULL};
	const char *items[] = {"Groups", "Results",          "Groups", "Groups", "TransactionStates",
	                       "Groups", "TransactionStates"};
	const char *key[] = {"GroupId",         "GroupId", "GroupId",        "GroupId",
	                     "TransactionalId", "GroupId", "TransactionalId"};
	for (size_t i = 0; i < sizeof(ls) / sizeof(ls[0]); i++) {
		const struct kp_keysplit_layout *l = ls[i];
		if (keys[i]) {
			cr_assert_eq(kp_field_index(l->request, keys[i]), l->req_keys, "%s", l->request->name);
			if (l->req_key >= 0)
				cr_assert_eq(kp_field_index(sub(l->request, l->req_keys), "GroupId"), l->req_key);
			cr_assert_eq(kp_field_index(sub(l->response, l->resp_items), "ErrorCode"), l->resp_error);
		} else {
			cr_assert_lt(l->req_keys, 0);
			cr_assert_eq(kp_field_index(l->response, "ErrorCode"), l->error_code, "%s", l->response->name);
		}
		cr_assert_eq(kp_field_index(l->response, items[i]), l->resp_items, "%s", l->response->name);
		cr_assert_eq(kp_field_index(sub(l->response, l->resp_items), key[i]), l->resp_key, "%s",
		             l->response->name);
		cr_assert_eq(kp_field_index(l->response, "ThrottleTimeMs"), l->throttle_time_ms);
	}
	cr_assert_null(kp_keysplit_layout(9, 7), "OffsetFetch v0-7 names one group: routed whole");
	cr_assert_eq(kp_keysplit_layout(9, 8), &kp_keysplit_offset_fetch);
	cr_assert_eq(kp_keysplit_layout(65, 0)->key_type, KP_COORD_TRANSACTION);
	cr_assert_null(kp_keysplit_layout(11, 5), "JoinGroup names one group");
}

/* ---- split and merge ------------------------------------------------------ */

Test(keysplit, describe_groups_is_cut_by_key_and_answered_in_the_clients_order)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	const struct kp_keysplit_layout *l = &kp_keysplit_describe_groups;
	struct kp_struct *req = body_of(&a, l->request, 15, 5, "04 03 6731 03 6732 03 6733 01 00");
	cr_assert_eq(kp_keysplit_count(l, req), 3);
	cr_assert(span_is(kp_keysplit_key(l, req, 1), "g2"));
	int32_t dest[] = {0, 1, 0};
	struct kp_struct *out[3];
	cr_assert(kp_keysplit_request(&a, l, req, 5, dest, 3, 3, out));
	encodes_to(out[0], 15, 5, "03 03 6731 03 6733 01 00"); /* g1, g3; IncludeAuthorizedOperations kept */
	encodes_to(out[1], 15, 5, "02 03 6732 01 00");
	cr_assert_null(out[2]);
	encodes_to(req, 15, 5, "04 03 6731 03 6732 03 6733 01 00"); /* the client's request untouched */
	int32_t bad[] = {0, 3, 0};
	cr_assert_not(kp_keysplit_request(&a, l, req, 5, bad, 3, 3, out), "a destination out of range");
	cr_assert_not(kp_keysplit_request(&a, l, req, 5, dest, 2, 3, out), "a wrong count");

	/* Destination 0 answers g3 then g1 (any order), throttled 5 ms; destination 1 failed. */
	struct kp_struct *ans[3] = {body_of(&a, l->response, 15, 5,
	                                    "00000005 03 0000 03 6733 06 456d707479 01 01 01 80000000 00"
	                                    "0000 03 6731 07 537461626c65 09 636f6e73756d6572 01 01 80000000 00 00"),
	                            NULL, NULL};
	struct kp_struct *m = kp_keysplit_merge(&a, l, req, 5, dest, ans, 3, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	cr_assert(m);
	encodes_to(m, 15, 5,
	           "00000005 04"
	           "0000 03 6731 07 537461626c65 09 636f6e73756d6572 01 01 80000000 00" /* g1 */
	           "000f 03 6732 01 01 01 01 80000000 00"                               /* g2: 15, nothing else */
	           "0000 03 6733 06 456d707479 01 01 01 80000000 00"                    /* g3 */
	           "00");
	kp_arena_free(&a);
}

Test(keysplit, a_key_named_twice_takes_one_answer_each_and_a_missing_one_is_an_error)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	const struct kp_keysplit_layout *l = &kp_keysplit_delete_groups;
	struct kp_struct *req = body_of(&a, l->request, 42, 2, "04 02 67 02 67 02 68 00");
	int32_t dest[] = {0, 0, -1}; /* h goes nowhere */
	struct kp_struct *out[1];
	cr_assert(kp_keysplit_request(&a, l, req, 2, dest, 3, 1, out));
	encodes_to(out[0], 42, 2, "03 02 67 02 67 00");
	struct kp_struct *ans[1] = {body_of(&a, l->response, 42, 2, "00000000 03 02 67 0000 00 02 67 0010 00 00")};
	struct kp_struct *m = kp_keysplit_merge(&a, l, req, 2, dest, ans, 1, KP_ERR_NOT_COORDINATOR);
	encodes_to(m, 42, 2, "00000000 04 02 67 0000 00 02 67 0010 00 02 68 0010 00 00");
	/* The answer lacks a key it was sent: that key is answered with the error. */
	ans[0] = body_of(&a, l->response, 42, 2, "00000000 02 02 67 0000 00 00");
	m = kp_keysplit_merge(&a, l, req, 2, dest, ans, 1, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	encodes_to(m, 42, 2, "00000000 04 02 67 0000 00 02 67 000f 00 02 68 000f 00 00");
	/* An answer of another message is refused. */
	ans[0] = body_of(&a, &kp_describe_groups_response, 15, 5, "00000000 01 00");
	cr_assert_null(kp_keysplit_merge(&a, l, req, 2, dest, ans, 1, 15));
	kp_arena_free(&a);
}

Test(keysplit, offset_fetch_v8_groups_go_to_their_coordinators_with_their_topics)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	const struct kp_keysplit_layout *l = &kp_keysplit_offset_fetch;
	/* a: all topics; b: t/0; RequireStable true. */
	struct kp_struct *req = body_of(&a, l->request, 9, 8, "03 02 61 00 00 02 62 02 02 74 02 00000000 00 00 01 00");
	cr_assert(span_is(kp_keysplit_key(l, req, 1), "b"));
	int32_t dest[] = {1, 0};
	struct kp_struct *out[2];
	cr_assert(kp_keysplit_request(&a, l, req, 8, dest, 2, 2, out));
	encodes_to(out[0], 9, 8, "02 02 62 02 02 74 02 00000000 00 00 01 00");
	encodes_to(out[1], 9, 8, "02 02 61 00 00 01 00");
	struct kp_struct *ans[2] = {
	    body_of(&a, l->response, 9, 8,
	            "00000000 02 02 62 02 02 74 02 00000000 000000000000002a ffffffff 01 0000 00 00 0000 00 00"),
	    body_of(&a, l->response, 9, 8, "00000007 02 02 61 01 0010 00 00"), /* a: NOT_COORDINATOR */
	};
	struct kp_struct *m = kp_keysplit_merge(&a, l, req, 8, dest, ans, 2, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	encodes_to(m, 9, 8,
	           "00000007 03 02 61 01 0010 00"
	           "02 62 02 02 74 02 00000000 000000000000002a ffffffff 01 0000 00 00 0000 00 00");
	kp_arena_free(&a);
}

/* ---- listings -------------------------------------------------------------- */

static bool not_h(struct kp_span key, void *ctx)
{
	(*(int *)ctx)++;
	return !span_is(key, "h");
}

Test(keysplit, a_listing_gathers_what_every_broker_answered_that_the_caller_keeps)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	const struct kp_keysplit_layout *l = &kp_keysplit_list_groups;
	cr_assert_lt(kp_keysplit_count(l, body_of(&a, l->request, 16, 4, "01 00")), 0, "a listing names no key");
	struct kp_struct *ans[3] = {
	    body_of(&a, l->response, 16, 4,
	            "00000002 0000 03 02 67 09 636f6e73756d6572 07 537461626c65 00"
	            "02 68 01 06 456d707479 00 00"),
	    body_of(&a, l->response, 16, 4, "00000009 0000 02 02 6b 01 06 456d707479 00 00"),
	    NULL,
	};
	int asked = 0;
	struct kp_struct *m = kp_keysplit_gather(&a, l, 4, ans, 3, not_h, &asked, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	cr_assert_eq(asked, 3);
	/* g and k; ThrottleTimeMs the largest; a broker did not answer: retriable error */
	encodes_to(m, 16, 4,
	           "00000009 000f 03 02 67 09 636f6e73756d6572 07 537461626c65 00 02 6b 01 06 456d707479 00 00");
	m = kp_keysplit_gather(&a, l, 4, ans, 2, NULL, NULL, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	encodes_to(m, 16, 4,
	           "00000009 0000 04 02 67 09 636f6e73756d6572 07 537461626c65 00 02 68 01 06 456d707479 00"
	           "02 6b 01 06 456d707479 00 00");
	/* A broker's own error is the answer's, before the missing one. */
	ans[1] = body_of(&a, l->response, 16, 4, "00000000 000e 01 00"); /* COORDINATOR_LOAD_IN_PROGRESS */
	m = kp_keysplit_gather(&a, l, 4, ans, 3, NULL, NULL, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	cr_assert_eq(m->v[l->error_code].i, 14);
	/* Nobody answered: an empty list and the error. */
	struct kp_struct *none[2] = {NULL, NULL};
	m = kp_keysplit_gather(&a, &kp_keysplit_list_transactions, 1, none, 2, NULL, NULL, 15);
	encodes_to(m, 66, 1, "00000000 000f 01 01 00");
	cr_assert_null(kp_keysplit_gather(&a, &kp_keysplit_describe_groups, 5, ans, 2, NULL, NULL, 15),
	               "DescribeGroups is split, not gathered");
	kp_arena_free(&a);
}
