/*
 * DescribeCluster: hand-checked vectors, written from Kafka's definitions,
 * at v0, v1 (EndpointType) and v2 (fenced brokers). Every version is
 * flexible, so there is no non-flexible vector. Unknown tagged fields in a
 * broker.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

static const char v1_response[] = "00000001 00"                              /* header v1 */
                                  "00000000"                                 /* ThrottleTimeMs */
                                  "0000"                                     /* ErrorCode */
                                  "00"                                       /* ErrorMessage null */
                                  "02"                                       /* EndpointType: controllers */
                                  "08 636c7573746572"                        /* ClusterId "cluster" */
                                  "00000001"                                 /* ControllerId */
                                  "03"                                       /* Brokers: 2 */
                                  "00000001 03 6231 00002384 05 65752d61 00" /* 1 b1:9092 eu-a */
                                  "00000002 03 6232 00002385 00 00"          /* 2 b2:9093 null rack */
                                  "80000000"                                 /* ClusterAuthorizedOperations */
                                  "00";

Test(describecluster, field_indexes_used_by_routing_match_the_tables)
{
	const struct kp_schema *r = &kp_describe_cluster_response;
	const struct kp_schema *b = r->fields[KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS].sub;
	cr_assert_eq(kp_field_index(r, "ControllerId"), KP_DESCRIBE_CLUSTER_RESPONSE_CONTROLLER_ID);
	cr_assert_eq(kp_field_index(r, "Brokers"), KP_DESCRIBE_CLUSTER_RESPONSE_BROKERS);
	cr_assert_not_null(b);
	cr_assert_eq(kp_field_index(b, "BrokerId"), KP_DESCRIBE_CLUSTER_BROKER_BROKER_ID);
	cr_assert_eq(kp_field_index(b, "Host"), KP_DESCRIBE_CLUSTER_BROKER_HOST);
	cr_assert_eq(kp_field_index(b, "Port"), KP_DESCRIBE_CLUSTER_BROKER_PORT);
	cr_assert_eq(kp_field_index(b, "Rack"), KP_DESCRIBE_CLUSTER_BROKER_RACK);
}

Test(describecluster, v0_brokers_with_racks_and_a_null_rack)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("003c 0000 00000001 0004 6b636174 00 01 00", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(m.api_key, KP_API_DESCRIBE_CLUSTER);
	cr_assert_eq(m.req.header_version, 2, "flexible from v0");
	cr_assert_eq(field(m.body, "IncludeClusterAuthorizedOperations")->i, 1);
	cr_assert_not(field(m.body, "EndpointType")->present);

	n = unhex("00000001 00 00000000 0000 00 08 636c7573746572 00000001"
	          "03 00000001 03 6231 00002384 05 65752d61 00 00000002 03 6232 00002385 00 00"
	          "80000000 00",
	          buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_DESCRIBE_CLUSTER, 0, buf, n);
	cr_assert_eq(field(m.body, "ErrorMessage")->s.len, -1);
	cr_assert(span_is(field(m.body, "ClusterId")->s, "cluster"));
	cr_assert_eq(field(m.body, "EndpointType")->i, 1, "EndpointType defaults to 1 (brokers)");
	const struct kp_value *brokers = field(m.body, "Brokers");
	cr_assert_eq(brokers->a.cnt, 2);
	cr_assert(span_is(field(brokers->a.items[0].st, "Host")->s, "b1"));
	cr_assert(span_is(field(brokers->a.items[0].st, "Rack")->s, "eu-a"));
	cr_assert_eq(field(brokers->a.items[1].st, "Rack")->s.len, -1);
	cr_assert_eq(field(brokers->a.items[1].st, "BrokerId")->i, 2);
	cr_assert_eq(field(m.body, "ClusterAuthorizedOperations")->i, INT32_MIN);
	kp_arena_free(&a);
}

Test(describecluster, v1_adds_the_endpoint_type)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("003c 0001 00000001 0004 6b636174 00 00 02 00", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(field(m.body, "EndpointType")->i, 2);

	n = unhex(v1_response, buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_DESCRIBE_CLUSTER, 1, buf, n);
	cr_assert_eq(field(m.body, "EndpointType")->i, 2);
	cr_assert_eq(field(m.body, "ControllerId")->i, 1);
	cr_assert_not(field(field(m.body, "Brokers")->a.items[0].st, "IsFenced")->present);
	kp_arena_free(&a);
}

Test(describecluster, v2_asks_for_and_marks_fenced_brokers)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("003c 0002 00000001 0004 6b636174 00 00 01 01 00", buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, true, -1, -1, buf, n);
	cr_assert_eq(field(m.body, "IncludeFencedBrokers")->i, 1);

	n = unhex("00000001 00 00000000 0000 00 01 08 636c7573746572 00000001"
	          "03 00000001 03 6231 00002384 00 00 00 00000002 03 6232 00002385 00 01 00" /* 2 is fenced */
	          "80000000 00",
	          buf, sizeof(buf));
	m = check_roundtrip(&a, false, KP_API_DESCRIBE_CLUSTER, 2, buf, n);
	const struct kp_value *brokers = field(m.body, "Brokers");
	cr_assert_eq(field(brokers->a.items[0].st, "IsFenced")->i, 0);
	cr_assert_eq(field(brokers->a.items[1].st, "IsFenced")->i, 1);
	kp_arena_free(&a);
}

Test(describecluster, unknown_tagged_fields_in_a_broker_survive_a_round_trip)
{
	struct kp_arena a;
	kp_arena_init(&a, 0);
	size_t n = unhex("00000001 00 00000000 0000 00 01 08 636c7573746572 00000001"
	                 "02 00000001 03 6231 00002384 00 02 00 01 aa 04 03 010203" /* tags 0 and 4 */
	                 "80000000 00",
	                 buf, sizeof(buf));
	struct kp_message m = check_roundtrip(&a, false, KP_API_DESCRIBE_CLUSTER, 1, buf, n);
	const struct kp_struct *b = field(m.body, "Brokers")->a.items[0].st;
	cr_assert_eq(b->unknown_cnt, 2);
	cr_assert_eq(b->unknown[0].tag, 0);
	cr_assert_eq(b->unknown[1].tag, 4);
	cr_assert_eq(b->unknown[1].data.len, 3);
	kp_arena_free(&a);
}

Test(describecluster, every_malformation_of_the_vectors_fails_cleanly)
{
	size_t n = unhex(v1_response, buf, sizeof(buf));
	check_malformations(false, KP_API_DESCRIBE_CLUSTER, 1, buf, n);
	n = unhex("003c 0002 00000001 0004 6b636174 00 00 01 01 00", buf, sizeof(buf));
	check_malformations(true, KP_API_DESCRIBE_CLUSTER, 2, buf, n);
}
