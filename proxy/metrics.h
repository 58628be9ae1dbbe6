/*
 * metrics: process-wide counters, defined once in the table below (X-macro),
 * updated with relaxed atomics from every worker.
 */
#ifndef KX_METRICS_H
#define KX_METRICS_H

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#define KX_METRICS(X)                                                                                                  \
	X(connections_accepted, "client connections accepted")                                                         \
	X(connections_active, "client connections open now")                                                           \
	X(upstream_connect_failures, "upstream connections that failed or timed out")                                  \
	X(requests_forwarded, "requests forwarded upstream")                                                           \
	X(responses_forwarded, "responses passed through unchanged")                                                   \
	X(responses_rewritten, "responses rewritten (broker addresses, ApiVersions)")                                  \
	X(addresses_rewritten, "broker addresses rewritten to kstretch listeners")                                     \
	X(bytes_from_clients, "bytes read from clients")                                                               \
	X(bytes_from_brokers, "bytes read from brokers")                                                               \
	X(bytes_spliced, "bytes passed socket to socket through a pipe (splice), never in user space")                 \
	X(bytes_copied, "bytes copied in user space (rewritten responses; 0 for passed-through bodies)")               \
	X(protocol_errors, "connections closed on malformed or out-of-order frames")

struct kx_metrics {
#define KX_METRIC_FIELD(name, help) atomic_uint_fast64_t name;
	KX_METRICS(KX_METRIC_FIELD)
#undef KX_METRIC_FIELD
};

extern struct kx_metrics kx_metrics;

#define KX_METRIC_ADD(name, n) atomic_fetch_add_explicit(&kx_metrics.name, (uint_fast64_t)(n), memory_order_relaxed)
#define KX_METRIC_SUB(name, n) atomic_fetch_sub_explicit(&kx_metrics.name, (uint_fast64_t)(n), memory_order_relaxed)

/* Prometheus text exposition, names prefixed kstretch_. */
void kx_metrics_write(FILE *out);

#endif
