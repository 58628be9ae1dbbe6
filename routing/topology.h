/*
 * topology: what kstretch knows of the upstream cluster — its brokers (node
 * id, address, rack, region) and, once a client that needs them has asked,
 * its topics' partitions (leader, replicas, in-sync replicas) — as an
 * immutable, reference-counted snapshot.
 *
 *   kx_topology ──► brokers[]            sorted by node id; region from rack (region.map)
 *              ──► topics[]  ─┐          sorted by name
 *              ──► topics_by_id[] ─┴──►  kx_topic (refcounted, shared by the snapshots
 *                                         that hold it): partitions[] sorted by index,
 *                                         each {leader, replicas, isr}
 *
 * Readers take a reference (kx_topology_get), use it for as long as they
 * like, and drop it (kx_topology_put). A writer builds a new snapshot and
 * publishes it; workers are told and pick it up on their own thread. Nothing
 * on the data path ever waits for a writer. A merge copies the broker list
 * and the topic pointers; only the topics a Metadata response named are
 * rebuilt, so its cost follows that response, not the cluster.
 */
#ifndef KR_TOPOLOGY_H
#define KR_TOPOLOGY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"

#define KR_HOST_MAX 256 /* a DNS name is at most 253 characters */

/*
 * What a snapshot is built with, from the configuration (the proxy fills it:
 * kx_config_topology()): kstretch's listener port per node, the region of a
 * rack, and where its lines go (routing has no log of its own).
 */
struct kr_port_mapping {
	int32_t node_id;
	uint16_t port;
};

struct kr_topology_rules {
	int broker_port_base;                    /* broker.port.base */
	const struct kr_port_mapping *port_map;  /* broker.port.map, wins over the base */
	size_t port_map_cnt;
	const struct kr_region_rule *region_rules; /* region.map */
	size_t region_rule_cnt;
	void (*log)(bool error, const char *line); /* a broker seen for the first time or moved, no memory; may be NULL */
};

struct kx_broker {
	int32_t node_id;
	char host[KR_HOST_MAX];
	uint16_t port;
	char rack[KR_NAME_MAX]; /* "" = none */
	uint16_t listen_port;   /* kstretch's port for this node; 0 = none can be given */
	/* Set by kx_topology_new (ignored in what is merged): */
	char region[KR_NAME_MAX]; /* region of rack (region.map, else the default rule); "" = unknown */
};

struct kx_partition {
	int32_t index;
	int32_t leader; /* -1: none */
	int32_t leader_epoch;
	int16_t error_code;
	uint16_t replica_cnt, isr_cnt;
	const int32_t *replicas; /* node ids, in the topic's node pool */
	const int32_t *isr;
};

struct kx_topic {
	atomic_int refs;
	const char *name; /* NUL-terminated, in the same block; "" when the response had none */
	uint8_t id[16];   /* Metadata v10+; all zero: unknown */
	bool has_id;
	bool gone; /* a tombstone: the topic no longer exists (UNKNOWN_TOPIC_OR_PARTITION); merges remove it */
	size_t partition_cnt;
	struct kx_partition *partitions; /* sorted by index once kx_topic_finish() ran */
	/* builder state: room for partitions and replica/ISR node ids, in the same block */
	size_t partition_cap, node_cap, node_used;
	int32_t *nodes;
};

struct kx_topology {
	atomic_int refs;
	uint64_t generation; /* grows with every published snapshot */
	size_t topic_cnt;
	struct kx_topic **topics;       /* sorted by name (the snapshot holds a reference to each) */
	size_t topic_id_cnt;            /* those with an id ... */
	struct kx_topic **topics_by_id; /* ... sorted by id */
	size_t broker_cnt;
	struct kx_broker brokers[]; /* sorted by node_id */
};

/* A new snapshot of n brokers (copied and sorted), no topics; listen ports and regions from r. */
struct kx_topology *kx_topology_new(const struct kr_topology_rules *r, const struct kx_broker *brokers, size_t n);

/* The broker with this node id, or NULL. */
const struct kx_broker *kx_topology_broker(const struct kx_topology *t, int32_t node_id);

/* Listener port for a node: broker.port.map, else broker.port.base + id; 0 if out of range. */
uint16_t kx_listen_port(const struct kr_topology_rules *r, int32_t node_id);

/* A topic by name (len bytes, need not be NUL-terminated) or by 16-byte id; NULL when not known. */
const struct kx_topic *kx_topology_topic(const struct kx_topology *t, const char *name, size_t len);
const struct kx_topic *kx_topology_topic_by_id(const struct kx_topology *t, const uint8_t *id);

/* A partition of a topic by index, or NULL. */
const struct kx_partition *kx_topic_partition(const struct kx_topic *tp, int32_t index);

/*
 * mode=regional: the broker a consumer's Fetch of partition p is sent to:
 * an in-sync replica whose broker is in `region` (when several are, `key`
 * picks one, so a partition keeps going to the same one), else the leader.
 * followers_ok false (a Fetch below v11, which only a leader serves): the
 * leader. -1 when p has no leader.
 */
int32_t kx_partition_read_replica(const struct kx_topology *t, const struct kx_partition *p, const char *region,
                                  uint64_t key, bool followers_ok);

/*
 * Building a topic (what rewrite.c does with a Metadata response's topics):
 * kx_topic_new() with room for partition_cnt partitions and node_cnt replica
 * and ISR entries in all, kx_topic_add_partition() for each, kx_topic_finish().
 * The builder holds one reference; kx_topology_merge_topics() takes it over.
 */
struct kx_topic *kx_topic_new(const char *name, size_t name_len, const uint8_t *id, size_t partition_cnt,
                              size_t node_cnt);
/* False when the topic has no room left (counts larger than kx_topic_new was told). */
bool kx_topic_add_partition(struct kx_topic *tp, int32_t index, int32_t leader, int32_t leader_epoch,
                            int16_t error_code, const int32_t *replicas, size_t replica_cnt, const int32_t *isr,
                            size_t isr_cnt);
void kx_topic_finish(struct kx_topic *tp);
void kx_topic_put(struct kx_topic *tp);

/*
 * Merges brokers seen in a Metadata response into the current snapshot.
 * Brokers not seen keep their place (they keep their listeners until idle).
 * Returns true when something changed and a new snapshot was published.
 */
bool kx_topology_merge(const struct kr_topology_rules *r, const struct kx_broker *seen, size_t n);

/*
 * kx_topology_merge(), and topics: each replaces the known topic with its
 * name or id (a tombstone removes it); the others stay. Takes over the
 * references to topics[0..topic_cnt) in every case. Publishes one snapshot
 * when anything changed; returns whether it did.
 */
bool kx_topology_merge_topics(const struct kr_topology_rules *r, const struct kx_broker *seen, size_t n,
                              struct kx_topic *const *topics, size_t topic_cnt);

/*
 * The current snapshot again with rules r (listen ports, regions: a
 * reloaded configuration), published. False when there is none yet or no
 * memory (the current one stays).
 */
bool kx_topology_apply_rules(const struct kr_topology_rules *r);

/* The current snapshot, referenced (NULL before the first publish). */
struct kx_topology *kx_topology_get(void);
void kx_topology_put(struct kx_topology *t);

/* Replaces the current snapshot (takes over the caller's reference). */
void kx_topology_publish(struct kx_topology *t);

/* Called (from the publishing thread) after every publish; workers hook in here. */
void kx_topology_on_publish(void (*fn)(void *arg), void *arg);

/* Drops the current snapshot (at exit). */
void kx_topology_clear(void);

/*
 * One thread's reference to the current snapshot, for lookups on the data
 * path without the lock kx_topology_get() takes: a worker keeps one, zeroed
 * at start. kx_topology_cached() compares the published generation (one
 * atomic load, acquire) with the one it holds, and only when they differ
 * takes a reference to the new snapshot and drops the old one, which is
 * freed when its last holder (a cache, a session, a merge) lets go. The
 * pointer it returns stays valid until the next call on the same cache or
 * kx_topology_cache_drop(); a cache is used by one thread only.
 */
struct kx_topology_cache {
	struct kx_topology *topology; /* referenced; NULL: none published yet */
	uint64_t generation;          /* of kx_topology_published when it was taken */
};

const struct kx_topology *kx_topology_cached(struct kx_topology_cache *c);
void kx_topology_cache_drop(struct kx_topology_cache *c);

#endif
