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

#include <string.h>

#include "sasl.h"

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

/* ---- explicit readers and writers (sasl.h) ---------------------------------- */

/* A flexible body's tagged fields: skipped (none is defined for these APIs). */
static bool kp_sasl_skip_tags(struct kp_cursor *c)
{
	uint32_t n = kp_read_uvarint(c, "_tagged_fields");
	for (uint32_t i = 0; i < n && kp_cursor_ok(c); i++) {
		kp_read_uvarint(c, "_tagged_fields tag");
		uint32_t size = kp_read_uvarint(c, "_tagged_fields size");
		kp_read_raw(c, size, "_tagged_fields data");
	}
	return kp_cursor_ok(c);
}

/* The body ends where its frame does. */
static bool kp_sasl_end(struct kp_cursor *c)
{
	if (kp_cursor_ok(c) && kp_cursor_left(c) != 0)
		kp_cursor_fail(c, KP_ERR_TRAILING, "end of body");
	return kp_cursor_ok(c);
}

bool kp_sasl_handshake_request_read(struct kp_cursor *c, struct kp_span *mechanism)
{
	*mechanism = kp_read_string(c, false, false, "Mechanism");
	return kp_sasl_end(c);
}

bool kp_sasl_authenticate_request_read(struct kp_cursor *c, int16_t ver, struct kp_span *auth_bytes)
{
	bool flex = ver >= 2;
	*auth_bytes = kp_read_bytes(c, flex, false, "AuthBytes");
	if (flex)
		kp_sasl_skip_tags(c);
	return kp_sasl_end(c);
}

static struct kp_span kp_sasl_cstr(const char *s)
{
	return (struct kp_span){(const uint8_t *)s, (int32_t)strlen(s)};
}

void kp_sasl_handshake_request_write(struct kp_writer *w, const char *mechanism)
{
	kp_write_string(w, false, kp_sasl_cstr(mechanism));
}

void kp_sasl_authenticate_request_write(struct kp_writer *w, int16_t ver, const uint8_t *auth, size_t len)
{
	bool flex = ver >= 2;
	kp_write_bytes(w, flex, (struct kp_span){auth, (int32_t)len}, false);
	if (flex)
		kp_write_uvarint(w, 0);
}

void kp_sasl_handshake_response_write(struct kp_writer *w, int16_t error, const char *const *mechanisms, size_t n)
{
	kp_write_i16(w, error);
	kp_write_len(w, false, true, (int32_t)n);
	for (size_t i = 0; i < n; i++)
		kp_write_string(w, false, kp_sasl_cstr(mechanisms[i]));
}

void kp_sasl_authenticate_response_write(struct kp_writer *w, int16_t ver, int16_t error, const char *message,
                                         const uint8_t *auth, size_t len, int64_t session_lifetime_ms)
{
	bool flex = ver >= 2;
	kp_write_i16(w, error);
	kp_write_string(w, flex, message ? kp_sasl_cstr(message) : (struct kp_span){NULL, -1});
	kp_write_bytes(w, flex, (struct kp_span){auth ? auth : (const uint8_t *)"", (int32_t)len}, false);
	if (ver >= 1)
		kp_write_i64(w, session_lifetime_ms);
	if (flex)
		kp_write_uvarint(w, 0);
}

bool kp_sasl_handshake_response_read(struct kp_cursor *c, int16_t *error, char *mechanisms, size_t cap)
{
	size_t at = 0;
	*error = kp_read_i16(c, "ErrorCode");
	int32_t n = kp_read_array_len(c, false, false, 2, "Mechanisms");
	if (cap)
		mechanisms[0] = '\0';
	for (int32_t i = 0; i < n && kp_cursor_ok(c); i++) {
		struct kp_span m = kp_read_string(c, false, false, "Mechanisms");
		for (int32_t k = i ? -2 : 0; k < m.len && kp_cursor_ok(c); k++) {
			uint8_t ch = k == -2 ? (uint8_t)',' : k == -1 ? (uint8_t)' ' : m.ptr[k];
			if (at + 1 < cap)
				mechanisms[at++] = (char)(ch >= 0x20 && ch < 0x7f ? ch : (uint8_t)'?');
		}
		if (cap)
			mechanisms[at] = '\0';
	}
	return kp_sasl_end(c);
}

bool kp_sasl_authenticate_response_read(struct kp_cursor *c, int16_t ver, int16_t *error, struct kp_span *message,
                                        struct kp_span *auth_bytes, int64_t *session_lifetime_ms)
{
	bool flex = ver >= 2;
	*error = kp_read_i16(c, "ErrorCode");
	*message = kp_read_string(c, flex, true, "ErrorMessage");
	*auth_bytes = kp_read_bytes(c, flex, false, "AuthBytes");
	*session_lifetime_ms = ver >= 1 ? kp_read_i64(c, "SessionLifetimeMs") : 0;
	if (flex)
		kp_sasl_skip_tags(c);
	return kp_sasl_end(c);
}
