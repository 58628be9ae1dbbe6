/*
 * ListOffsets, OffsetForLeaderEpoch and DeleteRecords: the small
 * "topics [partitions]" messages regional mode splits per partition
 * (split.h). Hand-checked vectors written from Kafka's definitions: the
 * oldest version, the versions that move a field, each side of the flexible
 * boundary, and the newest; then every malformation of them.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

/* Partition 0 of topic 0. */
static struct kp_struct *first_partition(const struct kp_struct *body, int topics, int partitions)
{
	return item(&item(&body->v[topics], 0)->v[partitions], 0);
}

/* ---- field indexes ------------------------------------------------------ */

Test(offset_apis, list_offsets_field_indexes_match_the_table)
{
	const struct kp_schema *req = &kp_list_offsets_request, *resp = &kp_list_offsets_response;
	const struct kp_schema *topic = sub(req, KP_LIST_OFFSETS_REQ_TOPICS);
	const struct kp_schema *part = sub(topic, KP_LIST_OFFSETS_TOPIC_PARTITIONS);
	const struct kp_schema *rtopic = sub(resp, KP_LIST_OFFSETS_RESP_TOPICS);
	const struct kp_schema *rpart = sub(rtopic, KP_LIST_OFFSETS_TOPIC_PARTITIONS);

	cr_assert_eq(kp_field_index(req, "ReplicaId"), KP_LIST_OFFSETS_REQ_REPLICA_ID);
	cr_assert_eq(kp_field_index(req, "IsolationLevel"), KP_LIST_OFFSETS_REQ_ISOLATION_LEVEL);
	cr_assert_eq(kp_field_index(req, "Topics"), KP_LIST_OFFSETS_REQ_TOPICS);
	cr_assert_eq(kp_field_index(req, "TimeoutMs"), KP_LIST_OFFSETS_REQ_TIMEOUT_MS);
	cr_assert_eq(kp_field_index(topic, "Name"), KP_LIST_OFFSETS_TOPIC_NAME);
	cr_assert_eq(kp_field_index(topic, "Partitions"), KP_LIST_OFFSETS_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(part, "PartitionIndex"), KP_LIST_OFFSETS_PART_PARTITION_INDEX);
	cr_assert_eq(kp_field_index(part, "CurrentLeaderEpoch"), KP_LIST_OFFSETS_PART_CURRENT_LEADER_EPOCH);
	cr_assert_eq(kp_field_index(part, "Timestamp"), KP_LIST_OFFSETS_PART_TIMESTAMP);
	cr_assert_eq(kp_field_index(part, "MaxNumOffsets"), KP_LIST_OFFSETS_PART_MAX_NUM_OFFSETS);

	cr_assert_eq(kp_field_index(resp, "ThrottleTimeMs"), KP_LIST_OFFSETS_RESP_THROTTLE_TIME_MS);
	cr_assert_eq(kp_field_index(resp, "Topics"), KP_LIST_OFFSETS_RESP_TOPICS);
	cr_assert_eq(kp_field_index(rtopic, "Name"), KP_LIST_OFFSETS_TOPIC_NAME);
	cr_assert_eq(kp_field_index(rtopic, "Partitions"), KP_LIST_OFFSETS_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(rpart, "PartitionIndex"), KP_LIST_OFFSETS_RESP_PART_PARTITION_INDEX);
	cr_assert_eq(kp_field_index(rpart, "ErrorCode"), KP_LIST_OFFSETS_RESP_PART_ERROR_CODE);
	cr_assert_eq(kp_field_index(rpart, "OldStyleOffsets"), KP_LIST_OFFSETS_RESP_PART_OLD_STYLE_OFFSETS);
	cr_assert_eq(kp_field_index(rpart, "Timestamp"), KP_LIST_OFFSETS_RESP_PART_TIMESTAMP);
	cr_assert_eq(kp_field_index(rpart, "Offset"), KP_LIST_OFFSETS_RESP_PART_OFFSET);
	cr_assert_eq(kp_field_index(rpart, "LeaderEpoch"), KP_LIST_OFFSETS_RESP_PART_LEADER_EPOCH);
}

Test(offset_apis, offset_for_leader_epoch_field_indexes_match_the_table)
{
	const struct kp_schema *req = &kp_offset_for_leader_epoch_request, *resp = &kp_offset_for_leader_epoch_response;
	const struct kp_schema *topic = sub(req, KP_OFFSET_FOR_LEADER_EPOCH_REQ_TOPICS);
	const struct kp_schema *part = sub(topic, KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS);
	const struct kp_schema *rtopic = sub(resp, KP_OFFSET_FOR_LEADER_EPOCH_RESP_TOPICS);
	const struct kp_schema *rpart = sub(rtopic, KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS);

	cr_assert_eq(kp_field_index(req, "ReplicaId"), KP_OFFSET_FOR_LEADER_EPOCH_REQ_REPLICA_ID);
	cr_assert_eq(kp_field_index(req, "Topics"), KP_OFFSET_FOR_LEADER_EPOCH_REQ_TOPICS);
	cr_assert_eq(kp_field_index(topic, "Topic"), KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_TOPIC);
	cr_assert_eq(kp_field_index(topic, "Partitions"), KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(part, "Partition"), KP_OFFSET_FOR_LEADER_EPOCH_PART_PARTITION);
	cr_assert_eq(kp_field_index(part, "CurrentLeaderEpoch"), KP_OFFSET_FOR_LEADER_EPOCH_PART_CURRENT_LEADER_EPOCH);
	cr_assert_eq(kp_field_index(part, "LeaderEpoch"), KP_OFFSET_FOR_LEADER_EPOCH_PART_LEADER_EPOCH);

	cr_assert_eq(kp_field_index(resp, "ThrottleTimeMs"), KP_OFFSET_FOR_LEADER_EPOCH_RESP_THROTTLE_TIME_MS);
	cr_assert_eq(kp_field_index(resp, "Topics"), KP_OFFSET_FOR_LEADER_EPOCH_RESP_TOPICS);
	cr_assert_eq(kp_field_index(rtopic, "Topic"), KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_TOPIC);
	cr_assert_eq(kp_field_index(rtopic, "Partitions"), KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(rpart, "ErrorCode"), KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_ERROR_CODE);
	cr_assert_eq(kp_field_index(rpart, "Partition"), KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_PARTITION);
	cr_assert_eq(kp_field_index(rpart, "LeaderEpoch"), KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_LEADER_EPOCH);
	cr_assert_eq(kp_field_index(rpart, "EndOffset"), KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_END_OFFSET);
}

Test(offset_apis, delete_records_field_indexes_match_the_table)
{
	const struct kp_schema *req = &kp_delete_records_request, *resp = &kp_delete_records_response;
	const struct kp_schema *topic = sub(req, KP_DELETE_RECORDS_REQ_TOPICS);
	const struct kp_schema *part = sub(topic, KP_DELETE_RECORDS_TOPIC_PARTITIONS);
	const struct kp_schema *rtopic = sub(resp, KP_DELETE_RECORDS_RESP_TOPICS);
	const struct kp_schema *rpart = sub(rtopic, KP_DELETE_RECORDS_TOPIC_PARTITIONS);

	cr_assert_eq(kp_field_index(req, "Topics"), KP_DELETE_RECORDS_REQ_TOPICS);
	cr_assert_eq(kp_field_index(req, "TimeoutMs"), KP_DELETE_RECORDS_REQ_TIMEOUT_MS);
	cr_assert_eq(kp_field_index(topic, "Name"), KP_DELETE_RECORDS_TOPIC_NAME);
	cr_assert_eq(kp_field_index(topic, "Partitions"), KP_DELETE_RECORDS_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(part, "PartitionIndex"), KP_DELETE_RECORDS_PART_PARTITION_INDEX);
	cr_assert_eq(kp_field_index(part, "Offset"), KP_DELETE_RECORDS_PART_OFFSET);

	cr_assert_eq(kp_field_index(resp, "ThrottleTimeMs"), KP_DELETE_RECORDS_RESP_THROTTLE_TIME_MS);
	cr_assert_eq(kp_field_index(resp, "Topics"), KP_DELETE_RECORDS_RESP_TOPICS);
	cr_assert_eq(kp_field_index(rtopic, "Name"), KP_DELETE_RECORDS_TOPIC_NAME);
	cr_assert_eq(kp_field_index(rtopic, "Partitions"), KP_DELETE_RECORDS_TOPIC_PARTITIONS);
	cr_assert_eq(kp_field_index(rpart, "PartitionIndex"), KP_DELETE_RECORDS_RESP_PART_PARTITION_INDEX);
	cr_assert_eq(kp_field_index(rpart, "LowWatermark"), KP_DELETE_RECORDS_RESP_PART_LOW_WATERMARK);
	cr_assert_eq(kp_field_index(rpart, "ErrorCode"), KP_DELETE_RECORDS_RESP_PART_ERROR_CODE);
}

Test(offset_apis, every_version_is_decoded_with_its_flexible_boundary)
{
	const struct {
		int16_t key, max, flexible_since;
	} apis[] = {
	    {KP_API_LIST_OFFSETS, 11, 6},
	    {KP_API_OFFSET_FOR_LEADER_EPOCH, 4, 4},
	    {KP_API_DELETE_RECORDS, 2, 2},
	};
	for (size_t i = 0; i < sizeof(apis) / sizeof(apis[0]); i++) {
		const struct kp_api *api = kp_api_get(apis[i].key);
		for (int16_t v = 0; v <= apis[i].max; v++) {
			cr_assert(kp_api_decodes(api, v, true), "api %d v%d request", apis[i].key, v);
			cr_assert(kp_api_decodes(api, v, false), "api %d v%d response", apis[i].key, v);
			cr_assert_eq(kp_api_flexible(api, v), v >= apis[i].flexible_since, "api %d v%d", apis[i].key,
			             v);
		}
		cr_assert_not(kp_api_decodes(api, apis[i].max + 1, true));
	}
}

/* ---- ListOffsets --------------------------------------------------------- */

/* v0: MaxNumOffsets in the request, OldStyleOffsets in the response. */
static const char list_offsets_v0_request[] = "0002 0000 00000001 0004 6b636174"
                                              "ffffffff"                              /* ReplicaId -1 */
                                              "00000001 0001 74 00000002"             /* "t": 2 partitions */
                                              "00000000 ffffffffffffffff 00000001"    /* 0: latest, 1 offset */
                                              "00000001 fffffffffffffffe 00000001";   /* 1: earliest */
static const char list_offsets_v0_response[] = "00000001"
                                               "00000001 0001 74 00000001"
                                               "00000000 0000 00000001 000000000000002a"; /* 0: [42] */

/* v4: IsolationLevel (2+), CurrentLeaderEpoch (4+); ThrottleTimeMs, LeaderEpoch. */
static const char list_offsets_v4_request[] = "0002 0004 00000002 0004 6b636174"
                                              "ffffffff 01"                          /* read_committed */
                                              "00000001 0001 74 00000001"
                                              "00000003 00000005 ffffffffffffffff"; /* 3: epoch 5, latest */
static const char list_offsets_v4_response[] = "00000002 00000064" /* ThrottleTimeMs 100 */
                                               "00000001 0001 74 00000001"
                                               "00000003 0000 ffffffffffffffff 000000000000002a 00000005";

/* v6: flexible. v10: TimeoutMs. v11 has v10's layout. */
static const char list_offsets_v6_request[] = "0002 0006 00000003 0004 6b636174 00"
                                              "ffffffff 00"
                                              "02 02 74 02 00000000 00000005 ffffffffffffffff 00 00"
                                              "00";
static const char list_offsets_v11_request[] = "0002 000b 00000004 0004 6b636174 00"
                                               "ffffffff 00"
                                               "02 02 74 02 00000000 00000005 fffffffffffffffa 00 00" /* -6 */
                                               "00007530 00";                                          /* 30 s */
static const char list_offsets_v11_response[] = "00000004 00"
                                                "00000000"
                                                "02 02 74 02 00000000 0000 ffffffffffffffff 000000000000002a"
                                                "00000005 00 00"
                                                "00";

Test(offset_apis, list_offsets_v0)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(list_offsets_v0_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_LIST_OFFSETS, 0, buf, n);
	cr_assert_eq(m.body->v[KP_LIST_OFFSETS_REQ_REPLICA_ID].i, -1);
	cr_assert_not(m.body->v[KP_LIST_OFFSETS_REQ_ISOLATION_LEVEL].present);
	struct kp_struct *t = item(&m.body->v[KP_LIST_OFFSETS_REQ_TOPICS], 0);
	cr_assert(span_is(t->v[KP_LIST_OFFSETS_TOPIC_NAME].s, "t"));
	struct kp_struct *p = item(&t->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 1);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_PART_PARTITION_INDEX].i, 1);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_PART_TIMESTAMP].i, -2);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_PART_MAX_NUM_OFFSETS].i, 1);

	n = unhex(list_offsets_v0_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_LIST_OFFSETS, 0, buf, n);
	cr_assert_not(m.body->v[KP_LIST_OFFSETS_RESP_THROTTLE_TIME_MS].present);
	p = item(&item(&m.body->v[KP_LIST_OFFSETS_RESP_TOPICS], 0)->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 0);
	const struct kp_value *old = &p->v[KP_LIST_OFFSETS_RESP_PART_OLD_STYLE_OFFSETS];
	cr_assert_eq(old->a.cnt, 1);
	cr_assert_eq(old->a.items[0].i, 42);
	cr_assert_not(p->v[KP_LIST_OFFSETS_RESP_PART_OFFSET].present);
	kp_arena_free(&a);
}

Test(offset_apis, list_offsets_v4_has_isolation_level_and_leader_epochs)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(list_offsets_v4_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_LIST_OFFSETS, 4, buf, n);
	cr_assert_eq(m.body->v[KP_LIST_OFFSETS_REQ_ISOLATION_LEVEL].i, 1);
	struct kp_struct *p =
	    item(&item(&m.body->v[KP_LIST_OFFSETS_REQ_TOPICS], 0)->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_PART_PARTITION_INDEX].i, 3);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_PART_CURRENT_LEADER_EPOCH].i, 5);
	cr_assert_not(p->v[KP_LIST_OFFSETS_PART_MAX_NUM_OFFSETS].present);

	n = unhex(list_offsets_v4_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_LIST_OFFSETS, 4, buf, n);
	cr_assert_eq(m.body->v[KP_LIST_OFFSETS_RESP_THROTTLE_TIME_MS].i, 100);
	p = item(&item(&m.body->v[KP_LIST_OFFSETS_RESP_TOPICS], 0)->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_RESP_PART_OFFSET].i, 42);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_RESP_PART_TIMESTAMP].i, -1);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_RESP_PART_LEADER_EPOCH].i, 5);
	kp_arena_free(&a);
}

Test(offset_apis, list_offsets_flexible_and_newest)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(list_offsets_v6_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_LIST_OFFSETS, 6, buf, n);
	cr_assert(m.flexible);
	cr_assert_not(m.body->v[KP_LIST_OFFSETS_REQ_TIMEOUT_MS].present);

	n = unhex(list_offsets_v11_request, buf, sizeof(buf));
	m = check_roundtrip(&a, true, KP_API_LIST_OFFSETS, 11, buf, n);
	cr_assert_eq(m.body->v[KP_LIST_OFFSETS_REQ_TIMEOUT_MS].i, 30000);
	struct kp_struct *p =
	    item(&item(&m.body->v[KP_LIST_OFFSETS_REQ_TOPICS], 0)->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_PART_TIMESTAMP].i, -6);

	n = unhex(list_offsets_v11_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_LIST_OFFSETS, 11, buf, n);
	cr_assert_eq(m.resp.header_version, 1);
	p = item(&item(&m.body->v[KP_LIST_OFFSETS_RESP_TOPICS], 0)->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_LIST_OFFSETS_RESP_PART_OFFSET].i, 42);
	kp_arena_free(&a);
}

/* ---- OffsetForLeaderEpoch ------------------------------------------------ */

#define OFLE_REQ_TOPICS  KP_OFFSET_FOR_LEADER_EPOCH_REQ_TOPICS
#define OFLE_RESP_TOPICS KP_OFFSET_FOR_LEADER_EPOCH_RESP_TOPICS
#define OFLE_PARTITIONS  KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS

static const char ofle_v0_request[] = "0017 0000 00000001 0004 6b636174"
                                      "00000001 0001 74 00000001 00000000 00000004"; /* 0: epoch 4 */
static const char ofle_v0_response[] = "00000001"
                                       "00000001 0001 74 00000001 0000 00000000 0000000000000064"; /* 100 */
/* v3: ReplicaId; CurrentLeaderEpoch (2+). */
static const char ofle_v3_request[] = "0017 0003 00000002 0004 6b636174"
                                      "ffffffff 00000001 0001 74 00000001 00000002 00000005 00000004";
static const char ofle_v3_response[] = "00000002 00000000"
                                       "00000001 0001 74 00000001 0000 00000002 00000004 0000000000000064";
/* v4: flexible. */
static const char ofle_v4_request[] = "0017 0004 00000003 0004 6b636174 00"
                                      "ffffffff 02 02 74 02 00000002 00000005 00000004 00 00 00";
static const char ofle_v4_response[] = "00000003 00"
                                       "00000000 02 02 74 02 0000 00000002 00000004 0000000000000064 00 00 00";

Test(offset_apis, offset_for_leader_epoch_every_layout)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(ofle_v0_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_OFFSET_FOR_LEADER_EPOCH, 0, buf, n);
	cr_assert_not(m.body->v[KP_OFFSET_FOR_LEADER_EPOCH_REQ_REPLICA_ID].present);
	struct kp_struct *p = first_partition(m.body, OFLE_REQ_TOPICS, OFLE_PARTITIONS);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_PART_LEADER_EPOCH].i, 4);

	n = unhex(ofle_v0_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_OFFSET_FOR_LEADER_EPOCH, 0, buf, n);
	p = first_partition(m.body, OFLE_RESP_TOPICS, OFLE_PARTITIONS);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_END_OFFSET].i, 100);
	cr_assert_not(p->v[KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_LEADER_EPOCH].present);

	n = unhex(ofle_v3_request, buf, sizeof(buf));
	m = check_roundtrip(&a, true, KP_API_OFFSET_FOR_LEADER_EPOCH, 3, buf, n);
	cr_assert_eq(m.body->v[KP_OFFSET_FOR_LEADER_EPOCH_REQ_REPLICA_ID].i, -1);
	p = first_partition(m.body, OFLE_REQ_TOPICS, OFLE_PARTITIONS);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_PART_PARTITION].i, 2);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_PART_CURRENT_LEADER_EPOCH].i, 5);

	n = unhex(ofle_v3_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_OFFSET_FOR_LEADER_EPOCH, 3, buf, n);
	p = first_partition(m.body, OFLE_RESP_TOPICS, OFLE_PARTITIONS);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_PARTITION].i, 2);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_LEADER_EPOCH].i, 4);

	n = unhex(ofle_v4_request, buf, sizeof(buf));
	m = check_roundtrip(&a, true, KP_API_OFFSET_FOR_LEADER_EPOCH, 4, buf, n);
	cr_assert(m.flexible);
	n = unhex(ofle_v4_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_OFFSET_FOR_LEADER_EPOCH, 4, buf, n);
	p = first_partition(m.body, OFLE_RESP_TOPICS, OFLE_PARTITIONS);
	cr_assert_eq(p->v[KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_END_OFFSET].i, 100);
	kp_arena_free(&a);
}

/* ---- DeleteRecords ------------------------------------------------------- */

static const char delete_records_v0_request[] = "0015 0000 00000001 0004 6b636174"
                                                "00000001 0001 74 00000001 00000000 000000000000000a"
                                                "00007530";
static const char delete_records_v0_response[] = "00000001"
                                                 "00000000 00000001 0001 74 00000001 00000000 000000000000000a 0000";
static const char delete_records_v2_request[] = "0015 0002 00000002 0004 6b636174 00"
                                                "02 02 74 02 00000000 000000000000000a 00 00 00007530 00";
static const char delete_records_v2_response[] = "00000002 00"
                                                 "00000000 02 02 74 02 00000000 000000000000000a 0000 00 00 00";

Test(offset_apis, delete_records_every_layout)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(delete_records_v0_request, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, KP_API_DELETE_RECORDS, 0, buf, n);
	cr_assert_eq(m.body->v[KP_DELETE_RECORDS_REQ_TIMEOUT_MS].i, 30000);
	struct kp_struct *p =
	    item(&item(&m.body->v[KP_DELETE_RECORDS_REQ_TOPICS], 0)->v[KP_DELETE_RECORDS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_DELETE_RECORDS_PART_OFFSET].i, 10);

	n = unhex(delete_records_v0_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_DELETE_RECORDS, 0, buf, n);
	p = item(&item(&m.body->v[KP_DELETE_RECORDS_RESP_TOPICS], 0)->v[KP_DELETE_RECORDS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_DELETE_RECORDS_RESP_PART_LOW_WATERMARK].i, 10);
	cr_assert_eq(p->v[KP_DELETE_RECORDS_RESP_PART_ERROR_CODE].i, 0);

	n = unhex(delete_records_v2_request, buf, sizeof(buf));
	m = check_roundtrip(&a, true, KP_API_DELETE_RECORDS, 2, buf, n);
	cr_assert(m.flexible);
	cr_assert_eq(m.body->v[KP_DELETE_RECORDS_REQ_TIMEOUT_MS].i, 30000);
	n = unhex(delete_records_v2_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_DELETE_RECORDS, 2, buf, n);
	p = item(&item(&m.body->v[KP_DELETE_RECORDS_RESP_TOPICS], 0)->v[KP_DELETE_RECORDS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_DELETE_RECORDS_RESP_PART_LOW_WATERMARK].i, 10);
	kp_arena_free(&a);
}

/* ---- malformed input ----------------------------------------------------- */

Test(offset_apis, every_malformation_of_the_vectors_fails_cleanly, .timeout = 240)
{
	const struct {
		const char *hex;
		int16_t api;
		bool request;
		int16_t version;
	} cases[] = {
	    {list_offsets_v0_request, KP_API_LIST_OFFSETS, true, 0},
	    {list_offsets_v0_response, KP_API_LIST_OFFSETS, false, 0},
	    {list_offsets_v4_request, KP_API_LIST_OFFSETS, true, 4},
	    {list_offsets_v4_response, KP_API_LIST_OFFSETS, false, 4},
	    {list_offsets_v11_request, KP_API_LIST_OFFSETS, true, 11},
	    {list_offsets_v11_response, KP_API_LIST_OFFSETS, false, 11},
	    {ofle_v0_request, KP_API_OFFSET_FOR_LEADER_EPOCH, true, 0},
	    {ofle_v4_request, KP_API_OFFSET_FOR_LEADER_EPOCH, true, 4},
	    {ofle_v4_response, KP_API_OFFSET_FOR_LEADER_EPOCH, false, 4},
	    {delete_records_v0_request, KP_API_DELETE_RECORDS, true, 0},
	    {delete_records_v2_request, KP_API_DELETE_RECORDS, true, 2},
	    {delete_records_v2_response, KP_API_DELETE_RECORDS, false, 2},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = unhex(cases[i].hex, buf, sizeof(buf));
		check_malformations(cases[i].request, cases[i].api, cases[i].version, buf, n);
	}
}
