/*
 * rewrite: the responses mapped mode must change, and how.
 *
 *   Metadata (all)            brokers -> kstretch listeners (prefix only; topics referenced)
 *   FindCoordinator (all)     the coordinator's (v0-3) / each coordinator's (v4+) address
 *   DescribeCluster (all)     brokers
 *   Produce v10+, Fetch v16+  NodeEndpoints (KIP-951), a top-level tagged field
 *   ApiVersions (all)         versions of the APIs above clamped to what the codec
 *                             decodes; ShareFetch/ShareAcknowledge (addresses the
 *                             codec cannot rewrite) removed, so clients never use them.
 *                             An answer with ErrorCode != 0, in whatever form
 *                             (v0 layout, cut short, flexible), passes byte for byte
 *
 * Node ids stay real: node N is advertised at advertised.host and N's listener
 * port. Every broker address seen on the way is reported, so the topology
 * learns new brokers (and they get listeners).
 *
 * Rack and region awareness (README "Rack and region awareness"), for a
 * client whose place is known (struct kx_client_view, from placement.h):
 *
 *   Fetch v11+ request        an empty RackId gets the client's rack (fetch.rack.inject):
 *                             kx_fetch_inject_rack(); a RackId the client set stays
 *   Fetch v11+ response       from a leader outside the client's region: partitions
 *                             with an in-sync replica in the region get
 *                             PreferredReadReplica = that replica and no records
 *                             (fetch.prefer.local): kx_fetch_response_scan() says
 *                             whether a response needs it, kx_rewrite_response_for()
 *                             does it; other partitions' records stay referenced
 *   Metadata response         brokers of the client's region listed first; with
 *                             learn_topics, the topics' partitions (leader, replicas,
 *                             ISR) collected for the topology (kx_rewrite_merge_topology)
 *
 * What the session does, per connection:
 *
 *   accept ──► first request: kr_client_place(placement, local port, client.id, peer)
 *              fill a kx_client_view (rack, region, broker_id, steer table)
 *   request ─► kx_inject_wanted()? take the frame whole ─► kx_fetch_inject_rack()
 *   response ► kx_rewrite_needed_for()? (the table of routing/apiplan.h) scan it in place
 *              (kx_response_scan(); KX_FETCH_PASS = forward untouched) or take it whole
 *              ─► kx_rewrite_response_for() ─► kx_rewrite_merge_topology()
 */
#ifndef KX_REWRITE_H
#define KX_REWRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "config.h"
#include "cursor.h"
#include "schema.h"
#include "steer.h"
#include "topology.h"
#include "writer.h"

#include <sys/uio.h>

#define KX_SEEN_MAX 1024

/* mode=regional: the kstretch node every address in a rewritten answer names. */
struct kx_regional_self {
	int32_t id;
	const char *host;
	uint16_t port;
	const char *rack; /* the region */
};

struct kx_rewriter {
	struct kp_writer out; /* the new frame body (without its size) */
	struct kp_arena arena;
	struct kp_cursor cur;               /* on failure: where and what */
	struct kx_broker seen[KX_SEEN_MAX]; /* brokers the response named */
	size_t seen_cnt;
	struct kx_topic **topics; /* Metadata with learn_topics: the topics it described (references) */
	size_t topic_cnt, topic_cap;
	int addresses; /* addresses rewritten */
	int redirects; /* Fetch: partitions sent to a local replica (also counted in kx_metrics) */
	int fallbacks; /* Fetch: redirected partitions whose client came back (also counted in kx_metrics) */
	bool changed;  /* out differs from the input */
	/* mode=regional (NULL in mapped mode): addresses in FindCoordinator,
	 * DescribeCluster (one broker: this node, also the controller), Produce and
	 * Fetch NodeEndpoints become this node's; ApiVersions also clamps the APIs
	 * regional mode splits (Produce, Fetch, ListOffsets, OffsetForLeaderEpoch,
	 * DeleteRecords, Metadata) to the versions the codec decodes. */
	const struct kx_regional_self *self;
};

/*
 * What kstretch knows of the client on one connection, and what it may do
 * for it. A NULL view, or one without a region, is plain mapped mode. The
 * session keeps one per connection: rack, region, broker_id and steer once
 * the client is placed (kr_client_place() at its first request; the strings
 * must live as long as the view, e.g. a struct kr_client_place in the
 * session); topology and now_ms refreshed before each call.
 */
struct kx_client_view {
	const char *rack;   /* the client's rack; NULL or "": unknown */
	const char *region; /* its region; NULL or "": unknown */
	bool learn_topics;  /* Metadata: also collect the topics (fetch.prefer.local needs them) */
	/* fetch.prefer.local, for the Fetch responses of this connection (all needed): */
	int32_t broker_id;                  /* the node this connection goes to; -1: none (bootstrap) */
	const struct kx_topology *topology; /* a snapshot the caller holds a reference to */
	struct kr_steer_table *steer;       /* this connection's redirect memory */
	int64_t now_ms;                     /* a monotonic clock, in ms */
};

enum kx_inject_result {
	KX_INJECT_FAILED = -1,   /* malformed request (rw->cur says where): a protocol error */
	KX_INJECT_UNCHANGED = 0, /* forward the request as it is (RackId set, or not Fetch v11+, or no rack) */
	KX_INJECT_DONE = 1,      /* rw->out holds the request with the rack */
};

enum kx_fetch_scan {
	KX_FETCH_MALFORMED = -1, /* the walk failed (p->err); kx_rewrite_response_for() will say where */
	KX_FETCH_PASS = 0,       /* nothing to change: forward it untouched */
	KX_FETCH_REWRITE = 1,    /* take it whole, kx_rewrite_response_for() */
};

void kx_rewriter_init(struct kx_rewriter *rw);
void kx_rewriter_free(struct kx_rewriter *rw);

/*
 * Rewrites one response frame body (header + body, contiguous). On success
 * rw->out holds the new body; its reference segments point into `body`. On
 * failure rw->cur says where the input was malformed.
 */
bool kx_rewrite_response(struct kx_rewriter *rw, const struct kx_config *cfg, int16_t api, int16_t version,
                         const uint8_t *body, size_t len);

/* ---- rack and region awareness ----------------------------------------- */

/*
 * Whether the request (api, version) must be taken whole and passed to
 * kx_fetch_inject_rack(): KR_REQUEST_SET_RACK in apiplan.h (Fetch v11+),
 * fetch.rack.inject on, the client's rack known. Fetch requests are small
 * (no records).
 */
bool kx_inject_wanted(const struct kx_config *cfg, const struct kx_client_view *v, int16_t api, int16_t version);

/*
 * Fetch request RackId injection. body/len: one whole request frame body
 * (header + body, without the size), Fetch v11..18. When its RackId is empty,
 * rw->out becomes the request with RackId = rack: two references to body
 * (everything before and after the RackId, not copied) around the new
 * string. Counts kstretch_fetch_rack_injected. body must stay valid until
 * rw->out has been written or copied (the next call on rw resets it).
 */
enum kx_inject_result kx_fetch_inject_rack(struct kx_rewriter *rw, const uint8_t *body, size_t len, const char *rack);

/*
 * Whether Fetch responses of this version on this connection may be steered
 * (fetch.prefer.local): on, v11+ and decoded, the view complete, and the
 * connection's broker in a known region other than the client's.
 */
bool kx_steer_wanted(const struct kx_config *cfg, const struct kx_client_view *v, int16_t version);

/*
 * Whether the response to (api, version) is anything but KR_RESPONSE_PASS
 * in apiplan.h on this connection (kx_steer_wanted() says whether it may
 * steer): the session marks the request's in-flight entry with it, and
 * scans or takes such responses whole as the plan says.
 */
bool kx_rewrite_needed_for(const struct kx_config *cfg, const struct kx_client_view *v, int16_t api, int16_t version);

/*
 * Walks a buffered Fetch response (v11+; frame body without the size, in
 * pieces, nothing copied; the partitions as walk.h meets them) and says
 * whether it needs kx_rewrite_response_for():
 * a partition to redirect (when kx_steer_wanted()), or top-level tagged fields
 * (v16+ NodeEndpoints). Call it once per response, before the rewrite: it
 * also notes, in v->steer, partitions whose client came back to the leader
 * (counted in kstretch_fetch_redirect_fallbacks). v may be NULL (then only
 * the tagged fields decide).
 */
enum kx_fetch_scan kx_fetch_response_scan(const struct kx_config *cfg, struct kx_client_view *v, int16_t version,
                                          const struct iovec *iov, int iovcnt, size_t len);

/*
 * The in-place walk a response of KR_RESPONSE_SCAN (apiplan.h) gets before
 * it is taken whole: kx_fetch_response_scan() for Fetch; for others (Produce
 * v10+), whether the body has top-level tagged fields. iov/len: the frame
 * body without its size, in pieces; nothing copied.
 */
enum kx_fetch_scan kx_response_scan(const struct kx_config *cfg, struct kx_client_view *v, int16_t api_key,
                                    int16_t version, const struct iovec *iov, int iovcnt, size_t len);

/*
 * kx_rewrite_response() for a client whose place is known (v NULL: the
 * same as kx_rewrite_response). In addition:
 *   Metadata: brokers in v->region first (stable); with v->learn_topics the
 *             topics go to rw->topics.
 *   Fetch v11+ (kx_steer_wanted): partitions led by this connection's broker
 *             with an in-sync replica in v->region (not the leader, with a
 *             kstretch listener) get PreferredReadReplica = that replica and
 *             empty Records, unless v->steer holds them back; every other
 *             byte of record data is referenced. Redirects are noted in
 *             v->steer and counted (rw->redirects, kstretch_fetch_redirects);
 *             one v->steer has no room to note is not made.
 *             When nothing changes, rw->out is one reference to body
 *             (rw->changed false).
 */
bool kx_rewrite_response_for(struct kx_rewriter *rw, const struct kx_config *cfg, struct kx_client_view *v, int16_t api,
                             int16_t version, const uint8_t *body, size_t len);

/*
 * After a rewrite: merges the brokers it saw and the topics it learned into
 * the topology (one snapshot published if anything changed; true then).
 * Replaces the session's kx_topology_merge(cfg, rw->seen, rw->seen_cnt).
 */
bool kx_rewrite_merge_topology(struct kx_rewriter *rw, const struct kx_config *cfg);

/*
 * mode=regional: what a whole decoded Metadata response (st, of `version`)
 * teaches the topology: its brokers (addresses as the cluster gave them) and
 * its topics, kept in rw for kx_rewrite_merge_topology(). Nothing is written.
 */
void kx_rewrite_learn_metadata(struct kx_rewriter *rw, const struct kp_struct *st);

#endif
