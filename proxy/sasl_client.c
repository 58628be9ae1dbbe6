/*
 * sasl_client: PLAIN and SCRAM client messages (see sasl_client.h). Written
 * from RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256) and RFC 4616 (PLAIN).
 */
#include "sasl_client.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "text.h"

static void kx_sasl_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void kx_sasl_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- base64 ------------------------------------------------------------ */

static const char kx_b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t kx_base64_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t need = (len + 2) / 3 * 4;
	if (outlen <= need)
		return 0;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = kx_b64[v >> 18 & 63];
		out[o++] = kx_b64[v >> 12 & 63];
		out[o++] = (char)(i + 1 < len ? kx_b64[v >> 6 & 63] : '=');
		out[o++] = (char)(i + 2 < len ? kx_b64[v & 63] : '=');
	}
	out[o] = '\0';
	return o;
}

static int kx_b64_value(char c)
{
	const char *p = c ? strchr(kx_b64, c) : NULL;
	return p ? (int)(p - kx_b64) : -1;
}

bool kx_base64_decode(const char *in, size_t len, uint8_t *out, size_t outlen, size_t *outn)
{
	if (len % 4 != 0)
		return false;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		bool last = i + 4 == len;
		int pad = 0;
		uint32_t v = 0;
		for (int j = 0; j < 4; j++) {
			char c = in[i + j];
			int d = 0;
			if (c == '=' && last && j >= 2 && (j == 3 || in[i + 3] == '=')) {
				pad++;
				d = 0;
			} else if (pad || (d = kx_b64_value(c)) < 0) {
				return false;
			}
			v = v << 6 | (uint32_t)d;
		}
		size_t n = 3 - (size_t)pad;
		if (o + n > outlen)
			return false;
		/* Bits under the padding must be zero (one text per byte string). */
		if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff)))
			return false;
		out[o++] = (uint8_t)(v >> 16);
		if (n > 1)
			out[o++] = (uint8_t)(v >> 8);
		if (n > 2)
			out[o++] = (uint8_t)v;
	}
	*outn = o;
	return true;
}

/* ---- PLAIN --------------------------------------------------------------- */

size_t kx_sasl_plain(const char *user, const char *password, uint8_t *out, size_t outlen)
{
	size_t u = strlen(user), p = strlen(password);
	if (u + p + 2 > outlen)
		return 0;
	out[0] = '\0';
	memcpy(out + 1, user, u);
	out[1 + u] = '\0';
	memcpy(out + 2 + u, password, p);
	return u + p + 2;
}

/* ---- SCRAM --------------------------------------------------------------- */

static const EVP_MD *kx_scram_md(enum kx_scram_hash h)
{
	return h == KX_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

bool kx_scram_escape_user(const char *user, char *out, size_t outlen)
{
	size_t o = 0;
	for (const char *p = user; *p; p++) {
		const char *rep = *p == ',' ? "=2C" : *p == '=' ? "=3D" : NULL;
		size_t n = rep ? 3 : 1;
		if (o + n >= outlen)
			return false;
		if (rep)
			memcpy(out + o, rep, 3);
		else
			out[o] = *p;
		o += n;
	}
	if (o >= outlen)
		return false;
	out[o] = '\0';
	return true;
}

/* A nonce is printable ASCII without ',' (RFC 5802 "printable"). */
static bool kx_scram_nonce_ok(const char *s, size_t len)
{
	if (len == 0 || len > KX_SCRAM_NONCE_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return true;
}

void kx_scram_clear(struct kx_scram *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

bool kx_scram_client_first(struct kx_scram *s, enum kx_scram_hash hash, const char *user, const char *nonce, char *out,
                           size_t outlen, char *err, size_t errlen)
{
	char escaped[3 * KX_SCRAM_USER_MAX + 1];
	size_t ulen = strlen(user);
	memset(s, 0, sizeof(*s));
	s->hash = hash;
	if (ulen == 0 || ulen > KX_SCRAM_USER_MAX || !kx_text_clean((const uint8_t *)user, ulen)) {
		kx_sasl_err(err, errlen, "the user name must be 1..%d bytes of UTF-8 without control characters",
		            KX_SCRAM_USER_MAX);
		return false;
	}
	if (!kx_scram_escape_user(user, escaped, sizeof(escaped))) {
		kx_sasl_err(err, errlen, "the user name is too long once escaped");
		return false;
	}
	if (nonce) {
		if (!kx_scram_nonce_ok(nonce, strlen(nonce))) {
			kx_sasl_err(err, errlen, "a client nonce must be printable ASCII without ','");
			return false;
		}
		snprintf(s->nonce, sizeof(s->nonce), "%s", nonce);
	} else {
		uint8_t raw[KX_SCRAM_CNONCE_RAW];
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			kx_sasl_err(err, errlen, "no random bytes for the SCRAM nonce (OpenSSL's RAND_bytes failed)");
			return false;
		}
		kx_base64_encode(raw, sizeof(raw), s->nonce, sizeof(s->nonce));
	}
	int n = snprintf(s->client_first_bare, sizeof(s->client_first_bare), "n=%s,r=%s", escaped, s->nonce);
	if (n < 0 || (size_t)n >= sizeof(s->client_first_bare) || (size_t)n + 3 >= outlen) {
		kx_sasl_err(err, errlen, "the SCRAM client-first message does not fit");
		return false;
	}
	snprintf(out, outlen, "n,,%s", s->client_first_bare); /* gs2 header: no channel binding, no authzid */
	return true;
}

/* One "a=value" attribute of a message; *p moves past it and its ','. */
static bool kx_scram_attr(const char **p, const char *end, char name, const char **val, size_t *vlen)
{
	const char *a = *p;
	if (end - a < 2 || a[0] != name || a[1] != '=')
		return false;
	const char *v = a + 2, *comma = memchr(v, ',', (size_t)(end - v));
	const char *ve = comma ? comma : end;
	*val = v;
	*vlen = (size_t)(ve - v);
	*p = comma ? comma + 1 : end;
	return true;
}

static bool kx_hmac(const EVP_MD *md, const uint8_t *key, size_t klen, const void *data, size_t dlen, uint8_t *out)
{
	unsigned int n = 0;
	return HMAC(md, key, (int)klen, data, dlen, out, &n) != NULL && n == (unsigned)EVP_MD_get_size(md);
}

bool kx_scram_client_final(struct kx_scram *s, const char *password, const uint8_t *server_first, size_t len,
                           char *out, size_t outlen, char *err, size_t errlen)
{
	const char *msg = (const char *)server_first, *end = msg + len, *p = msg;
	const char *nonce, *salt64, *iter;
	size_t nonce_len, salt64_len, iter_len;
	uint8_t salt[KX_SCRAM_SALT_MAX];
	size_t salt_len = 0;

	if (len == 0 || len > KX_SCRAM_MSG_MAX) {
		kx_sasl_err(err, errlen, "SCRAM server-first message of %zu bytes (expected 1..%d)", len,
		            KX_SCRAM_MSG_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((uint8_t)msg[i] < 0x20 || msg[i] == 0x7f) {
			kx_sasl_err(err, errlen, "SCRAM server-first message has a control byte at %zu", i);
			return false;
		}
	}
	if (len >= 2 && msg[0] == 'm' && msg[1] == '=') {
		kx_sasl_err(err, errlen, "SCRAM server-first message asks for a mandatory extension (m=) kstretch "
		                         "does not know");
		return false;
	}
	if (!kx_scram_attr(&p, end, 'r', &nonce, &nonce_len)) {
		kx_sasl_err(err, errlen, "SCRAM server-first message has no nonce (r=) first");
		return false;
	}
	size_t ours = strlen(s->nonce);
	if (!kx_scram_nonce_ok(nonce, nonce_len) || nonce_len <= ours || memcmp(nonce, s->nonce, ours) != 0) {
		kx_sasl_err(err, errlen, "SCRAM server nonce does not extend kstretch's nonce (or is not printable, or "
		                         "is longer than %d)", KX_SCRAM_NONCE_MAX);
		return false;
	}
	if (!kx_scram_attr(&p, end, 's', &salt64, &salt64_len)) {
		kx_sasl_err(err, errlen, "SCRAM server-first message has no salt (s=) after the nonce");
		return false;
	}
	if (salt64_len == 0 || !kx_base64_decode(salt64, salt64_len, salt, sizeof(salt), &salt_len) || salt_len == 0) {
		kx_sasl_err(err, errlen, "SCRAM salt is not base64 of 1..%d bytes", KX_SCRAM_SALT_MAX);
		return false;
	}
	if (!kx_scram_attr(&p, end, 'i', &iter, &iter_len)) {
		kx_sasl_err(err, errlen, "SCRAM server-first message has no iteration count (i=) after the salt");
		return false;
	}
	long iterations = 0;
	bool digits = iter_len > 0 && iter_len <= 9;
	for (size_t i = 0; digits && i < iter_len; i++) {
		digits = iter[i] >= '0' && iter[i] <= '9';
		iterations = iterations * 10 + (iter[i] - '0');
	}
	if (!digits || iterations < KX_SCRAM_MIN_ITERATIONS || iterations > KX_SCRAM_MAX_ITERATIONS) {
		kx_sasl_err(err, errlen, "SCRAM iteration count '%.*s' is not in %d..%d", (int)(iter_len > 20 ? 20 : iter_len),
		            iter, KX_SCRAM_MIN_ITERATIONS, KX_SCRAM_MAX_ITERATIONS);
		return false;
	}
	/* Anything after i= is extensions, which a client ignores (RFC 5802 5.1). */

	/* client-final-message-without-proof: "biws" is base64("n,,"), the gs2 header. */
	char without_proof[KX_SCRAM_NONCE_MAX + 16];
	int wn = snprintf(without_proof, sizeof(without_proof), "c=biws,r=%.*s", (int)nonce_len, nonce);
	char auth_message[3 * KX_SCRAM_MSG_MAX + 8];
	int an = snprintf(auth_message, sizeof(auth_message), "%s,%.*s,%s", s->client_first_bare, (int)len, msg,
	                  without_proof);
	if (wn < 0 || an < 0 || (size_t)an >= sizeof(auth_message)) {
		kx_sasl_err(err, errlen, "SCRAM messages too long");
		return false;
	}

	const EVP_MD *md = kx_scram_md(s->hash);
	size_t hl = (size_t)EVP_MD_get_size(md);
	uint8_t salted[64], client_key[64], stored_key[64], client_sig[64], proof[64], server_key[64];
	unsigned int sl = 0;
	bool ok = PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, (int)iterations, md, (int)hl,
	                            salted) == 1 &&
	          kx_hmac(md, salted, hl, "Client Key", 10, client_key) &&
	          EVP_Digest(client_key, hl, stored_key, &sl, md, NULL) == 1 && sl == hl &&
	          kx_hmac(md, stored_key, hl, auth_message, (size_t)an, client_sig) &&
	          kx_hmac(md, salted, hl, "Server Key", 10, server_key) &&
	          kx_hmac(md, server_key, hl, auth_message, (size_t)an, s->server_signature);
	if (ok) {
		for (size_t i = 0; i < hl; i++)
			proof[i] = client_key[i] ^ client_sig[i];
		char proof64[128];
		kx_base64_encode(proof, hl, proof64, sizeof(proof64));
		int n = snprintf(out, outlen, "%s,p=%s", without_proof, proof64);
		ok = n > 0 && (size_t)n < outlen;
		if (!ok)
			kx_sasl_err(err, errlen, "the SCRAM client-final message does not fit");
	} else {
		kx_sasl_err(err, errlen, "SCRAM key derivation failed in OpenSSL");
	}
	s->signature_len = ok ? hl : 0;
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(client_sig, sizeof(client_sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(auth_message, sizeof(auth_message));
	return ok;
}

bool kx_scram_server_final(const struct kx_scram *s, const uint8_t *msg, size_t len, char *err, size_t errlen)
{
	const char *m = (const char *)msg, *end = m + len, *p = m, *v;
	size_t vlen;
	uint8_t sig[64];
	size_t sig_len = 0;

	if (s->signature_len == 0) {
		kx_sasl_err(err, errlen, "SCRAM server-final message before the client-final one");
		return false;
	}
	if (len > KX_SCRAM_MSG_MAX) {
		kx_sasl_err(err, errlen, "SCRAM server-final message of %zu bytes (at most %d)", len, KX_SCRAM_MSG_MAX);
		return false;
	}
	if (kx_scram_attr(&p, end, 'e', &v, &vlen)) {
		char clean[128];
		size_t n = vlen < sizeof(clean) - 1 ? vlen : sizeof(clean) - 1;
		for (size_t i = 0; i < n; i++)
			clean[i] = (char)(v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?');
		clean[n] = '\0';
		kx_sasl_err(err, errlen, "the broker ended SCRAM with error '%s'", clean);
		return false;
	}
	if (!kx_scram_attr(&p, end, 'v', &v, &vlen)) {
		kx_sasl_err(err, errlen, "SCRAM server-final message has no verifier (v=)");
		return false;
	}
	if (!kx_base64_decode(v, vlen, sig, sizeof(sig), &sig_len)) {
		kx_sasl_err(err, errlen, "SCRAM server signature is not base64 of at most %zu bytes", sizeof(sig));
		return false;
	}
	if (sig_len != s->signature_len || CRYPTO_memcmp(sig, s->server_signature, sig_len) != 0) {
		kx_sasl_err(err, errlen, "the broker's SCRAM signature does not verify");
		return false;
	}
	return true;
}
