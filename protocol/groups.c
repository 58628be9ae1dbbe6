/*
 * The group and transaction APIs that name several keys in one request, or
 * none (mode=regional splits the first by coordinator and fans the second
 * out to every broker: keysplit.h). Layouts from Kafka 4.4's message
 * definitions.
 *
 * DescribeGroups (15), 0-6, flexible 5+:
 *   Request:  Groups [string], IncludeAuthorizedOperations bool (3+).
 *   Response: ThrottleTimeMs int32 (1+), Groups [ErrorCode int16,
 *             ErrorMessage string (6+, nullable, default null), GroupId string,
 *             GroupState string, ProtocolType string, ProtocolData string,
 *             Members [MemberId string, GroupInstanceId string (4+, nullable,
 *             default null), ClientId string, ClientHost string,
 *             MemberMetadata bytes, MemberAssignment bytes],
 *             AuthorizedOperations int32 (3+, default INT32_MIN)].
 * ListGroups (16), 0-5, flexible 3+:
 *   Request:  StatesFilter [string] (4+), TypesFilter [string] (5+).
 *   Response: ThrottleTimeMs int32 (1+), ErrorCode int16, Groups [GroupId
 *             string, ProtocolType string, GroupState string (4+), GroupType
 *             string (5+)].
 * DeleteGroups (42), 0-3, flexible 2+:
 *   Request:  GroupsNames [string].
 *   Response: ThrottleTimeMs int32, Results [GroupId string, ErrorCode int16,
 *             ErrorMessage string (3+, nullable, default null)].
 * OffsetFetch (9), 0-10, flexible 6+ (0-7 name one group, 8+ several):
 *   Request:  GroupId string (0-7), Topics [Name string, PartitionIndexes
 *             [int32]] (0-7, nullable 2+: all topics), Groups [GroupId string,
 *             MemberId string (9+, nullable, default null), MemberEpoch int32
 *             (9+, default -1), Topics [Name string (8-9), TopicId uuid (10+),
 *             PartitionIndexes [int32]] (nullable)] (8+), RequireStable bool (7+).
 *   Response: ThrottleTimeMs int32 (3+), Topics [Name string, Partitions
 *             [PartitionIndex int32, CommittedOffset int64,
 *             CommittedLeaderEpoch int32 (5+, default -1), Metadata string
 *             (nullable), ErrorCode int16]] (0-7), ErrorCode int16 (2-7),
 *             Groups [GroupId string, Topics [Name string (8-9), TopicId uuid
 *             (10+), Partitions [PartitionIndex int32, CommittedOffset int64,
 *             CommittedLeaderEpoch int32 (default -1), Metadata string
 *             (nullable), ErrorCode int16]], ErrorCode int16] (8+).
 * ConsumerGroupDescribe (69), 0-1, flexible in all:
 *   Request:  GroupIds [string], IncludeAuthorizedOperations bool.
 *   Response: ThrottleTimeMs int32, Groups [ErrorCode int16, ErrorMessage
 *             string (nullable, default null), GroupId string, GroupState
 *             string, GroupEpoch int32, AssignmentEpoch int32, AssignorName
 *             string, Members [MemberId string, InstanceId string (nullable),
 *             RackId string (nullable), MemberEpoch int32, ClientId string,
 *             ClientHost string, SubscribedTopicNames [string],
 *             SubscribedTopicRegex string (nullable), Assignment,
 *             TargetAssignment, MemberType int8 (1+, default -1)],
 *             AuthorizedOperations int32 (default INT32_MIN)];
 *             an Assignment is TopicPartitions [TopicId uuid, TopicName
 *             string, Partitions [int32]].
 * DescribeTransactions (65), 0, flexible:
 *   Request:  TransactionalIds [string].
 *   Response: ThrottleTimeMs int32, TransactionStates [ErrorCode int16,
 *             TransactionalId string, TransactionState string,
 *             TransactionTimeoutMs int32, TransactionStartTimeMs int64,
 *             ProducerId int64, ProducerEpoch int16, Topics [Topic string,
 *             Partitions [int32]]].
 * ListTransactions (66), 0-2, flexible:
 *   Request:  StateFilters [string], ProducerIdFilters [int64],
 *             DurationFilter int64 (1+, default -1), TransactionalIdPattern
 *             string (2+, nullable, default null).
 *   Response: ThrottleTimeMs int32, ErrorCode int16, UnknownStateFilters
 *             [string], TransactionStates [TransactionalId string, ProducerId
 *             int64, TransactionState string].
 */
#include "messages.h"

/* ---- DescribeGroups ---------------------------------------------------------- */

static const struct kp_field dg_request_fields[] = {
    KP_ARRAY_OF("Groups", KP_STRING, 0, KP_VMAX),
    KP_FIELD("IncludeAuthorizedOperations", KP_BOOL, 3, KP_VMAX),
};
const struct kp_schema kp_describe_groups_request = KP_SCHEMA("DescribeGroupsRequest", dg_request_fields);

static const struct kp_field dg_member_fields[] = {
    KP_FIELD("MemberId", KP_STRING, 0, KP_VMAX),      KP_NULL_STRING("GroupInstanceId", 4, 4),
    KP_FIELD("ClientId", KP_STRING, 0, KP_VMAX),      KP_FIELD("ClientHost", KP_STRING, 0, KP_VMAX),
    KP_FIELD("MemberMetadata", KP_BYTES, 0, KP_VMAX), KP_FIELD("MemberAssignment", KP_BYTES, 0, KP_VMAX),
};
static const struct kp_schema dg_member = KP_SCHEMA("DescribedGroupMember", dg_member_fields);

static const struct kp_field dg_group_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 6, 6),
    KP_FIELD("GroupId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("GroupState", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ProtocolType", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ProtocolData", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Members", &dg_member, 0, KP_VMAX),
    KP_FIELD_D("AuthorizedOperations", KP_INT32, 3, KP_VMAX, INT32_MIN),
};
static const struct kp_schema dg_group = KP_SCHEMA("DescribedGroup", dg_group_fields);

static const struct kp_field dg_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 1, KP_VMAX),
    KP_STRUCTS("Groups", &dg_group, 0, KP_VMAX),
};
const struct kp_schema kp_describe_groups_response = KP_SCHEMA("DescribeGroupsResponse", dg_response_fields);

/* ---- ListGroups -------------------------------------------------------------- */

static const struct kp_field lg_request_fields[] = {
    KP_ARRAY_OF("StatesFilter", KP_STRING, 4, KP_VMAX),
    KP_ARRAY_OF("TypesFilter", KP_STRING, 5, KP_VMAX),
};
const struct kp_schema kp_list_groups_request = KP_SCHEMA("ListGroupsRequest", lg_request_fields);

static const struct kp_field lg_group_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ProtocolType", KP_STRING, 0, KP_VMAX),
    KP_FIELD("GroupState", KP_STRING, 4, KP_VMAX),
    KP_FIELD("GroupType", KP_STRING, 5, KP_VMAX),
};
static const struct kp_schema lg_group = KP_SCHEMA("ListedGroup", lg_group_fields);

static const struct kp_field lg_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 1, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_STRUCTS("Groups", &lg_group, 0, KP_VMAX),
};
const struct kp_schema kp_list_groups_response = KP_SCHEMA("ListGroupsResponse", lg_response_fields);

/* ---- DeleteGroups ------------------------------------------------------------ */

static const struct kp_field del_request_fields[] = {
    KP_ARRAY_OF("GroupsNames", KP_STRING, 0, KP_VMAX),
};
const struct kp_schema kp_delete_groups_request = KP_SCHEMA("DeleteGroupsRequest", del_request_fields);

static const struct kp_field del_result_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 3, 3),
};
static const struct kp_schema del_result = KP_SCHEMA("DeletableGroupResult", del_result_fields);

static const struct kp_field del_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("Results", &del_result, 0, KP_VMAX),
};
const struct kp_schema kp_delete_groups_response = KP_SCHEMA("DeleteGroupsResponse", del_response_fields);

/* ---- OffsetFetch ------------------------------------------------------------- */

static const struct kp_field of_req_topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, 7),
    KP_ARRAY_OF("PartitionIndexes", KP_INT32, 0, 7),
};
static const struct kp_schema of_req_topic = KP_SCHEMA("OffsetFetchRequestTopic", of_req_topic_fields);

static const struct kp_field of_req_group_topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 8, 9),
    KP_FIELD("TopicId", KP_UUID, 10, KP_VMAX),
    KP_ARRAY_OF("PartitionIndexes", KP_INT32, 8, KP_VMAX),
};
static const struct kp_schema of_req_group_topic = KP_SCHEMA("OffsetFetchRequestTopics", of_req_group_topic_fields);

static const struct kp_field of_req_group_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 8, KP_VMAX),
    KP_NULL_STRING("MemberId", 9, 9),
    KP_FIELD_D("MemberEpoch", KP_INT32, 9, KP_VMAX, -1),
    KP_NSTRUCTS("Topics", &of_req_group_topic, 8, KP_VMAX, 8),
};
static const struct kp_schema of_req_group = KP_SCHEMA("OffsetFetchRequestGroup", of_req_group_fields);

static const struct kp_field of_request_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 0, 7),
    KP_NSTRUCTS("Topics", &of_req_topic, 0, 7, 2),
    KP_STRUCTS("Groups", &of_req_group, 8, KP_VMAX),
    KP_FIELD("RequireStable", KP_BOOL, 7, KP_VMAX),
};
const struct kp_schema kp_offset_fetch_request = KP_SCHEMA("OffsetFetchRequest", of_request_fields);

static const struct kp_field of_resp_part_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 0, 7),
    KP_FIELD("CommittedOffset", KP_INT64, 0, 7),
    KP_FIELD_D("CommittedLeaderEpoch", KP_INT32, 5, 7, -1),
    KP_NFIELD("Metadata", KP_STRING, 0, 7, 0),
    KP_FIELD("ErrorCode", KP_INT16, 0, 7),
};
static const struct kp_schema of_resp_part = KP_SCHEMA("OffsetFetchResponsePartition", of_resp_part_fields);

static const struct kp_field of_resp_topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 0, 7),
    KP_STRUCTS("Partitions", &of_resp_part, 0, 7),
};
static const struct kp_schema of_resp_topic = KP_SCHEMA("OffsetFetchResponseTopic", of_resp_topic_fields);

static const struct kp_field of_resp_group_part_fields[] = {
    KP_FIELD("PartitionIndex", KP_INT32, 8, KP_VMAX),
    KP_FIELD("CommittedOffset", KP_INT64, 8, KP_VMAX),
    KP_FIELD_D("CommittedLeaderEpoch", KP_INT32, 8, KP_VMAX, -1),
    KP_NFIELD("Metadata", KP_STRING, 8, KP_VMAX, 8),
    KP_FIELD("ErrorCode", KP_INT16, 8, KP_VMAX),
};
static const struct kp_schema of_resp_group_part =
    KP_SCHEMA("OffsetFetchResponsePartitions", of_resp_group_part_fields);

static const struct kp_field of_resp_group_topic_fields[] = {
    KP_FIELD("Name", KP_STRING, 8, 9),
    KP_FIELD("TopicId", KP_UUID, 10, KP_VMAX),
    KP_STRUCTS("Partitions", &of_resp_group_part, 8, KP_VMAX),
};
static const struct kp_schema of_resp_group_topic = KP_SCHEMA("OffsetFetchResponseTopics", of_resp_group_topic_fields);

static const struct kp_field of_resp_group_fields[] = {
    KP_FIELD("GroupId", KP_STRING, 8, KP_VMAX),
    KP_STRUCTS("Topics", &of_resp_group_topic, 8, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 8, KP_VMAX),
};
static const struct kp_schema of_resp_group = KP_SCHEMA("OffsetFetchResponseGroup", of_resp_group_fields);

static const struct kp_field of_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 3, KP_VMAX),
    KP_STRUCTS("Topics", &of_resp_topic, 0, 7),
    KP_FIELD("ErrorCode", KP_INT16, 2, 7),
    KP_STRUCTS("Groups", &of_resp_group, 8, KP_VMAX),
};
const struct kp_schema kp_offset_fetch_response = KP_SCHEMA("OffsetFetchResponse", of_response_fields);

/* ---- ConsumerGroupDescribe --------------------------------------------------- */

static const struct kp_field cgd_request_fields[] = {
    KP_ARRAY_OF("GroupIds", KP_STRING, 0, KP_VMAX),
    KP_FIELD("IncludeAuthorizedOperations", KP_BOOL, 0, KP_VMAX),
};
const struct kp_schema kp_consumer_group_describe_request =
    KP_SCHEMA("ConsumerGroupDescribeRequest", cgd_request_fields);

static const struct kp_field cgd_topic_partitions_fields[] = {
    KP_FIELD("TopicId", KP_UUID, 0, KP_VMAX),
    KP_FIELD("TopicName", KP_STRING, 0, KP_VMAX),
    KP_ARRAY_OF("Partitions", KP_INT32, 0, KP_VMAX),
};
static const struct kp_schema cgd_topic_partitions = KP_SCHEMA("TopicPartitions", cgd_topic_partitions_fields);

static const struct kp_field cgd_assignment_fields[] = {
    KP_STRUCTS("TopicPartitions", &cgd_topic_partitions, 0, KP_VMAX),
};
static const struct kp_schema cgd_assignment = KP_SCHEMA("Assignment", cgd_assignment_fields);

/* A struct field that is always there (no null marker). */
#define KP_ONE_STRUCT(n, sub_, s)                                                                                      \
	{                                                                                                              \
		.name = (n), .type = KP_STRUCT, .since = (s), .until = KP_VMAX, .null_since = -1, .tag = -1,           \
		.sub = (sub_)                                                                                          \
	}

static const struct kp_field cgd_member_fields[] = {
    KP_FIELD("MemberId", KP_STRING, 0, KP_VMAX),
    KP_NULL_STRING("InstanceId", 0, 0),
    KP_NULL_STRING("RackId", 0, 0),
    KP_FIELD("MemberEpoch", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ClientId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ClientHost", KP_STRING, 0, KP_VMAX),
    KP_ARRAY_OF("SubscribedTopicNames", KP_STRING, 0, KP_VMAX),
    KP_NULL_STRING("SubscribedTopicRegex", 0, 0),
    KP_ONE_STRUCT("Assignment", &cgd_assignment, 0),
    KP_ONE_STRUCT("TargetAssignment", &cgd_assignment, 0),
    KP_FIELD_D("MemberType", KP_INT8, 1, KP_VMAX, -1),
};
static const struct kp_schema cgd_member = KP_SCHEMA("Member", cgd_member_fields);

static const struct kp_field cgd_group_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 0, 0),
    KP_FIELD("GroupId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("GroupState", KP_STRING, 0, KP_VMAX),
    KP_FIELD("GroupEpoch", KP_INT32, 0, KP_VMAX),
    KP_FIELD("AssignmentEpoch", KP_INT32, 0, KP_VMAX),
    KP_FIELD("AssignorName", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("Members", &cgd_member, 0, KP_VMAX),
    KP_FIELD_D("AuthorizedOperations", KP_INT32, 0, KP_VMAX, INT32_MIN),
};
static const struct kp_schema cgd_group = KP_SCHEMA("DescribedGroup", cgd_group_fields);

static const struct kp_field cgd_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("Groups", &cgd_group, 0, KP_VMAX),
};
const struct kp_schema kp_consumer_group_describe_response =
    KP_SCHEMA("ConsumerGroupDescribeResponse", cgd_response_fields);

/* ---- DescribeTransactions ---------------------------------------------------- */

static const struct kp_field dt_request_fields[] = {
    KP_ARRAY_OF("TransactionalIds", KP_STRING, 0, KP_VMAX),
};
const struct kp_schema kp_describe_transactions_request = KP_SCHEMA("DescribeTransactionsRequest", dt_request_fields);

static const struct kp_field dt_topic_fields[] = {
    KP_FIELD("Topic", KP_STRING, 0, KP_VMAX),
    KP_ARRAY_OF("Partitions", KP_INT32, 0, KP_VMAX),
};
static const struct kp_schema dt_topic = KP_SCHEMA("TopicData", dt_topic_fields);

static const struct kp_field dt_state_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_FIELD("TransactionalId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("TransactionState", KP_STRING, 0, KP_VMAX),
    KP_FIELD("TransactionTimeoutMs", KP_INT32, 0, KP_VMAX),
    KP_FIELD("TransactionStartTimeMs", KP_INT64, 0, KP_VMAX),
    KP_FIELD("ProducerId", KP_INT64, 0, KP_VMAX),
    KP_FIELD("ProducerEpoch", KP_INT16, 0, KP_VMAX),
    KP_STRUCTS("Topics", &dt_topic, 0, KP_VMAX),
};
static const struct kp_schema dt_state = KP_SCHEMA("TransactionState", dt_state_fields);

static const struct kp_field dt_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_STRUCTS("TransactionStates", &dt_state, 0, KP_VMAX),
};
const struct kp_schema kp_describe_transactions_response =
    KP_SCHEMA("DescribeTransactionsResponse", dt_response_fields);

/* ---- ListTransactions -------------------------------------------------------- */

static const struct kp_field lt_request_fields[] = {
    KP_ARRAY_OF("StateFilters", KP_STRING, 0, KP_VMAX),
    KP_ARRAY_OF("ProducerIdFilters", KP_INT64, 0, KP_VMAX),
    KP_FIELD_D("DurationFilter", KP_INT64, 1, KP_VMAX, -1),
    KP_NULL_STRING("TransactionalIdPattern", 2, 2),
};
const struct kp_schema kp_list_transactions_request = KP_SCHEMA("ListTransactionsRequest", lt_request_fields);

static const struct kp_field lt_state_fields[] = {
    KP_FIELD("TransactionalId", KP_STRING, 0, KP_VMAX),
    KP_FIELD("ProducerId", KP_INT64, 0, KP_VMAX),
    KP_FIELD("TransactionState", KP_STRING, 0, KP_VMAX),
};
static const struct kp_schema lt_state = KP_SCHEMA("TransactionState", lt_state_fields);

static const struct kp_field lt_response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_ARRAY_OF("UnknownStateFilters", KP_STRING, 0, KP_VMAX),
    KP_STRUCTS("TransactionStates", &lt_state, 0, KP_VMAX),
};
const struct kp_schema kp_list_transactions_response = KP_SCHEMA("ListTransactionsResponse", lt_response_fields);
