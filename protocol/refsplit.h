/*
 * refsplit: regional mode's cut and join of Produce requests and Fetch
 * responses, by reference. A client's Produce is split per partition across
 * the real leaders; the Fetch responses of several brokers are merged into
 * one answer in the client's order. Record batches never move: each output
 * references them where they lie in the socket buffers (kp_write_ref), and
 * only the small structure around them is written (owned bytes).
 *
 *   Produce request (pieces)                         destination writers
 *   prefix | topic A [p0 p1 p2] | topic B [p0] | tags
 *                                                    0: prefix | A [p0 p2] | tags
 *          route(A, p) / route(B, p) -> 0, 1, -1     1: prefix | A [p1] B [p0] | tags
 *                                                    -1: kept (answered by the caller)
 *
 *   Fetch responses (pieces, one per broker)         one writer, client order
 *   part 0: A [p1] B [p0]    part 1: A [p0]          A [p0 <- 1, p1 <- 0, p2 missing] B [p0 <- 0]
 *
 * protocol/ knows the wire and nothing else: the caller says where each
 * partition goes and what the client asked for. Both walks are linear in the
 * message (pieces crossed, partitions met), and every count is bounded by the
 * bytes that hold it. Malformed input returns false with the error on the
 * pieces (kp_pieces err / err_field), never reading past them.
 *
 * The pieces must outlive the writers' output (their references point into
 * them), as for any kp_write_ref.
 */
#ifndef KP_REFSPLIT_H
#define KP_REFSPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skip.h"
#include "walk.h"
#include "writer.h"

/* A partition of the client's message by ordinals: its topic's, and its own within the topic. */
struct kp_part_ref {
	uint32_t topic;     /* 0, 1, ... in the client's TopicData */
	uint32_t partition; /* 0, 1, ... in that topic's PartitionData */
	int32_t index;      /* its partition index (Kafka's number) */
};

/* ---- Produce request split ------------------------------------------------ */

/*
 * Where partition `index` of topic t goes: a destination 0..n-1, or -1 (not
 * forwarded: the caller answers it, with an error). Any other value makes
 * the split fail (KP_ERR_BAD_VALUE, "destination").
 */
typedef int (*kp_produce_route_fn)(void *arg, const struct kp_walk_topic *t, int32_t index);

struct kp_produce_dest {
	/*
	 * A whole Produce request body at the client's version (the caller
	 * writes the request header before it), or nothing (size 0) when no
	 * partition goes here: TransactionalId, Acks and TimeoutMs as the
	 * client sent them, this destination's topics and partitions in the
	 * client's order, keys (names or ids) as sent, each partition's records
	 * referenced, tagged fields of partitions, topics and the top level
	 * copied as they came (no tagged field is defined in Produce requests
	 * up to v13; unknown ones travel on). A topic the client sent with no
	 * partitions goes nowhere: there is nothing in it to answer.
	 */
	struct kp_writer body;
	struct kp_part_ref *parts; /* the partitions carried, in the body's order */
	size_t nparts;
	size_t parts_cap;
};

struct kp_produce_split {
	int ndest;
	struct kp_produce_dest *dest;
	struct kp_part_ref *kept; /* routed to -1, in the client's order */
	size_t nkept, kept_cap;
	/* Scratch of the walk, kept between calls. */
	struct kp_split_topic *topics;
	size_t ntopics, topics_cap;
	struct kp_split_part *parts;
	size_t nparts, parts_cap;
	uint32_t *count; /* per destination */
};

void kp_produce_split_init(struct kp_produce_split *s);
void kp_produce_split_free(struct kp_produce_split *s);

/*
 * Splits the Produce request body at p's position (just after the request
 * header) up to p->len, at version ver, over ndest destinations. Replaces
 * what an earlier call left in s. False on malformed input, trailing bytes,
 * a route out of range, or no memory (p->err says which; s's writers are
 * then unusable).
 */
bool kp_produce_split(struct kp_produce_split *s, struct kp_pieces *p, int16_t ver, bool flexible, int ndest,
                      kp_produce_route_fn route, void *arg);

/*
 * Acks of the Produce request body at p's position (just after the request
 * header; p does not move): v0-2 its first field, v3+ after the
 * TransactionalId. Reads across the pieces without copying more than those
 * two bytes. False on malformed input (p->err says what).
 */
bool kp_produce_acks(struct kp_pieces *p, int16_t ver, bool flexible, int16_t *acks);

/* ---- Fetch response merge ------------------------------------------------- */

/* One partition the client asked for. Consecutive entries with the same key
 * make one topic of the answer. */
struct kp_fetch_want {
	const uint8_t *key; /* topic name (v0-12) or 16-byte topic id (v13+) */
	size_t key_len;
	int32_t index;
};

struct kp_fetch_merge {
	/*
	 * A whole Fetch response body at the parts' version: ThrottleTimeMs the
	 * largest of the parts', ErrorCode the first non-zero top-level error of
	 * the parts (else 0), SessionId 0 (sessionless), then one topic per run
	 * of wants and each wanted partition as the part holding it wrote it,
	 * records referenced. A partition no part holds gets the caller's error
	 * code, HighWatermark, LastStableOffset, LogStartOffset and
	 * PreferredReadReplica -1, no aborted transactions and empty records.
	 *
	 * Dropped: the top-level tagged fields (NodeEndpoints, v16+: the
	 * caller names leaders itself), each topic's tagged fields (none are
	 * defined; several parts may hold one topic), and each partition's
	 * CurrentLeader (tag 1, v12+: a real broker's id, which the client's
	 * virtual cluster does not know; the client refreshes its metadata
	 * instead). A PreferredReadReplica a part names (v11+: a real broker's
	 * id) is written -1: the client goes on reading from the node it asked
	 * (preferred_dropped counts them). A partition's other tags (DivergingEpoch, SnapshotId,
	 * unknown ones) are kept. If several parts hold the same partition, the
	 * first part's wins; partitions nobody asked for are left out.
	 */
	struct kp_writer body;
	size_t owned, referenced; /* bytes of body written / referenced (records) */
	size_t found, missing;    /* wants answered from a part / with the caller's error */
	size_t preferred_dropped; /* found partitions whose part named a PreferredReadReplica (written -1) */
	/* Set by the caller (NULL: none): found partitions whose ErrorCode it
	 * returns true for are counted in `watched` (e.g. the errors that say
	 * the caller's leaders are stale). */
	bool (*error_watch)(int16_t error_code);
	size_t watched;
	/* Set by the caller (NULL: none): an array of nparts that receives, per
	 * part, the bytes of records it held over all its partitions, wanted or
	 * not (0: the broker had nothing to give). */
	size_t *part_records;
	int throttled;          /* parts with a ThrottleTimeMs above 0 */
	int64_t throttle_sum;   /* the sum of those ThrottleTimeMs (the body carries their largest) */
	int bad_part;             /* on failure: the part whose pieces hold the error; -1: none */
	enum kp_error err;        /* on failure: what was wrong (also on the bad part's pieces) */
	const char *err_field;
	/* Scratch, kept between calls. */
	struct kp_merge_slot *slots;
	size_t slots_cap;
	uint32_t *slot_of;
	size_t slot_of_cap;
	struct kp_merge_src *srcs;
	size_t nsrcs, srcs_cap;
};

void kp_fetch_merge_init(struct kp_fetch_merge *m);
void kp_fetch_merge_free(struct kp_fetch_merge *m);

/*
 * Merges the Fetch response bodies parts[0..nparts) (each at its position
 * just after the response header, up to its len; NULL: that part is absent;
 * all at version ver) into m->body for the client's wants. A part's
 * partition answers a want with the same topic key and partition index.
 * Each part's pieces are walked to their end; the writer references them.
 * False on a malformed part (m->bad_part names it, and its pieces the error:
 * the caller may retry without it), a want whose key does not fit the
 * version (a v13+ key not 16 bytes), or no memory.
 */
bool kp_fetch_merge(struct kp_fetch_merge *m, int16_t ver, bool flexible, const struct kp_fetch_want *want,
                    size_t nwant, struct kp_pieces *const *parts, int nparts, int16_t missing_error);

#endif
