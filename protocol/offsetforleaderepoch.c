/*
 * OffsetForLeaderEpoch (key 23), versions 0-4; flexible from 4. Kafka 4.0
 * dropped versions 0-1 (KIP-896); older brokers speak them, so they decode.
 * Consumers send it (ReplicaId -1, v3+) to validate their position after a
 * leader change (KIP-320).
 *
 * Request:  ReplicaId int32 (3+, default -2: a "debug" consumer),
 *           Topics [Topic string,
 *                   Partitions [Partition int32,
 *                               CurrentLeaderEpoch int32 (2+, default -1),
 *                               LeaderEpoch int32]].
 * Response: ThrottleTimeMs int32 (2+),
 *           Topics [Topic string,
 *                   Partitions [ErrorCode int16, Partition int32,
 *                               LeaderEpoch int32 (1+, default -1),
 *                               EndOffset int64 (default -1)]].
 *
 * Note the response partition: ErrorCode comes before the partition index.
 */
#include "messages.h"

/* ---- request ----------------------------------------------------------- */

static const struct kp_field partition_fields[] = {
    KP_FIELD("Partition", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("CurrentLeaderEpoch", KP_INT32, 2, KP_VMAX, -1),
    KP_FIELD("LeaderEpoch", KP_INT32, 0, KP_VMAX),
};
static const struct kp_schema partition = KP_SCHEMA("OffsetForLeaderPartition", partition_fields);

static const struct kp_field topic_fields[] = {
    KP_FIELD("Topic", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &partition, 0, KP_VMAX),
};
static const struct kp_schema topic = KP_SCHEMA("OffsetForLeaderTopic", topic_fields);

static const struct kp_field request_fields[] = {
    KP_FIELD_D("ReplicaId", KP_INT32, 3, KP_VMAX, -2),
    KP_STRUCTS("Topics", &topic, 0, KP_VMAX),
};
const struct kp_schema kp_offset_for_leader_epoch_request = KP_SCHEMA("OffsetForLeaderEpochRequest", request_fields);

/* ---- response ---------------------------------------------------------- */

static const struct kp_field epoch_end_offset_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_FIELD("Partition", KP_INT32, 0, KP_VMAX),
    KP_FIELD_D("LeaderEpoch", KP_INT32, 1, KP_VMAX, -1),
    KP_FIELD_D("EndOffset", KP_INT64, 0, KP_VMAX, -1),
};
static const struct kp_schema epoch_end_offset = KP_SCHEMA("EpochEndOffset", epoch_end_offset_fields);

static const struct kp_field topic_result_fields[] = {
    KP_FIELD("Topic", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &epoch_end_offset, 0, KP_VMAX),
};
static const struct kp_schema topic_result = KP_SCHEMA("OffsetForLeaderTopicResult", topic_result_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 2, KP_VMAX),
    KP_STRUCTS("Topics", &topic_result, 0, KP_VMAX),
};
const struct kp_schema kp_offset_for_leader_epoch_response = KP_SCHEMA("OffsetForLeaderEpochResponse", response_fields);
