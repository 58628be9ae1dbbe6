/*
 * DeleteRecords (key 21), versions 0-2; flexible from 2. An admin request
 * that moves partitions' log start offsets; each partition goes to its leader.
 *
 * Request:  Topics [Name string,
 *                   Partitions [PartitionIndex int32, Offset int64]],
 *           TimeoutMs int32.
 * Response: ThrottleTimeMs int32,
 *           Topics [Name string,
 *                   Partitions [PartitionIndex int32, LowWatermark int64,
 *                               ErrorCode int16]].
 */
#include "messages.h"

/* ---- request ----------------------------------------------------------- */

static const struct kp_field partition_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD("Offset", KP_INT64, 0, KP_VMAX),
};
static const struct kp_schema partition = KP_SCHEMA("DeleteRecordsPartition", partition_fields);

static const struct kp_field topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &partition, 0, KP_VMAX),
};
static const struct kp_schema topic = KP_SCHEMA("DeleteRecordsTopic", topic_fields);

static const struct kp_field request_fields[] = {
    KP_STRUCTS("Topics", &topic, 0, KP_VMAX),
    KP_FIELD("TimeoutMs", KP_INT32, 0, KP_VMAX),
};
const struct kp_schema kp_delete_records_request = KP_SCHEMA("DeleteRecordsRequest", request_fields);

/* ---- response ---------------------------------------------------------- */

static const struct kp_field partition_result_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, KP_VMAX),
    KP_FIELD("LowWatermark", KP_INT64, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
};
static const struct kp_schema partition_result = KP_SCHEMA("DeleteRecordsPartitionResult", partition_result_fields);

static const struct kp_field topic_result_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Partitions", &partition_result, 0, KP_VMAX),
};
static const struct kp_schema topic_result = KP_SCHEMA("DeleteRecordsTopicResult", topic_result_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("Topics", &topic_result, 0, KP_VMAX),
};
const struct kp_schema kp_delete_records_response = KP_SCHEMA("DeleteRecordsResponse", response_fields);
