#include "bootstrap.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "header.h"
#include "log.h"
#include "message.h"
#include "messages.h"
#include "sasl_client.h"
#include "text.h"
#include "tls.h"

#include <openssl/crypto.h>
#include <stdatomic.h>

#define KX_BOOTSTRAP_IO_MS        5000
#define KX_BOOTSTRAP_MAX_RESPONSE (64 * 1024 * 1024)

static atomic_int kx_metadata_version = -1;

int kx_bootstrap_metadata_version(void)
{
	return atomic_load(&kx_metadata_version);
}

static long kx_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Waits for fd to be ready for events until deadline; false on timeout. */
static bool kx_wait(int fd, short events, long deadline)
{
	for (;;) {
		long left = deadline - kx_now_ms();
		if (left <= 0)
			return false;
		struct pollfd p = {.fd = fd, .events = events};
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return true;
		if (r < 0 && errno != EINTR)
			return false;
	}
}

static int kx_connect(const struct kx_hostport *hp, long deadline, char *err, size_t errlen)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *res = NULL;
	char port[8];
	snprintf(port, sizeof(port), "%u", hp->port);
	int r = getaddrinfo(hp->host, port, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "resolve: %s", gai_strerror(r));
		return -1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			snprintf(err, errlen, "connect: %s", strerror(errno));
			close(fd);
			fd = -1;
			continue;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (!kx_wait(fd, POLLOUT, deadline) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			snprintf(err, errlen, "connect: %s", soerr ? strerror(soerr) : "timeout");
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	return fd;
}

/* The readiness t waits for to go on (TLS may need the other direction). */
static short kx_wait_for(const struct kx_transport *t, bool writing)
{
	if (writing)
		return t->blocked & KX_TR_WRITE_WANTS_READ ? POLLIN : POLLOUT;
	return t->blocked & KX_TR_READ_WANTS_WRITE ? POLLOUT : POLLIN;
}

static bool kx_send_all(struct kx_transport *t, const uint8_t *p, size_t n, long deadline)
{
	while (n) {
		struct iovec v = {(void *)p, n};
		ssize_t w = t->ops->writev(t, &v, 1);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (!kx_wait(t->fd, kx_wait_for(t, true), deadline))
				return false;
			continue;
		}
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static bool kx_recv_all(struct kx_transport *t, uint8_t *p, size_t n, long deadline)
{
	while (n) {
		struct iovec v = {p, n};
		ssize_t r = t->ops->readv(t, &v, 1);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
			if (!kx_wait(t->fd, kx_wait_for(t, false), deadline))
				return false;
			continue;
		}
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* Connects to hp (with TLS when upstream.tls is set) within the deadline;
 * false with err set. t then owns the socket (t->ops->close). */
static bool kx_open(const struct kx_config *cfg, const struct kx_hostport *hp, struct kx_transport *t, long deadline,
                    char *err, size_t errlen)
{
	int fd = kx_connect(hp, deadline, err, errlen);
	if (fd < 0)
		return false;
	kx_transport_raw(t, fd);
	if (!kx_tls_towards_brokers())
		return true;
	if (!kx_tls_connect(t, fd, hp->host, hp->port, cfg->upstream_tls_verify_hostname, NULL)) {
		snprintf(err, errlen, "cannot start TLS (out of memory, or a host name OpenSSL refuses)");
		t->ops->close(t);
		return false;
	}
	for (;;) {
		enum kx_tls_step st = kx_tls_handshake(t);
		if (st == KX_TLS_DONE)
			return true;
		if (st == KX_TLS_FAILED || !kx_wait(fd, st == KX_TLS_WANT_READ ? POLLIN : POLLOUT, deadline)) {
			snprintf(err, errlen, "%s", st == KX_TLS_FAILED ? kx_tls_error(t) : "TLS handshake timeout");
			t->ops->close(t);
			return false;
		}
	}
}

/* Sends one request and returns the response body (malloc'd, after the size). */
static uint8_t *kx_roundtrip(struct kx_transport *fd, int16_t api, int16_t ver, int32_t corr, const struct kp_struct *body, size_t *len,
                             char *err, size_t errlen)
{
	struct kp_writer w;
	struct kp_request_header h = {.api_key = api,
	                              .api_version = ver,
	                              .correlation_id = corr,
	                              .client_id = {(const uint8_t *)"kstretch", 8},
	                              .header_version = kp_request_header_version(api, ver)};
	kp_writer_init(&w);
	size_t at = kp_writer_reserve_i32(&w);
	kp_request_header_write(&w, &h);
	kp_encode(&w, body, ver, kp_api_flexible(kp_api_get(api), ver), -1);
	kp_writer_patch_i32(&w, at, (int32_t)(kp_writer_size(&w) - 4));
	size_t n;
	uint8_t *req = kp_writer_flatten(&w, &n);
	kp_writer_free(&w);
	long deadline = kx_now_ms() + KX_BOOTSTRAP_IO_MS;
	uint8_t sz[4];
	if (!req || !kx_send_all(fd, req, n, deadline) || !kx_recv_all(fd, sz, 4, deadline)) {
		free(req);
		snprintf(err, errlen, "no answer to %s v%d", kp_api_get(api)->name, ver);
		return NULL;
	}
	free(req);
	int32_t size = kp_frame_size_get(sz);
	if (size < 4 || size > KX_BOOTSTRAP_MAX_RESPONSE) {
		snprintf(err, errlen, "%s v%d response of %d bytes", kp_api_get(api)->name, ver, size);
		return NULL;
	}
	uint8_t *resp = malloc((size_t)size);
	if (!resp || !kx_recv_all(fd, resp, (size_t)size, deadline)) {
		free(resp);
		snprintf(err, errlen, "%s v%d response cut short", kp_api_get(api)->name, ver);
		return NULL;
	}
	*len = (size_t)size;
	return resp;
}

/* The versions of the SASL APIs a broker offers (-1: not offered). */
struct kx_sasl_offer {
	int16_t handshake_lo, handshake_hi, authenticate_lo, authenticate_hi;
};

/* The newest Metadata version both the broker and the codec speak (-1: none);
 * *sasl: the SASL API versions the broker offers. */
static int16_t kx_pick_metadata_version(struct kx_transport *fd, struct kx_sasl_offer *sasl, char *err, size_t errlen)
{
	*sasl = (struct kx_sasl_offer){-1, -1, -1, -1};
	struct kp_arena a;
	struct kp_cursor c;
	size_t len;
	int16_t best = -1;
	kp_arena_init(&a, 1 << 20);
	struct kp_struct *req = kp_struct_new(&a, &kp_api_versions_request, 0);
	uint8_t *resp = kx_roundtrip(fd, KP_API_API_VERSIONS, 0, 1, req, &len, err, errlen);
	if (resp) {
		struct kp_message m;
		kp_cursor_init(&c, resp, len);
		if (kp_message_decode(&a, &c, false, KP_API_API_VERSIONS, 0, &m) && m.body) {
			const struct kp_value *keys = &m.body->v[kp_field_index(m.body->schema, "ApiKeys")];
			const struct kp_api *md = kp_api_get(KP_API_METADATA);
			for (int32_t i = 0; i < keys->a.cnt; i++) {
				const struct kp_struct *e = keys->a.items[i].st;
				if (e->v[0].i == KP_API_SASL_HANDSHAKE) {
					sasl->handshake_lo = (int16_t)e->v[1].i;
					sasl->handshake_hi = (int16_t)e->v[2].i;
				} else if (e->v[0].i == KP_API_SASL_AUTHENTICATE) {
					sasl->authenticate_lo = (int16_t)e->v[1].i;
					sasl->authenticate_hi = (int16_t)e->v[2].i;
				}
				if (e->v[0].i != KP_API_METADATA)
					continue;
				int64_t hi = e->v[2].i < md->decode_max ? e->v[2].i : md->decode_max;
				if (hi >= e->v[1].i && hi >= md->decode_min)
					best = (int16_t)hi;
			}
			if (best < 0)
				snprintf(err, errlen, "no Metadata version in common with the broker");
		} else {
			snprintf(err, errlen, "malformed ApiVersions response: %s", kp_error_name(c.err));
		}
	}
	free(resp);
	kp_arena_free(&a);
	return best;
}

/* Kafka's names of the errors a SASL exchange answers with. */
static const char *kx_sasl_error_name(int64_t code)
{
	switch (code) {
	case 33: return "UNSUPPORTED_SASL_MECHANISM";
	case 34: return "ILLEGAL_SASL_STATE";
	case 35: return "UNSUPPORTED_VERSION";
	case 58: return "SASL_AUTHENTICATION_FAILED";
	default: return "error";
	}
}

/* Copies what a broker wrote into a log line: printable ASCII, others as '?', cut at cap - 1. */
static void kx_printable(char *dst, size_t cap, const uint8_t *s, int32_t len)
{
	size_t n = 0;
	for (int32_t i = 0; i < len && n + 1 < cap; i++)
		dst[n++] = (char)(s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?');
	dst[n] = '\0';
}

static const char *const kx_sasl_names[] = {
    [KX_SASL_NONE] = "none",
    [KX_SASL_PLAIN] = "PLAIN",
    [KX_SASL_SCRAM_SHA_256] = "SCRAM-SHA-256",
    [KX_SASL_SCRAM_SHA_512] = "SCRAM-SHA-512",
};

/*
 * One request of the exchange and its decoded answer (NULL with err set).
 * *resp is the malloc'd frame the answer's strings point into.
 */
static struct kp_struct *kx_sasl_call(struct kx_transport *fd, struct kp_arena *a, int16_t api, int16_t ver,
                                      int32_t corr, const struct kp_struct *req, uint8_t **resp, char *err,
                                      size_t errlen)
{
	size_t len;
	struct kp_message m;
	struct kp_cursor c;
	free(*resp);
	*resp = kx_roundtrip(fd, api, ver, corr, req, &len, err, errlen);
	if (!*resp)
		return NULL;
	kp_cursor_init(&c, *resp, len);
	if (!kp_message_decode(a, &c, false, api, ver, &m) || !m.body) {
		snprintf(err, errlen, "malformed %s v%d response: %s at byte %zu", kp_api_get(api)->name, ver,
		         kp_error_name(c.err), c.err_pos);
		return NULL;
	}
	if (m.resp.correlation_id != corr) {
		snprintf(err, errlen, "%s v%d response for request %d, not %d", kp_api_get(api)->name, ver,
		         m.resp.correlation_id, corr);
		return NULL;
	}
	return m.body;
}

/* SaslHandshake v1 naming the configured mechanism. */
static bool kx_sasl_handshake(const struct kx_config *cfg, struct kx_transport *fd, const struct kx_sasl_offer *offer,
                              char *err, size_t errlen)
{
	const char *mech = kx_sasl_names[cfg->upstream_sasl_mechanism];
	if (offer->handshake_lo > 1 || offer->handshake_hi < 1) {
		snprintf(err, errlen, "upstream.sasl.mechanism=%s, but the broker offers no SaslHandshake v1 (%s)", mech,
		         offer->handshake_hi < 0 ? "its listener takes no SASL, or it is older than Kafka 1.0"
		                                 : "too old or too new for kstretch");
		return false;
	}
	struct kp_arena a;
	uint8_t *resp = NULL;
	bool ok = false;
	kp_arena_init(&a, 0);
	struct kp_struct *req = kp_struct_new(&a, &kp_sasl_handshake_request, 1);
	req->v[KP_SASL_HANDSHAKE_REQ_MECHANISM].s = (struct kp_span){(const uint8_t *)mech, (int32_t)strlen(mech)};
	struct kp_struct *r = kx_sasl_call(fd, &a, KP_API_SASL_HANDSHAKE, 1, 2, req, &resp, err, errlen);
	if (r) {
		int64_t code = r->v[KP_SASL_HANDSHAKE_RESP_ERROR_CODE].i;
		const struct kp_list *l = &r->v[KP_SASL_HANDSHAKE_RESP_MECHANISMS].a;
		char enabled[160] = "";
		for (int32_t i = 0; i < l->cnt && strlen(enabled) + 4 < sizeof(enabled); i++) {
			size_t at = strlen(enabled);
			if (i)
				at += (size_t)snprintf(enabled + at, sizeof(enabled) - at, ", ");
			kx_printable(enabled + at, sizeof(enabled) - at, l->items[i].s.ptr, l->items[i].s.len);
		}
		if (code == 0)
			ok = true;
		else
			snprintf(err, errlen, "SaslHandshake for %s: %s (%lld); the broker enables: %s", mech,
			         kx_sasl_error_name(code), (long long)code,
			         enabled[0] ? enabled : "nothing (is its listener SASL_PLAINTEXT or SASL_SSL?)");
	}
	free(resp);
	kp_arena_free(&a);
	return ok;
}

/*
 * One SaslAuthenticate round: sends bytes, returns the broker's AuthBytes
 * (pointing into *resp), or false with err set (a broker's error with its
 * ErrorMessage).
 */
static bool kx_sasl_round(struct kx_transport *fd, struct kp_arena *a, int16_t ver, int32_t corr, const void *bytes,
                          size_t n, uint8_t **resp, struct kp_span *answer, char *err, size_t errlen)
{
	struct kp_struct *req = kp_struct_new(a, &kp_sasl_authenticate_request, ver);
	req->v[KP_SASL_AUTH_REQ_AUTH_BYTES].s = (struct kp_span){bytes, (int32_t)n};
	struct kp_struct *r = kx_sasl_call(fd, a, KP_API_SASL_AUTHENTICATE, ver, corr, req, resp, err, errlen);
	if (!r)
		return false;
	int64_t code = r->v[KP_SASL_AUTH_RESP_ERROR_CODE].i;
	if (code != 0) {
		char msg[200];
		struct kp_span m = r->v[KP_SASL_AUTH_RESP_ERROR_MESSAGE].s;
		kx_printable(msg, sizeof(msg), m.ptr, m.len);
		snprintf(err, errlen, "SaslAuthenticate: %s (%lld): %s", kx_sasl_error_name(code), (long long)code,
		         m.len > 0 ? msg : "no message");
		return false;
	}
	*answer = r->v[KP_SASL_AUTH_RESP_AUTH_BYTES].s;
	if (answer->len < 0)
		*answer = (struct kp_span){(const uint8_t *)"", 0};
	return true;
}

/*
 * Authenticates kstretch's own connection (upstream.sasl.*): SaslHandshake
 * v1, then SaslAuthenticate at the newest version both sides speak (0-2):
 * PLAIN in one round, SCRAM in two with the server's signature verified.
 */
static bool kx_sasl_authenticate(const struct kx_config *cfg, struct kx_transport *fd,
                                 const struct kx_sasl_offer *offer, char *err, size_t errlen)
{
	if (!kx_sasl_handshake(cfg, fd, offer, err, errlen))
		return false;
	const struct kp_api *api = kp_api_get(KP_API_SASL_AUTHENTICATE);
	int16_t ver = (int16_t)(offer->authenticate_hi < api->decode_max ? offer->authenticate_hi : api->decode_max);
	if (offer->authenticate_hi < 0 || ver < offer->authenticate_lo || ver < api->decode_min) {
		snprintf(err, errlen, "the broker offers no SaslAuthenticate version kstretch speaks (0-%d)",
		         api->decode_max);
		return false;
	}
	const char *mech = kx_sasl_names[cfg->upstream_sasl_mechanism];
	const char *user = cfg->upstream_sasl_username, *password = kx_config_upstream_sasl_password(cfg);
	struct kp_arena a;
	uint8_t *resp = NULL;
	struct kp_span answer;
	bool ok = false;
	kp_arena_init(&a, 0);
	if (cfg->upstream_sasl_mechanism == KX_SASL_PLAIN) {
		uint8_t msg[KX_SASL_USER_MAX + KX_SASL_PASSWORD_MAX + 2];
		size_t n = kx_sasl_plain(user, password, msg, sizeof(msg));
		ok = n > 0 && kx_sasl_round(fd, &a, ver, 3, msg, n, &resp, &answer, err, errlen);
		OPENSSL_cleanse(msg, sizeof(msg));
	} else {
		struct kx_scram s;
		char first[KX_SCRAM_MSG_MAX + 1], final[KX_SCRAM_MSG_MAX + 1], why[256];
		enum kx_scram_hash h = cfg->upstream_sasl_mechanism == KX_SASL_SCRAM_SHA_512 ? KX_SCRAM_SHA_512
		                                                                              : KX_SCRAM_SHA_256;
		if (!kx_scram_client_first(&s, h, user, NULL, first, sizeof(first), why, sizeof(why)))
			snprintf(err, errlen, "%s: %s", mech, why);
		else if (kx_sasl_round(fd, &a, ver, 3, first, strlen(first), &resp, &answer, err, errlen)) {
			if (!kx_scram_client_final(&s, password, answer.ptr, (size_t)answer.len, final, sizeof(final), why,
			                           sizeof(why)))
				snprintf(err, errlen, "%s: %s", mech, why);
			else if (kx_sasl_round(fd, &a, ver, 4, final, strlen(final), &resp, &answer, err, errlen)) {
				ok = kx_scram_server_final(&s, answer.ptr, (size_t)answer.len, why, sizeof(why));
				if (!ok)
					snprintf(err, errlen, "%s: %s", mech, why);
			}
		}
		kx_scram_clear(&s);
		OPENSSL_cleanse(final, sizeof(final));
	}
	free(resp);
	kp_arena_free(&a);
	if (ok)
		kx_debug("bootstrap: authenticated as %s with %s (SaslAuthenticate v%d)", user, mech, ver);
	return ok;
}

/* Asks one server; fills *out with a new topology on success. */
static bool kx_ask(const struct kx_config *cfg, const struct kx_hostport *hp, struct kx_topology **out, char *err,
                   size_t errlen)
{
	struct kx_transport tr;
	if (!kx_open(cfg, hp, &tr, kx_now_ms() + cfg->connect_timeout_ms, err, errlen))
		return false;
	struct kx_transport *fd = &tr;
	struct kx_sasl_offer sasl;
	int16_t ver = kx_pick_metadata_version(fd, &sasl, err, errlen);
	bool ok = false;
	if (ver >= 0 && cfg->upstream_sasl_mechanism != KX_SASL_NONE && !kx_sasl_authenticate(cfg, fd, &sasl, err, errlen))
		ver = -1;
	if (ver >= 0) {
		struct kp_arena a;
		struct kp_cursor c;
		size_t len;
		kp_arena_init(&a, 0);
		struct kp_struct *req = kp_struct_new(&a, &kp_metadata_request, ver);
		/* v0: an empty list means all topics; from v1 it means none (we want none). */
		int topics = kp_field_index(&kp_metadata_request, "Topics");
		req->v[topics].a.cnt = 0;
		uint8_t *resp = kx_roundtrip(fd, KP_API_METADATA, ver, 5, req, &len, err, errlen);
		struct kp_response_header h;
		if (resp) {
			kp_cursor_init(&c, resp, len);
			kp_response_header_parse(&c, kp_response_header_version(KP_API_METADATA, ver), &h);
			struct kp_struct *md =
			    kp_decode(&a, &c, &kp_metadata_response, ver,
			              kp_api_flexible(kp_api_get(KP_API_METADATA), ver), KP_METADATA_RESPONSE_PREFIX);
			if (md) {
				const struct kp_list *bl = &md->v[KP_METADATA_RESPONSE_BROKERS].a;
				struct kx_broker *bs = calloc(bl->cnt > 0 ? (size_t)bl->cnt : 1, sizeof(*bs));
				size_t n = 0;
				for (int32_t i = 0; bs && i < bl->cnt; i++) {
					const struct kp_struct *b = bl->items[i].st;
					struct kp_span host = b->v[KP_METADATA_BROKER_HOST].s;
					struct kp_span rack = b->v[KP_METADATA_BROKER_RACK].s;
					int64_t id = b->v[KP_METADATA_BROKER_NODE_ID].i,
					        port = b->v[KP_METADATA_BROKER_PORT].i;
					struct kx_broker *k = &bs[n];
					k->node_id = (int32_t)id;
					if (id < 0 || !kx_name_copy(k->host, sizeof(k->host), host.ptr, host.len) ||
					    !k->host[0] || port <= 0 || port > 65535) {
						kx_warn("bootstrap: %s:%u lists node %lld with an address kstretch "
						        "does not accept "
						        "(empty, too long or not UTF-8, or port %lld): left out",
						        hp->host, hp->port, (long long)id, (long long)port);
						continue;
					}
					k->port = (uint16_t)port;
					if (!kx_name_copy(k->rack, sizeof(k->rack), rack.ptr, rack.len))
						kx_warn("bootstrap: %s:%u lists node %d with a rack that is too long "
						        "or not UTF-8: "
						        "taken as no rack",
						        hp->host, hp->port, k->node_id);
					n++;
				}
				if (bs && n > 0) {
					struct kr_topology_rules rules;
					kx_config_topology(cfg, &rules);
					*out = kx_topology_new(&rules, bs, n);
					ok = *out != NULL;
					if (ok)
						atomic_store(&kx_metadata_version, ver);
				} else {
					snprintf(err, errlen, "Metadata v%d listed no broker kstretch can use", ver);
				}
				free(bs);
			} else {
				snprintf(err, errlen, "malformed Metadata v%d response: %s at byte %zu reading %s", ver,
				         kp_error_name(c.err), c.err_pos, c.err_field ? c.err_field : "?");
			}
		}
		free(resp);
		kp_arena_free(&a);
	}
	tr.ops->close(&tr);
	return ok;
}

struct kx_topology *kx_bootstrap_topology(const struct kx_config *cfg, volatile sig_atomic_t *stop)
{
	long backoff = 100;
	for (unsigned attempt = 0; !*stop; attempt++) {
		const struct kx_hostport *hp = &cfg->bootstrap[attempt % cfg->bootstrap_cnt];
		struct kx_topology *t = NULL;
		char err[512] = "";
		if (kx_ask(cfg, hp, &t, err, sizeof(err))) {
			kx_info("bootstrap: %zu brokers from %s:%u", t->broker_cnt, hp->host, hp->port);
			return t;
		}
		kx_warn("bootstrap: %s:%u: %s (retrying in %ld ms)", hp->host, hp->port, err, backoff);
		for (long slept = 0; slept < backoff && !*stop; slept += 50)
			usleep(50 * 1000);
		if (backoff < 5000)
			backoff *= 2;
	}
	return NULL;
}

bool kx_bootstrap_probe(const struct kx_config *cfg, size_t *brokers, char *err, size_t errlen)
{
	err[0] = '\0';
	for (size_t i = 0; i < cfg->bootstrap_cnt; i++) {
		const struct kx_hostport *hp = &cfg->bootstrap[i];
		struct kx_topology *t = NULL;
		char e[512] = "";
		if (kx_ask(cfg, hp, &t, e, sizeof(e))) {
			*brokers = t->broker_cnt;
			kx_topology_put(t);
			return true;
		}
		snprintf(err, errlen, "%s:%u: %s", hp->host, hp->port, e);
	}
	return false;
}
