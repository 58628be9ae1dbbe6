/*
 * Metadata (key 3), versions 0-13; flexible from 9. Version 13 adds no
 * request field: it says the client reads the response's top-level
 * ErrorCode (KIP-1102, REBOOTSTRAP_REQUIRED).
 *
 * Request:  Topics [TopicId uuid (10+), Name string (nullable 10+)]
 *           (nullable 1+: null asks for every topic; in v0 an empty array
 *           does), AllowAutoTopicCreation bool (4+, default true),
 *           IncludeClusterAuthorizedOperations bool (8-10),
 *           IncludeTopicAuthorizedOperations bool (8+).
 * Response: ThrottleTimeMs int32 (3+),
 *           Brokers [NodeId int32, Host string, Port int32,
 *           Rack string (1+, nullable, default null)],
 *           ClusterId string (2+, nullable, default null),
 *           ControllerId int32 (1+, default -1),
 *           Topics [ErrorCode int16, Name string (nullable 12+),
 *           TopicId uuid (10+), IsInternal bool (1+),
 *           Partitions [ErrorCode int16, PartitionIndex int32,
 *           LeaderId int32, LeaderEpoch int32 (7+, default -1),
 *           ReplicaNodes [int32], IsrNodes [int32],
 *           OfflineReplicas [int32] (5+)],
 *           TopicAuthorizedOperations int32 (8+, default INT32_MIN)],
 *           ClusterAuthorizedOperations int32 (8-10, default INT32_MIN),
 *           ErrorCode int16 (13+).
 *
 * Brokers is the second field of the response (the first at v0-2), so a
 * rewrite of the broker addresses decodes and re-encodes only the first
 * KP_METADATA_RESPONSE_PREFIX fields and references the rest unchanged.
 * The field indexes routing code uses are in messages.h (test_metadata.c
 * checks each against kp_field_index()).
 */
#include "messages.h"

static const struct kp_field request_topic_fields[] = {
    KP_FIELD("TopicId", KP_UUID, 10, KP_VMAX),
    KP_NFIELD("Name", KP_STRING, 0, KP_VMAX, 10),
};
static const struct kp_schema request_topic = KP_SCHEMA("MetadataRequestTopic", request_topic_fields);

static const struct kp_field request_fields[] = {
    KP_NSTRUCTS("Topics", &request_topic, 0, KP_VMAX, 1),
    KP_FIELD_D("AllowAutoTopicCreation", KP_BOOL, 4, KP_VMAX, 1),
    KP_FIELD("IncludeClusterAuthorizedOperations", KP_BOOL, 8, 10),
    KP_FIELD("IncludeTopicAuthorizedOperations", KP_BOOL, 8, KP_VMAX),
};
const struct kp_schema kp_metadata_request = KP_SCHEMA("MetadataRequest", request_fields);

static const struct kp_field broker_fields[] = {
    KP_FIELD("NodeId", KP_INT32, 0, KP_VMAX),
    KP_FIELD("Host", KP_STRING, 0, KP_VMAX),
    KP_FIELD("Port", KP_INT32, 0, KP_VMAX),
    KP_NULL_STRING("Rack", 1, 1),
};
static const struct kp_schema broker = KP_SCHEMA("MetadataResponseBroker", broker_fields);

static const struct kp_field partition_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD("LeaderId", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("LeaderEpoch", KP_INT32, 7, KP_VMAX, -1), /* KIP-320 */
    KP_ARRAY_OF("ReplicaNodes", KP_INT32, 0, KP_VMAX),
    KP_ARRAY_OF("IsrNodes", KP_INT32, 0, KP_VMAX),
    KP_ARRAY_OF("OfflineReplicas", KP_INT32, 5, KP_VMAX), /* KIP-112 */
};
static const struct kp_schema partition = KP_SCHEMA("MetadataResponsePartition", partition_fields);

static const struct kp_field topic_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NFIELD("Name", KP_STRING, 0, KP_VMAX, 12),
    KP_FIELD("TopicId", KP_UUID, 10, KP_VMAX),
    KP_FIELD("IsInternal", KP_BOOL, 1, KP_VMAX),
    KP_STRUCTS("Partitions", &partition, 0, KP_VMAX),
    KP_FIELD_D("TopicAuthorizedOperations", KP_INT32, 8, KP_VMAX, INT32_MIN),
};
static const struct kp_schema topic = KP_SCHEMA("MetadataResponseTopic", topic_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 3, KP_VMAX),
    KP_STRUCTS("Brokers", &broker, 0, KP_VMAX),
    KP_NULL_STRING("ClusterId", 2, 2),
    KP_FIELD_D("ControllerId", KP_INT32, 1, KP_VMAX, -1),
    KP_STRUCTS("Topics", &topic, 0, KP_VMAX),
    KP_FIELD_D("ClusterAuthorizedOperations", KP_INT32, 8, 10, INT32_MIN),
    KP_FIELD("ErrorCode", KP_INT16, 13, KP_VMAX),
};
const struct kp_schema kp_metadata_response = KP_SCHEMA("MetadataResponse", response_fields);
