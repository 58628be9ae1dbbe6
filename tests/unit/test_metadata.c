/*
 * Metadata: hand-checked vectors, written from Kafka's definitions, at v0,
 * v1, v8 (the last non-flexible version), v9, v12 and v13; a response
 * captured from the cluster simulator; unknown tagged fields in a broker;
 * the field indexes routing code uses; and the broker rewrite that decodes
 * and re-encodes only the prefix (ThrottleTimeMs, Brokers) of a response and
 * references the rest unchanged.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[4096];

static const struct kp_schema *request_topic_schema(void)
{
	return kp_metadata_request.fields[kp_field_index(&kp_metadata_request, "Topics")].sub;
}

static const struct kp_schema *broker_schema(void)
{
	return kp_metadata_response.fields[KP_METADATA_RESPONSE_BROKERS].sub;
}

static const struct kp_schema *topic_schema(void)
{
	return kp_metadata_response.fields[KP_METADATA_RESPONSE_TOPICS].sub;
}

static const struct kp_schema *partition_schema(void)
{
	return topic_schema()->fields[KP_METADATA_TOPIC_PARTITIONS].sub;
}

/* A Metadata v8 response: one broker without a rack, a null ClusterId,
 * one topic with one partition (LeaderEpoch 7, one offline replica). */
static const char v8_response[] = "00000008"                                  /* correlation_id */
                                  "00000064"                                  /* ThrottleTimeMs 100 */
                                  "00000001 00000001 0002 6231 00002384 ffff" /* Brokers: 1 b1:9092 null */
                                  "ffff"                                      /* ClusterId null */
                                  "00000001"                                  /* ControllerId */
                                  "00000001 0000 0001 74 00"                  /* Topics: "t", not internal */
                                  "00000001 0000 00000003 00000001 00000007"  /* partition 3, leader 1, epoch 7 */
                                  "00000002 00000001 00000002"                /* ReplicaNodes [1,2] */
                                  "00000001 00000001"                         /* IsrNodes [1] */
                                  "00000001 00000002"                         /* OfflineReplicas [2] */
                                  "80000000"                                  /* TopicAuthorizedOperations */
                                  "80000000";                                 /* ClusterAuthorizedOperations */

/* A Metadata v12 response: two brokers (one rack null), a null ClusterId,
 * a known topic and one asked for by id that does not exist (Name null). */
static const char v12_response[] = "00000012 00"                                     /* header v1 */
                                   "00000000"                                        /* ThrottleTimeMs */
                                   "03"                                              /* Brokers: 2 */
                                   "00000001 03 6231 00002384 05 65752d61 00"        /* 1 b1:9092 eu-a */
                                   "00000002 03 6232 00002385 00 00"                 /* 2 b2:9093 null */
                                   "00"                                              /* ClusterId null */
                                   "00000002"                                        /* ControllerId */
                                   "03"                                              /* Topics: 2 */
                                   "0000 02 74 0102030405060708090a0b0c0d0e0f10 00"  /* "t", id, not internal */
                                   "02 0000 00000000 00000002 00000005"              /* p0 leader 2 epoch 5 */
                                   "03 00000002 00000001 03 00000002 00000001 01 00" /* replicas, isr, off */
                                   "80000000 00"                                     /* TopicAuthorizedOps */
                                   "0064 00 a0a1a2a3a4a5a6a7a8a9aaabacadaeaf 00 01 80000000 00" /* UNKNOWN_TOPIC_ID */
                                   "00";                                                        /* tags */

/* Captured from kstretch-testcluster (librdkafka's mock; see
 * tests/vectors/metadata/metadata-v12-response.hex): six brokers in three
 * regions, topic "t" with 12 partitions of 3 replicas. */
static const char sim_v12_response[] =
    "00000071000000000007000000010a3132372e302e302e3100008fa50565752d6100000000020a3132372e302e302e31"
    "000089530575732d6100000000030a3132372e302e302e3100008dff0561702d6100000000040a3132372e302e302e31"
    "0000ab7b0565752d6200000000050a3132372e302e302e31000092a30575732d6200000000060a3132372e302e302e31"
    "0000a73d0561702d6200186d6f636b436c757374657231353633656663386363613800000000020000027467644a3e27"
    "104841ba63182ff06e6c16000d0000000000000000000100000001040000000100000002000000030400000001000000"
    "020000000301000000000000010000000500000001040000000400000005000000060400000004000000050000000601"
    "000000000000020000000300000001040000000100000002000000030400000001000000020000000301000000000000"
    "030000000400000001040000000400000005000000060400000004000000050000000601000000000000040000000200"
    "000001040000000100000002000000030400000001000000020000000301000000000000050000000600000001040000"
    "000400000005000000060400000004000000050000000601000000000000060000000100000001040000000100000002"
    "000000030400000001000000020000000301000000000000070000000500000001040000000400000005000000060400"
    "000004000000050000000601000000000000080000000300000001040000000100000002000000030400000001000000"
    "020000000301000000000000090000000400000001040000000400000005000000060400000004000000050000000601"
    "0000000000000a0000000200000001040000000100000002000000030400000001000000020000000301000000000000"
    "0b000000060000000104000000040000000500000006040000000400000005000000060100800000000000";

Test(metadata, field_indexes_used_by_routing_match_the_tables)
{
	static const struct {
		int idx;
		const char *name;
		int which; /* 0 response, 1 broker, 2 topic, 3 partition */
	} cases[] = {
	    {KP_METADATA_RESPONSE_THROTTLE_TIME_MS, "ThrottleTimeMs", 0},
	    {KP_METADATA_RESPONSE_BROKERS, "Brokers", 0},
	    {KP_METADATA_RESPONSE_CLUSTER_ID, "ClusterId", 0},
	    {KP_METADATA_RESPONSE_CONTROLLER_ID, "ControllerId", 0},
	    {KP_METADATA_RESPONSE_TOPICS, "Topics", 0},
	    {KP_METADATA_RESPONSE_ERROR_CODE, "ErrorCode", 0},
	    {KP_METADATA_BROKER_NODE_ID, "NodeId", 1},
	    {KP_METADATA_BROKER_HOST, "Host", 1},
	    {KP_METADATA_BROKER_PORT, "Port", 1},
	    {KP_METADATA_BROKER_RACK, "Rack", 1},
	    {KP_METADATA_TOPIC_ERROR_CODE, "ErrorCode", 2},
	    {KP_METADATA_TOPIC_NAME, "Name", 2},
	    {KP_METADATA_TOPIC_TOPIC_ID, "TopicId", 2},
	    {KP_METADATA_TOPIC_PARTITIONS, "Partitions", 2},
	    {KP_METADATA_PARTITION_ERROR_CODE, "ErrorCode", 3},
	    {KP_METADATA_PARTITION_PARTITION_INDEX, "PartitionIndex", 3},
	    {KP_METADATA_PARTITION_LEADER_ID, "LeaderId", 3},
	    {KP_METADATA_PARTITION_LEADER_EPOCH, "LeaderEpoch", 3},
	    {KP_METADATA_PARTITION_REPLICA_NODES, "ReplicaNodes", 3},
	    {KP_METADATA_PARTITION_ISR_NODES, "IsrNodes", 3},
	    {KP_METADATA_PARTITION_OFFLINE_REPLICAS, "OfflineReplicas", 3},
	};
	const struct kp_schema *schemas[] = {&kp_metadata_response, broker_schema(), topic_schema(),
	                                     partition_schema()};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(kp_field_index(schemas[cases[i].which], cases[i].name), cases[i].idx, "%s in %s",
		             cases[i].name, schemas[cases[i].which]->name);
	/* The broker rewrite's prefix ends right after Brokers. */
	cr_assert_eq(KP_METADATA_RESPONSE_PREFIX, KP_METADATA_RESPONSE_BROKERS + 1);
}

Test(metadata, v0_request_names_topics)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0003 0000 00000001 0004 6b636174" /* header v1, client "kcat" */
	                 "00000001 0001 74",                /* Topics: ["t"] */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.api_key, KP_API_METADATA);
	const struct kp_value *topics = &m.body->v[kp_field_index(&kp_metadata_request, "Topics")];
	cr_assert_eq(topics->a.cnt, 1);
	cr_assert(span_is(item(topics, 0)->v[kp_field_index(request_topic_schema(), "Name")].s, "t"));
	kp_arena_free(&a);
}

Test(metadata, v0_response_has_no_rack_cluster_id_or_controller)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000001"                             /* correlation_id */
	                 "00000001 00000001 0002 6231 00002384" /* Brokers: 1 b1:9092 */
	                 "00000001 0000 0001 74"                /* Topics: "t" */
	                 "00000001 0000 00000000 00000001"      /* partition 0, leader 1 */
	                 "00000001 00000001 00000001 00000001", /* ReplicaNodes [1], IsrNodes [1] */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_METADATA, 0, buf, n);
	cr_assert_not(m.body->v[KP_METADATA_RESPONSE_THROTTLE_TIME_MS].present);
	cr_assert_not(m.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].present);
	const struct kp_struct *b = item(&m.body->v[KP_METADATA_RESPONSE_BROKERS], 0);
	cr_assert(span_is(b->v[KP_METADATA_BROKER_HOST].s, "b1"));
	cr_assert_eq(b->v[KP_METADATA_BROKER_PORT].i, 9092);
	cr_assert_not(b->v[KP_METADATA_BROKER_RACK].present);
	cr_assert_eq(b->v[KP_METADATA_BROKER_RACK].s.len, -1, "Rack defaults to null");
	const struct kp_struct *p =
	    item(&item(&m.body->v[KP_METADATA_RESPONSE_TOPICS], 0)->v[KP_METADATA_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_ID].i, 1);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_EPOCH].i, -1, "LeaderEpoch defaults to -1");
	kp_arena_free(&a);
}

Test(metadata, v1_null_topics_ask_for_all_and_racks_may_be_null)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0003 0001 00000002 0004 6b636174 ffffffff", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.body->v[kp_field_index(&kp_metadata_request, "Topics")].a.cnt, -1);

	n = unhex("00000002"                                  /* correlation_id */
	          "00000002"                                  /* Brokers: 2 */
	          "00000001 0002 6231 00002384 0004 65752d61" /* 1 b1:9092 eu-a */
	          "00000002 0002 6232 00002385 ffff"          /* 2 b2:9093 null */
	          "00000002"                                  /* ControllerId */
	          "00000001 0000 0001 74 01 00000000",        /* Topics: "t", internal, no partitions */
	          buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_METADATA, 1, buf, n);
	const struct kp_value *brokers = &m.body->v[KP_METADATA_RESPONSE_BROKERS];
	cr_assert_eq(brokers->a.cnt, 2);
	cr_assert(span_is(item(brokers, 0)->v[KP_METADATA_BROKER_RACK].s, "eu-a"));
	cr_assert_eq(item(brokers, 1)->v[KP_METADATA_BROKER_RACK].s.len, -1);
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i, 2);
	const struct kp_struct *t = item(&m.body->v[KP_METADATA_RESPONSE_TOPICS], 0);
	cr_assert_eq(t->v[kp_field_index(topic_schema(), "IsInternal")].i, 1);
	kp_arena_free(&a);
}

Test(metadata, v8_is_the_last_non_flexible_version)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0003 0008 00000008 0004 6b636174" /* header v1: no tags */
	                 "00000001 0001 74"                 /* Topics: ["t"] */
	                 "01 00 01",                        /* AllowAuto, IncludeCluster.., IncludeTopic.. */
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.req.header_version, 1);
	cr_assert_eq(m.body->v[kp_field_index(&kp_metadata_request, "IncludeTopicAuthorizedOperations")].i, 1);

	n = unhex(v8_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_METADATA, 8, buf, n);
	cr_assert_eq(m.resp.header_version, 0);
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_THROTTLE_TIME_MS].i, 100);
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].s.len, -1, "null ClusterId");
	cr_assert_eq(item(&m.body->v[KP_METADATA_RESPONSE_BROKERS], 0)->v[KP_METADATA_BROKER_RACK].s.len, -1);
	const struct kp_struct *p =
	    item(&item(&m.body->v[KP_METADATA_RESPONSE_TOPICS], 0)->v[KP_METADATA_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_PARTITION_INDEX].i, 3);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_LEADER_EPOCH].i, 7);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_REPLICA_NODES].a.cnt, 2);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_OFFLINE_REPLICAS].a.items[0].i, 2);
	cr_assert_eq(m.body->v[kp_field_index(&kp_metadata_response, "ClusterAuthorizedOperations")].i, INT32_MIN);
	kp_arena_free(&a);
}

Test(metadata, v9_is_flexible_with_compact_fields_and_tag_sections)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0003 0009 00000009 0004 6b636174 00" /* header v2: client id stays int16 */
	                 "02 02 74 00"                         /* Topics: ["t"] */
	                 "01 00 00"                            /* AllowAuto, IncludeCluster.., IncludeTopic.. */
	                 "00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.req.header_version, 2);
	cr_assert(m.flexible);

	n = unhex("00000009 00"                            /* header v1 */
	          "00000000"                               /* ThrottleTimeMs */
	          "02 00000001 03 6231 00002384 00 00"     /* Brokers: 1 b1:9092 null */
	          "08 636c7573746572"                      /* ClusterId "cluster" */
	          "00000001"                               /* ControllerId */
	          "02 0000 02 74 00"                       /* Topics: "t" */
	          "02 0000 00000000 00000001 00000000"     /* p0 leader 1 epoch 0 */
	          "03 00000001 00000002 02 00000001 01 00" /* replicas, isr, offline, tags */
	          "80000000 00"                            /* TopicAuthorizedOperations */
	          "80000000"                               /* ClusterAuthorizedOperations */
	          "00",
	          buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_METADATA, 9, buf, n);
	cr_assert_eq(m.resp.header_version, 1);
	cr_assert(span_is(m.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].s, "cluster"));
	const struct kp_struct *p =
	    item(&item(&m.body->v[KP_METADATA_RESPONSE_TOPICS], 0)->v[KP_METADATA_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_REPLICA_NODES].a.cnt, 2);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_ISR_NODES].a.cnt, 1);
	cr_assert_eq(p->v[KP_METADATA_PARTITION_OFFLINE_REPLICAS].a.cnt, 0);
	kp_arena_free(&a);
}

Test(metadata, v12_topics_by_id_and_null_names)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0003 000c 0000000c 0004 6b636174 00"
	                 "03"
	                 "00000000000000000000000000000000 02 74 00" /* by name: zero id, "t" */
	                 "0102030405060708090a0b0c0d0e0f10 00 00"    /* by id: null Name */
	                 "00 00"                                     /* AllowAuto, IncludeTopic.. */
	                 "00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	const struct kp_value *topics = &m.body->v[kp_field_index(&kp_metadata_request, "Topics")];
	int name = kp_field_index(request_topic_schema(), "Name"),
	    id = kp_field_index(request_topic_schema(), "TopicId");
	cr_assert(span_is(item(topics, 0)->v[name].s, "t"));
	cr_assert_eq(item(topics, 1)->v[name].s.len, -1);
	cr_assert_eq(item(topics, 1)->v[id].s.len, 16);
	cr_assert_eq(item(topics, 1)->v[id].s.ptr[15], 0x10);

	n = unhex(v12_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_METADATA, 12, buf, n);
	const struct kp_value *brokers = &m.body->v[KP_METADATA_RESPONSE_BROKERS];
	cr_assert(span_is(item(brokers, 0)->v[KP_METADATA_BROKER_RACK].s, "eu-a"));
	cr_assert_eq(item(brokers, 1)->v[KP_METADATA_BROKER_RACK].s.len, -1, "null rack");
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].s.len, -1, "null ClusterId");
	cr_assert_not(m.body->v[kp_field_index(&kp_metadata_response, "ClusterAuthorizedOperations")].present);
	const struct kp_value *rtopics = &m.body->v[KP_METADATA_RESPONSE_TOPICS];
	cr_assert(span_is(item(rtopics, 0)->v[KP_METADATA_TOPIC_NAME].s, "t"));
	cr_assert_eq(item(rtopics, 1)->v[KP_METADATA_TOPIC_ERROR_CODE].i, 100);
	cr_assert_eq(item(rtopics, 1)->v[KP_METADATA_TOPIC_NAME].s.len, -1, "a topic name is nullable from v12");
	cr_assert_eq(item(rtopics, 1)->v[KP_METADATA_TOPIC_TOPIC_ID].s.ptr[0], 0xa0);
	kp_arena_free(&a);
}

Test(metadata, v13_response_ends_with_a_top_level_error_code)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("0003 000d 0000000d 0004 6b636174 00 01 00 00 00", buf, sizeof(buf)); /* no topics */
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.body->v[kp_field_index(&kp_metadata_request, "Topics")].a.cnt, 0);

	n = unhex("0000000d 00"
	          "00000000 01 00 ffffffff 01" /* no brokers, null ClusterId, no controller, no topics */
	          "0081"                       /* ErrorCode 129 REBOOTSTRAP_REQUIRED */
	          "00",
	          buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_METADATA, 13, buf, n);
	cr_assert(m.body->v[KP_METADATA_RESPONSE_ERROR_CODE].present);
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_ERROR_CODE].i, 129);
	kp_arena_free(&a);
}

Test(metadata, a_response_captured_from_the_simulator_round_trips)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex(sim_v12_response, buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_METADATA, 12, buf, n);
	const struct kp_value *brokers = &m.body->v[KP_METADATA_RESPONSE_BROKERS];
	static const char *racks[] = {"eu-a", "us-a", "ap-a", "eu-b", "us-b", "ap-b"};
	cr_assert_eq(brokers->a.cnt, 6);
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(item(brokers, i)->v[KP_METADATA_BROKER_NODE_ID].i, i + 1);
		cr_assert(span_is(item(brokers, i)->v[KP_METADATA_BROKER_HOST].s, "127.0.0.1"));
		cr_assert(span_is(item(brokers, i)->v[KP_METADATA_BROKER_RACK].s, racks[i]));
	}
	const struct kp_struct *t = item(&m.body->v[KP_METADATA_RESPONSE_TOPICS], 0);
	cr_assert(span_is(t->v[KP_METADATA_TOPIC_NAME].s, "t"));
	cr_assert_eq(t->v[KP_METADATA_TOPIC_PARTITIONS].a.cnt, 12);
	for (int p = 0; p < 12; p++)
		cr_assert_eq(item(&t->v[KP_METADATA_TOPIC_PARTITIONS], p)->v[KP_METADATA_PARTITION_REPLICA_NODES].a.cnt,
		             3);
	kp_arena_free(&a);
}

Test(metadata, nullable_ranges_are_enforced)
{
	static const struct {
		bool request;
		int16_t version;
		const char *hex;
	} bad[] = {
	    {true, 0, "0003 0000 00000001 0004 6b636174 ffffffff"},                /* null Topics before v1 */
	    {true, 9, "0003 0009 00000001 0004 6b636174 00 02 00 00 01 00 00 00"}, /* null Name before v10 */
	    {false, 0, "00000001 00000001 00000001 ffff 00002384 00000000"},       /* null Host */
	    {false, 11,
	     "00000001 00 00000000 01 00 00000001 02 0000 00 00000000000000000000000000000000 00 01 "
	     "80000000 00 00"}, /* null topic Name before v12 */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kp_arena a;
		struct kp_cursor c;
		struct kp_message m;
		kp_arena_init(&a, 0);
		size_t n = unhex(bad[i].hex, buf, sizeof(buf));
		kp_cursor_init(&c, buf, n);
		cr_assert_not(kp_message_decode(&a, &c, bad[i].request, KP_API_METADATA, bad[i].version, &m),
		              "case %zu", i);
		cr_assert_eq(c.err, KP_ERR_BAD_VALUE, "case %zu: %s", i, kp_error_name(c.err));
		kp_arena_free(&a);
	}
}

Test(metadata, unknown_tagged_fields_in_a_broker_survive_a_round_trip)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000012 00 00000000"
	                 "03"
	                 "00000001 03 6231 00002384 00 01 05 02 abcd"     /* tag 5, 2 bytes */
	                 "00000002 03 6232 00002385 00 02 03 00 1f 01 ff" /* tags 3 (empty) and 31 */
	                 "00 00000001 01 00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_METADATA, 12, buf, n);
	const struct kp_struct *b0 = item(&m.body->v[KP_METADATA_RESPONSE_BROKERS], 0);
	const struct kp_struct *b1 = item(&m.body->v[KP_METADATA_RESPONSE_BROKERS], 1);
	cr_assert_eq(b0->unknown_cnt, 1);
	cr_assert_eq(b0->unknown[0].tag, 5);
	cr_assert(b0->unknown[0].data.len == 2 && b0->unknown[0].data.ptr[0] == 0xab);
	cr_assert_eq(b1->unknown_cnt, 2);
	cr_assert_eq(b1->unknown[0].data.len, 0);
	cr_assert_eq(b1->unknown[1].tag, 31);
	kp_arena_free(&a);
}

Test(metadata, every_malformation_of_the_vectors_fails_cleanly, .timeout = 120)
{
	size_t n = unhex(v8_response, buf, sizeof(buf));
	check_malformations(false, KP_API_METADATA, 8, buf, n);
	n = unhex(v12_response, buf, sizeof(buf));
	check_malformations(false, KP_API_METADATA, 12, buf, n);
	n = unhex("0003 000c 0000000c 0004 6b636174 00 03 00000000000000000000000000000000 02 74 00"
	          "0102030405060708090a0b0c0d0e0f10 00 00 00 00 00",
	          buf, sizeof(buf));
	check_malformations(true, KP_API_METADATA, 12, buf, n);
}

/* ---- the broker rewrite ------------------------------------------------ */

/*
 * What the proxy does to a Metadata response: decode the header and only
 * the first KP_METADATA_RESPONSE_PREFIX fields, point every broker at a new
 * address, encode that prefix and reference the rest of the input as it is.
 * Returns the new frame body (malloc'd); *rest_at is where the referenced
 * rest starts in the input.
 */
static uint8_t *rewrite_brokers(int16_t ver, const uint8_t *in, size_t len, size_t *outlen, size_t *rest_at)
{
	struct kp_arena a;
	struct kp_cursor c;
	struct kp_response_header h;
	struct kp_writer w;
	bool flexible = kp_api_flexible(kp_api_get(KP_API_METADATA), ver);

	kp_arena_init(&a, 0);
	kp_cursor_init(&c, in, len);
	cr_assert(kp_response_header_parse(&c, kp_response_header_version(KP_API_METADATA, ver), &h));
	struct kp_struct *st = kp_decode(&a, &c, &kp_metadata_response, ver, flexible, KP_METADATA_RESPONSE_PREFIX);
	cr_assert_not_null(st, "v%d: %s reading %s", ver, kp_error_name(c.err), c.err_field);
	cr_assert(kp_cursor_left(&c) > 0, "the prefix must not be the whole message");
	/* Fields after the prefix keep their defaults: they were not read. */
	cr_assert_null(st->v[KP_METADATA_RESPONSE_TOPICS].a.items);

	const struct kp_value *brokers = &st->v[KP_METADATA_RESPONSE_BROKERS];
	for (int32_t i = 0; i < brokers->a.cnt; i++) {
		struct kp_struct *b = brokers->a.items[i].st;
		char *host = kp_arena_alloc(&a, 32);
		int hl = snprintf(host, 32, "proxy-%d.kstretch", (int)b->v[KP_METADATA_BROKER_NODE_ID].i);
		b->v[KP_METADATA_BROKER_HOST].s = (struct kp_span){(const uint8_t *)host, hl};
		b->v[KP_METADATA_BROKER_PORT].i = 19000 + b->v[KP_METADATA_BROKER_NODE_ID].i;
	}

	kp_writer_init(&w);
	kp_response_header_write(&w, &h);
	kp_encode(&w, st, ver, flexible, KP_METADATA_RESPONSE_PREFIX);
	kp_write_ref(&w, in + c.pos, kp_cursor_left(&c));
	*rest_at = c.pos;
	uint8_t *out = kp_writer_flatten(&w, outlen);
	cr_assert_not_null(out);
	/* The unchanged rest was referenced, not copied. */
	kp_writer_finish(&w);
	cr_assert_geq(w.nsegs, 2);
	cr_assert_eq(w.segs[w.nsegs - 1].ref, in + c.pos);
	kp_writer_free(&w);
	kp_arena_free(&a);
	return out;
}

static void check_rewrite(int16_t ver, const char *hex)
{
	static uint8_t in[4096];
	struct kp_arena a;
	size_t n = unhex(hex, in, sizeof(in)), outlen, rest_at;

	kp_arena_init(&a, 0);
	struct kp_message orig = check_roundtrip(&a, false, KP_API_METADATA, ver, in, n);
	uint8_t *out = rewrite_brokers(ver, in, n, &outlen, &rest_at);
	struct kp_message m = check_roundtrip(&a, false, KP_API_METADATA, ver, out, outlen);

	cr_assert_eq(m.resp.correlation_id, orig.resp.correlation_id);
	const struct kp_value *ob = &orig.body->v[KP_METADATA_RESPONSE_BROKERS];
	const struct kp_value *nb = &m.body->v[KP_METADATA_RESPONSE_BROKERS];
	cr_assert_eq(nb->a.cnt, ob->a.cnt);
	for (int32_t i = 0; i < nb->a.cnt; i++) {
		const struct kp_struct *o = item(ob, i), *b = item(nb, i);
		int64_t id = o->v[KP_METADATA_BROKER_NODE_ID].i;
		char want[32];
		snprintf(want, sizeof(want), "proxy-%d.kstretch", (int)id);
		cr_assert_eq(b->v[KP_METADATA_BROKER_NODE_ID].i, id);
		cr_assert(span_is(b->v[KP_METADATA_BROKER_HOST].s, want), "v%d broker %d", ver, (int)id);
		cr_assert_eq(b->v[KP_METADATA_BROKER_PORT].i, 19000 + id);
		struct kp_span orack = o->v[KP_METADATA_BROKER_RACK].s, rack = b->v[KP_METADATA_BROKER_RACK].s;
		cr_assert(orack.len == rack.len &&
		          (rack.len <= 0 || memcmp(orack.ptr, rack.ptr, (size_t)rack.len) == 0));
	}

	/* Everything after Brokers is the original bytes, and decodes to the same topics. */
	cr_assert_leq(n - rest_at, outlen);
	cr_assert(memcmp(out + outlen - (n - rest_at), in + rest_at, n - rest_at) == 0);
	const struct kp_value *ot = &orig.body->v[KP_METADATA_RESPONSE_TOPICS];
	const struct kp_value *nt = &m.body->v[KP_METADATA_RESPONSE_TOPICS];
	cr_assert_eq(nt->a.cnt, ot->a.cnt);
	for (int32_t i = 0; i < nt->a.cnt; i++) {
		const struct kp_struct *o = item(ot, i), *t = item(nt, i);
		struct kp_span on = o->v[KP_METADATA_TOPIC_NAME].s, tn = t->v[KP_METADATA_TOPIC_NAME].s;
		cr_assert(on.len == tn.len && (tn.len <= 0 || memcmp(on.ptr, tn.ptr, (size_t)tn.len) == 0));
		const struct kp_value *op = &o->v[KP_METADATA_TOPIC_PARTITIONS],
		                      *tp = &t->v[KP_METADATA_TOPIC_PARTITIONS];
		cr_assert_eq(tp->a.cnt, op->a.cnt);
		for (int32_t p = 0; p < tp->a.cnt; p++) {
			const struct kp_struct *x = item(op, p), *y = item(tp, p);
			cr_assert_eq(y->v[KP_METADATA_PARTITION_LEADER_ID].i, x->v[KP_METADATA_PARTITION_LEADER_ID].i);
			const struct kp_value *xr = &x->v[KP_METADATA_PARTITION_REPLICA_NODES];
			const struct kp_value *yr = &y->v[KP_METADATA_PARTITION_REPLICA_NODES];
			cr_assert_eq(yr->a.cnt, xr->a.cnt);
			for (int32_t r = 0; r < yr->a.cnt; r++)
				cr_assert_eq(yr->a.items[r].i, xr->a.items[r].i);
			cr_assert_eq(y->v[KP_METADATA_PARTITION_ISR_NODES].a.cnt,
			             x->v[KP_METADATA_PARTITION_ISR_NODES].a.cnt);
		}
	}
	if (orig.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].present) {
		struct kp_span oc = orig.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].s;
		struct kp_span nc = m.body->v[KP_METADATA_RESPONSE_CLUSTER_ID].s;
		cr_assert(oc.len == nc.len && (nc.len <= 0 || memcmp(oc.ptr, nc.ptr, (size_t)nc.len) == 0));
	}
	cr_assert_eq(m.body->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i,
	             orig.body->v[KP_METADATA_RESPONSE_CONTROLLER_ID].i);
	free(out);
	kp_arena_free(&a);
}

Test(metadata, broker_rewrite_reencodes_only_the_prefix)
{
	check_rewrite(0, "00000001 00000002 00000001 0002 6231 00002384 00000002 0002 6232 00002385"
	                 "00000001 0000 0001 74 00000001 0000 00000000 00000002 00000001 00000002 00000001 00000002");
	check_rewrite(8, v8_response);
	check_rewrite(12, v12_response);
	check_rewrite(12, sim_v12_response);
}
