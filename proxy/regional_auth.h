/*
 * regional_auth: a regional node authenticates its clients itself (issue 16,
 * "SASL in regional mode"). Its shared upstream connections authenticate as
 * kstretch (upstream.sasl.*, pool.c), so a broker cannot tell clients apart:
 * the node checks who a client is, against sasl.users (SCRAM credentials,
 * sasl_server.h), or takes its verified TLS certificate for it
 * (sasl.mtls.identity), before anything but ApiVersions goes upstream.
 *
 *   accepted ─► HANDSHAKE ──SaslHandshake(mechanism offered)──► AUTHENTICATE
 *      │  (ApiVersions only, else closed)      (not offered: 33, closed)
 *      │                                                        │ SaslAuthenticate
 *      │                             PLAIN right ─► DONE ◄── SCRAM_FINAL (SCRAM first message)
 *      │                                                        │ SaslAuthenticate
 *      │  wrong password / malformed: 58, REFUSED (closed after the answer)
 *      └─ mTLS identity ─► DONE        no sasl.users: OFF (SASL requests answered 34, closed)
 *
 * After SaslHandshake v0 the messages come as raw frames (size, bytes)
 * instead of SaslAuthenticate requests, and are answered the same way.
 *
 * Pure over the bodies: no sockets, no sessions; the caller (regional_session.c)
 * frames the answer, logs and closes.
 */
#ifndef KX_REGIONAL_AUTH_H
#define KX_REGIONAL_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "cursor.h"
#include "sasl_server.h"
#include "writer.h"

enum kx_rauth_state {
	KX_RAUTH_OFF,          /* no client authentication configured */
	KX_RAUTH_HANDSHAKE,    /* must authenticate: ApiVersions and SaslHandshake only */
	KX_RAUTH_AUTHENTICATE, /* a mechanism was picked: its first SaslAuthenticate next */
	KX_RAUTH_SCRAM_FINAL,  /* SCRAM: the client-final message next */
	KX_RAUTH_DONE,         /* authenticated (SASL, or a verified certificate) */
	KX_RAUTH_REFUSED,      /* a refusal was answered: the client closes once it is written */
};

#define KX_RAUTH_PRINCIPAL_MAX 300
/* Frames a client may send before it is authenticated (Kafka's sasl.server.max.receive.size). */
#define KX_RAUTH_MAX_FRAME 524288

struct kx_rauth {
	enum kx_rauth_state state;
	enum kx_sasl_mechanism mech;
	struct kx_scrams *scram;                /* a SCRAM exchange under way */
	int16_t error;                          /* the error code of the last answer (0: none) */
	bool raw;                               /* SaslHandshake v0: the exchange comes in raw frames (size, bytes) */
	char principal[KX_RAUTH_PRINCIPAL_MAX]; /* "User:NAME", set at DONE */
};

enum kx_rauth_verdict {
	KX_RAUTH_ANSWER,           /* answer w's body; the exchange goes on */
	KX_RAUTH_AUTHENTICATED,    /* answer w's body: the client is authenticated now */
	KX_RAUTH_ANSWER_AND_CLOSE, /* answer w's body (a refusal), then close the client */
	KX_RAUTH_MALFORMED,        /* the body does not decode (c says where): close without an answer */
};

/* The state a new client starts in (users NULL: no sasl.users). */
void kx_rauth_init(struct kx_rauth *a, const struct kx_config *cfg, const struct kx_sasl_users *users);

/* A client's verified certificate (subject) authenticates it, when sasl.mtls.identity says so. */
bool kx_rauth_certificate(struct kx_rauth *a, const struct kx_config *cfg, const char *subject);

/* Authenticated, or not asked to (OFF): any request may go. */
bool kx_rauth_authenticated(const struct kx_rauth *a);

/* Whether a request of api_key may go now: before authentication, only ApiVersions and the SASL APIs. */
bool kx_rauth_allows(const struct kx_rauth *a, int16_t api_key);

/*
 * Answers a SaslHandshake or SaslAuthenticate (api_key, version ver) whose
 * body (after the request header) is body[0..len): the response body goes to
 * w, and why says what happened for the log (the refusal's reason, or whom
 * it authenticated).
 */
enum kx_rauth_verdict kx_rauth_answer(struct kx_rauth *a, const struct kx_config *cfg,
                                      const struct kx_sasl_users *users, int16_t api_key, int16_t ver,
                                      const uint8_t *body, size_t len, struct kp_writer *w, struct kp_cursor *c,
                                      char *why, size_t whylen);

/* After SaslHandshake v0 (clients before Kafka 1.0): the next frame is a raw SASL token, not a request. */
bool kx_rauth_raw_next(const struct kx_rauth *a);

/*
 * Answers one raw token (len bytes): w gets the raw token to send back (the
 * caller frames it with its size only). A refusal writes nothing: as Kafka
 * does for v0, the client is closed without an answer.
 */
enum kx_rauth_verdict kx_rauth_token(struct kx_rauth *a, const struct kx_sasl_users *users, const uint8_t *token,
                                     size_t len, struct kp_writer *w, char *why, size_t whylen);

void kx_rauth_free(struct kx_rauth *a);

/* "SASL_AUTHENTICATION_FAILED (58)", ...: an answer's error for the log. */
const char *kx_rauth_error_name(int16_t code);

#endif
