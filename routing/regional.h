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
 * Pure functions: no sockets, no globals, no allocation.
 */
#ifndef KR_REGIONAL_H
#define KR_REGIONAL_H

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

#endif
