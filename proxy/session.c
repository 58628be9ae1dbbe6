/*
 * session: the client and upstream state machines of mapped mode.
 * (Diagram and rules in session.h.)
 *
 * Convention: a function that may close the session returns bool, false
 * when it did (or when the session is now only draining to its close):
 * then the caller returns at once and does not touch s again.
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <event2/buffer.h>

#include "api.h"
#include "conn.h"
#include "regional_session.h"
#include "apiplan.h"
#include "log.h"
#include "metrics.h"
#include "proxyproto.h"
#include "rewrite.h"
#include "tls.h"
#include "topology.h"
#include "worker.h"

/* Bytes waiting for a socket above this stop reading the other one, until
 * they fall below the low mark. */
#define KX_HIGH_WATERMARK (4u * 1024 * 1024)
#define KX_LOW_WATERMARK  (1u * 1024 * 1024)
/* In-flight entries a session starts with (it grows to max.inflight.requests). */
#define KX_FIFO_FIRST 8

/* An answer to rewrite at least this long is read straight into its held
 * block as it arrives (kx_flow_hold) instead of being buffered and then
 * copied out whole. */
#define KX_HOLD_DIRECT_MIN (64u * 1024)

/* A bootstrap session tries at most this many upstreams before it gives up. */
#define KX_BOOTSTRAP_TRIES_MAX 8

/* A name lookup in flight: it may finish after its session closed. */
struct kx_resolve {
	struct kx_session *s; /* NULL once the session let go */
};

/* A log line about session s: "session CLIENT: ..." (the client's address
 * names the session in every line about it), with its identity (client,
 * listener, broker) as fields of the line (log.h). kx_slimited: a line
 * a broker outage or a flood of bad clients would repeat per connection. */
#define kx_slog(level, s, fmt, ...)                                                                                    \
	do {                                                                                                           \
		if (kx_log_enabled(level)) {                                                                           \
			struct kx_log_id kx_id_ = kx_session_log_id(s);                                                \
			kx_log_at(level, &kx_id_, 0, "session %s: " fmt, (s)->client.addr, ##__VA_ARGS__);             \
		}                                                                                                      \
	} while (0)
#define kx_sdebug(s, ...) kx_slog(KX_LOG_DEBUG, s, __VA_ARGS__)
#define kx_sinfo(s, ...)  kx_slog(KX_LOG_INFO, s, __VA_ARGS__)
#define kx_swarn(s, ...)  kx_slog(KX_LOG_WARN, s, __VA_ARGS__)
#define kx_serror(s, ...) kx_slog(KX_LOG_ERROR, s, __VA_ARGS__)
#define kx_slimited(level, s, fmt, ...)                                                                                \
	do {                                                                                                           \
		struct kx_log_id kx_lid_ = kx_session_log_id(s);                                                       \
		kx_log_limited(level, &kx_lid_, "session %s: " fmt, (s)->client.addr, ##__VA_ARGS__);                  \
	} while (0)

struct kx_log_id kx_session_log_id(const struct kx_session *s)
{
	return (struct kx_log_id){
	    .client = s->client.addr,
	    .listener = s->local_port,
	    .broker = s->up && !s->regional ? s->up->node_id : -1,
	};
}

static void kx_client_readable(evutil_socket_t fd, short what, void *arg);
static void kx_client_writable(evutil_socket_t fd, short what, void *arg);
static void kx_upstream_readable(evutil_socket_t fd, short what, void *arg);
static void kx_upstream_writable(evutil_socket_t fd, short what, void *arg);
KX_MUST_CHECK static bool kx_client_pump(struct kx_session *s);
static void kx_upstream_handshake(struct kx_session *s, short what);

/* ---- state ------------------------------------------------------------- */

static const char *kx_client_state_name(enum kx_client_state st)
{
	switch (st) {
	case KX_CLIENT_HANDSHAKE: return "tls-handshake";
	case KX_CLIENT_OPEN: return "open";
	case KX_CLIENT_DRAINING: return "draining";
	case KX_CLIENT_LINGERING: return "lingering";
	case KX_CLIENT_CLOSED: return "closed";
	}
	return "?";
}

const char *kx_upstream_state_name(enum kx_upstream_state st)
{
	switch (st) {
	case KX_UPSTREAM_CONNECTING: return "connecting";
	case KX_UPSTREAM_HANDSHAKE: return "tls-handshake";
	case KX_UPSTREAM_SASL: return "sasl";
	case KX_UPSTREAM_READY: return "ready";
	case KX_UPSTREAM_LINGERING: return "lingering";
	case KX_UPSTREAM_CLOSED: return "closed";
	}
	return "?";
}

/* States only move forward (open -> draining -> lingering -> closed, any
 * step skipped); setting the current one again is allowed. */
static void kx_client_set_state(struct kx_session *s, enum kx_client_state st)
{
	KX_BUG_ON(st < s->client.state);
	kx_sdebug(s, "client %s -> %s", kx_client_state_name(s->client.state),
	         kx_client_state_name(st));
	s->client.state = st;
}

static void kx_upstream_set_state(struct kx_session *s, enum kx_upstream_state st)
{
	KX_BUG_ON(st < s->up->state);
	kx_sdebug(s, "upstream %s %s -> %s", s->up->addr, kx_upstream_state_name(s->up->state),
	         kx_upstream_state_name(st));
	s->up->state = st;
	atomic_store_explicit(&s->stat.up_state, (int)st, memory_order_relaxed);
}

/* ---- flows and sockets ------------------------------------------------- */

/*
 * Which sockets are read: the client while it may send and its requests
 * have room; the broker while its client is there to answer and the
 * answers have room.
 */
static void kx_update_reading(struct kx_session *s)
{
	struct kx_flow *flows[2] = {&s->req, &s->resp};
	if (s->client.state == KX_CLIENT_LINGERING || s->up->state == KX_UPSTREAM_LINGERING)
		return; /* the side left is read to its end, nothing else */
	for (int i = 0; i < 2; i++) {
		size_t ready = kx_flow_ready(flows[i]);
		if (ready >= KX_HIGH_WATERMARK)
			flows[i]->full = true;
		else if (ready < KX_LOW_WATERMARK)
			flows[i]->full = false;
	}
	/* While stopping, what a client still sends is read (and not forwarded):
	 * closing a socket with unread bytes would reset it, and the client could
	 * lose the answers it has not read yet. */
	bool room = s->worker->stopping ? evbuffer_get_length(s->req.buf) < KX_HIGH_WATERMARK : !s->req.full;
	struct timeval idle = kx_ms_timeval(s->worker->cfg->idle_timeout_ms);
	/* A full pipe waits for its destination, however few bytes it holds. A
	 * TLS write waiting for the socket to be readable needs it read. */
	if (s->client.state != KX_CLIENT_HANDSHAKE) /* the handshake sets its own events */
		kx_sock_want(s->client.sock.rev, &s->client.sock.reading,
		             (s->client.state == KX_CLIENT_OPEN && room && !s->reading_paused_inflight &&
		              (!s->req.piped || (s->req.piped < s->req.pipesz && !s->req.pipe_stuck))) ||
		                 (s->client.sock.tr.blocked & KX_TR_WRITE_WANTS_READ),
		             &idle);
	if (!s->client.sock.reading)
		s->req_timed = -1; /* kstretch is not reading: the request's time starts again when it does */
	kx_sock_read_pending(&s->client.sock);
	if (s->up->state < KX_UPSTREAM_READY)
		return; /* connecting or handshaking: those set the upstream's events */
	kx_sock_want(s->up->sock.rev, &s->up->sock.reading,
	             (s->up->state == KX_UPSTREAM_READY && s->client.state != KX_CLIENT_CLOSED && !s->resp.full &&
	              (!s->resp.piped || (s->resp.piped < s->resp.pipesz && !s->resp.pipe_stuck))) ||
	                 (s->up->sock.tr.blocked & KX_TR_WRITE_WANTS_READ),
	             NULL);
	kx_sock_read_pending(&s->up->sock);
}

/* Whether the client's socket is written (answers wait for it). While it
 * is, the client must take some of them every write.timeout.ms: the write
 * event's timeout, which starts again each time the socket has room
 * (kx_client_stalled tells a slow reader from one that reads nothing). */
static void kx_client_want_write(struct kx_session *s, bool on)
{
	struct timeval stall = kx_ms_timeval(s->worker->cfg->write_timeout_ms);
	on = kx_sock_wants_write(&s->client.sock, on);
	if (on && !s->client.sock.writing)
		s->client.outq = UINT32_MAX; /* not measured yet */
	kx_sock_want(s->client.sock.wev, &s->client.sock.writing, on, &stall);
}

/*
 * The write timeout fired: the socket had no room for a whole period. A
 * client reading slowly still takes bytes (its socket's send queue shrinks,
 * though not enough to make it writable again): it gets another period.
 * So a client that reads nothing is closed one or two periods after it
 * stopped.
 */
static bool kx_client_stalled(struct kx_session *s)
{
	int queued = 0;
	if (ioctl(s->client.sock.fd, SIOCOUTQ, &queued) < 0)
		return true;
	if ((uint32_t)queued < s->client.outq) {
		s->client.outq = (uint32_t)queued;
		return false;
	}
	return true;
}

/* ---- lifecycle --------------------------------------------------------- */

static void kx_upstream_release(struct kx_session *s)
{
	if (s->up->resolve) {
		s->up->resolve->s = NULL; /* its callback frees it */
		s->up->resolve = NULL;
		if (s->up->dns_req)
			evdns_getaddrinfo_cancel(s->up->dns_req);
	}
	s->up->dns_req = NULL;
	if (s->up->addrs)
		evutil_freeaddrinfo(s->up->addrs);
	s->up->addrs = s->up->next_addr = NULL;
	kx_sock_close(&s->up->sock);
}

static void kx_session_free(struct kx_session *s)
{
	if (s->req_timer)
		event_free(s->req_timer);
	kx_sock_close(&s->client.sock);
	kx_upstream_release(s);
	kx_flow_free(&s->req);
	kx_flow_free(&s->resp);
	kp_peek_release(&s->peek);
	kr_steer_table_free(s->steer);
	free(s->steer);
	kx_worker_remove_session(s->worker, s);
	kx_conns_remove(&s->stat);
	KX_METRIC_SUB(connections_active, 1);
	kx_ring_free(&s->fifo);
	kx_ring_free(&s->up->fifo);
	free(s->up);
	free(s);
}

void kx_session_close(struct kx_session *s, const char *why)
{
	if (s->regional) {
		kx_regional_close(s, why);
		return;
	}
	kx_metrics_closed_as(s->close_cause ? (enum kx_close_cause)(s->close_cause - 1) : kx_close_cause_of(why));
	if (kx_log_enabled(KX_LOG_DEBUG)) {
		struct kx_log_id id = kx_session_log_id(s);
		kx_log_at(KX_LOG_DEBUG, &id, 0, "session %s -> %s closed: %s (%u requests in flight)", s->client.addr,
		          s->up->addr, why, s->fifo.cnt);
	}
	kx_client_set_state(s, KX_CLIENT_CLOSED);
	kx_upstream_set_state(s, KX_UPSTREAM_CLOSED);
	kx_session_free(s);
}

/*
 * Whether closing k now could lose bytes: some written to it are still in
 * its send queue (not acknowledged), or input is unread there (closing
 * would answer with a reset, which drops the send queue and may make the
 * peer drop what it received and has not read).
 */
static bool kx_sock_unsettled(const struct kx_sock *k)
{
	int unsent = 0, unread = 0;
	if (ioctl(k->fd, SIOCOUTQ, &unsent) < 0 || ioctl(k->fd, FIONREAD, &unread) < 0)
		return false;
	return unsent > 0 || unread > 0;
}

/*
 * The last side of a session is done with: close it now when nothing can
 * be lost, else linger: FIN after the bytes written, then read and drop
 * what the peer still sends until it closes or timeout_ms passes. Returns
 * false (the session is closed, or only lingering to its close).
 */
static bool kx_sock_linger(struct kx_session *s, struct kx_sock *k, int timeout_ms, const char *why)
{
	if (!kx_sock_unsettled(k) || k->tr.ops->shutdown(&k->tr, SHUT_WR) < 0) {
		kx_session_close(s, why);
		return false;
	}
	kx_sdebug(s, "%s; lingering until the %s closes (bytes still on their way)", why,
	         k == &s->client.sock ? "client" : "broker");
	if (k == &s->client.sock)
		kx_client_set_state(s, KX_CLIENT_LINGERING);
	else
		kx_upstream_set_state(s, KX_UPSTREAM_LINGERING);
	s->linger_until_ms = kx_now_ms() + timeout_ms;
	struct timeval tv = kx_ms_timeval(timeout_ms);
	kx_sock_want(k->wev, &k->writing, false, NULL);
	kx_sock_want(k->rev, &k->reading, false, NULL);
	kx_sock_want(k->rev, &k->reading, true, &tv);
	return false;
}

/* The lingering side is readable (or its time is over): its input is
 * dropped; its end, an error or the time closes the session. */
static void kx_linger_readable(struct kx_session *s, evutil_socket_t fd, short what)
{
	char sink[16384];
	if (!(what & EV_TIMEOUT) && kx_now_ms() < s->linger_until_ms) {
		for (int i = 0; i < 8; i++) { /* bounded: the event comes again */
			ssize_t r = read(fd, sink, sizeof(sink));
			if (r > 0)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				return;
			kx_session_close(s, r == 0 ? "closed after lingering" : "error while lingering");
			return;
		}
		return;
	}
	kx_sdebug(s, "the %s did not close in time; closing",
	         s->client.state == KX_CLIENT_LINGERING ? "client" : "broker");
	kx_session_close(s, "linger timeout");
}

/* Upstream is gone: answer what was answered, then close the client. */
static void kx_session_upstream_lost(struct kx_session *s, const char *why)
{
	if (!s->close_cause) /* the client is answered what came, then closed: the cause is this */
		s->close_cause = 1 + (strcmp(why, "shutdown") == 0 ? KX_CLOSE_shutdown : KX_CLOSE_upstream_lost);
	if (s->client.state == KX_CLIENT_CLOSED) {
		kx_session_close(s, why); /* nobody left to answer */
		return;
	}
	kx_upstream_release(s);
	kx_upstream_set_state(s, KX_UPSTREAM_CLOSED);
	if (s->fifo.cnt)
		kx_slimited(KX_LOG_WARN, s, "upstream %s lost (%s) with %u requests unanswered; closing the client",
		            s->up->addr, why, s->fifo.cnt);
	else
		kx_sdebug(s, "upstream %s closed (%s)", s->up->addr, why);
	if (kx_flow_ready(&s->resp) == 0) {
		(void)kx_sock_linger(s, &s->client.sock, s->worker->cfg->write_timeout_ms, why);
		return;
	}
	kx_client_set_state(s, KX_CLIENT_DRAINING);
	kx_update_reading(s);
	kx_client_want_write(s, true);
}

/* Whether the session owes its client nothing: no request awaiting its
 * answer or still on its way to the broker, no answer half passed on. */
static bool kx_session_quiet(const struct kx_session *s)
{
	return s->fifo.cnt == 0 && !kx_flow_cut(&s->req) && kx_flow_ready(&s->req) == 0 && !kx_flow_cut(&s->resp);
}

/*
 * While the worker stops, a quiet session lets its upstream go, flushes what
 * it answered and closes. Returns true when it did so (s may be gone).
 */
KX_MUST_CHECK static bool kx_session_finish_if_stopping(struct kx_session *s)
{
	if (!s->worker->stopping || s->client.state != KX_CLIENT_OPEN || !kx_session_quiet(s))
		return false;
	kx_session_upstream_lost(s, "shutdown");
	return true;
}

void kx_session_shutdown(struct kx_session *s)
{
	if (s->regional) {
		kx_regional_shutdown(s);
		return;
	}
	if (s->client.state == KX_CLIENT_HANDSHAKE) {
		kx_session_close(s, "shutdown during the TLS handshake"); /* nothing asked yet */
		return;
	}
	if (kx_session_finish_if_stopping(s))
		return; /* closed, or lingering to its close */
}

/*
 * The client closed. What it sent and kstretch cleared for the broker is
 * still delivered (a Produce with acks=0 has no answer to wait for, only
 * bytes to pass on, and a client may close right after writing it), within
 * connect.timeout.ms; then the session closes. That includes the start of a
 * request cut off by the close: the broker drops it at the end of the
 * stream, as it would from the client itself, and the complete requests
 * before it arrive. Answers still to come are of no use: the broker is not
 * read any more (but drained while lingering, see kx_sock_linger).
 */
static void kx_session_client_gone(struct kx_session *s)
{
	kx_client_set_state(s, KX_CLIENT_CLOSED);
	kx_sock_want(s->client.sock.rev, &s->client.sock.reading, false, NULL);
	kx_sock_want(s->client.sock.wev, &s->client.sock.writing, false, NULL);
	size_t pending = kx_flow_ready(&s->req);
	if (s->up->state == KX_UPSTREAM_READY && pending == 0) {
		(void)kx_sock_linger(s, &s->up->sock, s->worker->cfg->connect_timeout_ms, "client closed");
		return;
	}
	if (s->up->state == KX_UPSTREAM_CLOSED || pending == 0) {
		kx_session_close(s, "client closed"); /* nothing to deliver */
		return;
	}
	kx_sdebug(s, "client closed; delivering its last %zu bytes to %s", pending, s->up->addr);
	kx_update_reading(s);
	if (s->up->state == KX_UPSTREAM_READY && s->up->sock.writing) {
		struct timeval t = kx_ms_timeval(s->worker->cfg->connect_timeout_ms);
		event_add(s->up->sock.wev, &t); /* a timeout now, on what was waiting already */
	}
}

static void kx_protocol_error(struct kx_session *s, const char *side, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void kx_protocol_error(struct kx_session *s, const char *side, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	struct kx_log_id id = kx_session_log_id(s);
	kx_log_limited(KX_LOG_WARN, &id, "session %s -> %s: malformed %s: %s; closing", s->client.addr, s->up->addr,
	               side, what);
	KX_METRIC_ADD(protocol_errors, 1);
	const struct kx_inflight *head = side[0] == 'r' && side[2] == 's' ? kx_ring_head(&s->fifo) : NULL;
	KX_API_COUNT(decode_errors, head ? head->api_key : -1); /* a request's own header did not read: "other" */
	kx_session_close(s, "protocol error");
}

/* ---- writing ----------------------------------------------------------- */

/* Writes the answers ready for the client. */
KX_MUST_CHECK static bool kx_flush_client(struct kx_session *s)
{
	struct kx_sock *k = &s->client.sock;
	if (s->client.state == KX_CLIENT_CLOSED || s->client.state == KX_CLIENT_LINGERING)
		return true;
	if (!kx_flow_write(&s->resp, &k->tr)) {
		kx_sdebug(s, "cannot write to the client: %s", strerror(errno));
		kx_session_close(s, "client write error");
		return false;
	}
	bool more = kx_flow_ready(&s->resp) > 0;
	if (!more && s->client.state == KX_CLIENT_DRAINING)
		return kx_sock_linger(s, k, s->worker->cfg->write_timeout_ms, "upstream closed, answers flushed");
	kx_client_want_write(s, more);
	return true;
}

/* Writes the requests ready for the broker (once connected). */
KX_MUST_CHECK static bool kx_flush_upstream(struct kx_session *s)
{
	struct kx_sock *k = &s->up->sock;
	if (s->up->state != KX_UPSTREAM_READY)
		return true;
	if (!kx_flow_write(&s->req, &k->tr)) {
		char why[128];
		snprintf(why, sizeof(why), "write error: %s", strerror(errno));
		kx_session_upstream_lost(s, why);
		return false;
	}
	bool more = kx_flow_ready(&s->req) > 0;
	if (s->client.state == KX_CLIENT_CLOSED) {
		if (!more)
			return kx_sock_linger(s, k, s->worker->cfg->connect_timeout_ms,
			                      "client closed, its requests written");
		struct timeval t = kx_ms_timeval(s->worker->cfg->connect_timeout_ms);
		kx_sock_want(k->wev, &k->writing, true, &t);
		return true;
	}
	kx_sock_want(k->wev, &k->writing, kx_sock_wants_write(k, more), NULL);
	return true;
}

/* ---- held frames: the ones that are rewritten --------------------------- */

/* Takes the whole frame (4 + size bytes) behind f's cleared bytes. */
static struct kx_hold *kx_take_frame(struct kx_flow *f, int32_t size)
{
	return kx_flow_take(f, 4 + (size_t)size);
}

/* ---- where the client is ------------------------------------------------ */

/* Places the client at its first request (its client.id is in the header). */
static void kx_session_place(struct kx_session *s, const struct kp_request_header *h)
{
	const struct kx_config *cfg = s->worker->cfg;
	const char *id = h->client_id.len > 0 ? (const char *)h->client_id.ptr : NULL;
	size_t idlen = h->client_id.len > 0 ? (size_t)h->client_id.len : 0;
	s->placed = true;
	kr_client_place(&s->worker->placement, s->local_port, id, idlen, s->cert_rack, (const struct sockaddr *)&s->peer,
	                &s->place);
	if (!s->place.rack[0] && !s->place.region[0]) {
		kx_sdebug(s, "client's rack unknown: plain mapped mode");
		return;
	}
	s->client_ridx = (uint8_t)kx_region_index(s->place.region);
	kx_conns_place(&s->stat, s->place.rack, s->place.region, kr_rack_source_name(s->place.source));
	s->view.rack = s->place.rack;
	s->view.region = s->place.region;
	s->view.learn_topics = cfg->fetch_prefer_local && s->place.region[0];
	s->view.broker_id = s->up->node_id;
	if (cfg->fetch_prefer_local && s->place.region[0] && s->up->node_id >= 0)
		s->steer = calloc(1, sizeof(*s->steer)); /* none (no memory): no steering, nothing else lost */
	s->view.steer = s->steer;
	kx_sdebug(s, "client in rack %s, region %s (from %s); broker %s in region %s",
	         s->place.rack[0] ? s->place.rack : "?", s->place.region[0] ? s->place.region : "?",
	         kr_rack_source_name(s->place.source), s->up->addr, s->broker_region[0] ? s->broker_region : "?");
}

/* The client's view for rewrite.h with the worker's current topology (no
 * lock: kx_topology_cached; end with kx_view_done); NULL for a client of
 * unknown place. */
static struct kx_client_view *kx_view_begin(struct kx_session *s)
{
	if (!s->placed || (!s->place.rack[0] && !s->place.region[0]))
		return NULL;
	s->view.topology = kx_topology_cached(&s->worker->topology);
	s->view.now_ms = kx_now_ms();
	return &s->view;
}

static void kx_view_done(struct kx_client_view *v)
{
	if (v)
		v->topology = NULL; /* the worker's cache holds the reference */
}

/* A Fetch request whose RackId kstretch sets: taken whole, rewritten (or
 * not: a RackId the client set stays) and queued behind what was cleared. */
KX_MUST_CHECK static bool kx_request_inject(struct kx_session *s, int32_t size)
{
	struct kx_rewriter *rw = &s->worker->rewriter;
	int32_t corr = s->peek.req.correlation_id;
	int16_t version = s->peek.req.api_version;
	struct kx_hold *h = kx_take_frame(&s->req, size);
	if (!h) {
		kx_serror(s, "out of memory for a %d-byte request", size);
		kx_session_close(s, "out of memory");
		return false;
	}
	enum kx_inject_result r = kx_fetch_inject_rack(rw, h->data + 4, (size_t)size, s->place.rack);
	if (r == KX_INJECT_FAILED) {
		kx_protocol_error(s, "request", "Fetch v%d (corr %d): %s at byte %zu reading %s", version, corr,
		                  kp_error_name(rw->cur.err), rw->cur.err_pos + 4,
		                  rw->cur.err_field ? rw->cur.err_field : "?");
		free(h);
		return false;
	}
	if (r == KX_INJECT_DONE) {
		kx_queue_frame(&s->req, &rw->out, h, 4 + (size_t)size);
		return true;
	}
	kx_flow_put_ref(&s->req, h, h->data, 4 + (size_t)size); /* as it came */
	kx_hold_put(h);
	return true;
}

/*
 * A request to rewrite is larger than max.held.request.bytes: it passes
 * through unchanged instead, cut through as it arrives (the broker serves
 * it all the same, without the RackId), so a client cannot make kstretch
 * wait for and copy a frame of up to max.frame.bytes. Returns false: not
 * injected. Logged once per connection.
 */
static bool kx_request_too_large_to_hold(struct kx_session *s)
{
	if (!s->held_cap_logged) {
		s->held_cap_logged = true;
		kx_sinfo(s, "Fetch v%d (corr %d) of %d bytes is over max.held.request.bytes (%d): passed on "
		        "without its RackId (logged once per connection)", s->peek.req.api_version, s->peek.req.correlation_id, s->peek.frame_size,
		        s->worker->cfg->max_held_request_bytes);
	}
	return false;
}

/* ---- requests: client -> upstream -------------------------------------- */

/* The size the frame at `at` announces (its first 4 bytes are there): what
 * a malformed frame said, for the log. */
static int32_t kx_announced_size(struct evbuffer *in, size_t at)
{
	uint8_t b[4] = {0};
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(in, &pos, at, EVBUFFER_PTR_SET) == 0)
		evbuffer_copyout_from(in, &pos, b, 4);
	return kp_frame_size_get(b);
}

/*
 * Queues a request the broker will answer: on the session's client-order
 * FIFO (e) and on its upstream's FIFO. False when max.inflight.requests are
 * already in flight (or no memory for more): nothing is queued then.
 */
static bool kx_fifo_push(struct kx_session *s, struct kx_inflight e)
{
	uint32_t max = (uint32_t)s->worker->cfg->max_inflight_requests;
	struct kx_up_inflight u = {.owner = s, .client_corr = e.correlation_id, .upstream_corr = e.correlation_id,
	                           .api_key = e.api_key, .api_version = e.api_version};
	if (!kx_ring_push(&s->fifo, &e, max))
		goto full;
	if (!kx_ring_push(&s->up->fifo, &u, max)) {
		kx_ring_drop_last(&s->fifo);
		goto full;
	}
	return true;
full:
	if (s->fifo.cnt < max)
		kx_swarn(s, "no memory for more than %u requests in flight; waiting for answers", s->fifo.cnt);
	return false;
}

/*
 * Clears the client's buffered requests for the broker, one frame at a
 * time (a frame is cleared as soon as its header is read, so a large one is
 * cut through as it arrives), then writes what it can.
 */
KX_MUST_CHECK static bool kx_client_pump(struct kx_session *s)
{
	struct evbuffer *in = s->req.buf;
	const struct kx_config *cfg = s->worker->cfg;

	if (s->client.state != KX_CLIENT_OPEN || s->up->state == KX_UPSTREAM_CLOSED)
		return true;
	while (!kx_flow_cut(&s->req)) {
		if (s->worker->stopping) /* no new request; close after the last answer */
			return !kx_session_finish_if_stopping(s);
		size_t at = (size_t)s->req.pass;
		enum kp_frame_status st = kp_peek_request(in, at, cfg->max_frame_bytes, &s->peek);
		if (st == KP_FRAME_INCOMPLETE)
			break;
		if (st == KP_FRAME_MALFORMED) {
			int32_t announced = kx_announced_size(in, at);
			uint8_t first[2] = {0};
			if (at == 0 && s->req_cleared == 0 && evbuffer_copyout(in, first, 2) == 2 &&
			    kx_tls_looks_like_hello(first, 2)) {
				kx_slimited(
				    KX_LOG_WARN, s,
				    "sent a TLS ClientHello to a plaintext listener (the client uses TLS: give "
				    "kstretch tls.cert and tls.key, or the client security.protocol=PLAINTEXT); closing");
				KX_METRIC_ADD(tls_plaintext_refused, 1);
				kx_session_close(s, "TLS on a plaintext listener");
				return false;
			}
			if (announced < 0 || announced > cfg->max_frame_bytes)
				kx_protocol_error(s, "request", "frame size %d outside 0..%lld (max.frame.bytes)",
				                  announced, (long long)cfg->max_frame_bytes);
			else
				kx_protocol_error(s, "request", "bad header: %s at byte %zu reading %s",
				                  kp_error_name(s->peek.err.err), s->peek.err.err_pos + 4,
				                  s->peek.err.err_field ? s->peek.err.err_field : "?");
			return false;
		}
		const struct kp_request_header *h = &s->peek.req;
		bool expects = true;
		if (h->api_key == KP_API_PRODUCE) {
			int16_t acks = 0;
			enum kp_frame_status ast = kp_peek_produce_acks(in, at, &s->peek, &acks);
			if (ast == KP_FRAME_INCOMPLETE)
				break; /* the acks field has not arrived yet */
			if (ast == KP_FRAME_MALFORMED) {
				kx_protocol_error(s, "request",
				                  "Produce v%d (corr %d): cannot read acks: %s at byte %zu reading %s",
				                  h->api_version, h->correlation_id, kp_error_name(s->peek.err.err),
				                  s->peek.err.err_pos + 4, s->peek.err.err_field);
				return false;
			}
			expects = acks != 0;
		}
		if (!s->placed)
			kx_session_place(s, h);
		int16_t as = kr_request_forward_version(h->api_key, h->api_version, cfg->fetch_cut_through);
		if (as != h->api_version) {
			if (!kp_patch_request_version(in, at, &s->peek, as)) {
				kx_protocol_error(s, "request", "%s v%d (corr %d): cannot set its version to %d in place",
				                  kp_api_get(h->api_key)->name, h->api_version, h->correlation_id, as);
				return false;
			}
			KX_METRIC_ADD(fetch_requests_as_v15, 1);
		}
		bool rewrite = kr_response_plan(h->api_key, h->api_version, false) != KR_RESPONSE_PASS, inject = false;
		if (kr_api_plan_per_client(h->api_key)) {
			struct kx_client_view *v = kx_view_begin(s);
			rewrite = kx_rewrite_needed_for(cfg, v, h->api_key, h->api_version);
			inject = kx_inject_wanted(cfg, v, h->api_key, h->api_version);
			kx_view_done(v);
			if (inject && s->peek.frame_size > cfg->max_held_request_bytes)
				inject = kx_request_too_large_to_hold(s);
			if (inject && !s->peek.whole)
				break; /* its RackId is set on the whole frame */
		}
		struct kx_inflight ent = {h->correlation_id, h->api_key, h->api_version, rewrite, {.in_ns = s->read_ns}};
		if (expects && !kx_fifo_push(s, ent)) {
			s->reading_paused_inflight = true; /* wait for answers (max.inflight.requests) */
			break;
		}
		KX_METRIC_ADD(requests_forwarded, 1);
		KX_API_COUNT(requests, h->api_key);
		if (expects)
			kx_conn_count(&s->stat.requests, 1);
		s->req_cleared++;
		if (inject) {
			if (!kx_request_inject(s, s->peek.frame_size))
				return false;
		} else {
			s->req.pass += 4 + (uint64_t)s->peek.frame_size;
		}
	}
	return kx_flush_upstream(s);
}

/*
 * The number of the request the client is in the middle of sending: bytes
 * of it were read and the rest is awaited (-1: none, or kstretch is not
 * reading the client, so the wait is not the client's).
 */
static int64_t kx_request_partial(const struct kx_session *s)
{
	size_t len = evbuffer_get_length(s->req.buf);
	if (!s->client.sock.reading || s->client.state != KX_CLIENT_OPEN)
		return -1;
	if (s->req.pass > len)
		return (int64_t)s->req_cleared - 1; /* cleared at its header; its body still arriving */
	return len > s->req.pass ? (int64_t)s->req_cleared : -1;
}

static void kx_request_timeout(evutil_socket_t fd, short what, void *arg);

/* Times the request the client is sending (request.timeout.ms): one timer
 * a connection, made the first time; when it fires it checks the request
 * then in progress and waits again for the rest of that one's time. */
static void kx_request_timer_update(struct kx_session *s)
{
	int64_t n = kx_request_partial(s);
	if (n < 0) {
		s->req_timed = -1;
		return; /* a pending timer finds nothing to do */
	}
	int64_t now = kx_now_ms();
	if (n != s->req_timed) {
		s->req_timed = n;
		s->req_begun_ms = now;
	}
	if (!s->req_timer) {
		s->req_timer = evtimer_new(s->worker->base, kx_request_timeout, s);
		if (!s->req_timer)
			return; /* out of memory: the idle timeout still applies */
	}
	if (!evtimer_pending(s->req_timer, NULL)) {
		int64_t left = s->req_begun_ms + s->worker->cfg->request_timeout_ms - now;
		struct timeval tv = kx_ms_timeval(left > 0 ? (int)left : 0);
		evtimer_add(s->req_timer, &tv);
	}
}

static void kx_request_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct kx_session *s = arg;
	(void)fd;
	(void)what;
	int64_t n = kx_request_partial(s);
	if (n >= 0 && n == s->req_timed && kx_now_ms() - s->req_begun_ms >= s->worker->cfg->request_timeout_ms) {
		size_t have = evbuffer_get_length(s->req.buf);
		kx_sinfo(s, "request not complete after request.timeout.ms (%d ms; %zu bytes of it read); "
		        "closing", s->worker->cfg->request_timeout_ms,
		        s->req.pass > have ? have : have - (size_t)s->req.pass);
		KX_METRIC_ADD(request_timeouts, 1);
		kx_session_close(s, "request timeout");
		return;
	}
	kx_request_timer_update(s);
}


/*
 * proxy.protocol (session.h): the header's bytes are copied out of the
 * buffer, not pulled up in it: a regional session's buffer lies in read
 * blocks its frames are taken from by reference, which a pullup would
 * replace. Once per connection, a few dozen bytes.
 */
int kx_session_proxy_header(struct kx_session *s)
{
	const struct kx_config *cfg = s->worker->cfg;
	const char *who = s->regional ? "regional" : "session";
	enum kp_proxy_version v = cfg->proxy_protocol == KX_PROXY_V1 ? KP_PROXY_V1 : KP_PROXY_V2;
	size_t have = evbuffer_get_length(s->req.buf), consumed = 0;
	size_t want = v == KP_PROXY_V1 ? KP_PROXY_V1_MAX : 16;
	struct sockaddr_storage src;
	socklen_t srclen = 0;
	bool has_src = false;
	const char *why = NULL;
	enum kp_proxy_status st = KP_PROXY_INCOMPLETE;
	for (int pass = 0; pass < 2 && st == KP_PROXY_INCOMPLETE; pass++) {
		size_t n = have < want ? have : want;
		uint8_t *p = n ? malloc(n) : NULL; /* header bytes only */
		if (n && !p) {
			kx_error("%s %s: out of memory for its PROXY header; closing", who, s->client.addr);
			return -1;
		}
		if (n && evbuffer_copyout(s->req.buf, p, n) != (ev_ssize_t)n) {
			free(p);
			kx_error("%s %s: cannot copy its PROXY header out; closing", who, s->client.addr);
			return -1;
		}
		st = kp_proxy_parse(v, p, n, &consumed, &has_src, &src, &srclen, &why);
		free(p);
		if (st != KP_PROXY_INCOMPLETE || consumed <= n)
			break;
		want = consumed; /* v2 said how long it is: copy that much, if it is here */
	}
	if (st == KP_PROXY_INCOMPLETE)
		return 0;
	if (st == KP_PROXY_MALFORMED) {
		struct kx_log_id id = kx_session_log_id(s);
		kx_log_limited(KX_LOG_WARN, &id,
		               "%s %s: no valid PROXY protocol %s header (proxy.protocol): %s; closing", who,
		               s->client.addr, v == KP_PROXY_V1 ? "v1" : "v2", why);
		KX_METRIC_ADD(protocol_errors, 1);
		return -1;
	}
	kx_flow_drain(&s->req, consumed);
	s->proxy_pending = false;
	if (has_src && (size_t)srclen <= sizeof(s->peer)) {
		char via[sizeof(s->client.addr)];
		snprintf(via, sizeof(via), "%s", s->client.addr);
		memcpy(&s->peer, &src, (size_t)srclen);
		kx_format_addr((const struct sockaddr *)&src, s->client.addr, sizeof(s->client.addr));
		kx_conns_set_peer(&s->stat, s->client.addr);
		kx_debug("%s %s: PROXY header: the client is %s, connected through %s", who, s->client.addr,
		         s->client.addr, via);
	}
	return 1;
}

/*
 * The client's TLS handshake (tls.cert), one step per event: waits for the
 * readiness it asks for, within tls.handshake.timeout.ms. Once done: the
 * certificate's subject is logged and its rack noted for placement, and the
 * session reads requests like any other.
 */
static bool kx_session_bind(struct kx_session *s, int32_t node_id);
static void kx_upstream_begin(struct kx_session *s);

static void kx_client_handshake(struct kx_session *s, short what)
{
	struct kx_sock *k = &s->client.sock;
	const struct kx_config *cfg = s->worker->cfg;
	if (what & EV_TIMEOUT) {
		kx_sinfo(s, "TLS handshake not complete after tls.handshake.timeout.ms (%d ms); closing",
		         cfg->tls_handshake_timeout_ms);
		KX_METRIC_ADD(tls_handshake_failures, 1);
		kx_session_close(s, "TLS handshake timeout");
		return;
	}
	struct timeval limit = kx_ms_timeval(cfg->tls_handshake_timeout_ms);
	switch (kx_sock_handshake_step(k, &limit)) {
	case KX_TLS_WANT_READ:
	case KX_TLS_WANT_WRITE: return;
	case KX_TLS_FAILED:
		kx_slimited(KX_LOG_INFO, s, "%s; closing", kx_tls_error(&k->tr));
		KX_METRIC_ADD(tls_handshake_failures, 1);
		kx_session_close(s, "TLS handshake failed");
		return;
	case KX_TLS_DONE: break;
	}
	char how[128], subject[512];
	kx_tls_describe(&k->tr, how, sizeof(how));
	if (kx_tls_peer_subject(&k->tr, subject, sizeof(subject))) {
		if (cfg->tls_client_rack_from != KX_CERT_ATTR_NONE &&
		    !kx_tls_peer_rack(&k->tr, cfg->tls_client_rack_from, cfg->tls_client_rack_prefix, s->cert_rack,
		                      sizeof(s->cert_rack)))
			s->cert_rack[0] = '\0';
		kx_sinfo(s, "TLS %s, client certificate %s%s%s", how, subject, s->cert_rack[0] ? ", rack " : "",
		         s->cert_rack);
	} else {
		kx_sdebug(s, "TLS %s, no client certificate", how);
	}
	kx_client_set_state(s, KX_CLIENT_OPEN);
	if (cfg->listener_mode == KX_LISTENER_SNI) {
		int32_t node = kx_tls_sni_node(&k->tr);
		if (!kx_session_bind(s, node)) {
			kx_swarn(s, "node %d left the topology during the handshake; closing", (int)node);
			kx_session_close(s, "node left the topology");
			return;
		}
	}
	kx_update_reading(s);
	if (k->reading)
		event_active(k->rev, EV_READ, 0); /* its first request may have come with its Finished */
	kx_upstream_begin(s); /* last: it may close s */
}

static void kx_client_readable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_session *s = arg;
	if (s->client.state == KX_CLIENT_LINGERING) {
		kx_linger_readable(s, fd, what);
		return;
	}
	if (s->client.state == KX_CLIENT_HANDSHAKE) {
		kx_client_handshake(s, what);
		return;
	}
	if ((s->client.sock.tr.blocked & KX_TR_WRITE_WANTS_READ) && !(what & EV_TIMEOUT) && !kx_flush_client(s))
		return; /* the answers' TLS write waited for this */
	if (what & EV_TIMEOUT) {
		if (s->fifo.cnt > 0)
			return; /* a request in flight (a long poll): not idle; the timer runs again */
		if (kx_flow_ready(&s->resp) > 0 || kx_flow_cut(&s->resp))
			return; /* an answer not all written to the client yet (write.timeout.ms watches that) */
		kx_sinfo(s, "idle for idle.timeout.ms; closing");
		KX_METRIC_ADD(idle_timeouts, 1);
		kx_session_close(s, "idle timeout");
		return;
	}
	ssize_t r = kx_flow_read(&s->req, &s->client.sock.tr);
	if (r == -2) {
		if (s->req.pipe_stuck)
			kx_update_reading(s); /* read again once the pipe drains */
		if (s->client.sock.tr.blocked & KX_TR_READ_WANTS_WRITE)
			kx_client_want_write(s, kx_flow_ready(&s->resp) > 0);
		return;
	}
	if (r < 0) {
		const char *tls = kx_tls_error(&s->client.sock.tr);
		if (tls[0])
			/* a corrupt or forged record: say so */
			kx_slimited(KX_LOG_INFO, s, "client error: %s; closing", tls);
		else
			kx_sdebug(s, "client error: %s", strerror(errno));
		kx_session_close(s, "client error");
		return;
	}
	if (r == 0) {
		kx_session_client_gone(s);
		return;
	}
	KX_METRIC_ADD(bytes_from_clients, (size_t)r);
	KX_REGION_BYTES_ADD(s->client_ridx, s->broker_ridx, KX_TO_BROKER, (size_t)r);
	s->read_ns = kx_now_ns();
	kx_conn_count(&s->stat.bytes_in, (uint64_t)r);
	if (s->proxy_pending) {
		int h = kx_session_proxy_header(s);
		if (h < 0) {
			kx_session_close(s, "no PROXY header");
			return;
		}
		if (h == 0)
			return; /* the rest of the header is on its way */
	}
	if (kx_client_pump(s)) {
		kx_update_reading(s);
		kx_request_timer_update(s);
		if (s->client.sock.reading && s->client.sock.tr.ops->pending(&s->client.sock.tr))
			event_active(s->client.sock.rev, EV_READ, 0); /* decrypted bytes wait inside TLS */
	}
}

static void kx_upstream_writable(evutil_socket_t fd, short what, void *arg);

/* ---- responses: upstream -> client ------------------------------------- */

/* Rewrites the response frame of `size` bytes (after its 4 size bytes) and
 * queues it behind the cleared bytes: h when it was held as it arrived
 * (kx_flow_hold; the reference is taken over), else taken out of the buffer
 * whole now. */
KX_MUST_CHECK static bool kx_respond_rewritten(struct kx_session *s, struct kx_hold *h, int32_t size,
                                               const struct kx_inflight *e, struct kx_client_view *v)
{
	struct kx_rewriter *rw = &s->worker->rewriter;
	if (!h)
		h = kx_take_frame(&s->resp, size);
	if (!h) {
		kx_serror(s, "out of memory for a %d-byte response", size);
		kx_session_close(s, "out of memory");
		return false;
	}
	if (!kx_rewrite_response_for(rw, s->worker->cfg, v, e->api_key, e->api_version, h->data + 4, (size_t)size)) {
		const struct kp_api *api = kp_api_get(e->api_key);
		kx_protocol_error(s, "response", "%s v%d (corr %d): %s at byte %zu reading %s", api ? api->name : "?",
		                  e->api_version, e->correlation_id, kp_error_name(rw->cur.err), rw->cur.err_pos + 4,
		                  rw->cur.err_field ? rw->cur.err_field : "?");
		kx_hold_put(h);
		return false;
	}
	if (kx_rewrite_merge_topology(rw, s->worker->cfg))
		kx_sdebug(s, "topology updated from a %s response",
		         kp_api_get(e->api_key)->name);
	kx_queue_frame(&s->resp, &rw->out, h, 4 + (size_t)size);
	KX_METRIC_ADD(responses_rewritten, 1);
	KX_API_COUNT(rewrites, e->api_key);
	KX_METRIC_ADD(addresses_rewritten, rw->addresses);
	kx_sdebug(s, "%s v%d (corr %d) rewritten: %d broker addresses -> kstretch listeners, %d partitions "
	         "-> a local replica", kp_api_get(e->api_key)->name, e->api_version, e->correlation_id, rw->addresses,
	         rw->redirects);
	return true;
}

/* The in-place walks (kx_response_scan) read a buffered frame as struct iovec pieces. */
_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec) &&
                   offsetof(struct evbuffer_iovec, iov_len) == offsetof(struct iovec, iov_len),
               "evbuffer_iovec must match struct iovec");

/* The buffered bytes [at, at + len) of in as pieces: in stack when they
 * fit, else in *heap (the caller frees it). -1 when out of memory. */
static int kx_peek_range(struct evbuffer *in, size_t at, size_t len, struct evbuffer_iovec *stack, int stackn,
                         struct evbuffer_iovec **vec)
{
	struct evbuffer_ptr start;
	*vec = stack;
	if (evbuffer_ptr_set(in, &start, at, EVBUFFER_PTR_SET) < 0)
		return -1;
	int n = evbuffer_peek(in, (ev_ssize_t)len, &start, NULL, 0);
	if (n > stackn && !(*vec = malloc((size_t)n * sizeof(**vec))))
		return -1;
	return evbuffer_peek(in, (ev_ssize_t)len, &start, *vec, n);
}

/*
 * Whether a response marked for rewriting must really be taken whole: a
 * KR_RESPONSE_SCAN one (apiplan.h) only when kx_response_scan() finds
 * something to change (Produce v10+: tagged fields; Fetch: those or a
 * partition to steer; it also notes clients that came back to the leader).
 * Walked in place.
 */
static bool kx_response_needs_rewrite(struct kx_session *s, const struct kx_hold *h, struct evbuffer *in, size_t at,
                                      int32_t size, const struct kx_inflight *e, struct kx_client_view *v)
{
	if (kr_response_plan(e->api_key, e->api_version, true) != KR_RESPONSE_SCAN)
		return true;
	if (h) { /* held as it arrived: one piece */
		struct iovec one = {(void *)(h->data + 4), (size_t)size};
		return kx_response_scan(s->worker->cfg, v, e->api_key, e->api_version, &one, 1, (size_t)size) !=
		       KX_FETCH_PASS;
	}
	struct evbuffer_iovec stack[32], *vec;
	int n = kx_peek_range(in, at + 4, (size_t)size, stack, 32, &vec);
	if (n < 0)
		return true;
	enum kx_fetch_scan r = kx_response_scan(s->worker->cfg, v, e->api_key, e->api_version,
	                                        (const struct iovec *)vec, n, (size_t)size);
	if (vec != stack)
		free(vec);
	return r != KX_FETCH_PASS; /* malformed: the rewrite says where */
}

/*
 * Matches the broker's buffered responses to the FIFO and clears them for
 * the client (rewriting those that name brokers), then writes what it can.
 */
KX_MUST_CHECK static bool kx_upstream_pump(struct kx_session *s)
{
	struct evbuffer *in = s->resp.buf;
	const struct kx_config *cfg = s->worker->cfg;

	while (!kx_flow_cut(&s->resp)) {
		size_t at = (size_t)s->resp.pass;
		struct kx_hold *h = NULL;
		int32_t size;
		if (kx_flow_holding(&s->resp)) {
			size_t len;
			if (!(h = kx_flow_held(&s->resp, &len)))
				break; /* the rest of the answer being held is on its way */
			size = (int32_t)(len - 4);
		} else {
			int32_t corr;
			bool whole;
			enum kp_frame_status st = kp_peek_response(in, at, cfg->max_frame_bytes, &size, &corr, &whole);
			if (st == KP_FRAME_INCOMPLETE)
				break;
			if (st == KP_FRAME_MALFORMED) {
				kx_protocol_error(s, "response", "frame size %d outside 4..%lld (max.frame.bytes)",
				                  kx_announced_size(in, at), (long long)cfg->max_frame_bytes);
				return false;
			}
			const struct kx_up_inflight *u = kx_ring_head(&s->up->fifo);
			if (!u || u->upstream_corr != corr) {
				kx_protocol_error(s, "response", "correlation id %d does not answer the oldest request (%s)",
				                  corr, u ? "expected another id" : "no request in flight");
				return false;
			}
			const struct kx_inflight *head = kx_ring_head(&s->fifo);
			KX_BUG_ON(u->owner != s || !head || head->correlation_id != u->client_corr); /* mapped: 1:1 */
			bool hold = head->rewrite && !whole;
			if (hold && 4 + (size_t)size < KX_HOLD_DIRECT_MIN)
				break; /* a short answer to rewrite: taken out whole once all of it is here */
			if (head->api_key == KP_API_FETCH && s->client_ridx && s->broker_ridx) {
				if (s->client_ridx == s->broker_ridx)
					KX_METRIC_ADD(fetch_bytes_local, 4 + (size_t)size);
				else
					KX_METRIC_ADD(fetch_bytes_remote, 4 + (size_t)size);
			}
			if (hold) { /* a long one: read straight into its held block as it comes */
				if (!kx_flow_hold(&s->resp, 4 + (size_t)size)) {
					kx_serror(s, "out of memory for a %d-byte response", size);
					kx_session_close(s, "out of memory");
					return false;
				}
				continue;
			}
		}
		struct kx_inflight e = *(const struct kx_inflight *)kx_ring_head(&s->fifo);
		if (e.rewrite) {
			struct kx_client_view *v = kx_view_begin(s);
			bool ok = true;
			if (!kx_response_needs_rewrite(s, h, in, at, size, &e, v))
				e.rewrite = false; /* nothing to rewrite: it moves on untouched */
			else
				ok = kx_respond_rewritten(s, h, size, &e, v);
			kx_view_done(v);
			if (!ok)
				return false;
		}
		if (!e.rewrite) {
			KX_METRIC_ADD(responses_forwarded, 1);
			if (h) {
				kx_flow_put_ref(&s->resp, h, h->data, 4 + (size_t)size); /* as it came, by reference */
				kx_hold_put(h);
			} else {
				s->resp.pass += 4 + (uint64_t)size;
			}
		}
		kx_ring_pop(&s->up->fifo);
		kx_ring_pop(&s->fifo);
		kx_timing_sent(&e.tm, s->up->ready_ns); /* it waited for the connection, or went at once */
		e.tm.answered_ns = s->up_read_ns;
		kx_timing_done(e.api_key, &e.tm, kx_now_ns());
		KX_API_COUNT(responses, e.api_key);
		kx_conn_count(&s->stat.answers, 1);
		if (s->reading_paused_inflight && s->client.state == KX_CLIENT_OPEN) {
			s->reading_paused_inflight = false;
			if (!kx_client_pump(s)) /* requests already buffered */
				return false;
		}
	}
	if (!kx_flush_client(s))
		return false;
	return !kx_session_finish_if_stopping(s); /* the last answer is on its way to the client */
}

static void kx_upstream_readable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_upstream *u = arg;
	struct kx_session *s = u->owner;
	if (u->state == KX_UPSTREAM_LINGERING) {
		kx_linger_readable(s, fd, what);
		return;
	}
	if (u->state == KX_UPSTREAM_HANDSHAKE) {
		kx_upstream_handshake(s, what);
		return;
	}
	if ((u->sock.tr.blocked & KX_TR_WRITE_WANTS_READ) && !kx_flush_upstream(s))
		return; /* the requests' TLS write waited for this */
	ssize_t r = kx_flow_read(&s->resp, &s->up->sock.tr);
	if (r == -2) {
		if (s->resp.pipe_stuck)
			kx_update_reading(s); /* read again once the pipe drains */
		if (u->sock.tr.blocked & KX_TR_READ_WANTS_WRITE)
			kx_sock_want(u->sock.wev, &u->sock.writing, true, NULL);
		return;
	}
	if (r <= 0) {
		char why[300];
		const char *tls = kx_tls_error(&u->sock.tr);
		if (r == 0)
			snprintf(why, sizeof(why), "broker closed the connection");
		else if (tls[0])
			snprintf(why, sizeof(why), "%s", tls);
		else if (errno == ECONNRESET)
			snprintf(why, sizeof(why), "broker closed the connection (reset)");
		else
			snprintf(why, sizeof(why), "connection error: %s", strerror(errno));
		kx_session_upstream_lost(s, why);
		return;
	}
	KX_METRIC_ADD(bytes_from_brokers, (size_t)r);
	KX_REGION_BYTES_ADD(s->client_ridx, s->broker_ridx, KX_FROM_BROKER, (size_t)r);
	s->up_read_ns = kx_now_ns();
	kx_conn_count(&s->stat.bytes_out, (uint64_t)r);
	if (kx_upstream_pump(s)) {
		kx_update_reading(s);
		if (u->sock.reading && u->sock.tr.ops->pending(&u->sock.tr))
			event_active(u->sock.rev, EV_READ, 0); /* decrypted bytes wait inside TLS */
	}
}

static void kx_client_writable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_session *s = arg;
	(void)fd;
	if ((what & EV_TIMEOUT) && !kx_client_stalled(s))
		return; /* it reads, slowly */
	if (s->client.state == KX_CLIENT_HANDSHAKE) {
		kx_client_handshake(s, what);
		return;
	}
	if (what & EV_TIMEOUT) {
		kx_sinfo(s, "took none of its %zu bytes of answers in write.timeout.ms (%d ms; %u requests in "
		        "flight); closing", kx_flow_ready(&s->resp), s->worker->cfg->write_timeout_ms, s->fifo.cnt);
		KX_METRIC_ADD(write_timeouts, 1);
		kx_session_close(s, "write timeout");
		return;
	}
	bool reread = s->client.sock.tr.blocked & KX_TR_READ_WANTS_WRITE;
	if (!kx_flush_client(s))
		return;
	kx_update_reading(s); /* below the low watermark again: read the broker */
	if (reread && s->client.state == KX_CLIENT_OPEN)
		event_active(s->client.sock.rev, EV_READ, 0); /* the TLS read that waited for this */
}

/* ---- connecting upstream ----------------------------------------------- */

static void kx_upstream_begin(struct kx_session *s);

static void kx_upstream_connect_failed(struct kx_session *s, const char *why)
{
	KX_METRIC_ADD(upstream_connect_failures, 1);
	kx_metrics_upstream(s->up->node_id, false);
	kx_slimited(KX_LOG_WARN, s, "cannot connect to %s: %s", s->up->addr, why);
	if (s->up->starting) {
		s->up->failed_starting = true; /* kx_upstream_begin goes on or closes */
	} else if (s->up->node_id < 0) {
		/* The next bootstrap candidate, or close. A TLS handshake that failed
		 * is the one step back the upstream's state takes: to connecting
		 * again, to another server (nothing of the client's has left). */
		if (s->up->state == KX_UPSTREAM_HANDSHAKE) {
			kx_sdebug(s, "upstream %s tls-handshake -> connecting (next bootstrap candidate)", s->up->addr);
			s->up->state = KX_UPSTREAM_CONNECTING;
		}
		kx_upstream_begin(s);
	} else
		kx_session_upstream_lost(s, "connect failed");
}

/* Starts a non-blocking connect to the next resolved address. */
static void kx_upstream_try_next(struct kx_session *s, const char *last_err)
{
	while (s->up->next_addr) {
		struct evutil_addrinfo *a = s->up->next_addr;
		s->up->next_addr = a->ai_next;
		kx_sock_close(&s->up->sock);
		if (!kx_sock_connect(s->worker->base, &s->up->sock, a, s->worker->cfg->connect_timeout_ms,
		                     kx_upstream_readable, kx_upstream_writable, s->up, &last_err))
			continue;
		return;
	}
	kx_upstream_connect_failed(s, last_err);
}

static void kx_upstream_ready(struct kx_session *s);

static void kx_upstream_connected(struct kx_session *s, short what)
{
	if (what & EV_TIMEOUT) {
		kx_upstream_connect_failed(s, "connect timeout");
		return;
	}
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(s->up->sock.fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		kx_upstream_try_next(s, strerror(err));
		return;
	}
	evutil_freeaddrinfo(s->up->addrs);
	s->up->addrs = s->up->next_addr = NULL;
	kx_sock_want(s->up->sock.wev, &s->up->sock.writing, false, NULL);
	if (kx_tls_towards_brokers()) {
		struct kx_sock *k = &s->up->sock;
		if (!kx_tls_connect(&k->tr, k->fd, s->up->host, s->up->port, s->worker->cfg->upstream_tls_verify_hostname,
		                    s->worker->tls_sessions)) {
			kx_upstream_connect_failed(s, "cannot start TLS (out of memory, or a host name OpenSSL refuses)");
			return;
		}
		kx_upstream_set_state(s, KX_UPSTREAM_HANDSHAKE);
		kx_upstream_handshake(s, EV_WRITE);
		return;
	}
	kx_upstream_ready(s);
}

/* Connected (and through TLS, if any): the requests that waited go. */
static void kx_upstream_ready(struct kx_session *s)
{
	kx_upstream_set_state(s, KX_UPSTREAM_READY);
	s->up->ready_ns = kx_now_ns();
	kx_metrics_upstream(s->up->node_id, true);
	kx_conns_set_upstream(&s->stat, s->up->addr);
	if (kx_flush_upstream(s))
		kx_update_reading(s);
}

/*
 * The TLS handshake with the broker (upstream.tls), one step per event,
 * within connect.timeout.ms. A failure (a certificate that does not verify
 * or name the host, no common version) is a failed connect: logged with
 * OpenSSL's reason, and a bootstrap session tries its next candidate.
 */
static void kx_upstream_handshake(struct kx_session *s, short what)
{
	struct kx_sock *k = &s->up->sock;
	struct timeval limit = kx_ms_timeval(s->worker->cfg->connect_timeout_ms);
	if (what & EV_TIMEOUT) {
		kx_upstream_connect_failed(s, "TLS handshake not complete after connect.timeout.ms");
		return;
	}
	switch (kx_sock_handshake_step(k, &limit)) {
	case KX_TLS_WANT_READ:
	case KX_TLS_WANT_WRITE: return;
	case KX_TLS_FAILED: {
		char why[300];
		snprintf(why, sizeof(why), "%s", kx_tls_error(&k->tr));
		kx_upstream_connect_failed(s, why);
		return;
	}
	case KX_TLS_DONE: break;
	}
	char how[128];
	kx_tls_describe(&k->tr, how, sizeof(how));
	kx_sdebug(s, "TLS to %s: %s", s->up->addr, how);
	kx_upstream_ready(s);
}

static void kx_upstream_writable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_upstream *u = arg;
	struct kx_session *s = u->owner;
	(void)fd;
	if (u->state == KX_UPSTREAM_CONNECTING) {
		kx_upstream_connected(s, what);
		return;
	}
	if (u->state == KX_UPSTREAM_HANDSHAKE) {
		kx_upstream_handshake(s, what);
		return;
	}
	if (what & EV_TIMEOUT) { /* only set while delivering a closed client's last requests */
		kx_swarn(s, "%s took more than connect.timeout.ms to accept a closed client's last requests", s->up->addr);
		kx_session_close(s, "timeout");
		return;
	}
	bool reread = u->sock.tr.blocked & KX_TR_READ_WANTS_WRITE;
	if (!kx_flush_upstream(s) || kx_session_finish_if_stopping(s))
		return;
	kx_update_reading(s); /* below the low watermark again: read the client */
	if (reread && u->state == KX_UPSTREAM_READY)
		event_active(u->sock.rev, EV_READ, 0); /* the TLS read that waited for this */
}

static void kx_upstream_resolved(int err, struct evutil_addrinfo *ai, void *arg)
{
	struct kx_resolve *r = arg;
	struct kx_session *s = r->s;
	free(r);
	if (!s) { /* the session closed meanwhile */
		if (ai)
			evutil_freeaddrinfo(ai);
		return;
	}
	s->up->resolve = NULL;
	s->up->dns_req = NULL;
	if (err) {
		kx_upstream_connect_failed(s, evutil_gai_strerror(err));
		return;
	}
	s->up->addrs = s->up->next_addr = ai;
	kx_upstream_try_next(s, "no address");
}

/*
 * Picks where the upstream goes and starts resolving and connecting. A mapped
 * session has one place: its node. A bootstrap session has candidates, the
 * bootstrap.servers (round robin across sessions) and then the brokers the
 * topology knows, and takes the next while none of its requests has left, so
 * one broker down does not refuse new clients. Closes the session when no
 * candidate is left. Numeric hosts resolve inside the call: a failure there is
 * only noted (failed_starting) and handled in the loop here.
 */
static void kx_upstream_begin(struct kx_session *s)
{
	struct kx_worker *w = s->worker;
	const struct kx_config *cfg = w->cfg;
	for (;;) {
		char host[KX_HOST_MAX];
		uint16_t port;
		struct kx_topology *t = kx_topology_get();
		if (s->up->node_id >= 0) {
			if (s->up->connect_tries++ > 0) {
				kx_topology_put(t);
				kx_session_upstream_lost(s, "connect failed");
				return;
			}
			const struct kx_broker *b = kx_topology_broker(t, s->up->node_id);
			if (!b) {
				kx_topology_put(t);
				kx_session_upstream_lost(s, "node left the topology");
				return;
			}
			snprintf(host, sizeof(host), "%s", b->host);
			port = b->port;
			snprintf(s->up->addr, sizeof(s->up->addr), "node %d (%s:%u)", (int)s->up->node_id, host, port);
		} else {
			size_t n = cfg->bootstrap_cnt + t->broker_cnt, i = s->up->connect_tries++;
			if (i >= n || i >= KX_BOOTSTRAP_TRIES_MAX) {
				kx_topology_put(t);
				if (i > 1)
					kx_slimited(KX_LOG_WARN, s,
					            "none of %zu bootstrap candidates accepted a connection; closing",
					            i);
				kx_session_upstream_lost(s, "connect failed");
				return;
			}
			const char *kind = "bootstrap";
			if (i < cfg->bootstrap_cnt) {
				const struct kx_hostport *hp = &cfg->bootstrap[(s->up->bootstrap_first + i) % cfg->bootstrap_cnt];
				snprintf(host, sizeof(host), "%s", hp->host);
				port = hp->port;
			} else {
				const struct kx_broker *b = &t->brokers[i - cfg->bootstrap_cnt];
				snprintf(host, sizeof(host), "%s", b->host);
				port = b->port;
				kind = "bootstrap (a known broker)";
			}
			snprintf(s->up->addr, sizeof(s->up->addr), "%s %s:%u", kind, host, port);
		}
		kx_topology_put(t);
		snprintf(s->up->host, sizeof(s->up->host), "%s", host);
		s->up->port = port;
		if (s->up->connect_tries == 1)
			kx_sdebug(s, "accepted, upstream %s", s->up->addr);
		else
			kx_sinfo(s, "trying %s", s->up->addr);

		kx_upstream_release(s);
		struct kx_resolve *r = malloc(sizeof(*r));
		if (!r) {
			kx_session_close(s, "out of memory");
			return;
		}
		r->s = s;
		s->up->resolve = r;
		s->up->starting = true;
		s->up->failed_starting = false;
		char portstr[8];
		snprintf(portstr, sizeof(portstr), "%u", port);
		struct evutil_addrinfo hints = {
		    .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_protocol = IPPROTO_TCP};
		struct evdns_getaddrinfo_request *req =
		    evdns_getaddrinfo(w->dns, host, portstr, &hints, kx_upstream_resolved, r);
		if (s->up->resolve)
			s->up->dns_req = req; /* still resolving */
		s->up->starting = false;
		if (!s->up->failed_starting)
			return; /* connecting, or resolving */
	}
}

/* ---- start ------------------------------------------------------------- */

/* Points the session's upstream at node_id (-1: a bootstrap server); false
 * when the topology has no such node. */
static bool kx_session_bind(struct kx_session *s, int32_t node_id)
{
	struct kx_topology *t = kx_topology_get();
	const struct kx_broker *b = node_id >= 0 ? kx_topology_broker(t, node_id) : NULL;
	if (b) {
		snprintf(s->broker_region, sizeof(s->broker_region), "%s", b->region);
		s->broker_ridx = (uint8_t)kx_region_index(b->region);
	}
	kx_topology_put(t);
	s->up->node_id = node_id;
	return node_id < 0 || b;
}

void kx_session_start(struct kx_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen, int32_t node_id,
                      uint16_t local_port)
{
	struct kx_session *s = calloc(1, sizeof(*s));
	if (s)
		s->up = calloc(1, sizeof(*s->up));
	if (!s || !s->up || !kx_ring_init(&s->fifo, sizeof(struct kx_inflight), KX_FIFO_FIRST) ||
	    !kx_ring_init(&s->up->fifo, sizeof(struct kx_up_inflight), KX_FIFO_FIRST)) {
		kx_error("out of memory for a new session; refusing the connection");
		if (s) {
			kx_ring_free(&s->fifo);
			if (s->up)
				kx_ring_free(&s->up->fifo);
			free(s->up);
		}
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->worker = w;
	s->client.sock.fd = s->up->sock.fd = -1;
	s->up->worker = w;
	s->up->owner = s;
	s->req_timed = -1;
	s->up->node_id = node_id;
	s->local_port = local_port;
	if (salen > 0 && (size_t)salen <= sizeof(s->peer))
		memcpy(&s->peer, sa, (size_t)salen);
	kx_format_addr(sa, s->client.addr, sizeof(s->client.addr));
	s->proxy_pending = w->cfg->proxy_protocol != KX_PROXY_OFF;
	KX_METRIC_ADD(connections_accepted, 1);
	KX_METRIC_ADD(connections_active, 1);
	kx_worker_add_session(w, s);
	s->stat = (struct kx_conn_stat){
	    .kind = KX_CONN_MAPPED, .worker = w->id, .local_port = local_port, .node_id = node_id};
	snprintf(s->stat.peer, sizeof(s->stat.peer), "%s", s->client.addr);
	kx_conns_add(&s->stat);

	/* Where to: the node this listener maps to, or a bootstrap server. */
	if (!kx_session_bind(s, node_id)) {
		kx_slimited(KX_LOG_WARN, s, "node %d is not in the topology; closing", node_id);
		evutil_closesocket(fd);
		kx_session_free(s);
		return;
	}
	s->up->bootstrap_first = w->bootstrap_next++;

	/* Bytes bypass user space only between two plain sockets. */
	bool tls = kx_tls_towards_clients(), splice = !tls && !kx_tls_towards_brokers();
	if (!kx_flow_init(&s->req, splice) || !kx_flow_init(&s->resp, splice) ||
	    !kx_sock_open(w->base, &s->client.sock, fd, kx_client_readable, kx_client_writable, s) ||
	    (tls && !kx_tls_accept(&s->client.sock.tr, fd))) {
		kx_serror(s, "cannot create buffers%s; closing", tls ? " or a TLS connection" : "");
		if (s->client.sock.fd < 0)
			evutil_closesocket(fd);
		kx_session_close(s, "out of memory");
		return;
	}
	kx_upstream_set_state(s, KX_UPSTREAM_CONNECTING);
	if (tls) {
		/* The handshake begins when its ClientHello is there. The upstream
		 * connects after it: a client that fails it (no TLS, no valid
		 * certificate) never makes kstretch reach a broker, and in SNI mode
		 * the handshake names the broker. */
		struct timeval limit = kx_ms_timeval(w->cfg->tls_handshake_timeout_ms);
		kx_sock_want(s->client.sock.rev, &s->client.sock.reading, true, &limit);
		return;
	} else {
		kx_client_set_state(s, KX_CLIENT_OPEN);
		kx_update_reading(s);
	}
	kx_upstream_begin(s);
}
