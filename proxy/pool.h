/*
 * pool: mode=regional's upstream connections. Each worker keeps, per real
 * broker, regional.upstream.connections of them, shared by every regional
 * session of the worker (m clients over n servers, twemproxy's picture):
 *
 *   session A ─┐ fragments, renumbered        ┌─► pconn(broker 1, #0) ─► broker 1
 *   session B ─┼──────────────────────────────┼─► pconn(broker 1, #1) ─► broker 1
 *   session C ─┘  {owner, client corr,        └─► pconn(broker 2, #0) ─► broker 2
 *                  upstream corr, api, ver,
 *                  fragment, req} on the
 *                  pconn's FIFO (kx_up_inflight)
 *
 *   broker ─► answer ─► pconn FIFO head (its corr must match) ─► owner?
 *                 owner gone (NULL): read and dropped
 *                 else kx_regional_answer(owner, entry, frame) ─► the owner's merge slot
 *
 * A session always takes connection (session number mod pool size) to a
 * broker, so one client's requests for a partition travel in order on one
 * connection (idempotent producers keep their sequence). A connection is
 * read whenever bytes come: answers go to their sessions' queues, and a slow
 * client bounds its own queue (it stops reading its client), never the shared
 * connection. A connection that fails answers each pending fragment as failed
 * (kx_regional_answer with no frame: the owner answers those partitions with a
 * retriable error) and is replaced by a new one on next use; so does one
 * that owes answers and hears nothing from its broker for request.timeout.ms
 * (no client's own timeout reaches a shared connection). Writes happen
 * on the connection's write event, never inside kx_pconn_send, so no caller
 * sees a connection fail under it.
 *
 * A request the broker holds until a group's rebalance gets that far
 * (JoinGroup, SyncGroup: kp_coordinator_holds) goes alone on a connection of
 * the pool's held list, one with nothing in flight (made when none is idle):
 * a broker reads a connection's next request only once it answered the last,
 * so a member's JoinGroup on a shared connection kept the requests behind it,
 * the other members' JoinGroups among them, from the coordinator until the
 * rebalance timed out. Idle held connections are kept for the next ones.
 * With upstream.sasl.* each connection authenticates as kstretch between its
 * connect (and TLS handshake) and its first request, within
 * connect.timeout.ms: SaslHandshake v1, then SaslAuthenticate v1 (PLAIN in
 * one round; SCRAM in two, the broker's signature verified). A refusal, or
 * an answer that does not read, fails the connection as a failed connect
 * does; the line saying why is written once a minute at most (a wrong
 * password would otherwise print one per client request).
 */
#ifndef KX_POOL_H
#define KX_POOL_H

#include <event2/dns.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "session.h"

struct kx_pool;
struct kx_pconn_resolve;
struct kx_pconn_sasl;

struct kx_pconn {
	struct kx_upstream up; /* socket, state, where it goes, and its FIFO of struct kx_up_inflight */
	struct kx_pool *pool;
	struct kx_flow req, resp; /* requests to the broker, its answers */
	struct event *start_ev;   /* starts the connect on the next loop turn */
	struct kx_pconn_resolve *resolve;
	struct kx_pconn_sasl *sasl;    /* its SASL exchange, while in KX_UPSTREAM_SASL */
	struct kx_pconn *next_failing; /* while it answers its FIFO as failed */
	int32_t next_corr;
	uint8_t broker_ridx; /* its broker's region index (metrics) */
	bool local;          /* its broker is in the node's region */
	bool counted;        /* its socket is counted in kstretch_regional_upstream_connections */
	bool timed;          /* its read event carries request.timeout.ms (it owes answers) */
	bool held;           /* on pool->held: one request at a time */
	struct kx_pconn *next_held;
	bool logged;         /* its failure was logged already (SASL: rate-limited) */
	size_t slot;         /* in pool->conns (held: its number, for logs); SIZE_MAX once it failed */
	struct kx_conn_stat stat; /* its /connections entry (conns.h) */
};

struct kx_pool {
	struct kx_worker *worker;
	uint32_t size;       /* regional.upstream.connections: per broker for Fetch, and as many for the rest */
	uint32_t slots;      /* 2 * size: a broker's group of conns[] */
	int32_t *nodes;      /* broker node ids, one per group of `size` slots */
	struct kx_pconn **conns; /* [broker index * slots + k]: k < size the others', then size Fetch ones */
	size_t node_cnt, node_cap;
	struct kx_pconn *failing; /* connections answering their FIFO as failed (kx_pool_forget walks them too) */
	struct kx_pconn *held;    /* connections for requests brokers hold (JoinGroup, SyncGroup), any broker */
	size_t held_made;         /* held connections made so far (their numbers in logs) */
	uint8_t region_ridx;      /* the node's region (metrics) */
	bool auth_failing;        /* the last upstream SASL exchange failed (answers failed for it log quietly) */
};

void kx_pool_init(struct kx_pool *p, struct kx_worker *w, uint32_t size);
/* Closes every connection (the sessions are gone: nothing is answered). */
void kx_pool_free(struct kx_pool *p);

/* The connection to broker node_id that `key` (a session number) takes for a
 * Fetch (fetch) or any other request, made and connecting if there is none;
 * NULL when out of memory. Fetches have connections of their own: a broker
 * answers a connection's requests in order, and holds a Fetch up to its
 * MaxWaitMs, which would hold every Produce behind it. */
/* Whether a connect to node_id failed, in any worker, less than KX_POOL_DOWN_MS ago (and none succeeded since). */
bool kx_pool_node_down(const struct kx_pool *p, int32_t node_id, int64_t now_ms);

struct kx_pconn *kx_pool_pick(struct kx_pool *p, int32_t node_id, uint32_t key, bool fetch);

/* A connection to broker node_id with nothing in flight, for one request the
 * broker holds (kp_coordinator_holds), made and connecting if none is idle;
 * NULL when out of memory. */
struct kx_pconn *kx_pool_pick_held(struct kx_pool *p, int32_t node_id);

/* The next upstream correlation id on c. */
int32_t kx_pconn_corr(struct kx_pconn *c);

/*
 * Queues the frame w holds (a request whose header carries kx_pconn_corr(c))
 * on c, referenced segments by reference to holds[0..n); with e (a request
 * the broker answers), its FIFO entry. False when its FIFO is at its cap
 * (max.inflight.requests times the pool's sessions are not bounded here:
 * each session bounds its own) or no memory: nothing is queued.
 */
bool kx_pconn_send(struct kx_pconn *c, const struct kx_up_inflight *e, struct kp_writer *w,
                   struct kx_hold *const *holds, const size_t *lens, size_t n);

/* Session s is closing: its pending fragments' answers will be dropped. */
void kx_pool_forget(struct kx_pool *p, const struct kx_session *s);

/* Connections open now on this pool (for logs and tests). */
size_t kx_pool_open(const struct kx_pool *p);

#endif
