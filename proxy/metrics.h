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
	                                 "as many for the rest)")                                                    \
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
	X(regional_sasl_authenticated, "mode=regional: clients a node authenticated (sasl.users, or a verified "       \
	                               "certificate with sasl.mtls.identity)")                                        \
	X(regional_sasl_refused, "mode=regional: clients a node refused: wrong credentials, a mechanism not "          \
	                         "offered, a malformed exchange, or a request before authenticating")                \
	X(upstream_sasl_failures, "upstream connections whose SASL authentication (upstream.sasl.*) failed")          \
	X(regional_fetch_parts_unheld, "mode=regional: Fetch parts sent with MaxWaitMs 0: their broker had no records " \
	                               "for the client's last part while another broker of the same Fetch had some")

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

/* Prometheus text exposition, names prefixed kstretch_. */
void kx_metrics_write(FILE *out);

#endif
