/*
 * regional_nodes: the region's kstretch node set as a running regional node
 * (mode=regional) holds it: an immutable, reference-counted snapshot that a
 * refresher replaces and workers read without a lock, the topology's pattern
 * (routing/topology.h) for a smaller thing.
 *
 *   regional.nodes=ID@HOST:PORT,...  ──► published once, at kx_nodes_refresher_new()
 *
 *   regional.nodes.dns=NAME:PORT     ──► refresher, on the thread of its event_base (main's):
 *       every refresh.ms: A and AAAA queries for NAME (its evdns_base)
 *         both answered ──► each address a node, id kr_regional_node_id(ADDRESS, PORT)
 *                       ──► kr_regional_nodes_finish ──► differs from the current set? publish, log old -> new
 *         an error or a timeout on either, no address at all, an answer that makes no set
 *                       ──► the current set stays; one line when the state changes, not per refresh
 *
 *   worker:  kx_nodes_cached(&w->nodes) ──► one atomic load; a reference only when a new set was published
 *
 * Both queries must answer: a set read from A alone while AAAA timed out
 * could drop live nodes, so an error on either keeps the last set (which is
 * also why this does not use evdns_getaddrinfo: it returns the half that
 * answered, and reports "no records" as a failure). Until a first set is
 * published, kx_nodes_get() is NULL and a DNS refresher retries every second
 * (or refresh.ms, if shorter).
 */
#ifndef KX_REGIONAL_NODES_H
#define KX_REGIONAL_NODES_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <event2/dns.h>
#include <event2/event.h>

#include "config.h"
#include "regional.h"

/* ---- the published snapshot --------------------------------------------- */

struct kx_nodes {
	atomic_int refs;
	uint64_t generation;          /* grows with every published set */
	uint64_t digest;              /* kr_regional_nodes_digest(&set): what a session keeps of the set it showed */
	struct kr_regional_nodes set; /* finished: sorted by id, checked */
};

/* The current set, referenced (NULL before the first publish). */
struct kx_nodes *kx_nodes_get(void);
void kx_nodes_put(struct kx_nodes *n);

/* Publishes a copy of a finished set as the current one; false when out of memory (the old one stays). */
bool kx_nodes_publish(const struct kr_regional_nodes *set);

/* Drops the current set (at exit, and between tests). */
void kx_nodes_clear(void);

/*
 * One thread's reference to the current set, for the data path: as
 * kx_topology_cache, one atomic load (acquire) when nothing changed. The
 * pointer stays valid until the next call on the same cache or
 * kx_nodes_cache_drop(); a cache is used by one thread only. Zeroed at start.
 */
struct kx_nodes_cache {
	struct kx_nodes *nodes; /* referenced; NULL: none published yet */
	uint64_t generation;
};

const struct kx_nodes *kx_nodes_cached(struct kx_nodes_cache *c);
void kx_nodes_cache_drop(struct kx_nodes_cache *c);

/* ---- where the set comes from, and the refresher ------------------------- */

struct kx_nodes_source {
	const struct kr_regional_nodes *fixed; /* regional.nodes (finished); NULL: from DNS */
	const char *dns_name;                  /* regional.nodes.dns NAME */
	uint16_t dns_port;                     /* ... and PORT: every node's port, part of its id */
	int refresh_ms;                        /* regional.nodes.refresh.ms */
	int32_t self_id;                       /* node.id; -1: none. A published set without it is logged */
};

/* The source a configuration names (pointers into cfg, which must outlive it). */
void kx_nodes_source_from_config(const struct kx_config *cfg, struct kx_nodes_source *src);

enum kx_nodes_state {
	KX_NODES_WAITING,  /* no answer handled yet */
	KX_NODES_OK,       /* the last answer made the current set */
	KX_NODES_FAILING,  /* the last lookup failed (a DNS error or a timeout, on A or AAAA) */
	KX_NODES_EMPTY,    /* the last answer named no address (no record, or no such name) */
	KX_NODES_UNUSABLE, /* the last answer's addresses make no set (more than KR_REGIONAL_NODES_MAX, an id twice) */
};

struct kx_nodes_stats {
	enum kx_nodes_state state;
	uint64_t lookups;       /* lookups finished (answered or failed) */
	uint64_t changes;       /* sets published (the first one included) */
	uint64_t state_changes; /* changes of state, each logged once */
	size_t node_cnt;        /* nodes in the current set (0: none yet) */
};

struct kx_nodes_refresher;

/*
 * Publishes src->fixed at once, or starts reading src->dns_name with dns (a
 * base of the caller's: the system's resolver in kstretch, a private one in
 * tests) on base's thread; the first lookup starts now. NULL when out of
 * memory or src names no source.
 */
struct kx_nodes_refresher *kx_nodes_refresher_new(struct event_base *base, struct evdns_base *dns,
                                                  const struct kx_nodes_source *src);

/*
 * Stops refreshing; the published set stays (kx_nodes_clear drops it). A
 * lookup in flight is cancelled: libevent runs its callbacks on base's next
 * loop turn, which frees it; free the refresher before dns.
 */
void kx_nodes_refresher_free(struct kx_nodes_refresher *r);

void kx_nodes_refresher_stats(const struct kx_nodes_refresher *r, struct kx_nodes_stats *out);

const char *kx_nodes_state_name(enum kx_nodes_state s);

#endif
