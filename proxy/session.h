/*
 * session: one client connection and the upstream connection serving it.
 *
 * The session holds the client's side and its client-order FIFO; the
 * upstream (struct kx_upstream) is an object of its own with its socket,
 * its connect machinery and its own FIFO of {owner, client corr, upstream
 * corr, api, version, fragment}, so that regional mode can share one among
 * many sessions. In mapped mode, the only one built, each session owns one
 * upstream and both FIFOs move in step (same order, same numbers):
 *
 *   client ─► session.fifo: {corr, api, ver, rewrite}    (client order)
 *         └─► upstream.fifo: {owner, corr, corr, api, ver, 0} ─► broker
 *   broker ─► answer: upstream.fifo head (its corr) ─► owner session ─► session.fifo head ─► client
 *
 *   client socket                 kstretch                      broker socket
 *   ─────────────                 ────────                      ─────────────
 *   request ─► req.buf ─► [peek size + header] ─► FIFO push {corr, api, ver, rewrite}
 *              req.pass += frame size ─► writev straight from req.buf ─► upstream
 *   response ◄─ writev from resp.buf ◄─ [corr == FIFO head?] ◄─ resp.buf ◄─ response
 *
 * Each direction (a kx_flow) is one evbuffer the source socket is read into
 * (readv into reserved space: large reads, no size probe) and the other
 * socket is written from (writev, tried at once after each read, so most
 * bytes leave in the same loop turn they arrived in). A pass-through frame is
 * not copied in user space: it is cleared to go by advancing `pass`, which
 * may run ahead of what has arrived (cut-through of a large frame; past
 * KX_SPLICE_MIN the rest goes socket to pipe to socket and never reaches the
 * buffer). A frame that is rewritten is taken out of the buffer whole (a
 * copy, counted in kstretch_bytes_copied): the chunks cleared before it are
 * relinked to `out` (a chunk split at the frame is copied), then its
 * rewritten form follows, by reference to the held copy where unchanged;
 * `out` is written before the buffer's bytes.
 *
 * Kafka answers in order on a connection, so the in-flight FIFO's head must
 * match every response's correlation id; anything else is a protocol error
 * and closes both sides. Produce with acks=0 gets no response and no entry.
 * Responses that carry broker addresses are taken whole and rewritten
 * (rewrite.h); everything else passes through as it arrives.
 *
 * Both sides have an explicit state, changed only by kx_client_set_state /
 * kx_upstream_set_state. The last side left open closes by lingering when
 * bytes written to it are not delivered yet: FIN, then what it still sends
 * is read and dropped until it closes (closing a socket with unread input
 * resets the connection, and a reset drops what its send queue holds).
 * Memory per session is bounded: a socket is not read
 * while its flow holds more than the high watermark (until it falls below
 * the low one), and at most max.inflight.requests requests wait for answers.
 */
#ifndef KX_SESSION_H
#define KX_SESSION_H

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdbool.h>
#include <stdint.h>

#include <sys/socket.h>

#include "config.h"
#include "conn.h"
#include "conns.h"
#include "flow.h"
#include "metrics.h"
#include "peek.h"
#include "ring.h"
#include "placement.h"
#include "rewrite.h"

struct kx_worker;
struct kx_resolve;
struct kx_rreq;
struct evbuffer;

enum kx_client_state {
	KX_CLIENT_HANDSHAKE, /* TLS (tls.cert): the handshake first, nothing read as Kafka yet */
	KX_CLIENT_OPEN,      /* reading requests, writing responses */
	KX_CLIENT_DRAINING,  /* upstream gone: flushing what was answered, then close */
	KX_CLIENT_LINGERING, /* answers all written, FIN sent: its input discarded until it closes */
	KX_CLIENT_CLOSED,
};

enum kx_upstream_state {
	KX_UPSTREAM_CONNECTING, /* resolving and connecting; requests wait in req */
	KX_UPSTREAM_HANDSHAKE,  /* TLS (upstream.tls): connected, handshaking; requests wait in req */
	KX_UPSTREAM_SASL,       /* regional pool, upstream.sasl.*: authenticating as kstretch; requests wait in req */
	KX_UPSTREAM_READY,
	KX_UPSTREAM_LINGERING, /* client gone, its requests all written, FIN sent: answers discarded until it closes */
	KX_UPSTREAM_CLOSED,
};

/* "connecting", "ready", ...: for log lines (mapped sessions and the regional pool). */
const char *kx_upstream_state_name(enum kx_upstream_state st);

struct kx_inflight {
	int32_t correlation_id;
	int16_t api_key, api_version;
	bool rewrite; /* the response goes through kx_rewrite_response() */
	struct kx_timing tm; /* for kstretch_request_duration_seconds */
};

struct kx_client {
	struct kx_sock sock;
	enum kx_client_state state;
	uint32_t outq; /* bytes its socket had not sent at the last write timeout (write.timeout.ms) */
	char addr[64 + 300]; /* its address; a regional client's principal once authenticated */
};

/* A request written to an upstream and not answered yet, in the upstream's
 * order. A shared upstream (regional mode) carries the requests of many
 * sessions, renumbered and split by partition; in mapped mode an upstream
 * serves one session, numbers stay the client's and nothing is split. */
struct kx_up_inflight {
	struct kx_session *owner; /* whose request */
	int32_t client_corr;      /* as the client numbered it */
	int32_t upstream_corr;    /* as it went upstream */
	int16_t api_key, api_version;
	uint16_t fragment; /* which part of a request split over upstreams (0: the whole request) */
	struct kx_rreq *req; /* regional: the client request it is a part of (owned by owner's FIFO) */
	uint8_t leader_ridx; /* regional Fetch part sent to a replica, not the leader: the leaders' region (metrics) */
};

/*
 * An upstream connection: its socket and transport, how it is reached
 * (resolve, connect, bootstrap candidates), and its own in-flight FIFO. An
 * object of its own, not a part of the session: in mapped mode it serves
 * exactly one session (owner); regional mode's upstreams will serve many.
 */
struct kx_upstream {
	struct kx_worker *worker;
	struct kx_session *owner; /* mapped mode: the session it serves */
	struct kx_sock sock;
	enum kx_upstream_state state;
	int32_t node_id; /* -1: the bootstrap listener's choice */
	char addr[300];
	char host[KX_HOST_MAX]; /* where it connects (TLS: the name sent and verified) */
	uint16_t port;
	struct kx_resolve *resolve; /* a name lookup under way (it outlives a session closed meanwhile) */
	struct evdns_getaddrinfo_request *dns_req;
	struct evutil_addrinfo *addrs, *next_addr; /* resolved; next_addr: to try if this one fails */
	bool starting, failed_starting;            /* a failure inside kx_upstream_begin is reported by it */
	/* Connect attempts made: a node's session makes one; a bootstrap session
	 * that cannot connect tries the next candidate (the bootstrap.servers
	 * from bootstrap_first on, then the brokers the topology knows) while
	 * none of its requests has left. */
	uint16_t connect_tries;
	unsigned bootstrap_first;
	struct kx_ring fifo; /* struct kx_up_inflight, in the order they were written to it */
	uint64_t ready_ns;   /* when it became ready (kx_now_ns): requests that waited for it went then */
};

struct kx_rauth;

struct kx_session {
	struct kx_worker *worker;
	struct kx_session *prev, *next; /* the worker's list */
	struct kx_client client;
	struct kx_upstream *up;
	struct kx_flow req, resp;
	/* The client-order FIFO (struct kx_inflight): what each answer owed to
	 * the client needs (a ring that grows up to max.inflight.requests). */
	struct kx_ring fifo;
	struct kp_peek peek;
	bool reading_paused_inflight;
	/* request.timeout.ms: the request the client is in the middle of sending. */
	struct event *req_timer; /* made when first needed */
	uint64_t req_cleared;    /* requests cleared so far: the next one's number */
	int64_t req_timed;       /* the number of the request being timed; -1: none */
	int64_t req_begun_ms;    /* when its first bytes were read */
	int64_t linger_until_ms; /* a lingering side is closed then at the latest */
	/* Where the client is (placed at its first request: the client.id is
	 * in its header) and what kstretch does for it (rewrite.h). */
	uint16_t local_port; /* the kstretch port it connected to */
	struct sockaddr_storage peer;
	bool placed;
	bool proxy_pending; /* proxy.protocol: the PROXY header has not been read yet */
	bool held_cap_logged; /* a request over max.held.request.bytes was logged */
	char cert_rack[KX_NAME_MAX]; /* the rack its TLS certificate names (tls.client.rack.from); "" none */
	struct kr_client_place place;
	struct kx_client_view view;       /* rack and region point into place */
	struct kr_steer_table *steer;     /* only for a client whose Fetch answers may be steered */
	uint8_t client_ridx, broker_ridx; /* per-region byte counters (0: unknown) */
	char broker_region[KX_NAME_MAX];  /* the upstream broker's ("" unknown, or bootstrap) */
	/* mode=regional (regional.h): no upstream of its own (up is NULL); fifo
	 * holds struct kx_rreq pointers, in client order. */
	bool regional;
	uint32_t number;       /* the worker's count of sessions when it started: picks its pool connection */
	uint64_t nodes_digest; /* of the node set its last Metadata answer showed (0: none yet) */
	bool answering;        /* inside kx_regional_advance: a nested call returns at once */
	/* Bit d: the last Fetch part this client sent to topology broker d (d < 64)
	 * came back without records (regional_session.c, "idle parts"). */
	uint64_t fetch_idle;
	uint32_t parked; /* requests waiting for the worker's Metadata refresh, unsent (regional_session.c) */
	bool park_went;  /* one parked for a partition of its own since kx_rresume cleared it */
	/* Operations (metrics.h, conns.h): its /connections entry, and when its
	 * sockets were last read (one clock read per read, not per request). */
	struct kx_conn_stat stat;
	uint64_t read_ns, up_read_ns;
	uint8_t close_cause; /* 1 + enum kx_close_cause once the end began (its broker lost: it drains first); 0 */
	struct kx_rauth *rauth; /* its authentication to the node (sasl.users, sasl.mtls.identity); NULL: none asked */
	bool rclosing;          /* a refusal is answered: nothing more is read, it closes once that is written */
};

/*
 * Starts a session for an accepted client socket (on kstretch's local_port):
 * connects upstream to node_id (or, for -1, to a bootstrap server). Takes
 * over fd.
 */
void kx_session_start(struct kx_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen, int32_t node_id,
                      uint16_t local_port);

/* Closes both sides now. */
void kx_session_close(struct kx_session *s, const char *why);

/*
 * The worker is stopping: from now on the session forwards no new request,
 * and it closes (after flushing its client's answers) as soon as it owes its
 * client nothing. May close s at once.
 */
void kx_session_shutdown(struct kx_session *s);

/*
 * proxy.protocol: reads the PROXY header at the front of what the client sent
 * (s->req), mapped and regional sessions alike. Its source becomes the
 * client's address (placement by rack.cidr, the session's name in logs).
 * Returns 1 when it was read (and dropped from the input), 0 while it is not
 * all there, -1 when there is none (logged; the caller closes the session).
 */
KX_MUST_CHECK int kx_session_proxy_header(struct kx_session *s);

/* Requests in flight (for a draining shutdown). */
static inline uint32_t kx_session_inflight(const struct kx_session *s)
{
	return s->fifo.cnt;
}

/* Who session s is in log lines: its client's address, the kstretch port it
 * connected to and (mapped mode) its broker. */
struct kx_log_id kx_session_log_id(const struct kx_session *s);

#endif
