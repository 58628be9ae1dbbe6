/*
 * virtual_metadata: the Metadata response a regional client sees (mode=regional,
 * issue 15). The real cluster's answer, decoded whole, is rebuilt as the answer
 * of a virtual cluster made only of the region's kstretch nodes:
 *
 *   real (kp_decode, v0-13)                    virtual (kp_encode, same version)
 *   Brokers [real ids, addresses, racks]  ──►  Brokers [each region node: id, host, port,
 *                                                       Rack = region]   (ascending id)
 *   ControllerId (real)                   ──►  the lowest node id (kr_regional_controller)
 *   Topics[].Partitions[]
 *     LeaderId (real, or -1)              ──►  kr_virtual_leader(ids, topic, partition);
 *                                              -1 stays -1 (no leader: clients retry)
 *     ReplicaNodes                        ──►  the region's nodes, leader first, then ascending
 *     IsrNodes                            ──►  the same; empty when the real one was empty
 *     OfflineReplicas (v5+)               ──►  empty
 *     ErrorCode, PartitionIndex,
 *     LeaderEpoch (v7+)                   ──►  as they were
 *   Topics[] ErrorCode, Name, TopicId, IsInternal,
 *   TopicAuthorizedOperations             ──►  as they were
 *   ThrottleTimeMs, ClusterId,
 *   ClusterAuthorizedOperations (v8-10)   ──►  as they were
 *   ErrorCode (v13+, KIP-1102)            ──►  as it was, or the caller's (REBOOTSTRAP_REQUIRED
 *                                              when the node set changed since the client's
 *                                              last Metadata: kr_regional_nodes_digest)
 *
 * Unknown tagged fields are dropped everywhere: kstretch cannot tell whether
 * one names a real node, and no real node id or address may reach the client.
 * The leader depends only on (node ids, topic name, partition), so every
 * kstretch node of the region gives byte-identical answers to the same real
 * answer. (A partition of a topic without a name — v12+, a topic asked for by
 * id that does not exist — is laid out with the empty name.)
 *
 * Cost: linear in partitions. The answer is allocated from the caller's arena:
 * a struct per topic and per partition (their values copied, strings, ids and
 * other spans still pointing into the real answer's input), a broker per node,
 * and a replica list per node that leads something (at most 64 x 64 ids),
 * shared by the partitions it leads. Nothing else is allocated. The answer
 * points into the real answer's input and into the arena: keep both until it
 * has been encoded.
 */
#ifndef KX_VIRTUAL_METADATA_H
#define KX_VIRTUAL_METADATA_H

#include <stdint.h>

#include "arena.h"
#include "regional.h"
#include "schema.h"

/* The virtual cluster a region's clients see. */
struct kx_virtual_cluster {
	const struct kr_regional_nodes *nodes; /* finished (kr_regional_nodes_finish), at least one node */
	const char *region;                    /* every node's Rack (v1+), <= 255 bytes; NULL or "": a null Rack */
};

enum kx_vmeta_result {
	KX_VMETA_OK = 0,
	KX_VMETA_NOMEM = 1,     /* the arena refused (its cap, or no memory): nothing usable in *out */
	KX_VMETA_BAD_INPUT = 2, /* not a whole Metadata response of version 0..13, or no finished node set */
};

/* Keeps the real response's top-level ErrorCode (kx_virtual_metadata's error_code). */
#define KX_VMETA_REAL_ERROR 0

/*
 * Builds in *out the virtual cluster's answer to a Metadata request of
 * `version`, from the real cluster's answer `real` (kp_decode of
 * kp_metadata_response at that version, all fields: not a prefix decode;
 * left unchanged). error_code: the v13+ top-level ErrorCode,
 * KX_VMETA_REAL_ERROR for the real one (versions below 13 have no such field
 * and ignore it: an older client learns a changed node set from Brokers).
 * Encode *out with kp_encode(w, *out, version, flexible, -1).
 */
enum kx_vmeta_result kx_virtual_metadata(struct kp_arena *a, const struct kp_struct *real, int16_t version,
                                         const struct kx_virtual_cluster *vc, int16_t error_code,
                                         struct kp_struct **out);

/*
 * The virtual cluster's answer to DescribeCluster (v0-2) from the real one
 * (kp_decode of kp_describe_cluster_response, whole): Brokers become the
 * region's nodes as Metadata shows them (id, host, port, Rack = region, not
 * fenced), ControllerId Metadata's (kr_regional_controller); ThrottleTimeMs,
 * ErrorCode, ErrorMessage, EndpointType, ClusterId and
 * ClusterAuthorizedOperations as they were; unknown tagged fields dropped.
 * An error answer (e.g. UNSUPPORTED_ENDPOINT_TYPE for controllers) keeps its
 * error with no broker and ControllerId -1.
 */
enum kx_vmeta_result kx_virtual_describe_cluster(struct kp_arena *a, const struct kp_struct *real, int16_t version,
                                                 const struct kx_virtual_cluster *vc, struct kp_struct **out);

#endif
