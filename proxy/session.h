/*
 * session: one client connection and the upstream connection serving it.
 *
 *   client socket                 kstretch                      broker socket
 *   ─────────────                 ────────                      ─────────────
 *   request ─► [peek size + header] ─► FIFO push {corr, api, ver, rewrite}
 *              move frame bytes (chains moved, not copied; cut-through) ─► upstream out
 *   response ◄─ move / rewrite ◄─ [peek size + corr == FIFO head?] ◄─ response
 *
 * Kafka answers in order on a connection, so the in-flight FIFO's head must
 * match every response's correlation id; anything else is a protocol error
 * and closes both sides. Produce with acks=0 gets no response and no entry.
 * Responses that carry broker addresses are taken whole and rewritten
 * (rewrite.h); everything else passes through as it arrives.
 *
 * Both sides have an explicit state, changed only by kx_client_set_state /
 * kx_upstream_set_state. Memory per session is bounded: the side that is
 * ahead stops being read while the other side's output is above its
 * watermark, and at most max.inflight.requests requests wait for answers.
 */
#ifndef KX_SESSION_H
#define KX_SESSION_H

#include <event2/bufferevent.h>
#include <stdbool.h>
#include <stdint.h>

#include "peek.h"

struct kx_worker;

enum kx_client_state {
	KX_CLIENT_OPEN,     /* reading requests, writing responses */
	KX_CLIENT_DRAINING, /* upstream gone: flushing what was answered, then close */
	KX_CLIENT_CLOSED,
};

enum kx_upstream_state {
	KX_UPSTREAM_CONNECTING, /* requests queue in its output until connected */
	KX_UPSTREAM_READY,
	KX_UPSTREAM_CLOSED,
};

struct kx_inflight {
	int32_t correlation_id;
	int16_t api_key, api_version;
	bool rewrite; /* the response goes through kx_rewrite_response() */
};

struct kx_client {
	struct bufferevent *bev;
	enum kx_client_state state;
	char addr[64];
	uint64_t req_left; /* bytes of the request being cut through */
};

struct kx_upstream {
	struct bufferevent *bev;
	enum kx_upstream_state state;
	int32_t node_id; /* -1: the bootstrap listener's choice */
	char addr[300];
	uint64_t resp_left; /* bytes of the response being cut through */
	bool in_connect_call, failed_in_call;
};

struct kx_session {
	struct kx_worker *worker;
	struct kx_session *prev, *next; /* the worker's list */
	struct kx_client client;
	struct kx_upstream up;
	/* The in-flight FIFO: a ring of max.inflight.requests entries. */
	struct kx_inflight *fifo;
	uint32_t fifo_head, fifo_cnt, fifo_cap;
	struct kp_peek peek;
	bool reading_paused_inflight;
};

/*
 * Starts a session for an accepted client socket: connects upstream to
 * node_id (or, for -1, to a bootstrap server). Takes over fd.
 */
void kx_session_start(struct kx_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen, int32_t node_id);

/* Closes both sides now. */
void kx_session_close(struct kx_session *s, const char *why);

/*
 * The worker is stopping: from now on the session forwards no new request,
 * and it closes (after flushing its client's answers) as soon as it owes its
 * client nothing. May close s at once.
 */
void kx_session_shutdown(struct kx_session *s);

/* Requests in flight (for a draining shutdown). */
static inline uint32_t kx_session_inflight(const struct kx_session *s)
{
	return s->fifo_cnt;
}

#endif
