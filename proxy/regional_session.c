/*
 * regional_session: mode=regional's client sessions (regional_session.h).
 * (Named apart from routing/regional.h, the virtual cluster's layout, which
 * shares the include path.)
 *
 * Convention (session.c's): a function that may close the session returns
 * bool, false when it did; the caller then returns at once.
 */
#include "regional_session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <openssl/crypto.h>

#include "api.h"
#include "bootstrap.h"
#include "configs.h"
#include "conn.h"
#include "coordinator.h"
#include "describeproducers.h"
#include "header.h"
#include "log.h"
#include "messages.h"
#include "metrics.h"
#include "peek.h"
#include "pool.h"
#include "refsplit.h"
#include "keysplit.h"
#include "regional.h"
#include "regional_api.h"
#include "regional_auth.h"
#include "rewrite.h"
#include "split.h"
#include "tls.h"
#include "topology.h"
#include "virtual_metadata.h"
#include "worker.h"

#define KX_R_HIGH_WATERMARK (4u * 1024 * 1024)
#define KX_R_LOW_WATERMARK  (1u * 1024 * 1024)
#define KX_R_FIFO_FIRST     8

#define KX_ERR_NOT_LEADER_OR_FOLLOWER 6
#define KX_ERR_UNKNOWN_TOPIC_ID       100
#define KX_R_REFRESH_MIN_MS           200 /* a worker's own Metadata requests: at most one this often */
#define KX_R_HEADER_MAX               64  /* response header bytes read: a correlation id and tagged fields */

#define kx_rlog(level, s, fmt, ...)                                                                                    \
	do {                                                                                                           \
		if (kx_log_enabled(level)) {                                                                           \
			struct kx_log_id kx_id_ = kx_session_log_id(s);                                                \
			kx_log_at(level, &kx_id_, 0, "regional %s: " fmt, (s)->client.addr, ##__VA_ARGS__);            \
		}                                                                                                      \
	} while (0)
#define kx_rdebug(s, ...) kx_rlog(KX_LOG_DEBUG, s, __VA_ARGS__)
#define kx_rinfo(s, ...)  kx_rlog(KX_LOG_INFO, s, __VA_ARGS__)
#define kx_rwarn(s, ...)  kx_rlog(KX_LOG_WARN, s, __VA_ARGS__)
/* A line a broker outage or a flood of bad clients would repeat per request (log.h). */
#define kx_rlimited(level, s, fmt, ...)                                                                                \
	do {                                                                                                           \
		struct kx_log_id kx_lid_ = kx_session_log_id(s);                                                       \
		kx_log_limited(level, &kx_lid_, "regional %s: " fmt, (s)->client.addr, ##__VA_ARGS__);                 \
	} while (0)

/* One part of a client request, sent to one broker. */
struct kx_rfrag {
	int32_t dest;         /* the destination index of the split (topology broker index); -1: whole */
	int32_t node;         /* the broker it went to (for logs) */
	struct kx_frame resp; /* its answer, where it was read (len 0: not in yet, or failed) */
	size_t body_at;       /* where the answer's body starts, after its response header (0: not read yet) */
	bool done;
	uint8_t leader_ridx; /* Fetch: the region of its partitions' leaders when all are elsewhere (metrics) */
};

/* A client request awaiting its answer, in client order (the session's fifo holds pointers). */
struct kx_rreq {
	struct kp_request_header hdr; /* spans point into req's bytes */
	const struct kp_api *api;
	bool flexible;
	struct kx_frame req; /* the client's frame, where it was read: the parts reference it */
	uint16_t nfrag, left;
	struct kx_rfrag *frag;
	struct kp_arena arena; /* the decoded request, the split, the decoded answers */
	struct kp_split split; /* Produce, ListOffsets, OffsetForLeaderEpoch, DeleteRecords: the client's order */
	const struct kp_split_layout *layout;
	struct kp_fetch_want *want; /* Fetch: what the client asked for, in its order */
	size_t nwant;
	/* The split's destinations, numbered per request in the order their
	 * brokers are met (kx_rdest_of): a split is as wide as the brokers its
	 * partitions go to, at most KP_SPLIT_MAX_DEST, whatever the cluster's size. */
	int ndest;          /* room: the topology's brokers, at most KP_SPLIT_MAX_DEST */
	int nused;          /* destinations numbered */
	int32_t *dest_of;   /* per topology broker index: its destination, or -1 */
	int32_t *broker_of; /* per destination: its topology broker index */
	bool too_wide;      /* partitions on more brokers than KP_SPLIT_MAX_DEST: the rest routed nowhere */
	bool parked;        /* waiting, unsent, for the worker's Metadata refresh (kx_rpark) */
	bool parked_once;   /* it parked for a partition of its own: it does not again */
	bool noanswer;      /* sent, and owed nothing (Produce acks=0): dropped when it reaches the head */
	/* A group or transaction request: the key its coordinator is found by
	 * (pointing into req's bytes, or for the worker's own lookup its arena). */
	bool coord;
	int8_t coord_type;
	struct kp_span coord_key;
	/* A request naming several keys, or a listing naming none (keysplit.h):
	 * its layout, the client's decoded request, and where each key went. */
	const struct kp_keysplit_layout *klayout;
	struct kp_struct *kreq;
	int32_t *kdest;
	struct kx_timing tm; /* kstretch_request_duration_seconds */
	/* A config request (configs.h): where its resources went, and the real
	 * broker its node's broker resources were renamed to (-1: none named). */
	bool cfg;
	struct kp_configs_route cfg_route;
	int32_t cfg_real;
	/* Answered by the node itself (SaslHandshake, SaslAuthenticate): the response body, in arena. */
	bool local;
	bool raw; /* a raw SASL token after SaslHandshake v0: no request header, answered by a raw token */
	struct kp_span local_body;
};

struct kx_rscratch {
	struct kp_writer out, body;
	struct kp_produce_split produce;
	struct kp_fetch_merge fetch;
};

static const struct kx_sasl_users *kx_rusers;

void kx_regional_set_users(const struct kx_sasl_users *users)
{
	kx_rusers = users;
}

static void kx_rclient_readable(evutil_socket_t fd, short what, void *arg);
static void kx_rclient_writable(evutil_socket_t fd, short what, void *arg);
static void kx_rclient_handshake(struct kx_session *s, short what);
KX_MUST_CHECK static bool kx_rpump(struct kx_session *s);
KX_MUST_CHECK static bool kx_regional_advance(struct kx_session *s);
KX_MUST_CHECK static bool kx_rdispatch(struct kx_session *s, struct kx_rreq *q);
static void kx_rresume_all(struct kx_worker *w);
static bool kx_rbody(const struct kx_rreq *q, struct kx_rfrag *f, size_t *body_at);
KX_MUST_CHECK static bool kx_radmin(struct kx_session *s, struct kx_rreq *q);
static bool kx_ranswer_configs(struct kx_session *s, struct kx_rreq *q);
static bool kx_ranswer_describe_cluster(struct kx_session *s, struct kx_rreq *q, size_t at);

void kx_rscratch_free(struct kx_rscratch *r)
{
	if (!r)
		return;
	kp_writer_free(&r->out);
	kp_writer_free(&r->body);
	kp_produce_split_free(&r->produce);
	kp_fetch_merge_free(&r->fetch);
	free(r);
}

static struct kx_rscratch *kx_rscratch(struct kx_worker *w)
{
	if (!w->rscratch && (w->rscratch = calloc(1, sizeof(*w->rscratch)))) {
		kp_writer_init(&w->rscratch->out);
		kp_writer_init(&w->rscratch->body);
		kp_produce_split_init(&w->rscratch->produce);
		kp_fetch_merge_init(&w->rscratch->fetch);
	}
	return w->rscratch;
}

/* ---- requests in flight -------------------------------------------------- */

static void kx_rreq_free(struct kx_rreq *q)
{
	if (!q)
		return;
	for (uint16_t i = 0; i < q->nfrag; i++)
		kx_frame_release(&q->frag[i].resp);
	free(q->frag);
	kx_frame_release(&q->req);
	kp_arena_free(&q->arena);
	free(q);
}

static struct kx_rreq *kx_rreq_head(const struct kx_session *s)
{
	struct kx_rreq **q = kx_ring_head(&s->fifo);
	return q ? *q : NULL;
}

/* ---- the client's socket -------------------------------------------------- */

/* Reads the client while it may send, its answers have room and fewer than max.inflight.requests wait. */
static void kx_rupdate_reading(struct kx_session *s)
{
	size_t ready = kx_flow_ready(&s->resp);
	if (ready >= KX_R_HIGH_WATERMARK)
		s->resp.full = true;
	else if (ready < KX_R_LOW_WATERMARK)
		s->resp.full = false;
	bool room = !s->resp.full && s->fifo.cnt < (uint32_t)s->worker->cfg->max_inflight_requests && !s->rclosing;
	struct timeval idle = kx_ms_timeval(s->worker->cfg->idle_timeout_ms);
	if (s->client.state == KX_CLIENT_HANDSHAKE)
		return; /* the handshake sets its own events */
	/* A TLS write waiting for the socket to be readable needs it read. */
	kx_sock_want(s->client.sock.rev, &s->client.sock.reading,
	             (s->client.state == KX_CLIENT_OPEN && room && !s->worker->stopping) ||
	                 (s->client.sock.tr.blocked & KX_TR_WRITE_WANTS_READ),
	             &idle);
	kx_sock_read_pending(&s->client.sock); /* decrypted requests inside TLS: no event would come for them */
}

/* Whether the client's socket is written: while answers wait (unless their TLS
 * write waits to read), or a TLS read waits for it. The write event's timeout
 * is write.timeout.ms. */
static void kx_rwant_write(struct kx_session *s)
{
	struct timeval stall = kx_ms_timeval(s->worker->cfg->write_timeout_ms);
	kx_sock_want(s->client.sock.wev, &s->client.sock.writing,
	             kx_sock_wants_write(&s->client.sock, kx_flow_ready(&s->resp) > 0), &stall);
}

void kx_regional_close(struct kx_session *s, const char *why)
{
	struct kx_worker *w = s->worker;
	kx_rdebug(s, "closed: %s (%u requests in flight)", why, s->fifo.cnt);
	kx_metrics_closed(why);
	kx_conns_remove(&s->stat);
	s->client.state = KX_CLIENT_CLOSED;
	kx_pool_forget(&w->pool, s);
	bool refresh_dropped = w->rrefresh_owner == s;
	if (refresh_dropped) { /* its answer would come to s: dropped with s's other parts */
		kx_rreq_free(w->rrefresh);
		w->rrefresh = NULL;
		w->rrefresh_owner = NULL;
	}
	if (w->rlookup_owner == s) { /* the same for its own FindCoordinator */
		kx_rreq_free(w->rlookup);
		w->rlookup = NULL;
		w->rlookup_owner = NULL;
	}
	for (struct kx_rreq *q; (q = kx_rreq_head(s));) {
		kx_rreq_free(q);
		kx_ring_pop(&s->fifo);
	}
	kx_sock_close(&s->client.sock);
	kx_flow_free(&s->req);
	kx_flow_free(&s->resp);
	kp_peek_release(&s->peek);
	if (s->rauth) {
		kx_rauth_free(s->rauth);
		free(s->rauth);
	}
	kx_ring_free(&s->fifo);
	kx_worker_remove_session(w, s);
	KX_METRIC_SUB(connections_active, 1);
	free(s);
	if (refresh_dropped)
		kx_rresume_all(w); /* other sessions' parked requests waited for it: they go as things are */
}

/* Writes the answers ready; false when the session closed. */
KX_MUST_CHECK static bool kx_rflush_client(struct kx_session *s)
{
	size_t before = kx_flow_ready(&s->resp);
	bool wrote = kx_flow_write(&s->resp, &s->client.sock.tr);
	size_t after = kx_flow_ready(&s->resp);
	kx_conn_count(&s->stat.bytes_out, before > after ? before - after : 0);
	if (!wrote) {
		kx_rdebug(s, "cannot write to the client: %s", strerror(errno));
		kx_regional_close(s, "client write error");
		return false;
	}
	bool more = kx_flow_ready(&s->resp) > 0;
	if (!more && s->rclosing && s->fifo.cnt == 0) {
		kx_regional_close(s, "authentication refused");
		return false;
	}
	if (!more && s->worker->stopping && s->fifo.cnt == 0) {
		kx_regional_close(s, "shutdown");
		return false;
	}
	kx_rwant_write(s);
	return true;
}

void kx_regional_shutdown(struct kx_session *s)
{
	if (s->fifo.cnt == 0 && kx_flow_ready(&s->resp) == 0) {
		kx_regional_close(s, "shutdown");
		return;
	}
	kx_rupdate_reading(s); /* no new request; closes after the last answer */
}

static void kx_rclient_writable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_session *s = arg;
	(void)fd;
	if (s->client.state == KX_CLIENT_HANDSHAKE) {
		kx_rclient_handshake(s, what);
		return;
	}
	if (what & EV_TIMEOUT) {
		kx_rinfo(s, "took none of its %zu bytes of answers in write.timeout.ms; closing", kx_flow_ready(&s->resp));
		KX_METRIC_ADD(write_timeouts, 1);
		kx_regional_close(s, "write timeout");
		return;
	}
	bool reread = s->client.sock.tr.blocked & KX_TR_READ_WANTS_WRITE;
	if (!kx_rflush_client(s))
		return;
	kx_rupdate_reading(s);
	/* The TLS read that waited for this, even while the client is not read
	 * otherwise: until a read clears that wait, the write event stays on. */
	if (reread && s->client.state == KX_CLIENT_OPEN)
		event_active(s->client.sock.rev, EV_READ, 0);
	/* Reading resumed: requests already buffered go now. */
	if (s->client.sock.reading && evbuffer_get_length(s->req.buf) && kx_rpump(s))
		kx_rupdate_reading(s);
}

static void kx_rprotocol_error(struct kx_session *s, const char *what, const struct kp_cursor *c)
{
	kx_rlimited(KX_LOG_WARN, s, "malformed request: %s (%s at byte %zu reading %s); closing", what,
	            kp_error_name(c->err), c->err_pos + 4, c->err_field ? c->err_field : "?");
	KX_METRIC_ADD(protocol_errors, 1);
	kx_regional_close(s, "protocol error");
}

/* ---- sending parts --------------------------------------------------------- */

/*
 * Sends part `frag` of q to broker node_id: the client's header with a new
 * correlation id, then body (a split's writer), or, with body NULL, the
 * client's request body as it came. A part that cannot be queued is failed
 * at once (answered with a retriable error with the others).
 */
static void kx_rsend(struct kx_session *s, struct kx_rreq *q, uint16_t frag, int32_t node_id, struct kp_writer *body,
                     bool expects)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	struct kx_pconn *c = kp_coordinator_holds(q->hdr.api_key)
	                         ? kx_pool_pick_held(&s->worker->pool, node_id)
	                         : kx_pool_pick(&s->worker->pool, node_id, s->number, q->hdr.api_key == KP_API_FETCH);
	struct kp_request_header h = q->hdr;
	q->frag[frag].node = node_id;
	if (c) {
		h.correlation_id = kx_pconn_corr(c);
		kp_writer_reset(&rs->out);
		kp_request_header_write(&rs->out, &h);
		if (body)
			kp_write_writer(&rs->out, body);
		else
			kx_frame_write_ref(&rs->out, &q->req, 4 + q->hdr.size);
		struct kx_up_inflight e = {.owner = s, .client_corr = q->hdr.correlation_id, .upstream_corr = h.correlation_id,
		                           .api_key = q->hdr.api_key, .api_version = q->hdr.api_version, .fragment = frag,
		                           .req = q};
		e.leader_ridx = q->frag[frag].leader_ridx;
		if (kp_writer_ok(&rs->out) &&
		    kx_pconn_send(c, expects ? &e : NULL, &rs->out, q->req.holds, q->req.lens, (size_t)q->req.nholds)) {
			KX_METRIC_ADD(regional_fragments, 1);
			kx_timing_sent(&q->tm, kx_now_ns());
			return;
		}
	}
	if (expects) {
		kx_rwarn(s, "%s v%d (corr %d): cannot queue its part for node %d (out of memory); answered as failed",
		         q->api ? q->api->name : "?", q->hdr.api_version, q->hdr.correlation_id, (int)node_id);
		q->frag[frag].done = true;
		q->left--;
	}
}

/* The topology's brokers index of node_id (a split's destination), or -1. */
static int kx_rdest(const struct kx_topology *t, int32_t node_id)
{
	if (!t || node_id < 0)
		return -1;
	const struct kx_broker *b = kx_topology_broker(t, node_id);
	return b ? (int)(b - t->brokers) : -1;
}

static const struct kx_topic *kx_rtopic(const struct kx_topology *t, bool by_id, const uint8_t *key, size_t len)
{
	if (!t || !key)
		return NULL;
	if (by_id)
		return len == 16 ? kx_topology_topic_by_id(t, key) : NULL;
	return kx_topology_topic(t, (const char *)key, len);
}

/* Makes q's destination numbering for topology t (kx_rdest_of). False when out of memory. */
static bool kx_rdests_init(struct kx_rreq *q, const struct kx_topology *t)
{
	size_t nb = t ? t->broker_cnt : 0;
	q->ndest = nb == 0 ? 1 : nb < KP_SPLIT_MAX_DEST ? (int)nb : KP_SPLIT_MAX_DEST;
	q->nused = 0;
	q->dest_of = kp_arena_alloc(&q->arena, nb * sizeof(*q->dest_of) + 1);
	q->broker_of = kp_arena_alloc(&q->arena, (size_t)q->ndest * sizeof(*q->broker_of));
	if (!q->dest_of || !q->broker_of)
		return false;
	for (size_t i = 0; i < nb; i++)
		q->dest_of[i] = -1;
	return true;
}

/* The destination of topology broker index b in q's split, numbered on first
 * use; -1 for none (b < 0, or a broker past the first KP_SPLIT_MAX_DEST the
 * request meets: q->too_wide). */
static int kx_rdest_of(struct kx_rreq *q, int b)
{
	if (b < 0)
		return -1;
	if (q->dest_of[b] < 0) {
		if (q->nused == q->ndest) {
			q->too_wide = true;
			return -1;
		}
		q->broker_of[q->nused] = b;
		q->dest_of[b] = q->nused++;
	}
	return q->dest_of[b];
}

/* The broker of part i of q (its topology index is in the split's numbering). */
static int32_t kx_rpart_node(const struct kx_rreq *q, const struct kx_topology *t, uint16_t i)
{
	return t->brokers[q->broker_of[q->frag[i].dest]].node_id;
}

/* Makes q's fragment table: one per destination that has a part. */
static bool kx_rfrags(struct kx_rreq *q, const bool *used, int ndest)
{
	uint16_t n = 0;
	for (int d = 0; d < ndest; d++)
		n += used[d];
	q->frag = calloc(n ? n : 1, sizeof(*q->frag));
	if (!q->frag)
		return false;
	for (int d = 0; d < ndest; d++)
		if (used[d])
			q->frag[q->nfrag++] = (struct kx_rfrag){.dest = d};
	q->left = q->nfrag;
	return true;
}

/* ---- the node's own Metadata ------------------------------------------------ */

/*
 * A node learns leaders from the Metadata answers it forwards. A client asks
 * whichever node it likes for Metadata, so the node it then sends a
 * partition's Produce or Fetch to (the partition's virtual leader) may never
 * have seen the topic, or its new leader after a move: it would answer
 * NOT_LEADER_OR_FOLLOWER to every retry while the other node learns. So when
 * a node cannot route a partition, a part's broker connection fails, or a
 * broker answers that it does not lead a partition, the worker asks a broker
 * itself: Metadata of every topic, in the version bootstrap spoke, learned as
 * a client's answer is. One in flight per worker, at most one every
 * KX_R_REFRESH_MIN_MS, each to the next broker of the topology (so one that is
 * down does not stop the next). It travels on the session's pool connection,
 * as the session's; when the session closes first, it is dropped.
 */
static void kx_rrefresh_go(struct kx_session *s, const char *why, bool now_or_never)
{
	struct kx_worker *w = s->worker;
	const struct kx_topology *t = kx_topology_cached(&w->topology);
	int ver = kx_bootstrap_metadata_version();
	int64_t now = kx_now_ms();
	if (w->rrefresh || !t || t->broker_cnt == 0 || ver < 0 ||
	    (!now_or_never && now - w->rrefresh_ms < KX_R_REFRESH_MIN_MS))
		return;
	struct kx_rscratch *rs = w->rscratch;
	struct kx_rreq *q = calloc(1, sizeof(*q));
	if (!q || !(q->frag = calloc(1, sizeof(*q->frag)))) {
		free(q);
		return;
	}
	kp_arena_init(&q->arena, 1 << 20);
	q->api = kp_api_get(KP_API_METADATA);
	q->flexible = kp_api_flexible(q->api, (int16_t)ver);
	q->hdr = (struct kp_request_header){.api_key = KP_API_METADATA,
	                                    .api_version = (int16_t)ver,
	                                    .client_id = {(const uint8_t *)"kstretch", 8},
	                                    .header_version = kp_request_header_version(KP_API_METADATA, (int16_t)ver)};
	q->frag[0].dest = -1;
	q->nfrag = q->left = 1;
	struct kp_struct *body = kp_struct_new(&q->arena, &kp_metadata_request, (int16_t)ver);
	if (!body) {
		kx_rreq_free(q);
		return;
	}
	/* Every topic: null from v1 on, an empty list in v0. */
	body->v[kp_field_index(&kp_metadata_request, "Topics")].a.cnt = ver >= 1 ? -1 : 0;
	kp_writer_reset(&rs->body);
	kp_encode(&rs->body, body, (int16_t)ver, q->flexible, -1);
	int32_t node = t->brokers[w->rrefresh_cnt++ % t->broker_cnt].node_id;
	w->rrefresh_ms = now;
	kx_rsend(s, q, 0, node, &rs->body, true);
	if (q->left == 0) { /* not queued (kx_rsend logged it) */
		kx_rreq_free(q);
		return;
	}
	w->rrefresh = q;
	w->rrefresh_owner = s;
	kx_rdebug(s, "asking node %d for Metadata: %s", (int)node, why);
}

static void kx_rrefresh(struct kx_session *s, const char *why)
{
	kx_rrefresh_go(s, why, false);
}

/* The answer to the worker's own Metadata request (its frame in q->frag[0]; none: its connection failed). */
static void kx_rrefresh_done(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	w->rrefresh = NULL;
	w->rrefresh_owner = NULL;
	struct kx_frame *fr = &q->frag[0].resp;
	size_t at, len = fr->len;
	const uint8_t *body;
	if (!len || !kx_rbody(q, &q->frag[0], &at)) {
		kx_rdebug(s, "own Metadata request failed (its broker connection failed)");
		kx_rreq_free(q);
		kx_rresume_all(w);
		return;
	}
	if (!kx_frame_flat(fr, at, len, &body)) {
		kx_rdebug(s, "own Metadata request: out of memory for its answer");
		kx_rreq_free(q);
		kx_rresume_all(w);
		return;
	}
	struct kp_arena a;
	struct kp_cursor c;
	kp_arena_init(&a, 64 * len + (1 << 20));
	kp_cursor_init(&c, body, len - at);
	struct kp_struct *real = kp_decode(&a, &c, &kp_metadata_response, q->hdr.api_version, q->flexible, -1);
	if (!real) {
		kx_rwarn(s, "own Metadata v%d: the broker's answer does not decode (%s reading %s)", q->hdr.api_version,
		         kp_error_name(c.err), c.err_field ? c.err_field : "?");
	} else {
		kx_rewrite_learn_metadata(&w->rewriter, real);
		if (kx_rewrite_merge_topology(&w->rewriter, w->cfg))
			kx_rdebug(s, "topology updated from the node's own Metadata request");
	}
	kp_arena_free(&a);
	kx_rreq_free(q);
	kx_rresume_all(w); /* what waited for it goes now, routed by what it taught */
}

/* ---- coordinators ------------------------------------------------------------ */

static const char *kx_rcoord_what(int8_t type)
{
	return type == KP_COORD_TRANSACTION ? "transactional id" : "group";
}

/*
 * The worker looks a key's coordinator up itself when a request names one it
 * does not know (or knew long ago): a client may have asked the other
 * regional node's FindCoordinator, and this node must still send the group's
 * requests to the right broker. FindCoordinator v1 (a key and its type: every
 * broker since Kafka 0.11 and librdkafka's mock answer it), one in flight
 * per worker, each to the next broker of the topology; like the Metadata
 * refresh it travels as the session's and is dropped if the session closes.
 */
static void kx_rlookup(struct kx_session *s, int8_t type, const uint8_t *key, size_t len)
{
	struct kx_worker *w = s->worker;
	const struct kx_topology *t = kx_topology_cached(&w->topology);
	if (w->rlookup || !t || t->broker_cnt == 0 || len > KR_COORD_KEY_MAX)
		return;
	struct kx_rscratch *rs = w->rscratch;
	struct kx_rreq *q = calloc(1, sizeof(*q));
	if (!q || !(q->frag = calloc(1, sizeof(*q->frag)))) {
		free(q);
		return;
	}
	kp_arena_init(&q->arena, 1 << 16);
	q->api = kp_api_get(KP_API_FIND_COORDINATOR);
	q->flexible = false;
	q->hdr = (struct kp_request_header){.api_key = KP_API_FIND_COORDINATOR,
	                                    .api_version = 1,
	                                    .client_id = {(const uint8_t *)"kstretch", 8},
	                                    .header_version = kp_request_header_version(KP_API_FIND_COORDINATOR, 1)};
	q->frag[0].dest = -1;
	q->nfrag = q->left = 1;
	uint8_t *k = kp_arena_alloc(&q->arena, len + 1);
	struct kp_struct *body = kp_struct_new(&q->arena, &kp_find_coordinator_request, 1);
	if (!k || !body) {
		kx_rreq_free(q);
		return;
	}
	memcpy(k, key, len);
	q->coord = true;
	q->coord_type = type;
	q->coord_key = (struct kp_span){k, (int32_t)len};
	body->v[kp_field_index(&kp_find_coordinator_request, "Key")].s = q->coord_key;
	body->v[kp_field_index(&kp_find_coordinator_request, "KeyType")].i = type == KP_COORD_TRANSACTION ? 1 : 0;
	kp_writer_reset(&rs->body);
	kp_encode(&rs->body, body, 1, false, -1);
	int32_t node = t->brokers[w->rrefresh_cnt++ % t->broker_cnt].node_id;
	kx_rsend(s, q, 0, node, &rs->body, true);
	if (q->left == 0) { /* not queued (kx_rsend logged it) */
		kx_rreq_free(q);
		return;
	}
	w->rlookup = q;
	w->rlookup_owner = s;
	KX_METRIC_ADD(regional_coordinator_lookups, 1);
	kx_rdebug(s, "looking up the coordinator of %s %.*s at node %d", kx_rcoord_what(type), (int)len,
	          (const char *)key, (int)node);
}

/* The answer to the worker's own FindCoordinator (its frame in q->frag[0]; none: its connection failed). */
static void kx_rlookup_done(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	w->rlookup = NULL;
	w->rlookup_owner = NULL;
	struct kx_frame *fr = &q->frag[0].resp;
	size_t at;
	const uint8_t *body;
	struct kp_cursor c;
	struct kp_arena a;
	kp_arena_init(&a, 1 << 16);
	struct kp_struct *r = NULL;
	if (fr->len && kx_rbody(q, &q->frag[0], &at) && kx_frame_flat(fr, at, fr->len, &body)) {
		kp_cursor_init(&c, body, fr->len - at);
		r = kp_decode(&a, &c, &kp_find_coordinator_response, 1, false, -1);
	}
	const char *what = kx_rcoord_what(q->coord_type);
	int klen = q->coord_key.len;
	const char *key = (const char *)q->coord_key.ptr;
	if (!r) {
		kx_rdebug(s, "coordinator lookup of %s %.*s failed (its connection failed or the answer did not decode)",
		          what, klen, key);
	} else if (r->v[KP_FIND_COORDINATOR_RESPONSE_ERROR_CODE].i != 0 || r->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID].i < 0) {
		kx_rdebug(s, "coordinator lookup of %s %.*s: error %d", what, klen, key,
		          (int)r->v[KP_FIND_COORDINATOR_RESPONSE_ERROR_CODE].i);
	} else {
		int32_t node = (int32_t)r->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID].i;
		kr_coordinators_learn(&w->coords, q->coord_type, key, (size_t)klen, node, kx_now_ms());
		kx_rdebug(s, "the coordinator of %s %.*s is node %d", what, klen, key, (int)node);
	}
	kp_arena_free(&a);
	kx_rreq_free(q);
}

/*
 * The real broker that coordinates key (of type), as this worker knows it,
 * or -1 (then the request goes to any broker, which answers NOT_COORDINATOR,
 * and the client asks again once the worker's own lookup told it). A key not
 * known, or known long ago, is looked up. what: the API asking, for the log.
 */
static int32_t kx_rcoordinator_of(struct kx_session *s, const struct kx_topology *t, int8_t type, struct kp_span key,
                                  const struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	bool stale;
	int32_t node =
	    kr_coordinators_find(&w->coords, type, (const char *)key.ptr, (size_t)key.len, kx_now_ms(), &stale);
	if (node >= 0 && !kx_topology_broker(t, node))
		node = -1; /* gone from the cluster */
	if (node < 0 || stale)
		kx_rlookup(s, type, key.ptr, (size_t)key.len);
	if (node < 0) {
		KX_METRIC_ADD(regional_coordinator_unknown, 1);
		kx_rdebug(s, "%s v%d for %s %.*s: its coordinator is not known yet (looking it up)",
		          q->api ? q->api->name : "?", q->hdr.api_version, kx_rcoord_what(type), (int)key.len,
		          (const char *)key.ptr);
	}
	return node;
}

/* A group or transaction request naming one key (coordinator.h's table): its
 * coordinator (kx_rcoordinator_of), or -1. Notes the key on q for its answer. */
static int32_t kx_rcoordinator(struct kx_session *s, struct kx_rreq *q, const struct kx_topology *t)
{
	size_t at = 4 + q->hdr.size;
	const uint8_t *body;
	enum kp_coord_type type;
	struct kp_span key;
	q->coord = false;
	if (!kp_coordinator_api(q->hdr.api_key, q->hdr.api_version))
		return -1; /* any other API: its body is not looked at (nor made contiguous) */
	if (at > q->req.len || !kx_frame_flat(&q->req, at, q->req.len, &body) ||
	    !kp_coordinator_key(q->hdr.api_key, q->hdr.api_version, q->flexible, body, q->req.len - at, &type, &key, NULL) ||
	    type == KP_COORD_NONE)
		return -1; /* not one (a key that does not read: the broker answers it as it would) */
	q->coord = true;
	q->coord_type = (int8_t)type;
	q->coord_key = key;
	return kx_rcoordinator_of(s, t, (int8_t)type, key, q);
}

/* A key's coordinator said to be elsewhere (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE by node): forgotten, looked up
 * again. */
static void kx_rcoordinator_moved(struct kx_session *s, const struct kx_rreq *q, int8_t type, struct kp_span key,
                                  int16_t err, int32_t node)
{
	kx_rdebug(s,
	          "%s v%d for %s %.*s answered error %d (the coordinator is elsewhere) by node %d: forgotten, "
	          "looking it up again",
	          q->api ? q->api->name : "?", q->hdr.api_version, kx_rcoord_what(type), (int)key.len,
	          (const char *)key.ptr, (int)err, (int)node);
	KX_METRIC_ADD(regional_coordinator_moved, 1);
	kr_coordinators_forget(&s->worker->coords, type, (const char *)key.ptr, (size_t)key.len);
	kx_rlookup(s, type, key.ptr, (size_t)key.len);
}

/* An answer to a coordinator request saying the coordinator is elsewhere: forgotten, and looked up again. */
static void kx_rcoordinator_answered(struct kx_session *s, struct kx_rreq *q, struct kx_rfrag *f, size_t at)
{
	const uint8_t *body;
	int16_t err;
	if (!q->coord || f->resp.len < at + 6 ||
	    !kx_frame_flat(&f->resp, at, at + 6, &body) ||
	    !kp_coordinator_error(q->hdr.api_key, q->hdr.api_version, body, 6, &err) ||
	    (err != KP_ERR_NOT_COORDINATOR && err != KP_ERR_COORDINATOR_NOT_AVAILABLE))
		return;
	kx_rcoordinator_moved(s, q, q->coord_type, q->coord_key, err, f->node);
}

/* Whether a partition error says the node's topology may be stale (the client refreshes too). */
static bool kx_rstale_error(int64_t code)
{
	switch (code) {
	case 3:   /* UNKNOWN_TOPIC_OR_PARTITION */
	case 5:   /* LEADER_NOT_AVAILABLE */
	case 6:   /* NOT_LEADER_OR_FOLLOWER */
	case 74:  /* FENCED_LEADER_EPOCH */
	case 100: /* UNKNOWN_TOPIC_ID */
		return true;
	default: return false;
	}
}

/* kp_fetch_merge's error_watch: a Fetch partition's kx_rstale_error. */
static bool kx_rstale_fetch_error(int16_t code)
{
	return kx_rstale_error(code);
}

/* Whether a merged answer (layout l) has a partition with a kx_rstale_error. */
static bool kx_rany_stale(const struct kp_split_layout *l, const struct kp_struct *m)
{
	const struct kp_list *topics = &m->v[l->topics].a;
	for (int32_t i = 0; i < topics->cnt; i++) {
		const struct kp_list *parts = &topics->items[i].st->v[l->partitions].a;
		for (int32_t j = 0; j < parts->cnt; j++)
			if (kx_rstale_error(parts->items[j].st->v[l->error_code].i))
				return true;
	}
	return false;
}

/* A request whose partitions lie on more brokers than one split holds: said, and those past them answered retriably. */
static void kx_rtoo_wide(struct kx_session *s, const struct kx_rreq *q)
{
	if (q->too_wide)
		kx_rwarn(s, "%s v%d (corr %d): its partitions lie on more than %d brokers; those on the others answered "
		         "NOT_LEADER_OR_FOLLOWER", q->api ? q->api->name : "?", q->hdr.api_version, q->hdr.correlation_id,
		         KP_SPLIT_MAX_DEST);
}

/* The refresh for parked requests that the rate (one per KX_R_REFRESH_MIN_MS) held back: any parked session's. */
static void kx_rrefresh_due(evutil_socket_t fd, short what, void *arg)
{
	struct kx_worker *w = arg;
	(void)fd;
	(void)what;
	for (struct kx_session *s = w->sessions; s && !w->rrefresh; s = s->next)
		if (s->regional && s->parked)
			kx_rrefresh_go(s, "requests parked for it", true);
	if (!w->rrefresh)
		kx_rresume_all(w); /* none could go: what waited goes as things are */
}

/* Arms kx_rrefresh_due for when the rate allows the next refresh; false when it cannot. */
static bool kx_rrefresh_later(struct kx_worker *w)
{
	if (!w->rrefresh_ev && !(w->rrefresh_ev = evtimer_new(w->base, kx_rrefresh_due, w)))
		return false;
	if (evtimer_pending(w->rrefresh_ev, NULL))
		return true;
	int64_t wait = w->rrefresh_ms + KX_R_REFRESH_MIN_MS - kx_now_ms();
	struct timeval tv = kx_ms_timeval((int)(wait > 0 ? wait : 0));
	return evtimer_add(w->rrefresh_ev, &tv) == 0;
}

/*
 * Parking. A Produce naming a partition whose leader the node does not know
 * must not be answered NOT_LEADER_OR_FOLLOWER by the node itself while the
 * client's next batches for that partition, already in flight, reach the
 * leader once the node learned it: the leader accepts a producer's first
 * batch on a partition whatever its sequence, the producer takes that
 * success as covering the earlier batch too (librdkafka: "implicitly acked
 * by subsequent batch success"), and the earlier batch is lost. A broker
 * answers a connection's requests in order and consistently; so the node
 * holds the request, unsent, and every later one of the session with it,
 * until its own Metadata refresh (sent at once, or when the rate of one per
 * KX_R_REFRESH_MIN_MS allows: kx_rrefresh_later) is answered or fails, then
 * sends them in order, routed by what it learned. A request parks for a
 * partition of its own once; after that an unknown leader is answered
 * NOT_LEADER_OR_FOLLOWER, with every later request routed the same way.
 * False when no refresh can go (no topology or broker yet).
 */
static bool kx_rpark(struct kx_session *s, struct kx_rreq *q, const char *why)
{
	struct kx_worker *w = s->worker;
	const struct kx_topology *t = kx_topology_cached(&w->topology);
	if (q->parked_once || !t || t->broker_cnt == 0 || kx_bootstrap_metadata_version() < 0)
		return false;
	kx_rrefresh(s, why);
	if (!w->rrefresh && !kx_rrefresh_later(w))
		return false;
	q->parked = q->parked_once = true;
	s->parked++;
	s->park_went = true;
	KX_METRIC_ADD(regional_parked, 1);
	kx_rdebug(s, "%s v%d (corr %d): parked until the node's Metadata refresh (%s)", q->api ? q->api->name : "?",
	          q->hdr.api_version, q->hdr.correlation_id, why);
	return true;
}

/* ---- Produce ---------------------------------------------------------------- */

struct kx_rroute {
	struct kx_rreq *q;
	const struct kx_topology *t;
	const struct kx_topic *tp;
	uint32_t topic; /* ordinal + 1 of the topic tp is for */
	bool ok;
	bool unroutable; /* a partition without a known leader */
};

/* kp_produce_split's route: the partition's real leader, noted in the client's order for the merge. */
static int kx_rproduce_route(void *arg, const struct kp_walk_topic *wt, int32_t index)
{
	struct kx_rroute *r = arg;
	if (r->topic != wt->ordinal + 1) {
		r->topic = wt->ordinal + 1;
		r->tp = wt->key_len ? kx_rtopic(r->t, wt->by_id, wt->key, wt->key_len) : NULL;
		r->ok = r->ok && kp_split_add_topic(&r->q->arena, &r->q->split, wt->by_id,
		                                   (struct kp_span){wt->key, (int32_t)wt->key_len});
	}
	const struct kx_partition *p = r->tp ? kx_topic_partition(r->tp, index) : NULL;
	int b = p ? kx_rdest(r->t, p->leader) : -1;
	int d = kx_rdest_of(r->q, b);
	r->unroutable |= b < 0;
	if (d < 0 && !r->tp && wt->by_id) /* Produce v13+: a topic id the node has not learned (yet) */
		r->ok = r->ok && kp_split_add_partition_error(&r->q->arena, &r->q->split, index, KX_ERR_UNKNOWN_TOPIC_ID);
	else
		r->ok = r->ok && kp_split_add_partition(&r->q->arena, &r->q->split, index, d);
	return d;
}

KX_MUST_CHECK static bool kx_rproduce(struct kx_session *s, struct kx_rreq *q, bool *expects)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	const struct kx_topology *t = kx_topology_cached(&s->worker->topology);
	size_t at = 4 + q->hdr.size;
	if (!kx_rdests_init(q, t)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	int ndest = q->ndest;
	/* The body where it was read, in as many pieces as reads: record batches
	 * are referenced from there by every part, never copied. */
	struct iovec *iov = kp_arena_alloc(&q->arena, (size_t)q->req.niov * sizeof(*iov));
	if (!iov) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	struct kp_pieces p;
	kp_pieces_init(&p, iov, kx_frame_iov_from(&q->req, at, iov), q->req.len - at);
	int16_t acks;
	if (!kp_produce_acks(&p, q->hdr.api_version, q->flexible, &acks)) {
		struct kp_cursor e = {.err = p.err, .err_pos = at - 4, .err_field = p.err_field};
		kx_rprotocol_error(s, "Produce: cannot read Acks", &e);
		return false;
	}
	*expects = acks != 0;
	struct kx_rroute r = {.q = q, .t = t, .ok = kp_split_init(&q->split, q->hdr.api_version, ndest)};
	if (!kp_produce_split(&rs->produce, &p, q->hdr.api_version, q->flexible, ndest, kx_rproduce_route, &r) || !r.ok ||
	    !kp_split_finish(&q->arena, &q->split)) {
		struct kp_cursor e = {.err = p.err ? p.err : KP_ERR_NOMEM, .err_pos = p.pos, .err_field = p.err_field};
		kx_rprotocol_error(s, "Produce: cannot split it", &e);
		return false;
	}
	q->layout = &kp_split_produce_response;
	if (r.unroutable && kx_rpark(s, q, "a Produce names a partition without a known leader"))
		return true;
	bool used[KP_SPLIT_MAX_DEST] = {false};
	for (int d = 0; d < ndest; d++)
		used[d] = rs->produce.dest[d].nparts > 0;
	if (!kx_rfrags(q, used, ndest)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	KX_BUG_ON(q->nfrag && !t); /* with no topology, every partition was routed nowhere */
	for (uint16_t i = 0; i < q->nfrag; i++)
		kx_rsend(s, q, i, kx_rpart_node(q, t, i), &rs->produce.dest[q->frag[i].dest].body, *expects);
	if (!*expects && rs->produce.nkept)
		kx_rdebug(s, "Produce acks=0: %zu partitions without a known leader dropped", rs->produce.nkept);
	kx_rtoo_wide(s, q);
	if (r.unroutable)
		kx_rrefresh(s, "a Produce names a partition without a known leader");
	return true;
}

/* ---- Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords ----------------- */

/*
 * Idle parts. A broker holds a Fetch part until it has MinBytes or MaxWaitMs
 * pass, and the client's answer waits for its last part: so a consumer whose
 * partitions lie on two brokers, one of them idle, would be answered only
 * after the idle one's wait (up to regional.fetch.wait.max.ms) on every poll,
 * where one broker holding all its partitions answers as soon as it has data.
 * A part's wait cannot be cut short once sent; instead each session notes
 * which brokers answered its last part to them without records, and when
 * another part of the same Fetch goes to a broker that had some, the idle
 * brokers' parts ask for MaxWaitMs 0: they come back at once (with records if
 * some arrived meanwhile: nothing is dropped), and the answer waits only for
 * the brokers expected to have data, which answer as they get it. When every
 * part is expected idle, each waits as usual (an idle consumer polls at the
 * capped wait, not in a loop). Topology broker indexes from 64 on are never
 * noted (always waited for).
 */
static bool kx_rfetch_idle(const struct kx_session *s, int dest)
{
	return dest >= 0 && dest < 64 && (s->fetch_idle >> dest & 1);
}

/* Whether some part of Fetch q goes to a broker expected to have records. */
static bool kx_rfetch_expects_records(const struct kx_session *s, const struct kx_rreq *q)
{
	if (q->nfrag < 2)
		return false;
	for (uint16_t i = 0; i < q->nfrag; i++)
		if (!kx_rfetch_idle(s, q->broker_of[q->frag[i].dest]))
			return true;
	return false;
}

/* Notes, from a merged Fetch, which parts' brokers had records (records[i]: part i's bytes). */
static void kx_rfetch_note(struct kx_session *s, const struct kx_rreq *q, const size_t *records)
{
	for (uint16_t i = 0; i < q->nfrag; i++) {
		int d = q->broker_of[q->frag[i].dest];
		if (!q->frag[i].resp.len || d < 0 || d >= 64)
			continue;
		if (records[i])
			s->fetch_idle &= ~(UINT64_C(1) << d);
		else
			s->fetch_idle |= UINT64_C(1) << d;
	}
}

/* Metrics (cost avoided): lead[d] becomes the region of the leaders of the
 * partitions going to destination d when every one of them is read from a
 * replica that is not its leader and all those leaders share one region; 0
 * otherwise (0xff: none seen yet). */
static void kx_rkept_local(uint8_t *lead, int d, const struct kx_topology *t, const struct kx_partition *p,
                           int32_t node)
{
	const struct kx_broker *l = p && node != p->leader ? kx_topology_broker(t, p->leader) : NULL;
	uint8_t r = l ? (uint8_t)kx_region_index(l->region) : 0;
	lead[d] = lead[d] == 0xff || lead[d] == r ? r : 0;
}

/* Splits a decoded request of layout l by where each partition goes (Fetch: the replica to read from). */
KX_MUST_CHECK static bool kx_rsplit(struct kx_session *s, struct kx_rreq *q, const struct kp_split_layout *req_l,
                                    const struct kp_split_layout *resp_l)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	const struct kx_topology *t = kx_topology_cached(&s->worker->topology);
	int16_t ver = q->hdr.api_version;
	size_t at = 4 + q->hdr.size;
	if (!kx_rdests_init(q, t)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	int ndest = q->ndest;
	const uint8_t *body; /* decoded in place: contiguous (copied only when it spans reads) */
	if (!kx_frame_flat(&q->req, at, q->req.len, &body)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	struct kp_cursor c;
	kp_cursor_init(&c, body, q->req.len - at);
	struct kp_struct *st = kp_decode(&q->arena, &c, req_l->body, ver, q->flexible, -1);
	if (!st) {
		kx_rprotocol_error(s, q->api->name, &c);
		return false;
	}
	int64_t n = kp_split_count(req_l, st);
	bool fetch = q->hdr.api_key == KP_API_FETCH;
	int32_t *dest = n > 0 ? kp_arena_alloc(&q->arena, (size_t)n * sizeof(*dest)) : NULL;
	if (fetch && n > 0)
		q->want = kp_arena_alloc(&q->arena, (size_t)n * sizeof(*q->want));
	if (n < 0 || (n > 0 && (!dest || (fetch && !q->want)))) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	uint8_t lead[KP_SPLIT_MAX_DEST];
	memset(lead, 0xff, sizeof(lead));
	bool by_id = req_l->topic_id >= 0 && st->v[req_l->topics].a.cnt > 0 &&
	             st->v[req_l->topics].a.items[0].st->v[req_l->topic_id].present;
	int64_t k = 0;
	bool unroutable = false;
	const struct kp_list *topics = &st->v[req_l->topics].a;
	for (int32_t i = 0; i < topics->cnt; i++) {
		const struct kp_struct *ts = topics->items[i].st;
		struct kp_span key = ts->v[by_id ? req_l->topic_id : req_l->topic_name].s;
		size_t klen = key.len > 0 ? (size_t)key.len : 0;
		const struct kx_topic *tp = kx_rtopic(t, by_id, key.ptr, klen);
		const struct kp_list *parts = &ts->v[req_l->partitions].a;
		for (int32_t j = 0; j < parts->cnt; j++, k++) {
			int32_t index = (int32_t)parts->items[j].st->v[req_l->index].i;
			const struct kx_partition *p = tp ? kx_topic_partition(tp, index) : NULL;
			int32_t node = -1;
			if (p && fetch)
				node = kx_partition_read_replica(t, p, s->worker->cfg->region,
				                                 kr_partition_key((const char *)key.ptr, klen, index), ver >= 11);
			else if (p)
				node = p->leader;
			int b = kx_rdest(t, node);
			dest[k] = kx_rdest_of(q, b);
			if (fetch && dest[k] >= 0 && dest[k] < KP_SPLIT_MAX_DEST)
				kx_rkept_local(lead, dest[k], t, p, node);
			unroutable |= b < 0;
			if (fetch)
				q->want[k] = (struct kp_fetch_want){key.ptr, klen, index};
		}
	}
	q->nwant = fetch ? (size_t)n : 0;
	if (!kp_split_request(&q->arena, req_l, st, ver, dest, (size_t)n, ndest, &q->split)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->layout = resp_l;
	bool used[KP_SPLIT_MAX_DEST] = {false};
	for (int d = 0; d < ndest; d++)
		used[d] = q->split.dests[d].request != NULL;
	if (!kx_rfrags(q, used, ndest)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	bool expect_records = fetch && kx_rfetch_expects_records(s, q);
	for (uint16_t i = 0; i < q->nfrag; i++) {
		struct kp_struct *part = q->split.dests[q->frag[i].dest].request;
		if (fetch && q->frag[i].dest >= 0 && q->frag[i].dest < KP_SPLIT_MAX_DEST &&
		    lead[q->frag[i].dest] != 0xff)
			q->frag[i].leader_ridx = lead[q->frag[i].dest];
		if (fetch) {
			kp_split_fetch_sessionless(part, ver);
			kp_split_fetch_share_max_bytes(part, ver, q->nfrag);
			bool idle = expect_records && kx_rfetch_idle(s, q->broker_of[q->frag[i].dest]);
			kp_split_fetch_cap_wait(part, idle ? 0 : s->worker->cfg->regional_fetch_wait_max_ms);
			if (idle)
				KX_METRIC_ADD(regional_fetch_parts_unheld, 1);
			/* kstretch chose the replica: a broker's rack-aware selector must not
			 * answer with PreferredReadReplica, a real node id the client cannot know. */
			if (ver >= 11)
				part->v[KP_FETCH_REQ_RACK_ID].s = (struct kp_span){(const uint8_t *)"", 0};
		}
		kp_writer_reset(&rs->body);
		kp_encode(&rs->body, part, ver, q->flexible, -1);
		kx_rsend(s, q, i, kx_rpart_node(q, t, i), &rs->body, true);
	}
	kx_rtoo_wide(s, q);
	if (unroutable)
		kx_rrefresh(s, "a request names a partition without a known leader");
	return true;
}

/* ---- requests naming several groups or transactional ids, and listings -------- */

/*
 * DescribeGroups, DeleteGroups, OffsetFetch v8+, ConsumerGroupDescribe and
 * DescribeTransactions name several keys, each coordinated by its own
 * broker: cut by key (keysplit.h), each part to the coordinator of its keys
 * as the worker knows it (kx_rcoordinator_of; an unknown one's keys go to
 * the session's usual broker, which answers them NOT_COORDINATOR, and the
 * client asks again), answered in the client's order. ListGroups and
 * ListTransactions name none: sent to every broker (each lists what it
 * coordinates) and gathered, each node keeping the keys it presents itself
 * as the coordinator of (kx_rlisting_keep), so that a client asking every
 * node of the virtual cluster, as admin clients do, sees each group once.
 */
KX_MUST_CHECK static bool kx_rkeysplit(struct kx_session *s, struct kx_rreq *q, const struct kp_keysplit_layout *l)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	const struct kx_topology *t = kx_topology_cached(&s->worker->topology);
	int16_t ver = q->hdr.api_version;
	size_t at = 4 + q->hdr.size;
	const uint8_t *body; /* decoded in place: contiguous (copied only when it spans reads) */
	if (!t || t->broker_cnt == 0) {
		kx_rlimited(KX_LOG_WARN, s, "no broker known to send %s to; closing", q->api->name);
		kx_regional_close(s, "no broker");
		return false;
	}
	if (!kx_rdests_init(q, t) || !kx_frame_flat(&q->req, at, q->req.len, &body)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	struct kp_cursor c;
	kp_cursor_init(&c, body, q->req.len - at);
	struct kp_struct *st = kp_decode(&q->arena, &c, l->request, ver, q->flexible, -1);
	if (!st) {
		kx_rprotocol_error(s, q->api->name, &c);
		return false;
	}
	q->klayout = l;
	q->kreq = st;
	struct kp_struct **out = kp_arena_alloc(&q->arena, (size_t)q->ndest * sizeof(struct kp_struct *));
	if (!out) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	if (l->req_keys < 0) { /* a listing: every broker */
		for (size_t b = 0; b < t->broker_cnt; b++) {
			int d = kx_rdest_of(q, (int)b);
			if (d >= 0)
				out[d] = st;
		}
	} else {
		int32_t n = kp_keysplit_count(l, st);
		q->kdest = kp_arena_alloc(&q->arena, (size_t)n * sizeof(*q->kdest) + 1);
		if (!q->kdest) {
			kx_regional_close(s, "out of memory");
			return false;
		}
		int usual = (int)(s->number % t->broker_cnt);
		for (int32_t i = 0; i < n; i++) {
			int32_t node = kx_rcoordinator_of(s, t, l->key_type, kp_keysplit_key(l, st, i), q);
			int b = node >= 0 ? kx_rdest(t, node) : usual;
			q->kdest[i] = kx_rdest_of(q, b);
		}
		if (!kp_keysplit_request(&q->arena, l, st, ver, q->kdest, (size_t)n, q->ndest, out)) {
			kx_regional_close(s, "out of memory");
			return false;
		}
	}
	bool used[KP_SPLIT_MAX_DEST] = {false};
	for (int d = 0; d < q->nused; d++)
		used[d] = out[d] != NULL;
	if (!kx_rfrags(q, used, q->ndest)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	for (uint16_t i = 0; i < q->nfrag; i++) {
		kp_writer_reset(&rs->body);
		kp_encode(&rs->body, out[q->frag[i].dest], ver, q->flexible, -1);
		kx_rsend(s, q, i, kx_rpart_node(q, t, i), &rs->body, true);
	}
	if (q->too_wide)
		kx_rwarn(s, "%s v%d (corr %d): the cluster has more than %d brokers; %s", q->api->name, ver,
		         q->hdr.correlation_id, KP_SPLIT_MAX_DEST,
		         l->req_keys < 0 ? "the others are not asked"
		                         : "keys coordinated by the others are answered "
		                           "COORDINATOR_NOT_AVAILABLE");
	return true;
}

/* ---- anything else: whole, to one broker ------------------------------------ */

/*
 * ApiVersions v5 (KIP-1242) names the node the client means to reach: here a
 * virtual node id, which the real broker the request goes to answers with
 * REBOOTSTRAP_REQUIRED unless its own id happens to be the same (the Java 4.4
 * client then started over, depending on which broker a session's requests
 * went to: "no in-flight requests for node 2"). The node a client reaches at
 * this node's address is this node, so the NodeId becomes that of the broker
 * the request goes to (a broker refuses a ClusterId without a NodeId as
 * INVALID_REQUEST); the ClusterId is the real cluster's (the virtual
 * cluster's Metadata passes it on) and stays for the broker to check.
 * Returns the body to send, or NULL to send the client's as it came (other
 * APIs and versions, no node named, or a body that does not decode: the
 * broker answers that as it would).
 */
static struct kp_writer *kx_rapi_versions_body(struct kx_session *s, struct kx_rreq *q, int32_t broker)
{
	if (q->hdr.api_key != KP_API_API_VERSIONS || q->hdr.api_version < 5 ||
	    !kp_api_decodes(q->api, q->hdr.api_version, true))
		return NULL;
	size_t at = 4 + q->hdr.size;
	const uint8_t *body;
	struct kp_cursor c;
	if (!kx_frame_flat(&q->req, at, q->req.len, &body))
		return NULL;
	kp_cursor_init(&c, body, q->req.len - at);
	struct kp_struct *st = kp_decode(&q->arena, &c, &kp_api_versions_request, q->hdr.api_version, q->flexible, -1);
	int node = kp_field_index(&kp_api_versions_request, "NodeId");
	if (!st || node < 0 || st->v[node].i < 0)
		return NULL;
	kx_rdebug(s, "ApiVersions v%d names node %lld: sent to node %d naming it (the client reached this node)",
	          q->hdr.api_version, (long long)st->v[node].i, (int)broker);
	st->v[node].i = broker;
	struct kx_rscratch *rs = s->worker->rscratch;
	kp_writer_reset(&rs->body);
	kp_encode(&rs->body, st, q->hdr.api_version, q->flexible, -1);
	return kp_writer_ok(&rs->body) ? &rs->body : NULL;
}

/*
 * KIP-881: rack-aware assignors match a member's rack with its partitions'
 * replica racks. In the virtual cluster every replica is a node of the
 * region, whose rack Metadata says is the region; so a consumer's rack, as
 * a JoinGroup subscription (consumer protocol v3) or ConsumerGroupHeartbeat
 * names it, is sent as the region too: the group leader's assignor (classic
 * protocol) and the broker's (KIP-848) see racks consistent with what the
 * client was shown, whatever zone name the client was configured with.
 * Returns the body to send, or NULL to send the client's as it came (no
 * rack named, already the region, or a body that does not decode: the
 * broker answers that as it would).
 */
static struct kp_writer *kx_rrack_body(struct kx_session *s, struct kx_rreq *q)
{
	const char *region = s->worker->cfg->region;
	bool join = q->hdr.api_key == KP_API_JOIN_GROUP;
	if ((!join && q->hdr.api_key != KP_API_CONSUMER_GROUP_HEARTBEAT) || !region[0] ||
	    !kp_api_decodes(q->api, q->hdr.api_version, true))
		return NULL;
	struct kp_span rack = {(const uint8_t *)region, (int32_t)strlen(region)};
	size_t at = 4 + q->hdr.size;
	const uint8_t *body;
	struct kp_cursor c;
	if (!kx_frame_flat(&q->req, at, q->req.len, &body))
		return NULL;
	kp_cursor_init(&c, body, q->req.len - at);
	struct kp_struct *st =
	    kp_decode(&q->arena, &c, join ? &kp_join_group_request : &kp_consumer_group_heartbeat_request,
	              q->hdr.api_version, q->flexible, -1);
	if (!st)
		return NULL;
	struct kp_span was = {NULL, 0};
	if (join) {
		if (kp_join_group_set_rack(&q->arena, st, rack) == 0)
			return NULL;
	} else {
		struct kp_value *r = &st->v[KP_CONSUMER_GROUP_HEARTBEAT_REQ_RACK_ID];
		if (r->s.len < 0 || (r->s.len == rack.len && memcmp(r->s.ptr, rack.ptr, (size_t)rack.len) == 0))
			return NULL;
		was = r->s;
		r->s = rack;
	}
	kx_rdebug(s,
	          "%s v%d: the member's rack%s%.*s sent as the region, %s (KIP-881: the virtual cluster's replicas "
	          "are all in it)",
	          q->api->name, q->hdr.api_version, was.ptr ? " " : "", (int)was.len,
	          was.ptr ? (const char *)was.ptr : "", region);
	KX_METRIC_ADD(regional_racks_rewritten, 1);
	struct kx_rscratch *rs = s->worker->rscratch;
	kp_writer_reset(&rs->body);
	kp_encode(&rs->body, st, q->hdr.api_version, q->flexible, -1);
	return kp_writer_ok(&rs->body) ? &rs->body : NULL;
}

KX_MUST_CHECK static bool kx_rwhole(struct kx_session *s, struct kx_rreq *q)
{
	const struct kx_topology *t = kx_topology_cached(&s->worker->topology);
	if (!t || t->broker_cnt == 0) {
		kx_rlimited(KX_LOG_WARN, s, "no broker known to send %s to; closing",
		            q->api ? q->api->name : "a request");
		kx_regional_close(s, "no broker");
		return false;
	}
	bool used[1] = {true};
	if (!kx_rfrags(q, used, 1)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->frag[0].dest = -1;
	int32_t node = kx_rcoordinator(s, q, t);
	if (node < 0) { /* the session's usual broker, unless its connects fail: the next that does not */
		int64_t now = kx_now_ms();
		size_t first = s->number % t->broker_cnt, k = 0;
		while (k < t->broker_cnt &&
		       kx_pool_node_down(&s->worker->pool, t->brokers[(first + k) % t->broker_cnt].node_id, now))
			k++;
		node = t->brokers[(first + (k < t->broker_cnt ? k : 0)) % t->broker_cnt].node_id;
	}
	struct kp_writer *body = kx_rapi_versions_body(s, q, node);
	kx_rsend(s, q, 0, node, body ? body : kx_rrack_body(s, q), true);
	return true;
}

/*
 * SaslHandshake and SaslAuthenticate are the node's own to answer
 * (regional_auth.h): the answer's body is made now, in order with the
 * session's state, and queued in its turn (q->local). A refusal is answered,
 * then the client closed (nothing more is read from it).
 */
KX_MUST_CHECK static bool kx_rsasl(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	const struct kx_config *cfg = s->worker->cfg;
	struct kx_rauth off; /* no client authentication asked: SASL requests are refused */
	kx_rauth_init(&off, cfg, NULL);
	struct kx_rauth *a = s->rauth ? s->rauth : &off;
	const uint8_t *body;
	size_t at = 4 + q->hdr.size;
	char why[400];
	struct kp_cursor c;
	if (!kx_frame_flat(&q->req, at, q->req.len, &body)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	kp_writer_reset(&rs->body);
	enum kx_rauth_verdict v = kx_rauth_answer(a, cfg, kx_rusers, q->hdr.api_key, q->hdr.api_version, body,
	                                          q->req.len - at, &rs->body, &c, why, sizeof(why));
	if (v == KX_RAUTH_MALFORMED) {
		KX_METRIC_ADD(regional_sasl_refused, 1);
		kx_rprotocol_error(s, q->hdr.api_key == KP_API_SASL_HANDSHAKE ? "SaslHandshake" : "SaslAuthenticate",
		                   &c);
		return false;
	}
	size_t n;
	uint8_t *flat = kp_writer_flatten(&rs->body, &n);
	uint8_t *mine = flat ? kp_arena_alloc(&q->arena, n + 1) : NULL;
	if (!mine) {
		free(flat);
		kx_regional_close(s, "out of memory");
		return false;
	}
	memcpy(mine, flat, n);
	OPENSSL_cleanse(flat, n);
	free(flat);
	q->local = true;
	q->local_body = (struct kp_span){mine, (int32_t)n};
	q->left = 0;
	if (v == KX_RAUTH_AUTHENTICATED) {
		KX_METRIC_ADD(regional_sasl_authenticated, 1);
		kx_rinfo(s, "%s", why);
		size_t l = strlen(s->client.addr);
		snprintf(s->client.addr + l, sizeof(s->client.addr) - l, " %s", a->principal);
	} else if (v == KX_RAUTH_ANSWER_AND_CLOSE) {
		KX_METRIC_ADD(regional_sasl_refused, 1);
		kx_rwarn(s, "%s v%d: %s; answered %s, closing", q->api ? q->api->name : "SASL", q->hdr.api_version, why,
		         kx_rauth_error_name(a->error));
		s->rclosing = true;
	}
	kx_rauth_free(&off);
	return true;
}

/*
 * A raw SASL token after SaslHandshake v0 (fr: the whole frame, size and
 * bytes, taken over): answered by the node in the session's order, as a
 * raw token; a refusal closes the client without an answer, as Kafka does.
 */
KX_MUST_CHECK static bool kx_rtoken(struct kx_session *s, struct kx_frame *fr)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	struct kx_rreq *q = calloc(1, sizeof(*q));
	const uint8_t *p;
	char why[400];
	if (!q || !rs) {
		free(q);
		kx_frame_release(fr);
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->req = *fr;
	kp_arena_init(&q->arena, 4096);
	q->raw = q->local = true;
	q->api = kp_api_get(KP_API_SASL_AUTHENTICATE);
	q->hdr.api_key = KP_API_SASL_AUTHENTICATE;
	if (!kx_frame_flat(&q->req, 4, q->req.len, &p) || !kx_ring_push(&s->fifo, &q, UINT32_MAX)) {
		kx_rreq_free(q);
		kx_regional_close(s, "out of memory");
		return false;
	}
	kp_writer_reset(&rs->body);
	enum kx_rauth_verdict v = kx_rauth_token(s->rauth, kx_rusers, p, q->req.len - 4, &rs->body, why, sizeof(why));
	if (v == KX_RAUTH_ANSWER_AND_CLOSE) {
		KX_METRIC_ADD(regional_sasl_refused, 1);
		kx_rwarn(s, "raw SASL token after SaslHandshake v0: %s; closing (no answer in the v0 exchange)", why);
		kx_regional_close(s, "authentication refused");
		return false;
	}
	size_t n;
	uint8_t *flat = kp_writer_flatten(&rs->body, &n);
	uint8_t *mine = flat ? kp_arena_alloc(&q->arena, n + 1) : NULL;
	if (!mine) {
		free(flat);
		kx_regional_close(s, "out of memory");
		return false;
	}
	memcpy(mine, flat, n);
	free(flat);
	q->local_body = (struct kp_span){mine, (int32_t)n};
	if (v == KX_RAUTH_AUTHENTICATED) {
		KX_METRIC_ADD(regional_sasl_authenticated, 1);
		kx_rinfo(s, "%s (SaslHandshake v0, raw tokens)", why);
		size_t l = strlen(s->client.addr);
		snprintf(s->client.addr + l, sizeof(s->client.addr) - l, " %s", s->rauth->principal);
	}
	return q == kx_rreq_head(s) ? kx_regional_advance(s) : true;
}

/* One whole request frame from the client, taken by reference (fr: the call
 * takes it over), whose request header is header_size bytes long. */
KX_MUST_CHECK static bool kx_rrequest(struct kx_session *s, struct kx_frame *fr, size_t header_size)
{
	struct kx_rreq *q = calloc(1, sizeof(*q));
	if (!q || !kx_rscratch(s->worker)) {
		free(q);
		kx_frame_release(fr);
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->req = *fr;
	size_t len = q->req.len;
	kp_arena_init(&q->arena, 64 * len + (1 << 20));
	const uint8_t *hp; /* the header where it lies (copied only when it spans two reads) */
	if (4 + header_size > len || !kx_frame_flat(&q->req, 4, 4 + header_size, &hp)) {
		kx_rreq_free(q);
		kx_regional_close(s, "out of memory");
		return false;
	}
	struct kp_cursor c;
	kp_cursor_init(&c, hp, header_size);
	if (!kp_request_header_parse(&c, &q->hdr)) {
		KX_API_COUNT(decode_errors, -1);
		kx_rprotocol_error(s, "bad header", &c);
		kx_rreq_free(q);
		return false;
	}
	q->tm.in_ns = s->read_ns;
	KX_API_COUNT(requests, q->hdr.api_key);
	kx_conn_count(&s->stat.requests, 1);
	q->api = kp_api_get(q->hdr.api_key);
	q->flexible = kp_api_flexible(q->api, q->hdr.api_version);
	if (!kx_ring_push(&s->fifo, &q, UINT32_MAX)) {
		kx_rreq_free(q);
		kx_regional_close(s, "out of memory");
		return false;
	}
	if (s->parked) { /* behind a parked request: waits with it, in order */
		q->parked = true;
		s->parked++;
		return true;
	}
	return kx_rdispatch(s, q);
}

/* Splits or forwards q (in the session's FIFO, its turn to go); false when s closed. */
KX_MUST_CHECK static bool kx_rdispatch(struct kx_session *s, struct kx_rreq *q)
{
	bool decodes = q->api && kp_api_decodes(q->api, q->hdr.api_version, true);
	bool expects = true, ok;
	if (s->rauth && !kx_rauth_allows(s->rauth, q->hdr.api_key)) {
		kx_rwarn(s,
		         "%s v%d (corr %d) before authenticating (only ApiVersions, SaslHandshake and SaslAuthenticate "
		         "are taken before; sasl.users); closing",
		         q->api ? q->api->name : "unknown API", q->hdr.api_version, q->hdr.correlation_id);
		KX_METRIC_ADD(regional_sasl_refused, 1);
		kx_regional_close(s, "request before authentication");
		return false;
	}
	if (!decodes && (q->hdr.api_key == KP_API_SASL_HANDSHAKE || q->hdr.api_key == KP_API_SASL_AUTHENTICATE)) {
		/* Never forwarded: a shared connection must not carry a client's SASL. */
		kx_rwarn(s, "%s v%d: a version kstretch does not answer (SaslHandshake 0-1, SaslAuthenticate 0-2); "
		         "closing", q->api ? q->api->name : "SASL", q->hdr.api_version);
		KX_METRIC_ADD(regional_sasl_refused, 1);
		kx_regional_close(s, "SASL version");
		return false;
	}
	switch (decodes ? q->hdr.api_key : -1) {
	case KP_API_PRODUCE: ok = kx_rproduce(s, q, &expects); break;
	case KP_API_FETCH: ok = kx_rsplit(s, q, &kp_split_fetch_request, &kp_split_fetch_response); break;
	case KP_API_LIST_OFFSETS:
		ok = kx_rsplit(s, q, &kp_split_list_offsets_request, &kp_split_list_offsets_response);
		break;
	case KP_API_OFFSET_FOR_LEADER_EPOCH:
		ok = kx_rsplit(s, q, &kp_split_offset_for_leader_epoch_request, &kp_split_offset_for_leader_epoch_response);
		break;
	case KP_API_DELETE_RECORDS:
		ok = kx_rsplit(s, q, &kp_split_delete_records_request, &kp_split_delete_records_response);
		break;
	case KP_API_OFFSET_FETCH:
	case KP_API_DESCRIBE_GROUPS:
	case KP_API_LIST_GROUPS:
	case KP_API_DELETE_GROUPS:
	case KP_API_CONSUMER_GROUP_DESCRIBE:
	case KP_API_DESCRIBE_TRANSACTIONS:
	case KP_API_LIST_TRANSACTIONS: {
		const struct kp_keysplit_layout *kl = kp_keysplit_layout(q->hdr.api_key, q->hdr.api_version);
		ok = kl ? kx_rkeysplit(s, q, kl) : kx_rwhole(s, q); /* OffsetFetch v0-7: one group, whole */
		break;
	}
	case KP_API_SASL_HANDSHAKE:
	case KP_API_SASL_AUTHENTICATE: ok = kx_rsasl(s, q); break;
	default: ok = kx_radmin(s, q); break; /* every other key, as regional_api.h decides */
	}
	if (!ok)
		return false; /* closed: q went with the fifo */
	if (q->parked)
		return true; /* kx_rpark: nothing went */
	if (!expects) { /* acks=0: nothing to answer; the parts hold the frame while they wait to go */
		q->noanswer = true;
		q->left = 0;
	}
	/* Nothing went upstream (no partition with a known leader): answer now. The
	 * answer's write may fail and close s, so its result is ours: the caller's
	 * loop must not read s again (it did: a use after free, found by
	 * tests/hostile/test_hostile_regional.py). */
	if (q->left == 0)
		return kx_regional_advance(s);
	return true;
}

/* Sends s's parked requests in order, until one parks again; false when s closed. */
KX_MUST_CHECK static bool kx_rresume(struct kx_session *s)
{
	for (uint32_t i = 0; i < s->fifo.cnt && s->parked;) {
		struct kx_rreq *q = *(struct kx_rreq **)kx_ring_at(&s->fifo, i);
		if (!q->parked) {
			i++;
			continue;
		}
		q->parked = false;
		s->parked--;
		s->park_went = false;
		if (!kx_rdispatch(s, q))
			return false; /* s closed */
		/* q may be answered and freed by now. A request that parked meanwhile
		 * (q, or one read as q's answer made room) has a refresh in flight,
		 * whose answer resumes the rest. */
		if (s->park_went)
			return true;
		i = 0; /* the head may have been answered and more read: look again from the start */
	}
	return true;
}

/* After the worker's Metadata refresh (answered, failed or dropped): every session's parked requests go. */
static void kx_rresume_all(struct kx_worker *w)
{
	if (w->resuming) { /* a session closed under the loop dropped a new refresh: once more after it */
		w->resume_again = true;
		return;
	}
	w->resuming = true;
	do {
		w->resume_again = false;
		for (struct kx_session *s = w->sessions, *next; s; s = next) {
			next = s->next; /* resuming s may close s, and only s */
			if (s->regional && s->parked && kx_rresume(s))
				kx_rupdate_reading(s);
		}
	} while (w->resume_again);
	w->resuming = false;
}

/* Takes the client's whole requests out of its buffer (large ones read straight into their block). */
KX_MUST_CHECK static bool kx_rpump(struct kx_session *s)
{
	const struct kx_config *cfg = s->worker->cfg;
	struct kx_worker *w = s->worker;
	if (s->proxy_pending)
		return true; /* its PROXY header first (kx_rclient_readable) */
	while (s->client.state == KX_CLIENT_OPEN && !w->stopping && !s->rclosing &&
	       s->fifo.cnt < (uint32_t)cfg->max_inflight_requests && !s->resp.full) {
		if (s->rauth && kx_rauth_raw_next(s->rauth)) { /* after SaslHandshake v0: a raw token, no header */
			uint8_t sz[4];
			size_t have = evbuffer_get_length(s->req.buf);
			if (have < 4 || evbuffer_copyout(s->req.buf, sz, 4) != 4)
				break;
			int32_t n = kp_frame_size_get(sz);
			if (n < 0 || n > 2 * KX_SCRAM_MSG_MAX) {
				kx_rwarn(s, "a raw SASL token of %d bytes after SaslHandshake v0 (0..%d); closing", n,
				         2 * KX_SCRAM_MSG_MAX);
				KX_METRIC_ADD(regional_sasl_refused, 1);
				kx_regional_close(s, "raw SASL token size");
				return false;
			}
			if (have < 4 + (size_t)n) {
				kx_flow_want(&s->req, 4 + (size_t)n - have);
				break;
			}
			kx_flow_want(&s->req, 0);
			struct kx_frame fr;
			if (!kx_flow_take_frame(&s->req, 4 + (size_t)n, &fr) || !kx_rscratch(w)) {
				kx_frame_release(&fr);
				kx_regional_close(s, "out of memory");
				return false;
			}
			s->req_cleared++;
			if (!kx_rtoken(s, &fr))
				return false;
			continue;
		}
		/* Before it is authenticated, a client's frames are bounded as Kafka bounds them. */
		bool unauthenticated = s->rauth && !kx_rauth_authenticated(s->rauth);
		int64_t max_frame = unauthenticated && cfg->max_frame_bytes > KX_RAUTH_MAX_FRAME ? KX_RAUTH_MAX_FRAME
		                                                                                 : cfg->max_frame_bytes;
		enum kp_frame_status st = kp_peek_request(s->req.buf, 0, max_frame, &s->peek);
		if (st == KP_FRAME_MALFORMED && unauthenticated) {
			uint8_t sz[4];
			if (evbuffer_copyout(s->req.buf, sz, 4) == 4 && kp_frame_size_get(sz) > max_frame) {
				kx_rwarn(s, "a frame of %d bytes before authenticating (at most %d then); closing",
				         kp_frame_size_get(sz), KX_RAUTH_MAX_FRAME);
				KX_METRIC_ADD(regional_sasl_refused, 1);
				kx_regional_close(s, "frame too large before authentication");
				return false;
			}
		}
		if (st == KP_FRAME_INCOMPLETE)
			break;
		if (st == KP_FRAME_MALFORMED) {
			uint8_t first[2] = {0};
			if (!s->req_cleared && evbuffer_copyout(s->req.buf, first, 2) == 2 &&
			    kx_tls_looks_like_hello(first, 2)) {
				kx_rlimited(
				    KX_LOG_WARN, s,
				    "sent a TLS ClientHello to a plaintext listener (the client uses TLS: give "
				    "kstretch tls.cert and tls.key, or the client security.protocol=PLAINTEXT); "
				    "closing");
				KX_METRIC_ADD(tls_plaintext_refused, 1);
				kx_regional_close(s, "TLS on a plaintext listener");
				return false;
			}
			kx_rprotocol_error(s, "frame size or header", &s->peek.err);
			return false;
		}
		if (!s->peek.whole) { /* the rest comes in more reads, into blocks: nothing is copied */
			kx_flow_want(&s->req, 4 + (size_t)s->peek.frame_size - evbuffer_get_length(s->req.buf));
			break;
		}
		kx_flow_want(&s->req, 0);
		struct kx_frame fr;
		if (!kx_flow_take_frame(&s->req, 4 + (size_t)s->peek.frame_size, &fr)) {
			kx_regional_close(s, "out of memory");
			return false;
		}
		s->req_cleared++;
		if (!kx_rrequest(s, &fr, s->peek.req.size))
			return false;
	}
	if (s->fifo.cnt == 0)
		kx_flow_trim(&s->req); /* nothing owed: an idle client holds no read block */
	return true;
}

/*
 * The client's TLS handshake (tls.cert), one step per event, within
 * tls.handshake.timeout.ms, as mapped sessions do it (session.c): a client
 * that fails it (plaintext on the TLS port, no or a bad certificate under
 * tls.client.auth) is named and closed before any request is read. Once done,
 * the certificate's subject is logged and the session reads requests.
 */
static void kx_rclient_handshake(struct kx_session *s, short what)
{
	struct kx_sock *k = &s->client.sock;
	const struct kx_config *cfg = s->worker->cfg;
	if (what & EV_TIMEOUT) {
		kx_rinfo(s, "TLS handshake not complete after tls.handshake.timeout.ms (%d ms); closing",
		         cfg->tls_handshake_timeout_ms);
		KX_METRIC_ADD(tls_handshake_failures, 1);
		kx_regional_close(s, "TLS handshake timeout");
		return;
	}
	struct timeval limit = kx_ms_timeval(cfg->tls_handshake_timeout_ms);
	switch (kx_sock_handshake_step(k, &limit)) {
	case KX_TLS_WANT_READ:
	case KX_TLS_WANT_WRITE: return;
	case KX_TLS_FAILED:
		kx_rlimited(KX_LOG_INFO, s, "%s; closing", kx_tls_error(&k->tr));
		KX_METRIC_ADD(tls_handshake_failures, 1);
		kx_regional_close(s, "TLS handshake failed");
		return;
	case KX_TLS_DONE: break;
	}
	char how[128], subject[512];
	kx_tls_describe(&k->tr, how, sizeof(how));
	if (kx_tls_peer_subject(&k->tr, subject, sizeof(subject))) {
		kx_rinfo(s, "TLS %s, client certificate %s", how, subject);
		if (s->rauth && kx_rauth_certificate(s->rauth, cfg, subject)) {
			KX_METRIC_ADD(regional_sasl_authenticated, 1);
			size_t l = strlen(s->client.addr);
			snprintf(s->client.addr + l, sizeof(s->client.addr) - l, " %s", s->rauth->principal);
			kx_rinfo(s, "authenticated by its certificate (sasl.mtls.identity)");
		}
	} else {
		kx_rdebug(s, "TLS %s, no client certificate", how);
	}
	s->client.state = KX_CLIENT_OPEN;
	kx_rupdate_reading(s);
	if (k->reading)
		event_active(k->rev, EV_READ, 0); /* its first request may have come with its Finished */
}

static void kx_rclient_readable(evutil_socket_t fd, short what, void *arg)
{
	struct kx_session *s = arg;
	(void)fd;
	if (s->client.state == KX_CLIENT_HANDSHAKE) {
		kx_rclient_handshake(s, what);
		return;
	}
	if ((s->client.sock.tr.blocked & KX_TR_WRITE_WANTS_READ) && !(what & EV_TIMEOUT) && !kx_rflush_client(s))
		return; /* the answers' TLS write waited for this */
	if (what & EV_TIMEOUT) {
		if (s->fifo.cnt > 0 || kx_flow_ready(&s->resp) > 0)
			return; /* waiting for answers, not idle */
		kx_rinfo(s, "idle for idle.timeout.ms; closing");
		KX_METRIC_ADD(idle_timeouts, 1);
		kx_regional_close(s, "idle timeout");
		return;
	}
	ssize_t r = kx_flow_read(&s->req, &s->client.sock.tr);
	if (r == -2) {
		if (s->client.sock.tr.blocked & KX_TR_READ_WANTS_WRITE)
			kx_rwant_write(s);
		return;
	}
	if (r < 0) {
		const char *tls = kx_tls_error(&s->client.sock.tr);
		if (tls[0])
			/* a corrupt or forged record: say so */
			kx_rlimited(KX_LOG_INFO, s, "client error: %s; closing", tls);
		else
			kx_rdebug(s, "client error: %s", strerror(errno));
		kx_regional_close(s, "client error");
		return;
	}
	if (r == 0) {
		kx_regional_close(s, "client closed");
		return;
	}
	KX_METRIC_ADD(bytes_from_clients, (size_t)r);
	s->read_ns = kx_now_ns();
	kx_conn_count(&s->stat.bytes_in, (uint64_t)r);
	if (s->proxy_pending) {
		int h = kx_session_proxy_header(s);
		if (h < 0) {
			kx_regional_close(s, "no PROXY header");
			return;
		}
		if (h == 0)
			return; /* the rest of the header is on its way */
	}
	if (!kx_rpump(s))
		return;
	kx_rupdate_reading(s);
}

/* ---- answers ------------------------------------------------------------------ */

/* Where fragment f's answer body starts, after its response header (read once), or false. */
static bool kx_rbody(const struct kx_rreq *q, struct kx_rfrag *f, size_t *body_at)
{
	if (f->body_at) {
		*body_at = f->body_at;
		return true;
	}
	/* The header is a correlation id and, when flexible, tagged fields: a
	 * broker writes none, and more than KX_R_HEADER_MAX bytes of them do not
	 * read. Made contiguous only when its bytes straddle two reads. */
	size_t to = f->resp.len < 4 + KX_R_HEADER_MAX ? f->resp.len : 4 + KX_R_HEADER_MAX;
	const uint8_t *hp;
	struct kp_cursor c;
	struct kp_response_header rh;
	if (to < 8 || !kx_frame_flat(&f->resp, 4, to, &hp))
		return false;
	kp_cursor_init(&c, hp, to - 4);
	if (!kp_response_header_parse(&c, kp_response_header_version(q->hdr.api_key, q->hdr.api_version), &rh))
		return false;
	*body_at = f->body_at = 4 + rh.size;
	return true;
}

/* Starts the client's answer in rs->out: its response header (its correlation id). */
static void kx_ranswer_header(struct kx_rscratch *rs, const struct kx_rreq *q)
{
	struct kp_response_header rh = {.correlation_id = q->hdr.correlation_id,
	                                .header_version = kp_response_header_version(q->hdr.api_key, q->hdr.api_version)};
	kp_writer_reset(&rs->out);
	kp_response_header_write(&rs->out, &rh);
}

/* Queues rs->out on the client's flow, its references into the answers' frames. */
static bool kx_ranswer_queue(struct kx_session *s, struct kx_rreq *q)
{
	size_t cap = (size_t)q->req.nholds, n = 0;
	for (uint16_t i = 0; i < q->nfrag; i++)
		cap += (size_t)q->frag[i].resp.nholds;
	struct kx_hold **holds = kp_arena_alloc(&q->arena, cap * sizeof(*holds) + 1);
	size_t *lens = kp_arena_alloc(&q->arena, cap * sizeof(*lens) + 1);
	if (!holds || !lens)
		return false;
	for (uint16_t i = 0; i < q->nfrag; i++)
		for (int j = 0; j < q->frag[i].resp.nholds; j++) {
			holds[n] = q->frag[i].resp.holds[j];
			lens[n++] = q->frag[i].resp.lens[j];
		}
	for (int i = 0; i < q->req.nholds; i++) { /* an answer may name what the request did (a topic) */
		holds[n] = q->req.holds[i];
		lens[n++] = q->req.lens[i];
	}
	kx_queue_frame_refs(&s->resp, &s->worker->rscratch->out, holds, lens, n);
	return true;
}

/*
 * A part's ThrottleTimeMs (KIP-219). The client gets the largest of its
 * parts' (the merge's) and backs off itself; the broker, meanwhile, stops
 * reading the shared connection the part took for that long, so every
 * client whose requests take that connection waits too. Counted, so that
 * is visible: kstretch_regional_throttled_answers, _throttle_ms.
 */
static void kx_rthrottled(struct kx_session *s, const struct kx_rreq *q, int32_t node, int64_t ms)
{
	if (ms <= 0)
		return;
	KX_METRIC_ADD(regional_throttled_answers, 1);
	KX_METRIC_ADD(regional_throttle_ms, (uint64_t)ms);
	kx_rdebug(s, "%s v%d: node %d throttles (ThrottleTimeMs %lld): it stops reading that shared connection for as "
	          "long", q->api ? q->api->name : "?", q->hdr.api_version, (int)node, (long long)ms);
}

/*
 * Each part's answer decoded (schema, at the request's version) into
 * resp[its destination] (q->ndest of them); a part whose connection failed
 * or whose answer does not decode stays NULL (logged: then its items are
 * answered `instead`). Throttled answers noted (throttle: the field, -1
 * none). False when out of memory.
 */
static bool kx_rdecode_parts(struct kx_session *s, struct kx_rreq *q, const struct kp_schema *schema, int throttle,
                             const char *instead, struct kp_struct ***out)
{
	struct kp_struct **resp = kp_arena_alloc(&q->arena, (size_t)q->ndest * sizeof(*resp));
	if (!resp)
		return false;
	for (uint16_t i = 0; i < q->nfrag; i++) {
		struct kx_rfrag *f = &q->frag[i];
		size_t at;
		const uint8_t *body; /* decoded in place, copied only when it straddles two reads */
		if (!f->resp.len)
			continue;
		if (!kx_rbody(q, f, &at)) {
			kx_rwarn(s, "%s v%d: node %d's answer has no readable response header; %s", q->api->name,
			         q->hdr.api_version, (int)f->node, instead);
			continue;
		}
		if (!kx_frame_flat(&f->resp, at, f->resp.len, &body))
			return false;
		struct kp_cursor c;
		kp_cursor_init(&c, body, f->resp.len - at);
		resp[f->dest] = kp_decode(&q->arena, &c, schema, q->hdr.api_version, q->flexible, -1);
		if (!resp[f->dest])
			kx_rwarn(s, "%s v%d: node %d's answer does not decode (%s reading %s); %s", q->api->name,
			         q->hdr.api_version, (int)f->node, kp_error_name(c.err),
			         c.err_field ? c.err_field : "?", instead);
		else if (throttle >= 0 && resp[f->dest]->v[throttle].present)
			kx_rthrottled(s, q, f->node, resp[f->dest]->v[throttle].i);
	}
	*out = resp;
	return true;
}

/* Produce, ListOffsets, OffsetForLeaderEpoch, DeleteRecords: the decoded parts merged in client order. */
static bool kx_ranswer_merged(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	struct kp_struct **resp;
	if (!kx_rdecode_parts(s, q, q->layout->body, q->layout->throttle_time_ms,
	                      "its partitions answered NOT_LEADER_OR_FOLLOWER", &resp))
		return false;
	struct kp_struct *m = kp_split_merge(&q->arena, q->layout, &q->split, resp, KX_ERR_NOT_LEADER_OR_FOLLOWER);
	if (!m)
		return false;
	if (q->hdr.api_key == KP_API_PRODUCE && q->hdr.api_version >= 10) {
		/* Real node ids and addresses (KIP-951): the client's virtual cluster has neither. */
		m->v[KP_PRODUCE_RESP_NODE_ENDPOINTS].present = false;
		const struct kp_list *topics = &m->v[KP_PRODUCE_RESP_RESPONSES].a;
		for (int32_t i = 0; i < topics->cnt; i++) {
			const struct kp_list *parts = &topics->items[i].st->v[KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES].a;
			for (int32_t j = 0; j < parts->cnt; j++)
				parts->items[j].st->v[KP_PRODUCE_RESP_PART_CURRENT_LEADER].present = false;
		}
	}
	kx_ranswer_header(rs, q);
	kp_encode(&rs->out, m, q->hdr.api_version, q->flexible, -1);
	if (!kp_writer_ok(&rs->out))
		return false;
	if (!kx_ranswer_queue(s, q))
		return false;
	if (kx_rany_stale(q->layout, m)) /* after the queue: it takes rs->body and rs->out */
		kx_rrefresh(s, "a broker answered that it does not lead a partition");
	return true;
}

/* Fetch: the parts merged in client order, records by reference. */
static bool kx_ranswer_fetch(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	size_t niov = 0;
	for (uint16_t i = 0; i < q->nfrag; i++)
		niov += (size_t)q->frag[i].resp.niov;
	struct iovec *iov = kp_arena_alloc(&q->arena, niov * sizeof(*iov) + 1);
	struct kp_pieces *pieces = kp_arena_alloc(&q->arena, (size_t)q->nfrag * sizeof(*pieces) + 1);
	struct kp_pieces **parts = kp_arena_alloc(&q->arena, (size_t)q->nfrag * sizeof(*parts) + 1);
	if (!iov || !pieces || !parts)
		return false;
	size_t *records = kp_arena_alloc(&q->arena, (size_t)q->nfrag * sizeof(*records) + 1);
	if (!records)
		return false;
	rs->fetch.error_watch = kx_rstale_fetch_error;
	rs->fetch.part_records = records;
	for (int tries = 0; tries <= q->nfrag; tries++) {
		size_t used = 0;
		for (uint16_t i = 0; i < q->nfrag; i++) {
			struct kx_rfrag *f = &q->frag[i];
			size_t at;
			parts[i] = NULL;
			if (!f->resp.len || !kx_rbody(q, f, &at))
				continue;
			/* The answer where it was read, in as many pieces as reads: its
			 * records are referenced from there, never copied. */
			int n = kx_frame_iov_from(&f->resp, at, iov + used);
			kp_pieces_init(&pieces[i], iov + used, n, f->resp.len - at);
			used += (size_t)n;
			parts[i] = &pieces[i];
		}
		if (kp_fetch_merge(&rs->fetch, q->hdr.api_version, q->flexible, q->want, q->nwant, parts, q->nfrag,
		                   KX_ERR_NOT_LEADER_OR_FOLLOWER))
			break;
		if (rs->fetch.bad_part < 0 || rs->fetch.bad_part >= q->nfrag) {
			rs->fetch.part_records = NULL;
			return false;
		}
		kx_rwarn(s, "Fetch v%d: node %d's answer does not walk (%s reading %s); its partitions answered "
		         "NOT_LEADER_OR_FOLLOWER", q->hdr.api_version, (int)q->frag[rs->fetch.bad_part].node,
		         kp_error_name(rs->fetch.err), rs->fetch.err_field ? rs->fetch.err_field : "?");
		kx_frame_release(&q->frag[rs->fetch.bad_part].resp);
	}
	rs->fetch.part_records = NULL; /* q's arena: freed with q */
	kx_rfetch_note(s, q, records);
	if (rs->fetch.throttled) {
		KX_METRIC_ADD(regional_throttled_answers, (uint64_t)rs->fetch.throttled);
		KX_METRIC_ADD(regional_throttle_ms, (uint64_t)rs->fetch.throttle_sum);
		kx_rdebug(s, "Fetch v%d: %d parts throttled (ThrottleTimeMs summing to %lld): their brokers stop reading "
		          "those shared connections for as long", q->hdr.api_version, rs->fetch.throttled,
		          (long long)rs->fetch.throttle_sum);
	}
	if (rs->fetch.preferred_dropped)
		kx_rdebug(s, "Fetch v%d: %zu partitions answered with a PreferredReadReplica (a real broker); told none, "
		          "kstretch keeps choosing the replica", q->hdr.api_version, rs->fetch.preferred_dropped);
	kx_ranswer_header(rs, q);
	kp_write_writer(&rs->out, &rs->fetch.body);
	if (!kp_writer_ok(&rs->out))
		return false;
	if (!kx_ranswer_queue(s, q))
		return false;
	if (rs->fetch.missing) /* partitions of failed parts */
		kx_rrefresh(s, "a Fetch part failed");
	else if (rs->fetch.watched)
		kx_rrefresh(s, "a broker answered that it does not serve a Fetch partition");
	return true;
}

/* Metadata: learned into the topology, answered as the region's virtual cluster. */
static bool kx_ranswer_metadata(struct kx_session *s, struct kx_rreq *q, size_t at)
{
	struct kx_worker *w = s->worker;
	struct kx_rscratch *rs = w->rscratch;
	struct kx_rfrag *f = &q->frag[0];
	int16_t ver = q->hdr.api_version;
	const uint8_t *body;
	if (!kx_frame_flat(&f->resp, at, f->resp.len, &body))
		return false;
	struct kp_cursor c;
	kp_cursor_init(&c, body, f->resp.len - at);
	struct kp_struct *real = kp_decode(&q->arena, &c, &kp_metadata_response, ver, q->flexible, -1);
	if (!real) {
		kx_rwarn(s, "Metadata v%d: node %d's answer does not decode (%s reading %s)", ver, (int)f->node,
		         kp_error_name(c.err), c.err_field ? c.err_field : "?");
		return false;
	}
	kx_rewrite_learn_metadata(&w->rewriter, real);
	if (kx_rewrite_merge_topology(&w->rewriter, w->cfg))
		kx_rdebug(s, "topology updated from a Metadata answer");
	const struct kx_nodes *nodes = kx_nodes_cached(&w->nodes);
	if (!nodes) {
		kx_rlimited(KX_LOG_WARN, s, "no regional node set yet (regional.nodes.dns has not answered); closing");
		return false;
	}
	int16_t err = KX_VMETA_REAL_ERROR;
	if (ver >= 13 && s->nodes_digest && s->nodes_digest != nodes->digest)
		err = KR_ERR_REBOOTSTRAP_REQUIRED;
	s->nodes_digest = nodes->digest;
	struct kx_virtual_cluster vc = {.nodes = &nodes->set, .region = w->cfg->region};
	struct kp_struct *virt;
	if (kx_virtual_metadata(&q->arena, real, ver, &vc, err, &virt) != KX_VMETA_OK)
		return false;
	kx_ranswer_header(rs, q);
	kp_encode(&rs->out, virt, ver, q->flexible, -1);
	if (!kp_writer_ok(&rs->out))
		return false;
	if (!kx_ranswer_queue(s, q))
		return false;
	return true;
}

/* Names regional node n as a coordinator: its id and address (a broker's fields at id, host, port of st). */
static void kx_rname_node(struct kp_struct *st, int id, int host, int port, const struct kr_regional_node *n)
{
	st->v[id].i = n->id;
	st->v[host].s = (struct kp_span){(const uint8_t *)n->host, (int32_t)strlen(n->host)};
	st->v[port].i = n->port;
}

/*
 * FindCoordinator: each key's real coordinator learned (the worker sends the
 * key's requests there), and the client told the regional node
 * kr_regional_coordinator names for the key (the same on every node), so a
 * group's requests from all its members reach one regional node. An error
 * answer passes as it came.
 */
static bool kx_ranswer_find_coordinator(struct kx_session *s, struct kx_rreq *q, size_t at)
{
	struct kx_worker *w = s->worker;
	struct kx_rscratch *rs = w->rscratch;
	struct kx_rfrag *f = &q->frag[0];
	int16_t ver = q->hdr.api_version;
	size_t qat = 4 + q->hdr.size;
	const uint8_t *body, *qbody;
	struct kp_cursor c, qc;
	if (!kx_frame_flat(&f->resp, at, f->resp.len, &body) || qat > q->req.len ||
	    !kx_frame_flat(&q->req, qat, q->req.len, &qbody))
		return false;
	kp_cursor_init(&c, body, f->resp.len - at);
	kp_cursor_init(&qc, qbody, q->req.len - qat);
	struct kp_struct *resp = kp_decode(&q->arena, &c, &kp_find_coordinator_response, ver, q->flexible, -1);
	struct kp_struct *req = kp_decode(&q->arena, &qc, &kp_find_coordinator_request, ver, q->flexible, -1);
	const struct kx_nodes *nodes = kx_nodes_cached(&w->nodes);
	if (!resp || !req || !nodes || nodes->set.cnt == 0) {
		kx_rwarn(s, "FindCoordinator v%d: %s", ver,
		         !nodes || nodes->set.cnt == 0 ? "no regional node set yet" : "the request or its answer does not decode");
		return false;
	}
	int64_t key_type = ver >= 1 ? req->v[KP_FIND_COORDINATOR_REQUEST_KEY_TYPE].i : 0;
	int8_t type = key_type == KP_COORD_TRANSACTION ? KP_COORD_TRANSACTION : KP_COORD_GROUP; /* 2 (share): a group */
	int64_t now = kx_now_ms();
	if (ver < 4) {
		struct kp_span key = req->v[KP_FIND_COORDINATOR_REQUEST_KEY].s;
		if (resp->v[KP_FIND_COORDINATOR_RESPONSE_ERROR_CODE].i == 0 && key.len >= 0) {
			kr_coordinators_learn(&w->coords, type, (const char *)key.ptr, (size_t)key.len,
			                      (int32_t)resp->v[KP_FIND_COORDINATOR_RESPONSE_NODE_ID].i, now);
			int i = kr_regional_coordinator(&nodes->set, type, (const char *)key.ptr, (size_t)key.len);
			kx_rname_node(resp, KP_FIND_COORDINATOR_RESPONSE_NODE_ID, KP_FIND_COORDINATOR_RESPONSE_HOST,
			              KP_FIND_COORDINATOR_RESPONSE_PORT, &nodes->set.nodes[i]);
		}
	} else {
		const struct kp_list *list = &resp->v[KP_FIND_COORDINATOR_RESPONSE_COORDINATORS].a;
		for (int32_t j = 0; j < list->cnt; j++) {
			struct kp_struct *e = list->items[j].st;
			struct kp_span key = e->v[KP_FIND_COORDINATOR_COORDINATOR_KEY].s;
			if (e->v[KP_FIND_COORDINATOR_COORDINATOR_ERROR_CODE].i != 0 || key.len < 0)
				continue;
			kr_coordinators_learn(&w->coords, type, (const char *)key.ptr, (size_t)key.len,
			                      (int32_t)e->v[KP_FIND_COORDINATOR_COORDINATOR_NODE_ID].i, now);
			int i = kr_regional_coordinator(&nodes->set, type, (const char *)key.ptr, (size_t)key.len);
			kx_rname_node(e, KP_FIND_COORDINATOR_COORDINATOR_NODE_ID, KP_FIND_COORDINATOR_COORDINATOR_HOST,
			              KP_FIND_COORDINATOR_COORDINATOR_PORT, &nodes->set.nodes[i]);
		}
	}
	kx_ranswer_header(rs, q);
	kp_encode(&rs->out, resp, ver, q->flexible, -1);
	if (!kp_writer_ok(&rs->out))
		return false;
	KX_METRIC_ADD(responses_rewritten, 1);
	KX_API_COUNT(rewrites, q->hdr.api_key);
	return kx_ranswer_queue(s, q);
}

/* A request sent whole: its answer, correlation id restored, rewritten where it names brokers. */
static bool kx_ranswer_whole(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	struct kx_rfrag *f = &q->frag[0];
	size_t at;
	const uint8_t *p;
	if (!f->resp.len || !kx_rbody(q, f, &at))
		return false; /* its connection failed: the client asks again elsewhere */
	switch (q->hdr.api_key) {
	case KP_API_METADATA: return kx_ranswer_metadata(s, q, at);
	case KP_API_FIND_COORDINATOR:
		if (kp_api_decodes(q->api, q->hdr.api_version, false))
			return kx_ranswer_find_coordinator(s, q, at);
		__attribute__((fallthrough)); /* a version the codec does not decode: rewritten as far as it can be */
	case KP_API_DESCRIBE_CLUSTER:
		if (kp_api_decodes(q->api, q->hdr.api_version, false))
			return kx_ranswer_describe_cluster(s, q, at);
		__attribute__((fallthrough));
	case KP_API_API_VERSIONS:
		/* Rewritten from contiguous bytes (copied only when they straddle two
		 * reads); the frame's bytes are kstretch's own to write over. */
		if (!kx_frame_flat(&f->resp, 4, f->resp.len, &p) ||
		    !kp_response_header_set_correlation_id((uint8_t *)p, f->resp.len - 4, q->hdr.correlation_id) ||
		    !kx_rewrite_response(&w->rewriter, w->cfg, q->hdr.api_key, q->hdr.api_version, p, f->resp.len - 4))
			return false;
		KX_METRIC_ADD(responses_rewritten, 1);
		KX_API_COUNT(rewrites, q->hdr.api_key);
		kx_queue_frame_refs(&s->resp, &w->rewriter.out, f->resp.holds, f->resp.lens, (size_t)f->resp.nholds);
		return true;
	default: {
		kx_rcoordinator_answered(s, q, f, at);
		/* The client's correlation id, then the rest where it was read. */
		struct kx_rscratch *rs = w->rscratch;
		kp_writer_reset(&rs->out);
		kp_write_i32(&rs->out, q->hdr.correlation_id);
		kx_frame_write_ref(&rs->out, &f->resp, 8);
		if (!kp_writer_ok(&rs->out))
			return false;
		KX_METRIC_ADD(responses_forwarded, 1);
		kx_queue_frame_refs(&s->resp, &rs->out, f->resp.holds, f->resp.lens, (size_t)f->resp.nholds);
		return true;
	}
	}
}

/* Whether this node presents itself as the coordinator of a listed key (kx_rkeysplit). */
struct kx_rlisting {
	const struct kr_regional_nodes *set;
	int self; /* this node's index in set; -1: not known (node.id unset), every key kept */
	int8_t type;
};

static bool kx_rlisting_keep(struct kp_span key, void *ctx)
{
	const struct kx_rlisting *l = ctx;
	return l->self < 0 ||
	       kr_regional_coordinator(l->set, l->type, (const char *)key.ptr, (size_t)key.len) == l->self;
}

/* A request split by key, or a listing: the parts' answers joined in the client's order (kx_rkeysplit). */
static bool kx_ranswer_keysplit(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	struct kx_rscratch *rs = w->rscratch;
	const struct kp_keysplit_layout *l = q->klayout;
	int16_t ver = q->hdr.api_version;
	struct kp_struct **resp, *m;
	if (!kx_rdecode_parts(s, q, l->response, l->throttle_time_ms,
	                      l->req_keys < 0 ? "the listing is answered without it, COORDINATOR_NOT_AVAILABLE"
	                                      : "its keys answered COORDINATOR_NOT_AVAILABLE",
	                      &resp))
		return false;
	if (l->req_keys < 0) {
		const struct kx_nodes *nodes = kx_nodes_cached(&w->nodes);
		struct kx_rlisting keep = {.set = nodes ? &nodes->set : NULL, .self = -1, .type = l->key_type};
		if (nodes && nodes->set.cnt > 0 && w->cfg->node_id >= 0)
			keep.self = kr_regional_nodes_index(&nodes->set, w->cfg->node_id);
		m = kp_keysplit_gather(&q->arena, l, ver, resp, q->nused, keep.self >= 0 ? kx_rlisting_keep : NULL,
		                       &keep, KP_ERR_COORDINATOR_NOT_AVAILABLE);
	} else {
		m = kp_keysplit_merge(&q->arena, l, q->kreq, ver, q->kdest, resp, q->ndest,
		                      KP_ERR_COORDINATOR_NOT_AVAILABLE);
		const struct kp_list *items = m ? &m->v[l->resp_items].a : NULL;
		for (int32_t i = 0; items && i < items->cnt; i++) {
			int16_t err = (int16_t)items->items[i].st->v[l->resp_error].i;
			int32_t d = q->kdest[i];
			if (d < 0 || !resp[d] ||
			    (err != KP_ERR_NOT_COORDINATOR && err != KP_ERR_COORDINATOR_NOT_AVAILABLE))
				continue;
			int32_t node = -1;
			for (uint16_t j = 0; j < q->nfrag; j++)
				if (q->frag[j].dest == d)
					node = q->frag[j].node;
			kx_rcoordinator_moved(s, q, l->key_type, kp_keysplit_key(l, q->kreq, i), err, node);
		}
	}
	if (!m)
		return false;
	kx_ranswer_header(rs, q);
	kp_encode(&rs->out, m, ver, q->flexible, -1);
	if (!kp_writer_ok(&rs->out))
		return false;
	KX_METRIC_ADD(responses_rewritten, 1);
	KX_API_COUNT(rewrites, q->hdr.api_key);
	return kx_ranswer_queue(s, q);
}

/* Answers the head request (complete): false when the client must be closed. */
static bool kx_ranswer(struct kx_session *s, struct kx_rreq *q)
{
	if (q->local) { /* the node's own answer (SASL) */
		struct kx_rscratch *rs = s->worker->rscratch;
		if (q->raw)
			kp_writer_reset(&rs->out); /* a raw token: its size, then its bytes */
		else
			kx_ranswer_header(rs, q);
		kp_write_raw(&rs->out, q->local_body.ptr, (size_t)q->local_body.len);
		if (!kp_writer_ok(&rs->out))
			return false;
		kx_queue_frame_refs(&s->resp, &rs->out, NULL, NULL, 0);
		return true;
	}
	if (q->klayout)
		return kx_ranswer_keysplit(s, q);
	if (q->cfg)
		return kx_ranswer_configs(s, q);
	switch (q->layout ? q->hdr.api_key : -1) {
	case KP_API_FETCH: return kx_ranswer_fetch(s, q);
	case -1: return kx_ranswer_whole(s, q);
	default: return kx_ranswer_merged(s, q);
	}
}

/* Answers, in client order, every request at the head whose parts are all in.
 * False when s closed (the caller returns at once). */
KX_MUST_CHECK static bool kx_regional_advance(struct kx_session *s)
{
	if (s->answering)
		return true;
	s->answering = true;
	bool ok = true;
	struct kx_rreq *q;
	while (ok && (q = kx_rreq_head(s)) && q->left == 0 && !q->parked) {
		ok = q->noanswer || kx_ranswer(s, q);
		if (ok && !q->noanswer) {
			kx_timing_done(q->hdr.api_key, &q->tm, kx_now_ns());
			KX_API_COUNT(responses, q->hdr.api_key);
		}
		kx_conn_count(&s->stat.answers, 1);
		if (!ok && s->worker->pool.auth_failing) /* the pool's SASL failure was logged (rate-limited) */
			kx_rdebug(s,
			          "%s v%d (corr %d): cannot answer (kstretch's upstream SASL authentication fails); "
			          "closing the client so it starts again",
			          q->api ? q->api->name : "?", q->hdr.api_version, q->hdr.correlation_id);
		else if (!ok)
			kx_rlimited(
			    KX_LOG_WARN, s,
			    "%s v%d (corr %d): cannot answer (its broker connection failed, or the answer did not "
			    "decode); closing the client so it starts again",
			    q->api ? q->api->name : "?", q->hdr.api_version, q->hdr.correlation_id);
		kx_ring_pop(&s->fifo);
		kx_rreq_free(q);
	}
	s->answering = false;
	if (!ok) {
		kx_regional_close(s, "answer failed");
		return false;
	}
	if (s->fifo.cnt == 0)
		kx_flow_trim(&s->req); /* nothing owed: an idle client holds no read block */
	if (!kx_rflush_client(s))
		return false;
	kx_rupdate_reading(s);
	/* Room again: requests already buffered go now. */
	if (s->client.sock.reading && evbuffer_get_length(s->req.buf)) {
		if (!kx_rpump(s))
			return false;
		kx_rupdate_reading(s);
	}
	return true;
}

void kx_regional_answer(struct kx_session *s, const struct kx_up_inflight *e, struct kx_frame *fr)
{
	struct kx_rreq *q = e->req;
	KX_BUG_ON(!q || e->fragment >= q->nfrag || q->frag[e->fragment].done);
	struct kx_rfrag *f = &q->frag[e->fragment];
	f->done = true;
	q->tm.answered_ns = kx_now_ns();
	if (fr) {
		f->resp = *fr;
		*fr = (struct kx_frame){0};
	}
	if (q == s->worker->rrefresh) {
		kx_rrefresh_done(s, q);
		return;
	}
	if (q == s->worker->rlookup) {
		kx_rlookup_done(s, q);
		return;
	}
	if (!fr) {
		kx_rrefresh(s, "a broker connection failed");
		KX_METRIC_ADD(regional_fragments_failed, 1);
	}
	if (--q->left == 0 && q == kx_rreq_head(s) && !kx_regional_advance(s))
		return; /* s closed: the pool touches nothing of s after this call */
}

/* ---- admin: what every other API key becomes (regional_api.h) ------------------- */

/*
 * A request for an API regional mode does not offer (left out of its
 * ApiVersions answer): logged, and the client closed, as a Kafka broker
 * closes a connection that sends an API it does not offer. Forwarding it
 * would show the client real broker ids or addresses, or act on brokers the
 * client cannot name.
 */
static bool kx_rrefuse(struct kx_session *s, struct kx_rreq *q)
{
	kx_rwarn(s,
	         "%s (API key %d) v%d (corr %d) is not offered in regional mode (not in its ApiVersions answer: it "
	         "cannot be answered as the virtual cluster); closing, as a broker does",
	         q->api ? q->api->name : "an unknown API", (int)q->hdr.api_key, q->hdr.api_version, q->hdr.correlation_id);
	KX_METRIC_ADD(regional_api_refused, 1);
	kx_regional_close(s, "API not offered");
	return false;
}

/* One line for the resources a config request had answered INVALID_REQUEST by kstretch. */
static void kx_rconfigs_refused(struct kx_session *s, const struct kx_rreq *q, const struct kr_regional_nodes *set)
{
	const struct kp_configs_route *r = &q->cfg_route;
	int32_t refused = 0, first = -1;
	for (int32_t i = 0; i < r->cnt; i++)
		if (r->refused[i] && refused++ == 0)
			first = i;
	if (!refused)
		return;
	struct kp_span name = r->names[first];
	kx_rwarn(s,
	         "%s v%d (corr %d): %d broker resource(s) answered INVALID_REQUEST, the first named \"%.*s\": not one of "
	         "the region's %zu nodes%s",
	         q->api->name, q->hdr.api_version, q->hdr.correlation_id, (int)refused, name.len > 64 ? 64 : (int)name.len,
	         (const char *)name.ptr, set->cnt, r->node >= 0 ? ", or a second node in one request" : "");
	KX_METRIC_ADD(regional_broker_configs_refused, (uint64_t)refused);
}

/*
 * DescribeConfigs, AlterConfigs, IncrementalAlterConfigs: a broker resource
 * names a virtual node; the request goes to the real broker that node stands
 * for (kr_regional_stand_in), naming it by its own id, and the answer names
 * the node again (configs.h). Without a broker resource naming a node it goes
 * to any broker (a topic, the cluster default ""), as Kafka's clients send it.
 */
KX_MUST_CHECK static bool kx_rconfigs(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	int16_t ver = q->hdr.api_version;
	if (!kp_api_decodes(q->api, ver, true))
		return kx_rrefuse(s, q); /* a version not offered (the clamp): it would go unrewritten */
	const struct kx_topology *t = kx_topology_cached(&w->topology);
	const struct kx_nodes *nodes = kx_nodes_cached(&w->nodes);
	if (!t || t->broker_cnt == 0 || !nodes || nodes->set.cnt == 0) {
		kx_rwarn(s, "no %s known to route %s to; closing", !nodes || !nodes->set.cnt ? "regional node set" : "broker",
		         q->api->name);
		kx_regional_close(s, "no broker");
		return false;
	}
	size_t at = 4 + q->hdr.size;
	const uint8_t *body;
	if (at > q->req.len || !kx_frame_flat(&q->req, at, q->req.len, &body)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	struct kp_cursor c;
	kp_cursor_init(&c, body, q->req.len - at);
	struct kp_struct *req =
	    kp_decode(&q->arena, &c, kp_configs_request_schema(q->hdr.api_key), ver, q->flexible, -1);
	if (!req) {
		kx_rprotocol_error(s, q->api->name, &c);
		return false;
	}
	struct kp_configs_route *r = &q->cfg_route;
	if (!kp_configs_route(&q->arena, q->hdr.api_key, req, nodes->set.ids, nodes->set.cnt, r)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->cfg = true;
	q->cfg_real = -1;
	kx_rconfigs_refused(s, q, &nodes->set);
	if (r->node >= 0) {
		q->cfg_real = kr_regional_stand_in(t, w->cfg->region, r->node);
		if (q->cfg_real < 0 || !kp_configs_rename(&q->arena, req, q->cfg_real)) {
			kx_regional_close(s, "out of memory");
			return false;
		}
		KX_METRIC_ADD(regional_broker_configs, 1);
		kx_rdebug(s, "%s v%d names node %d as a broker: sent to broker %d, the one it stands for", q->api->name,
		          ver, (int)r->node, (int)q->cfg_real);
	}
	if (r->cnt > 0 && r->forwarded == 0)
		return true; /* every resource refused: answered here (q->left 0) */
	bool used[1] = {true};
	if (!kx_rfrags(q, used, 1)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->frag[0].dest = -1;
	int32_t node = q->cfg_real >= 0 ? q->cfg_real : t->brokers[s->number % t->broker_cnt].node_id;
	struct kx_rscratch *rs = w->rscratch;
	kp_writer_reset(&rs->body);
	kp_encode(&rs->body, req, ver, q->flexible, -1);
	if (!kp_writer_ok(&rs->body)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	kx_rsend(s, q, 0, node, &rs->body, true);
	return true;
}

/*
 * DescribeProducers: a broker describes only the partitions it leads, so the
 * request is cut by each partition's real leader (describeproducers.h) and
 * the answers merged in the client's order by kx_ranswer_merged, as a split
 * of split.h is. A partition whose leader the node does not know goes
 * nowhere and is answered NOT_LEADER_OR_FOLLOWER (the node refreshes its
 * Metadata; the client retries).
 */
KX_MUST_CHECK static bool kx_rproducers(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_rscratch *rs = s->worker->rscratch;
	const struct kx_topology *t = kx_topology_cached(&s->worker->topology);
	int16_t ver = q->hdr.api_version;
	size_t at = 4 + q->hdr.size;
	const uint8_t *body;
	if (!kx_rdests_init(q, t) || at > q->req.len || !kx_frame_flat(&q->req, at, q->req.len, &body)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	struct kp_cursor c;
	kp_cursor_init(&c, body, q->req.len - at);
	struct kp_struct *st = kp_decode(&q->arena, &c, &kp_describe_producers_request, ver, q->flexible, -1);
	if (!st) {
		kx_rprotocol_error(s, q->api->name, &c);
		return false;
	}
	int64_t n = kp_describe_producers_count(st);
	int32_t *dest = kp_arena_alloc(&q->arena, (size_t)(n > 0 ? n : 0) * sizeof(*dest) + 1);
	if (n < 0 || !dest) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	bool unroutable = false;
	int64_t k = 0;
	const struct kp_list *topics = &st->v[KP_DESCRIBE_PRODUCERS_REQ_TOPICS].a;
	for (int32_t i = 0; i < topics->cnt; i++) {
		const struct kp_struct *ts = topics->items[i].st;
		struct kp_span name = ts->v[KP_DESCRIBE_PRODUCERS_REQ_TOPIC_NAME].s;
		const struct kx_topic *tp = kx_rtopic(t, false, name.ptr, name.len > 0 ? (size_t)name.len : 0);
		const struct kp_list *parts = &ts->v[KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES].a;
		for (int32_t j = 0; j < parts->cnt; j++, k++) {
			const struct kx_partition *p = tp ? kx_topic_partition(tp, (int32_t)parts->items[j].i) : NULL;
			int b = kx_rdest(t, p ? p->leader : -1);
			dest[k] = kx_rdest_of(q, b);
			unroutable |= b < 0;
		}
	}
	if (!kp_describe_producers_split(&q->arena, st, ver, dest, (size_t)n, q->ndest, &q->split)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	q->layout = &kp_split_describe_producers_response;
	bool used[KP_SPLIT_MAX_DEST] = {false};
	for (int d = 0; d < q->ndest; d++)
		used[d] = q->split.dests[d].request != NULL;
	if (!kx_rfrags(q, used, q->ndest)) {
		kx_regional_close(s, "out of memory");
		return false;
	}
	for (uint16_t i = 0; i < q->nfrag; i++) {
		kp_writer_reset(&rs->body);
		kp_encode(&rs->body, q->split.dests[q->frag[i].dest].request, ver, q->flexible, -1);
		kx_rsend(s, q, i, kx_rpart_node(q, t, i), &rs->body, true);
	}
	kx_rtoo_wide(s, q);
	if (unroutable)
		kx_rrefresh(s, "a request names a partition without a known leader");
	return true;
}

/* Every API key that is not split, a Metadata, a coordinator's or SASL: by its kind (regional_api.h). */
KX_MUST_CHECK static bool kx_radmin(struct kx_session *s, struct kx_rreq *q)
{
	switch (q->api ? kr_regional_api(q->hdr.api_key) : KR_RAPI_TRIMMED) {
	case KR_RAPI_TRIMMED: return kx_rrefuse(s, q);
	case KR_RAPI_CONFIGS: return kx_rconfigs(s, q);
	case KR_RAPI_SPLIT:
		if (q->hdr.api_key == KP_API_DESCRIBE_PRODUCERS && kp_api_decodes(q->api, q->hdr.api_version, true))
			return kx_rproducers(s, q);
		return kx_rwhole(s, q); /* a version the split does not decode: not offered (the clamp) */
	default: return kx_rwhole(s, q);
	}
}

/* A config request's answer: broker names back to the node, refused resources in, the client's order. */
static bool kx_ranswer_configs(struct kx_session *s, struct kx_rreq *q)
{
	struct kx_worker *w = s->worker;
	struct kx_rscratch *rs = w->rscratch;
	int16_t ver = q->hdr.api_version;
	struct kp_struct *resp = NULL;
	if (q->nfrag) {
		struct kx_rfrag *f = &q->frag[0];
		size_t at;
		const uint8_t *body;
		if (!f->resp.len || !kx_rbody(q, f, &at) || !kx_frame_flat(&f->resp, at, f->resp.len, &body))
			return false; /* its connection failed: the client asks again */
		struct kp_cursor c;
		kp_cursor_init(&c, body, f->resp.len - at);
		resp = kp_decode(&q->arena, &c, kp_configs_response_schema(q->hdr.api_key), ver, q->flexible, -1);
		if (!resp) {
			kx_rwarn(s, "%s v%d: node %d's answer does not decode (%s reading %s)", q->api->name, ver, (int)f->node,
			         kp_error_name(c.err), c.err_field ? c.err_field : "?");
			return false;
		}
	}
	struct kp_struct *out = kp_configs_restore(&q->arena, q->hdr.api_key, ver, resp, &q->cfg_route, q->cfg_real);
	if (!out || (q->cfg_route.node >= 0 && kp_configs_virtualize(&q->arena, out, q->cfg_route.node, w->cfg->region) < 0))
		return false;
	kx_ranswer_header(rs, q);
	kp_encode(&rs->out, out, ver, q->flexible, -1);
	if (!kp_writer_ok(&rs->out))
		return false;
	KX_METRIC_ADD(responses_rewritten, 1);
	return kx_ranswer_queue(s, q);
}

/* DescribeCluster: answered as the virtual cluster, the same brokers and controller as its Metadata. */
static bool kx_ranswer_describe_cluster(struct kx_session *s, struct kx_rreq *q, size_t at)
{
	struct kx_worker *w = s->worker;
	struct kx_rscratch *rs = w->rscratch;
	struct kx_rfrag *f = &q->frag[0];
	int16_t ver = q->hdr.api_version;
	const uint8_t *body;
	if (!kx_frame_flat(&f->resp, at, f->resp.len, &body))
		return false;
	struct kp_cursor c;
	kp_cursor_init(&c, body, f->resp.len - at);
	struct kp_struct *real = kp_decode(&q->arena, &c, &kp_describe_cluster_response, ver, q->flexible, -1);
	const struct kx_nodes *nodes = kx_nodes_cached(&w->nodes);
	if (!real || !nodes || nodes->set.cnt == 0) {
		kx_rwarn(s, "DescribeCluster v%d: %s", ver,
		         !real ? "the broker's answer does not decode" : "no regional node set yet");
		return false;
	}
	struct kx_virtual_cluster vc = {.nodes = &nodes->set, .region = w->cfg->region};
	struct kp_struct *virt;
	if (kx_virtual_describe_cluster(&q->arena, real, ver, &vc, &virt) != KX_VMETA_OK)
		return false;
	kx_ranswer_header(rs, q);
	kp_encode(&rs->out, virt, ver, q->flexible, -1);
	if (!kp_writer_ok(&rs->out))
		return false;
	KX_METRIC_ADD(responses_rewritten, 1);
	return kx_ranswer_queue(s, q);
}

/* ---- start ------------------------------------------------------------------- */

void kx_regional_start(struct kx_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                       uint16_t local_port)
{
	struct kx_session *s = calloc(1, sizeof(*s));
	if (!s || !kx_ring_init(&s->fifo, sizeof(struct kx_rreq *), KX_R_FIFO_FIRST)) {
		kx_error("out of memory for a new regional session; refusing the connection");
		free(s);
		evutil_closesocket(fd);
		return;
	}
	s->worker = w;
	s->regional = true;
	s->number = w->session_number++;
	s->client.sock.fd = -1;
	s->req_timed = -1;
	s->local_port = local_port;
	if (salen > 0 && (size_t)salen <= sizeof(s->peer))
		memcpy(&s->peer, sa, (size_t)salen);
	kx_format_addr(sa, s->client.addr, sizeof(s->client.addr));
	s->proxy_pending = w->cfg->proxy_protocol != KX_PROXY_OFF;
	KX_METRIC_ADD(connections_accepted, 1);
	KX_METRIC_ADD(connections_active, 1);
	kx_worker_add_session(w, s);
	s->stat = (struct kx_conn_stat){.kind = KX_CONN_REGIONAL,
	                                .worker = w->id,
	                                .local_port = local_port,
	                                .node_id = -1,
	                                .place_source = "the node's region"};
	snprintf(s->stat.peer, sizeof(s->stat.peer), "%s", s->client.addr);
	snprintf(s->stat.region, sizeof(s->stat.region), "%s", w->cfg->region);
	kx_conns_add(&s->stat);
	bool tls = kx_tls_towards_clients();
	if (!kx_flow_init(&s->req, false) || !kx_flow_init(&s->resp, false) ||
	    !kx_sock_open(w->base, &s->client.sock, fd, kx_rclient_readable, kx_rclient_writable, s) ||
	    (tls && !kx_tls_accept(&s->client.sock.tr, fd))) {
		kx_error("regional %s: cannot create buffers%s; closing", s->client.addr,
		         tls ? " or a TLS connection" : "");
		if (s->client.sock.fd < 0)
			evutil_closesocket(fd);
		kx_regional_close(s, "out of memory");
		return;
	}
	kx_flow_read_in_blocks(&s->req); /* requests are taken by reference, never copied */
	if (kx_rusers || w->cfg->sasl_mtls_identity) {
		s->rauth = malloc(sizeof(*s->rauth));
		if (!s->rauth) {
			kx_error("regional %s: out of memory for its authentication; closing", s->client.addr);
			kx_regional_close(s, "out of memory");
			return;
		}
		kx_rauth_init(s->rauth, w->cfg, kx_rusers);
	}
	kx_rdebug(s, "accepted (session %u)%s", s->number, tls ? ", TLS handshake next" : "");
	if (tls) {
		/* The handshake begins when its ClientHello is there (kx_rclient_handshake). */
		struct timeval limit = kx_ms_timeval(w->cfg->tls_handshake_timeout_ms);
		s->client.state = KX_CLIENT_HANDSHAKE;
		kx_sock_want(s->client.sock.rev, &s->client.sock.reading, true, &limit);
		return;
	}
	s->client.state = KX_CLIENT_OPEN;
	kx_rupdate_reading(s);
}
