/*
 * regional_auth: a regional node's own SASL server towards its clients
 * (regional_auth.h).
 */
#include "regional_auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "sasl.h"

static void kx_rauth_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void kx_rauth_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

/* The one place a client's authentication state changes. */
static void kx_rauth_set(struct kx_rauth *a, enum kx_rauth_state st)
{
	a->state = st;
	if (st != KX_RAUTH_SCRAM_FINAL && a->scram) {
		kx_scrams_clear(a->scram);
		free(a->scram);
		a->scram = NULL;
	}
}

void kx_rauth_init(struct kx_rauth *a, const struct kx_config *cfg, const struct kx_sasl_users *users)
{
	memset(a, 0, sizeof(*a));
	a->state = users || cfg->sasl_mtls_identity ? KX_RAUTH_HANDSHAKE : KX_RAUTH_OFF;
}

void kx_rauth_free(struct kx_rauth *a)
{
	kx_rauth_set(a, KX_RAUTH_REFUSED);
}

bool kx_rauth_certificate(struct kx_rauth *a, const struct kx_config *cfg, const char *subject)
{
	if (!cfg->sasl_mtls_identity || a->state != KX_RAUTH_HANDSHAKE || !subject[0])
		return false;
	snprintf(a->principal, sizeof(a->principal), "User:%s", subject);
	kx_rauth_set(a, KX_RAUTH_DONE);
	return true;
}

bool kx_rauth_authenticated(const struct kx_rauth *a)
{
	return a->state == KX_RAUTH_OFF || a->state == KX_RAUTH_DONE;
}

bool kx_rauth_allows(const struct kx_rauth *a, int16_t api_key)
{
	if (kx_rauth_authenticated(a))
		return true;
	return api_key == KP_API_API_VERSIONS || api_key == KP_API_SASL_HANDSHAKE ||
	       api_key == KP_API_SASL_AUTHENTICATE;
}

/* The mechanisms offered, in sasl.mechanisms' order of preference. */
static size_t kx_rauth_offered(const struct kx_config *cfg, const char **names)
{
	static const enum kx_sasl_mechanism order[] = {KX_SASL_SCRAM_SHA_512, KX_SASL_SCRAM_SHA_256, KX_SASL_PLAIN};
	size_t n = 0;
	for (size_t i = 0; i < 3; i++)
		if (cfg->sasl_mechanisms & (1u << order[i]))
			names[n++] = kx_sasl_mechanism_name(order[i]);
	return n;
}

static enum kx_rauth_verdict kx_rauth_handshake(struct kx_rauth *a, const struct kx_config *cfg,
                                                const struct kx_sasl_users *users, int16_t ver, struct kp_cursor *c,
                                                struct kp_writer *w, char *why, size_t whylen)
{
	struct kp_span mech;
	const char *names[3];
	size_t n = users ? kx_rauth_offered(cfg, names) : 0;
	if (!kp_sasl_handshake_request_read(c, &mech))
		return KX_RAUTH_MALFORMED;
	if (a->state != KX_RAUTH_HANDSHAKE) {
		kx_rauth_why(why, whylen, "SaslHandshake %s",
		             a->state == KX_RAUTH_OFF    ? "on a node without sasl.users "
		                                           "(clients do not authenticate to it)"
		             : a->state == KX_RAUTH_DONE ? "after authenticating"
		                                         : "twice");
		kp_sasl_handshake_response_write(w, a->error = KP_ERR_ILLEGAL_SASL_STATE, names, n);
		kx_rauth_set(a, KX_RAUTH_REFUSED);
		return KX_RAUTH_ANSWER_AND_CLOSE;
	}
	for (size_t i = 0; i < n; i++) {
		if ((size_t)mech.len == strlen(names[i]) && memcmp(mech.ptr, names[i], (size_t)mech.len) == 0) {
			a->mech = strcmp(names[i], "PLAIN") == 0           ? KX_SASL_PLAIN
			          : strcmp(names[i], "SCRAM-SHA-256") == 0 ? KX_SASL_SCRAM_SHA_256
			                                                   : KX_SASL_SCRAM_SHA_512;
			kp_sasl_handshake_response_write(w, a->error = 0, names, n);
			a->raw = ver == 0; /* v0: the exchange follows in raw frames, not SaslAuthenticate */
			kx_rauth_set(a, KX_RAUTH_AUTHENTICATE);
			return KX_RAUTH_ANSWER;
		}
	}
	char shown[48];
	size_t k = 0;
	for (int32_t i = 0; i < mech.len && k + 1 < sizeof(shown); i++)
		shown[k++] = (char)(mech.ptr[i] >= 0x20 && mech.ptr[i] < 0x7f ? mech.ptr[i] : '?');
	shown[k] = '\0';
	kx_rauth_why(why, whylen, "SaslHandshake for mechanism '%s', which is not offered (sasl.mechanisms)", shown);
	kp_sasl_handshake_response_write(w, a->error = KP_ERR_UNSUPPORTED_SASL_MECHANISM, names, n);
	kx_rauth_set(a, KX_RAUTH_REFUSED);
	return KX_RAUTH_ANSWER_AND_CLOSE;
}

/* An answer to a SaslAuthenticate of version ver, or (ver -1) a raw token after
 * SaslHandshake v0: its bytes alone, and nothing for a refusal (Kafka closes). */
static void kx_rauth_reply(struct kx_rauth *a, int16_t ver, int16_t code, const char *msg, const uint8_t *bytes,
                           size_t n, struct kp_writer *w)
{
	a->error = code;
	if (ver >= 0)
		kp_sasl_authenticate_response_write(w, ver, code, msg, bytes, n, 0);
	else if (code == 0)
		kp_write_raw(w, bytes ? bytes : (const uint8_t *)"", n);
}

/* A refusal: SASL_AUTHENTICATION_FAILED (or ILLEGAL_SASL_STATE) with Kafka's words and why. */
static enum kx_rauth_verdict kx_rauth_refuse(struct kx_rauth *a, int16_t ver, int16_t code, struct kp_writer *w,
                                             const char *why)
{
	char msg[400];
	snprintf(msg, sizeof(msg), "Authentication failed during authentication due to %s", why);
	kx_rauth_reply(a, ver, code, msg, NULL, 0, w);
	kx_rauth_set(a, KX_RAUTH_REFUSED);
	return KX_RAUTH_ANSWER_AND_CLOSE;
}

static enum kx_rauth_verdict kx_rauth_done(struct kx_rauth *a, const char *user, int16_t ver, const uint8_t *bytes,
                                           size_t n, struct kp_writer *w, char *why, size_t whylen)
{
	snprintf(a->principal, sizeof(a->principal), "User:%s", user);
	kx_rauth_why(why, whylen, "authenticated as %s (%s)", user, kx_sasl_mechanism_name(a->mech));
	kx_rauth_reply(a, ver, 0, NULL, bytes, n, w);
	kx_rauth_set(a, KX_RAUTH_DONE);
	return KX_RAUTH_AUTHENTICATED;
}

/* One message of the exchange (auth), answered in SaslAuthenticate version ver (-1: raw). */
static enum kx_rauth_verdict kx_rauth_exchange(struct kx_rauth *a, const struct kx_sasl_users *users, int16_t ver,
                                               struct kp_span auth, struct kp_writer *w, char *why, size_t whylen)
{
	char out[KX_SCRAM_MSG_MAX + 1];
	if (a->state != KX_RAUTH_AUTHENTICATE && a->state != KX_RAUTH_SCRAM_FINAL) {
		kx_rauth_why(why, whylen, "SaslAuthenticate %s",
		             a->state == KX_RAUTH_HANDSHAKE ? "before SaslHandshake"
		             : a->state == KX_RAUTH_OFF     ? "on a node without sasl.users"
		                                            : "after authenticating");
		return kx_rauth_refuse(a, ver, KP_ERR_ILLEGAL_SASL_STATE, w, why);
	}
	if (auth.len > KX_SCRAM_MSG_MAX * 2) {
		kx_rauth_why(why, whylen, "a %s message of %d bytes (at most %d)", kx_sasl_mechanism_name(a->mech),
		             auth.len, KX_SCRAM_MSG_MAX * 2);
		return kx_rauth_refuse(a, ver, KP_ERR_SASL_AUTHENTICATION_FAILED, w, why);
	}
	if (a->mech == KX_SASL_PLAIN) {
		char user[KX_SCRAM_USER_MAX + 1];
		if (!kx_sasl_plain_check(users, auth.ptr, (size_t)auth.len, user, sizeof(user), why, whylen))
			return kx_rauth_refuse(a, ver, KP_ERR_SASL_AUTHENTICATION_FAILED, w, why);
		return kx_rauth_done(a, user, ver, NULL, 0, w, why, whylen);
	}
	enum kx_scram_hash h = a->mech == KX_SASL_SCRAM_SHA_512 ? KX_SCRAM_SHA_512 : KX_SCRAM_SHA_256;
	if (a->state == KX_RAUTH_AUTHENTICATE) {
		a->scram = malloc(sizeof(*a->scram));
		if (!a->scram) {
			kx_rauth_why(why, whylen, "out of memory");
			return kx_rauth_refuse(a, ver, KP_ERR_SASL_AUTHENTICATION_FAILED, w, why);
		}
		if (!kx_scrams_first(a->scram, h, users, auth.ptr, (size_t)auth.len, NULL, out, sizeof(out), why,
		                     whylen))
			return kx_rauth_refuse(a, ver, KP_ERR_SASL_AUTHENTICATION_FAILED, w, why);
		kx_rauth_reply(a, ver, 0, NULL, (const uint8_t *)out, strlen(out), w);
		kx_rauth_set(a, KX_RAUTH_SCRAM_FINAL);
		return KX_RAUTH_ANSWER;
	}
	if (!kx_scrams_final(a->scram, auth.ptr, (size_t)auth.len, out, sizeof(out), why, whylen))
		return kx_rauth_refuse(a, ver, KP_ERR_SASL_AUTHENTICATION_FAILED, w, why);
	char user[KX_SCRAM_USER_MAX + 1];
	snprintf(user, sizeof(user), "%s", a->scram->user);
	return kx_rauth_done(a, user, ver, (const uint8_t *)out, strlen(out), w, why, whylen);
}

static enum kx_rauth_verdict kx_rauth_authenticate(struct kx_rauth *a, const struct kx_sasl_users *users, int16_t ver,
                                                   struct kp_cursor *c, struct kp_writer *w, char *why, size_t whylen)
{
	struct kp_span auth;
	if (!kp_sasl_authenticate_request_read(c, ver, &auth))
		return KX_RAUTH_MALFORMED;
	if (a->raw) {
		kx_rauth_why(why, whylen, "SaslAuthenticate after SaslHandshake v0 (raw SASL frames expected)");
		return kx_rauth_refuse(a, ver, KP_ERR_ILLEGAL_SASL_STATE, w, why);
	}
	return kx_rauth_exchange(a, users, ver, auth, w, why, whylen);
}

bool kx_rauth_raw_next(const struct kx_rauth *a)
{
	return a->raw && (a->state == KX_RAUTH_AUTHENTICATE || a->state == KX_RAUTH_SCRAM_FINAL);
}

enum kx_rauth_verdict kx_rauth_token(struct kx_rauth *a, const struct kx_sasl_users *users, const uint8_t *token,
                                     size_t len, struct kp_writer *w, char *why, size_t whylen)
{
	why[0] = '\0';
	return kx_rauth_exchange(a, users, -1, (struct kp_span){token, (int32_t)len}, w, why, whylen);
}

enum kx_rauth_verdict kx_rauth_answer(struct kx_rauth *a, const struct kx_config *cfg,
                                      const struct kx_sasl_users *users, int16_t api_key, int16_t ver,
                                      const uint8_t *body, size_t len, struct kp_writer *w, struct kp_cursor *c,
                                      char *why, size_t whylen)
{
	kp_cursor_init(c, body, len);
	why[0] = '\0';
	if (api_key == KP_API_SASL_HANDSHAKE)
		return kx_rauth_handshake(a, cfg, users, ver, c, w, why, whylen);
	return kx_rauth_authenticate(a, users, ver, c, w, why, whylen);
}

const char *kx_rauth_error_name(int16_t code)
{
	switch (code) {
	case 0: return "NONE (0)";
	case KP_ERR_UNSUPPORTED_SASL_MECHANISM: return "UNSUPPORTED_SASL_MECHANISM (33)";
	case KP_ERR_ILLEGAL_SASL_STATE: return "ILLEGAL_SASL_STATE (34)";
	case KP_ERR_SASL_AUTHENTICATION_FAILED: return "SASL_AUTHENTICATION_FAILED (58)";
	default: return "an error";
	}
}
