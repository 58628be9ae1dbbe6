/*
 * The API table. Names, version ranges and first flexible versions are from
 * Kafka's message definitions (clients/src/main/resources/common/message/
 * *Request.json: apiKey, validVersions, flexibleVersions), as of Kafka 4.4.0
 * for the newest versions. The oldest stay at what earlier releases defined
 * (Kafka 4 dropped some, e.g. ListOffsets v0), and an API that was removed
 * (LeaderAndIsr, ...) stays listed: older brokers still speak it and its
 * header must still parse.
 */
#include "api.h"

#include <stddef.h>

#include "configs.h"
#include "describeproducers.h"
#include "messages.h"

#define API(k, n, lo, hi, flex)                                                                                        \
	[k] = {.key = k, .name = n, .min_version = lo, .max_version = hi, .flexible_since = flex}
/* A decoded API: its message tables and the versions the codec handles. */
#define DECODED(k, n, lo, hi, flex, req, resp, dlo, dhi)                                                               \
	[k] = {.key = k,                                                                                               \
	       .name = n,                                                                                              \
	       .min_version = lo,                                                                                      \
	       .max_version = hi,                                                                                      \
	       .flexible_since = flex,                                                                                 \
	       .request = req,                                                                                         \
	       .response = resp,                                                                                       \
	       .decode_min = dlo,                                                                                      \
	       .decode_max = dhi}

static const struct kp_api kp_apis[] = {
    DECODED(0, "Produce", 0, 13, 9, &kp_produce_request, &kp_produce_response, 0, 13),
    DECODED(1, "Fetch", 0, 18, 12, &kp_fetch_request, &kp_fetch_response, 0, 18),
    DECODED(2, "ListOffsets", 0, 11, 6, &kp_list_offsets_request, &kp_list_offsets_response, 0, 11),
    DECODED(3, "Metadata", 0, 13, 9, &kp_metadata_request, &kp_metadata_response, 0, 13),
    API(4, "LeaderAndIsr", 0, 7, 4),
    API(5, "StopReplica", 0, 4, 2),
    API(6, "UpdateMetadata", 0, 8, 6),
    API(7, "ControlledShutdown", 0, 3, 3),
    API(8, "OffsetCommit", 0, 10, 8),
    DECODED(9, "OffsetFetch", 0, 10, 6, &kp_offset_fetch_request, &kp_offset_fetch_response, 0, 10),
    DECODED(10, "FindCoordinator", 0, 6, 3, &kp_find_coordinator_request, &kp_find_coordinator_response, 0, 6),
    DECODED(11, "JoinGroup", 0, 9, 6, &kp_join_group_request, NULL, 0, 9),
    API(12, "Heartbeat", 0, 4, 4),
    API(13, "LeaveGroup", 0, 5, 4),
    API(14, "SyncGroup", 0, 5, 4),
    DECODED(15, "DescribeGroups", 0, 6, 5, &kp_describe_groups_request, &kp_describe_groups_response, 0, 6),
    DECODED(16, "ListGroups", 0, 5, 3, &kp_list_groups_request, &kp_list_groups_response, 0, 5),
    DECODED(17, "SaslHandshake", 0, 1, -1, &kp_sasl_handshake_request, &kp_sasl_handshake_response, 0, 1),
    DECODED(18, "ApiVersions", 0, 5, 3, &kp_api_versions_request, &kp_api_versions_response, 0, 5),
    API(19, "CreateTopics", 0, 7, 5),
    API(20, "DeleteTopics", 0, 6, 4),
    DECODED(21, "DeleteRecords", 0, 2, 2, &kp_delete_records_request, &kp_delete_records_response, 0, 2),
    API(22, "InitProducerId", 0, 6, 2),
    DECODED(23, "OffsetForLeaderEpoch", 0, 4, 4, &kp_offset_for_leader_epoch_request,
            &kp_offset_for_leader_epoch_response, 0, 4),
    API(24, "AddPartitionsToTxn", 0, 5, 3),
    API(25, "AddOffsetsToTxn", 0, 4, 3),
    API(26, "EndTxn", 0, 5, 3),
    API(27, "WriteTxnMarkers", 0, 2, 1),
    API(28, "TxnOffsetCommit", 0, 6, 3),
    API(29, "DescribeAcls", 0, 3, 2),
    API(30, "CreateAcls", 0, 3, 2),
    API(31, "DeleteAcls", 0, 3, 2),
    DECODED(32, "DescribeConfigs", 0, 4, 4, &kp_describe_configs_request, &kp_describe_configs_response, 0, 4),
    DECODED(33, "AlterConfigs", 0, 2, 2, &kp_alter_configs_request, &kp_alter_configs_response, 0, 2),
    API(34, "AlterReplicaLogDirs", 0, 2, 2),
    API(35, "DescribeLogDirs", 0, 5, 2),
    DECODED(36, "SaslAuthenticate", 0, 2, 2, &kp_sasl_authenticate_request, &kp_sasl_authenticate_response, 0, 2),
    API(37, "CreatePartitions", 0, 3, 2),
    API(38, "CreateDelegationToken", 0, 3, 2),
    API(39, "RenewDelegationToken", 0, 2, 2),
    API(40, "ExpireDelegationToken", 0, 2, 2),
    API(41, "DescribeDelegationToken", 0, 3, 2),
    DECODED(42, "DeleteGroups", 0, 3, 2, &kp_delete_groups_request, &kp_delete_groups_response, 0, 3),
    API(43, "ElectLeaders", 0, 2, 2),
    DECODED(44, "IncrementalAlterConfigs", 0, 1, 1, &kp_incremental_alter_configs_request,
            &kp_incremental_alter_configs_response, 0, 1),
    API(45, "AlterPartitionReassignments", 0, 1, 0),
    API(46, "ListPartitionReassignments", 0, 0, 0),
    API(47, "OffsetDelete", 0, 0, -1),
    API(48, "DescribeClientQuotas", 0, 1, 1),
    API(49, "AlterClientQuotas", 0, 1, 1),
    API(50, "DescribeUserScramCredentials", 0, 0, 0),
    API(51, "AlterUserScramCredentials", 0, 0, 0),
    API(52, "Vote", 0, 2, 0),
    API(53, "BeginQuorumEpoch", 0, 1, 1),
    API(54, "EndQuorumEpoch", 0, 1, 1),
    API(55, "DescribeQuorum", 0, 2, 0),
    API(56, "AlterPartition", 0, 3, 0),
    API(57, "UpdateFeatures", 0, 2, 0),
    API(58, "Envelope", 0, 0, 0),
    API(59, "FetchSnapshot", 0, 1, 0),
    DECODED(60, "DescribeCluster", 0, 2, 0, &kp_describe_cluster_request, &kp_describe_cluster_response, 0, 2),
    DECODED(61, "DescribeProducers", 0, 0, 0, &kp_describe_producers_request, &kp_describe_producers_response, 0,
            0),
    API(62, "BrokerRegistration", 0, 4, 0),
    API(63, "BrokerHeartbeat", 0, 2, 0),
    API(64, "UnregisterBroker", 0, 0, 0),
    DECODED(65, "DescribeTransactions", 0, 0, 0, &kp_describe_transactions_request, &kp_describe_transactions_response,
            0, 0),
    DECODED(66, "ListTransactions", 0, 2, 0, &kp_list_transactions_request, &kp_list_transactions_response, 0, 2),
    API(67, "AllocateProducerIds", 0, 0, 0),
    DECODED(68, "ConsumerGroupHeartbeat", 0, 1, 0, &kp_consumer_group_heartbeat_request,
            &kp_consumer_group_heartbeat_response, 0, 1),
    DECODED(69, "ConsumerGroupDescribe", 0, 1, 0, &kp_consumer_group_describe_request,
            &kp_consumer_group_describe_response, 0, 1),
    API(70, "ControllerRegistration", 0, 0, 0),
    API(71, "GetTelemetrySubscriptions", 0, 0, 0),
    API(72, "PushTelemetry", 0, 0, 0),
    API(73, "AssignReplicasToDirs", 0, 0, 0),
    API(74, "ListConfigResources", 0, 1, 0),
    API(75, "DescribeTopicPartitions", 0, 0, 0),
    API(76, "ShareGroupHeartbeat", 0, 1, 0),
    API(77, "ShareGroupDescribe", 0, 1, 0),
    API(78, "ShareFetch", 0, 2, 0),
    API(79, "ShareAcknowledge", 0, 2, 0),
    API(80, "AddRaftVoter", 0, 1, 0),
    API(81, "RemoveRaftVoter", 0, 0, 0),
    API(82, "UpdateRaftVoter", 0, 0, 0),
    API(83, "InitializeShareGroupState", 0, 0, 0),
    API(84, "ReadShareGroupState", 0, 0, 0),
    API(85, "WriteShareGroupState", 0, 1, 0),
    API(86, "DeleteShareGroupState", 0, 0, 0),
    API(87, "ReadShareGroupStateSummary", 0, 1, 0),
    API(88, "StreamsGroupHeartbeat", 0, 1, 0),
    API(89, "StreamsGroupDescribe", 0, 1, 0),
    API(90, "DescribeShareGroupOffsets", 0, 1, 0),
    API(91, "AlterShareGroupOffsets", 0, 0, 0),
    API(92, "DeleteShareGroupOffsets", 0, 0, 0),
    API(93, "StreamsGroupTopologyDescriptionUpdate", 0, 0, 0),
    API(94, "UnregisterController", 0, 0, 0),
};

#define KP_API_CNT ((int16_t)(sizeof(kp_apis) / sizeof(kp_apis[0])))

const struct kp_api *kp_api_get(int16_t key)
{
	if (key < 0 || key >= KP_API_CNT || !kp_apis[key].name)
		return NULL;
	return &kp_apis[key];
}

int16_t kp_api_max_key(void)
{
	return KP_API_CNT - 1;
}

bool kp_api_flexible(const struct kp_api *api, int16_t v)
{
	return api && api->flexible_since >= 0 && v >= api->flexible_since;
}

bool kp_api_decodes(const struct kp_api *api, int16_t v, bool request)
{
	if (!api || !(request ? api->request : api->response))
		return false;
	return v >= api->decode_min && v <= api->decode_max;
}

int kp_request_header_version(int16_t key, int16_t v)
{
	if (key == KP_API_CONTROLLED_SHUTDOWN && v == 0)
		return 0;
	return kp_api_flexible(kp_api_get(key), v) ? 2 : 1;
}

int kp_response_header_version(int16_t key, int16_t v)
{
	if (key == KP_API_API_VERSIONS)
		return 0;
	return kp_api_flexible(kp_api_get(key), v) ? 1 : 0;
}
