/*
 * metrics: process-wide counters, defined once in the table below (X-macro).
 *
 * Each worker counts in a shard of its own (its own cache lines: no line
 * bounces between cores on the data path), with relaxed atomic adds so
 * that a scrape can read while it counts; /metrics sums the shards. Threads
 * that are not workers (main, admin, tests) count in shard 0; more workers
 * than shards share them, which the atomic adds keep exact. A sum is exact
 * for counters and for the gauge (connections_active goes up on the worker
 * that accepted and down on the same worker; unsigned wrap-around cancels).
 *
 *   KX_METRIC_ADD(name, n)  this thread's shard       (data path)
 *   KX_METRIC_VALUE(name)   the sum over every shard  (scrape, checks)
 */
#ifndef KX_METRICS_H
#define KX_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define KX_METRICS(X)                                                                                                  \
	X(connections_accepted, "client connections accepted")                                                         \
	X(connections_active, "client connections open now")                                                           \
	X(connections_refused, "client connections closed at accept: max.connections reached")                         \
	X(idle_timeouts, "client connections closed by idle.timeout.ms")                                               \
	X(request_timeouts, "client connections closed by request.timeout.ms (a request sent too slowly)")             \
	X(write_timeouts, "client connections closed by write.timeout.ms (answers waiting, none of them read)")        \
	X(upstream_connect_failures, "upstream connections that failed or timed out")                                  \
	X(requests_forwarded, "requests forwarded upstream")                                                           \
	X(responses_forwarded, "responses passed through unchanged")                                                   \
	X(responses_rewritten, "responses rewritten (broker addresses, ApiVersions)")                                  \
	X(addresses_rewritten, "broker addresses rewritten to kstretch listeners")                                     \
	X(bytes_from_clients, "bytes read from clients")                                                               \
	X(bytes_from_brokers, "bytes read from brokers")                                                               \
	X(bytes_spliced, "bytes passed socket to socket through a pipe (splice), never in user space")                 \
	X(bytes_copied, "bytes copied in user space: frames taken whole to rewrite (of a long one read as it arrives, " \
	                "what had come before it was held), bytes split off ahead of them, what kstretch writes itself " \
	                "around referenced bytes (headers, rewritten or split structure), and the parts of regional "   \
	                "requests made contiguous where they straddle two reads")                                      \
	X(protocol_errors, "connections closed on malformed or out-of-order frames")                                   \
	X(fetch_requests_as_v15, "Fetch v16-18 requests forwarded as v15 so that their answers flow through "          \
	                         "(fetch.cut.through)")                                                                \
	X(fetch_rack_injected, "Fetch requests whose empty RackId was set to the client's rack (fetch.rack.inject)")   \
	X(fetch_redirects, "partitions a remote leader's Fetch answer sent to an in-sync replica in the client's "     \
	                   "region (fetch.prefer.local)")                                                              \
	X(fetch_redirect_fallbacks, "redirected partitions whose client came back to the leader (not redirected "      \
	                            "again for fetch.prefer.local.backoff.ms)")                                        \
	X(fetch_bytes_local, "Fetch response bytes from brokers in the client's region (clients of known region)")     \
	X(tls_handshakes, "TLS handshakes completed with clients")                                                    \
	X(tls_handshake_failures, "client connections closed in or before the TLS handshake (no TLS, a bad or "        \
	                          "missing certificate, no common version or cipher, a timeout)")                     \
	X(tls_plaintext_refused, "client connections on a plaintext listener that began with a TLS ClientHello")      \
	X(upstream_tls_full_handshakes, "TLS handshakes with brokers that began a new session")                        \
	X(upstream_tls_resumed, "TLS handshakes with brokers that resumed an earlier session")                         \
	X(fetch_bytes_remote, "Fetch response bytes from brokers outside the client's region (clients of known "       \
	                      "region)")                                                                           \
	X(regional_upstream_connections, "mode=regional: upstream connections open now, shared by the workers' "      \
	                                 "clients (regional.upstream.connections per worker and broker for Fetch, "    \
	                                 "as many for the rest, and one per JoinGroup or SyncGroup the brokers "     \
	                                 "hold at once)")                                                            \
	X(regional_fragments, "mode=regional: requests sent upstream as parts of a client request split by "          \
	                      "partition")                                                                         \
	X(regional_fragments_failed, "mode=regional: parts answered as failed (their upstream connection failed)")   \
	X(regional_throttled_answers, "mode=regional: parts a broker answered with a ThrottleTimeMs above 0 (KIP-219: " \
	                              "it then stops reading that shared connection for as long, which delays every " \
	                              "client whose requests take it)")                                            \
	X(regional_throttle_ms, "mode=regional: the sum of those parts' ThrottleTimeMs")                              \
	X(regional_parked, "mode=regional: requests held, unsent, until the node's own Metadata refresh, because a "  \
	                   "Produce named a partition whose leader the node did not know (answering it "            \
	                   "NOT_LEADER_OR_FOLLOWER while the client's next batches went on could lose a batch)")     \
	X(regional_coordinator_lookups, "mode=regional: FindCoordinator requests a node sent itself, for a group or "   \
	                                "transactional id whose requests it had to route and did not know (or knew " \
	                                "long ago)")                                                                 \
	X(regional_coordinator_unknown, "mode=regional: group or transaction requests sent to any broker because "     \
	                                "their coordinator was not known yet (the broker answers NOT_COORDINATOR and "\
	                                "the client asks again)")                                                    \
	X(regional_coordinator_moved, "mode=regional: answers to group or transaction requests saying the "            \
	                              "coordinator is elsewhere (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE)")       \
	X(regional_racks_rewritten, "mode=regional: consumer racks (JoinGroup subscriptions, ConsumerGroupHeartbeat) "  \
	                            "sent as the region: the virtual cluster's replicas are all in it (KIP-881)")    \
	X(regional_sasl_authenticated, "mode=regional: clients a node authenticated (sasl.users, or a verified "       \
	                               "certificate with sasl.mtls.identity)")                                        \
	X(regional_sasl_refused, "mode=regional: clients a node refused: wrong credentials, a mechanism not "          \
	                         "offered, a malformed exchange, or a request before authenticating")                \
	X(upstream_sasl_failures, "upstream connections whose SASL authentication (upstream.sasl.*) failed")          \
	X(regional_fetch_parts_unheld, "mode=regional: Fetch parts sent with MaxWaitMs 0: their broker had no records " \
	                               "for the client's last part while another broker of the same Fetch had some") \
	X(regional_api_refused, "mode=regional: requests for an API regional mode does not offer (left out of its "    \
	                        "ApiVersions answer: README \"Every API key\"); the client is closed, as a broker "   \
	                        "closes one sending an API it does not offer")                                      \
	X(regional_broker_configs, "mode=regional: config requests (DescribeConfigs, AlterConfigs, "                  \
	                           "IncrementalAlterConfigs) naming a regional node as a broker, sent to the real "   \
	                           "broker it stands for with that broker's id")                                     \
	X(regional_broker_configs_refused, "mode=regional: config resources answered INVALID_REQUEST by kstretch: "     \
	                                   "they named no regional node, or a second one in one request")

struct kx_metrics {
#define KX_METRIC_FIELD(name, help) atomic_uint_fast64_t name;
	KX_METRICS(KX_METRIC_FIELD)
#undef KX_METRIC_FIELD
};

#define KX_METRIC_SHARDS 33 /* shard 0 for the other threads, 1..32 for workers */

/* The counters of one shard, one cache-line-aligned block per shard. */
struct kx_metrics_shard;

/* This thread's counters (shard 0 until kx_metrics_thread()). */
extern _Thread_local struct kx_metrics *kx_metrics_here;

/* Called once by each worker thread at its start: its counters go to a shard of their own. */
void kx_metrics_thread(int worker_id);

/* The sum of one counter over the shards; offset: offsetof(struct kx_metrics, name). */
uint64_t kx_metric_sum(size_t offset);

#define KX_METRIC_ADD(name, n)                                                                                         \
	atomic_fetch_add_explicit(&kx_metrics_here->name, (uint_fast64_t)(n), memory_order_relaxed)
#define KX_METRIC_SUB(name, n)                                                                                         \
	atomic_fetch_sub_explicit(&kx_metrics_here->name, (uint_fast64_t)(n), memory_order_relaxed)
#define KX_METRIC_VALUE(name) kx_metric_sum(offsetof(struct kx_metrics, name))

/*
 * Bytes per (client region, broker region, direction): how much traffic
 * crosses regions. A region gets a small index the first time it is named
 * (kx_region_index: a broker's region when a session connects to it, a
 * client's when it is placed), at most KX_REGIONS_MAX - 1 of them; index 0
 * is "unknown" (no rack, or past the limit). Indexes never change while the
 * process runs, so a session keeps its pair of indexes and counts with one
 * relaxed atomic add per read:
 *
 *   KX_REGION_BYTES_ADD(client_idx, broker_idx, KX_FROM_BROKER, n);
 *
 * /metrics prints every pair that moved bytes:
 *   kstretch_region_bytes{client_region="eu",broker_region="us",direction="from_broker"} 1234
 */
#define KX_REGIONS_MAX 16

enum kx_direction {
	KX_TO_BROKER = 0,   /* requests: client -> broker */
	KX_FROM_BROKER = 1, /* responses: broker -> client */
};

/* This thread's bytes per (client region, broker region, direction); see kx_metrics_here. */
extern _Thread_local atomic_uint_fast64_t (*kx_region_bytes_here)[KX_REGIONS_MAX][2];

/* The index of a region (registered on first use; thread-safe); 0 for "" or NULL, or when the table is full. */
int kx_region_index(const char *region);

/* The name of index i ("unknown" for 0 or an index not registered). */
const char *kx_region_name(int i);

#define KX_REGION_BYTES_ADD(client_idx, broker_idx, dir, n)                                                            \
	atomic_fetch_add_explicit(&kx_region_bytes_here[(client_idx)][(broker_idx)][(dir)], (uint_fast64_t)(n),        \
	                          memory_order_relaxed)

/*
 * Labelled metrics (fixed-size arrays in each shard, no lock and no
 * allocation on the data path; summed at scrape like the counters above):
 *
 *   per API key (KX_API_SLOTS: keys 0..KX_API_SLOTS-2, the last slot for any
 *   other key): requests read, responses answered, responses rewritten,
 *   requests or answers that did not decode, and two latency histograms:
 *     part="kstretch"  time the request and its answer spent inside kstretch
 *                      (read -> sent upstream, answer read -> handed to the client)
 *     part="upstream"  sent upstream -> its (last) answer read
 *   per close cause: client connections closed (kx_close_cause_of(why))
 *   per broker (KX_BROKER_SLOTS, registered on first use like regions):
 *     upstream connects and connect failures
 *   per client region: Fetch bytes served in the client's region whose
 *     partitions' leader was in another region (cost avoided, see cost.h)
 *
 * Histogram buckets are per-bucket counts in the shard (not cumulative):
 * /metrics adds them up, so that _count is the +Inf bucket by construction.
 */
#define KX_API_SLOTS   128
#define KX_LAT_BUCKETS 16 /* finite upper bounds, kx_lat_bounds_ns; one more for +Inf */

enum kx_lat_part {
	KX_LAT_KSTRETCH = 0,
	KX_LAT_UPSTREAM = 1,
};

struct kx_api_stats {
	atomic_uint_fast64_t requests, responses, rewrites, decode_errors;
	atomic_uint_fast64_t lat[2][KX_LAT_BUCKETS + 1];
	atomic_uint_fast64_t lat_sum_ns[2];
};

#define KX_CLOSE_CAUSES(X)                                                                                             \
	X(client_closed, "the client closed its side")                                                                 \
	X(client_error, "a read or write error on the client's socket")                                                \
	X(idle_timeout, "idle.timeout.ms")                                                                             \
	X(request_timeout, "request.timeout.ms")                                                                       \
	X(write_timeout, "write.timeout.ms")                                                                           \
	X(protocol_error, "a malformed or out-of-order frame")                                                         \
	X(tls, "TLS: a failed handshake, or TLS on a plaintext listener")                                              \
	X(upstream_lost, "its broker connection failed or closed")                                                     \
	X(shutdown, "kstretch stopping")                                                                               \
	X(out_of_memory, "no memory")                                                                                  \
	X(other, "anything else")

enum kx_close_cause {
#define KX_CLOSE_ENUM(name, help) KX_CLOSE_##name,
	KX_CLOSE_CAUSES(KX_CLOSE_ENUM)
#undef KX_CLOSE_ENUM
	    KX_CLOSE_CAUSE_CNT
};

#define KX_BROKER_SLOTS 64 /* slot 0: "bootstrap" (node -1), and any node past the limit */

/* This thread's labelled metrics; see kx_metrics_here. */
struct kx_labelled {
	struct kx_api_stats api[KX_API_SLOTS];
	atomic_uint_fast64_t closed[KX_CLOSE_CAUSE_CNT];
	atomic_uint_fast64_t upstream_connects[KX_BROKER_SLOTS], upstream_failures[KX_BROKER_SLOTS];
	atomic_uint_fast64_t fetch_kept_local[KX_REGIONS_MAX][KX_REGIONS_MAX]; /* [client region][leader region] */
};
extern _Thread_local struct kx_labelled *kx_labelled_here;

static inline unsigned kx_api_slot(int16_t api_key)
{
	return api_key >= 0 && api_key < KX_API_SLOTS - 1 ? (unsigned)api_key : KX_API_SLOTS - 1;
}

#define KX_API_COUNT(field, api_key)                                                                                   \
	atomic_fetch_add_explicit(&kx_labelled_here->api[kx_api_slot(api_key)].field, 1, memory_order_relaxed)

/* Monotonic nanoseconds (vDSO clock: no system call). */
uint64_t kx_now_ns(void);

/* Adds one observation of ns to the histogram of (api_key, part). */
void kx_metrics_latency(int16_t api_key, enum kx_lat_part part, uint64_t ns);

/*
 * A request's times, for the two histograms: when kstretch read it, when
 * it (its first part) went upstream, when its (last) answer was read. The
 * caller stamps them; kx_timing_done at the moment the answer is handed to
 * the client observes both parts (nothing when the request was never sent).
 */
struct kx_timing {
	uint64_t in_ns, sent_ns, answered_ns;
};
static inline void kx_timing_sent(struct kx_timing *t, uint64_t now)
{
	if (!t->sent_ns)
		t->sent_ns = now > t->in_ns ? now : t->in_ns;
}
void kx_timing_done(int16_t api_key, const struct kx_timing *t, uint64_t now);

/* Counts a client connection closed for why (the reason string given to kx_session_close). */
enum kx_close_cause kx_close_cause_of(const char *why);
void kx_metrics_closed(const char *why);
void kx_metrics_closed_as(enum kx_close_cause c);

/* An upstream connect to node_id (-1: a bootstrap server) that succeeded (ok) or failed. */
void kx_metrics_upstream(int32_t node_id, bool ok);

/* Fetch answer bytes read from a broker in the client's region for partitions led from leader_ridx. */
static inline void kx_metrics_kept_local(int client_ridx, int leader_ridx, uint64_t n)
{
	atomic_fetch_add_explicit(&kx_labelled_here->fetch_kept_local[client_ridx][leader_ridx], n,
	                          memory_order_relaxed);
}

/* The readiness probe's Metadata fetches (admin.c): result ok or failed. */
void kx_metrics_topology_refresh(bool ok);

/* The rules /metrics prices region bytes with (cost.h; set at start, before the admin port opens). */
struct kx_cost_rules;
void kx_metrics_set_cost(const struct kx_cost_rules *r);

/* Prometheus text exposition, names prefixed kstretch_. */
void kx_metrics_write(FILE *out);

#endif
