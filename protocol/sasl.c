/*
 * SaslHandshake (key 17, KIP-43/KIP-152), versions 0-1, never flexible, and
 * SaslAuthenticate (key 36, KIP-152), versions 0-2, flexible from 2.
 * SaslHandshake names the mechanism; with v1 the exchange that follows is
 * carried in SaslAuthenticate requests (v0: raw frames without a Kafka
 * header, which kstretch never speaks itself).
 *
 * SaslHandshake
 *   Request:  Mechanism string.
 *   Response: ErrorCode int16, Mechanisms [string] (the server's enabled ones).
 * SaslAuthenticate
 *   Request:  AuthBytes bytes.
 *   Response: ErrorCode int16, ErrorMessage string (nullable), AuthBytes
 *             bytes, SessionLifetimeMs int64 (1+, KIP-368, default 0).
 */
#include "messages.h"

static const struct kp_field handshake_request_fields[] = {
    KP_FIELD("Mechanism", KP_STRING, 0, KP_VMAX),
};
const struct kp_schema kp_sasl_handshake_request = KP_SCHEMA("SaslHandshakeRequest", handshake_request_fields);

static const struct kp_field handshake_response_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_ARRAY_OF("Mechanisms", KP_STRING, 0, KP_VMAX),
};
const struct kp_schema kp_sasl_handshake_response = KP_SCHEMA("SaslHandshakeResponse", handshake_response_fields);

static const struct kp_field authenticate_request_fields[] = {
    KP_FIELD("AuthBytes", KP_BYTES, 0, KP_VMAX),
};
const struct kp_schema kp_sasl_authenticate_request =
    KP_SCHEMA("SaslAuthenticateRequest", authenticate_request_fields);

static const struct kp_field authenticate_response_fields[] = {
    KP_FIELD("ErrorCode", KP_INT16, 0, KP_VMAX),
    KP_NULL_STRING("ErrorMessage", 0, 0),
    KP_FIELD("AuthBytes", KP_BYTES, 0, KP_VMAX),
    KP_FIELD("SessionLifetimeMs", KP_INT64, 1, KP_VMAX),
};
const struct kp_schema kp_sasl_authenticate_response =
    KP_SCHEMA("SaslAuthenticateResponse", authenticate_response_fields);
