/*
 * pool: the shared upstream connections of regional mode (pool.h).
 */
#include "pool.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api.h"
#include "conn.h"
#include "header.h"
#include "log.h"
#include "metrics.h"
#include "peek.h"
#include "regional_session.h"
#include "sasl.h"
#include "sasl_client.h"
#include "tls.h"
#include "topology.h"
#include "worker.h"

#include <event2/buffer.h>

#define KX_PCONN_FIFO_FIRST 16
/* Answers this long or longer are read straight into their held block. */

/* A name lookup in flight: it may finish after its connection is gone. */
struct kx_pconn_resolve {
	struct kx_pconn *c; /* NULL once the connection let go */
};

/* A line about shared connection c: "upstream ADDR: ...", its broker as the line's identity (log.h). */
#define kx_clog(level, c, fmt, ...)                                                                                    \
	do {                                                                                                           \
		if (kx_log_enabled(level)) {                                                                           \
			struct kx_log_id kx_id_ = {.broker = (c)->up.node_id};                                         \
			kx_log_at(level, &kx_id_, 0, "upstream %s: " fmt, (c)->up.addr, ##__VA_ARGS__);                \
		}                                                                                                      \
	} while (0)
#define kx_cwarn(c, ...)  kx_clog(KX_LOG_WARN, c, __VA_ARGS__)
#define kx_cdebug(c, ...) kx_clog(KX_LOG_DEBUG, c, __VA_ARGS__)
/* A line a broker outage repeats at every reconnect of every worker's connections (log.h). */
#define kx_cwarn_limited(c, fmt, ...)                                                                                  \
	do {                                                                                                           \
		struct kx_log_id kx_lid_ = {.broker = (c)->up.node_id};                                                \
		kx_log_limited(KX_LOG_WARN, &kx_lid_, "upstream %s: " fmt, (c)->up.addr, ##__VA_ARGS__);               \
	} while (0)

static void kx_pconn_readable(evutil_socket_t fd, short what, void *arg);
static void kx_pconn_writable(evutil_socket_t fd, short what, void *arg);

/* The one place a pooled connection's state changes (forward only). */
static void kx_pconn_set_state(struct kx_pconn *c, enum kx_upstream_state st)
{
	KX_BUG_ON(st < c->up.state);
	kx_cdebug(c, "%s -> %s", kx_upstream_state_name(c->up.state), kx_upstream_state_name(st));
	c->up.state = st;
	atomic_store_explicit(&c->stat.up_state, (int)st, memory_order_relaxed);
}

/* "fetch " for a slot of the Fetch connections, "held " for a held one, "" for the others (logs). */
static const char *kx_pool_class(const struct kx_pconn *c, size_t slot)
{
	if (c->held)
		return "held ";
	return slot % c->pool->slots >= c->pool->size ? "fetch " : "";
}

void kx_pool_init(struct kx_pool *p, struct kx_worker *w, uint32_t size)
{
	memset(p, 0, sizeof(*p));
	p->worker = w;
	p->size = size ? size : 1;
	p->slots = 2 * p->size;
	p->region_ridx = (uint8_t)kx_region_index(w->cfg->region);
}

static void kx_pconn_close_sock(struct kx_pconn *c)
{
	if (c->counted)
		KX_METRIC_SUB(regional_upstream_connections, 1);
	c->counted = false;
	kx_sock_close(&c->up.sock);
}

static void kx_pconn_sasl_free(struct kx_pconn *c);

static void kx_pconn_release(struct kx_pconn *c)
{
	kx_pconn_sasl_free(c);
	if (c->resolve) {
		c->resolve->c = NULL; /* its callback frees it */
		c->resolve = NULL;
		if (c->up.dns_req)
			evdns_getaddrinfo_cancel(c->up.dns_req);
	}
	c->up.dns_req = NULL;
	if (c->up.addrs)
		evutil_freeaddrinfo(c->up.addrs);
	c->up.addrs = c->up.next_addr = NULL;
	kx_pconn_close_sock(c);
}

static void kx_pconn_free(struct kx_pconn *c)
{
	kx_conns_remove(&c->stat);
	kx_pconn_release(c);
	if (c->start_ev)
		event_free(c->start_ev);
	kx_flow_free(&c->req);
	kx_flow_free(&c->resp);
	kx_ring_free(&c->up.fifo);
	free(c);
}

/*
 * The connection failed: it leaves its slot (the next use makes a new one),
 * and every fragment it carried is answered as failed to its owner, which
 * answers those partitions with a retriable error. While it does, it stays
 * on the pool's failing list, so a session that closes meanwhile still
 * forgets its entries here.
 */
/*
 * Brokers whose connects fail, for every worker of the process (one worker's
 * failed connect spares the others' clients): new whole requests go to
 * another broker for KX_POOL_DOWN_MS. A fixed open-addressed table of node
 * id + 1 (0: a free slot), claimed with a compare-and-swap; a cluster of
 * more nodes than slots is not tracked past them (requests go as before).
 */
#define KX_POOL_DOWN_MS    5000
#define KX_POOL_DOWN_SLOTS 4096

static struct {
	_Atomic int64_t key; /* node id + 1 */
	_Atomic int64_t until_ms;
} kx_pool_down[KX_POOL_DOWN_SLOTS];

static void kx_pool_note(int32_t node_id, int64_t down_until)
{
	int64_t key = (int64_t)node_id + 1;
	for (size_t n = 0, i = (size_t)key % KX_POOL_DOWN_SLOTS; n < KX_POOL_DOWN_SLOTS;
	     n++, i = (i + 1) % KX_POOL_DOWN_SLOTS) {
		int64_t k = atomic_load(&kx_pool_down[i].key);
		if (k == 0 && down_until == 0)
			return; /* never noted down: nothing to clear */
		if (k == 0 && atomic_compare_exchange_strong(&kx_pool_down[i].key, &k, key))
			k = key;
		if (k == key) {
			atomic_store(&kx_pool_down[i].until_ms, down_until);
			return;
		}
	}
}

bool kx_pool_node_down(const struct kx_pool *p, int32_t node_id, int64_t now_ms)
{
	(void)p;
	int64_t key = (int64_t)node_id + 1;
	for (size_t n = 0, i = (size_t)key % KX_POOL_DOWN_SLOTS; n < KX_POOL_DOWN_SLOTS;
	     n++, i = (i + 1) % KX_POOL_DOWN_SLOTS) {
		int64_t k = atomic_load(&kx_pool_down[i].key);
		if (k == 0)
			return false;
		if (k == key)
			return atomic_load(&kx_pool_down[i].until_ms) > now_ms;
	}
	return false;
}

static void kx_pconn_fail(struct kx_pconn *c, const char *why)
{
	struct kx_pool *p = c->pool;
	if (c->held) {
		struct kx_pconn **h = &p->held;
		while (*h && *h != c)
			h = &(*h)->next_held;
		if (*h)
			*h = c->next_held;
		c->next_held = NULL;
	} else if (c->slot != SIZE_MAX && p->conns[c->slot] == c) {
		p->conns[c->slot] = NULL;
	}
	c->slot = SIZE_MAX;
	if (c->up.fifo.cnt && !c->logged)
		kx_cwarn_limited(c, "%s; answering its %u pending requests as failed", why, c->up.fifo.cnt);
	else
		kx_cdebug(c, "%s (%u pending requests answered as failed)", why, c->up.fifo.cnt);
	if (c->up.state < KX_UPSTREAM_READY) {
		kx_metrics_upstream(c->up.node_id, false); /* it never connected (or failed its handshake) */
		kx_pool_note(c->up.node_id, kx_now_ms() + KX_POOL_DOWN_MS);
	}
	kx_pconn_release(c);
	kx_pconn_set_state(c, KX_UPSTREAM_CLOSED);
	c->next_failing = p->failing;
	p->failing = c;
	struct kx_up_inflight e;
	while (c->up.fifo.cnt) {
		e = *(const struct kx_up_inflight *)kx_ring_head(&c->up.fifo);
		kx_ring_pop(&c->up.fifo);
		if (e.owner)
			kx_regional_answer(e.owner, &e, NULL);
	}
	struct kx_pconn **at = &p->failing;
	while (*at != c)
		at = &(*at)->next_failing;
	*at = c->next_failing;
	kx_pconn_free(c);
}

void kx_pool_free(struct kx_pool *p)
{
	for (size_t i = 0; i < p->node_cnt * p->slots; i++)
		if (p->conns[i])
			kx_pconn_free(p->conns[i]);
	while (p->held) {
		struct kx_pconn *c = p->held;
		p->held = c->next_held;
		kx_pconn_free(c);
	}
	free(p->conns);
	free(p->nodes);
	memset(p, 0, sizeof(*p));
}

size_t kx_pool_open(const struct kx_pool *p)
{
	size_t n = 0;
	for (size_t i = 0; i < p->node_cnt * p->slots; i++)
		n += p->conns[i] && p->conns[i]->up.state == KX_UPSTREAM_READY;
	for (const struct kx_pconn *c = p->held; c; c = c->next_held)
		n += c->up.state == KX_UPSTREAM_READY;
	return n;
}

static void kx_pconn_forget(struct kx_pconn *c, const struct kx_session *s)
{
	struct kx_ring *r = &c->up.fifo;
	for (uint32_t k = 0; k < r->cnt; k++) {
		struct kx_up_inflight *e = (void *)(r->items + (size_t)((r->head + k) % r->cap) * r->size);
		if (e->owner == s) {
			e->owner = NULL;
			e->req = NULL;
		}
	}
}

void kx_pool_forget(struct kx_pool *p, const struct kx_session *s)
{
	for (size_t i = 0; i < p->node_cnt * p->slots; i++)
		if (p->conns[i])
			kx_pconn_forget(p->conns[i], s);
	for (struct kx_pconn *c = p->held; c; c = c->next_held)
		kx_pconn_forget(c, s);
	for (struct kx_pconn *c = p->failing; c; c = c->next_failing)
		kx_pconn_forget(c, s);
}

/* ---- connecting --------------------------------------------------------- */

static void kx_pconn_try_next(struct kx_pconn *c, const char *last_err)
{
	struct kx_worker *w = c->pool->worker;
	while (c->up.next_addr) {
		struct evutil_addrinfo *a = c->up.next_addr;
		c->up.next_addr = a->ai_next;
		if (!kx_sock_connect(w->base, &c->up.sock, a, w->cfg->connect_timeout_ms, kx_pconn_readable,
		                     kx_pconn_writable, c, &last_err))
			continue;
		KX_METRIC_ADD(regional_upstream_connections, 1);
		c->counted = true;
		return;
	}
	KX_METRIC_ADD(upstream_connect_failures, 1);
	char why[300];
	snprintf(why, sizeof(why), "cannot connect: %s", last_err);
	kx_pconn_fail(c, why);
}

static void kx_pconn_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct kx_pconn_resolve *r = arg;
	struct kx_pconn *c = r->c;
	free(r);
	if (!c) {
		if (ai)
			evutil_freeaddrinfo(ai);
		return;
	}
	c->resolve = NULL;
	c->up.dns_req = NULL;
	if (err) {
		KX_METRIC_ADD(upstream_connect_failures, 1);
		char why[300];
		snprintf(why, sizeof(why), "cannot resolve: %s", evutil_gai_strerror(err));
		kx_pconn_fail(c, why);
		return;
	}
	c->up.addrs = c->up.next_addr = ai;
	kx_pconn_try_next(c, "no address");
}

/* Starts resolving and connecting (on its own loop turn: see pool.h). */
static void kx_pconn_start(evutil_socket_t fd, short what, void *arg)
{
	struct kx_pconn *c = arg;
	struct kx_worker *w = c->pool->worker;
	(void)fd;
	(void)what;
	const struct kx_topology *t = kx_topology_cached(&w->topology);
	const struct kx_broker *b = t ? kx_topology_broker(t, c->up.node_id) : NULL;
	if (!b) {
		kx_pconn_fail(c, "node left the topology");
		return;
	}
	snprintf(c->up.host, sizeof(c->up.host), "%s", b->host);
	c->up.port = b->port;
	c->broker_ridx = (uint8_t)kx_region_index(b->region);
	c->local = b->region[0] && strcmp(b->region, w->cfg->region) == 0;
	c->stat.local = c->local; /* before it is registered: read under the registry's lock after */
	snprintf(c->stat.peer, sizeof(c->stat.peer), "%s:%u", b->host, b->port);
	kx_conns_add(&c->stat);
	snprintf(c->up.addr, sizeof(c->up.addr), "node %d (%s:%u) %s#%zu", (int)c->up.node_id, b->host, b->port,
	         kx_pool_class(c, c->slot), c->held ? c->slot : c->slot % c->pool->size);
	struct kx_pconn_resolve *r = malloc(sizeof(*r));
	if (!r) {
		kx_pconn_fail(c, "out of memory");
		return;
	}
	r->c = c;
	c->resolve = r;
	char portstr[8];
	snprintf(portstr, sizeof(portstr), "%u", b->port);
	struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
	struct evdns_getaddrinfo_request *req = evdns_getaddrinfo(w->dns, c->up.host, portstr, &hints, kx_pconn_resolved, r);
	if (c->resolve == r) /* NULL: answered inside the call (c may be gone) */
		c->up.dns_req = req;
}

static bool kx_pconn_flush(struct kx_pconn *c);

/*
 * While it owes answers, a connection's read event carries request.timeout.ms
 * (renewed by every read): a broker gone silent with requests pending (stuck,
 * or gone without a FIN) held every part on the connection, and each later
 * session's parts queued behind them, for ever, since a client's own timeout
 * closes only its session, never a shared connection. Owing nothing, it waits
 * without a timeout.
 */
static void kx_pconn_watch(struct kx_pconn *c)
{
	bool owing = c->up.fifo.cnt > 0;
	if (c->up.state != KX_UPSTREAM_READY || owing == c->timed)
		return;
	struct timeval t = kx_ms_timeval(c->pool->worker->cfg->request_timeout_ms);
	event_del(c->up.sock.rev); /* event_add(NULL) would keep a pending timeout */
	event_add(c->up.sock.rev, owing ? &t : NULL);
	c->timed = owing;
}

/* Connected (through TLS and SASL, if any): read from now on, and the requests that waited go. */
static void kx_pconn_open(struct kx_pconn *c)
{
	kx_pconn_set_state(c, KX_UPSTREAM_READY);
	kx_metrics_upstream(c->up.node_id, true);
	kx_pool_note(c->up.node_id, 0);
	kx_sock_want(c->up.sock.rev, &c->up.sock.reading, true, NULL);
	kx_sock_want(c->up.sock.wev, &c->up.sock.writing, false, NULL);
	kx_pconn_watch(c);
	if (kx_pconn_flush(c))
		kx_sock_read_pending(&c->up.sock); /* an answer may have come with the handshake's last record */
}

/* ---- SASL as kstretch (upstream.sasl.*) ------------------------------------ */

#define KX_PSASL_VERSION   1           /* SaslHandshake v1 and SaslAuthenticate v1: every broker from Kafka 2.2 */
#define KX_PSASL_MAX_FRAME ((int64_t)64 * 1024) /* a SASL answer larger than this is not one */
#define KX_PSASL_LOG_MS    60000       /* the same failure is logged at most once this often */

struct kx_pconn_sasl {
	enum { KX_PSASL_HANDSHAKE, KX_PSASL_FIRST, KX_PSASL_FINAL } step; /* the answer awaited */
	int32_t corr;
	int64_t deadline_ms;
	struct kx_flow out; /* the exchange's requests: c->req holds the clients', which wait */
	struct kx_scram scram;
};

static void kx_pconn_sasl_free(struct kx_pconn *c)
{
	if (!c->sasl)
		return;
	kx_flow_free(&c->sasl->out);
	kx_scram_clear(&c->sasl->scram);
	free(c->sasl);
	c->sasl = NULL;
}

/* One line per failure, shared by every worker: the same words again within KX_PSASL_LOG_MS are counted, not written.
 */
static void kx_pconn_sasl_log(struct kx_pconn *c, const char *why)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static char last[300];
	static int64_t logged_ms;
	static uint64_t quiet;
	int64_t now = kx_now_ms();
	pthread_mutex_lock(&mu);
	bool again = strcmp(last, why) == 0 && now - logged_ms < KX_PSASL_LOG_MS;
	if (again) {
		quiet++;
	} else {
		kx_cwarn(c,
		         "SASL authentication as %s failed: %s; the connection's requests are answered as failed "
		         "(retriable; the same failure is logged once a minute at most)%s%.0llu%s",
		         c->pool->worker->cfg->upstream_sasl_username, why,
		         quiet ? " (the previous failure repeated " : "", (unsigned long long)quiet,
		         quiet ? " more times)" : "");
		snprintf(last, sizeof(last), "%s", why);
		logged_ms = now;
		quiet = 0;
	}
	pthread_mutex_unlock(&mu);
}

static void kx_pconn_sasl_fail(struct kx_pconn *c, const char *why)
{
	KX_METRIC_ADD(upstream_sasl_failures, 1);
	KX_METRIC_ADD(upstream_connect_failures, 1);
	c->pool->auth_failing = true;
	kx_pconn_sasl_log(c, why);
	c->logged = true;
	char line[360];
	snprintf(line, sizeof(line), "SASL: %s", why);
	kx_pconn_fail(c, line);
}

/* Writes the exchange's requests; false when c failed (and is gone). */
static bool kx_pconn_sasl_write(struct kx_pconn *c)
{
	struct kx_pconn_sasl *a = c->sasl;
	if (!kx_flow_write(&a->out, &c->up.sock.tr)) {
		char why[128];
		snprintf(why, sizeof(why), "write error: %s", strerror(errno));
		kx_pconn_fail(c, why);
		return false;
	}
	kx_sock_want(c->up.sock.wev, &c->up.sock.writing, kx_sock_wants_write(&c->up.sock, kx_flow_ready(&a->out) > 0),
	             NULL);
	return true;
}

/* Queues one request of the exchange (api, its body in body) and writes it. */
static bool kx_pconn_sasl_send(struct kx_pconn *c, int16_t api, struct kp_writer *body)
{
	struct kx_pconn_sasl *a = c->sasl;
	struct kp_writer w;
	a->corr = kx_pconn_corr(c);
	struct kp_request_header h = {.api_key = api,
	                              .api_version = KX_PSASL_VERSION,
	                              .correlation_id = a->corr,
	                              .client_id = {(const uint8_t *)"kstretch", 8},
	                              .header_version = kp_request_header_version(api, KX_PSASL_VERSION)};
	kp_writer_init(&w);
	kp_request_header_write(&w, &h);
	kp_write_writer(&w, body);
	bool ok = kp_writer_ok(&w);
	if (ok)
		kx_queue_frame_refs(&a->out, &w, NULL, NULL, 0);
	kp_writer_free(&w);
	if (!ok) {
		kx_pconn_fail(c, "out of memory");
		return false;
	}
	return kx_pconn_sasl_write(c);
}

/* SaslAuthenticate with these bytes. */
static bool kx_pconn_sasl_auth(struct kx_pconn *c, const void *bytes, size_t n)
{
	struct kp_writer b;
	kp_writer_init(&b);
	kp_sasl_authenticate_request_write(&b, KX_PSASL_VERSION, bytes, n);
	bool ok = kx_pconn_sasl_send(c, KP_API_SASL_AUTHENTICATE, &b);
	kp_writer_free(&b);
	return ok;
}

/* Starts the exchange on a connection just connected (and through TLS). */
static void kx_pconn_sasl_start(struct kx_pconn *c)
{
	const struct kx_config *cfg = c->pool->worker->cfg;
	c->sasl = calloc(1, sizeof(*c->sasl));
	if (!c->sasl || !kx_flow_init(&c->sasl->out, false)) {
		free(c->sasl);
		c->sasl = NULL;
		kx_pconn_fail(c, "out of memory");
		return;
	}
	c->sasl->deadline_ms = kx_now_ms() + cfg->connect_timeout_ms;
	c->sasl->step = KX_PSASL_HANDSHAKE;
	kx_pconn_set_state(c, KX_UPSTREAM_SASL);
	struct timeval limit = kx_ms_timeval(cfg->connect_timeout_ms);
	event_del(c->up.sock.rev);
	c->up.sock.reading = false;
	kx_sock_want(c->up.sock.rev, &c->up.sock.reading, true, &limit);
	struct kp_writer b;
	kp_writer_init(&b);
	kp_sasl_handshake_request_write(&b, kx_sasl_mechanism_name(cfg->upstream_sasl_mechanism));
	bool ok = kx_pconn_sasl_send(c, KP_API_SASL_HANDSHAKE, &b);
	kp_writer_free(&b);
	(void)ok; /* false: c failed and is gone */
}

/* The exchange's next step, on the broker's answer body[0..len); false when c failed. */
static bool kx_pconn_sasl_step(struct kx_pconn *c, const uint8_t *body, size_t len)
{
	const struct kx_config *cfg = c->pool->worker->cfg;
	struct kx_pconn_sasl *a = c->sasl;
	const char *mech = kx_sasl_mechanism_name(cfg->upstream_sasl_mechanism);
	const char *user = cfg->upstream_sasl_username, *password = kx_config_upstream_sasl_password(cfg);
	char why[300], msg[200];
	struct kp_cursor cur;
	kp_cursor_init(&cur, body, len);
	int16_t err;
	if (a->step == KX_PSASL_HANDSHAKE) {
		char enabled[160];
		if (!kp_sasl_handshake_response_read(&cur, &err, enabled, sizeof(enabled))) {
			snprintf(why, sizeof(why), "malformed SaslHandshake answer (%s at byte %zu reading %s)",
			         kp_error_name(cur.err), cur.err_pos, cur.err_field ? cur.err_field : "?");
			kx_pconn_sasl_fail(c, why);
			return false;
		}
		if (err) {
			snprintf(why, sizeof(why), "SaslHandshake for %s: error %d (%s); the broker enables: %s", mech,
			         err,
			         err == 33   ? "UNSUPPORTED_SASL_MECHANISM"
			         : err == 34 ? "ILLEGAL_SASL_STATE"
			                     : "refused",
			         enabled[0] ? enabled : "nothing (is its listener SASL_PLAINTEXT or SASL_SSL?)");
			kx_pconn_sasl_fail(c, why);
			return false;
		}
		a->step = KX_PSASL_FIRST;
		if (cfg->upstream_sasl_mechanism == KX_SASL_PLAIN) {
			uint8_t m[KX_SASL_USER_MAX + KX_SASL_PASSWORD_MAX + 2];
			size_t n = kx_sasl_plain(user, password, m, sizeof(m));
			bool ok = kx_pconn_sasl_auth(c, m, n);
			OPENSSL_cleanse(m, sizeof(m));
			return ok;
		}
		char first[KX_SCRAM_MSG_MAX + 1];
		enum kx_scram_hash h =
		    cfg->upstream_sasl_mechanism == KX_SASL_SCRAM_SHA_512 ? KX_SCRAM_SHA_512 : KX_SCRAM_SHA_256;
		if (!kx_scram_client_first(&a->scram, h, user, NULL, first, sizeof(first), msg, sizeof(msg))) {
			snprintf(why, sizeof(why), "%s: %s", mech, msg);
			kx_pconn_sasl_fail(c, why);
			return false;
		}
		return kx_pconn_sasl_auth(c, first, strlen(first));
	}
	struct kp_span emsg, auth;
	int64_t lifetime;
	if (!kp_sasl_authenticate_response_read(&cur, KX_PSASL_VERSION, &err, &emsg, &auth, &lifetime)) {
		snprintf(why, sizeof(why), "malformed SaslAuthenticate answer (%s at byte %zu reading %s)",
		         kp_error_name(cur.err), cur.err_pos, cur.err_field ? cur.err_field : "?");
		kx_pconn_sasl_fail(c, why);
		return false;
	}
	if (err) {
		size_t k = 0;
		for (int32_t i = 0; i < emsg.len && k + 1 < sizeof(msg); i++)
			msg[k++] = (char)(emsg.ptr[i] >= 0x20 && emsg.ptr[i] < 0x7f ? emsg.ptr[i] : '?');
		msg[k] = '\0';
		snprintf(why, sizeof(why), "SaslAuthenticate: error %d (%s): %s", err,
		         err == 58   ? "SASL_AUTHENTICATION_FAILED"
		         : err == 34 ? "ILLEGAL_SASL_STATE"
		                     : "refused",
		         k ? msg : "no message");
		kx_pconn_sasl_fail(c, why);
		return false;
	}
	if (cfg->upstream_sasl_mechanism != KX_SASL_PLAIN) {
		bool ok;
		if (a->step == KX_PSASL_FIRST) {
			char final[KX_SCRAM_MSG_MAX + 1];
			ok = kx_scram_client_final(&a->scram, password, auth.ptr, auth.len > 0 ? (size_t)auth.len : 0,
			                           final, sizeof(final), msg, sizeof(msg));
			if (ok) {
				a->step = KX_PSASL_FINAL;
				ok = kx_pconn_sasl_auth(c, final, strlen(final));
				OPENSSL_cleanse(final, sizeof(final));
				return ok;
			}
		} else {
			ok = kx_scram_server_final(&a->scram, auth.ptr, auth.len > 0 ? (size_t)auth.len : 0, msg,
			                           sizeof(msg));
		}
		if (!ok) {
			snprintf(why, sizeof(why), "%s: %s", mech, msg);
			kx_pconn_sasl_fail(c, why);
			return false;
		}
	}
	kx_cdebug(c, "authenticated as %s with %s (session lifetime %lld ms)", user, mech, (long long)lifetime);
	c->pool->auth_failing = false;
	kx_pconn_sasl_free(c);
	kx_sock_want(c->up.sock.rev, &c->up.sock.reading, false, NULL); /* kx_pconn_open sets it again, untimed */
	kx_pconn_open(c);
	return false; /* the pump's answers are the open connection's from here */
}

/* The exchange's answers, whole, one at a time; false when c failed or opened. */
static bool kx_pconn_sasl_pump(struct kx_pconn *c)
{
	while (c->sasl) {
		int32_t size, corr;
		bool whole;
		enum kp_frame_status st = kp_peek_response(c->resp.buf, 0, KX_PSASL_MAX_FRAME, &size, &corr, &whole);
		if (st == KP_FRAME_MALFORMED) {
			kx_pconn_sasl_fail(c,
			                   "an answer that is not a SASL answer (frame size over 64 KiB or negative)");
			return false;
		}
		if (st == KP_FRAME_INCOMPLETE || !whole)
			return true;
		if (corr != c->sasl->corr) {
			char why[120];
			snprintf(why, sizeof(why), "an answer with correlation id %d (expected %d)", corr,
			         c->sasl->corr);
			kx_pconn_sasl_fail(c, why);
			return false;
		}
		struct kx_frame fr;
		const uint8_t *p;
		if (!kx_flow_take_frame(&c->resp, 4 + (size_t)size, &fr) || !kx_frame_flat(&fr, 8, fr.len, &p)) {
			kx_frame_release(&fr);
			kx_pconn_fail(c, "out of memory");
			return false;
		}
		bool on = kx_pconn_sasl_step(c, p, fr.len - 8); /* SaslHandshake/Authenticate v1: response header v0 */
		kx_frame_release(&fr);
		if (!on)
			return false;
	}
	return false;
}

/* Connected (and through TLS, if any): SASL first when upstream.sasl.* is set. */
static void kx_pconn_ready(struct kx_pconn *c)
{
	if (c->pool->worker->cfg->upstream_sasl_mechanism != KX_SASL_NONE)
		kx_pconn_sasl_start(c);
	else
		kx_pconn_open(c);
}

/*
 * The TLS handshake with the broker (upstream.tls), one step per event,
 * within connect.timeout.ms (as mapped mode's upstreams). A failure (a
 * certificate that does not verify or does not name the host, no common
 * version) fails the connection as a failed connect does: logged with
 * OpenSSL's reason, its pending parts answered as failed, and the next use
 * makes a new connection.
 */
static void kx_pconn_handshake(struct kx_pconn *c, short what)
{
	struct kx_sock *k = &c->up.sock;
	struct timeval limit = kx_ms_timeval(c->pool->worker->cfg->connect_timeout_ms);
	char why[300];
	if (what & EV_TIMEOUT) {
		KX_METRIC_ADD(upstream_connect_failures, 1);
		kx_pconn_fail(c, "TLS handshake not complete after connect.timeout.ms");
		return;
	}
	switch (kx_sock_handshake_step(k, &limit)) {
	case KX_TLS_WANT_READ:
	case KX_TLS_WANT_WRITE: return;
	case KX_TLS_FAILED:
		KX_METRIC_ADD(upstream_connect_failures, 1);
		snprintf(why, sizeof(why), "cannot connect: %s", kx_tls_error(&k->tr));
		kx_pconn_fail(c, why);
		return;
	case KX_TLS_DONE: break;
	}
	kx_tls_describe(&k->tr, why, sizeof(why));
	kx_cdebug(c, "TLS %s", why);
	kx_pconn_ready(c);
}

static void kx_pconn_connected(struct kx_pconn *c, short what)
{
	if (what & EV_TIMEOUT) {
		KX_METRIC_ADD(upstream_connect_failures, 1);
		kx_pconn_fail(c, "connect timeout");
		return;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(c->up.sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		kx_pconn_close_sock(c);
		kx_pconn_try_next(c, strerror(err));
		return;
	}
	evutil_freeaddrinfo(c->up.addrs);
	c->up.addrs = c->up.next_addr = NULL;
	if (!kx_tls_towards_brokers()) {
		kx_pconn_ready(c);
		return;
	}
	struct kx_sock *k = &c->up.sock;
	struct kx_worker *w = c->pool->worker;
	kx_sock_want(k->wev, &k->writing, false, NULL); /* drops the connect's timeout: the handshake sets its own */
	if (!kx_tls_connect(&k->tr, k->fd, c->up.host, c->up.port, w->cfg->upstream_tls_verify_hostname,
	                    w->tls_sessions)) {
		KX_METRIC_ADD(upstream_connect_failures, 1);
		kx_pconn_fail(c, "cannot start TLS (out of memory, or a host name OpenSSL refuses)");
		return;
	}
	kx_pconn_set_state(c, KX_UPSTREAM_HANDSHAKE);
	kx_pconn_handshake(c, EV_WRITE);
}

static bool kx_pool_grow(struct kx_pool *p)
{
	size_t cap = p->node_cap ? p->node_cap * 2 : 8;
	int32_t *nodes = realloc(p->nodes, cap * sizeof(*nodes));
	if (!nodes)
		return false;
	p->nodes = nodes;

	struct kx_pconn **conns = realloc(p->conns, cap * p->slots * sizeof(*conns));
	if (!conns)
		return false;
	memset(conns + p->node_cap * p->slots, 0, (cap - p->node_cap) * p->slots * sizeof(*conns));
	p->conns = conns;
	p->node_cap = cap;
	return true;
}

static struct kx_pconn *kx_pconn_new(struct kx_pool *p, int32_t node_id, size_t slot, bool held)
{
	struct kx_pconn *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->pool = p;
	c->slot = slot;
	c->held = held;
	c->up.worker = p->worker;
	c->up.sock.fd = -1;
	c->up.node_id = node_id;
	c->next_corr = 1;
	c->stat = (struct kx_conn_stat){.kind = KX_CONN_POOL, .worker = p->worker->id, .node_id = node_id};
	snprintf(c->up.addr, sizeof(c->up.addr), "node %d %s#%zu", (int)node_id, kx_pool_class(c, slot),
	         held ? slot : slot % p->size);
	if (!kx_ring_init(&c->up.fifo, sizeof(struct kx_up_inflight), KX_PCONN_FIFO_FIRST) ||
	    !kx_flow_init(&c->req, false) || !kx_flow_init(&c->resp, false) ||
	    !(c->start_ev = event_new(p->worker->base, -1, 0, kx_pconn_start, c))) {
		kx_pconn_free(c);
		return NULL;
	}
	/* Every referenced part of a request goes out by reference, however short
	 * (record batches are never copied): a broker reads its connection
	 * steadily, and each session bounds the requests it has in flight, so
	 * what the references keep alive is bounded too. */
	c->req.ref_min = 0;
	/* Answers are read into blocks and taken out by reference: a Fetch
	 * answer's records reach the client from where they were read. */
	kx_flow_read_in_blocks(&c->resp);
	c->up.state = KX_UPSTREAM_CONNECTING;
	event_active(c->start_ev, EV_READ, 0);
	return c;
}

struct kx_pconn *kx_pool_pick(struct kx_pool *p, int32_t node_id, uint32_t key, bool fetch)
{
	size_t i = 0;
	while (i < p->node_cnt && p->nodes[i] != node_id)
		i++;
	if (i == p->node_cnt) {
		if (p->node_cnt == p->node_cap && !kx_pool_grow(p))
			return NULL;
		p->nodes[p->node_cnt++] = node_id;
	}
	size_t slot = i * p->slots + (fetch ? p->size : 0) + key % p->size;
	if (!p->conns[slot])
		p->conns[slot] = kx_pconn_new(p, node_id, slot, false);
	return p->conns[slot];
}

struct kx_pconn *kx_pool_pick_held(struct kx_pool *p, int32_t node_id)
{
	for (struct kx_pconn *c = p->held; c; c = c->next_held)
		if (c->up.node_id == node_id && c->up.fifo.cnt == 0)
			return c;
	struct kx_pconn *c = kx_pconn_new(p, node_id, p->held_made, true);
	if (c) {
		p->held_made++;
		c->next_held = p->held;
		p->held = c;
	}
	return c;
}

int32_t kx_pconn_corr(struct kx_pconn *c)
{
	int32_t corr = c->next_corr;
	c->next_corr = c->next_corr == INT32_MAX ? 1 : c->next_corr + 1;
	return corr;
}

bool kx_pconn_send(struct kx_pconn *c, const struct kx_up_inflight *e, struct kp_writer *w,
                   struct kx_hold *const *holds, const size_t *lens, size_t n)
{
	if (e && !kx_ring_push(&c->up.fifo, e, UINT32_MAX))
		return false;
	kx_queue_frame_refs(&c->req, w, holds, lens, n);
	KX_METRIC_ADD(requests_forwarded, 1);
	KX_REGION_BYTES_ADD(c->pool->region_ridx, c->broker_ridx, KX_TO_BROKER, 4 + kp_writer_size(w));
	kx_conn_count(&c->stat.bytes_in, 4 + kp_writer_size(w));
	if (e)
		kx_conn_count(&c->stat.requests, 1);
	if (c->up.state == KX_UPSTREAM_READY)
		kx_sock_want(c->up.sock.wev, &c->up.sock.writing, true, NULL); /* written on its write event */
	kx_pconn_watch(c);
	return true;
}

/* ---- moving bytes -------------------------------------------------------- */

/* Writes what is queued; false when c failed (and is gone). */
static bool kx_pconn_flush(struct kx_pconn *c)
{
	if (c->up.state != KX_UPSTREAM_READY)
		return true;
	if (!kx_flow_write(&c->req, &c->up.sock.tr)) {
		char why[128];
		snprintf(why, sizeof(why), "write error: %s", strerror(errno));
		kx_pconn_fail(c, why);
		return false;
	}
	kx_sock_want(c->up.sock.wev, &c->up.sock.writing, kx_sock_wants_write(&c->up.sock, kx_flow_ready(&c->req) > 0),
	             NULL);
	return true;
}

static void kx_pconn_writable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_pconn *c = arg;
	(void)fd;
	if (c->up.state == KX_UPSTREAM_CONNECTING) {
		kx_pconn_connected(c, what);
		return;
	}
	if (c->up.state == KX_UPSTREAM_HANDSHAKE) {
		kx_pconn_handshake(c, what);
		return;
	}
	if (c->up.state == KX_UPSTREAM_SASL) {
		bool reread_sasl = c->up.sock.tr.blocked & KX_TR_READ_WANTS_WRITE;
		if (kx_pconn_sasl_write(c) && reread_sasl)
			event_active(c->up.sock.rev, EV_READ, 0);
		return;
	}
	bool reread = c->up.sock.tr.blocked & KX_TR_READ_WANTS_WRITE;
	if (kx_pconn_flush(c) && reread)
		event_active(c->up.sock.rev, EV_READ, 0); /* the TLS read that waited for this */
}

/* One answer is here whole (fr: its frame by reference, corr its correlation id): to its owner. */
static bool kx_pconn_dispatch(struct kx_pconn *c, struct kx_frame *fr, int32_t corr)
{
	const struct kx_up_inflight *head = kx_ring_head(&c->up.fifo);
	if (!head || head->upstream_corr != corr) {
		KX_METRIC_ADD(protocol_errors, 1);
		kx_frame_release(fr);
		char why[160];
		snprintf(why, sizeof(why), "answer with correlation id %d does not answer the oldest request (%s)", corr,
		         head ? "expected another id" : "none in flight");
		kx_pconn_fail(c, why);
		return false;
	}
	struct kx_up_inflight e = *head;
	kx_ring_pop(&c->up.fifo);
	kx_conn_count(&c->stat.answers, 1);
	if (e.api_key == KP_API_FETCH) {
		if (c->local && e.leader_ridx && e.leader_ridx != c->pool->region_ridx)
			kx_metrics_kept_local(c->pool->region_ridx, e.leader_ridx, fr->len);
		if (c->local)
			KX_METRIC_ADD(fetch_bytes_local, fr->len);
		else
			KX_METRIC_ADD(fetch_bytes_remote, fr->len);
	}
	if (!e.owner) {
		kx_frame_release(fr); /* its session closed: read and dropped */
		return true;
	}
	kx_regional_answer(e.owner, &e, fr);
	return true;
}

/* An answer waits for its client (a slow one may not read it for a while) in
 * the blocks it was read into, shared with other clients' answers: one that
 * would keep blocks more than this many times its size is copied out instead
 * (small answers, which cost little to copy). */
#define KX_PCONN_PIN_MAX 8

/* Takes the whole answers buffered and dispatches them; one not all here
 * waits in the buffer (its bytes in blocks) for the next reads. */
static bool kx_pconn_pump(struct kx_pconn *c)
{
	const struct kx_config *cfg = c->pool->worker->cfg;
	for (;;) {
		int32_t size, corr;
		bool whole;
		enum kp_frame_status st = kp_peek_response(c->resp.buf, 0, cfg->max_frame_bytes, &size, &corr, &whole);
		if (st == KP_FRAME_MALFORMED) {
			KX_METRIC_ADD(protocol_errors, 1);
			kx_pconn_fail(c, "malformed answer (frame size outside max.frame.bytes)");
			return false;
		}
		if (st == KP_FRAME_INCOMPLETE || !whole) {
			if (st == KP_FRAME_OK) /* its size is known: room for all of it in the next block */
				kx_flow_want(&c->resp, 4 + (size_t)size - evbuffer_get_length(c->resp.buf));
			return true;
		}
		kx_flow_want(&c->resp, 0);
		struct kx_frame fr;
		if (!kx_flow_take_frame(&c->resp, 4 + (size_t)size, &fr) || !kx_frame_unpin(&fr, KX_PCONN_PIN_MAX)) {
			kx_frame_release(&fr);
			kx_pconn_fail(c, "out of memory");
			return false;
		}
		if (!kx_pconn_dispatch(c, &fr, corr))
			return false;
	}
}

/* The broker's SASL answers (KX_UPSTREAM_SASL), within connect.timeout.ms of the exchange's start. */
static void kx_pconn_sasl_readable(struct kx_pconn *c, short what)
{
	if ((what & EV_TIMEOUT) || kx_now_ms() >= c->sasl->deadline_ms) {
		kx_pconn_sasl_fail(c, "no complete answer within connect.timeout.ms");
		return;
	}
	if ((c->up.sock.tr.blocked & KX_TR_WRITE_WANTS_READ) && !kx_pconn_sasl_write(c))
		return;
	for (int i = 0; i < 4; i++) { /* bounded: the event comes again */
		ssize_t r = kx_flow_read(&c->resp, &c->up.sock.tr);
		if (r == -2) {
			if (c->up.sock.tr.blocked & KX_TR_READ_WANTS_WRITE)
				kx_sock_want(c->up.sock.wev, &c->up.sock.writing, true, NULL);
			break;
		}
		if (r <= 0) {
			const char *tls = kx_tls_error(&c->up.sock.tr);
			kx_pconn_sasl_fail(c, r == 0   ? "the broker closed the connection (is its listener SASL?)"
			                      : tls[0] ? tls
			                               : strerror(errno));
			return;
		}
		KX_METRIC_ADD(bytes_from_brokers, (size_t)r);
		if (!kx_pconn_sasl_pump(c))
			return; /* failed, or open: its events are the open connection's now */
	}
	/* Still authenticating: the read event's timeout is what is left of the deadline. */
	int64_t left = c->sasl->deadline_ms - kx_now_ms();
	struct timeval t = kx_ms_timeval((int)(left > 1 ? left : 1));
	event_del(c->up.sock.rev);
	event_add(c->up.sock.rev, &t);
	kx_sock_read_pending(&c->up.sock);
}

static void kx_pconn_readable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_pconn *c = arg;
	(void)fd;
	if (c->up.state == KX_UPSTREAM_HANDSHAKE) {
		kx_pconn_handshake(c, what);
		return;
	}
	if (c->up.state == KX_UPSTREAM_SASL) {
		kx_pconn_sasl_readable(c, what);
		return;
	}
	if (what & EV_TIMEOUT) {
		char why[96];
		snprintf(why, sizeof(why), "no answer in request.timeout.ms (%d ms)", c->pool->worker->cfg->request_timeout_ms);
		kx_pconn_fail(c, why);
		return;
	}
	if ((c->up.sock.tr.blocked & KX_TR_WRITE_WANTS_READ) && !kx_pconn_flush(c))
		return; /* the requests' TLS write waited for this */
	for (int i = 0; i < 16; i++) { /* bounded: the event comes again (or kx_sock_read_pending below) */
		ssize_t r = kx_flow_read(&c->resp, &c->up.sock.tr);
		if (r == -2) {
			if (c->up.sock.tr.blocked & KX_TR_READ_WANTS_WRITE)
				kx_sock_want(c->up.sock.wev, &c->up.sock.writing, true, NULL);
			break;
		}
		if (r <= 0) {
			char why[300];
			const char *tls = kx_tls_error(&c->up.sock.tr);
			if (r == 0)
				snprintf(why, sizeof(why), "broker closed the connection");
			else if (tls[0])
				snprintf(why, sizeof(why), "%s", tls); /* a corrupt record, an alert: OpenSSL's words */
			else
				snprintf(why, sizeof(why), "connection error: %s", strerror(errno));
			kx_pconn_fail(c, why);
			return;
		}
		KX_METRIC_ADD(bytes_from_brokers, (size_t)r);
		KX_REGION_BYTES_ADD(c->pool->region_ridx, c->broker_ridx, KX_FROM_BROKER, (size_t)r);
		kx_conn_count(&c->stat.bytes_out, (uint64_t)r);
		if (!kx_pconn_pump(c))
			return;
	}
	if (c->up.fifo.cnt == 0)
		kx_flow_trim(&c->resp); /* owing nothing: an idle connection holds no read block */
	kx_pconn_watch(c); /* answers taken: maybe none owed now */
	kx_sock_read_pending(&c->up.sock); /* decrypted bytes left inside TLS: no event would come for them */
}
