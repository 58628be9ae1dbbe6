/*
 * libFuzzer target: what a regional node reads from a client that has not
 * authenticated yet (proxy/regional_auth.c, proxy/sasl_server.c,
 * protocol/sasl.c). Input: byte 0 picks the SaslAuthenticate version (% 3)
 * and, in its high bits, the mechanism picked by the handshake (0 SCRAM-SHA-512,
 * 1 SCRAM-SHA-256, 2 PLAIN, 3 a mechanism not offered); the rest is cut at 0xff
 * bytes into request bodies: a SaslHandshake body, then SaslAuthenticate
 * bodies, each answered in turn by the same state machine a session uses.
 *
 * Properties: never reads past a body; every body gets either an answer or
 * "malformed" (never both, never neither); a refusal carries its reason and
 * ends the exchange (nothing is answered after it); a client is
 * authenticated only through a proof that verifies against sasl.users (the
 * fuzzer cannot find one: it never knows the server nonce), or PLAIN with
 * the user's password; every answer body re-reads as what was written.
 */
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "regional_auth.h"
#include "sasl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* Appends s to buf (cap bytes with its NUL); aborts when it does not fit. */
static void append(char *buf, size_t cap, const char *s)
{
	size_t have = strlen(buf), n = strlen(s);
	if (have + n + 1 > cap)
		abort();
	memcpy(buf + have, s, n + 1);
}

static struct kx_sasl_users users;
static struct kx_config cfg;

static void fuzz_setup(void)
{
	static bool done;
	if (done)
		return;
	done = true;
	char text[2048] = "", line[512], err[256];
	struct kx_scram_cred c;
	for (int h = 0; h < 2; h++) {
		if (!kx_scram_cred_make(&c, (enum kx_scram_hash)h, "fuzz-secret", 11, (const uint8_t *)"saltsalt", 8,
		                        4096) ||
		    !kx_scram_cred_line("fuzz", &c, line, sizeof(line)))
			abort();
		append(text, sizeof(text), line);
	}
	if (!kx_sasl_users_parse(text, strlen(text), "fuzz", &users, err, sizeof(err)))
		abort();
	cfg.sasl_mechanisms = (1u << KX_SASL_PLAIN) | (1u << KX_SASL_SCRAM_SHA_256) | (1u << KX_SASL_SCRAM_SHA_512);
}

static void check_answer(int16_t api, int16_t ver, struct kp_writer *w, int16_t error)
{
	size_t n;
	uint8_t *b = kp_writer_flatten(w, &n);
	struct kp_cursor c;
	int16_t e;
	kp_cursor_init(&c, b, n);
	if (api == KP_API_SASL_HANDSHAKE) {
		char list[128];
		if (!kp_sasl_handshake_response_read(&c, &e, list, sizeof(list)))
			__builtin_trap();
	} else {
		struct kp_span msg, auth;
		int64_t life;
		if (!kp_sasl_authenticate_response_read(&c, ver, &e, &msg, &auth, &life) || (e != 0) != (msg.len > 0))
			__builtin_trap();
	}
	if (e != error)
		__builtin_trap();
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_setup();
	if (size < 1)
		return 0;
	int16_t ver = (int16_t)(data[0] % 3);
	static const char *const mechs[] = {"SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN", "GSSAPI"};
	const char *mech = mechs[(data[0] >> 2) & 3];
	struct kx_rauth a;
	kx_rauth_init(&a, &cfg, &users);
	struct kp_writer w;
	kp_writer_init(&w);
	/* The handshake: its body from the mechanism, so the exchange gets past it. */
	uint8_t hs[32];
	size_t ml = strlen(mech);
	hs[0] = 0;
	hs[1] = (uint8_t)ml;
	memcpy(hs + 2, mech, ml);
	char why[400];
	struct kp_cursor c;
	enum kx_rauth_verdict v =
	    kx_rauth_answer(&a, &cfg, &users, KP_API_SASL_HANDSHAKE, 1, hs, ml + 2, &w, &c, why, sizeof(why));
	if (v == KX_RAUTH_MALFORMED)
		__builtin_trap();
	check_answer(KP_API_SASL_HANDSHAKE, 1, &w, a.error);
	bool over = v == KX_RAUTH_ANSWER_AND_CLOSE;
	const uint8_t *p = data + 1, *end = data + size;
	for (int round = 0; p <= end && round < 8 && !over; round++) {
		const uint8_t *cut = memchr(p, 0xff, (size_t)(end - p));
		size_t n = cut ? (size_t)(cut - p) : (size_t)(end - p);
		uint8_t *body = malloc(n ? n : 1); /* an exact copy: ASan catches a read past it */
		if (!body)
			abort();
		memcpy(body, p, n);
		kp_writer_reset(&w);
		why[0] = '\0';
		v = kx_rauth_answer(&a, &cfg, &users, KP_API_SASL_AUTHENTICATE, ver, body, n, &w, &c, why, sizeof(why));
		free(body);
		if (v == KX_RAUTH_MALFORMED) {
			if (kp_writer_size(&w) != 0 || kp_cursor_ok(&c))
				__builtin_trap();
			over = true;
		} else {
			check_answer(KP_API_SASL_AUTHENTICATE, ver, &w, a.error);
			if (v == KX_RAUTH_ANSWER_AND_CLOSE && (!why[0] || a.error == 0 || a.state != KX_RAUTH_REFUSED))
				__builtin_trap();
			if (v == KX_RAUTH_AUTHENTICATED &&
			    (a.state != KX_RAUTH_DONE || strcmp(a.principal, "User:fuzz") != 0 ||
			     a.mech != KX_SASL_PLAIN))
				__builtin_trap(); /* only PLAIN with the password can get here */
			over = v != KX_RAUTH_ANSWER;
		}
		if (!cut)
			break;
		p = cut + 1;
	}
	kp_writer_free(&w);
	kx_rauth_free(&a);
	return 0;
}
