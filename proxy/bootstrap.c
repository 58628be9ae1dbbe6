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
#include "text.h"
#include "tls.h"

#define KX_BOOTSTRAP_IO_MS        5000
#define KX_BOOTSTRAP_MAX_RESPONSE (64 * 1024 * 1024)

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

/* The newest Metadata version both the broker and the codec speak (-1: none). */
static int16_t kx_pick_metadata_version(struct kx_transport *fd, char *err, size_t errlen)
{
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

/* Asks one server; fills *out with a new topology on success. */
static bool kx_ask(const struct kx_config *cfg, const struct kx_hostport *hp, struct kx_topology **out, char *err,
                   size_t errlen)
{
	struct kx_transport tr;
	if (!kx_open(cfg, hp, &tr, kx_now_ms() + cfg->connect_timeout_ms, err, errlen))
		return false;
	struct kx_transport *fd = &tr;
	int16_t ver = kx_pick_metadata_version(fd, err, errlen);
	bool ok = false;
	if (ver >= 0) {
		struct kp_arena a;
		struct kp_cursor c;
		size_t len;
		kp_arena_init(&a, 0);
		struct kp_struct *req = kp_struct_new(&a, &kp_metadata_request, ver);
		/* v0: an empty list means all topics; from v1 it means none (we want none). */
		int topics = kp_field_index(&kp_metadata_request, "Topics");
		req->v[topics].a.cnt = 0;
		uint8_t *resp = kx_roundtrip(fd, KP_API_METADATA, ver, 2, req, &len, err, errlen);
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
		char err[256] = "";
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
