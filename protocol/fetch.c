/*
 * Fetch (key 1), versions 0-18; flexible from 12. Versions 0-3 left Kafka
 * in 4.0 but older brokers and clients still speak them, so they decode.
 *
 * Request:  tagged (12+) 0 ClusterId nullable string (default null),
 *           ReplicaId int32 (0-14; from 15 it moved into ReplicaState),
 *           tagged (15+) 1 ReplicaState [ReplicaId int32, ReplicaEpoch int64],
 *           MaxWaitMs int32, MinBytes int32, MaxBytes int32 (3+),
 *           IsolationLevel int8 (4+), SessionId int32 (7+),
 *           SessionEpoch int32 (7+),
 *           Topics [Topic string (0-12) | TopicId uuid (13+),
 *                   Partitions [Partition int32, CurrentLeaderEpoch int32 (9+),
 *                               FetchOffset int64, LastFetchedEpoch int32 (12+),
 *                               LogStartOffset int64 (5+),
 *                               PartitionMaxBytes int32,
 *                               tagged 0 ReplicaDirectoryId uuid (17+),
 *                               tagged 1 HighWatermark int64 (18+)]],
 *           ForgottenTopicsData (7+) [Topic (7-12) | TopicId (13+),
 *                                     Partitions [int32]],
 *           RackId string (11+, default "").
 * Response: ThrottleTimeMs int32 (1+), ErrorCode int16 (7+),
 *           SessionId int32 (7+),
 *           Responses [Topic string (0-12) | TopicId uuid (13+),
 *                      Partitions [PartitionIndex int32, ErrorCode int16,
 *                                  HighWatermark int64,
 *                                  LastStableOffset int64 (4+),
 *                                  LogStartOffset int64 (5+),
 *                                  tagged (12+) 0 DivergingEpoch [Epoch, EndOffset],
 *                                  1 CurrentLeader [LeaderId, LeaderEpoch],
 *                                  2 SnapshotId [EndOffset, Epoch],
 *                                  AbortedTransactions (4+, nullable)
 *                                      [ProducerId int64, FirstOffset int64],
 *                                  PreferredReadReplica int32 (11+, default -1),
 *                                  Records records (nullable)]],
 *           tagged (16+) 0 NodeEndpoints [NodeId int32, Host string,
 *                                         Port int32, Rack nullable string].
 * Version 18 changed only the request (the HighWatermark tag, KIP-1166); the
 * response of 17 and 18 is that of 16.
 */
#include "messages.h"

/* ---- request ----------------------------------------------------------- */

static const struct kp_field replica_state_fields[] = {
    KP_FIELD_D("ReplicaId", KP_INT32, 15, KP_VMAX, -1),
    KP_FIELD_D("ReplicaEpoch", KP_INT64, 15, KP_VMAX, -1),
};
static const struct kp_schema replica_state = KP_SCHEMA("ReplicaState", replica_state_fields);

static const struct kp_field fetch_partition_fields[] = {
    KP_FIELD("Partition", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("CurrentLeaderEpoch", KP_INT32, 9, KP_VMAX, -1),
    KP_FIELD("FetchOffset", KP_INT64, 0, KP_VMAX),
    KP_FIELD_D("LastFetchedEpoch", KP_INT32, 12, KP_VMAX, -1),
    KP_FIELD_D("LogStartOffset", KP_INT64, 5, KP_VMAX, -1),
    KP_FIELD("PartitionMaxBytes", KP_INT32, 0, KP_VMAX),
    KP_TAGGED("ReplicaDirectoryId", KP_UUID, 17, KP_VMAX, 0, 0),
    KP_TAGGED("HighWatermark", KP_INT64, 18, KP_VMAX, 1, INT64_MAX),
};
static const struct kp_schema fetch_partition = KP_SCHEMA("FetchPartition", fetch_partition_fields);

static const struct kp_field fetch_topic_fields[] = {
    KP_FIELD("Topic", KP_STRING, 0, 12),
    KP_FIELD("TopicId", KP_UUID, 13, KP_VMAX),
    KP_STRUCTS("Partitions", &fetch_partition, 0, KP_VMAX),
};
static const struct kp_schema fetch_topic = KP_SCHEMA("FetchTopic", fetch_topic_fields);

static const struct kp_field forgotten_topic_fields[] = {
    KP_FIELD("Topic", KP_STRING, 7, 12),
    KP_FIELD("TopicId", KP_UUID, 13, KP_VMAX),
    KP_ARRAY_OF("Partitions", KP_INT32, 7, KP_VMAX),
};
static const struct kp_schema forgotten_topic = KP_SCHEMA("ForgottenTopic", forgotten_topic_fields);

static const struct kp_field request_fields[] = {
    KP_TAGGED_NULL_STRING("ClusterId", 12, 0),
    KP_FIELD_D("ReplicaId", KP_INT32, 0, 14, -1),
    KP_TAGGED_STRUCT("ReplicaState", &replica_state, 15, KP_VMAX, 1),
    KP_FIELD("MaxWaitMs", KP_INT32, 0, KP_VMAX),
    KP_FIELD("MinBytes", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("MaxBytes", KP_INT32, 3, KP_VMAX, INT32_MAX),
    KP_FIELD_D("IsolationLevel", KP_INT8, 4, KP_VMAX, 0),
    KP_FIELD_D("SessionId", KP_INT32, 7, KP_VMAX, 0),
    KP_FIELD_D("SessionEpoch", KP_INT32, 7, KP_VMAX, -1),
    KP_STRUCTS("Topics", &fetch_topic, 0, KP_VMAX),
    KP_STRUCTS("ForgottenTopicsData", &forgotten_topic, 7, KP_VMAX),
    KP_FIELD("RackId", KP_STRING, 11, KP_VMAX),
};
const struct kp_schema kp_fetch_request = KP_SCHEMA("FetchRequest", request_fields);

/* ---- response ---------------------------------------------------------- */

static const struct kp_field epoch_end_offset_fields[] = {
    KP_FIELD_D("Epoch", KP_INT32, 12, KP_VMAX, -1),
    KP_FIELD_D("EndOffset", KP_INT64, 12, KP_VMAX, -1),
};
static const struct kp_schema epoch_end_offset = KP_SCHEMA("EpochEndOffset", epoch_end_offset_fields);

static const struct kp_field leader_id_and_epoch_fields[] = {
    KP_FIELD_D("LeaderId", KP_INT32, 12, KP_VMAX, -1),
    KP_FIELD_D("LeaderEpoch", KP_INT32, 12, KP_VMAX, -1),
};
static const struct kp_schema leader_id_and_epoch = KP_SCHEMA("LeaderIdAndEpoch", leader_id_and_epoch_fields);

static const struct kp_field snapshot_id_fields[] = {
    KP_FIELD_D("EndOffset", KP_INT64, 12, KP_VMAX, -1),
    KP_FIELD_D("Epoch", KP_INT32, 12, KP_VMAX, -1),
};
static const struct kp_schema snapshot_id = KP_SCHEMA("SnapshotId", snapshot_id_fields);

static const struct kp_field aborted_transaction_fields[] = {
    KP_FIELD("ProducerId", KP_INT64, 4, KP_VMAX),
    KP_FIELD("FirstOffset", KP_INT64, 4, KP_VMAX),
};
static const struct kp_schema aborted_transaction = KP_SCHEMA("AbortedTransaction", aborted_transaction_fields);

static const struct kp_field partition_data_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_FIELD("HighWatermark", KP_INT64, 0, KP_VMAX),
    KP_FIELD_D("LastStableOffset", KP_INT64, 4, KP_VMAX, -1),
    KP_FIELD_D("LogStartOffset", KP_INT64, 5, KP_VMAX, -1),
    KP_TAGGED_STRUCT("DivergingEpoch", &epoch_end_offset, 12, KP_VMAX, 0),
    KP_TAGGED_STRUCT("CurrentLeader", &leader_id_and_epoch, 12, KP_VMAX, 1),
    KP_TAGGED_STRUCT("SnapshotId", &snapshot_id, 12, KP_VMAX, 2),
    KP_NSTRUCTS("AbortedTransactions", &aborted_transaction, 4, KP_VMAX, 4),
    KP_FIELD_D("PreferredReadReplica", KP_INT32, 11, KP_VMAX, -1),
    KP_NFIELD("Records", KP_RECORDS, 0, KP_VMAX, 0),
};
static const struct kp_schema partition_data = KP_SCHEMA("PartitionData", partition_data_fields);

static const struct kp_field topic_response_fields[] = {
    KP_FIELD("Topic", KP_STRING, 0, 12),
    KP_FIELD("TopicId", KP_UUID, 13, KP_VMAX),
    KP_STRUCTS("Partitions", &partition_data, 0, KP_VMAX),
};
static const struct kp_schema topic_response = KP_SCHEMA("FetchableTopicResponse", topic_response_fields);

static const struct kp_field node_endpoint_fields[] = {
    KP_FIELD("NodeId", KP_INT32, 16, KP_VMAX),
    KP_FIELD("Host", KP_STRING, 16, KP_VMAX),
    KP_FIELD("Port", KP_INT32, 16, KP_VMAX),
    KP_NULL_STRING("Rack", 16, 16),
};
static const struct kp_schema node_endpoint = KP_SCHEMA("NodeEndpoint", node_endpoint_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 1, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 7, KP_VMAX),
    KP_FIELD_D("SessionId", KP_INT32, 7, KP_VMAX, 0),
    KP_STRUCTS("Responses", &topic_response, 0, KP_VMAX),
    KP_TAGGED_STRUCTS("NodeEndpoints", &node_endpoint, 16, KP_VMAX, 0),
};
const struct kp_schema kp_fetch_response = KP_SCHEMA("FetchResponse", response_fields);
