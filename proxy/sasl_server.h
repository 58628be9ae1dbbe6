/*
 * sasl_server: the server side of the SASL mechanisms a regional node
 * authenticates its clients with, against a sasl.users file of SCRAM
 * credentials: SCRAM-SHA-256 (RFC 7677), SCRAM-SHA-512 (Kafka's KIP-84)
 * and PLAIN (RFC 4616), a PLAIN password checked against the same stored
 * SCRAM credentials (no clear password is stored anywhere).
 *
 * The sasl.users file, one credential a line ('#' starts a comment):
 *
 *   USER MECHANISM ITERATIONS SALT STOREDKEY SERVERKEY
 *   app  SCRAM-SHA-512 4096 base64 base64 base64
 *
 * (RFC 5802's stored form: SaltedPassword = PBKDF2(password, salt, i),
 * StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
 * HMAC(SaltedPassword, "Server Key")). USER is UTF-8 without spaces or
 * control characters; a user may have a line per mechanism. `kstretch
 * --sasl-user NAME` reads a password on stdin and prints both lines.
 *
 * A SCRAM exchange, server side (pure functions: no sockets, no framing):
 *   kx_scrams_first()  <- "n,,n=USER,r=CNONCE"                     (received)
 *                      -> "r=CNONCE+SNONCE,s=SALT,i=ITER"          (send)
 *   kx_scrams_final()  <- "c=biws,r=CNONCE+SNONCE,p=PROOF"         (received)
 *                      -> "v=SERVER_SIGNATURE"                     (send)
 * A user without a credential for the mechanism goes through the same
 * exchange with a made-up salt and fails at the proof, as a wrong password
 * does: the answers do not tell which user names exist.
 * Every client message is hostile input, bounded (KX_SCRAM_MSG_MAX) and
 * refused with one line saying what is wrong.
 */
#ifndef KX_SASL_SERVER_H
#define KX_SASL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sasl_client.h"

struct kx_scram_cred {
	enum kx_scram_hash hash;
	uint32_t iterations;
	uint8_t salt[KX_SCRAM_SALT_MAX];
	size_t salt_len;
	uint8_t stored_key[64], server_key[64];
};

struct kx_sasl_user {
	char name[KX_SCRAM_USER_MAX + 1];
	bool has[2]; /* by enum kx_scram_hash */
	struct kx_scram_cred cred[2];
};

struct kx_sasl_users {
	struct kx_sasl_user *users;
	size_t cnt;
	uint8_t fake_key[32]; /* makes an unknown user's salt (random per load) */
};

#define KX_SASL_USERS_MAX 100000

/* Reads a sasl.users file; false with err naming the file, line and what is wrong. */
bool kx_sasl_users_load(const char *path, struct kx_sasl_users *out, char *err, size_t errlen);
/* Parses the file's text (len bytes); the same. */
bool kx_sasl_users_parse(const char *text, size_t len, const char *path, struct kx_sasl_users *out, char *err,
                         size_t errlen);
void kx_sasl_users_free(struct kx_sasl_users *u);
const struct kx_sasl_user *kx_sasl_users_find(const struct kx_sasl_users *u, const char *name, size_t len);

/* "SCRAM-SHA-256" / "SCRAM-SHA-512". */
const char *kx_scram_mechanism(enum kx_scram_hash h);

/* Derives the stored credential from a password (salt NULL: 16 random bytes). */
bool kx_scram_cred_make(struct kx_scram_cred *c, enum kx_scram_hash h, const char *password, size_t plen,
                        const uint8_t *salt, size_t salt_len, uint32_t iterations);
/* Writes a sasl.users line (with '\n'); false when it does not fit. */
bool kx_scram_cred_line(const char *user, const struct kx_scram_cred *c, char *out, size_t outlen);

/* A server-side SCRAM exchange. */
struct kx_scrams {
	enum kx_scram_hash hash;
	int step;  /* 0: client-first next, 1: client-final next, 2: done (either way) */
	bool fake; /* no such user (or mechanism for it): fails at the proof */
	struct kx_scram_cred cred;
	char user[KX_SCRAM_USER_MAX + 1]; /* unescaped */
	char nonce[2 * KX_SCRAM_NONCE_MAX + 1];
	char gs2[KX_SCRAM_USER_MAX * 3 + 8]; /* the client's gs2 header ("n,,") */
	char client_first_bare[KX_SCRAM_MSG_MAX + 1];
	char server_first[KX_SCRAM_MSG_MAX + 1];
};

/*
 * Reads the client-first message and writes the server-first one
 * (NUL-terminated) to out. snonce NULL: 24 random bytes, base64 (tests pass
 * RFC 7677's). False, err set, on a malformed message (channel binding
 * asked, an authzid not the user, a bad name or nonce, an m= extension).
 */
bool kx_scrams_first(struct kx_scrams *s, enum kx_scram_hash h, const struct kx_sasl_users *users, const uint8_t *msg,
                     size_t len, const char *snonce, char *out, size_t outlen, char *err, size_t errlen);

/*
 * Reads the client-final message, checks its channel binding, nonce and
 * proof, and writes the server-final message to out. False, err set, when it
 * is malformed or the proof does not verify (the client is then refused).
 */
bool kx_scrams_final(struct kx_scrams *s, const uint8_t *msg, size_t len, char *out, size_t outlen, char *err,
                     size_t errlen);

void kx_scrams_clear(struct kx_scrams *s);

/*
 * PLAIN: "authzid NUL user NUL password" checked against the user's SCRAM
 * credential (SHA-512's if it has one). user gets the authenticated name.
 * False, err set, on a malformed message, an authzid not the user, or a
 * wrong password or unknown user (the same words for both).
 */
bool kx_sasl_plain_check(const struct kx_sasl_users *users, const uint8_t *msg, size_t len, char *user, size_t userlen,
                         char *err, size_t errlen);

#endif
