/*
 * Produce: hand-checked vectors, written from Kafka's definitions, on each
 * side of the flexible boundary (v8 | v9), the tagged CurrentLeader and
 * NodeEndpoints of v10 responses (KIP-951), and topic ids (v13). Record data
 * is opaque to the codec; the vectors carry a few marker bytes in its place,
 * and it must leave the codec by reference, never copied.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

Test(produce, field_indexes_match_the_tables)
{
	const struct kp_schema *req = &kp_produce_request, *resp = &kp_produce_response;
	const struct kp_schema *topic = sub(req, KP_PRODUCE_REQ_TOPIC_DATA);
	const struct kp_schema *part = sub(topic, KP_PRODUCE_TOPIC_PARTITION_DATA);
	const struct kp_schema *rtopic = sub(resp, KP_PRODUCE_RESP_RESPONSES);
	const struct kp_schema *rpart = sub(rtopic, KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES);
	const struct kp_schema *leader = sub(rpart, KP_PRODUCE_RESP_PART_CURRENT_LEADER);
	const struct kp_schema *endpoint = sub(resp, KP_PRODUCE_RESP_NODE_ENDPOINTS);

	cr_assert_eq(kp_field_index(req, "TransactionalId"), KP_PRODUCE_REQ_TRANSACTIONAL_ID);
	cr_assert_eq(kp_field_index(req, "Acks"), KP_PRODUCE_REQ_ACKS);
	cr_assert_eq(kp_field_index(req, "TopicData"), KP_PRODUCE_REQ_TOPIC_DATA);
	cr_assert_eq(kp_field_index(topic, "Name"), KP_PRODUCE_TOPIC_NAME);
	cr_assert_eq(kp_field_index(topic, "TopicId"), KP_PRODUCE_TOPIC_TOPIC_ID);
	cr_assert_eq(kp_field_index(topic, "PartitionData"), KP_PRODUCE_TOPIC_PARTITION_DATA);
	cr_assert_eq(kp_field_index(part, "Index"), KP_PRODUCE_PART_INDEX);
	cr_assert_eq(kp_field_index(part, "Records"), KP_PRODUCE_PART_RECORDS);

	cr_assert_eq(kp_field_index(resp, "Responses"), KP_PRODUCE_RESP_RESPONSES);
	cr_assert_eq(kp_field_index(resp, "ThrottleTimeMs"), KP_PRODUCE_RESP_THROTTLE_TIME_MS);
	cr_assert_eq(kp_field_index(rtopic, "Name"), KP_PRODUCE_TOPIC_NAME);
	cr_assert_eq(kp_field_index(rtopic, "TopicId"), KP_PRODUCE_TOPIC_TOPIC_ID);
	cr_assert_eq(kp_field_index(resp, "NodeEndpoints"), KP_PRODUCE_RESP_NODE_ENDPOINTS);
	cr_assert_eq(kp_field_index(rtopic, "PartitionResponses"), KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES);
	cr_assert_eq(kp_field_index(rpart, "Index"), KP_PRODUCE_RESP_PART_INDEX);
	cr_assert_eq(kp_field_index(rpart, "ErrorCode"), KP_PRODUCE_RESP_PART_ERROR_CODE);
	cr_assert_eq(kp_field_index(rpart, "CurrentLeader"), KP_PRODUCE_RESP_PART_CURRENT_LEADER);
	cr_assert_eq(kp_field_index(leader, "LeaderId"), KP_PRODUCE_LEADER_ID);
	cr_assert_eq(kp_field_index(leader, "LeaderEpoch"), KP_PRODUCE_LEADER_EPOCH);
	cr_assert_eq(kp_field_index(endpoint, "NodeId"), KP_PRODUCE_ENDPOINT_NODE_ID);
	cr_assert_eq(kp_field_index(endpoint, "Host"), KP_PRODUCE_ENDPOINT_HOST);
	cr_assert_eq(kp_field_index(endpoint, "Port"), KP_PRODUCE_ENDPOINT_PORT);
	cr_assert_eq(kp_field_index(endpoint, "Rack"), KP_PRODUCE_ENDPOINT_RACK);
}

Test(produce, every_version_is_decoded_and_flexible_from_9)
{
	const struct kp_api *api = kp_api_get(KP_API_PRODUCE);
	for (int16_t v = 0; v <= 13; v++) {
		cr_assert(kp_api_decodes(api, v, true), "v%d request", v);
		cr_assert(kp_api_decodes(api, v, false), "v%d response", v);
		cr_assert_eq(kp_api_flexible(api, v), v >= 9, "v%d", v);
	}
	cr_assert_not(kp_api_decodes(api, 14, true));
}

/* ---- requests ------------------------------------------------------------ */

/* v3: TransactionalId is new (null: not transactional); record batches v2. */
static const char produce_v3_request[] = "0000 0003 00000001 0004 6b636174"   /* header v1, client "kcat" */
                                         "ffff"                               /* TransactionalId null */
                                         "ffff"                               /* Acks -1: all */
                                         "00007530"                           /* TimeoutMs 30000 */
                                         "00000001 0001 74"                   /* TopicData: 1, "t" */
                                         "00000001 00000000"                  /* PartitionData: 1, Index 0 */
                                         "0000000c 000000000000000000000030"; /* Records: 12 bytes */

Test(produce, v3_request)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v3_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_PRODUCE, 3, buf, n);
	cr_assert_eq(m.api_key, KP_API_PRODUCE);
	cr_assert(m.body->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].present);
	cr_assert_eq(m.body->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].s.len, -1);
	cr_assert_eq(m.body->v[KP_PRODUCE_REQ_ACKS].i, -1);
	cr_assert_eq(m.body->v[kp_field_index(&kp_produce_request, "TimeoutMs")].i, 30000);
	struct kp_struct *t = item(&m.body->v[KP_PRODUCE_REQ_TOPIC_DATA], 0);
	cr_assert(span_is(t->v[KP_PRODUCE_TOPIC_NAME].s, "t"));
	cr_assert_not(t->v[KP_PRODUCE_TOPIC_TOPIC_ID].present);
	struct kp_struct *p = item(&t->v[KP_PRODUCE_TOPIC_PARTITION_DATA], 0);
	cr_assert_eq(p->v[KP_PRODUCE_PART_RECORDS].s.len, 12);
	cr_assert_eq(p->v[KP_PRODUCE_PART_RECORDS].s.ptr, buf + n - 12);
	kp_arena_free(&a);
}

Test(produce, v2_request_has_no_transactional_id)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0000 0002 00000001 0004 6b636174 0001 000003e8 00000001 0001 74 00000001 00000000 ffffffff",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_PRODUCE, 2, buf, n);
	cr_assert_not(m.body->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].present);
	cr_assert_eq(m.body->v[KP_PRODUCE_REQ_ACKS].i, 1);
	kp_arena_free(&a);
}

/* v8: a transactional request; a partition with null records. */
static const char produce_v8_request[] = "0000 0008 00000002 0004 6b636174"
                                         "0002 7478"                                  /* TransactionalId "tx" */
                                         "0001 00007530"                              /* Acks 1 */
                                         "00000001 0001 74 00000002"                  /* "t": 2 partitions */
                                         "00000000 0000000c 000000000000000000000030" /* 0: 12 bytes */
                                         "00000001 ffffffff";                         /* 1: null records */

Test(produce, v8_request_is_transactional)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v8_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_PRODUCE, 8, buf, n);
	cr_assert_not(m.flexible);
	cr_assert(span_is(m.body->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].s, "tx"));
	struct kp_struct *t = item(&m.body->v[KP_PRODUCE_REQ_TOPIC_DATA], 0);
	struct kp_struct *p1 = item(&t->v[KP_PRODUCE_TOPIC_PARTITION_DATA], 1);
	cr_assert_eq(p1->v[KP_PRODUCE_PART_INDEX].i, 1);
	cr_assert_eq(p1->v[KP_PRODUCE_PART_RECORDS].s.len, -1);
	kp_arena_free(&a);
}

/* v9: compact encodings and tag sections at every level. */
static const char produce_v9_request[] = "0000 0009 00000003 0004 6b636174 00" /* header v2 */
                                         "00"                                  /* TransactionalId null */
                                         "ffff 00007530"
                                         "02 02 74"                       /* TopicData: 1, "t" */
                                         "02 00000000"                    /* PartitionData: 1, Index 0 */
                                         "0d 000000000000000000000030 00" /* Records: 12 bytes */
                                         "00"                             /* topic: no tags */
                                         "00";                            /* no tags */

Test(produce, v9_request_is_flexible)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v9_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_PRODUCE, 9, buf, n);
	cr_assert(m.flexible);
	cr_assert_eq(m.req.header_version, 2);
	cr_assert_eq(m.body->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].s.len, -1);
	struct kp_struct *t = item(&m.body->v[KP_PRODUCE_REQ_TOPIC_DATA], 0);
	cr_assert(span_is(t->v[KP_PRODUCE_TOPIC_NAME].s, "t"));
	struct kp_struct *p = item(&t->v[KP_PRODUCE_TOPIC_PARTITION_DATA], 0);
	cr_assert_eq(p->v[KP_PRODUCE_PART_RECORDS].s.ptr, buf + 31);
	cr_assert_eq(p->v[KP_PRODUCE_PART_RECORDS].s.len, 12);
	kp_arena_free(&a);
}

Test(produce, v13_request_names_topics_by_id)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0000 000d 00000004 0004 6b636174 00"
	                 "00 ffff 00007530"
	                 "02 00112233445566778899aabbccddeeff" /* TopicData: 1, TopicId */
	                 "02 00000000 0d 000000000000000000000030 00 00 00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_PRODUCE, 13, buf, n);
	struct kp_struct *t = item(&m.body->v[KP_PRODUCE_REQ_TOPIC_DATA], 0);
	cr_assert_not(t->v[KP_PRODUCE_TOPIC_NAME].present);
	cr_assert_eq(t->v[KP_PRODUCE_TOPIC_TOPIC_ID].s.len, 16);
	cr_assert_eq(t->v[KP_PRODUCE_TOPIC_TOPIC_ID].s.ptr[1], 0x11);
	kp_arena_free(&a);
}

/* ---- responses ----------------------------------------------------------- */

/* v8: RecordErrors and ErrorMessage (KIP-467). */
static const char produce_v8_response[] = "00000001"                      /* correlation_id */
                                          "00000001 0001 74"              /* Responses: "t" */
                                          "00000001 00000000 0057"        /* partition 0: INVALID_RECORD */
                                          "ffffffffffffffff"              /* BaseOffset -1 */
                                          "ffffffffffffffff"              /* LogAppendTimeMs -1 */
                                          "0000000000000000"              /* LogStartOffset 0 */
                                          "00000001 00000002 0003 626164" /* RecordErrors: batch 2 "bad" */
                                          "0003 626164"                   /* ErrorMessage "bad" */
                                          "00000000";                     /* ThrottleTimeMs */

Test(produce, v8_response_has_record_errors)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v8_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_PRODUCE, 8, buf, n);
	struct kp_struct *t = item(&m.body->v[KP_PRODUCE_RESP_RESPONSES], 0);
	struct kp_struct *p = item(&t->v[KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES], 0);
	cr_assert_eq(p->v[KP_PRODUCE_RESP_PART_ERROR_CODE].i, 87);
	const struct kp_value *errs = &p->v[kp_field_index(p->schema, "RecordErrors")];
	cr_assert_eq(errs->a.cnt, 1);
	cr_assert_eq(errs->a.items[0].st->v[0].i, 2);
	cr_assert(span_is(errs->a.items[0].st->v[1].s, "bad"));
	cr_assert(span_is(p->v[kp_field_index(p->schema, "ErrorMessage")].s, "bad"));
	cr_assert_not(m.body->v[KP_PRODUCE_RESP_NODE_ENDPOINTS].present);
	kp_arena_free(&a);
}

/* v9: the same fields, compact, with tag sections. */
static const char produce_v9_response[] = "00000002 00" /* header v1 */
                                          "02 02 74 02 00000000 0000"
                                          "0000000000000064 ffffffffffffffff 0000000000000000" /* BaseOffset 100 */
                                          "01 00 00"     /* RecordErrors: 0; ErrorMessage null; no tags */
                                          "00"           /* topic: no tags */
                                          "00000000 00"; /* ThrottleTimeMs; no tags */

Test(produce, v9_response_is_flexible)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v9_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_PRODUCE, 9, buf, n);
	cr_assert_eq(m.resp.header_version, 1);
	struct kp_struct *p =
	    item(&item(&m.body->v[KP_PRODUCE_RESP_RESPONSES], 0)->v[KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES], 0);
	cr_assert_eq(p->v[kp_field_index(p->schema, "BaseOffset")].i, 100);
	cr_assert_eq(p->v[kp_field_index(p->schema, "ErrorMessage")].s.len, -1);
	kp_arena_free(&a);
}

/* v10: a NOT_LEADER_OR_FOLLOWER with the new leader and its endpoint (KIP-951). */
static const char produce_v10_response[] = "00000003 00"
                                           "02 02 74 02 00000000 0006" /* NOT_LEADER_OR_FOLLOWER */
                                           "ffffffffffffffff ffffffffffffffff ffffffffffffffff"
                                           "01 00"
                                           "01 00 09 00000003 00000007 00" /* tag 0 CurrentLeader 3, epoch 7 */
                                           "00"
                                           "00000000"
                                           "01 00 19 02"                             /* tag 0 NodeEndpoints: 1 */
                                           "00000003 0a 3132372e302e302e31 00002384" /* 3 127.0.0.1:9092 */
                                           "05 61702d61 00";                         /* Rack "ap-a" */

Test(produce, v10_response_carries_current_leader_and_node_endpoints)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v10_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_PRODUCE, 10, buf, n);
	struct kp_struct *p =
	    item(&item(&m.body->v[KP_PRODUCE_RESP_RESPONSES], 0)->v[KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES], 0);
	cr_assert_eq(p->v[KP_PRODUCE_RESP_PART_ERROR_CODE].i, 6);
	const struct kp_value *leader = &p->v[KP_PRODUCE_RESP_PART_CURRENT_LEADER];
	cr_assert(leader->present);
	cr_assert_eq(leader->st->v[KP_PRODUCE_LEADER_ID].i, 3);
	cr_assert_eq(leader->st->v[KP_PRODUCE_LEADER_EPOCH].i, 7);
	const struct kp_value *eps = &m.body->v[KP_PRODUCE_RESP_NODE_ENDPOINTS];
	cr_assert(eps->present);
	cr_assert_eq(eps->a.cnt, 1);
	struct kp_struct *ep = item(eps, 0);
	cr_assert_eq(ep->v[KP_PRODUCE_ENDPOINT_NODE_ID].i, 3);
	cr_assert(span_is(ep->v[KP_PRODUCE_ENDPOINT_HOST].s, "127.0.0.1"));
	cr_assert_eq(ep->v[KP_PRODUCE_ENDPOINT_PORT].i, 9092);
	cr_assert(span_is(ep->v[KP_PRODUCE_ENDPOINT_RACK].s, "ap-a"));
	kp_arena_free(&a);
}

Test(produce, a_v10_tag_in_a_v9_response_is_kept_as_unknown)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(produce_v10_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_PRODUCE, 9, buf, n);
	cr_assert_not(m.body->v[KP_PRODUCE_RESP_NODE_ENDPOINTS].present);
	cr_assert_eq(m.body->unknown_cnt, 1);
	cr_assert_eq(m.body->unknown[0].tag, 0);
	kp_arena_free(&a);
}

/* ---- malformed input ----------------------------------------------------- */

Test(produce, every_malformation_of_the_vectors_fails_cleanly, .timeout = 120)
{
	const struct {
		const char *hex;
		bool request;
		int16_t version;
	} cases[] = {
	    {produce_v3_request, true, 3},     {produce_v9_request, true, 9}, {produce_v8_response, false, 8},
	    {produce_v10_response, false, 10}, {produce_v8_request, true, 8},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = unhex(cases[i].hex, buf, sizeof(buf));
		check_malformations(cases[i].request, KP_API_PRODUCE, cases[i].version, buf, n);
	}
}

Test(produce, a_records_length_past_the_frame_is_malformed)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	size_t n = unhex("0000 0003 00000001 0004 6b636174 ffff ffff 00007530 00000001 0001 74 00000001 00000000"
	                 "0000000d 000000000000000000000030",
	                 buf, sizeof(buf));
	kp_cursor_init(&c, buf, n);
	cr_assert_not(kp_message_decode(&a, &c, true, -1, -1, &m));
	cr_assert(c.err == KP_ERR_BAD_LENGTH || c.err == KP_ERR_TRUNCATED, "%s", kp_error_name(c.err));
	cr_assert_str_eq(c.err_field, "Records");
	kp_arena_free(&a);
}

/* ---- records by reference ------------------------------------------------ */

Test(produce, the_records_of_a_request_are_re_encoded_by_reference)
{
	const struct {
		const char *hex;
		int16_t version;
	} cases[] = {{produce_v3_request, 3}, {produce_v9_request, 9}};
	for (size_t i = 0; i < 2; i++) {
		struct kp_arena a;
		struct kp_writer w;
		kp_arena_init(&a, 0);
		size_t n = unhex(cases[i].hex, buf, sizeof(buf));
		struct kp_message m = check_roundtrip(&a, true, KP_API_PRODUCE, cases[i].version, buf, n);
		struct kp_struct *p =
		    item(&item(&m.body->v[KP_PRODUCE_REQ_TOPIC_DATA], 0)->v[KP_PRODUCE_TOPIC_PARTITION_DATA], 0);
		struct kp_span records = p->v[KP_PRODUCE_PART_RECORDS].s;
		kp_writer_init(&w);
		kp_message_encode(&w, &m);
		kp_writer_finish(&w);
		bool found = false;
		for (size_t s = 0; s < w.nsegs; s++)
			if (w.segs[s].ref == records.ptr && w.segs[s].len == (size_t)records.len)
				found = true;
		cr_assert(found, "v%d: the record bytes were copied, not referenced", cases[i].version);
		cr_assert(records.ptr >= buf && records.ptr + records.len <= buf + n);
		cr_assert_eq(kp_writer_size(&w), n);
		kp_writer_free(&w);
		kp_arena_free(&a);
	}
}
