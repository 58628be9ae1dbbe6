/*
 * DescribeCluster (key 60, KIP-700), versions 0-2; flexible in all. v1 adds
 * EndpointType (KIP-919: 1 brokers, 2 controllers); v2 (KIP-1073) lets a
 * request ask for fenced brokers and marks them in the response.
 *
 * Request:  IncludeClusterAuthorizedOperations bool,
 *           EndpointType int8 (1+, default 1),
 *           IncludeFencedBrokers bool (2+).
 * Response: ThrottleTimeMs int32, ErrorCode int16,
 *           ErrorMessage string (nullable, default null),
 *           EndpointType int8 (1+, default 1), ClusterId string,
 *           ControllerId int32 (default -1),
 *           Brokers [BrokerId int32, Host string, Port int32,
 *           Rack string (nullable, default null), IsFenced bool (2+)],
 *           ClusterAuthorizedOperations int32 (default INT32_MIN).
 */
#include "messages.h"

static const struct kp_field request_fields[] = {
    KP_FIELD("IncludeClusterAuthorizedOperations", KP_BOOL, 0, KP_VMAX),
    KP_FIELD_D("EndpointType", KP_INT8, 1, KP_VMAX, 1),
    KP_FIELD("IncludeFencedBrokers", KP_BOOL, 2, KP_VMAX),
};
const struct kp_schema kp_describe_cluster_request = KP_SCHEMA("DescribeClusterRequest", request_fields);

static const struct kp_field broker_fields[] = {
    KP_FIELD("BrokerId", KP_INT32, 0, KP_VMAX), /* as Metadata's NodeId */
    KP_FIELD("Host", KP_STRING, 0, KP_VMAX),
    KP_FIELD("Port", KP_INT32, 0, KP_VMAX),
    KP_NULL_STRING("Rack", 0, 0),              /* null: no rack assigned */
    KP_FIELD("IsFenced", KP_BOOL, 2, KP_VMAX), /* KIP-1073 */
};
static const struct kp_schema broker = KP_SCHEMA("DescribeClusterBroker", broker_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 0, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 0, 0),
    KP_FIELD_D("EndpointType", KP_INT8, 1, KP_VMAX, 1),
    KP_FIELD("ClusterId", KP_STRING, 0, KP_VMAX),
    KP_FIELD_D("ControllerId", KP_INT32, 0, KP_VMAX, -1),
    KP_STRUCTS("Brokers", &broker, 0, KP_VMAX),
    KP_FIELD_D("ClusterAuthorizedOperations", KP_INT32, 0, KP_VMAX, INT32_MIN),
};
const struct kp_schema kp_describe_cluster_response = KP_SCHEMA("DescribeClusterResponse", response_fields);
