/*
 * sasl: the bodies of SaslHandshake (17, v0-1, never flexible) and
 * SaslAuthenticate (36, v0-2, flexible from 2) as kstretch reads and writes
 * them itself: its shared upstream connections authenticate with them
 * (regional mode, upstream.sasl.*), and a regional node answers its clients'
 * (sasl.users). The generic schemas (messages.h) describe the same fields
 * for kstretch-decode and the codec tests; these are the explicit
 * readers/writers of the bytes that matter here, bounds-checked on a
 * cursor (a hostile client's AuthBytes end where its frame does).
 *
 *   SaslHandshake     request:  Mechanism string
 *                     response: ErrorCode int16, Mechanisms [string]
 *   SaslAuthenticate  request:  AuthBytes bytes                        (+ tags, v2)
 *                     response: ErrorCode int16, ErrorMessage string?,
 *                               AuthBytes bytes, SessionLifetimeMs int64 (v1+)  (+ tags, v2)
 */
#ifndef KP_SASL_H
#define KP_SASL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cursor.h"
#include "writer.h"

/* Kafka's error codes of a SASL exchange. */
#define KP_ERR_UNSUPPORTED_SASL_MECHANISM 33
#define KP_ERR_ILLEGAL_SASL_STATE         34
#define KP_ERR_SASL_AUTHENTICATION_FAILED 58

/* Reads a SaslHandshake request body (everything after the request header). */
bool kp_sasl_handshake_request_read(struct kp_cursor *c, struct kp_span *mechanism);
/* Reads a SaslAuthenticate request body of version ver. */
bool kp_sasl_authenticate_request_read(struct kp_cursor *c, int16_t ver, struct kp_span *auth_bytes);

void kp_sasl_handshake_request_write(struct kp_writer *w, const char *mechanism);
void kp_sasl_authenticate_request_write(struct kp_writer *w, int16_t ver, const uint8_t *auth, size_t len);

/* A SaslHandshake response body: error, then the mechanisms enabled (n of them). */
void kp_sasl_handshake_response_write(struct kp_writer *w, int16_t error, const char *const *mechanisms, size_t n);
/* A SaslAuthenticate response body of version ver; message NULL: null. */
void kp_sasl_authenticate_response_write(struct kp_writer *w, int16_t ver, int16_t error, const char *message,
                                         const uint8_t *auth, size_t len, int64_t session_lifetime_ms);

/* Reads a SaslHandshake response body: its error and its mechanisms as
 * "A, B" (printable ASCII, others as '?', cut to fit cap). */
bool kp_sasl_handshake_response_read(struct kp_cursor *c, int16_t *error, char *mechanisms, size_t cap);
/* Reads a SaslAuthenticate response body of version ver. */
bool kp_sasl_authenticate_response_read(struct kp_cursor *c, int16_t ver, int16_t *error, struct kp_span *message,
                                        struct kp_span *auth_bytes, int64_t *session_lifetime_ms);

#endif
