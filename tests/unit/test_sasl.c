/*
 * SaslHandshake (17) and SaslAuthenticate (36): hand-written vectors from
 * Kafka's message definitions, each decoded, re-encoded byte for byte, and
 * every truncation and hostile length refused. SaslHandshake is never
 * flexible; SaslAuthenticate is from v2 (request header v2, response header
 * v1, compact bytes and strings).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"

static uint8_t buf[1024];

static void check(bool request, int16_t api, int16_t ver, const char *hex, struct kp_arena *a, struct kp_message *m)
{
	size_t n = unhex(hex, buf, sizeof(buf));
	*m = check_roundtrip(a, request, (int16_t)(request ? -1 : api), (int16_t)(request ? -1 : ver), buf, n);
	cr_assert_eq(m->api_key, api);
	cr_assert_eq(m->api_version, ver);
	check_malformations(request, (int16_t)(request ? -1 : api), (int16_t)(request ? -1 : ver), buf, n);
}

Test(sasl, field_indexes_match_the_tables)
{
	cr_assert_eq(kp_field_index(&kp_sasl_handshake_request, "Mechanism"), KP_SASL_HANDSHAKE_REQ_MECHANISM);
	cr_assert_eq(kp_field_index(&kp_sasl_handshake_response, "ErrorCode"), KP_SASL_HANDSHAKE_RESP_ERROR_CODE);
	cr_assert_eq(kp_field_index(&kp_sasl_handshake_response, "Mechanisms"), KP_SASL_HANDSHAKE_RESP_MECHANISMS);
	cr_assert_eq(kp_field_index(&kp_sasl_authenticate_request, "AuthBytes"), KP_SASL_AUTH_REQ_AUTH_BYTES);
	cr_assert_eq(kp_field_index(&kp_sasl_authenticate_response, "ErrorCode"), KP_SASL_AUTH_RESP_ERROR_CODE);
	cr_assert_eq(kp_field_index(&kp_sasl_authenticate_response, "ErrorMessage"), KP_SASL_AUTH_RESP_ERROR_MESSAGE);
	cr_assert_eq(kp_field_index(&kp_sasl_authenticate_response, "AuthBytes"), KP_SASL_AUTH_RESP_AUTH_BYTES);
	cr_assert_eq(kp_field_index(&kp_sasl_authenticate_response, "SessionLifetimeMs"),
	             KP_SASL_AUTH_RESP_SESSION_LIFETIME_MS);
	const struct kp_api *h = kp_api_get(KP_API_SASL_HANDSHAKE), *au = kp_api_get(KP_API_SASL_AUTHENTICATE);
	cr_assert(kp_api_decodes(h, 0, true) && kp_api_decodes(h, 1, false) && !kp_api_decodes(h, 2, true));
	cr_assert(kp_api_decodes(au, 0, true) && kp_api_decodes(au, 2, false) && !kp_api_decodes(au, 3, false));
	cr_assert_not(kp_api_flexible(h, 1));
	cr_assert(kp_api_flexible(au, 2) && !kp_api_flexible(au, 1));
}

Test(sasl, handshake_v0_and_v1_name_a_mechanism_and_list_the_enabled_ones)
{
	struct kp_arena a;
	struct kp_message m;
	kp_arena_init(&a, 0);
	for (int16_t v = 0; v <= 1; v++) {
		char req[256], resp[256];
		snprintf(req, sizeof(req), "0011 %04x 00000001 0004 6b636174 000d 5343 52414d2d 5348412d 323536", v);
		check(true, KP_API_SASL_HANDSHAKE, v, req, &a, &m);
		cr_assert_eq(m.req.header_version, 1, "never flexible");
		cr_assert(span_is(m.body->v[KP_SASL_HANDSHAKE_REQ_MECHANISM].s, "SCRAM-SHA-256"));

		/* UNSUPPORTED_SASL_MECHANISM (33), enabled: PLAIN, SCRAM-SHA-512 */
		snprintf(resp, sizeof(resp), "00000001 0021 00000002 0005 504c41494e 000d 5343 52414d2d 5348412d 353132");
		check(false, KP_API_SASL_HANDSHAKE, v, resp, &a, &m);
		cr_assert_eq(m.body->v[KP_SASL_HANDSHAKE_RESP_ERROR_CODE].i, 33);
		const struct kp_list *mechs = &m.body->v[KP_SASL_HANDSHAKE_RESP_MECHANISMS].a;
		cr_assert_eq(mechs->cnt, 2);
		cr_assert(span_is(mechs->items[0].s, "PLAIN"));
		cr_assert(span_is(mechs->items[1].s, "SCRAM-SHA-512"));
	}
	kp_arena_free(&a);
}

Test(sasl, authenticate_v0_carries_plain_bytes)
{
	struct kp_arena a;
	struct kp_message m;
	kp_arena_init(&a, 0);
	/* "\0user\0pencil" */
	check(true, KP_API_SASL_AUTHENTICATE, 0, "0024 0000 00000002 0004 6b636174 0000000c 00757365720070656e63696c",
	      &a, &m);
	cr_assert_eq(m.body->v[KP_SASL_AUTH_REQ_AUTH_BYTES].s.len, 12);
	check(false, KP_API_SASL_AUTHENTICATE, 0, "00000002 0000 ffff 00000000", &a, &m);
	cr_assert_eq(m.body->v[KP_SASL_AUTH_RESP_ERROR_MESSAGE].s.len, -1, "null ErrorMessage");
	cr_assert_eq(m.body->v[KP_SASL_AUTH_RESP_AUTH_BYTES].s.len, 0);
	cr_assert_not(m.body->v[KP_SASL_AUTH_RESP_SESSION_LIFETIME_MS].present);
	kp_arena_free(&a);
}

Test(sasl, authenticate_v1_adds_the_session_lifetime)
{
	struct kp_arena a;
	struct kp_message m;
	kp_arena_init(&a, 0);
	check(true, KP_API_SASL_AUTHENTICATE, 1, "0024 0001 00000002 0004 6b636174 00000003 6e2c2c", &a, &m);
	/* server-final "v=AA==", session of one hour */
	check(false, KP_API_SASL_AUTHENTICATE, 1, "00000002 0000 ffff 00000006 763d41413d3d 000000000036ee80", &a, &m);
	cr_assert(span_is(m.body->v[KP_SASL_AUTH_RESP_AUTH_BYTES].s, "v=AA=="));
	cr_assert_eq(m.body->v[KP_SASL_AUTH_RESP_SESSION_LIFETIME_MS].i, 3600000);
	kp_arena_free(&a);
}

Test(sasl, authenticate_v2_is_flexible_and_carries_the_brokers_error)
{
	struct kp_arena a;
	struct kp_message m;
	kp_arena_init(&a, 0);
	check(true, KP_API_SASL_AUTHENTICATE, 2, "0024 0002 00000003 0004 6b636174 00 0d 00757365720070656e63696c 00", &a,
	      &m);
	cr_assert_eq(m.req.header_version, 2);
	cr_assert_eq(m.body->v[KP_SASL_AUTH_REQ_AUTH_BYTES].s.len, 12);
	/* SASL_AUTHENTICATION_FAILED (58), "Authentication failed", no bytes, lifetime 0 */
	check(false, KP_API_SASL_AUTHENTICATE, 2,
	      "00000003 00 003a 16 41757468656e7469636174696f6e206661696c6564 01 0000000000000000 00", &a, &m);
	cr_assert_eq(m.body->v[KP_SASL_AUTH_RESP_ERROR_CODE].i, 58);
	cr_assert(span_is(m.body->v[KP_SASL_AUTH_RESP_ERROR_MESSAGE].s, "Authentication failed"));
	cr_assert_eq(m.body->v[KP_SASL_AUTH_RESP_AUTH_BYTES].s.len, 0);
	kp_arena_free(&a);
}

Test(sasl, bodies_built_with_the_codec_decode_back)
{
	/* What bootstrap.c builds: encode a fresh struct, decode it again, at every version. */
	for (int16_t v = 0; v <= 2; v++) {
		struct kp_arena a;
		struct kp_writer w;
		struct kp_cursor c;
		size_t n;
		bool flex = kp_api_flexible(kp_api_get(KP_API_SASL_AUTHENTICATE), v);
		kp_arena_init(&a, 0);
		struct kp_struct *st = kp_struct_new(&a, &kp_sasl_authenticate_request, v);
		st->v[KP_SASL_AUTH_REQ_AUTH_BYTES].s = (struct kp_span){(const uint8_t *)"n,,n=user,r=abc", 15};
		kp_writer_init(&w);
		kp_encode(&w, st, v, flex, -1);
		uint8_t *out = kp_writer_flatten(&w, &n);
		kp_writer_free(&w);
		kp_cursor_init(&c, out, n);
		struct kp_struct *back = kp_decode(&a, &c, &kp_sasl_authenticate_request, v, flex, -1);
		cr_assert_not_null(back);
		cr_assert_eq(kp_cursor_left(&c), 0);
		cr_assert(span_is(back->v[KP_SASL_AUTH_REQ_AUTH_BYTES].s, "n,,n=user,r=abc"));
		free(out);
		kp_arena_free(&a);
	}
}
