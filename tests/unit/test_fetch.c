/*
 * Fetch: hand-checked vectors, written from Kafka's definitions, on each
 * side of the flexible boundary (v11 | v12) and at each version that moved a
 * field routing depends on: RackId (v11), topic ids (v13), ReplicaState
 * (v15), PreferredReadReplica (v11), NodeEndpoints (v16). Record data is
 * opaque to the codec; the vectors carry a few marker bytes in its place.
 * Then the rewrites kstretch makes: a new RackId, and a redirect to a
 * preferred read replica that keeps every other partition's records by
 * reference.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

/* ---- field indexes ------------------------------------------------------ */

Test(fetch, field_indexes_match_the_tables)
{
	const struct kp_schema *req = &kp_fetch_request, *resp = &kp_fetch_response;
	const struct kp_schema *state = sub(req, KP_FETCH_REQ_REPLICA_STATE);
	const struct kp_schema *topic = sub(req, KP_FETCH_REQ_TOPICS);
	const struct kp_schema *part = sub(topic, KP_FETCH_TOPIC_PARTITIONS);
	const struct kp_schema *rtopic = sub(resp, KP_FETCH_RESP_RESPONSES);
	const struct kp_schema *rpart = sub(rtopic, KP_FETCH_RESP_TOPIC_PARTITIONS);
	const struct kp_schema *leader = sub(rpart, KP_FETCH_RESP_PART_CURRENT_LEADER);
	const struct kp_schema *endpoint = sub(resp, KP_FETCH_RESP_NODE_ENDPOINTS);

	cr_assert_eq(kp_field_index(req, "ReplicaId"), KP_FETCH_REQ_REPLICA_ID);
	cr_assert_eq(kp_field_index(req, "ReplicaState"), KP_FETCH_REQ_REPLICA_STATE);
	cr_assert_eq(kp_field_index(req, "MaxWaitMs"), KP_FETCH_REQ_MAX_WAIT_MS);
	cr_assert_eq(kp_field_index(req, "MaxBytes"), KP_FETCH_REQ_MAX_BYTES);
	cr_assert_eq(kp_field_index(req, "SessionId"), KP_FETCH_REQ_SESSION_ID);
	cr_assert_eq(kp_field_index(req, "SessionEpoch"), KP_FETCH_REQ_SESSION_EPOCH);
	cr_assert_eq(kp_field_index(req, "Topics"), KP_FETCH_REQ_TOPICS);
	cr_assert_eq(kp_field_index(req, "ForgottenTopicsData"), KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA);
	cr_assert_eq(kp_field_index(req, "RackId"), KP_FETCH_REQ_RACK_ID);
	cr_assert_eq(kp_field_index(state, "ReplicaId"), KP_FETCH_REPLICA_STATE_REPLICA_ID);
	cr_assert_eq(kp_field_index(topic, "Topic"), KP_FETCH_TOPIC_TOPIC);
	cr_assert_eq(kp_field_index(topic, "TopicId"), KP_FETCH_TOPIC_TOPIC_ID);
	cr_assert_eq(kp_field_index(topic, "Partitions"), KP_FETCH_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(part, "Partition"), KP_FETCH_PART_PARTITION);

	cr_assert_eq(kp_field_index(resp, "ThrottleTimeMs"), KP_FETCH_RESP_THROTTLE_TIME_MS);
	cr_assert_eq(kp_field_index(resp, "ErrorCode"), KP_FETCH_RESP_ERROR_CODE);
	cr_assert_eq(kp_field_index(resp, "SessionId"), KP_FETCH_RESP_SESSION_ID);
	cr_assert_eq(kp_field_index(resp, "Responses"), KP_FETCH_RESP_RESPONSES);
	cr_assert_eq(kp_field_index(rtopic, "Topic"), KP_FETCH_TOPIC_TOPIC);
	cr_assert_eq(kp_field_index(rtopic, "TopicId"), KP_FETCH_TOPIC_TOPIC_ID);
	cr_assert_eq(kp_field_index(resp, "NodeEndpoints"), KP_FETCH_RESP_NODE_ENDPOINTS);
	cr_assert_eq(kp_field_index(rtopic, "Partitions"), KP_FETCH_RESP_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(rpart, "PartitionIndex"), KP_FETCH_RESP_PART_PARTITION_INDEX);
	cr_assert_eq(kp_field_index(rpart, "ErrorCode"), KP_FETCH_RESP_PART_ERROR_CODE);
	cr_assert_eq(kp_field_index(rpart, "HighWatermark"), KP_FETCH_RESP_PART_HIGH_WATERMARK);
	cr_assert_eq(kp_field_index(rpart, "AbortedTransactions"), KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS);
	cr_assert_eq(kp_field_index(rpart, "CurrentLeader"), KP_FETCH_RESP_PART_CURRENT_LEADER);
	cr_assert_eq(kp_field_index(rpart, "PreferredReadReplica"), KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA);
	cr_assert_eq(kp_field_index(rpart, "Records"), KP_FETCH_RESP_PART_RECORDS);
	cr_assert_eq(kp_field_index(leader, "LeaderId"), KP_FETCH_LEADER_ID);
	cr_assert_eq(kp_field_index(leader, "LeaderEpoch"), KP_FETCH_LEADER_EPOCH);
	cr_assert_eq(kp_field_index(endpoint, "NodeId"), KP_FETCH_ENDPOINT_NODE_ID);
	cr_assert_eq(kp_field_index(endpoint, "Host"), KP_FETCH_ENDPOINT_HOST);
	cr_assert_eq(kp_field_index(endpoint, "Port"), KP_FETCH_ENDPOINT_PORT);
	cr_assert_eq(kp_field_index(endpoint, "Rack"), KP_FETCH_ENDPOINT_RACK);
}

Test(fetch, every_version_is_decoded_and_flexible_from_12)
{
	const struct kp_api *api = kp_api_get(KP_API_FETCH);
	for (int16_t v = 0; v <= 18; v++) {
		cr_assert(kp_api_decodes(api, v, true), "v%d request", v);
		cr_assert(kp_api_decodes(api, v, false), "v%d response", v);
		cr_assert_eq(kp_api_flexible(api, v), v >= 12, "v%d", v);
	}
	cr_assert_not(kp_api_decodes(api, 19, true));
}

/* ---- requests ------------------------------------------------------------ */

/* v4: IsolationLevel is new; no LogStartOffset (v5), no sessions (v7). */
static const char fetch_v4_request[] = "0001 0004 00000001 0004 6b636174" /* header v1, client "kcat" */
                                       "ffffffff"                         /* ReplicaId -1: a consumer */
                                       "000001f4"                         /* MaxWaitMs 500 */
                                       "00000001"                         /* MinBytes */
                                       "03200000"                         /* MaxBytes 50 MiB */
                                       "00"                               /* IsolationLevel */
                                       "00000001 0001 74"                 /* Topics: 1, "t" */
                                       "00000001"                         /* Partitions: 1 */
                                       "00000000"                         /* Partition */
                                       "0000000000000005"                 /* FetchOffset */
                                       "00100000";                        /* PartitionMaxBytes */

Test(fetch, v4_request)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v4_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 4, buf, n);
	cr_assert_eq(m.api_key, KP_API_FETCH);
	cr_assert_eq(m.api_version, 4);
	cr_assert_eq(m.body->v[KP_FETCH_REQ_REPLICA_ID].i, -1);
	cr_assert_eq(m.body->v[kp_field_index(&kp_fetch_request, "MaxBytes")].i, 50 << 20);
	cr_assert_not(m.body->v[KP_FETCH_REQ_RACK_ID].present);
	struct kp_struct *t = item(&m.body->v[KP_FETCH_REQ_TOPICS], 0);
	cr_assert(span_is(t->v[KP_FETCH_TOPIC_TOPIC].s, "t"));
	struct kp_struct *p = item(&t->v[KP_FETCH_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[kp_field_index(p->schema, "FetchOffset")].i, 5);
	cr_assert_eq(p->v[kp_field_index(p->schema, "PartitionMaxBytes")].i, 1 << 20);
	kp_arena_free(&a);
}

/* v11: the last version before flexible encodings, and the first with RackId. */
static const char fetch_v11_request[] = "0001 000b 00000002 0004 6b636174"
                                        "ffffffff 000001f4 00000001 03200000"
                                        "01"                                 /* READ_COMMITTED */
                                        "00000000 ffffffff"                  /* SessionId 0, epoch -1 */
                                        "00000001 0001 74"                   /* Topics: "t" */
                                        "00000002"                           /* Partitions: 2 */
                                        "00000000 00000003 0000000000000005" /* 0, epoch 3, offset 5 */
                                        "ffffffffffffffff 00100000"          /* LogStartOffset -1 */
                                        "00000001 00000003 000000000000000a" /* 1, epoch 3, offset 10 */
                                        "ffffffffffffffff 00100000"
                                        "00000000"       /* ForgottenTopicsData: 0 */
                                        "0004 65752d61"; /* RackId "eu-a" */

Test(fetch, v11_request_carries_the_rack)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v11_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 11, buf, n);
	cr_assert_not(m.flexible);
	cr_assert(span_is(m.body->v[KP_FETCH_REQ_RACK_ID].s, "eu-a"));
	cr_assert_eq(m.body->v[KP_FETCH_REQ_SESSION_EPOCH].i, -1);
	cr_assert_eq(m.body->v[kp_field_index(&kp_fetch_request, "IsolationLevel")].i, 1);
	struct kp_struct *t = item(&m.body->v[KP_FETCH_REQ_TOPICS], 0);
	cr_assert_eq(t->v[KP_FETCH_TOPIC_PARTITIONS].a.cnt, 2);
	struct kp_struct *p1 = item(&t->v[KP_FETCH_TOPIC_PARTITIONS], 1);
	cr_assert_eq(p1->v[KP_FETCH_PART_PARTITION].i, 1);
	cr_assert_eq(p1->v[kp_field_index(p1->schema, "CurrentLeaderEpoch")].i, 3);
	kp_arena_free(&a);
}

/* v12: compact encodings, LastFetchedEpoch, and the tagged ClusterId. */
static const char fetch_v12_request[] = "0001 000c 00000003 0004 6b636174 00" /* header v2 */
                                        "ffffffff 000001f4 00000001 03200000 00 00000000 ffffffff"
                                        "02 02 74"                     /* Topics: 1, "t" (compact) */
                                        "02 00000000 00000003"         /* Partitions: 1; 0, epoch 3 */
                                        "0000000000000005 00000002"    /* FetchOffset 5, LastFetchedEpoch 2 */
                                        "ffffffffffffffff 00100000 00" /* LogStartOffset, max, no tags */
                                        "00"                           /* topic: no tags */
                                        "01"                           /* ForgottenTopicsData: 0 */
                                        "05 65752d61"                  /* RackId "eu-a" */
                                        "01 00 03 03 6331";            /* tag 0 ClusterId "c1" */

Test(fetch, v12_request_is_flexible_with_a_tagged_cluster_id)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v12_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 12, buf, n);
	cr_assert(m.flexible);
	cr_assert_eq(m.req.header_version, 2);
	const struct kp_value *cluster = &m.body->v[kp_field_index(&kp_fetch_request, "ClusterId")];
	cr_assert(cluster->present);
	cr_assert(span_is(cluster->s, "c1"));
	cr_assert(span_is(m.body->v[KP_FETCH_REQ_RACK_ID].s, "eu-a"));
	struct kp_struct *p = item(&item(&m.body->v[KP_FETCH_REQ_TOPICS], 0)->v[KP_FETCH_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[kp_field_index(p->schema, "LastFetchedEpoch")].i, 2);
	kp_arena_free(&a);
}

Test(fetch, v12_request_without_cluster_id_reads_null)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0001 000c 00000003 0004 6b636174 00"
	                 "ffffffff 000001f4 00000001 03200000 00 00000000 ffffffff"
	                 "01 01 01 00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 12, buf, n);
	const struct kp_value *cluster = &m.body->v[kp_field_index(&kp_fetch_request, "ClusterId")];
	cr_assert_not(cluster->present);
	cr_assert_eq(cluster->s.len, -1);
	cr_assert_eq(m.body->v[KP_FETCH_REQ_RACK_ID].s.len, 0);
	kp_arena_free(&a);
}

/* v13: topic ids replace names, in Topics and ForgottenTopicsData. */
static const char fetch_v13_request[] = "0001 000d 00000004 0004 6b636174 00"
                                        "ffffffff 000001f4 00000001 03200000 00"
                                        "0000002a 00000001"                        /* session 42, epoch 1 */
                                        "02 00112233445566778899aabbccddeeff"      /* Topics: 1, TopicId */
                                        "02 00000000 00000003 0000000000000005"    /* partition 0 */
                                        "00000002 ffffffffffffffff 00100000 00 00" /* ... no tags */
                                        "02 ffeeddccbbaa99887766554433221100"      /* Forgotten: 1, TopicId */
                                        "03 00000001 00000002 00"                  /* Partitions [1, 2] */
                                        "01"                                       /* RackId "" */
                                        "00";

Test(fetch, v13_request_names_topics_by_id)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v13_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 13, buf, n);
	struct kp_struct *t = item(&m.body->v[KP_FETCH_REQ_TOPICS], 0);
	cr_assert_not(t->v[KP_FETCH_TOPIC_TOPIC].present);
	cr_assert_eq(t->v[KP_FETCH_TOPIC_TOPIC_ID].s.len, 16);
	cr_assert_eq(t->v[KP_FETCH_TOPIC_TOPIC_ID].s.ptr[15], 0xff);
	cr_assert_eq(m.body->v[KP_FETCH_REQ_SESSION_ID].i, 42);
	const struct kp_value *forgotten = &m.body->v[kp_field_index(&kp_fetch_request, "ForgottenTopicsData")];
	struct kp_struct *f = item(forgotten, 0);
	const struct kp_value *fparts = &f->v[kp_field_index(f->schema, "Partitions")];
	cr_assert_eq(fparts->a.cnt, 2);
	cr_assert_eq(fparts->a.items[1].i, 2);
	cr_assert_eq(m.body->v[KP_FETCH_REQ_RACK_ID].s.len, 0);
	kp_arena_free(&a);
}

/* v15: ReplicaId leaves the fixed fields for the tagged ReplicaState. */
static const char fetch_v15_request[] = "0001 000f 00000005 0004 6b636174 00"
                                        "000001f4 00000001 03200000 00 00000000 ffffffff" /* no ReplicaId */
                                        "02 00112233445566778899aabbccddeeff"
                                        "02 00000000 00000003 0000000000000005 00000002"
                                        "0000000000000000 00100000 00 00"
                                        "01 01"                                  /* no forgotten, "" */
                                        "01 01 0d 00000002 0000000000000007 00"; /* tag 1 ReplicaState */

Test(fetch, v15_request_moves_the_replica_id_into_replica_state)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v15_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 15, buf, n);
	cr_assert_not(m.body->v[KP_FETCH_REQ_REPLICA_ID].present);
	const struct kp_value *state = &m.body->v[KP_FETCH_REQ_REPLICA_STATE];
	cr_assert(state->present);
	cr_assert_eq(state->st->v[KP_FETCH_REPLICA_STATE_REPLICA_ID].i, 2);
	cr_assert_eq(state->st->v[kp_field_index(state->st->schema, "ReplicaEpoch")].i, 7);
	kp_arena_free(&a);
}

/* v17 adds the tagged ReplicaDirectoryId (0), v18 the tagged HighWatermark (1). */
Test(fetch, v18_request_partition_tags)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0001 0012 00000006 0004 6b636174 00"
	                 "000001f4 00000001 03200000 00 00000000 ffffffff"
	                 "02 00112233445566778899aabbccddeeff"
	                 "02 00000000 00000003 0000000000000005 00000002 0000000000000000 00100000"
	                 "02 00 10 0f0e0d0c0b0a09080706050403020100" /* tag 0 ReplicaDirectoryId */
	                 "01 08 0000000000000004"                    /* tag 1 HighWatermark 4 */
	                 "00 01 01"
	                 "01 01 0d 00000002 0000000000000007 00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 18, buf, n);
	struct kp_struct *p = item(&item(&m.body->v[KP_FETCH_REQ_TOPICS], 0)->v[KP_FETCH_TOPIC_PARTITIONS], 0);
	const struct kp_value *dir = &p->v[kp_field_index(p->schema, "ReplicaDirectoryId")];
	const struct kp_value *hw = &p->v[kp_field_index(p->schema, "HighWatermark")];
	cr_assert(dir->present && dir->s.len == 16 && dir->s.ptr[0] == 0x0f);
	cr_assert(hw->present && hw->i == 4);
	/* At v17 tag 1 is not HighWatermark yet: it is kept as an unknown tag. */
	buf[3] = 17; /* api_version */
	kp_arena_free(&a);
	kp_arena_init(&a, 0);
	m = check_roundtrip(&a, true, KP_API_FETCH, 17, buf, n);
	p = item(&item(&m.body->v[KP_FETCH_REQ_TOPICS], 0)->v[KP_FETCH_TOPIC_PARTITIONS], 0);
	cr_assert_not(p->v[kp_field_index(p->schema, "HighWatermark")].present);
	cr_assert_eq(p->unknown_cnt, 1);
	cr_assert_eq(p->unknown[0].tag, 1);
	kp_arena_free(&a);
}

/* ---- responses ----------------------------------------------------------- */

/* v4: transactions (LastStableOffset, AbortedTransactions); no LogStartOffset yet. */
static const char fetch_v4_response[] = "00000001"                                   /* correlation_id */
                                        "00000000"                                   /* ThrottleTimeMs */
                                        "00000001 0001 74"                           /* Responses: "t" */
                                        "00000001 00000000 0000"                     /* partition 0, no error */
                                        "000000000000000a 000000000000000a"          /* HighWatermark, LSO 10 */
                                        "00000001 0000000000000007 0000000000000003" /* one aborted txn */
                                        "0000000c 000000000000000300000020";         /* Records: 12 bytes */

Test(fetch, v4_response)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v4_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FETCH, 4, buf, n);
	cr_assert_eq(m.resp.correlation_id, 1);
	struct kp_struct *t = item(&m.body->v[KP_FETCH_RESP_RESPONSES], 0);
	cr_assert(span_is(t->v[kp_field_index(t->schema, "Topic")].s, "t"));
	struct kp_struct *p = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	cr_assert_not(p->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].present);
	const struct kp_value *aborted = &p->v[kp_field_index(p->schema, "AbortedTransactions")];
	cr_assert_eq(aborted->a.cnt, 1);
	cr_assert_eq(aborted->a.items[0].st->v[0].i, 7);
	cr_assert_eq(p->v[KP_FETCH_RESP_PART_RECORDS].s.len, 12);
	cr_assert_eq(p->v[KP_FETCH_RESP_PART_RECORDS].s.ptr, buf + n - 12);
	kp_arena_free(&a);
}

/* v11: PreferredReadReplica; two partitions with 8 and 6 bytes of records. */
static const char fetch_v11_response[] = "00000002 00000000 0000 00000000"   /* correlation, throttle, error, session */
                                         "00000001 0001 74 00000002"         /* "t": 2 partitions */
                                         "00000000 0000 0000000000000010"    /* p0, HighWatermark 16 */
                                         "0000000000000010 0000000000000000" /* LSO, LogStartOffset */
                                         "ffffffff ffffffff"                 /* no aborted; PRR -1 */
                                         "00000008 0102030405060708"         /* Records */
                                         "00000001 0000 0000000000000020"    /* p1 */
                                         "0000000000000020 0000000000000000"
                                         "ffffffff ffffffff"
                                         "00000006 aabbccddeeff";

Test(fetch, v11_response_has_preferred_read_replica)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v11_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FETCH, 11, buf, n);
	struct kp_struct *t = item(&m.body->v[KP_FETCH_RESP_RESPONSES], 0);
	cr_assert_eq(t->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.cnt, 2);
	struct kp_struct *p0 = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	struct kp_struct *p1 = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 1);
	cr_assert(p0->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].present);
	cr_assert_eq(p0->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i, -1);
	cr_assert_eq(p0->v[kp_field_index(p0->schema, "AbortedTransactions")].a.cnt, -1);
	cr_assert_eq(p1->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i, 1);
	cr_assert_eq(p1->v[KP_FETCH_RESP_PART_RECORDS].s.len, 6);
	kp_arena_free(&a);
}

/* v12: flexible; partition tags 0 DivergingEpoch and 1 CurrentLeader. */
static const char fetch_v12_response[] = "00000003 00" /* header v1 */
                                         "00000000 0000 00000000"
                                         "02 02 74 02" /* "t": 1 partition */
                                         "00000000 0000 0000000000000010 0000000000000010 0000000000000000"
                                         "00 ffffffff"                           /* aborted null; PRR */
                                         "09 0102030405060708"                   /* Records: 8 bytes */
                                         "02 00 0d 00000004 0000000000000009 00" /* DivergingEpoch 4@9 */
                                         "01 09 00000002 00000005 00"            /* CurrentLeader 2, 5 */
                                         "00 00";

Test(fetch, v12_response_is_flexible_with_tagged_partition_fields)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v12_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FETCH, 12, buf, n);
	cr_assert_eq(m.resp.header_version, 1);
	struct kp_struct *p = item(&item(&m.body->v[KP_FETCH_RESP_RESPONSES], 0)->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	const struct kp_value *leader = &p->v[KP_FETCH_RESP_PART_CURRENT_LEADER];
	cr_assert(leader->present);
	cr_assert_eq(leader->st->v[KP_FETCH_LEADER_ID].i, 2);
	cr_assert_eq(leader->st->v[KP_FETCH_LEADER_EPOCH].i, 5);
	const struct kp_value *diverging = &p->v[kp_field_index(p->schema, "DivergingEpoch")];
	cr_assert(diverging->present);
	cr_assert_eq(diverging->st->v[1].i, 9);
	cr_assert_not(p->v[kp_field_index(p->schema, "SnapshotId")].present);
	cr_assert_eq(p->v[KP_FETCH_RESP_PART_RECORDS].s.len, 8);
	kp_arena_free(&a);
}

/* v16: topic ids, and the tagged NodeEndpoints of the new leaders (KIP-951). */
static const char fetch_v16_response[] = "00000004 00"
                                         "00000000 0000 0000002a"
                                         "02 00112233445566778899aabbccddeeff 02"
                                         "00000000 0006" /* NOT_LEADER_OR_FOLLOWER */
                                         "ffffffffffffffff ffffffffffffffff ffffffffffffffff"
                                         "00 ffffffff 01"                /* aborted null; PRR; no records */
                                         "01 01 09 00000002 00000006 00" /* CurrentLeader 2, epoch 6 */
                                         "00"
                                         "01 00 19 02"                             /* tag 0 NodeEndpoints: 1 */
                                         "00000002 0a 3132372e302e302e31 00002384" /* 2 127.0.0.1:9092 */
                                         "05 75732d61 00";                         /* Rack "us-a" */

Test(fetch, v16_response_carries_node_endpoints)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v16_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FETCH, 16, buf, n);
	const struct kp_value *eps = &m.body->v[KP_FETCH_RESP_NODE_ENDPOINTS];
	cr_assert(eps->present);
	cr_assert_eq(eps->a.cnt, 1);
	struct kp_struct *ep = item(eps, 0);
	cr_assert_eq(ep->v[KP_FETCH_ENDPOINT_NODE_ID].i, 2);
	cr_assert(span_is(ep->v[KP_FETCH_ENDPOINT_HOST].s, "127.0.0.1"));
	cr_assert_eq(ep->v[KP_FETCH_ENDPOINT_PORT].i, 9092);
	cr_assert(span_is(ep->v[KP_FETCH_ENDPOINT_RACK].s, "us-a"));
	struct kp_struct *t = item(&m.body->v[KP_FETCH_RESP_RESPONSES], 0);
	cr_assert_eq(t->v[kp_field_index(t->schema, "TopicId")].s.len, 16);
	struct kp_struct *p = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_FETCH_RESP_PART_ERROR_CODE].i, 6);
	cr_assert_eq(p->v[KP_FETCH_RESP_PART_RECORDS].s.len, 0);
	cr_assert_eq(p->v[KP_FETCH_RESP_PART_CURRENT_LEADER].st->v[KP_FETCH_LEADER_ID].i, 2);
	kp_arena_free(&a);
}

/* ---- malformed input ----------------------------------------------------- */

Test(fetch, every_malformation_of_the_vectors_fails_cleanly, .timeout = 120)
{
	const struct {
		const char *hex;
		bool request;
		int16_t version;
	} cases[] = {
	    {fetch_v11_request, true, 11},   {fetch_v15_request, true, 15},   {fetch_v4_response, false, 4},
	    {fetch_v16_response, false, 16}, {fetch_v12_response, false, 12},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = unhex(cases[i].hex, buf, sizeof(buf));
		check_malformations(cases[i].request, KP_API_FETCH, cases[i].version, buf, n);
	}
}

Test(fetch, a_null_topic_name_is_malformed)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_message m;
	kp_arena_init(&a, 0);
	size_t n = unhex("0001 0004 00000001 0004 6b636174 ffffffff 000001f4 00000001 03200000 00"
	                 "00000001 ffff 00000000",
	                 buf, sizeof(buf));
	kp_cursor_init(&c, buf, n);
	cr_assert_not(kp_message_decode(&a, &c, true, -1, -1, &m));
	cr_assert_eq(c.err, KP_ERR_BAD_VALUE, "%s", kp_error_name(c.err));
	cr_assert_str_eq(c.err_field, "Topic");
	kp_arena_free(&a);
}

/* ---- rewrites ------------------------------------------------------------ */

/* Encodes m into a finished writer (segments valid until kp_writer_free). */
static void encode(struct kp_writer *w, const struct kp_message *m)
{
	kp_writer_init(w);
	kp_message_encode(w, m);
	kp_writer_finish(w);
	cr_assert(kp_writer_ok(w));
}

static bool references(const struct kp_writer *w, struct kp_span s)
{
	for (size_t i = 0; i < w->nsegs; i++)
		if (w->segs[i].ref == s.ptr && w->segs[i].len == (size_t)s.len)
			return true;
	return false;
}

Test(fetch, the_records_of_a_response_are_re_encoded_by_reference)
{
	struct kp_arena a;
	struct kp_writer w;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v11_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FETCH, 11, buf, n);
	encode(&w, &m);
	/* Partition 1 is the last 48 bytes, ending with its 6 record bytes; partition 0's 8 precede it. */
	cr_assert(references(&w, (struct kp_span){buf + n - 6, 6}), "partition 1's records were copied");
	cr_assert(references(&w, (struct kp_span){buf + n - 48 - 8, 8}), "partition 0's records were copied");
	kp_writer_free(&w);
	kp_arena_free(&a);
}

Test(fetch, a_new_rack_id_re_encodes_a_valid_request_changed_in_that_field_only)
{
	struct kp_arena a, a2;
	struct kp_writer w;
	struct kp_cursor c;
	struct kp_message m2;
	size_t outlen;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v11_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_FETCH, 11, buf, n);

	m.body->v[KP_FETCH_REQ_RACK_ID].s = (struct kp_span){(const uint8_t *)"us-east-1b", 10};
	kp_writer_init(&w);
	kp_message_encode(&w, &m);
	uint8_t *out = kp_writer_flatten(&w, &outlen);
	cr_assert_not_null(out);

	/* RackId is the last field: everything before its old 2 + 4 bytes is unchanged. */
	cr_assert_eq(outlen, n - 4 + 10);
	cr_assert_arr_eq(out, buf, n - 6);
	cr_assert_arr_eq(out + n - 6, "\x00\x0aus-east-1b", 12);

	kp_arena_init(&a2, 0);
	kp_cursor_init(&c, out, outlen);
	cr_assert(kp_message_decode(&a2, &c, true, -1, -1, &m2), "%s", kp_error_name(c.err));
	cr_assert(span_is(m2.body->v[KP_FETCH_REQ_RACK_ID].s, "us-east-1b"));
	cr_assert_eq(m2.req.correlation_id, m.req.correlation_id);
	cr_assert_eq(item(&item(&m2.body->v[KP_FETCH_REQ_TOPICS], 0)->v[KP_FETCH_TOPIC_PARTITIONS], 1)
	                 ->v[KP_FETCH_PART_PARTITION]
	                 .i,
	             1);
	free(out);
	kp_writer_free(&w);
	kp_arena_free(&a2);
	kp_arena_free(&a);
}

Test(fetch, a_redirect_to_a_preferred_read_replica_keeps_other_records_by_reference)
{
	struct kp_arena a, a2;
	struct kp_writer w;
	struct kp_cursor c;
	struct kp_message m2;
	size_t outlen;
	kp_arena_init(&a, 0);
	size_t n = unhex(fetch_v11_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_FETCH, 11, buf, n);
	struct kp_struct *t = item(&m.body->v[KP_FETCH_RESP_RESPONSES], 0);
	struct kp_struct *p0 = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	struct kp_struct *p1 = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 1);
	struct kp_span p0_records = p0->v[KP_FETCH_RESP_PART_RECORDS].s;
	struct kp_span p1_records = p1->v[KP_FETCH_RESP_PART_RECORDS].s;

	/* What a broker sends to redirect: the replica, and no records. */
	p0->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = 2;
	p0->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){NULL, 0};
	encode(&w, &m);
	cr_assert(references(&w, p1_records), "partition 1's records were copied");
	for (size_t i = 0; i < w.nsegs; i++)
		cr_assert_neq(w.segs[i].ref, p0_records.ptr, "partition 0's records are still sent");
	uint8_t *out = kp_writer_flatten(&w, &outlen);
	cr_assert_not_null(out);
	cr_assert_eq(outlen, n - 8);

	kp_arena_init(&a2, 0);
	kp_cursor_init(&c, out, outlen);
	cr_assert(kp_message_decode(&a2, &c, false, KP_API_FETCH, 11, &m2), "%s", kp_error_name(c.err));
	t = item(&m2.body->v[KP_FETCH_RESP_RESPONSES], 0);
	p0 = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	p1 = item(&t->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 1);
	cr_assert_eq(p0->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i, 2);
	cr_assert_eq(p0->v[KP_FETCH_RESP_PART_RECORDS].s.len, 0);
	cr_assert_eq(p0->v[kp_field_index(p0->schema, "HighWatermark")].i, 16);
	cr_assert_eq(p1->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i, -1);
	cr_assert_arr_eq(p1->v[KP_FETCH_RESP_PART_RECORDS].s.ptr, "\xaa\xbb\xcc\xdd\xee\xff", 6);
	free(out);
	kp_writer_free(&w);
	kp_arena_free(&a2);
	kp_arena_free(&a);
}
