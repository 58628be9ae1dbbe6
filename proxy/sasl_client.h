/*
 * sasl_client: the client side of the SASL mechanisms kstretch authenticates
 * its own connection to a bootstrap server with: PLAIN (RFC 4616) and SCRAM
 * (RFC 5802, SHA-256 as RFC 7677, SHA-512 as Kafka's KIP-84).
 *
 * Pure functions over the mechanism's messages (the bytes Kafka carries in
 * SaslAuthenticate's AuthBytes): no sockets, no Kafka framing. The SCRAM
 * computation is OpenSSL's (PBKDF2-HMAC, HMAC, digest), which is why this
 * lives in proxy/ and not in protocol/ (which links no OpenSSL).
 *
 * A SCRAM exchange, client side:
 *   kx_scram_client_first()  -> "n,,n=USER,r=CNONCE"               (send)
 *   kx_scram_client_final()  <- "r=CNONCE+SNONCE,s=SALT,i=ITER"    (received)
 *                            -> "c=biws,r=...,p=PROOF"              (send)
 *   kx_scram_server_final()  <- "v=SERVER_SIGNATURE" (or "e=...")  (received)
 * The server's messages are hostile input: every malformed one is refused
 * with one line saying what is wrong, and every length is bounded.
 *
 * Like Kafka's own client, the password is used as its UTF-8 bytes (no
 * SASLprep), so kstretch derives the same keys as a Java client would.
 */
#ifndef KX_SASL_CLIENT_H
#define KX_SASL_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kx_scram_hash {
	KX_SCRAM_SHA_256,
	KX_SCRAM_SHA_512,
};

/* Iteration counts a server may ask for: Kafka's minimum, and a bound that
 * keeps a hostile server from making kstretch hash for minutes. */
#define KX_SCRAM_MIN_ITERATIONS 4096
#define KX_SCRAM_MAX_ITERATIONS 1000000

#define KX_SCRAM_USER_MAX   256  /* bytes of a user name, before escaping */
#define KX_SCRAM_NONCE_MAX  256  /* the whole nonce (ours and the server's) */
#define KX_SCRAM_SALT_MAX   128  /* decoded salt bytes */
#define KX_SCRAM_MSG_MAX    2048 /* any message of the exchange, either way */
#define KX_SCRAM_CNONCE_RAW 24   /* random bytes of our nonce (32 base64 characters) */

struct kx_scram {
	enum kx_scram_hash hash;
	char nonce[KX_SCRAM_NONCE_MAX + 1];              /* ours */
	char client_first_bare[KX_SCRAM_MSG_MAX + 1];    /* "n=USER,r=NONCE" */
	uint8_t server_signature[64];                    /* expected, set by kx_scram_client_final() */
	size_t signature_len;                            /* 0 until then */
};

/*
 * RFC 5802's saslname: ',' as "=2C" and '=' as "=3D". False (out untouched
 * beyond outlen) when out is too small for the result and its NUL.
 */
bool kx_scram_escape_user(const char *user, char *out, size_t outlen);

/*
 * Starts an exchange: writes the client-first message ("n,,n=USER,r=NONCE",
 * NUL-terminated) to out. nonce NULL: a fresh one from RAND_bytes (24 bytes,
 * base64); tests pass RFC 7677's. False with err set on a user name that is
 * empty, too long or has a NUL/control byte, a bad nonce, or no randomness.
 */
bool kx_scram_client_first(struct kx_scram *s, enum kx_scram_hash hash, const char *user, const char *nonce, char *out,
                           size_t outlen, char *err, size_t errlen);

/*
 * Reads the server-first message (len bytes, not NUL-terminated), checks it
 * (no m= extension, a nonce that extends ours, a base64 salt, an iteration
 * count in KX_SCRAM_MIN_ITERATIONS..KX_SCRAM_MAX_ITERATIONS), and writes the
 * client-final message (NUL-terminated) to out. Remembers the server
 * signature to expect. False with err set otherwise.
 */
bool kx_scram_client_final(struct kx_scram *s, const char *password, const uint8_t *server_first, size_t len,
                           char *out, size_t outlen, char *err, size_t errlen);

/*
 * Checks the server-final message: "v=SIGNATURE" must carry the signature
 * kx_scram_client_final() computed ("the broker's SCRAM signature does not
 * verify" otherwise); "e=VALUE" is the server's error.
 */
bool kx_scram_server_final(const struct kx_scram *s, const uint8_t *msg, size_t len, char *err, size_t errlen);

/* Forgets the keys and messages of an exchange. */
void kx_scram_clear(struct kx_scram *s);

/*
 * PLAIN's one message: authzid (empty), NUL, user, NUL, password. Returns
 * its length, or 0 when it does not fit in outlen.
 */
size_t kx_sasl_plain(const char *user, const char *password, uint8_t *out, size_t outlen);

/* Base64 (RFC 4648, with padding). Encode writes a NUL; returns the text length, 0 when it does not fit. */
size_t kx_base64_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
/* Strict decode: padding required, no whitespace; returns false on anything else or when out is too small. */
bool kx_base64_decode(const char *in, size_t len, uint8_t *out, size_t outlen, size_t *outn);

#endif
