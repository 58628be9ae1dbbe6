/*
 * regional_session: a client session of mode=regional (issue 15). The client sees a
 * virtual cluster made of the region's kstretch nodes; kstretch routes each
 * partition of its requests to the real broker that serves it, over the
 * worker's shared upstream connections (pool.h), and answers in the
 * client's order.
 *
 *   client ─► request frame (held whole) ─► client-order FIFO: struct kx_rreq {corr, api, ver,
 *            │                                 fragments[] {answer frame | failed}, left}
 *            ├─ Produce        kp_produce_split by real leader (records by reference); acks=0: no entry
 *            ├─ Fetch          kp_split_request by replica (an in-sync one in the node's region for
 *            │                 v11+, else the leader), each part sessionless
 *            ├─ ListOffsets, OffsetForLeaderEpoch, DeleteRecords: kp_split_request by leader
 *            ├─ SaslHandshake, SaslAuthenticate: answered by the node itself (regional_auth.h;
 *            │                 with sasl.users nothing but ApiVersions goes before the client logs in)
 *            └─ anything else  whole, renumbered, to one broker (Metadata, ApiVersions, ...)
 *                                     │ one fragment per broker: pool connection (session number mod size)
 *   answers (kx_regional_answer) ─► fragment slot ─► FIFO head complete? ─► merge ─► client
 *            Produce, ListOffsets, OffsetForLeaderEpoch, DeleteRecords: kp_split_merge (decoded)
 *            Fetch: kp_fetch_merge (records by reference), SessionId 0 (no session)
 *            Metadata: decoded, learned into the topology, answered as the virtual cluster
 *                      (kx_virtual_metadata with the node set now published)
 *            ApiVersions: the broker's, clamped (rewrite.h: the split APIs to what the codec
 *                      decodes; share groups hidden)
 *            FindCoordinator, DescribeCluster: addresses -> this node
 *            others: as the broker answered, correlation id restored
 *
 * A partition with no known leader, or whose part failed (its connection
 * broke), is answered NOT_LEADER_OR_FOLLOWER: the client refreshes its
 * metadata and retries. A whole request whose connection broke closes the
 * client (it reconnects and asks again).
 *
 * Backpressure: answers wait in the session's output; above the high
 * watermark, or with max.inflight.requests awaiting answers, the session
 * stops reading its client. Shared connections are always read.
 */
#ifndef KX_REGIONAL_SESSION_H
#define KX_REGIONAL_SESSION_H

#include <stddef.h>
#include <sys/socket.h>

#include "session.h"

struct kx_worker;

/* A session for a client accepted on the regional listener. Takes over fd. */
void kx_regional_start(struct kx_worker *w, evutil_socket_t fd, const struct sockaddr *sa, int salen,
                       uint16_t local_port);

/* Closes the session now (its pending parts' answers will be dropped). */
void kx_regional_close(struct kx_session *s, const char *why);

/* The worker stops: no new request is read; closes once nothing is owed. */
void kx_regional_shutdown(struct kx_session *s);

/*
 * The answer to fragment e->fragment of request e->req of session s: the
 * frame *fr, where it was read (the call takes it over and leaves *fr
 * empty); fr NULL: the part failed. May close s.
 */
void kx_regional_answer(struct kx_session *s, const struct kx_up_inflight *e, struct kx_frame *fr);

/* sasl.users, loaded at start (NULL: clients do not authenticate with SASL); read by every worker. */
struct kx_sasl_users;
void kx_regional_set_users(const struct kx_sasl_users *users);

/* The worker's scratch for splits and merges (made on first use, freed with the worker). */
struct kx_rscratch;
void kx_rscratch_free(struct kx_rscratch *r);

/* A known coordinator is looked up again once its entry is this old (the
 * requests keep going to it meanwhile; NOT_COORDINATOR forgets it at once). */
#define KX_R_COORD_MAX_AGE_MS 30000

#endif
