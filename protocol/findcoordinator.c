/*
 * FindCoordinator (key 10), versions 0-6; flexible from 3. Up to v3 a
 * request names one key and the response carries one coordinator; from v4
 * (KIP-699) both are batched. Versions 5 (KIP-890: the client understands
 * TRANSACTION_ABORTABLE) and 6 (KIP-932: KeyType 2, share groups) add no
 * field.
 *
 * Request:  Key string (0-3), KeyType int8 (1+, default 0: group;
 *           1 transaction, 2 share), CoordinatorKeys [string] (4+).
 * Response: ThrottleTimeMs int32 (1+), ErrorCode int16 (0-3),
 *           ErrorMessage string (1-3, nullable), NodeId int32 (0-3),
 *           Host string (0-3), Port int32 (0-3),
 *           Coordinators [Key string, NodeId int32, Host string,
 *           Port int32, ErrorCode int16, ErrorMessage string (nullable)]
 *           (4+).
 *
 * Host is not nullable in Kafka's definition, but an error answer may carry a
 * null one (librdkafka's mock does, and librdkafka reads it): it is decoded
 * as nullable and written back as it came, so the error reaches the client.
 */
#include "messages.h"

static const struct kp_field request_fields[] = {
    KP_FIELD("Key", KP_STRING, 0, 3),
    KP_FIELD("KeyType", KP_INT8, 1, KP_VMAX),
    KP_ARRAY_OF("CoordinatorKeys", KP_STRING, 4, KP_VMAX),
};
const struct kp_schema kp_find_coordinator_request = KP_SCHEMA("FindCoordinatorRequest", request_fields);

static const struct kp_field coordinator_fields[] = {
    KP_FIELD("Key", KP_STRING, 4, KP_VMAX), /* one of the request's CoordinatorKeys */
    KP_FIELD("NodeId", KP_INT32, 4, KP_VMAX),
    KP_NFIELD("Host", KP_STRING, 4, KP_VMAX, 4), /* nullable: see the note at the top */
    KP_FIELD("Port", KP_INT32, 4, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 4, KP_VMAX),
    KP_NFIELD("ErrorMessage", KP_STRING, 4, KP_VMAX, 4), /* null: no error */
};
static const struct kp_schema coordinator = KP_SCHEMA("Coordinator", coordinator_fields);

static const struct kp_field response_fields[] = {
    KP_FIELD("ThrottleTimeMs", KP_INT32, 1, KP_VMAX),
    KP_FIELD("ErrorCode", KP_INT16, 0, 3),
    KP_NFIELD("ErrorMessage", KP_STRING, 1, 3, 1),
    KP_FIELD("NodeId", KP_INT32, 0, 3),
    KP_NFIELD("Host", KP_STRING, 0, 3, 0), /* nullable: see the note at the top */
    KP_FIELD("Port", KP_INT32, 0, 3),
    KP_STRUCTS("Coordinators", &coordinator, 4, KP_VMAX),
};
const struct kp_schema kp_find_coordinator_response = KP_SCHEMA("FindCoordinatorResponse", response_fields);
