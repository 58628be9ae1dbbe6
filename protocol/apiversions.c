/*
 * ApiVersions (key 18), versions 0-5; flexible from 3. The response always
 * uses response header v0, even in flexible versions (so a client can read
 * the error of a too-new request). v4 only lets SupportedFeatures.MinVersion
 * be 0 (KAFKA-17011); v5 (KIP-1242, Kafka 4.4) lets the client name the
 * cluster and node it means to reach, and the broker answer
 * REBOOTSTRAP_REQUIRED when they are not its own. The Java 4.4 client sends
 * v5 first.
 *
 * Request:  ClientSoftwareName string (3+), ClientSoftwareVersion string (3+),
 *           ClusterId string (5+, nullable, default null),
 *           NodeId int32 (5+, default -1)
 * Response: ErrorCode int16, ApiKeys [ApiKey int16, MinVersion int16,
 *           MaxVersion int16], ThrottleTimeMs int32 (1+), and tagged (3+):
 *           0 SupportedFeatures [Name, MinVersion, MaxVersion],
 *           1 FinalizedFeaturesEpoch int64 (default -1),
 *           2 FinalizedFeatures [Name, MaxVersionLevel, MinVersionLevel],
 *           3 ZkMigrationReady bool.
 *
 * A broker answers a request of a version it does not know with
 * UNSUPPORTED_VERSION in the v0 layout (its ranges), whatever was asked, so a
 * client can pick a version both sides know: only the leading ErrorCode of an
 * ApiVersions response is in the same place in every answer.
 */
#include "messages.h"

static const struct kp_field request_fields[] = {
    KP_FIELD("ClientSoftwareName", KP_STRING, 3, KP_VMAX),
    KP_FIELD("ClientSoftwareVersion", KP_STRING, 3, KP_VMAX),
    KP_NULL_STRING("ClusterId", 5, 5),
    KP_FIELD_D("NodeId", KP_INT32, 5, KP_VMAX, -1),
};
const struct kp_schema kp_api_versions_request = KP_SCHEMA("ApiVersionsRequest", request_fields);

static const struct kp_field api_version_fields[] = {
    KP_FIELD("ApiKey", KP_INT16, 0, KP_VMAX),
    KP_FIELD("MinVersion", KP_INT16, 0, KP_VMAX),
    KP_FIELD("MaxVersion", KP_INT16, 0, KP_VMAX),
};
static const struct kp_schema api_version = KP_SCHEMA("ApiVersion", api_version_fields);

static const struct kp_field supported_feature_fields[] = {
    KP_FIELD("Name", KP_STRING, 3, KP_VMAX),
    KP_FIELD("MinVersion", KP_INT16, 3, KP_VMAX),
    KP_FIELD("MaxVersion", KP_INT16, 3, KP_VMAX),
};
static const struct kp_schema supported_feature = KP_SCHEMA("SupportedFeatureKey", supported_feature_fields);

static const struct kp_field finalized_feature_fields[] = {
    KP_FIELD("Name", KP_STRING, 3, KP_VMAX),
    KP_FIELD("MaxVersionLevel", KP_INT16, 3, KP_VMAX),
    KP_FIELD("MinVersionLevel", KP_INT16, 3, KP_VMAX),
};
static const struct kp_schema finalized_feature = KP_SCHEMA("FinalizedFeatureKey", finalized_feature_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_STRUCTS("ApiKeys", &api_version, 0, KP_VMAX),
    KP_FIELD("ThrottleTimeMs", KP_INT32, 1, KP_VMAX),
    KP_TAGGED_STRUCTS("SupportedFeatures", &supported_feature, 3, KP_VMAX, 0),
    KP_TAGGED("FinalizedFeaturesEpoch", KP_INT64, 3, KP_VMAX, 1, -1),
    KP_TAGGED_STRUCTS("FinalizedFeatures", &finalized_feature, 3, KP_VMAX, 2),
    KP_TAGGED("ZkMigrationReady", KP_BOOL, 3, KP_VMAX, 3, 0),
};
const struct kp_schema kp_api_versions_response = KP_SCHEMA("ApiVersionsResponse", response_fields);

bool kp_api_versions_error(const uint8_t *body, size_t len, int16_t *error_code, struct kp_cursor *c)
{
	struct kp_cursor own;
	if (!c)
		c = &own;
	kp_cursor_init(c, body, len);
	*error_code = kp_read_i16(c, "ErrorCode");
	return kp_cursor_ok(c);
}
