/*
 * session: the client and upstream state machines of mapped mode.
 * (Diagram and rules in session.h.)
 */
#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "log.h"
#include "metrics.h"
#include "rewrite.h"
#include "skip.h"
#include "topology.h"
#include "worker.h"

/* A side's output above this stops reading from the other side. */
#define KX_HIGH_WATERMARK (4u * 1024 * 1024)
#define KX_LOW_WATERMARK  (1u * 1024 * 1024)

static void kx_client_read(struct bufferevent *bev, void *arg);
static void kx_client_write(struct bufferevent *bev, void *arg);
static void kx_client_event(struct bufferevent *bev, short what, void *arg);
static void kx_upstream_read(struct bufferevent *bev, void *arg);
static void kx_upstream_write(struct bufferevent *bev, void *arg);
static void kx_upstream_event(struct bufferevent *bev, short what, void *arg);

/* ---- state ------------------------------------------------------------- */

static const char *kx_client_state_name(enum kx_client_state st)
{
	switch (st) {
	case KX_CLIENT_OPEN: return "open";
	case KX_CLIENT_DRAINING: return "draining";
	case KX_CLIENT_CLOSED: return "closed";
	}
	return "?";
}

static const char *kx_upstream_state_name(enum kx_upstream_state st)
{
	switch (st) {
	case KX_UPSTREAM_CONNECTING: return "connecting";
	case KX_UPSTREAM_READY: return "ready";
	case KX_UPSTREAM_CLOSED: return "closed";
	}
	return "?";
}

static void kx_client_set_state(struct kx_session *s, enum kx_client_state st)
{
	kx_debug("session %s: client %s -> %s", s->client.addr, kx_client_state_name(s->client.state),
	         kx_client_state_name(st));
	s->client.state = st;
}

static void kx_upstream_set_state(struct kx_session *s, enum kx_upstream_state st)
{
	kx_debug("session %s: upstream %s %s -> %s", s->client.addr, s->up.addr, kx_upstream_state_name(s->up.state),
	         kx_upstream_state_name(st));
	s->up.state = st;
}

/* ---- lifecycle --------------------------------------------------------- */

static void kx_session_free(struct kx_session *s)
{
	if (s->client.bev)
		bufferevent_free(s->client.bev);
	if (s->up.bev)
		bufferevent_free(s->up.bev);
	kp_peek_release(&s->peek);
	kx_worker_remove_session(s->worker, s);
	KX_METRIC_SUB(connections_active, 1);
	free(s->fifo);
	free(s);
}

void kx_session_close(struct kx_session *s, const char *why)
{
	kx_debug("session %s -> %s closed: %s (%u requests in flight)", s->client.addr, s->up.addr, why, s->fifo_cnt);
	kx_client_set_state(s, KX_CLIENT_CLOSED);
	kx_upstream_set_state(s, KX_UPSTREAM_CLOSED);
	kx_session_free(s);
}

/* Upstream is gone: answer what was answered, then close the client. */
static void kx_session_upstream_lost(struct kx_session *s, const char *why)
{
	if (s->client.state == KX_CLIENT_CLOSED) {
		kx_session_close(s, why); /* nobody left to answer */
		return;
	}
	if (s->up.bev) {
		bufferevent_free(s->up.bev);
		s->up.bev = NULL;
	}
	kx_upstream_set_state(s, KX_UPSTREAM_CLOSED);
	if (s->fifo_cnt)
		kx_warn("session %s: upstream %s lost (%s) with %u requests unanswered; closing the client",
		        s->client.addr, s->up.addr, why, s->fifo_cnt);
	else
		kx_debug("session %s: upstream %s closed (%s)", s->client.addr, s->up.addr, why);
	if (evbuffer_get_length(bufferevent_get_output(s->client.bev)) == 0) {
		kx_session_close(s, why);
		return;
	}
	kx_client_set_state(s, KX_CLIENT_DRAINING);
	bufferevent_disable(s->client.bev, EV_READ);
	bufferevent_setwatermark(s->client.bev, EV_WRITE, 0, 0);
}

/* Whether the session owes its client nothing: no request awaiting its
 * answer, none half forwarded, no answer half passed on. */
static bool kx_session_quiet(const struct kx_session *s)
{
	return s->fifo_cnt == 0 && s->client.req_left == 0 && s->up.resp_left == 0;
}

/*
 * While the worker stops, a quiet session lets its upstream go, flushes what
 * it answered and closes. Returns true when it did so (s may be gone).
 */
static bool kx_session_finish_if_stopping(struct kx_session *s)
{
	if (!s->worker->stopping || s->client.state != KX_CLIENT_OPEN || !kx_session_quiet(s))
		return false;
	kx_session_upstream_lost(s, "shutdown");
	return true;
}

void kx_session_shutdown(struct kx_session *s)
{
	kx_session_finish_if_stopping(s);
}

static struct timeval kx_ms_timeval(int ms)
{
	return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

/*
 * The client closed. What it sent and kstretch already queued upstream is
 * still delivered (a Produce with acks=0 has no answer to wait for, only
 * bytes to pass on, and a client may close right after writing it); then the
 * session closes. Answers still to come are of no use: stop reading them.
 */
static void kx_session_client_gone(struct kx_session *s)
{
	kx_client_set_state(s, KX_CLIENT_CLOSED);
	bufferevent_disable(s->client.bev, EV_READ | EV_WRITE);
	size_t pending = s->up.bev ? evbuffer_get_length(bufferevent_get_output(s->up.bev)) : 0;
	if (pending == 0 || s->client.req_left) {
		kx_session_close(s, "client closed"); /* nothing to deliver, or only a cut-off request */
		return;
	}
	kx_debug("session %s: client closed; delivering its last %zu bytes to %s", s->client.addr, pending, s->up.addr);
	struct timeval t = kx_ms_timeval(s->worker->cfg->connect_timeout_ms);
	bufferevent_disable(s->up.bev, EV_READ);
	bufferevent_setwatermark(s->up.bev, EV_WRITE, 0, 0);
	bufferevent_set_timeouts(s->up.bev, NULL, &t);
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
	kx_warn("session %s -> %s: malformed %s: %s; closing", s->client.addr, s->up.addr, side, what);
	KX_METRIC_ADD(protocol_errors, 1);
	kx_session_close(s, "protocol error");
}

/* ---- requests: client -> upstream -------------------------------------- */

/* Acks of a Produce request (after its header); -2 when not yet buffered,
 * -3 when the TransactionalId before it is malformed. */
static int kx_produce_acks(struct evbuffer *in, const struct kp_peek *p)
{
	uint8_t b[8];
	size_t at = 4 + p->req.size, end = 4 + (size_t)p->frame_size;
	struct evbuffer_ptr pos;
	int16_t v = p->req.api_version;
	if (v >= 3) {
		/* TransactionalId: nullable string, compact from v9. Never read past this frame. */
		size_t want = end - at < 5 ? end - at : 5;
		ev_ssize_t got;
		if (want < 1)
			return -3;
		if (evbuffer_ptr_set(in, &pos, at, EVBUFFER_PTR_SET) < 0 ||
		    (got = evbuffer_copyout_from(in, &pos, b, want)) < 1)
			return -2;
		if (v >= 9) {
			struct kp_cursor c;
			kp_cursor_init(&c, b, (size_t)got);
			uint32_t n = kp_read_uvarint(&c, "TransactionalId");
			if (!kp_cursor_ok(&c))
				return c.err == KP_ERR_TRUNCATED && (size_t)got < want ? -2 : -3;
			at += c.pos + (n ? n - 1 : 0);
		} else {
			if (got < 2)
				return want < 2 ? -3 : -2;
			int16_t n = (int16_t)(b[0] << 8 | b[1]);
			if (n < -1)
				return -3; /* a negative length other than null: malformed */
			at += 2 + (n > 0 ? (size_t)n : 0);
		}
	}
	if (at + 2 > end)
		return -3; /* the length points past this frame (maybe into the next one) */
	if (evbuffer_ptr_set(in, &pos, at, EVBUFFER_PTR_SET) < 0 || evbuffer_copyout_from(in, &pos, b, 2) != 2)
		return -2;
	return (int16_t)(b[0] << 8 | b[1]);
}

/* The size a frame at the front of in announces (its first 4 bytes are
 * there): what a malformed frame said, for the log. */
static int32_t kx_announced_size(struct evbuffer *in)
{
	uint8_t b[4] = {0};
	evbuffer_copyout(in, b, 4);
	return (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3]);
}

static bool kx_fifo_push(struct kx_session *s, struct kx_inflight e)
{
	if (s->fifo_cnt == s->fifo_cap)
		return false;
	s->fifo[(s->fifo_head + s->fifo_cnt) % s->fifo_cap] = e;
	s->fifo_cnt++;
	return true;
}

/* Moves up to n bytes from in to out; returns how many moved. */
static size_t kx_move(struct evbuffer *in, struct evbuffer *out, uint64_t n)
{
	size_t have = evbuffer_get_length(in);
	size_t m = n < have ? (size_t)n : have;
	if (m)
		evbuffer_remove_buffer(in, out, m);
	return m;
}

/*
 * Moves the client's buffered requests upstream. Returns false when the
 * session was closed (or is closing) on the way: then s must not be touched.
 */
static bool kx_client_pump(struct kx_session *s)
{
	struct bufferevent *bev = s->client.bev;
	struct evbuffer *in = bufferevent_get_input(bev);
	const struct kx_config *cfg = s->worker->cfg;

	if (s->client.state != KX_CLIENT_OPEN || !s->up.bev)
		return true;
	struct evbuffer *out = bufferevent_get_output(s->up.bev);
	for (;;) {
		if (s->client.req_left) {
			size_t m = kx_move(in, out, s->client.req_left);
			KX_METRIC_ADD(bytes_from_clients, m);
			s->client.req_left -= m;
			if (s->client.req_left)
				break;
		}
		if (s->worker->stopping) {
			/* Shutting down: no new request; close after the last answer. */
			bufferevent_disable(bev, EV_READ);
			return !kx_session_finish_if_stopping(s);
		}
		enum kp_frame_status st = kp_peek_request(in, cfg->max_frame_bytes, &s->peek);
		if (st == KP_FRAME_INCOMPLETE)
			break;
		if (st == KP_FRAME_MALFORMED) {
			int32_t announced = kx_announced_size(in);
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
			int acks = kx_produce_acks(in, &s->peek);
			if (acks == -2 && !s->peek.whole)
				break; /* the acks field has not arrived yet */
			if (acks < -1) {
				kx_protocol_error(s, "request", "Produce v%d (corr %d): cannot read acks",
				                  h->api_version, h->correlation_id);
				return false;
			}
			expects = acks != 0;
		}
		if (expects) {
			if (s->fifo_cnt == s->fifo_cap) {
				/* Wait for answers before reading more (max.inflight.requests). */
				bufferevent_disable(bev, EV_READ);
				s->reading_paused_inflight = true;
				break;
			}
			kx_fifo_push(s, (struct kx_inflight){h->correlation_id, h->api_key, h->api_version,
			                                     kx_rewrite_needed(h->api_key, h->api_version)});
		}
		KX_METRIC_ADD(requests_forwarded, 1);
		uint64_t frame = 4 + (uint64_t)s->peek.frame_size;
		size_t m = kx_move(in, out, frame);
		KX_METRIC_ADD(bytes_from_clients, m);
		s->client.req_left = frame - m;
		if (s->client.req_left)
			break;
	}
	if (evbuffer_get_length(out) > KX_HIGH_WATERMARK)
		bufferevent_disable(bev, EV_READ); /* upstream is slow: stop reading the client */
	return true;
}

static void kx_client_read(struct bufferevent *bev, void *arg)
{
	(void)bev;
	kx_client_pump(arg);
}

static void kx_upstream_write(struct bufferevent *bev, void *arg)
{
	struct kx_session *s = arg;
	if (s->client.state == KX_CLIENT_CLOSED) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			kx_session_close(s, "client closed, its requests delivered");
		return;
	}
	/* Below the low watermark again: read the client (unless at max in flight). */
	if (s->client.state == KX_CLIENT_OPEN && !s->reading_paused_inflight)
		bufferevent_enable(s->client.bev, EV_READ);
}

/* ---- responses: upstream -> client ------------------------------------- */

struct kx_hold {
	int refs;
	uint8_t data[];
};

static void kx_hold_unref(const void *data, size_t len, void *arg)
{
	struct kx_hold *h = arg;
	(void)data;
	(void)len;
	if (--h->refs == 0)
		free(h);
}

/* Takes a whole response frame out of in, rewrites it, queues it on out. */
static bool kx_respond_rewritten(struct kx_session *s, struct evbuffer *in, struct evbuffer *out, int32_t size,
                                 const struct kx_inflight *e)
{
	struct kx_rewriter *rw = &s->worker->rewriter;
	struct kx_hold *h = malloc(sizeof(*h) + 4 + (size_t)size);
	if (!h) {
		kx_error("session %s: out of memory for a %d-byte response", s->client.addr, size);
		return false;
	}
	h->refs = 1;
	evbuffer_remove(in, h->data, 4 + (size_t)size);
	KX_METRIC_ADD(bytes_from_brokers, 4 + (size_t)size);
	KX_METRIC_ADD(bytes_copied, 4 + (size_t)size);

	if (!kx_rewrite_response(rw, s->worker->cfg, e->api_key, e->api_version, h->data + 4, (size_t)size)) {
		const struct kp_api *api = kp_api_get(e->api_key);
		kx_protocol_error(s, "response", "%s v%d (corr %d): %s at byte %zu reading %s", api ? api->name : "?",
		                  e->api_version, e->correlation_id, kp_error_name(rw->cur.err), rw->cur.err_pos + 4,
		                  rw->cur.err_field ? rw->cur.err_field : "?");
		free(h);
		return false;
	}
	if (rw->seen_cnt && kx_topology_merge(s->worker->cfg, rw->seen, rw->seen_cnt))
		kx_debug("session %s: topology updated from a %s response", s->client.addr,
		         kp_api_get(e->api_key)->name);

	/* Size, then the segments: owned bytes copied, references to the held frame. */
	struct kp_writer *w = &rw->out;
	kp_writer_finish(w);
	uint8_t size_be[4];
	uint32_t total = (uint32_t)kp_writer_size(w);
	size_be[0] = (uint8_t)(total >> 24);
	size_be[1] = (uint8_t)(total >> 16);
	size_be[2] = (uint8_t)(total >> 8);
	size_be[3] = (uint8_t)total;
	evbuffer_add(out, size_be, 4);
	for (size_t i = 0; i < w->nsegs; i++) {
		const struct kp_segment *seg = &w->segs[i];
		if (!seg->ref) {
			evbuffer_add(out, w->buf + seg->off, seg->len);
			KX_METRIC_ADD(bytes_copied, seg->len);
		} else {
			h->refs++;
			evbuffer_add_reference(out, seg->ref, seg->len, kx_hold_unref, h);
		}
	}
	kx_hold_unref(NULL, 0, h);
	KX_METRIC_ADD(responses_rewritten, 1);
	KX_METRIC_ADD(addresses_rewritten, rw->addresses);
	kx_debug("session %s: %s v%d (corr %d) rewritten: %d broker addresses -> kstretch listeners", s->client.addr,
	         kp_api_get(e->api_key)->name, e->api_version, e->correlation_id, rw->addresses);
	return true;
}

/*
 * Fetch v16+ and Produce v10+ responses name brokers only in their top-level
 * tagged fields, after all record batches. Walk the buffered frame in place
 * (record batches skipped by length, nothing copied): true when there is no
 * tagged field at all, so the frame can pass through unchanged.
 */
_Static_assert(sizeof(struct evbuffer_iovec) == sizeof(struct iovec) &&
                   offsetof(struct evbuffer_iovec, iov_len) == offsetof(struct iovec, iov_len),
               "evbuffer_iovec must match struct iovec");

static bool kx_no_endpoints(struct evbuffer *in, int32_t size, const struct kx_inflight *e)
{
	if (e->api_key != KP_API_FETCH && e->api_key != KP_API_PRODUCE)
		return false;
	const struct kp_api *api = kp_api_get(e->api_key);
	if (!kp_api_decodes(api, e->api_version, false))
		return false;
	struct evbuffer_iovec stack[32], *vec = stack;
	size_t len = 4 + (size_t)size;
	int n = evbuffer_peek(in, (ev_ssize_t)len, NULL, NULL, 0);
	if (n > 32 && !(vec = malloc((size_t)n * sizeof(*vec))))
		return false;
	n = evbuffer_peek(in, (ev_ssize_t)len, NULL, vec, n);
	/* The last piece may run past this frame: limit the walk to the frame. */
	struct kp_pieces p;
	uint32_t tags = 1;
	kp_pieces_init(&p, (const struct iovec *)vec, n, len);
	bool ok = kp_pieces_skip(&p, 4 + 4, "size, correlation_id");
	if (ok && kp_response_header_version(e->api_key, e->api_version) >= 1) {
		uint8_t zero;
		ok = kp_pieces_read(&p, &zero, 1, "header tags") &&
		     zero == 0; /* header tags: rare, take the slow path */
	}
	ok = ok && kp_skip_to_tags(&p, api->response, e->api_version, true, &tags);
	if (vec != stack)
		free(vec);
	return ok && tags == 0;
}

static void kx_upstream_read(struct bufferevent *bev, void *arg)
{
	struct kx_session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(s->client.bev);
	const struct kx_config *cfg = s->worker->cfg;

	for (;;) {
		if (s->up.resp_left) {
			size_t m = kx_move(in, out, s->up.resp_left);
			KX_METRIC_ADD(bytes_from_brokers, m);
			s->up.resp_left -= m;
			if (s->up.resp_left)
				break;
		}
		int32_t size, corr;
		bool whole;
		enum kp_frame_status st = kp_peek_response(in, cfg->max_frame_bytes, &size, &corr, &whole);
		if (st == KP_FRAME_INCOMPLETE)
			break;
		if (st == KP_FRAME_MALFORMED) {
			kx_protocol_error(s, "response", "frame size %d outside 4..%lld (max.frame.bytes)",
			                  kx_announced_size(in), (long long)cfg->max_frame_bytes);
			return;
		}
		if (s->fifo_cnt == 0 || s->fifo[s->fifo_head].correlation_id != corr) {
			kx_protocol_error(s, "response", "correlation id %d does not answer the oldest request (%s)",
			                  corr, s->fifo_cnt ? "expected another id" : "no request in flight");
			return;
		}
		struct kx_inflight e = s->fifo[s->fifo_head];
		if (e.rewrite && !whole)
			break; /* rewritten responses are taken whole */
		if (e.rewrite && kx_no_endpoints(in, size, &e))
			e.rewrite = false; /* nothing to rewrite: it moves on untouched */
		if (e.rewrite) {
			if (!kx_respond_rewritten(s, in, out, size, &e))
				return; /* the session is closed */
		} else {
			KX_METRIC_ADD(responses_forwarded, 1);
			uint64_t frame = 4 + (uint64_t)size;
			size_t m = kx_move(in, out, frame);
			KX_METRIC_ADD(bytes_from_brokers, m);
			s->up.resp_left = frame - m;
		}
		s->fifo_head = (s->fifo_head + 1) % s->fifo_cap;
		s->fifo_cnt--;
		if (s->reading_paused_inflight && s->client.state == KX_CLIENT_OPEN) {
			s->reading_paused_inflight = false;
			bufferevent_enable(s->client.bev, EV_READ);
			if (!kx_client_pump(s)) /* requests already buffered */
				return;
		}
		if (s->up.resp_left)
			break;
	}
	if (kx_session_finish_if_stopping(s))
		return; /* the last answer is on its way to the client */
	if (evbuffer_get_length(out) > KX_HIGH_WATERMARK)
		bufferevent_disable(bev, EV_READ); /* the client is slow: stop reading the broker */
}

static void kx_client_write(struct bufferevent *bev, void *arg)
{
	struct kx_session *s = arg;
	if (s->client.state == KX_CLIENT_DRAINING) {
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			kx_session_close(s, "upstream closed, answers flushed");
		return;
	}
	if (s->up.bev && s->up.state != KX_UPSTREAM_CLOSED)
		bufferevent_enable(s->up.bev, EV_READ);
}

/* ---- events ------------------------------------------------------------ */

static void kx_client_event(struct bufferevent *bev, short what, void *arg)
{
	struct kx_session *s = arg;
	(void)bev;
	if (what & BEV_EVENT_TIMEOUT) {
		kx_info("session %s: idle for idle.timeout.ms; closing", s->client.addr);
		kx_session_close(s, "idle timeout");
	} else if (what & BEV_EVENT_ERROR) {
		kx_debug("session %s: client error: %s", s->client.addr,
		         evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		kx_session_close(s, "client error");
	} else if (what & BEV_EVENT_EOF) {
		kx_session_client_gone(s);
	}
}

static void kx_upstream_event(struct bufferevent *bev, short what, void *arg)
{
	struct kx_session *s = arg;
	if (s->up.in_connect_call) {
		s->up.failed_in_call = !(what & BEV_EVENT_CONNECTED);
		if (!s->up.failed_in_call)
			kx_upstream_set_state(s, KX_UPSTREAM_READY);
		return;
	}
	if (what & BEV_EVENT_CONNECTED) {
		kx_upstream_set_state(s, KX_UPSTREAM_READY);
		/* Delivering a closed client's last requests stays bounded in time. */
		struct timeval t = kx_ms_timeval(s->worker->cfg->connect_timeout_ms);
		bufferevent_set_timeouts(bev, NULL, s->client.state == KX_CLIENT_CLOSED ? &t : NULL);
		return;
	}
	if (s->up.state == KX_UPSTREAM_CONNECTING) {
		int dns_err = bufferevent_socket_get_dns_error(bev);
		KX_METRIC_ADD(upstream_connect_failures, 1);
		kx_warn("session %s: cannot connect to %s: %s", s->client.addr, s->up.addr,
		        (what & BEV_EVENT_TIMEOUT) ? "connect timeout"
		        : dns_err                  ? evutil_gai_strerror(dns_err)
		                                   : evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		kx_session_upstream_lost(s, "connect failed");
		return;
	}
	if (what & BEV_EVENT_EOF)
		kx_session_upstream_lost(s, "broker closed the connection");
	else
		kx_session_upstream_lost(s, (what & BEV_EVENT_TIMEOUT) ? "timeout" : "connection error");
}

/* ---- start ------------------------------------------------------------- */

static void kx_format_addr(const struct sockaddr *sa, char *out, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, len, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, len, "[%s]:%d", host, port);
	} else {
		snprintf(out, len, "?");
	}
}

void kx_session_start(struct kx_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen, int32_t node_id)
{
	const struct kx_config *cfg = w->cfg;
	struct kx_session *s = calloc(1, sizeof(*s));
	(void)salen;
	if (s)
		s->fifo = calloc((size_t)cfg->max_inflight_requests, sizeof(*s->fifo));
	if (!s || !s->fifo) {
		kx_error("out of memory for a new session; refusing the connection");
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->worker = w;
	s->fifo_cap = (uint32_t)cfg->max_inflight_requests;
	s->up.node_id = node_id;
	kx_format_addr(sa, s->client.addr, sizeof(s->client.addr));
	KX_METRIC_ADD(connections_accepted, 1);
	KX_METRIC_ADD(connections_active, 1);
	kx_worker_add_session(w, s);

	/* Where to: the node this listener maps to, or a bootstrap server. */
	const char *host;
	uint16_t port;
	struct kx_topology *t = kx_topology_get();
	const struct kx_broker *b = node_id >= 0 ? kx_topology_broker(t, node_id) : NULL;
	if (node_id >= 0 && !b) {
		kx_warn("session %s: node %d is not in the topology; closing", s->client.addr, node_id);
		kx_topology_put(t);
		evutil_closesocket(fd);
		kx_session_free(s);
		return;
	}
	char hostbuf[KX_HOST_MAX];
	if (b) {
		snprintf(hostbuf, sizeof(hostbuf), "%s", b->host);
		port = b->port;
	} else {
		const struct kx_hostport *hp = &cfg->bootstrap[w->bootstrap_next++ % cfg->bootstrap_cnt];
		snprintf(hostbuf, sizeof(hostbuf), "%s", hp->host);
		port = hp->port;
	}
	kx_topology_put(t);
	host = hostbuf;
	if (node_id >= 0)
		snprintf(s->up.addr, sizeof(s->up.addr), "node %d (%s:%u)", node_id, host, port);
	else
		snprintf(s->up.addr, sizeof(s->up.addr), "bootstrap %s:%u", host, port);

	s->client.bev = bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE);
	s->up.bev = bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (!s->client.bev || !s->up.bev) {
		kx_error("session %s: cannot create buffers; closing", s->client.addr);
		if (!s->client.bev)
			evutil_closesocket(fd);
		kx_session_close(s, "out of memory");
		return;
	}
	kx_client_set_state(s, KX_CLIENT_OPEN);
	kx_upstream_set_state(s, KX_UPSTREAM_CONNECTING);
	bufferevent_setcb(s->client.bev, kx_client_read, kx_client_write, kx_client_event, s);
	bufferevent_setcb(s->up.bev, kx_upstream_read, kx_upstream_write, kx_upstream_event, s);
	bufferevent_setwatermark(s->client.bev, EV_WRITE, KX_LOW_WATERMARK, 0);
	bufferevent_setwatermark(s->up.bev, EV_WRITE, KX_LOW_WATERMARK, 0);
	struct timeval idle = kx_ms_timeval(cfg->idle_timeout_ms);
	struct timeval conn = kx_ms_timeval(cfg->connect_timeout_ms);
	bufferevent_set_timeouts(s->client.bev, &idle, NULL);
	bufferevent_set_timeouts(s->up.bev, &conn, &conn);
	bufferevent_enable(s->client.bev, EV_READ | EV_WRITE);
	bufferevent_enable(s->up.bev, EV_READ | EV_WRITE);
	kx_debug("session %s: accepted, upstream %s", s->client.addr, s->up.addr);
	/* A connect can fail inside the call: its event callback then only notes it. */
	s->up.in_connect_call = true;
	int r = bufferevent_socket_connect_hostname(s->up.bev, w->dns, AF_UNSPEC, host, port);
	s->up.in_connect_call = false;
	if (r < 0 || s->up.failed_in_call) {
		KX_METRIC_ADD(upstream_connect_failures, 1);
		kx_warn("session %s: cannot connect to %s: %s", s->client.addr, s->up.addr,
		        evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
		kx_session_close(s, "connect failed");
	}
}
