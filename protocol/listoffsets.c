/*
 * ListOffsets (key 2), versions 0-11; flexible from 6. Kafka 4.0 dropped
 * version 0 (KIP-896), but older brokers speak it, so it decodes. Versions
 * 7-9 and 11 change no field: they only allow new special timestamps (-3 max
 * timestamp, -4 local log start, -5 last tiered, -6 earliest pending upload).
 *
 * Request:  ReplicaId int32, IsolationLevel int8 (2+),
 *           Topics [Name string,
 *                   Partitions [PartitionIndex int32,
 *                               CurrentLeaderEpoch int32 (4+, default -1),
 *                               Timestamp int64,
 *                               MaxNumOffsets int32 (0 only, default 1)]],
 *           TimeoutMs int32 (10+; for offsets in remote storage, KIP-1075).
 * Response: ThrottleTimeMs int32 (2+),
 *           Topics [Name string,
 *                   Partitions [PartitionIndex int32, ErrorCode int16,
 *                               OldStyleOffsets [int64] (0 only),
 *                               Timestamp int64 (1+, default -1),
 *                               Offset int64 (1+, default -1),
 *                               LeaderEpoch int32 (4+, default -1)]].
 *
 * Its partitions are split across brokers and merged back (split.h); the
 * field indexes are in messages.h (checked in test_offset_apis.c).
 */
#include "messages.h"

/* ---- request ----------------------------------------------------------- */

static const struct kp_field partition_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("CurrentLeaderEpoch", KP_INT32, 4, KP_VMAX, -1),
    KP_FIELD("Timestamp", KP_INT64, 0, KP_VMAX),
    KP_FIELD_D("MaxNumOffsets", KP_INT32, 0, 0, 1),
};
static const struct kp_schema partition = KP_SCHEMA("ListOffsetsPartition", partition_fields);

static const struct kp_field topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &partition, 0, KP_VMAX),
};
static const struct kp_schema topic = KP_SCHEMA("ListOffsetsTopic", topic_fields);

static const struct kp_field request_fields[] = {
    KP_FIELD("ReplicaId", KP_INT32, 0, KP_VMAX),
    KP_FIELD("IsolationLevel", KP_INT8, 2, KP_VMAX),
    KP_STRUCTS("Topics", &topic, 0, KP_VMAX),
    KP_FIELD("TimeoutMs", KP_INT32, 10, KP_VMAX),
};
const struct kp_schema kp_list_offsets_request = KP_SCHEMA("ListOffsetsRequest", request_fields);

/* ---- response ---------------------------------------------------------- */

static const struct kp_field partition_response_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_ARRAY_OF("OldStyleOffsets", KP_INT64, 0, 0),
    KP_FIELD_D("Timestamp", KP_INT64, 1, KP_VMAX, -1),
    KP_FIELD_D("Offset", KP_INT64, 1, KP_VMAX, -1),
    KP_FIELD_D("LeaderEpoch", KP_INT32, 4, KP_VMAX, -1),
};
static const struct kp_schema partition_response = KP_SCHEMA("ListOffsetsPartitionResponse", partition_response_fields);

static const struct kp_field topic_response_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &partition_response, 0, KP_VMAX),
};
static const struct kp_schema topic_response = KP_SCHEMA("ListOffsetsTopicResponse", topic_response_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 2, KP_VMAX),
    KP_STRUCTS("Topics", &topic_response, 0, KP_VMAX),
};
const struct kp_schema kp_list_offsets_response = KP_SCHEMA("ListOffsetsResponse", response_fields);
