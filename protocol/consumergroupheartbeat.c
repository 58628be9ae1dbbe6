/*
 * ConsumerGroupHeartbeat (key 68, KIP-848: the consumer group protocol run
 * by the broker), versions 0-1; flexible in all. v1 adds SubscribedTopicRegex
 * (and the member id is then the consumer's own, KIP-1082). A client sends it
 * to its group coordinator (found with FindCoordinator); nothing in it names
 * a broker, so kstretch decodes it for inspection and vectors only.
 *
 * Request:  GroupId string, MemberId string, MemberEpoch int32
 *           (0 join, -1 leave, -2 static member rejoining),
 *           InstanceId string (nullable, default null),
 *           RackId string (nullable, default null),
 *           RebalanceTimeoutMs int32 (default -1),
 *           SubscribedTopicNames [string] (nullable, default null),
 *           SubscribedTopicRegex string (1+, nullable, default null),
 *           ServerAssignor string (nullable, default null),
 *           TopicPartitions [TopicId uuid, Partitions [int32]]
 *           (nullable, default null).
 *           The nullable fields are null when unchanged since the last
 *           heartbeat.
 * Response: ThrottleTimeMs int32, ErrorCode int16,
 *           ErrorMessage string (nullable, default null),
 *           MemberId string (nullable, default null), MemberEpoch int32,
 *           HeartbeatIntervalMs int32,
 *           Assignment (a nullable struct, default null:
 *           TopicPartitions [TopicId uuid, Partitions [int32]]).
 */
#include "messages.h"

static const struct kp_field topic_partitions_fields[] = {
    KP_FIELD("TopicId", KP_UUID, 0, KP_VMAX),
    KP_ARRAY_OF("Partitions", KP_INT32, 0, KP_VMAX),
};
static const struct kp_schema topic_partitions = KP_SCHEMA("TopicPartitions", topic_partitions_fields);

static const struct kp_field request_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("MemberId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("MemberEpoch", KP_INT32, 0, KP_VMAX),
    KP_NULL_STRING("InstanceId", 0, 0),
    KP_NULL_STRING("RackId", 0, 0),
    KP_FIELD_D("RebalanceTimeoutMs", KP_INT32, 0, KP_VMAX, -1),
    KP_NULL_ARRAY_OF("SubscribedTopicNames", KP_STRING, 0, 0),
    KP_NULL_STRING("SubscribedTopicRegex", 1, 1),
    KP_NULL_STRING("ServerAssignor", 0, 0),
    KP_NULL_STRUCTS("TopicPartitions", &topic_partitions, 0, 0),
};
const struct kp_schema kp_consumer_group_heartbeat_request =
    KP_SCHEMA("ConsumerGroupHeartbeatRequest", request_fields);

static const struct kp_field assignment_fields[] = {
    KP_STRUCTS("TopicPartitions", &topic_partitions, 0, KP_VMAX),
};
static const struct kp_schema assignment = KP_SCHEMA("Assignment", assignment_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 0, 0),
    KP_NULL_STRING("MemberId", 0, 0),
    KP_FIELD("MemberEpoch", KP_INT32, 0, KP_VMAX),
    KP_FIELD("HeartbeatIntervalMs", KP_INT32, 0, KP_VMAX),
    KP_NULL_STRUCT("Assignment", &assignment, 0, 0),
};
const struct kp_schema kp_consumer_group_heartbeat_response =
    KP_SCHEMA("ConsumerGroupHeartbeatResponse", response_fields);
