/*
 * config: one table of keys (name, default, parser, printer, help); the
 * .properties reader and the flag parser both end in kx_config_set(), so a
 * value means the same thing wherever it was written.
 *
 * Over 1,000 lines on purpose: the table, its value parsers and printers and
 * the two readers that feed it must agree on every value, and read best as one.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "text.h"

#include "sni.h"

struct kx_config_key;

typedef bool (*kx_config_parse_fn)(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                                   size_t whylen);
typedef void (*kx_config_print_fn)(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out);

struct kx_config_key {
	const char *name;
	const char *def; /* default, parsed like any other value */
	kx_config_parse_fn parse;
	kx_config_print_fn print;
	size_t offset; /* of the field in struct kx_config */
	long long min, max;
	const char *const *choices; /* enum names, indexed by value */
	const char *help;
};

/*
 * A key family: every key PREFIX+MEMBER (listener.rack.9092) is one setting,
 * parsed with the member; print writes whole lines, one per member.
 */
struct kx_config_family {
	const char *prefix;      /* "listener.rack." */
	const char *member_name; /* how help shows MEMBER: "PORT" */
	bool (*parse)(struct kx_config *cfg, const char *member, const char *value, char *why, size_t whylen);
	void (*print)(const struct kx_config *cfg, const struct kx_config_family *f, FILE *out);
	const char *help;
};

#define KX_FIELD(f) offsetof(struct kx_config, f)
#define KX_STR_(x)  #x
#define KX_STR(x)   KX_STR_(x)

static void kx_why(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void kx_why(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void *kx_field(struct kx_config *cfg, const struct kx_config_key *key)
{
	return (char *)cfg + key->offset;
}

static const void *kx_cfield(const struct kx_config *cfg, const struct kx_config_key *key)
{
	return (const char *)cfg + key->offset;
}

/* ---- value syntax ------------------------------------------------------ */

static bool kx_is_name_char(char c, bool glob)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == '-' || (glob && c == '*');
}

/* Rack, region and pattern names: [A-Za-z0-9._-] (and `*` in globs). */
static bool kx_valid_name(const char *s, size_t len, bool glob)
{
	if (len == 0 || len >= KX_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!kx_is_name_char(s[i], glob))
			return false;
	return true;
}

/* A DNS name or IPv4 literal (letters, digits, '.', '-', '_'), or an IPv6
 * literal when bracketed is set (hex digits, ':', '.'). */
static bool kx_valid_host(const char *s, size_t len, bool bracketed)
{
	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		bool ok = bracketed ? ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
		                       c == ':' || c == '.')
		                    : ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		                       c == '.' || c == '-' || c == '_');
		if (!ok)
			return false;
	}
	return true;
}

static bool kx_parse_ll(const char *s, size_t len, long long min, long long max, long long *out)
{
	char buf[32];
	char *end;
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (buf[0] == '+' || buf[0] == ' ')
		return false;
	errno = 0;
	long long v = strtoll(buf, &end, 10);
	if (errno || *end != '\0' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* "host:port" or "[v6]:port" in s[0..len). */
static bool kx_parse_hostport_span(const char *s, size_t len, struct kx_hostport *hp, char *why, size_t whylen)
{
	const char *host = s, *colon;
	size_t hostlen;
	bool bracketed = false;
	long long port;

	if (len > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close || close + 1 >= s + len || close[1] != ':') {
			kx_why(why, whylen, "'%.*s' is not [IPV6]:PORT", (int)len, s);
			return false;
		}
		host = s + 1;
		hostlen = (size_t)(close - host);
		colon = close + 1;
		bracketed = true;
	} else {
		colon = memrchr(s, ':', len);
		if (!colon) {
			kx_why(why, whylen, "'%.*s' is not HOST:PORT", (int)len, s);
			return false;
		}
		hostlen = (size_t)(colon - s);
	}
	if (!kx_valid_host(host, hostlen, bracketed)) {
		kx_why(why, whylen, "'%.*s' is not a valid host name or address", (int)hostlen, host);
		return false;
	}
	size_t portlen = len - (size_t)(colon + 1 - s);
	if (!kx_parse_ll(colon + 1, portlen, 1, 65535, &port)) {
		kx_why(why, whylen, "port '%.*s' is not a number in 1..65535", (int)portlen, colon + 1);
		return false;
	}
	memcpy(hp->host, host, hostlen);
	hp->host[hostlen] = '\0';
	hp->port = (uint16_t)port;
	return true;
}

/* Calls fn on each comma-separated item, trimmed of blanks; empty items are errors. */
static bool kx_each_item(const char *value, bool (*fn)(void *ctx, const char *s, size_t len, char *why, size_t whylen),
                         void *ctx, char *why, size_t whylen)
{
	const char *p = value;
	for (;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0) {
			kx_why(why, whylen, "empty item in list '%s'", value);
			return false;
		}
		if (!fn(ctx, p, len, why, whylen))
			return false;
		if (!end)
			return true;
		p = end + 1;
	}
}

/* ---- parsers, one per value type --------------------------------------- */

struct kx_hostport_list_ctx {
	struct kx_hostport *items;
	size_t cnt;
};

static bool kx_hostport_item(void *vctx, const char *s, size_t len, char *why, size_t whylen)
{
	struct kx_hostport_list_ctx *ctx = vctx;
	if (ctx->cnt == KX_BOOTSTRAP_MAX) {
		kx_why(why, whylen, "more than %d servers", KX_BOOTSTRAP_MAX);
		return false;
	}
	return kx_parse_hostport_span(s, len, &ctx->items[ctx->cnt++], why, whylen);
}

static bool kx_parse_bootstrap(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                               size_t whylen)
{
	struct kx_hostport tmp[KX_BOOTSTRAP_MAX] = {0};
	struct kx_hostport_list_ctx ctx = {tmp, 0};
	(void)key;
	if (!kx_each_item(value, kx_hostport_item, &ctx, why, whylen))
		return false;
	memcpy(cfg->bootstrap, tmp, ctx.cnt * sizeof(tmp[0]));
	cfg->bootstrap_cnt = ctx.cnt;
	return true;
}

static bool kx_parse_hostport(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                              size_t whylen)
{
	struct kx_hostport hp;
	if (!kx_parse_hostport_span(value, strlen(value), &hp, why, whylen))
		return false;
	*(struct kx_hostport *)kx_field(cfg, key) = hp;
	return true;
}

static bool kx_parse_host(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                          size_t whylen)
{
	size_t len = strlen(value);
	/* "" keeps the default; an IPv6 literal is written bare here. */
	if (len > 0 && !kx_valid_host(value, len, false) && !kx_valid_host(value, len, true)) {
		kx_why(why, whylen, "'%s' is not a valid host name or address", value);
		return false;
	}
	snprintf(kx_field(cfg, key), KX_HOST_MAX, "%s", value);
	return true;
}

/* A file name ("" = none); checked when the file is read (tls.c). */
static bool kx_parse_path(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                          size_t whylen)
{
	size_t len = strlen(value);
	if (len >= KX_PATH_MAX) {
		kx_why(why, whylen, "a file name of %zu characters: at most %d", len, KX_PATH_MAX - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
			kx_why(why, whylen, "'%s' has a control character at %zu", value, i);
			return false;
		}
	}
	memcpy(kx_field(cfg, key), value, len + 1);
	return true;
}

/* An OpenSSL cipher list (TLS 1.2 names, or TLS_* TLS 1.3 suites), checked by OpenSSL when kstretch starts. */
static bool kx_parse_ciphers(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                             size_t whylen)
{
	size_t len = strlen(value);
	if (len >= KX_CIPHERS_MAX) {
		kx_why(why, whylen, "a cipher list of %zu characters: at most %d", len, KX_CIPHERS_MAX - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		char c = value[i];
		if (!isalnum((unsigned char)c) && !strchr(":_-+!@=,. ", c)) {
			kx_why(why, whylen, "'%c' at %zu is not in an OpenSSL cipher list", c, i);
			return false;
		}
	}
	memcpy(kx_field(cfg, key), value, len + 1);
	return true;
}

/* sasl.mechanisms: a list of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512. */
static const char *const kx_sasl_offer_names[] = {[KX_SASL_PLAIN] = "PLAIN",
                                                  [KX_SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
                                                  [KX_SASL_SCRAM_SHA_512] = "SCRAM-SHA-512"};

static bool kx_parse_sasl_mechanisms(struct kx_config *cfg, const struct kx_config_key *key, const char *value,
                                     char *why, size_t whylen)
{
	unsigned set = 0;
	const char *p = value;
	(void)key;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		while (n && isspace((unsigned char)*p))
			p++, n--;
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		unsigned bit = 0;
		for (int m = KX_SASL_PLAIN; m <= KX_SASL_SCRAM_SHA_512; m++)
			if (strlen(kx_sasl_offer_names[m]) == n && strncasecmp(p, kx_sasl_offer_names[m], n) == 0)
				bit = 1u << m;
		if (!bit) {
			kx_why(why, whylen, "'%.*s' is not PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
			       (int)(n > 40 ? 40 : n), p);
			return false;
		}
		set |= bit;
		if (!end)
			break;
		p = end + 1;
	}
	if (!set) {
		kx_why(why, whylen, "no mechanism: name PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512");
		return false;
	}
	cfg->sasl_mechanisms = set;
	return true;
}

/* tls.protocols: TLSv1.2 and/or TLSv1.3, comma-separated. */
static bool kx_parse_tls_protocols(struct kx_config *cfg, const struct kx_config_key *key, const char *value,
                                   char *why, size_t whylen)
{
	unsigned set = 0;
	const char *p = value;
	(void)key;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		while (n && isspace((unsigned char)*p))
			p++, n--;
		while (n && isspace((unsigned char)p[n - 1]))
			n--;
		if (n == 7 && strncasecmp(p, "TLSv1.2", 7) == 0)
			set |= KX_TLS_V12;
		else if (n == 7 && strncasecmp(p, "TLSv1.3", 7) == 0)
			set |= KX_TLS_V13;
		else {
			kx_why(why, whylen, "'%.*s' is not TLSv1.2 or TLSv1.3 (older versions are not offered)", (int)n, p);
			return false;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (!set) {
		kx_why(why, whylen, "no protocol: name TLSv1.2, TLSv1.3 or both");
		return false;
	}
	cfg->tls_protocols = set;
	return true;
}

/* sni.host.pattern: checked whole (routing/sni.h). */
static bool kx_parse_sni_pattern(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                                 size_t whylen)
{
	if (strlen(value) >= KX_HOST_MAX) {
		kx_why(why, whylen, "longer than %d characters", KX_HOST_MAX - 1);
		return false;
	}
	if (value[0] && !kr_sni_pattern_valid(value, why, whylen))
		return false;
	snprintf(kx_field(cfg, key), KX_HOST_MAX, "%s", value);
	return true;
}

/* A rack name prefix for tls.client.rack.prefix ("" = the whole value). */
static bool kx_parse_prefix(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                            size_t whylen)
{
	size_t len = strlen(value);
	if (len >= KX_NAME_MAX) {
		kx_why(why, whylen, "'%s' is longer than %d characters", value, KX_NAME_MAX - 1);
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)value[i] <= 0x20 || value[i] == 0x7f || value[i] == ',') {
			kx_why(why, whylen, "'%s' has a space, comma or control character at %zu", value, i);
			return false;
		}
	}
	memcpy(kx_field(cfg, key), value, len + 1);
	return true;
}

/* upstream.sasl.username: UTF-8 without control characters ("" = none). */
static bool kx_parse_sasl_user(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                               size_t whylen)
{
	size_t len = strlen(value);
	if (len > KX_SASL_USER_MAX || !kx_text_clean((const uint8_t *)value, len)) {
		kx_why(why, whylen, "not a user name of at most %d bytes of UTF-8 without control characters",
		       KX_SASL_USER_MAX);
		return false;
	}
	memcpy(kx_field(cfg, key), value, len + 1);
	return true;
}

/* upstream.sasl.password: any text ("" = none); never quoted back in a message. */
static bool kx_parse_secret(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                            size_t whylen)
{
	size_t len = strlen(value);
	if (len > KX_SASL_PASSWORD_MAX) {
		kx_why(why, whylen, "a password of %zu bytes: at most %d", len, KX_SASL_PASSWORD_MAX);
		return false;
	}
	memcpy(kx_field(cfg, key), value, len + 1);
	return true;
}

/* upstream.sasl.password.file: read now, so a bad file stops start-up (and
 * --check-config) with its name; one trailing newline (\n or \r\n) dropped. */
static bool kx_parse_secret_file(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                                 size_t whylen)
{
	char buf[KX_SASL_PASSWORD_MAX + 3];
	if (!kx_parse_path(cfg, key, value, why, whylen))
		return false;
	memset(cfg->upstream_sasl_file_password, 0, sizeof(cfg->upstream_sasl_file_password));
	if (!value[0])
		return true;
	/* O_NONBLOCK and a regular file only: a FIFO or a device never holds start-up (or the fuzzer) up. */
	int fd = open(value, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		kx_why(why, whylen, "cannot open '%s': %s", value, strerror(errno));
		return false;
	}
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		kx_why(why, whylen, "'%s' is not a regular file", value);
		close(fd);
		return false;
	}
	size_t n = 0;
	bool failed = false;
	for (int tries = 0; n < sizeof(buf) && tries < 64 && !failed; tries++) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - n);
		if (r == 0)
			break;
		if (r > 0)
			n += (size_t)r;
		else
			failed = errno != EINTR;
	}
	close(fd);
	if (failed) {
		kx_why(why, whylen, "cannot read '%s': %s", value, strerror(errno));
		explicit_bzero(buf, sizeof(buf));
		return false;
	}
	if (n > 0 && buf[n - 1] == '\n') {
		n--;
		if (n > 0 && buf[n - 1] == '\r')
			n--;
	}
	bool ok = false;
	if (n > KX_SASL_PASSWORD_MAX)
		kx_why(why, whylen, "'%s' holds more than %d bytes (one password, one line)", value,
		       KX_SASL_PASSWORD_MAX);
	else if (n == 0)
		kx_why(why, whylen, "'%s' is empty", value);
	else if (memchr(buf, '\0', n) || memchr(buf, '\n', n))
		kx_why(why, whylen, "'%s' holds a NUL byte or more than one line", value);
	else
		ok = true;
	if (ok)
		memcpy(cfg->upstream_sasl_file_password, buf, n);
	explicit_bzero(buf, sizeof(buf));
	return ok;
}

/* An integer in [key->min, key->max], stored as int or int64_t. */
static bool kx_parse_number(const struct kx_config_key *key, const char *value, long long *v, char *why, size_t whylen)
{
	if (kx_parse_ll(value, strlen(value), key->min, key->max, v))
		return true;
	kx_why(why, whylen, "'%s' is not an integer in %lld..%lld", value, key->min, key->max);
	return false;
}

static bool kx_parse_int(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                         size_t whylen)
{
	long long v;
	if (!kx_parse_number(key, value, &v, why, whylen))
		return false;
	*(int *)kx_field(cfg, key) = (int)v;
	return true;
}

static bool kx_parse_int64(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                           size_t whylen)
{
	long long v;
	if (!kx_parse_number(key, value, &v, why, whylen))
		return false;
	*(int64_t *)kx_field(cfg, key) = v;
	return true;
}

static bool kx_parse_enum(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                          size_t whylen)
{
	char choices[256] = "";
	for (int i = 0; key->choices[i]; i++) {
		if (strcmp(value, key->choices[i]) == 0) {
			*(int *)kx_field(cfg, key) = i;
			return true;
		}
		snprintf(choices + strlen(choices), sizeof(choices) - strlen(choices), "%s%s", i ? ", " : "",
		         key->choices[i]);
	}
	kx_why(why, whylen, "'%s' is not one of: %s", value, choices);
	return false;
}

static bool kx_parse_name(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                          size_t whylen)
{
	size_t len = strlen(value);
	if (len > 0 && !kx_valid_name(value, len, false)) {
		kx_why(why, whylen, "'%s' is not a name of 1..%d characters from [A-Za-z0-9._-]", value,
		       KX_NAME_MAX - 1);
		return false;
	}
	snprintf(kx_field(cfg, key), KX_NAME_MAX, "%s", value);
	return true;
}

struct kx_port_map_ctx {
	struct kr_port_mapping *items;
	size_t cnt;
};

static bool kx_port_map_item(void *vctx, const char *s, size_t len, char *why, size_t whylen)
{
	struct kx_port_map_ctx *ctx = vctx;
	const char *eq = memchr(s, '=', len);
	long long id, port;
	if (!eq) {
		kx_why(why, whylen, "'%.*s' is not NODE_ID=PORT", (int)len, s);
		return false;
	}
	if (!kx_parse_ll(s, (size_t)(eq - s), 0, INT32_MAX, &id)) {
		kx_why(why, whylen, "node id '%.*s' is not an integer in 0..%d", (int)(eq - s), s, INT32_MAX);
		return false;
	}
	size_t portlen = len - (size_t)(eq + 1 - s);
	if (!kx_parse_ll(eq + 1, portlen, 1, 65535, &port)) {
		kx_why(why, whylen, "port '%.*s' is not a number in 1..65535", (int)portlen, eq + 1);
		return false;
	}
	for (size_t i = 0; i < ctx->cnt; i++) {
		if (ctx->items[i].node_id == id) {
			kx_why(why, whylen, "node %lld is mapped twice", id);
			return false;
		}
		if (ctx->items[i].port == port) {
			kx_why(why, whylen, "port %lld is mapped to nodes %d and %lld", port, ctx->items[i].node_id,
			       id);
			return false;
		}
	}
	if (ctx->cnt == KX_PORT_MAP_MAX) {
		kx_why(why, whylen, "more than %d mappings", KX_PORT_MAP_MAX);
		return false;
	}
	ctx->items[ctx->cnt++] = (struct kr_port_mapping){(int32_t)id, (uint16_t)port};
	return true;
}

static bool kx_parse_port_map(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                              size_t whylen)
{
	struct kr_port_mapping tmp[KX_PORT_MAP_MAX];
	struct kx_port_map_ctx ctx = {tmp, 0};
	(void)key;
	if (value[0] != '\0' && !kx_each_item(value, kx_port_map_item, &ctx, why, whylen))
		return false;
	memcpy(cfg->port_map, tmp, ctx.cnt * sizeof(tmp[0]));
	cfg->port_map_cnt = ctx.cnt;
	return true;
}

struct kx_region_map_ctx {
	struct kr_region_rule *items;
	size_t cnt;
};

static bool kx_region_rule_item(void *vctx, const char *s, size_t len, char *why, size_t whylen)
{
	struct kx_region_map_ctx *ctx = vctx;
	const char *eq = memchr(s, '=', len);
	if (!eq) {
		kx_why(why, whylen, "'%.*s' is not RACK_PATTERN=REGION", (int)len, s);
		return false;
	}
	size_t plen = (size_t)(eq - s), rlen = len - plen - 1;
	if (!kx_valid_name(s, plen, true)) {
		kx_why(why, whylen, "rack pattern '%.*s' must be 1..%d characters from [A-Za-z0-9._-*]", (int)plen, s,
		       KX_NAME_MAX - 1);
		return false;
	}
	if (!kx_valid_name(eq + 1, rlen, false)) {
		kx_why(why, whylen, "region '%.*s' must be 1..%d characters from [A-Za-z0-9._-]", (int)rlen, eq + 1,
		       KX_NAME_MAX - 1);
		return false;
	}
	if (ctx->cnt == KX_REGION_RULES_MAX) {
		kx_why(why, whylen, "more than %d rules", KX_REGION_RULES_MAX);
		return false;
	}
	struct kr_region_rule *r = &ctx->items[ctx->cnt++];
	memcpy(r->pattern, s, plen);
	r->pattern[plen] = '\0';
	memcpy(r->region, eq + 1, rlen);
	r->region[rlen] = '\0';
	return true;
}

static bool kx_parse_region_map(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                                size_t whylen)
{
	struct kr_region_rule tmp[KX_REGION_RULES_MAX] = {0};
	struct kx_region_map_ctx ctx = {tmp, 0};
	(void)key;
	if (value[0] != '\0' && !kx_each_item(value, kx_region_rule_item, &ctx, why, whylen))
		return false;
	memcpy(cfg->region_rules, tmp, ctx.cnt * sizeof(tmp[0]));
	cfg->region_rule_cnt = ctx.cnt;
	return true;
}

static bool kx_parse_bool(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                          size_t whylen)
{
	/* Kafka's spelling, in any case. */
	if (strcasecmp(value, "true") == 0 || strcasecmp(value, "false") == 0) {
		*(bool *)kx_field(cfg, key) = strcasecmp(value, "true") == 0;
		return true;
	}
	kx_why(why, whylen, "'%s' is not true or false", value);
	return false;
}

struct kx_rack_cidr_ctx {
	struct kr_cidr_rule *items;
	size_t cnt;
};

static bool kx_rack_cidr_item(void *vctx, const char *s, size_t len, char *why, size_t whylen)
{
	struct kx_rack_cidr_ctx *ctx = vctx;
	/* The address has no '=': the first one ends the network. */
	const char *eq = memchr(s, '=', len);
	if (!eq) {
		kx_why(why, whylen, "'%.*s' is not CIDR=RACK", (int)len, s);
		return false;
	}
	size_t nlen = (size_t)(eq - s), rlen = len - nlen - 1;
	while (nlen > 0 && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
		nlen--;
	const char *rack = eq + 1;
	while (rlen > 0 && (*rack == ' ' || *rack == '\t'))
		rack++, rlen--;
	if (ctx->cnt == KX_RACK_CIDR_MAX) {
		kx_why(why, whylen, "more than %d rules", KX_RACK_CIDR_MAX);
		return false;
	}
	struct kr_cidr_rule *r = &ctx->items[ctx->cnt];
	if (!kr_cidr_parse(s, nlen, r)) {
		kx_why(why, whylen, "'%.*s' is not an IPv4 or IPv6 network ADDRESS/PREFIX (e.g. 10.1.0.0/16, fd00::/8)",
		       (int)nlen, s);
		return false;
	}
	if (!kx_valid_name(rack, rlen, false)) {
		kx_why(why, whylen, "rack '%.*s' must be 1..%d characters from [A-Za-z0-9._-]", (int)rlen, rack,
		       KX_NAME_MAX - 1);
		return false;
	}
	memcpy(r->rack, rack, rlen);
	r->rack[rlen] = '\0';
	ctx->cnt++;
	return true;
}

static bool kx_parse_rack_cidr(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                               size_t whylen)
{
	struct kr_cidr_rule tmp[KX_RACK_CIDR_MAX];
	struct kx_rack_cidr_ctx ctx = {tmp, 0};
	(void)key;
	memset(tmp, 0, sizeof(tmp));
	if (value[0] != '\0' && !kx_each_item(value, kx_rack_cidr_item, &ctx, why, whylen))
		return false;
	memcpy(cfg->rack_cidrs, tmp, ctx.cnt * sizeof(tmp[0]));
	cfg->rack_cidr_cnt = ctx.cnt;
	return true;
}

/* listener.rack.<port>=<rack>: a later setting of the same port wins; "" removes it. */
static bool kx_parse_listener_rack(struct kx_config *cfg, const char *member, const char *value, char *why,
                                   size_t whylen)
{
	long long port;
	size_t len = strlen(value);
	if (!kx_parse_ll(member, strlen(member), 1, 65535, &port)) {
		kx_why(why, whylen, "port '%s' is not a number in 1..65535", member);
		return false;
	}
	if (len > 0 && !kx_valid_name(value, len, false)) {
		kx_why(why, whylen, "'%s' is not a rack name of 1..%d characters from [A-Za-z0-9._-]", value,
		       KX_NAME_MAX - 1);
		return false;
	}
	size_t i = 0;
	while (i < cfg->listener_rack_cnt && cfg->listener_racks[i].port != port)
		i++;
	if (len == 0) { /* unset */
		if (i < cfg->listener_rack_cnt) {
			memmove(&cfg->listener_racks[i], &cfg->listener_racks[i + 1],
			        (cfg->listener_rack_cnt - i - 1) * sizeof(cfg->listener_racks[0]));
			cfg->listener_rack_cnt--;
		}
		return true;
	}
	if (i == cfg->listener_rack_cnt) {
		if (i == KX_LISTENER_RACK_MAX) {
			kx_why(why, whylen, "more than %d listener racks", KX_LISTENER_RACK_MAX);
			return false;
		}
		cfg->listener_rack_cnt++;
	}
	cfg->listener_racks[i].port = (uint16_t)port;
	memcpy(cfg->listener_racks[i].rack, value, len + 1);
	return true;
}

/* regional.nodes: "[ID@]HOST:PORT,..." read and checked whole (routing/regional.h); "" = not set. */
static bool kx_parse_regional_nodes(struct kx_config *cfg, const struct kx_config_key *key, const char *value,
                                    char *why, size_t whylen)
{
	struct kr_regional_nodes tmp;
	(void)key;
	kr_regional_nodes_init(&tmp);
	if (value[0] != '\0' &&
	    (!kr_regional_nodes_parse(&tmp, value, why, whylen) || !kr_regional_nodes_finish(&tmp, why, whylen)))
		return false;
	cfg->regional_nodes = tmp;
	return true;
}

/* regional.nodes.dns: NAME:PORT of a DNS name (an address would be one fixed node); "" = not set. */
static bool kx_parse_dns_name(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                              size_t whylen)
{
	struct kx_hostport hp = {0};
	unsigned char addr[16];
	if (value[0] != '\0' && !kx_parse_hostport_span(value, strlen(value), &hp, why, whylen))
		return false;
	if (inet_pton(AF_INET, hp.host, addr) == 1 || inet_pton(AF_INET6, hp.host, addr) == 1) {
		kx_why(why, whylen, "'%s' is an address, not a DNS name (list fixed nodes in regional.nodes)", hp.host);
		return false;
	}
	*(struct kx_hostport *)kx_field(cfg, key) = hp;
	return true;
}

/* node.id: 0..INT32_MAX, or "" for none (-1). */
static bool kx_parse_node_id(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                             size_t whylen)
{
	long long v = -1;
	if (value[0] != '\0' && !kx_parse_number(key, value, &v, why, whylen))
		return false;
	*(int32_t *)kx_field(cfg, key) = (int32_t)v;
	return true;
}

/* ---- printers ---------------------------------------------------------- */

static void kx_print_hostport_one(const struct kx_hostport *hp, FILE *out)
{
	if (strchr(hp->host, ':'))
		fprintf(out, "[%s]:%u", hp->host, hp->port);
	else
		fprintf(out, "%s:%u", hp->host, hp->port);
}

static void kx_print_bootstrap(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	for (size_t i = 0; i < cfg->bootstrap_cnt; i++) {
		if (i)
			fputc(',', out);
		kx_print_hostport_one(&cfg->bootstrap[i], out);
	}
}

static void kx_print_hostport(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	kx_print_hostport_one(kx_cfield(cfg, key), out);
}

static void kx_print_string(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	fputs(kx_cfield(cfg, key), out);
}

static void kx_print_int(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	fprintf(out, "%d", *(const int *)kx_cfield(cfg, key));
}

static void kx_print_int64(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	fprintf(out, "%lld", (long long)*(const int64_t *)kx_cfield(cfg, key));
}

static void kx_print_enum(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	fputs(key->choices[*(const int *)kx_cfield(cfg, key)], out);
}

static void kx_print_port_map(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	for (size_t i = 0; i < cfg->port_map_cnt; i++)
		fprintf(out, "%s%d=%u", i ? "," : "", cfg->port_map[i].node_id, cfg->port_map[i].port);
}

static void kx_print_region_map(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	for (size_t i = 0; i < cfg->region_rule_cnt; i++)
		fprintf(out, "%s%s=%s", i ? "," : "", cfg->region_rules[i].pattern, cfg->region_rules[i].region);
}

/* admin.token: it goes in an HTTP header, so visible ASCII only; never quoted back. */
static bool kx_token_ok(const char *t, size_t n, char *why, size_t whylen, const char *where)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] <= ' ' || (unsigned char)t[i] >= 0x7f) {
			kx_why(why, whylen, "%s: only visible ASCII characters (no space) can go in an HTTP header",
			       where);
			return false;
		}
	return true;
}

static bool kx_parse_admin_token(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                                 size_t whylen)
{
	return kx_token_ok(value, strlen(value), why, whylen, "the token") &&
	       kx_parse_secret(cfg, key, value, why, whylen);
}

/* admin.token.file: read now (one line, a trailing newline dropped), so a bad file stops start-up. */
static bool kx_parse_admin_token_file(struct kx_config *cfg, const struct kx_config_key *key, const char *value,
                                      char *why, size_t whylen)
{
	if (!kx_parse_path(cfg, key, value, why, whylen))
		return false;
	memset(cfg->admin_file_token, 0, sizeof(cfg->admin_file_token));
	if (!value[0])
		return true;
	int fd = open(value, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		kx_why(why, whylen, "cannot read '%s': %s", value, fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return false;
	}
	char buf[KX_SASL_PASSWORD_MAX + 3];
	ssize_t r = read(fd, buf, sizeof(buf));
	close(fd);
	size_t n = r > 0 ? (size_t)r : 0;
	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	bool ok = false;
	if (r < 0 || n == 0 || n > KX_SASL_PASSWORD_MAX)
		kx_why(why, whylen, "'%s' is empty, unreadable or longer than %d bytes", value, KX_SASL_PASSWORD_MAX);
	else
		ok = kx_token_ok(buf, n, why, whylen, value);
	if (ok)
		memcpy(cfg->admin_file_token, buf, n);
	explicit_bzero(buf, sizeof(buf));
	return ok;
}

/* cost.per.gb: cost.h's rules. */
static bool kx_parse_cost(struct kx_config *cfg, const struct kx_config_key *key, const char *value, char *why,
                          size_t whylen)
{
	(void)key;
	return kx_cost_parse(&cfg->cost, value, why, whylen);
}

static void kx_print_cost(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	for (int i = 0; i < cfg->cost.cnt; i++)
		fprintf(out, "%s%s>%s:%g", i ? "," : "", cfg->cost.rule[i].from, cfg->cost.rule[i].to,
		        cfg->cost.rule[i].per_gb);
}

static void kx_print_secret(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	if (*(const char *)kx_cfield(cfg, key))
		fputs("********", out); /* set; never written out */
}

static void kx_print_bool(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	fputs(*(const bool *)kx_cfield(cfg, key) ? "true" : "false", out);
}

static void kx_print_sasl_mechanisms(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	const char *sep = "";
	(void)key;
	for (int m = KX_SASL_SCRAM_SHA_512; m >= KX_SASL_PLAIN; m--)
		if (cfg->sasl_mechanisms & (1u << m)) {
			fprintf(out, "%s%s", sep, kx_sasl_offer_names[m]);
			sep = ",";
		}
}

static void kx_print_tls_protocols(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	fprintf(out, "%s%s%s", cfg->tls_protocols & KX_TLS_V12 ? "TLSv1.2" : "",
	        (cfg->tls_protocols & KX_TLS_V12) && (cfg->tls_protocols & KX_TLS_V13) ? "," : "",
	        cfg->tls_protocols & KX_TLS_V13 ? "TLSv1.3" : "");
}

static void kx_print_rack_cidr(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	for (size_t i = 0; i < cfg->rack_cidr_cnt; i++) {
		const struct kr_cidr_rule *r = &cfg->rack_cidrs[i];
		char addr[INET6_ADDRSTRLEN] = "?";
		inet_ntop(r->family, r->addr, addr, sizeof(addr));
		fprintf(out, "%s%s/%d=%s", i ? "," : "", addr, r->prefix, r->rack);
	}
}

static void kx_print_regional_nodes(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	(void)key;
	for (size_t i = 0; i < cfg->regional_nodes.cnt; i++) {
		const struct kr_regional_node *n = &cfg->regional_nodes.nodes[i];
		bool v6 = strchr(n->host, ':') != NULL;
		fprintf(out, "%s%d@%s%s%s:%u", i ? "," : "", (int)n->id, v6 ? "[" : "", n->host, v6 ? "]" : "", n->port);
	}
}

/* A host:port that may be unset (host ""): "" then. */
static void kx_print_optional_hostport(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	const struct kx_hostport *hp = kx_cfield(cfg, key);
	if (hp->host[0])
		kx_print_hostport_one(hp, out);
}

static void kx_print_node_id(const struct kx_config *cfg, const struct kx_config_key *key, FILE *out)
{
	int32_t id = *(const int32_t *)kx_cfield(cfg, key);
	if (id >= 0)
		fprintf(out, "%d", (int)id);
}

/* Whole lines, one per port; a comment when there is none (it reads back as nothing). */
static void kx_print_listener_racks(const struct kx_config *cfg, const struct kx_config_family *f, FILE *out)
{
	if (cfg->listener_rack_cnt == 0)
		fprintf(out, "# %s%s=RACK (none)\n", f->prefix, f->member_name);
	for (size_t i = 0; i < cfg->listener_rack_cnt; i++)
		fprintf(out, "%s%u=%s\n", f->prefix, cfg->listener_racks[i].port, cfg->listener_racks[i].rack);
}

/* ---- the table --------------------------------------------------------- */

static const char *const kx_mode_names[] = {[KX_MODE_MAPPED] = "mapped", [KX_MODE_REGIONAL] = "regional", NULL};
static const char *const kx_proxy_protocol_names[] = {[KX_PROXY_OFF] = "off", [KX_PROXY_V1] = "v1",
                                                      [KX_PROXY_V2] = "v2", NULL};
static const char *const kx_listener_mode_names[] = {[KX_LISTENER_PORTS] = "ports", [KX_LISTENER_SNI] = "sni", NULL};
static const char *const kx_tls_auth_names[] = {
    [KX_TLS_AUTH_NONE] = "none", [KX_TLS_AUTH_REQUESTED] = "requested", [KX_TLS_AUTH_REQUIRED] = "required", NULL};
static const char *const kx_cert_attr_names[] = {
    [KX_CERT_ATTR_NONE] = "none", [KX_CERT_ATTR_CN] = "cn", [KX_CERT_ATTR_OU] = "ou", [KX_CERT_ATTR_SAN] = "san", NULL};
static const char *const kx_sasl_mechanism_names[] = {[KX_SASL_NONE] = "none",
                                                      [KX_SASL_PLAIN] = "PLAIN",
                                                      [KX_SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
                                                      [KX_SASL_SCRAM_SHA_512] = "SCRAM-SHA-512",
                                                      NULL};
static const char *const kx_level_names[] = {
    [KX_LOG_ERROR] = "error", [KX_LOG_WARN] = "warn", [KX_LOG_INFO] = "info", [KX_LOG_DEBUG] = "debug", NULL};
static const char *const kx_log_format_names[] = {[KX_LOG_TEXT] = "text", [KX_LOG_JSON] = "json", NULL};

static const struct kx_config_key kx_keys[] = {
    {"bootstrap.servers", NULL, kx_parse_bootstrap, kx_print_bootstrap, 0, 0, 0, NULL,
     "HOST:PORT[,HOST:PORT...] of the upstream brokers to fetch metadata from (required)"},
    {"listen", "127.0.0.1:9092", kx_parse_hostport, kx_print_hostport, KX_FIELD(listen), 0, 0, NULL,
     "HOST:PORT of the bootstrap listener clients connect to"},
    {"advertised.host", "", kx_parse_host, kx_print_string, KX_FIELD(advertised_host), 0, 0, NULL,
     "host written into rewritten broker addresses (default: the host of listen)"},
    {"broker.port.base", "19000", kx_parse_int, kx_print_int, KX_FIELD(broker_port_base), 1, 65535, NULL,
     "mapped mode: node id N is served on port base+N"},
    {"broker.port.map", "", kx_parse_port_map, kx_print_port_map, 0, 0, 0, NULL,
     "NODE=PORT[,NODE=PORT...]: explicit listener ports that override broker.port.base"},
    {"mode", "mapped", kx_parse_enum, kx_print_enum, KX_FIELD(mode), 0, 0, kx_mode_names,
     "mapped (sidecar, one listener per broker) or regional (virtual regional cluster)"},
    {"region", "", kx_parse_name, kx_print_string, KX_FIELD(region), 0, 0, NULL,
     "mode=regional: the region this kstretch tier serves (required there); its clients see a cluster made of "
     "the region's kstretch nodes"},
    {"regional.nodes", "", kx_parse_regional_nodes, kx_print_regional_nodes, 0, 0, 0, NULL,
     "mode=regional: ID@HOST:PORT[,...] of the region's kstretch nodes, the same list on every node (Kafka's "
     "controller.quorum.voters form; an IPv6 address in brackets; without ID@ the id comes from HOST:PORT)"},
    {"regional.nodes.dns", "", kx_parse_dns_name, kx_print_optional_hostport, KX_FIELD(regional_nodes_dns), 0, 0, NULL,
     "mode=regional: NAME:PORT, read the region's kstretch nodes from the addresses (A and AAAA) of NAME, e.g. "
     "a Kubernetes headless Service, instead of regional.nodes; each address's id comes from ADDRESS:PORT"},
    {"regional.nodes.refresh.ms", KX_STR(KX_REGIONAL_REFRESH_DEFAULT_MS), kx_parse_int, kx_print_int,
     KX_FIELD(regional_nodes_refresh_ms), 1000, 3600000, NULL,
     "mode=regional with regional.nodes.dns: how often NAME is read again (a failed or empty answer keeps the "
     "nodes of the last good one)"},
    {"node.id", "", kx_parse_node_id, kx_print_node_id, KX_FIELD(node_id), 0, INT32_MAX, NULL,
     "mode=regional: this kstretch node's id, one of regional.nodes (empty: not given)"},
    {"regional.upstream.connections", "2", kx_parse_int, kx_print_int, KX_FIELD(regional_upstream_connections), 1, 64,
     NULL,
     "mode=regional: connections each worker keeps to each broker for Fetch, and as many for the other requests, "
     "shared by all its clients (one client's requests always take the same one)"},
    {"regional.fetch.wait.max.ms", KX_STR(KX_REGIONAL_FETCH_WAIT_DEFAULT_MS), kx_parse_int, kx_print_int,
     KX_FIELD(regional_fetch_wait_max_ms), 0, 60000, NULL,
     "mode=regional: the longest a Fetch part waits at its broker for data (the client's MaxWaitMs when that is "
     "shorter): a broker answers a connection's requests in order, so a waiting Fetch holds the other clients' "
     "Fetches on its shared connection; an idle consumer is answered (empty) after this and asks again"},
    {"proxy.protocol", "off", kx_parse_enum, kx_print_enum, KX_FIELD(proxy_protocol), 0, 0, kx_proxy_protocol_names,
     "off, v1 or v2: every client connection starts with a PROXY protocol header of that version (kstretch behind "
     "an L4 balancer: the client's address in it drives placement and logs); a connection without one is closed"},
    {"listener.mode", "ports", kx_parse_enum, kx_print_enum, KX_FIELD(listener_mode), 0, 0, kx_listener_mode_names,
     "ports (a kstretch port per broker) or sni (one TLS port, listen, for the whole cluster: each broker is "
     "advertised under its sni.host.pattern name and the name in a client's TLS handshake picks the broker)"},
    {"sni.host.pattern", "", kx_parse_sni_pattern, kx_print_string, KX_FIELD(sni_host_pattern), 0, 0, NULL,
     "listener.mode=sni: a broker's advertised name, with $(nodeId) and optionally $(rack) and $(region), e.g. "
     "broker-$(nodeId).kafka.example; clients must resolve these names to kstretch"},
    {"rack", "", kx_parse_name, kx_print_string, KX_FIELD(rack), 0, 0, NULL,
     "rack of the clients this kstretch serves (empty: unknown)"},
    {"region.map", "", kx_parse_region_map, kx_print_region_map, 0, 0, 0, NULL,
     "RACK_GLOB=REGION[,...], first match wins, e.g. eu-*=eu,us-*=us"},
    {"rack.cidr", "", kx_parse_rack_cidr, kx_print_rack_cidr, 0, 0, 0, NULL,
     "CIDR=RACK[,...]: clients from these source networks are in RACK (IPv4 or IPv6, first match wins)"},
    {"fetch.rack.inject", "true", kx_parse_bool, kx_print_bool, KX_FIELD(fetch_rack_inject), 0, 0, NULL,
     "Fetch v11+ requests with an empty RackId get the client's rack (when it is known)"},
    {"fetch.cut.through", "true", kx_parse_bool, kx_print_bool, KX_FIELD(fetch_cut_through), 0, 0, NULL,
     "Fetch v16-18 requests go to the broker as v15 (the same request; the answer lacks only KIP-951's "
     "NodeEndpoints), so answers flow through as they arrive instead of being held whole to rewrite those"},
    {"fetch.prefer.local", "true", kx_parse_bool, kx_print_bool, KX_FIELD(fetch_prefer_local), 0, 0, NULL,
     "a remote leader's Fetch v11+ answer points the client at an in-sync replica in its region"},
    {"fetch.prefer.local.backoff.ms", "30000", kx_parse_int, kx_print_int, KX_FIELD(fetch_prefer_local_backoff_ms), 0,
     3600000, NULL, "a partition whose client came back to its leader is not redirected again for this long"},
    {"workers", "0", kx_parse_int, kx_print_int, KX_FIELD(workers), 0, 256, NULL,
     "event-loop threads (0: one per CPU)"},
    {"admin.listen", "127.0.0.1:9644", kx_parse_hostport, kx_print_hostport, KX_FIELD(admin_listen), 0, 0, NULL,
     "HOST:PORT of the admin HTTP endpoint (metrics, health)"},
    {"admin.token", "", kx_parse_admin_token, kx_print_secret, KX_FIELD(admin_token), 0, 0, NULL,
     "the admin endpoint answers only requests with the header Authorization: Bearer TOKEN (401 without; "
     "/healthz stays open for liveness probes); printed as ********; empty: no token"},
    {"admin.token.file", "", kx_parse_admin_token_file, kx_print_string, KX_FIELD(admin_token_file), 0, 0, NULL,
     "a file holding admin.token (one line), read at start (keeps it out of the configuration and the "
     "command line)"},
    {"metadata.max.age.ms", "300000", kx_parse_int, kx_print_int, KX_FIELD(metadata_max_age_ms), 1000, 86400000, NULL,
     "/readyz answers 200 only while the cluster answered kstretch's Metadata request this recently (checked "
     "every third of it, at most every 5 s)"},
    {"cost.per.gb", "", kx_parse_cost, kx_print_cost, 0, 0, 0, NULL,
     "FROM>TO:PRICE[,...]: the price per GB (10^9 bytes) of traffic from region FROM to region TO (* any "
     "region; first match wins; unmatched, in-region or unknown-region traffic costs nothing), e.g. "
     "eu>us:0.02,us>eu:0.02,*>*:0.01; /metrics prices kstretch_region_bytes with it"},
    {"max.frame.bytes", "104857600", kx_parse_int64, kx_print_int64, KX_FIELD(max_frame_bytes), 64, 1073741824, NULL,
     "largest request or response accepted, checked before allocating"},
    {"max.held.request.bytes", "1048576", kx_parse_int, kx_print_int, KX_FIELD(max_held_request_bytes), 64, 1073741824,
     NULL,
     "largest request kstretch holds whole to rewrite it (a Fetch whose RackId it sets); a larger one passes "
     "through unchanged"},
    {"max.connections", "0", kx_parse_int, kx_print_int, KX_FIELD(max_connections), 0, 10000000, NULL,
     "client connections open at once (0: as many as the file descriptor limit holds); more are accepted and "
     "closed at once (existing ones go on)"},
    {"max.inflight.requests", "1000", kx_parse_int, kx_print_int, KX_FIELD(max_inflight_requests), 1, 100000, NULL,
     "requests a client connection may have awaiting responses"},
    {"connect.timeout.ms", "10000", kx_parse_int, kx_print_int, KX_FIELD(connect_timeout_ms), 1, 3600000, NULL,
     "upstream connect timeout"},
    {"idle.timeout.ms", "540000", kx_parse_int, kx_print_int, KX_FIELD(idle_timeout_ms), 1, 86400000, NULL,
     "close a client connection that has nothing in flight and sends nothing for this long (Kafka's "
     "connections.max.idle.ms)"},
    {"request.timeout.ms", "60000", kx_parse_int, kx_print_int, KX_FIELD(request_timeout_ms), 1, 86400000, NULL,
     "close a client connection that takes longer than this to send one request, first byte to last; regional mode: "
     "also a shared broker connection that owes answers and sends nothing for this long"},
    {"write.timeout.ms", "60000", kx_parse_int, kx_print_int, KX_FIELD(write_timeout_ms), 1, 86400000, NULL,
     "close a client connection that takes none of the answers waiting for it for this long (it stopped reading; "
     "checked every write.timeout.ms)"},
    {"shutdown.drain.ms", "5000", kx_parse_int, kx_print_int, KX_FIELD(shutdown_drain_ms), 0, 600000, NULL,
     "on SIGTERM, how long in-flight requests may take to finish"},
    {"upgrade.socket", "", kx_parse_path, kx_print_string, KX_FIELD(upgrade_socket), 0, 0, NULL,
     "unix socket through which a new kstretch takes over this one's listening sockets (no refused "
     "connection during an upgrade: start the new process with the same configuration; this one then drains "
     "and exits); \"\": none"},
    {"log.level", "info", kx_parse_enum, kx_print_enum, KX_FIELD(log_level), 0, 0, kx_level_names,
     "error, warn, info or debug"},
    {"log.format", "text", kx_parse_enum, kx_print_enum, KX_FIELD(log_format), 0, 0, kx_log_format_names,
     "text or json: json writes each line as one JSON object (time, level, message, and the connection's client, "
     "listener and broker where the line is about one)"},
    {"tls.cert", "", kx_parse_path, kx_print_string, KX_FIELD(tls_cert), 0, 0, NULL,
     "PEM file of kstretch's certificate and its chain: when set, clients connect with TLS (every Kafka listener); "
     "reloaded on SIGHUP"},
    {"tls.key", "", kx_parse_path, kx_print_string, KX_FIELD(tls_key), 0, 0, NULL,
     "PEM file of tls.cert's private key (reloaded on SIGHUP)"},
    {"tls.protocols", "TLSv1.2,TLSv1.3", kx_parse_tls_protocols, kx_print_tls_protocols, 0, 0, 0, NULL,
     "TLS versions offered to clients and brokers: TLSv1.2, TLSv1.3 or both"},
    {"tls.ciphers", "", kx_parse_ciphers, kx_print_string, KX_FIELD(tls_ciphers), 0, 0, NULL,
     "OpenSSL cipher list for TLS 1.2 and TLS_* suite names for TLS 1.3, colon-separated (empty: OpenSSL's "
     "defaults)"},
    {"tls.client.ca", "", kx_parse_path, kx_print_string, KX_FIELD(tls_client_ca), 0, 0, NULL,
     "PEM file of the CAs client certificates are verified against (mTLS; reloaded on SIGHUP)"},
    {"tls.client.auth", "none", kx_parse_enum, kx_print_enum, KX_FIELD(tls_client_auth), 0, 0, kx_tls_auth_names,
     "none, requested or required: whether clients must present a certificate signed by tls.client.ca"},
    {"tls.handshake.timeout.ms", "10000", kx_parse_int, kx_print_int, KX_FIELD(tls_handshake_timeout_ms), 1, 3600000,
     NULL, "close a client connection whose TLS handshake is not complete after this long"},
    {"tls.client.rack.from", "none", kx_parse_enum, kx_print_enum, KX_FIELD(tls_client_rack_from), 0, 0,
     kx_cert_attr_names,
     "none, cn, ou or san: the client certificate attribute that names the client's rack (a placement source "
     "after client.id hints)"},
    {"tls.client.rack.prefix", "", kx_parse_prefix, kx_print_string, KX_FIELD(tls_client_rack_prefix), 0, 0, NULL,
     "only values of tls.client.rack.from that start with this prefix name a rack, the rest of the value "
     "(e.g. rack- for OU=rack-eu-a)"},
    {"upstream.tls", "false", kx_parse_bool, kx_print_bool, KX_FIELD(upstream_tls), 0, 0, NULL,
     "connect to the brokers with TLS (their SSL or SASL_SSL listener)"},
    {"upstream.tls.ca", "", kx_parse_path, kx_print_string, KX_FIELD(upstream_tls_ca), 0, 0, NULL,
     "PEM file of the CAs the brokers' certificates are verified against (empty: the system's)"},
    {"upstream.tls.cert", "", kx_parse_path, kx_print_string, KX_FIELD(upstream_tls_cert), 0, 0, NULL,
     "PEM file of the certificate kstretch presents to brokers that require one (with upstream.tls.key)"},
    {"upstream.tls.key", "", kx_parse_path, kx_print_string, KX_FIELD(upstream_tls_key), 0, 0, NULL,
     "PEM file of upstream.tls.cert's private key"},
    {"upstream.tls.verify.hostname", "true", kx_parse_bool, kx_print_bool, KX_FIELD(upstream_tls_verify_hostname),
     0, 0, NULL, "a broker's certificate must name the host kstretch connects to (DNS name or IP address)"},
    {"sasl.users", "", kx_parse_path, kx_print_string, KX_FIELD(sasl_users), 0, 0, NULL,
     "mode=regional: clients must authenticate to kstretch with SASL against this file of SCRAM credentials "
     "(USER MECHANISM ITERATIONS SALT STOREDKEY SERVERKEY a line; `kstretch --sasl-user NAME` makes them)"},
    {"sasl.mechanisms", "SCRAM-SHA-512,SCRAM-SHA-256,PLAIN", kx_parse_sasl_mechanisms, kx_print_sasl_mechanisms, 0,
     0, 0, NULL, "the SASL mechanisms a regional node offers its clients (with sasl.users): PLAIN (checked against "
                 "the stored SCRAM credentials), SCRAM-SHA-256, SCRAM-SHA-512"},
    {"sasl.mtls.identity", "false", kx_parse_bool, kx_print_bool, KX_FIELD(sasl_mtls_identity), 0, 0, NULL,
     "mode=regional with tls.client.auth=required: a client's verified certificate authenticates it (its "
     "subject is its principal) and it need not use SASL"},
    {"upstream.sasl.mechanism", "none", kx_parse_enum, kx_print_enum, KX_FIELD(upstream_sasl_mechanism), 0, 0,
     kx_sasl_mechanism_names,
     "none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512: how kstretch's own connection to a bootstrap server "
     "authenticates (brokers' SASL_PLAINTEXT or SASL_SSL listener); clients still authenticate themselves"},
    {"upstream.sasl.username", "", kx_parse_sasl_user, kx_print_string, KX_FIELD(upstream_sasl_username), 0, 0, NULL,
     "the user kstretch authenticates as (with upstream.sasl.mechanism)"},
    {"upstream.sasl.password", "", kx_parse_secret, kx_print_secret, KX_FIELD(upstream_sasl_password), 0, 0, NULL,
     "upstream.sasl.username's password (printed as ********; upstream.sasl.password.file keeps it off the "
     "command line)"},
    {"upstream.sasl.password.file", "", kx_parse_secret_file, kx_print_string, KX_FIELD(upstream_sasl_password_file), 0,
     0, NULL,
     "file whose one line is upstream.sasl.username's password (read at start; a trailing newline is "
     "dropped)"},
};

static const struct kx_config_family kx_families[] = {
    {"listener.rack.", "PORT", kx_parse_listener_rack, kx_print_listener_racks,
     "clients that connect to kstretch's port PORT are in this rack (one key per port)"},
};

#define KX_KEY_CNT    (sizeof(kx_keys) / sizeof(kx_keys[0]))
#define KX_FAMILY_CNT (sizeof(kx_families) / sizeof(kx_families[0]))
_Static_assert(KX_KEY_CNT <= sizeof(((struct kx_config *)0)->is_set) / sizeof(bool), "grow kx_config.is_set");

static const struct kx_config_key *kx_key_find(const char *name, size_t *index)
{
	for (size_t i = 0; i < KX_KEY_CNT; i++) {
		if (strcmp(kx_keys[i].name, name) == 0) {
			*index = i;
			return &kx_keys[i];
		}
	}
	return NULL;
}

/* The family a key belongs to (*member: the rest of its name, never empty), or NULL. */
static const struct kx_config_family *kx_family_find(const char *name, const char **member)
{
	for (size_t i = 0; i < KX_FAMILY_CNT; i++) {
		size_t n = strlen(kx_families[i].prefix);
		if (strncmp(kx_families[i].prefix, name, n) == 0 && name[n] != '\0') {
			*member = name + n;
			return &kx_families[i];
		}
	}
	return NULL;
}

static bool kx_fail(struct kx_config_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool kx_fail(struct kx_config_error *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	/* Values quoted in the message may hold escaped control characters:
	 * keep the error on one printable line. */
	for (char *c = err->msg; *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	return false;
}

void kx_config_defaults(struct kx_config *cfg)
{
	char why[256];
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < KX_KEY_CNT; i++) {
		if (kx_keys[i].def && !kx_keys[i].parse(cfg, &kx_keys[i], kx_keys[i].def, why, sizeof(why))) {
			/* A bad default is a bug in the table above, caught by the unit tests. */
			fprintf(stderr, "kstretch: internal error: default of %s: %s\n", kx_keys[i].name, why);
			abort();
		}
	}
}

bool kx_config_set(struct kx_config *cfg, const char *key, const char *value, const char *where,
                   struct kx_config_error *err)
{
	char why[384];
	size_t index;
	const char *member = NULL;
	const struct kx_config_key *k = kx_key_find(key, &index);
	const struct kx_config_family *f = k ? NULL : kx_family_find(key, &member);
	if (!k && !f)
		return kx_fail(err, "%s: unknown key '%s'", where, key);
	if (f ? !f->parse(cfg, member, value, why, sizeof(why)) : !k->parse(cfg, k, value, why, sizeof(why))) {
		if (strncmp(where, "--", 2) == 0) /* the flag already names the key */
			return kx_fail(err, "%s: %s", where, why);
		return kx_fail(err, "%s: %s: %s", where, key, why);
	}
	if (k)
		cfg->is_set[index] = true;
	return true;
}

bool kx_config_is_set(const struct kx_config *cfg, const char *key)
{
	size_t index;
	return kx_key_find(key, &index) && cfg->is_set[index];
}

/* ---- .properties reader ------------------------------------------------ */

static bool kx_is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\f';
}

static int kx_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Appends code point cp as UTF-8; returns bytes written (out has room for 4). */
static size_t kx_utf8(unsigned cp, char *out)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xC0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3F));
		return 2;
	}
	out[0] = (char)(0xE0 | (cp >> 12));
	out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
	out[2] = (char)(0x80 | (cp & 0x3F));
	return 3;
}

/*
 * Parses one logical line (continuations already joined, escapes still in)
 * into key and value, unescaping both. Returns false with *why on a bad
 * escape. Output buffers are at least as long as the line plus one.
 */
static bool kx_split_line(const char *s, size_t len, char *key, char *value, const char **why)
{
	size_t i = 0, k = 0, v = 0;
	bool in_key = true;

	while (i < len && kx_is_blank(s[i]))
		i++;
	while (i < len) {
		char c = s[i++];
		char *out = in_key ? key : value;
		size_t *n = in_key ? &k : &v;
		if (in_key && (c == '=' || c == ':' || kx_is_blank(c))) {
			/* Separator: blanks, then at most one '=' or ':', then blanks. */
			while (i < len && kx_is_blank(s[i]))
				i++;
			if (kx_is_blank(c) && i < len && (s[i] == '=' || s[i] == ':'))
				i++;
			while (i < len && kx_is_blank(s[i]))
				i++;
			in_key = false;
			continue;
		}
		if (c != '\\') {
			out[(*n)++] = c;
			continue;
		}
		if (i == len) {
			*why = "backslash at the end of the file";
			return false;
		}
		c = s[i++];
		switch (c) {
		case 't': out[(*n)++] = '\t'; break;
		case 'n': out[(*n)++] = '\n'; break;
		case 'r': out[(*n)++] = '\r'; break;
		case 'f': out[(*n)++] = '\f'; break;
		case 'u': {
			unsigned cp = 0;
			for (int d = 0; d < 4; d++) {
				int h = i < len ? kx_hex(s[i]) : -1;
				if (h < 0) {
					*why = "malformed \\uXXXX escape";
					return false;
				}
				cp = cp << 4 | (unsigned)h;
				i++;
			}
			if (cp == 0) {
				*why = "\\u0000 is not allowed";
				return false;
			}
			/* \uXXXX takes at most 6 input bytes and writes at most 3. */
			*n += kx_utf8(cp, out + *n);
			break;
		}
		default: out[(*n)++] = c; break;
		}
	}
	/* Trailing blanks of a value are dropped (Java keeps them; nobody means them). */
	while (v > 0 && kx_is_blank(value[v - 1]))
		v--;
	key[k] = '\0';
	value[v] = '\0';
	return true;
}

/* True when the line ends in an odd number of backslashes (a continuation). */
static bool kx_continues(const char *s, size_t len)
{
	size_t n = 0;
	while (n < len && s[len - 1 - n] == '\\')
		n++;
	return n % 2 == 1;
}

bool kx_config_load_buffer(struct kx_config *cfg, const char *name, const char *data, size_t len,
                           struct kx_config_error *err)
{
	char *logical = NULL, *key = NULL, *value = NULL;
	size_t pos = 0, lineno = 0;
	bool ok = false;

	if (len > KX_CONFIG_FILE_MAX)
		return kx_fail(err, "%s: larger than %d bytes", name, KX_CONFIG_FILE_MAX);
	if (memchr(data, '\0', len))
		return kx_fail(err, "%s: contains a NUL byte (not a text file?)", name);
	/* A logical line is never longer than the file, nor its key or value. */
	logical = malloc(len + 1);
	key = malloc(len + 1);
	value = malloc(len + 1);
	if (!logical || !key || !value) {
		kx_fail(err, "%s: out of memory", name);
		goto fail;
	}

	while (pos < len) {
		size_t start_line = lineno + 1, llen = 0;
		bool first = true, more;
		do {
			/* One natural line: up to \n, \r or \r\n. */
			size_t end = pos;
			while (end < len && data[end] != '\n' && data[end] != '\r')
				end++;
			const char *line = data + pos;
			size_t n = end - pos;
			pos = end;
			if (pos < len && data[pos] == '\r') {
				pos++;
				if (pos < len && data[pos] == '\n')
					pos++;
			} else if (pos < len && data[pos] == '\n') {
				pos++;
			}
			lineno++;
			if (!first) /* continuation: leading blanks dropped */
				while (n > 0 && kx_is_blank(*line))
					line++, n--;
			if (first) {
				size_t b = 0;
				while (b < n && kx_is_blank(line[b]))
					b++;
				if (b == n || line[b] == '#' || line[b] == '!')
					break; /* blank or comment: never continued */
			}
			more = kx_continues(line, n) && pos < len;
			if (more)
				n--; /* drop the continuation backslash */
			memcpy(logical + llen, line, n);
			llen += n;
			first = false;
		} while (more);

		if (llen == 0)
			continue;
		const char *why = NULL;
		if (!kx_split_line(logical, llen, key, value, &why)) {
			kx_fail(err, "%s:%zu: %s", name, start_line, why);
			goto fail;
		}
		if (key[0] == '\0')
			continue;
		char where[256];
		snprintf(where, sizeof(where), "%s:%zu", name, start_line);
		if (!kx_config_set(cfg, key, value, where, err))
			goto fail;
	}
	ok = true;
fail:
	free(logical);
	free(key);
	free(value);
	return ok;
}

bool kx_config_load_file(struct kx_config *cfg, const char *path, struct kx_config_error *err)
{
	FILE *f = fopen(path, "rb");
	char *data;
	size_t len;
	bool ok;

	if (!f)
		return kx_fail(err, "%s: cannot open: %s", path, strerror(errno));
	data = malloc(KX_CONFIG_FILE_MAX + 1);
	if (!data) {
		fclose(f);
		return kx_fail(err, "%s: out of memory", path);
	}
	len = fread(data, 1, KX_CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {
		ok = kx_fail(err, "%s: read error: %s", path, strerror(errno));
	} else {
		ok = kx_config_load_buffer(cfg, path, data, len, err);
	}
	free(data);
	fclose(f);
	return ok;
}

/* ---- command line ------------------------------------------------------ */

/* "--bootstrap-servers" -> "bootstrap.servers"; false if not a long flag. */
static bool kx_flag_to_key(const char *flag, size_t flaglen, char *key, size_t keylen)
{
	if (flaglen < 3 || flag[0] != '-' || flag[1] != '-' || flaglen - 2 >= keylen)
		return false;
	for (size_t i = 2; i < flaglen; i++)
		key[i - 2] = flag[i] == '-' ? '.' : flag[i];
	key[flaglen - 2] = '\0';
	return true;
}

bool kx_config_parse_args(struct kx_config *cfg, int argc, char **argv, enum kx_config_action *action,
                          struct kx_config_error *err)
{
	const char *config_path = NULL;

	kx_config_defaults(cfg);
	*action = KX_CONFIG_RUN;

	/* Pass 1: --help and --version win; find --config and --check-config. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			*action = KX_CONFIG_HELP;
			return true;
		}
		if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
			*action = KX_CONFIG_VERSION;
			return true;
		}
		if (strcmp(a, "--list-metrics") == 0) {
			*action = KX_CONFIG_LIST_METRICS;
			return true;
		}
		if (strcmp(a, "--list-keys") == 0) {
			*action = KX_CONFIG_LIST_KEYS;
			return true;
		}
	}
	bool check = false, offline = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--check-config") == 0) {
			*action = KX_CONFIG_CHECK;
		} else if (strcmp(a, "--print-topology") == 0) {
			*action = KX_CONFIG_PRINT_TOPOLOGY;
		} else if (strcmp(a, "--check") == 0) {
			check = true;
		} else if (strcmp(a, "--offline") == 0) {
			offline = true;
		} else if (strcmp(a, "--config") == 0) {
			if (i + 1 >= argc)
				return kx_fail(err, "--config: needs a file name");
			config_path = argv[++i];
		} else if (strncmp(a, "--config=", 9) == 0) {
			config_path = a + 9;
		} else if (strncmp(a, "--", 2) != 0) {
			return kx_fail(err, "'%s': unexpected argument (options start with --; see --help)", a);
		} else if (!strchr(a, '=')) {
			i++; /* skip the flag's value; pass 2 checks it */
		}
	}
	if (offline && !check)
		return kx_fail(err, "--offline: only with --check (validate without connecting to the cluster)");
	if (check && *action != KX_CONFIG_RUN)
		return kx_fail(err, "--check: not together with --check-config or --print-topology");
	if (check)
		*action = offline ? KX_CONFIG_CHECK_OFFLINE : KX_CONFIG_CHECK_CLUSTER;
	if (config_path && !kx_config_load_file(cfg, config_path, err))
		return false;

	/* Pass 2: every other flag, over the file. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *eq = strchr(a, '='), *value;
		char key[128];
		size_t index;
		const char *member;
		if (strcmp(a, "--check-config") == 0 || strcmp(a, "--print-topology") == 0 ||
		    strcmp(a, "--check") == 0 || strcmp(a, "--offline") == 0)
			continue;
		if (strcmp(a, "--config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0)
			continue;
		size_t flaglen = eq ? (size_t)(eq - a) : strlen(a);
		if (!kx_flag_to_key(a, flaglen, key, sizeof(key)) ||
		    (!kx_key_find(key, &index) && !kx_family_find(key, &member)))
			return kx_fail(err, "%.*s: unknown option (see --help)", (int)flaglen, a);
		if (eq) {
			value = eq + 1;
		} else {
			if (i + 1 >= argc)
				return kx_fail(err, "%s: needs a value", a);
			value = argv[++i];
		}
		char where[160];
		snprintf(where, sizeof(where), "%.*s", (int)flaglen, a);
		if (!kx_config_set(cfg, key, value, where, err))
			return false;
	}
	return kx_config_validate(cfg, err);
}

static bool kx_is_wildcard(const char *host)
{
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

/* "1,2,3": the ids of a finished node set, for messages. */
static void kx_node_ids(const struct kr_regional_nodes *set, char *out, size_t len)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < set->cnt && used < len; i++) {
		int n = snprintf(out + used, len - used, "%s%d", i ? "," : "", (int)set->ids[i]);
		used += n > 0 ? (size_t)n : 0;
	}
}

/*
 * mode=regional needs its region and one source of its node set; mode=mapped
 * refuses every regional key, as a key of a feature that is off is refused
 * elsewhere (upstream.tls.ca without upstream.tls). "Set" means a value other
 * than the default, so a printed configuration (--check-config) reads back.
 */
static bool kx_validate_regional(const struct kx_config *cfg, struct kx_config_error *err)
{
	bool dns = cfg->regional_nodes_dns.host[0] != '\0', fixed = cfg->regional_nodes.cnt > 0;
	bool refresh = cfg->regional_nodes_refresh_ms != KX_REGIONAL_REFRESH_DEFAULT_MS;
	char ids[KR_REGIONAL_NODES_MAX * 12];

	if (cfg->mode != KX_MODE_REGIONAL) {
		const struct {
			bool set;
			const char *key;
		} keys[] = {{cfg->region[0] != '\0', "region"},
		            {fixed, "regional.nodes"},
		            {dns, "regional.nodes.dns"},
		            {refresh, "regional.nodes.refresh.ms"},
		            {cfg->node_id >= 0, "node.id"},
		            {cfg->regional_upstream_connections != 2, "regional.upstream.connections"},
		            {cfg->regional_fetch_wait_max_ms != KX_REGIONAL_FETCH_WAIT_DEFAULT_MS,
		             "regional.fetch.wait.max.ms"},
		            {cfg->sasl_users[0] != '\0', "sasl.users"},
		            {cfg->sasl_mtls_identity, "sasl.mtls.identity"}};
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
			if (keys[i].set)
				return kx_fail(err, "%s: set, but mode=%s (a key of mode=regional: set mode=regional, or "
				               "remove it)", keys[i].key, kx_mode_names[cfg->mode]);
		return true;
	}
	if (!cfg->region[0])
		return kx_fail(err, "region: required with mode=regional (the region this kstretch tier serves, e.g. "
		                    "region=eu)");
	if (fixed && dns)
		return kx_fail(err, "regional.nodes.dns: set together with regional.nodes (set only one: the list of "
		                    "nodes, or the DNS name to read them from)");
	if (!fixed && !dns)
		return kx_fail(err, "regional.nodes: required with mode=regional (ID@HOST:PORT,... of the region's "
		                    "kstretch nodes, or regional.nodes.dns=NAME:PORT to read them from DNS)");
	if (fixed && cfg->node_id >= 0 && kr_regional_nodes_index(&cfg->regional_nodes, cfg->node_id) < 0) {
		kx_node_ids(&cfg->regional_nodes, ids, sizeof(ids));
		return kx_fail(err, "node.id: %d is not one of regional.nodes (ids %s)", (int)cfg->node_id, ids);
	}
	if (fixed && refresh)
		return kx_fail(err, "regional.nodes.refresh.ms: set to %d, but the nodes are regional.nodes, which is "
		               "never read again (the key is for regional.nodes.dns)", cfg->regional_nodes_refresh_ms);
	if (cfg->sasl_mtls_identity && cfg->tls_client_auth != KX_TLS_AUTH_REQUIRED)
		return kx_fail(err, "sasl.mtls.identity=true: needs tls.client.auth=required (only a verified "
		                    "certificate can stand for authentication)");
	return true;
}

bool kx_config_validate(const struct kx_config *cfg, struct kx_config_error *err)
{
	if (cfg->bootstrap_cnt == 0)
		return kx_fail(err, "bootstrap.servers: required (set it in the --config file or with "
		                    "--bootstrap-servers HOST:PORT)");
	if (cfg->advertised_host[0] == '\0' && kx_is_wildcard(cfg->listen.host))
		return kx_fail(err, "advertised.host: required when listen is a wildcard address (%s)",
		               cfg->listen.host);
	if (cfg->admin_token[0] && cfg->admin_token_file[0])
		return kx_fail(err, "admin.token and admin.token.file: set one of them");
	if (cfg->listen.port == cfg->admin_listen.port && strcmp(cfg->listen.host, cfg->admin_listen.host) == 0)
		return kx_fail(err, "admin.listen: same address as listen (%s:%u)", cfg->listen.host, cfg->listen.port);
	for (size_t i = 0; i < cfg->port_map_cnt; i++) {
		uint16_t p = cfg->port_map[i].port;
		if (p == cfg->listen.port || p == cfg->admin_listen.port)
			return kx_fail(err, "broker.port.map: port %u of node %d is taken by %s", p,
			               cfg->port_map[i].node_id, p == cfg->listen.port ? "listen" : "admin.listen");
	}
	for (size_t i = 0; i < cfg->listener_rack_cnt; i++) {
		uint16_t p = cfg->listener_racks[i].port;
		bool mapped = false;
		for (size_t j = 0; j < cfg->port_map_cnt; j++)
			mapped = mapped || cfg->port_map[j].port == p;
		if (p == cfg->admin_listen.port && p != cfg->listen.port)
			return kx_fail(err, "listener.rack.%u: port %u is admin.listen, where no Kafka client connects",
			               p, p);
		if (p != cfg->listen.port && !mapped && p < cfg->broker_port_base)
			return kx_fail(err,
			               "listener.rack.%u: port %u is not a kstretch listener (listen is port %u, "
			               "broker listeners are broker.port.base %d and up, or in broker.port.map)",
			               p, p, cfg->listen.port, cfg->broker_port_base);
	}
	if (!cfg->tls_cert[0] != !cfg->tls_key[0])
		return kx_fail(err, "%s: required with %s (a certificate and its private key)",
		               cfg->tls_cert[0] ? "tls.key" : "tls.cert", cfg->tls_cert[0] ? "tls.cert" : "tls.key");
	if (cfg->tls_client_auth != KX_TLS_AUTH_NONE && !cfg->tls_cert[0])
		return kx_fail(err, "tls.client.auth=%s: needs TLS towards clients (tls.cert and tls.key)",
		               cfg->tls_client_auth == KX_TLS_AUTH_REQUIRED ? "required" : "requested");
	if (cfg->tls_client_auth != KX_TLS_AUTH_NONE && !cfg->tls_client_ca[0])
		return kx_fail(err, "tls.client.ca: required with tls.client.auth=%s (the CAs client certificates are "
		               "verified against)", cfg->tls_client_auth == KX_TLS_AUTH_REQUIRED ? "required" : "requested");
	if (cfg->tls_client_ca[0] && cfg->tls_client_auth == KX_TLS_AUTH_NONE)
		return kx_fail(err, "tls.client.ca: set, but tls.client.auth=none asks clients for no certificate "
		                    "(set tls.client.auth=required or requested)");
	if (cfg->tls_client_rack_from != KX_CERT_ATTR_NONE && cfg->tls_client_auth == KX_TLS_AUTH_NONE)
		return kx_fail(err, "tls.client.rack.from: needs client certificates (tls.client.auth=required or "
		                    "requested)");
	if (cfg->listener_mode == KX_LISTENER_SNI && !cfg->tls_cert[0])
		return kx_fail(err, "listener.mode=sni: needs TLS towards clients (tls.cert and tls.key): the broker is "
		                    "named in the TLS handshake");
	if (cfg->listener_mode == KX_LISTENER_SNI && !cfg->sni_host_pattern[0])
		return kx_fail(err, "sni.host.pattern: required with listener.mode=sni (e.g. broker-$(nodeId).kafka.example)");
	if (!cfg->upstream_tls_cert[0] != !cfg->upstream_tls_key[0])
		return kx_fail(err, "%s: required with %s (a certificate and its private key)",
		               cfg->upstream_tls_cert[0] ? "upstream.tls.key" : "upstream.tls.cert",
		               cfg->upstream_tls_cert[0] ? "upstream.tls.cert" : "upstream.tls.key");
	if (!cfg->upstream_tls && (cfg->upstream_tls_ca[0] || cfg->upstream_tls_cert[0]))
		return kx_fail(err, "%s: set, but upstream.tls=false (set upstream.tls=true to connect to the brokers "
		               "with TLS)", cfg->upstream_tls_ca[0] ? "upstream.tls.ca" : "upstream.tls.cert");
	if (cfg->upstream_sasl_password[0] && cfg->upstream_sasl_password_file[0])
		return kx_fail(err, "upstream.sasl.password.file: set together with upstream.sasl.password (set only one)");
	if (cfg->upstream_sasl_mechanism == KX_SASL_NONE &&
	    (cfg->upstream_sasl_username[0] || kx_config_upstream_sasl_password(cfg)[0]))
		return kx_fail(err, "%s: set, but upstream.sasl.mechanism=none (name the mechanism the brokers' SASL "
		               "listener enables)", cfg->upstream_sasl_username[0] ? "upstream.sasl.username"
		               : cfg->upstream_sasl_password[0] ? "upstream.sasl.password" : "upstream.sasl.password.file");
	if (cfg->upstream_sasl_mechanism != KX_SASL_NONE && !cfg->upstream_sasl_username[0])
		return kx_fail(err, "upstream.sasl.username: required with upstream.sasl.mechanism=%s",
		               kx_sasl_mechanism_names[cfg->upstream_sasl_mechanism]);
	if (cfg->upstream_sasl_mechanism != KX_SASL_NONE && !kx_config_upstream_sasl_password(cfg)[0])
		return kx_fail(err, "upstream.sasl.password: required with upstream.sasl.mechanism=%s (or "
		               "upstream.sasl.password.file)", kx_sasl_mechanism_names[cfg->upstream_sasl_mechanism]);
	return kx_validate_regional(cfg, err);
}

static void kx_topology_log(bool error, const char *line)
{
	kx_log(error ? KX_LOG_ERROR : KX_LOG_INFO, "%s", line);
}

void kx_config_topology(const struct kx_config *cfg, struct kr_topology_rules *r)
{
	*r = (struct kr_topology_rules){
	    .broker_port_base = cfg->broker_port_base,
	    .port_map = cfg->port_map,
	    .port_map_cnt = cfg->port_map_cnt,
	    .region_rules = cfg->region_rules,
	    .region_rule_cnt = cfg->region_rule_cnt,
	    .log = kx_topology_log,
	};
}

void kx_config_placement(const struct kx_config *cfg, struct kr_placement *p)
{
	*p = (struct kr_placement){
	    .rack = cfg->rack,
	    .listeners = cfg->listener_racks,
	    .listener_cnt = cfg->listener_rack_cnt,
	    .cidrs = cfg->rack_cidrs,
	    .cidr_cnt = cfg->rack_cidr_cnt,
	    .regions = cfg->region_rules,
	    .region_cnt = cfg->region_rule_cnt,
	};
}

const char *kx_sasl_mechanism_name(enum kx_sasl_mechanism m)
{
	return kx_sasl_mechanism_names[m];
}

const char *kx_config_upstream_sasl_password(const struct kx_config *cfg)
{
	return cfg->upstream_sasl_password[0] ? cfg->upstream_sasl_password : cfg->upstream_sasl_file_password;
}

const char *kx_config_advertised_host(const struct kx_config *cfg)
{
	return cfg->advertised_host[0] ? cfg->advertised_host : cfg->listen.host;
}

void kx_config_print(const struct kx_config *cfg, FILE *out)
{
	for (size_t i = 0; i < KX_KEY_CNT; i++) {
		fprintf(out, "%s=", kx_keys[i].name);
		kx_keys[i].print(cfg, &kx_keys[i], out);
		fputc('\n', out);
	}
	for (size_t i = 0; i < KX_FAMILY_CNT; i++)
		kx_families[i].print(cfg, &kx_families[i], out); /* whole lines */
}

/* Keys a running process cannot change (SIGHUP): what its listeners, workers,
 * upstream identity and regional node set were built from. */
static const char *const kx_restart_keys[] = {
    "bootstrap.servers",
    "listen",
    "mode",
    "region",
    "regional.nodes",
    "regional.nodes.dns",
    "regional.nodes.refresh.ms",
    "node.id",
    "regional.upstream.connections",
    "proxy.protocol",
    "listener.mode",
    "workers",
    "admin.listen",
    "upgrade.socket",
    "upstream.tls",
    "upstream.sasl.mechanism",
    "upstream.sasl.username",
    "upstream.sasl.password.file",
    "admin.token",
    "admin.token.file",
    "metadata.max.age.ms",
    "sasl.users",
    "sasl.mechanisms",
    "sasl.mtls.identity",
};

static bool kx_restart_key(const char *key)
{
	for (size_t i = 0; i < sizeof(kx_restart_keys) / sizeof(kx_restart_keys[0]); i++)
		if (strcmp(key, kx_restart_keys[i]) == 0)
			return true;
	return false;
}

/* Every "key=value" line of cfg, in one malloc'd text (NULL: no memory). */
static char *kx_config_text(const struct kx_config *cfg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return NULL;
	kx_config_print(cfg, f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* The value of key in text (kx_config_text's lines), its length in *len; NULL when absent. */
static const char *kx_config_text_value(const char *text, const char *key, size_t *len)
{
	size_t klen = strlen(key);
	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t n = end ? (size_t)(end - line) : strlen(line);
		if (n > klen && strncmp(line, key, klen) == 0 && line[klen] == '=') {
			*len = n - klen - 1;
			return line + klen + 1;
		}
		line = end ? end + 1 : NULL;
	}
	return NULL;
}

int kx_config_changes(const struct kx_config *was, const struct kx_config *now, kx_config_change_fn fn, void *arg)
{
	char *a = kx_config_text(was), *b = kx_config_text(now);
	int changed = -1;
	if (a && b) {
		changed = 0;
		/* every line of either side: a key that appears (a listener.rack.PORT) or goes counts too */
		for (int side = 0; side < 2; side++) {
			const char *text = side ? b : a, *other = side ? a : b;
			for (const char *line = text; *line;) {
				const char *end = strchr(line, '\n'),
				           *eq = memchr(line, '=', end ? (size_t)(end - line) : strlen(line));
				size_t n = end ? (size_t)(end - line) : strlen(line);
				if (eq) {
					char key[128];
					size_t klen = (size_t)(eq - line) < sizeof(key) - 1 ? (size_t)(eq - line)
					                                                    : sizeof(key) - 1;
					memcpy(key, line, klen);
					key[klen] = '\0';
					size_t vlen = n - (size_t)(eq - line) - 1, olen = 0;
					const char *ov = kx_config_text_value(other, key, &olen);
					bool differs = !ov || olen != vlen || memcmp(ov, eq + 1, vlen) != 0;
					if (differs && (side == 0 || !ov)) { /* each difference once */
						char v1[256], v2[256];
						const char *wv = side ? ov : eq + 1, *nv = side ? eq + 1 : ov;
						size_t wl = side ? olen : vlen, nl = side ? vlen : olen;
						snprintf(v1, sizeof(v1), "%.*s", wv ? (int)wl : 0, wv ? wv : "");
						snprintf(v2, sizeof(v2), "%.*s", nv ? (int)nl : 0, nv ? nv : "");
						changed++;
						fn(key, wv ? v1 : NULL, nv ? v2 : NULL, kx_restart_key(key), arg);
					}
				}
				line = end ? end + 1 : line + n;
			}
		}
	}
	free(a);
	free(b);
	return changed;
}

void kx_config_print_help(FILE *out)
{
	for (size_t i = 0; i < KX_KEY_CNT; i++) {
		char flag[128];
		const char *n = kx_keys[i].name;
		size_t j = 0;
		for (; n[j] && j < sizeof(flag) - 1; j++)
			flag[j] = n[j] == '.' ? '-' : n[j];
		flag[j] = '\0';
		fprintf(out, "  --%-30s %s\n", flag, kx_keys[i].help);
		if (kx_keys[i].def && kx_keys[i].def[0])
			fprintf(out, "  %-32s (%s=%s by default)\n", "", n, kx_keys[i].def);
	}
	for (size_t i = 0; i < KX_FAMILY_CNT; i++) {
		char flag[128];
		size_t j = 0;
		for (const char *n = kx_families[i].prefix; *n && j < sizeof(flag) - 1; n++, j++)
			flag[j] = *n == '.' ? '-' : *n;
		snprintf(flag + j, sizeof(flag) - j, "%s", kx_families[i].member_name);
		fprintf(out, "  --%-30s %s\n", flag, kx_families[i].help);
	}
}

/* Help text on one line: a tab or newline in it would break --list-keys' columns. */
static void kx_print_one_line(const char *s, FILE *out)
{
	for (; *s; s++)
		fputc(*s == '\t' || *s == '\n' ? ' ' : *s, out);
}

void kx_config_print_keys(FILE *out)
{
	for (size_t i = 0; i < KX_KEY_CNT; i++) {
		fprintf(out, "%s\t", kx_keys[i].name);
		kx_print_one_line(kx_keys[i].def ? kx_keys[i].def : "", out);
		fputc('\t', out);
		kx_print_one_line(kx_keys[i].help, out);
		fputc('\n', out);
	}
	for (size_t i = 0; i < KX_FAMILY_CNT; i++) {
		fprintf(out, "%s%s\t\t", kx_families[i].prefix, kx_families[i].member_name);
		kx_print_one_line(kx_families[i].help, out);
		fputc('\n', out);
	}
}
