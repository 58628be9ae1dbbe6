/*
 * sasl_client: SCRAM against RFC 7677's SCRAM-SHA-256 example (exact
 * client-final and server signature), SCRAM-SHA-512 by playing the server's
 * side with OpenSSL here, hostile server messages refused with a message,
 * user name escaping, PLAIN's message and base64.
 */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

#include "sasl_client.h"

static char out[KX_SCRAM_MSG_MAX + 1], err[256];

#define RFC7677_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC7677_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"

static bool server_first(struct kx_scram *s, const char *msg)
{
	err[0] = '\0';
	return kx_scram_client_final(s, "pencil", (const uint8_t *)msg, strlen(msg), out, sizeof(out), err, sizeof(err));
}

static bool server_final(const struct kx_scram *s, const char *msg)
{
	err[0] = '\0';
	return kx_scram_server_final(s, (const uint8_t *)msg, strlen(msg), err, sizeof(err));
}

static void start(struct kx_scram *s, enum kx_scram_hash h)
{
	cr_assert(kx_scram_client_first(s, h, "user", RFC7677_CNONCE, out, sizeof(out), err, sizeof(err)), "%s", err);
}

Test(scram, sha256_matches_rfc7677)
{
	struct kx_scram s;
	start(&s, KX_SCRAM_SHA_256);
	cr_assert_str_eq(out, "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
	cr_assert(server_first(&s, RFC7677_SFIRST), "%s", err);
	cr_assert_str_eq(out, "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	                      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
	cr_assert(server_final(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), "%s", err);
	cr_assert(server_final(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=,ext=1"), "extensions are ignored");
}

Test(scram, a_wrong_or_missing_server_signature_does_not_verify)
{
	struct kx_scram s;
	start(&s, KX_SCRAM_SHA_256);
	cr_assert(server_final(&s, "v=AAAA") == false);
	cr_assert(server_first(&s, RFC7677_SFIRST));
	cr_assert_not(server_final(&s, "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
	cr_assert_str_eq(err, "the broker's SCRAM signature does not verify");
	cr_assert_not(server_final(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4"), "unpadded");
	cr_assert_not(server_final(&s, "v=AA=="), "short");
	cr_assert_str_eq(err, "the broker's SCRAM signature does not verify");
	cr_assert_not(server_final(&s, ""));
	cr_assert(strstr(err, "no verifier"), "%s", err);
	cr_assert_not(server_final(&s, "e=invalid-proof"));
	cr_assert(strstr(err, "invalid-proof"), "%s", err);
}

/* The server's side of SCRAM, from RFC 5802's definitions, to check the client's proof. */
static void server_check(const EVP_MD *md, const char *password, const uint8_t *salt, size_t salt_len, int iter,
                         const char *auth_message, const uint8_t *proof, uint8_t *server_sig)
{
	uint8_t salted[64], client_key[64], stored[64], client_sig[64], server_key[64], recovered[64], stored2[64];
	unsigned n = 0, hl = (unsigned)EVP_MD_get_size(md);
	cr_assert(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iter, md, (int)hl, salted));
	HMAC(md, salted, (int)hl, (const uint8_t *)"Client Key", 10, client_key, &n);
	EVP_Digest(client_key, hl, stored, &n, md, NULL);
	HMAC(md, stored, (int)hl, (const uint8_t *)auth_message, strlen(auth_message), client_sig, &n);
	for (unsigned i = 0; i < hl; i++)
		recovered[i] = proof[i] ^ client_sig[i];
	EVP_Digest(recovered, hl, stored2, &n, md, NULL);
	cr_assert_eq(memcmp(stored, stored2, hl), 0, "the server recovers the StoredKey from the proof");
	HMAC(md, salted, (int)hl, (const uint8_t *)"Server Key", 10, server_key, &n);
	HMAC(md, server_key, (int)hl, (const uint8_t *)auth_message, strlen(auth_message), server_sig, &n);
}

Test(scram, sha512_self_consistent_with_a_random_nonce)
{
	struct kx_scram s;
	char first[KX_SCRAM_MSG_MAX + 1], sfirst[512], final[KX_SCRAM_MSG_MAX + 1], am[4096], sig64[128];
	uint8_t salt[16] = "0123456789abcdef", proof[64], sig[64];
	char salt64[32];
	size_t n;
	cr_assert(kx_scram_client_first(&s, KX_SCRAM_SHA_512, "al=ice,x", NULL, first, sizeof(first), err, sizeof(err)));
	cr_assert(strncmp(first, "n,,n=al=3Dice=2Cx,r=", 20) == 0, "%s", first);
	const char *cnonce = first + 20;
	cr_assert_eq(strlen(cnonce), 32, "24 random bytes in base64");
	struct kx_scram other;
	char first2[KX_SCRAM_MSG_MAX + 1];
	cr_assert(kx_scram_client_first(&other, KX_SCRAM_SHA_512, "u", NULL, first2, sizeof(first2), err, sizeof(err)));
	cr_assert_str_neq(cnonce, first2 + 9, "a fresh nonce each time");

	kx_base64_encode(salt, sizeof(salt), salt64, sizeof(salt64));
	snprintf(sfirst, sizeof(sfirst), "r=%sSERVERPART,s=%s,i=4096", cnonce, salt64);
	cr_assert(kx_scram_client_final(&s, "pässword", (const uint8_t *)sfirst, strlen(sfirst), final, sizeof(final),
	                                err, sizeof(err)),
	          "%s", err);
	const char *p = strstr(final, ",p=");
	cr_assert_not_null(p);
	cr_assert(kx_base64_decode(p + 3, strlen(p + 3), proof, sizeof(proof), &n));
	cr_assert_eq(n, 64, "a SHA-512 proof");
	snprintf(am, sizeof(am), "%s,%s,%.*s", first + 3, sfirst, (int)(p - final), final);
	server_check(EVP_sha512(), "pässword", salt, sizeof(salt), 4096, am, proof, sig);
	kx_base64_encode(sig, 64, sig64, sizeof(sig64));
	char sfinal[160];
	snprintf(sfinal, sizeof(sfinal), "v=%s", sig64);
	cr_assert(server_final(&s, sfinal), "%s", err);
	sig[0] ^= 1;
	kx_base64_encode(sig, 64, sig64, sizeof(sig64));
	snprintf(sfinal, sizeof(sfinal), "v=%s", sig64);
	cr_assert_not(server_final(&s, sfinal));
}

Test(scram, malformed_server_first_messages_are_refused_with_a_message)
{
	static const struct {
		const char *msg, *why;
	} bad[] = {
	    {"", "bytes"},
	    {"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "no nonce"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,i=4096", "no salt"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==", "no iteration count"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,", "no iteration count"},
	    {"r=someoneelse,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"},
	    {"r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"}, /* nothing added */
	    {"r=rOprNGfwEbeRWgbNEk,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"},   /* shorter */
	    {"r=rOprNGfwEbeRWgbNEkqO x,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "does not extend"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096", "salt"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22Z*J0SNY7soEsUEjb6gQ==,i=4096", "salt"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=,i=4096", "salt"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gR==,i=4096", "salt"}, /* non-zero pad bits */
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0", "iteration count '0'"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", "iteration count"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=1000001", "iteration count"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999999999999999", "iteration count"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=-4096", "iteration count"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=", "iteration count"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096x", "iteration count"},
	    {"i=4096,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==", "no nonce"},
	    {"m=ext,r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", "mandatory extension"},
	    {"r=rOprNGfwEbeRWgbNEkqOxyz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096\n", "control byte"},
	    {"r", "no nonce"},
	    {"r=", "does not extend"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kx_scram s;
		start(&s, KX_SCRAM_SHA_256);
		out[0] = '\0';
		cr_assert_not(server_first(&s, bad[i].msg), "accepted: %s", bad[i].msg);
		cr_assert(strstr(err, bad[i].why), "'%s': '%s' does not say '%s'", bad[i].msg, err, bad[i].why);
		cr_assert_eq(out[0], '\0', "nothing written for %s", bad[i].msg);
		cr_assert_not(server_final(&s, "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="), "no signature to match");
	}
	/* An embedded NUL, and one over the size bound. */
	struct kx_scram s;
	start(&s, KX_SCRAM_SHA_256);
	static const char nul[] = "r=rOprNGfwEbeRWgbNEkqOx\0z,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
	cr_assert_not(kx_scram_client_final(&s, "p", (const uint8_t *)nul, sizeof(nul) - 1, out, sizeof(out), err,
	                                    sizeof(err)));
	static uint8_t big[KX_SCRAM_MSG_MAX + 1];
	memset(big, 'a', sizeof(big));
	cr_assert_not(kx_scram_client_final(&s, "p", big, sizeof(big), out, sizeof(out), err, sizeof(err)));
	/* Trailing extensions after i= are allowed. */
	cr_assert(server_first(&s, RFC7677_SFIRST ",x=y"), "%s", err);
}

Test(scram, user_names_are_escaped_as_rfc5802_saslname)
{
	char e[32];
	cr_assert(kx_scram_escape_user("user", e, sizeof(e)));
	cr_assert_str_eq(e, "user");
	cr_assert(kx_scram_escape_user("a=b,c", e, sizeof(e)));
	cr_assert_str_eq(e, "a=3Db=2Cc");
	cr_assert(kx_scram_escape_user(",=", e, sizeof(e)));
	cr_assert_str_eq(e, "=2C=3D");
	cr_assert_not(kx_scram_escape_user("==", e, 6), "6 bytes and a NUL do not fit in 6");
	cr_assert(kx_scram_escape_user("==", e, 7));
	struct kx_scram s;
	cr_assert_not(kx_scram_client_first(&s, KX_SCRAM_SHA_256, "", "n", out, sizeof(out), err, sizeof(err)));
	cr_assert_not(kx_scram_client_first(&s, KX_SCRAM_SHA_256, "a\tb", "n", out, sizeof(out), err, sizeof(err)));
	cr_assert_not(kx_scram_client_first(&s, KX_SCRAM_SHA_256, "u", "a,b", out, sizeof(out), err, sizeof(err)));
	char long_user[KX_SCRAM_USER_MAX + 2];
	memset(long_user, ',', sizeof(long_user) - 2);
	long_user[KX_SCRAM_USER_MAX] = '\0';
	cr_assert(kx_scram_client_first(&s, KX_SCRAM_SHA_256, long_user, NULL, out, sizeof(out), err, sizeof(err)),
	          "the longest user, every byte escaped: %s", err);
	memset(long_user, 'u', sizeof(long_user) - 1);
	long_user[KX_SCRAM_USER_MAX + 1] = '\0';
	cr_assert_not(kx_scram_client_first(&s, KX_SCRAM_SHA_256, long_user, NULL, out, sizeof(out), err, sizeof(err)));
}

Test(sasl_plain, one_message_with_an_empty_authzid)
{
	uint8_t m[32];
	cr_assert_eq(kx_sasl_plain("user", "pencil", m, sizeof(m)), 12);
	cr_assert_eq(memcmp(m, "\0user\0pencil", 12), 0);
	cr_assert_eq(kx_sasl_plain("user", "pencil", m, 11), 0);
}

Test(base64, round_trips_and_refuses_sloppy_text)
{
	char t[16];
	uint8_t b[16];
	size_t n;
	cr_assert_eq(kx_base64_encode((const uint8_t *)"n,,", 3, t, sizeof(t)), 4);
	cr_assert_str_eq(t, "biws");
	cr_assert_eq(kx_base64_encode((const uint8_t *)"ab", 2, t, sizeof(t)), 4);
	cr_assert_str_eq(t, "YWI=");
	cr_assert_eq(kx_base64_encode((const uint8_t *)"abcd", 4, t, 8), 0, "8 characters and a NUL do not fit");
	cr_assert(kx_base64_decode("YWI=", 4, b, sizeof(b), &n) && n == 2 && memcmp(b, "ab", 2) == 0);
	cr_assert(kx_base64_decode("", 0, b, sizeof(b), &n) && n == 0);
	const char *bad[] = {"YWI", "Y=I=", "YW==YWI=", "YW\nI", "====", "YWJ=", "Y===", "YW!=", "YWI=\0"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_not(kx_base64_decode(bad[i], strlen(bad[i]) + (i == 8), b, sizeof(b), &n), "%s", bad[i]);
	cr_assert_not(kx_base64_decode("YWJj", 4, b, 2, &n), "no room");
}
