/*
 * regional: how a region's virtual cluster is laid out (mode=regional,
 * issue 15) — which of the region's kstretch nodes a partition's clients are
 * told leads it. Every node computes the same answer from the same node set
 * and nothing else: no membership protocol, no coordination.
 *
 *   key    = XXH3-64 of the partition number (big-endian), seeded with the
 *            XXH3-64 of the topic name
 *   leader = nodes[jump(key, node count)]   (nodes ordered by id)
 *
 * Jump consistent hashing (Lamping and Veach, 2014) moves only 1/n of the
 * partitions when an n-th node joins (all of them to the new node), and none
 * between the nodes that stay. A node found by DNS gets its id from its
 * address (kr_regional_node_id), so a node set read from a headless Service
 * numbers the same on every node.
 *
 * The node set (struct kr_regional_nodes) is what every node must agree on:
 * regional.nodes gives it as "ID@HOST:PORT,..." (Kafka's controller.quorum.voters
 * form), or a DNS answer gives addresses and kr_regional_node_id() numbers
 * them. Once finished it is sorted by id and free of duplicate ids and
 * addresses, so two nodes reading the same list in any order hold equal sets
 * and lay the cluster out alike:
 *
 *   parse / add ──► kr_regional_nodes_finish() ──► ids[] ascending ──► leader
 *                                 │                                    replicas: leader first,
 *                                 └─► digest: did the set a client       then the others ascending
 *                                     last saw change? (KIP-1102)        controller: the lowest id
 *
 * Pure functions: no sockets, no globals, no allocation.
 */
#ifndef KR_REGIONAL_H
#define KR_REGIONAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The bucket in [0, buckets) that key falls in (buckets >= 1; 0 when buckets < 1). */
int32_t kr_jump_hash(uint64_t key, int32_t buckets);

/* The key of one partition: its topic name's bytes and its number. */
uint64_t kr_partition_key(const char *topic, size_t topic_len, int32_t partition);

/*
 * The id of the node that leads the partition in the virtual cluster, of
 * the node ids ids[0..cnt) sorted ascending (bucket i is ids[i]); -1 when
 * cnt is 0.
 */
int32_t kr_virtual_leader(const int32_t *ids, size_t cnt, const char *topic, size_t topic_len, int32_t partition);

/*
 * A stable node id for a node known only by its address (regional.nodes.dns):
 * 1..2^30, the same for the same "host:port" on every node. Distinct
 * addresses can collide (1 in 2^30 per pair): the caller checks its set.
 */
int32_t kr_regional_node_id(const char *host, uint16_t port);

/* ---- the region's node set ---------------------------------------------- */

#define KR_REGIONAL_NODES_MAX 64  /* kstretch nodes in one region */
#define KR_REGIONAL_HOST_MAX  256 /* a DNS name is at most 253 characters; with its NUL */

/*
 * Kafka's REBOOTSTRAP_REQUIRED (KIP-1102): a Metadata v13+ response's
 * top-level ErrorCode telling the client to start again from its bootstrap
 * servers.
 */
#define KR_ERR_REBOOTSTRAP_REQUIRED 129

struct kr_regional_node {
	int32_t id;
	uint16_t port;
	char host[KR_REGIONAL_HOST_MAX]; /* a name or an address; IPv6 without brackets */
};

/* Fixed size (about 17 KiB): holding, copying and comparing sets never allocates. */
struct kr_regional_nodes {
	size_t cnt;
	bool finished;                                        /* sorted and checked (kr_regional_nodes_finish) */
	int32_t ids[KR_REGIONAL_NODES_MAX];                   /* finished: ascending (kr_virtual_leader's order) */
	struct kr_regional_node nodes[KR_REGIONAL_NODES_MAX]; /* nodes[i].id == ids[i] */
};

void kr_regional_nodes_init(struct kr_regional_nodes *set);

/*
 * Adds a node (the set is no longer finished). id < 0: the id comes from the
 * address (kr_regional_node_id), as for a node found by DNS; else 0..INT32_MAX.
 * host: host_len bytes, a DNS name or an IPv4/IPv6 address (no brackets).
 * False, with why, when the set is full or the host or port is not valid.
 */
bool kr_regional_nodes_add(struct kr_regional_nodes *set, int32_t id, const char *host, size_t host_len,
                           uint16_t port, char *why, size_t whylen);

/*
 * Adds the nodes of a list "[ID@]HOST:PORT[,[ID@]HOST:PORT...]" (spaces around
 * items ignored; an IPv6 address in brackets, "[::1]:9092"; without ID@ the id
 * comes from the address). False, with why naming the item, on the first bad
 * one; the nodes before it stay added.
 */
bool kr_regional_nodes_parse(struct kr_regional_nodes *set, const char *text, char *why, size_t whylen);

/*
 * Sorts the set by id and checks it: at least one node, no id twice, no
 * address (host compared without case, and port) twice. False, with why,
 * otherwise (the set is left sorted but not finished).
 */
bool kr_regional_nodes_finish(struct kr_regional_nodes *set, char *why, size_t whylen);

/* Whether two finished sets are the same nodes (ids, hosts byte for byte, ports). */
bool kr_regional_nodes_equal(const struct kr_regional_nodes *a, const struct kr_regional_nodes *b);

/*
 * A 64-bit digest of a finished set, equal for equal sets: what a session
 * keeps of the set it last showed its client, to tell it has changed
 * (then a Metadata v13+ answer carries KR_ERR_REBOOTSTRAP_REQUIRED).
 */
uint64_t kr_regional_nodes_digest(const struct kr_regional_nodes *set);

/* The index of the node with this id in a finished set, or -1. */
int kr_regional_nodes_index(const struct kr_regional_nodes *set, int32_t id);

/*
 * The index in a finished set of the node that leads the partition: the
 * node kr_virtual_leader() names. -1 when the set is empty.
 */
int kr_regional_leader(const struct kr_regional_nodes *set, const char *topic, size_t topic_len, int32_t partition);

/*
 * The index in a finished set of the node a client is told coordinates a
 * key (FindCoordinator: key_type 0 a group, 1 a transactional id): jump hash
 * of the key's XXH3-64 seeded with its type, so every node names the same
 * one and a node joining takes over only its share. -1 when the set is empty.
 */
int kr_regional_coordinator(const struct kr_regional_nodes *set, int8_t key_type, const char *key, size_t key_len);

/* The virtual cluster's controller: the node with the lowest id (the first), -1 when empty. */
int32_t kr_regional_controller(const struct kr_regional_nodes *set);

/*
 * A partition's replicas (and in-sync replicas) in the virtual cluster,
 * written to out[0..cnt): the leader (its index in the set) first, then
 * every other node in ascending id order. Returns the count (0 when leader is
 * out of range).
 */
size_t kr_regional_replicas(const struct kr_regional_nodes *set, int leader, int32_t *out);

#endif
