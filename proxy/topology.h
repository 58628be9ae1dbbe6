/*
 * topology: what kstretch knows of the upstream cluster — its brokers (node
 * id, address, rack) — as an immutable, reference-counted snapshot.
 *
 * Readers take a reference (kx_topology_get), use it for as long as they
 * like, and drop it (kx_topology_put). A writer builds a new snapshot and
 * publishes it; workers are told and pick it up on their own thread. Nothing
 * on the data path ever waits for a writer.
 */
#ifndef KX_TOPOLOGY_H
#define KX_TOPOLOGY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct kx_broker {
	int32_t node_id;
	char host[KX_HOST_MAX];
	uint16_t port;
	char rack[KX_NAME_MAX]; /* "" = none */
	uint16_t listen_port;   /* kstretch's port for this node; 0 = none can be given */
};

struct kx_topology {
	atomic_int refs;
	uint64_t generation; /* grows with every published snapshot */
	size_t broker_cnt;
	struct kx_broker brokers[]; /* sorted by node_id */
};

/* A new snapshot of n brokers (copied and sorted); listen ports from cfg. */
struct kx_topology *kx_topology_new(const struct kx_config *cfg, const struct kx_broker *brokers, size_t n);

/* The broker with this node id, or NULL. */
const struct kx_broker *kx_topology_broker(const struct kx_topology *t, int32_t node_id);

/* Listener port for a node: broker.port.map, else broker.port.base + id; 0 if out of range. */
uint16_t kx_listen_port(const struct kx_config *cfg, int32_t node_id);

/*
 * Merges brokers seen in a Metadata response into the current snapshot.
 * Brokers not seen keep their place (they keep their listeners until idle).
 * Returns true when something changed and a new snapshot was published.
 */
bool kx_topology_merge(const struct kx_config *cfg, const struct kx_broker *seen, size_t n);

/* The current snapshot, referenced (NULL before the first publish). */
struct kx_topology *kx_topology_get(void);
void kx_topology_put(struct kx_topology *t);

/* Replaces the current snapshot (takes over the caller's reference). */
void kx_topology_publish(struct kx_topology *t);

/* Called (from the publishing thread) after every publish; workers hook in here. */
void kx_topology_on_publish(void (*fn)(void *arg), void *arg);

/* Drops the current snapshot (at exit). */
void kx_topology_clear(void);

#endif
