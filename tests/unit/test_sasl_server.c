/*
 * The SCRAM and PLAIN server (proxy/sasl_server.c) and the sasl.users file:
 * RFC 7677's SCRAM-SHA-256 exchange byte for byte, kstretch's own client
 * against its own server for both hashes, each kind of malformed client
 * message refused with a reason, an unknown user failing only at the proof
 * (the same salt on every try), PLAIN against stored SCRAM credentials, and
 * the explicit SaslHandshake/SaslAuthenticate body codec (protocol/sasl.h).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sasl.h"
#include "sasl_server.h"

#define RFC_SALT   "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_CFIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CFINAL                                                                                                     \
	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


/* Appends s to buf (cap bytes with its NUL); aborts when it does not fit. */
static void append(char *buf, size_t cap, const char *s)
{
	size_t have = strlen(buf), n = strlen(s);
	if (have + n + 1 > cap)
		abort();
	memcpy(buf + have, s, n + 1);
}

static struct kx_sasl_users users;

/* A users file made by the same code `kstretch --sasl-user` runs: "user"/"pencil" with RFC 7677's salt
 * (SHA-256), "app"/"app-secret" for both hashes, "only256"/"pw256" with SHA-256 only. */
static void load_users(void)
{
	char text[4096] = "# test users\n\n", line[1024];
	uint8_t salt[16];
	size_t sl = 0;
	struct kx_scram_cred c;
	cr_assert(kx_base64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof(salt), &sl));
	cr_assert(kx_scram_cred_make(&c, KX_SCRAM_SHA_256, "pencil", 6, salt, sl, 4096));
	cr_assert(kx_scram_cred_line("user", &c, line, sizeof(line)));
	append(text, sizeof(text), line);
	for (int h = 0; h < 2; h++) {
		cr_assert(kx_scram_cred_make(&c, (enum kx_scram_hash)h, "app-secret", 10, NULL, 0, 4096));
		cr_assert(kx_scram_cred_line("app", &c, line, sizeof(line)));
		append(text, sizeof(text), line);
	}
	cr_assert(kx_scram_cred_make(&c, KX_SCRAM_SHA_256, "pw256", 5, NULL, 0, 8192));
	cr_assert(kx_scram_cred_line("only256", &c, line, sizeof(line)));
	append(text, sizeof(text), "  ");
	append(text, sizeof(text), line);
	char err[256] = "";
	cr_assert(kx_sasl_users_parse(text, strlen(text), "users", &users, err, sizeof(err)), "%s", err);
	cr_assert_eq(users.cnt, 3);
}

static void free_users(void)
{
	kx_sasl_users_free(&users);
}

TestSuite(sasl_server, .init = load_users, .fini = free_users);

static bool first(struct kx_scrams *s, enum kx_scram_hash h, const char *msg, const char *snonce, char *out, char *err)
{
	return kx_scrams_first(s, h, &users, (const uint8_t *)msg, strlen(msg), snonce, out, KX_SCRAM_MSG_MAX + 1, err,
	                       256);
}

static bool final(struct kx_scrams *s, const char *msg, char *out, char *err)
{
	return kx_scrams_final(s, (const uint8_t *)msg, strlen(msg), out, KX_SCRAM_MSG_MAX + 1, err, 256);
}

Test(sasl_server, rfc7677_scram_sha_256_exchange_byte_for_byte)
{
	struct kx_scrams s;
	char out[KX_SCRAM_MSG_MAX + 1], err[256] = "";
	cr_assert(first(&s, KX_SCRAM_SHA_256, RFC_CFIRST, RFC_SNONCE, out, err), "%s", err);
	cr_assert_str_eq(out, RFC_SFIRST);
	cr_assert(final(&s, RFC_CFINAL, out, err), "%s", err);
	cr_assert_str_eq(out, RFC_SFINAL);
	cr_assert_not(final(&s, RFC_CFINAL, out, err), "a second client-final is out of turn");
	cr_assert(strstr(err, "out of turn"));
	kx_scrams_clear(&s);
}

Test(sasl_server, a_changed_proof_or_nonce_is_refused)
{
	struct kx_scrams s;
	char out[KX_SCRAM_MSG_MAX + 1], err[256] = "", bad[256];
	cr_assert(first(&s, KX_SCRAM_SHA_256, RFC_CFIRST, RFC_SNONCE, out, err));
	snprintf(bad, sizeof(bad), "%s", RFC_CFINAL);
	bad[strlen(bad) - 3] = bad[strlen(bad) - 3] == 'A' ? 'B' : 'A';
	cr_assert_not(final(&s, bad, out, err));
	cr_assert(strstr(err, "invalid credentials with SASL mechanism SCRAM-SHA-256"), "%s", err);
	cr_assert(first(&s, KX_SCRAM_SHA_256, RFC_CFIRST, RFC_SNONCE, out, err));
	snprintf(bad, sizeof(bad), "%s", RFC_CFINAL);
	bad[12] ^= 1;
	cr_assert_not(final(&s, bad, out, err));
	cr_assert(strstr(err, "nonce"), "%s", err);
}

/* kstretch's client (sasl_client.c) against its server, each hash, right and wrong password. */
static bool exchange(enum kx_scram_hash h, const char *user, const char *password, char *err)
{
	struct kx_scram c;
	struct kx_scrams s;
	char m1[KX_SCRAM_MSG_MAX + 1], m2[KX_SCRAM_MSG_MAX + 1], m3[KX_SCRAM_MSG_MAX + 1], m4[KX_SCRAM_MSG_MAX + 1];
	cr_assert(kx_scram_client_first(&c, h, user, NULL, m1, sizeof(m1), err, 256), "%s", err);
	cr_assert(first(&s, h, m1, NULL, m2, err), "%s", err);
	cr_assert(kx_scram_client_final(&c, password, (const uint8_t *)m2, strlen(m2), m3, sizeof(m3), err, 256), "%s",
	          err);
	if (!final(&s, m3, m4, err))
		return false;
	cr_assert(kx_scram_server_final(&c, (const uint8_t *)m4, strlen(m4), err, 256), "%s", err);
	return true;
}

Test(sasl_server, kstretchs_own_client_authenticates_with_both_hashes)
{
	char err[256] = "";
	cr_assert(exchange(KX_SCRAM_SHA_512, "app", "app-secret", err), "%s", err);
	cr_assert(exchange(KX_SCRAM_SHA_256, "app", "app-secret", err), "%s", err);
	cr_assert(exchange(KX_SCRAM_SHA_256, "only256", "pw256", err), "%s", err);
	cr_assert_not(exchange(KX_SCRAM_SHA_512, "app", "app-secreT", err));
	cr_assert(strstr(err, "SCRAM-SHA-512"), "%s", err);
	cr_assert_not(exchange(KX_SCRAM_SHA_512, "only256", "pw256", err), "no SHA-512 credential: refused");
}

Test(sasl_server, an_unknown_user_fails_only_at_the_proof_with_a_stable_salt)
{
	struct kx_scrams s;
	char a[KX_SCRAM_MSG_MAX + 1], b[KX_SCRAM_MSG_MAX + 1], err[256] = "";
	cr_assert(first(&s, KX_SCRAM_SHA_512, "n,,n=nobody,r=abc", "X", a, err), "%s", err);
	cr_assert(first(&s, KX_SCRAM_SHA_512, "n,,n=nobody,r=abc", "X", b, err), "%s", err);
	cr_assert_str_eq(a, b, "the same salt and iterations each time: nothing to tell it from a real user");
	cr_assert(strstr(a, ",i=4096"));
	char wrong[KX_SCRAM_MSG_MAX + 1];
	cr_assert_not(exchange(KX_SCRAM_SHA_512, "nobody", "anything", err));
	cr_assert(strstr(err, "invalid credentials"), "%s", err);
	(void)wrong;
}

Test(sasl_server, malformed_client_first_messages_are_refused_with_a_reason)
{
	static const struct {
		const char *msg, *why;
	} cases[] = {
	    {"", "0 bytes"},
	    {"p=tls-unique,,n=user,r=x", "channel binding"},
	    {"n,,r=abc", "user name"},
	    {"n,,n=,r=abc", "user name"},
	    {"n,,n=us=er,r=abc", "user name"},
	    {"n,,n=us=2", "user name"},
	    {"n,,n=user", "nonce"},
	    {"n,,n=user,r=", "nonce"},
	    {"n,,n=user,r=a b", "nonce"},
	    {"n,a=other,n=user,r=abc", "authzid"},
	    {"n,a=,n=user,r=abc", "authzid"},
	    {"n,,m=ext,n=user,r=abc", "mandatory extension"},
	    {"n,,n=user,r=ab\x01", "control byte"},
	    {"n,n=user,r=abc", "authzid"},
	    {"n", "channel binding"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_scrams s;
		char out[KX_SCRAM_MSG_MAX + 1], err[256] = "";
		cr_assert_not(first(&s, KX_SCRAM_SHA_256, cases[i].msg, NULL, out, err), "accepted '%s'", cases[i].msg);
		cr_assert(strstr(err, cases[i].why), "'%s': %s", cases[i].msg, err);
		cr_assert_not(final(&s, RFC_CFINAL, out, err), "no final after a refused first");
	}
	char big[KX_SCRAM_MSG_MAX + 64];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "n,,n=user,r=", 12);
	struct kx_scrams s;
	char out[KX_SCRAM_MSG_MAX + 1], err[256] = "";
	cr_assert_not(first(&s, KX_SCRAM_SHA_256, big, NULL, out, err));
	cr_assert(strstr(err, "bytes"), "%s", err);
	/* An authzid naming the user is the user; extensions after the nonce are ignored (Kafka's tokenauth). */
	cr_assert(first(&s, KX_SCRAM_SHA_256, "n,a=user,n=user,r=abc,tokenauth=true", NULL, out, err), "%s", err);
	cr_assert(first(&s, KX_SCRAM_SHA_256, "y,,n=us=2Cer=3D,r=abc", NULL, out, err), "%s", err);
	cr_assert_str_eq(s.user, "us,er=");
}

Test(sasl_server, malformed_client_final_messages_are_refused_with_a_reason)
{
	static const struct {
		const char *msg, *why;
	} cases[] = {
	    {"c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzb", "channel binding"},
	    {"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzb", "channel binding"},
	    {"c=biws,p=dHzb", "nonce"},
	    {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "no proof"},
	    {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=abc,x=1", "no proof"},
	    {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!!", "base64"},
	    {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA", "base64 of 32"},
	    {"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,,p=dHzb", "malformed attribute"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_scrams s;
		char out[KX_SCRAM_MSG_MAX + 1], err[256] = "";
		cr_assert(first(&s, KX_SCRAM_SHA_256, RFC_CFIRST, RFC_SNONCE, out, err));
		cr_assert_not(final(&s, cases[i].msg, out, err), "accepted '%s'", cases[i].msg);
		cr_assert(strstr(err, cases[i].why), "'%s': %s", cases[i].msg, err);
	}
}

static bool plain(const char *authz, const char *user, const char *pw, char *who, char *err)
{
	uint8_t m[512];
	size_t a = strlen(authz), u = strlen(user), p = strlen(pw);
	memcpy(m, authz, a);
	m[a] = 0;
	memcpy(m + a + 1, user, u);
	m[a + 1 + u] = 0;
	memcpy(m + a + 2 + u, pw, p);
	return kx_sasl_plain_check(&users, m, a + u + p + 2, who, KX_SCRAM_USER_MAX + 1, err, 256);
}

Test(sasl_server, plain_is_checked_against_the_stored_scram_credential)
{
	char who[KX_SCRAM_USER_MAX + 1], err[256] = "";
	cr_assert(plain("", "app", "app-secret", who, err), "%s", err);
	cr_assert_str_eq(who, "app");
	cr_assert(plain("only256", "only256", "pw256", who, err), "%s", err);
	cr_assert(plain("", "user", "pencil", who, err), "%s", err);
	cr_assert_not(plain("", "app", "app-secreT", who, err));
	cr_assert(strstr(err, "invalid credentials with SASL mechanism PLAIN"), "%s", err);
	char err2[256];
	cr_assert_not(plain("", "nobody", "app-secret", who, err2));
	cr_assert_str_eq(err, err2, "an unknown user and a wrong password read the same");
	cr_assert_not(plain("other", "app", "app-secret", who, err));
	cr_assert(strstr(err, "authzid"), "%s", err);
	cr_assert_not(plain("", "", "x", who, err));
	cr_assert_not(kx_sasl_plain_check(&users, (const uint8_t *)"app", 3, who, sizeof(who), err, sizeof(err)));
	cr_assert_not(
	    kx_sasl_plain_check(&users, (const uint8_t *)"\0app\0pw\0x", 10, who, sizeof(who), err, sizeof(err)));
	cr_assert_not(kx_sasl_plain_check(&users, NULL, 0, who, sizeof(who), err, sizeof(err)));
}

Test(sasl_server, users_file_errors_name_the_line_and_what_is_wrong)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
	    {"", "no user"},
	    {"# only a comment\n", "no user"},
	    {"app SCRAM-SHA-1 4096 AAAA AAAA AAAA\n", "users:1: mechanism"},
	    {"\napp SCRAM-SHA-256 4096 AAAA\n", "users:2: 4 fields"},
	    {"app SCRAM-SHA-256 100 AAAA AAAA AAAA\n", "iterations"},
	    {"app SCRAM-SHA-256 4096x AAAA AAAA AAAA\n", "iterations"},
	    {"app SCRAM-SHA-256 4096 A!AA AAAA AAAA\n", "salt"},
	    {"app SCRAM-SHA-256 4096 AAAA AAAA AAAA\n", "StoredKey"},
	    {"app SCRAM-SHA-256 4096 AAAA AAAA AAAA extra\n", "7 fields"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kx_sasl_users u;
		char err[256] = "";
		cr_assert_not(kx_sasl_users_parse(cases[i].text, strlen(cases[i].text), "users", &u, err, sizeof(err)),
		              "accepted '%s'", cases[i].text);
		cr_assert(strstr(err, cases[i].why), "'%s': %s", cases[i].text, err);
	}
	/* the same user and mechanism twice */
	char line[1024], text[2048] = "";
	struct kx_scram_cred c;
	cr_assert(kx_scram_cred_make(&c, KX_SCRAM_SHA_512, "x", 1, NULL, 0, 4096));
	cr_assert(kx_scram_cred_line("dup", &c, line, sizeof(line)));
	append(text, sizeof(text), line);
	append(text, sizeof(text), line);
	struct kx_sasl_users u;
	char err[256] = "";
	cr_assert_not(kx_sasl_users_parse(text, strlen(text), "users", &u, err, sizeof(err)));
	cr_assert(strstr(err, "users:2: a second SCRAM-SHA-512 line for user dup"), "%s", err);
	cr_assert_not(kx_sasl_users_load("/nonexistent/sasl.users", &u, err, sizeof(err)));
	cr_assert(strstr(err, "No such file"), "%s", err);
}

Test(sasl_server, handshake_and_authenticate_bodies_round_trip_at_every_version)
{
	struct kp_writer w;
	kp_writer_init(&w);
	const char *mechs[] = {"SCRAM-SHA-512", "PLAIN"};
	kp_sasl_handshake_response_write(&w, KP_ERR_UNSUPPORTED_SASL_MECHANISM, mechs, 2);
	size_t n;
	uint8_t *b = kp_writer_flatten(&w, &n);
	struct kp_cursor c;
	kp_cursor_init(&c, b, n);
	int16_t e;
	char list[64];
	cr_assert(kp_sasl_handshake_response_read(&c, &e, list, sizeof(list)));
	cr_assert_eq(e, 33);
	cr_assert_str_eq(list, "SCRAM-SHA-512, PLAIN");
	free(b);
	for (int16_t v = 0; v <= 2; v++) {
		kp_writer_reset(&w);
		kp_sasl_authenticate_response_write(&w, v, 58, "no", (const uint8_t *)"abc", 3, 5000);
		b = kp_writer_flatten(&w, &n);
		kp_cursor_init(&c, b, n);
		struct kp_span msg, auth;
		int64_t life;
		cr_assert(kp_sasl_authenticate_response_read(&c, v, &e, &msg, &auth, &life), "v%d", v);
		cr_assert(e == 58 && msg.len == 2 && auth.len == 3 && memcmp(auth.ptr, "abc", 3) == 0);
		cr_assert_eq(life, v >= 1 ? 5000 : 0);
		for (size_t cut = 0; cut < n; cut++) { /* every truncation refused */
			kp_cursor_init(&c, b, cut);
			cr_assert_not(kp_sasl_authenticate_response_read(&c, v, &e, &msg, &auth, &life));
		}
		free(b);
		kp_writer_reset(&w);
		kp_sasl_authenticate_request_write(&w, v, (const uint8_t *)"n,,n=a,r=b", 10);
		b = kp_writer_flatten(&w, &n);
		kp_cursor_init(&c, b, n);
		cr_assert(kp_sasl_authenticate_request_read(&c, v, &auth) && auth.len == 10, "v%d", v);
		kp_cursor_init(&c, b, n - 1);
		cr_assert_not(kp_sasl_authenticate_request_read(&c, v, &auth));
		free(b);
	}
	/* a length claiming more than is there, and trailing bytes */
	static const uint8_t liar[] = {0, 0, 0x10, 0, 'a'}, trailing[] = {0, 1, 'P', 'x'};
	struct kp_span sp;
	kp_cursor_init(&c, liar, sizeof(liar));
	cr_assert_not(kp_sasl_authenticate_request_read(&c, 0, &sp));
	kp_cursor_init(&c, trailing, sizeof(trailing));
	cr_assert_not(kp_sasl_handshake_request_read(&c, &sp));
	kp_writer_free(&w);
}
