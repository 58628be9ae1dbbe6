/*
 * sasl_server: SCRAM and PLAIN, server side, and the sasl.users file
 * (sasl_server.h). Written from RFC 5802 (SCRAM), RFC 7677 (SCRAM-SHA-256)
 * and RFC 4616 (PLAIN).
 */
#include "sasl_server.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

#define KX_SCRAM_SNONCE_RAW    24
#define KX_SASL_USERS_FILE_MAX (64u << 20)

static void kx_ss_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void kx_ss_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

const char *kx_scram_mechanism(enum kx_scram_hash h)
{
	return h == KX_SCRAM_SHA_512 ? "SCRAM-SHA-512" : "SCRAM-SHA-256";
}

static const EVP_MD *kx_ss_md(enum kx_scram_hash h)
{
	return h == KX_SCRAM_SHA_512 ? EVP_sha512() : EVP_sha256();
}

static size_t kx_ss_hlen(enum kx_scram_hash h)
{
	return h == KX_SCRAM_SHA_512 ? 64 : 32;
}

static bool kx_ss_hmac(enum kx_scram_hash h, const uint8_t *key, size_t klen, const void *data, size_t dlen,
                       uint8_t *out)
{
	unsigned int n = 0;
	return HMAC(kx_ss_md(h), key, (int)klen, data, dlen, out, &n) != NULL && n == kx_ss_hlen(h);
}

static bool kx_ss_digest(enum kx_scram_hash h, const uint8_t *in, size_t len, uint8_t *out)
{
	unsigned int n = 0;
	return EVP_Digest(in, len, out, &n, kx_ss_md(h), NULL) == 1 && n == kx_ss_hlen(h);
}

/* ---- credentials ------------------------------------------------------------ */

bool kx_scram_cred_make(struct kx_scram_cred *c, enum kx_scram_hash h, const char *password, size_t plen,
                        const uint8_t *salt, size_t salt_len, uint32_t iterations)
{
	uint8_t salted[64], client_key[64];
	memset(c, 0, sizeof(*c));
	c->hash = h;
	c->iterations = iterations;
	if (salt) {
		if (salt_len == 0 || salt_len > sizeof(c->salt))
			return false;
		memcpy(c->salt, salt, salt_len);
		c->salt_len = salt_len;
	} else {
		c->salt_len = 16;
		if (RAND_bytes(c->salt, 16) != 1)
			return false;
	}
	size_t hl = kx_ss_hlen(h);
	bool ok = PKCS5_PBKDF2_HMAC(password, (int)plen, c->salt, (int)c->salt_len, (int)iterations, kx_ss_md(h),
	                            (int)hl, salted) == 1 &&
	          kx_ss_hmac(h, salted, hl, "Client Key", 10, client_key) &&
	          kx_ss_digest(h, client_key, hl, c->stored_key) &&
	          kx_ss_hmac(h, salted, hl, "Server Key", 10, c->server_key);
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	return ok;
}

bool kx_scram_cred_line(const char *user, const struct kx_scram_cred *c, char *out, size_t outlen)
{
	char salt[KX_SCRAM_SALT_MAX * 2], stored[100], server[100];
	size_t hl = kx_ss_hlen(c->hash);
	if (!kx_base64_encode(c->salt, c->salt_len, salt, sizeof(salt)) ||
	    !kx_base64_encode(c->stored_key, hl, stored, sizeof(stored)) ||
	    !kx_base64_encode(c->server_key, hl, server, sizeof(server)))
		return false;
	int n = snprintf(out, outlen, "%s %s %u %s %s %s\n", user, kx_scram_mechanism(c->hash), c->iterations, salt,
	                 stored, server);
	return n > 0 && (size_t)n < outlen;
}

/* ---- the sasl.users file ------------------------------------------------------ */

static int kx_ss_user_cmp(const void *a, const void *b)
{
	return strcmp(((const struct kx_sasl_user *)a)->name, ((const struct kx_sasl_user *)b)->name);
}

/* A user name as the file holds it: UTF-8, no space or control character. */
static bool kx_ss_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > KX_SCRAM_USER_MAX || !kx_text_clean((const uint8_t *)s, len))
		return false;
	for (size_t i = 0; i < len; i++)
		if (s[i] == ' ')
			return false;
	return true;
}

/* Splits a line into up to max fields at spaces and tabs; returns how many (max + 1: too many). */
static size_t kx_ss_fields(char *line, char **f, size_t max)
{
	size_t n = 0;
	char *save = NULL;
	for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == max)
			return max + 1;
		f[n++] = t;
	}
	return n;
}

static bool kx_ss_key(const char *b64, size_t want, uint8_t *out)
{
	size_t n = 0;
	return kx_base64_decode(b64, strlen(b64), out, 64, &n) && n == want;
}

/* One line's credential into *c and its user name into name; false with why set. */
static bool kx_ss_line(char *line, char *name, struct kx_scram_cred *c, char *why, size_t whylen)
{
	char *f[6];
	size_t n = kx_ss_fields(line, f, 6);
	if (n != 6) {
		kx_ss_err(why, whylen, "%zu fields (expected USER MECHANISM ITERATIONS SALT STOREDKEY SERVERKEY)", n);
		return false;
	}
	if (!kx_ss_name_ok(f[0], strlen(f[0]))) {
		kx_ss_err(why, whylen,
		          "the user name must be 1..%d bytes of UTF-8 without spaces or control characters",
		          KX_SCRAM_USER_MAX);
		return false;
	}
	snprintf(name, KX_SCRAM_USER_MAX + 1, "%s", f[0]);
	memset(c, 0, sizeof(*c));
	if (strcmp(f[1], "SCRAM-SHA-256") == 0)
		c->hash = KX_SCRAM_SHA_256;
	else if (strcmp(f[1], "SCRAM-SHA-512") == 0)
		c->hash = KX_SCRAM_SHA_512;
	else {
		kx_ss_err(why, whylen, "mechanism '%.20s' (expected SCRAM-SHA-256 or SCRAM-SHA-512)", f[1]);
		return false;
	}
	char *end = NULL;
	errno = 0;
	unsigned long it = strtoul(f[2], &end, 10);
	if (errno || *end || f[2][0] < '0' || f[2][0] > '9' || it < KX_SCRAM_MIN_ITERATIONS ||
	    it > KX_SCRAM_MAX_ITERATIONS) {
		kx_ss_err(why, whylen, "iterations '%.20s' not in %d..%d", f[2], KX_SCRAM_MIN_ITERATIONS,
		          KX_SCRAM_MAX_ITERATIONS);
		return false;
	}
	c->iterations = (uint32_t)it;
	if (!kx_base64_decode(f[3], strlen(f[3]), c->salt, sizeof(c->salt), &c->salt_len) || c->salt_len == 0) {
		kx_ss_err(why, whylen, "the salt is not base64 of 1..%d bytes", KX_SCRAM_SALT_MAX);
		return false;
	}
	size_t hl = kx_ss_hlen(c->hash);
	if (!kx_ss_key(f[4], hl, c->stored_key) || !kx_ss_key(f[5], hl, c->server_key)) {
		kx_ss_err(why, whylen, "StoredKey and ServerKey must be base64 of %zu bytes for %s", hl, f[1]);
		return false;
	}
	return true;
}

void kx_sasl_users_free(struct kx_sasl_users *u)
{
	if (u->users)
		OPENSSL_cleanse(u->users, u->cnt * sizeof(*u->users));
	free(u->users);
	OPENSSL_cleanse(u, sizeof(*u));
}

bool kx_sasl_users_parse(const char *text, size_t len, const char *path, struct kx_sasl_users *out, char *err,
                         size_t errlen)
{
	memset(out, 0, sizeof(*out));
	size_t cap = 0, lineno = 0;
	char line[2048], why[200];
	for (size_t at = 0; at < len;) {
		const char *nl = memchr(text + at, '\n', len - at);
		size_t l = nl ? (size_t)(nl - (text + at)) : len - at;
		const char *p = text + at;
		at += l + (nl != NULL);
		lineno++;
		if (l > 0 && p[l - 1] == '\r')
			l--;
		if (l >= sizeof(line)) {
			kx_ss_err(err, errlen, "%s:%zu: a line of %zu bytes (at most %zu)", path, lineno, l,
			          sizeof(line) - 1);
			goto fail;
		}
		if (memchr(p, '\0', l)) {
			kx_ss_err(err, errlen, "%s:%zu: a NUL byte", path, lineno);
			goto fail;
		}
		memcpy(line, p, l);
		line[l] = '\0';
		size_t lead = strspn(line, " \t");
		if (line[lead] == '\0' || line[lead] == '#')
			continue;
		char name[KX_SCRAM_USER_MAX + 1];
		struct kx_scram_cred c;
		if (!kx_ss_line(line, name, &c, why, sizeof(why))) {
			kx_ss_err(err, errlen, "%s:%zu: %s", path, lineno, why);
			goto fail;
		}
		struct kx_sasl_user *u = NULL;
		for (size_t i = 0; i < out->cnt && !u; i++) /* linear: a file's lines, read once at start */
			if (strcmp(out->users[i].name, name) == 0)
				u = &out->users[i];
		if (u && u->has[c.hash]) {
			kx_ss_err(err, errlen, "%s:%zu: a second %s line for user %s", path, lineno,
			          kx_scram_mechanism(c.hash), name);
			goto fail;
		}
		if (!u) {
			if (out->cnt == KX_SASL_USERS_MAX) {
				kx_ss_err(err, errlen, "%s:%zu: more than %d users", path, lineno, KX_SASL_USERS_MAX);
				goto fail;
			}
			if (out->cnt == cap) {
				size_t ncap = cap ? cap * 2 : 16;
				struct kx_sasl_user *nu = realloc(out->users, ncap * sizeof(*nu));
				if (!nu) {
					kx_ss_err(err, errlen, "%s: out of memory", path);
					goto fail;
				}
				out->users = nu;
				cap = ncap;
			}
			u = &out->users[out->cnt++];
			memset(u, 0, sizeof(*u));
			snprintf(u->name, sizeof(u->name), "%s", name);
		}
		u->has[c.hash] = true;
		u->cred[c.hash] = c;
		OPENSSL_cleanse(&c, sizeof(c));
	}
	OPENSSL_cleanse(line, sizeof(line));
	if (out->cnt == 0) {
		kx_ss_err(err, errlen,
		          "%s: no user (lines: USER MECHANISM ITERATIONS SALT STOREDKEY SERVERKEY; "
		          "`kstretch --sasl-user NAME` makes them)",
		          path);
		goto fail;
	}
	if (out->cnt > 1)
		qsort(out->users, out->cnt, sizeof(*out->users), kx_ss_user_cmp);
	if (RAND_bytes(out->fake_key, sizeof(out->fake_key)) != 1) {
		kx_ss_err(err, errlen, "%s: no random bytes (OpenSSL's RAND_bytes failed)", path);
		goto fail;
	}
	return true;
fail:
	OPENSSL_cleanse(line, sizeof(line));
	kx_sasl_users_free(out);
	return false;
}

bool kx_sasl_users_load(const char *path, struct kx_sasl_users *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	FILE *f = fopen(path, "rb");
	if (!f) {
		kx_ss_err(err, errlen, "%s: %s", path, strerror(errno));
		return false;
	}
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	bool ok = buf != NULL;
	while (ok) {
		if (n == cap) {
			char *nb = cap < KX_SASL_USERS_FILE_MAX ? realloc(buf, cap * 2) : NULL;
			if (!nb) {
				kx_ss_err(err, errlen, "%s: larger than %u MiB, or out of memory", path,
				          KX_SASL_USERS_FILE_MAX >> 20);
				ok = false;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t r = fread(buf + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	if (ok && ferror(f)) {
		kx_ss_err(err, errlen, "%s: %s", path, strerror(errno));
		ok = false;
	}
	fclose(f);
	if (!buf)
		kx_ss_err(err, errlen, "%s: out of memory", path);
	ok = ok && kx_sasl_users_parse(buf, n, path, out, err, errlen);
	if (buf)
		OPENSSL_cleanse(buf, n);
	free(buf);
	return ok;
}

const struct kx_sasl_user *kx_sasl_users_find(const struct kx_sasl_users *u, const char *name, size_t len)
{
	struct kx_sasl_user key;
	if (len == 0 || len > KX_SCRAM_USER_MAX || memchr(name, '\0', len) || !u->cnt)
		return NULL;
	memcpy(key.name, name, len);
	key.name[len] = '\0';
	return bsearch(&key, u->users, u->cnt, sizeof(*u->users), kx_ss_user_cmp);
}

/* ---- SCRAM, server side ------------------------------------------------------- */

void kx_scrams_clear(struct kx_scrams *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
}

/* RFC 5802's saslname back to the name: "=2C" ',' and "=3D" '='; any other '=' is malformed. */
static bool kx_ss_unescape(const char *in, size_t len, char *out, size_t outlen)
{
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == '=') {
			if (len - i >= 3 && in[i + 1] == '2' && in[i + 2] == 'C')
				ch = ',';
			else if (len - i >= 3 && in[i + 1] == '3' && in[i + 2] == 'D')
				ch = '=';
			else
				return false;
			i += 2;
		} else if (ch == ',') {
			return false;
		}
		if (o + 1 >= outlen)
			return false;
		out[o++] = ch;
	}
	out[o] = '\0';
	return o > 0;
}

/* Printable ASCII but ',' (a nonce). */
static bool kx_ss_printable(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x21 || s[i] > 0x7e || s[i] == ',')
			return false;
	return len > 0;
}

/* An unknown user's credential: a salt derived from the name (the same on every try), a key no proof matches. */
static bool kx_ss_fake(struct kx_scrams *s, const struct kx_sasl_users *users)
{
	uint8_t mac[64];
	s->fake = true;
	s->cred.hash = s->hash;
	s->cred.iterations = KX_SCRAM_MIN_ITERATIONS;
	if (!kx_ss_hmac(KX_SCRAM_SHA_256, users->fake_key, sizeof(users->fake_key), s->user, strlen(s->user), mac))
		return false;
	memcpy(s->cred.salt, mac, 16);
	s->cred.salt_len = 16;
	return RAND_bytes(s->cred.stored_key, sizeof(s->cred.stored_key)) == 1 &&
	       RAND_bytes(s->cred.server_key, sizeof(s->cred.server_key)) == 1;
}

/* The next attribute "x=value" of [*p, end): its name and value; *p moves past it and its ','. */
static bool kx_ss_attr(const char **p, const char *end, char *name, const char **val, size_t *vlen)
{
	const char *a = *p;
	if (end - a < 2 || a[1] != '=' || !((a[0] >= 'a' && a[0] <= 'z') || (a[0] >= 'A' && a[0] <= 'Z')))
		return false;
	const char *v = a + 2, *comma = memchr(v, ',', (size_t)(end - v));
	*name = a[0];
	*val = v;
	*vlen = (size_t)((comma ? comma : end) - v);
	*p = comma ? comma + 1 : end;
	return true;
}

static bool kx_ss_bounded(const uint8_t *msg, size_t len, const char *what, char *err, size_t errlen)
{
	if (len == 0 || len > KX_SCRAM_MSG_MAX) {
		kx_ss_err(err, errlen, "SCRAM %s message of %zu bytes (expected 1..%d)", what, len, KX_SCRAM_MSG_MAX);
		return false;
	}
	for (size_t i = 0; i < len; i++)
		if (msg[i] < 0x20 || msg[i] == 0x7f) {
			kx_ss_err(err, errlen, "SCRAM %s message has a control byte at %zu", what, i);
			return false;
		}
	return true;
}

bool kx_scrams_first(struct kx_scrams *s, enum kx_scram_hash h, const struct kx_sasl_users *users, const uint8_t *msg,
                     size_t len, const char *snonce, char *out, size_t outlen, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	s->hash = h;
	s->step = 2; /* until it succeeds */
	if (!kx_ss_bounded(msg, len, "client-first", err, errlen))
		return false;
	const char *m = (const char *)msg, *end = m + len;
	/* gs2 header: "n," or "y," (no channel binding: kstretch offers no -PLUS), then [a=authzid] ",". */
	if (len < 3 || (m[0] != 'n' && m[0] != 'y') || m[1] != ',') {
		kx_ss_err(err, errlen,
		          "SCRAM client-first message does not start with \"n,\" or \"y,\" (channel binding "
		          "is not offered)");
		return false;
	}
	const char *c2 = memchr(m + 2, ',', (size_t)(end - (m + 2)));
	if (!c2) {
		kx_ss_err(err, errlen, "SCRAM client-first message has no end to its gs2 header");
		return false;
	}
	char authzid[KX_SCRAM_USER_MAX + 1] = "";
	if (c2 > m + 2) {
		if (c2 - (m + 2) < 3 || m[2] != 'a' || m[3] != '=' ||
		    !kx_ss_unescape(m + 4, (size_t)(c2 - (m + 4)), authzid, sizeof(authzid))) {
			kx_ss_err(err, errlen, "SCRAM client-first message has a malformed authzid");
			return false;
		}
	}
	size_t gl = (size_t)(c2 + 1 - m);
	memcpy(s->gs2, m, gl);
	s->gs2[gl] = '\0';
	const char *bare = c2 + 1, *p = bare, *v;
	size_t vl;
	char name;
	if (p < end && p[0] == 'm' && end - p >= 2 && p[1] == '=') {
		kx_ss_err(err, errlen,
		          "SCRAM client-first message asks for a mandatory extension (m=) kstretch does not "
		          "know");
		return false;
	}
	if (!kx_ss_attr(&p, end, &name, &v, &vl) || name != 'n' || !kx_ss_unescape(v, vl, s->user, sizeof(s->user)) ||
	    !kx_text_clean((const uint8_t *)s->user, strlen(s->user))) {
		kx_ss_err(err, errlen, "SCRAM client-first message has no valid user name (n=) after its gs2 header");
		return false;
	}
	if (authzid[0] && strcmp(authzid, s->user) != 0) {
		kx_ss_err(err, errlen,
		          "SCRAM authzid is not the user authenticating (kstretch authorizes no one else)");
		return false;
	}
	const char *cnonce;
	size_t cnl;
	if (!kx_ss_attr(&p, end, &name, &cnonce, &cnl) || name != 'r' || !kx_ss_printable(cnonce, cnl) ||
	    cnl > KX_SCRAM_NONCE_MAX) {
		kx_ss_err(err, errlen,
		          "SCRAM client-first message has no valid nonce (r=, 1..%d printable characters "
		          "without ',') after the user",
		          KX_SCRAM_NONCE_MAX);
		return false;
	}
	/* Anything after is extensions (Kafka's tokenauth=true among them): ignored. */
	char sn[KX_SCRAM_NONCE_MAX + 1];
	if (snonce) {
		snprintf(sn, sizeof(sn), "%s", snonce);
	} else {
		uint8_t raw[KX_SCRAM_SNONCE_RAW];
		if (RAND_bytes(raw, sizeof(raw)) != 1) {
			kx_ss_err(err, errlen, "no random bytes for the SCRAM nonce (OpenSSL's RAND_bytes failed)");
			return false;
		}
		kx_base64_encode(raw, sizeof(raw), sn, sizeof(sn));
	}
	snprintf(s->nonce, sizeof(s->nonce), "%.*s%s", (int)cnl, cnonce, sn);
	snprintf(s->client_first_bare, sizeof(s->client_first_bare), "%.*s", (int)(end - bare), bare);

	const struct kx_sasl_user *u = kx_sasl_users_find(users, s->user, strlen(s->user));
	if (u && u->has[h])
		s->cred = u->cred[h];
	else if (!kx_ss_fake(s, users)) {
		kx_ss_err(err, errlen, "no random bytes (OpenSSL's RAND_bytes failed)");
		return false;
	}
	char salt[KX_SCRAM_SALT_MAX * 2];
	kx_base64_encode(s->cred.salt, s->cred.salt_len, salt, sizeof(salt));
	int n =
	    snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%u", s->nonce, salt, s->cred.iterations);
	if (n < 0 || (size_t)n >= sizeof(s->server_first) || (size_t)n >= outlen) {
		kx_ss_err(err, errlen, "the SCRAM server-first message does not fit");
		return false;
	}
	memcpy(out, s->server_first, (size_t)n + 1);
	s->step = 1;
	return true;
}

bool kx_scrams_final(struct kx_scrams *s, const uint8_t *msg, size_t len, char *out, size_t outlen, char *err,
                     size_t errlen)
{
	if (s->step != 1) {
		kx_ss_err(err, errlen, "SCRAM client-final message out of turn");
		return false;
	}
	s->step = 2;
	if (!kx_ss_bounded(msg, len, "client-final", err, errlen))
		return false;
	const char *m = (const char *)msg, *end = m + len, *p = m, *v;
	size_t vl;
	char name;
	char cb[sizeof(s->gs2) * 2];
	kx_base64_encode((const uint8_t *)s->gs2, strlen(s->gs2), cb, sizeof(cb));
	if (!kx_ss_attr(&p, end, &name, &v, &vl) || name != 'c' || vl != strlen(cb) || memcmp(v, cb, vl) != 0) {
		kx_ss_err(err, errlen, "SCRAM client-final message's channel binding (c=) is not its gs2 header's");
		return false;
	}
	if (!kx_ss_attr(&p, end, &name, &v, &vl) || name != 'r' || vl != strlen(s->nonce) ||
	    memcmp(v, s->nonce, vl) != 0) {
		kx_ss_err(err, errlen, "SCRAM client-final message's nonce (r=) is not the one agreed");
		return false;
	}
	const char *proof_at = NULL;
	while (p < end) { /* extensions, then p= last */
		const char *here = p;
		if (!kx_ss_attr(&p, end, &name, &v, &vl)) {
			kx_ss_err(err, errlen, "SCRAM client-final message has a malformed attribute at byte %zu",
			          (size_t)(here - m));
			return false;
		}
		if (name == 'p') {
			proof_at = here;
			break;
		}
	}
	if (!proof_at || p != end) {
		kx_ss_err(err, errlen, "SCRAM client-final message has no proof (p=) as its last attribute");
		return false;
	}
	uint8_t proof[64];
	size_t pl = 0, hl = kx_ss_hlen(s->hash);
	if (!kx_base64_decode(v, vl, proof, sizeof(proof), &pl) || pl != hl) {
		kx_ss_err(err, errlen, "SCRAM proof is not base64 of %zu bytes", hl);
		return false;
	}
	size_t without = (size_t)(proof_at - 1 - m); /* up to the ',' before p= */
	char auth[3 * KX_SCRAM_MSG_MAX + 8];
	int an = snprintf(auth, sizeof(auth), "%s,%s,%.*s", s->client_first_bare, s->server_first, (int)without, m);
	if (an < 0 || (size_t)an >= sizeof(auth)) {
		kx_ss_err(err, errlen, "SCRAM messages too long");
		return false;
	}
	uint8_t sig[64], client_key[64], stored[64], server_sig[64];
	bool ok = kx_ss_hmac(s->hash, s->cred.stored_key, hl, auth, (size_t)an, sig) &&
	          kx_ss_hmac(s->hash, s->cred.server_key, hl, auth, (size_t)an, server_sig);
	if (ok) {
		for (size_t i = 0; i < hl; i++)
			client_key[i] = proof[i] ^ sig[i];
		ok = kx_ss_digest(s->hash, client_key, hl, stored) && !s->fake &&
		     CRYPTO_memcmp(stored, s->cred.stored_key, hl) == 0;
	}
	if (ok) {
		char sig64[100];
		kx_base64_encode(server_sig, hl, sig64, sizeof(sig64));
		int n = snprintf(out, outlen, "v=%s", sig64);
		ok = n > 0 && (size_t)n < outlen;
		if (!ok)
			kx_ss_err(err, errlen, "the SCRAM server-final message does not fit");
	} else {
		kx_ss_err(err, errlen, "invalid credentials with SASL mechanism %s", kx_scram_mechanism(s->hash));
	}
	OPENSSL_cleanse(auth, sizeof(auth));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(server_sig, sizeof(server_sig));
	return ok;
}

/* ---- PLAIN --------------------------------------------------------------------- */

bool kx_sasl_plain_check(const struct kx_sasl_users *users, const uint8_t *msg, size_t len, char *user, size_t userlen,
                         char *err, size_t errlen)
{
	const uint8_t *end = msg + len, *z1 = len ? memchr(msg, '\0', len) : NULL;
	const uint8_t *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(end - (z1 + 1))) : NULL;
	if (len > KX_SCRAM_USER_MAX * 2 + KX_SCRAM_MSG_MAX || !z2 || memchr(z2 + 1, '\0', (size_t)(end - (z2 + 1)))) {
		kx_ss_err(err, errlen,
		          "PLAIN message is not authzid NUL user NUL password (or is longer than %d bytes)",
		          KX_SCRAM_USER_MAX * 2 + KX_SCRAM_MSG_MAX);
		return false;
	}
	size_t al = (size_t)(z1 - msg), ul = (size_t)(z2 - (z1 + 1)), pl = (size_t)(end - (z2 + 1));
	if (ul == 0 || ul > KX_SCRAM_USER_MAX || ul >= userlen || !kx_text_clean(z1 + 1, ul)) {
		kx_ss_err(err, errlen, "PLAIN user name must be 1..%d bytes of UTF-8 without control characters",
		          KX_SCRAM_USER_MAX);
		return false;
	}
	if (al && (al != ul || memcmp(msg, z1 + 1, ul) != 0)) {
		kx_ss_err(err, errlen,
		          "PLAIN authzid is not the user authenticating (kstretch authorizes no one else)");
		return false;
	}
	const struct kx_sasl_user *u = kx_sasl_users_find(users, (const char *)z1 + 1, ul);
	bool ok = false;
	if (u) {
		enum kx_scram_hash h = u->has[KX_SCRAM_SHA_512] ? KX_SCRAM_SHA_512 : KX_SCRAM_SHA_256;
		const struct kx_scram_cred *c = &u->cred[h];
		char pw[KX_SCRAM_USER_MAX * 2 + KX_SCRAM_MSG_MAX + 1];
		struct kx_scram_cred d;
		memcpy(pw, z2 + 1, pl);
		pw[pl] = '\0';
		ok = kx_scram_cred_make(&d, h, pw, pl, c->salt, c->salt_len, c->iterations) &&
		     CRYPTO_memcmp(d.stored_key, c->stored_key, kx_ss_hlen(h)) == 0;
		OPENSSL_cleanse(pw, sizeof(pw));
		OPENSSL_cleanse(&d, sizeof(d));
	}
	if (!ok) {
		kx_ss_err(err, errlen, "invalid credentials with SASL mechanism PLAIN");
		return false;
	}
	memcpy(user, z1 + 1, ul);
	user[ul] = '\0';
	return true;
}
