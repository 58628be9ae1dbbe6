/*
 * Produce (key 0), versions 0-13; flexible from 9. Versions 0-2 left Kafka
 * in 4.0 (brokers still list them for librdkafka's sake, KAFKA-18659), and
 * older brokers speak them, so they decode. Version 13 names topics by id.
 * A request with Acks 0 gets no response.
 *
 * Request:  TransactionalId nullable string (3+, default null), Acks int16,
 *           TimeoutMs int32,
 *           TopicData [Name string (0-12) | TopicId uuid (13+),
 *                      PartitionData [Index int32, Records records (nullable)]]
 * Response: Responses [Name string (0-12) | TopicId uuid (13+),
 *                      PartitionResponses [Index int32, ErrorCode int16,
 *                          BaseOffset int64, LogAppendTimeMs int64 (2+, default -1),
 *                          LogStartOffset int64 (5+, default -1),
 *                          RecordErrors (8+) [BatchIndex int32,
 *                                             BatchIndexErrorMessage nullable string],
 *                          ErrorMessage nullable string (8+),
 *                          tagged (10+) 0 CurrentLeader [LeaderId int32, LeaderEpoch int32]]],
 *           ThrottleTimeMs int32 (1+),
 *           tagged (10+) 0 NodeEndpoints [NodeId int32, Host string, Port int32,
 *                                         Rack nullable string].
 */
#include "messages.h"

/* ---- request ----------------------------------------------------------- */

static const struct kp_field partition_produce_data_fields[] = {
    KP_FIELD("Index", KP_INT32, 0, KP_VMAX),
    KP_NFIELD("Records", KP_RECORDS, 0, KP_VMAX, 0),
};
static const struct kp_schema partition_produce_data = KP_SCHEMA("PartitionProduceData", partition_produce_data_fields);

static const struct kp_field topic_produce_data_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, 12),
    KP_FIELD("TopicId", KP_UUID, 13, KP_VMAX),
    KP_STRUCTS("PartitionData", &partition_produce_data, 0, KP_VMAX),
};
static const struct kp_schema topic_produce_data = KP_SCHEMA("TopicProduceData", topic_produce_data_fields);

static const struct kp_field request_fields[] = {
    KP_NULL_STRING("TransactionalId", 3, 3),
    KP_FIELD("Acks", KP_INT16, 0, KP_VMAX),
    KP_FIELD("TimeoutMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("TopicData", &topic_produce_data, 0, KP_VMAX),
};
const struct kp_schema kp_produce_request = KP_SCHEMA("ProduceRequest", request_fields);

/* ---- response ---------------------------------------------------------- */

static const struct kp_field batch_index_error_fields[] = {
    KP_FIELD("BatchIndex", KP_INT32, 8, KP_VMAX),
    KP_NULL_STRING("BatchIndexErrorMessage", 8, 8),
};
static const struct kp_schema batch_index_error = KP_SCHEMA("BatchIndexAndErrorMessage", batch_index_error_fields);

static const struct kp_field leader_id_and_epoch_fields[] = {
    KP_FIELD_D("LeaderId", KP_INT32, 10, KP_VMAX, -1),
    KP_FIELD_D("LeaderEpoch", KP_INT32, 10, KP_VMAX, -1),
};
static const struct kp_schema leader_id_and_epoch = KP_SCHEMA("LeaderIdAndEpoch", leader_id_and_epoch_fields);

static const struct kp_field partition_response_fields[] = {
    KP_FIELD("Index", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_FIELD("BaseOffset", KP_INT64, 0, KP_VMAX),
    KP_FIELD_D("LogAppendTimeMs", KP_INT64, 2, KP_VMAX, -1),
    KP_FIELD_D("LogStartOffset", KP_INT64, 5, KP_VMAX, -1),
    KP_STRUCTS("RecordErrors", &batch_index_error, 8, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 8, 8),
    KP_TAGGED_STRUCT("CurrentLeader", &leader_id_and_epoch, 10, KP_VMAX, 0),
};
static const struct kp_schema partition_response = KP_SCHEMA("PartitionProduceResponse", partition_response_fields);

static const struct kp_field topic_response_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, 12),
    KP_FIELD("TopicId", KP_UUID, 13, KP_VMAX),
    KP_STRUCTS("PartitionResponses", &partition_response, 0, KP_VMAX),
};
static const struct kp_schema topic_response = KP_SCHEMA("TopicProduceResponse", topic_response_fields);

static const struct kp_field node_endpoint_fields[] = {
    KP_FIELD("NodeId", KP_INT32, 10, KP_VMAX),
    KP_FIELD("Host", KP_STRING, 10, KP_VMAX),
    KP_FIELD("Port", KP_INT32, 10, KP_VMAX),
    KP_NULL_STRING("Rack", 10, 10),
};
static const struct kp_schema node_endpoint = KP_SCHEMA("NodeEndpoint", node_endpoint_fields);

static const struct kp_field response_fields[] = {
    KP_STRUCTS("Responses", &topic_response, 0, KP_VMAX),
    KP_FIELD_D("ThrottleTimeMs", KP_INT32, 1, KP_VMAX, 0),
    KP_TAGGED_STRUCTS("NodeEndpoints", &node_endpoint, 10, KP_VMAX, 0),
};
const struct kp_schema kp_produce_response = KP_SCHEMA("ProduceResponse", response_fields);
