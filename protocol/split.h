/*
 * split: one client request cut by partition into one request per
 * destination (a real broker), and the destinations' answers joined back
 * into one response in the client's order. It works on decoded trees
 * (schema.h) of any message shaped "topics [ partitions [...] ]", described
 * by a layout. Where each partition goes is the caller's decision (routing/);
 * protocol/ only cuts and joins.
 *
 *   client request            dest[] (one per partition,       requests
 *                             in message order)
 *   Topics [a [0 1 2]    --kp_split_request(1 0 1 0 -1)-->  0: Topics [a [1] b [0]]
 *           b [0 1]]                                        1: Topics [a [0 2]]
 *                                                           (b/1 goes nowhere)
 *   responses (NULL: that destination failed; topics and partitions in
 *   any order)  --kp_split_merge-->  Topics [a [0 1 2] b [0 1]]
 *                                    b/1 and whatever is missing: error_code
 *
 * A split request is the client's request with only its own partitions:
 * every top-level field and every topic's other fields as they were,
 * partitions in their original relative order, topics with none of its
 * partitions left out. A merged response answers each partition with the
 * partition struct of the destination that carried it, matched by topic
 * (name, or id where the version names topics by id) and partition index,
 * never by position: a broker may answer in another order. Top-level fields:
 * ThrottleTimeMs is the largest of the present responses; every other
 * top-level field (and unknown tagged field) comes from the first present
 * response, in destination order, or is the field's default when none is
 * present. Arrays of top-level fields such as Produce's NodeEndpoints are
 * therefore the first response's only: the caller rewrites them (regional
 * mode presents its own nodes anyway).
 *
 * Nothing is copied but topic names: the split requests and the merged
 * response point at the partition structs (and through them at strings and
 * record batches) of the trees they were made from, so those trees, their
 * arenas and their input bytes must outlive what is made from them. Every
 * tree made here is allocated from the caller's arena and encoded with
 * kp_encode() at the same version.
 */
#ifndef KP_SPLIT_H
#define KP_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

#define KP_SPLIT_MAX_DEST 1024 /* destinations in one split */

/* Where a message keeps its topics and partitions: field indexes in its schemas. */
struct kp_split_layout {
	const struct kp_schema *body;
	int topics;               /* the topics array in body */
	int topic_name, topic_id; /* in a topic; -1: the message has none */
	int partitions;           /* in a topic */
	int index;                /* in a partition */
	int error_code;           /* responses: in a partition; -1 in requests */
	int throttle_time_ms;     /* responses: in body; -1: none */
};

extern const struct kp_split_layout kp_split_produce_request;
extern const struct kp_split_layout kp_split_produce_response;
extern const struct kp_split_layout kp_split_fetch_request;
extern const struct kp_split_layout kp_split_fetch_response;
extern const struct kp_split_layout kp_split_list_offsets_request;
extern const struct kp_split_layout kp_split_list_offsets_response;
extern const struct kp_split_layout kp_split_offset_for_leader_epoch_request;
extern const struct kp_split_layout kp_split_offset_for_leader_epoch_response;
extern const struct kp_split_layout kp_split_delete_records_request;
extern const struct kp_split_layout kp_split_delete_records_response;

/* A partition of the client's request: ordinals of its topic and of it in that topic. */
struct kp_split_ref {
	int32_t topic, partition;
};

struct kp_split_dest {
	struct kp_struct *request; /* NULL: none of the partitions goes there (send nothing) */
	int32_t cnt;
	struct kp_split_ref *refs; /* the partitions it carries, in its request's order */
};

/* The client's order, which the merge restores. */
struct kp_split_topic {
	bool by_id;
	struct kp_span key; /* the name, or the 16-byte id (copied into the arena) */
	int32_t first, cnt; /* its partitions: parts[first, first + cnt) */
};

struct kp_split_part {
	int32_t index; /* Kafka's partition index */
	int32_t dest;  /* -1: none; the merge answers it with its error, else the merge's error code */
	int16_t error; /* dest -1 only: its own error code (0: the merge's) */
};

struct kp_split {
	int16_t version;
	int ndest;
	struct kp_split_dest *dests; /* ndest of them, after kp_split_finish() */
	struct kp_split_topic *topics;
	struct kp_split_part *parts;
	int32_t ntopics, nparts;
	int32_t topic_cap, part_cap;
};

/* Partitions in a decoded request of layout l (the length dest[] must have); -1 if st is not of l. */
int64_t kp_split_count(const struct kp_split_layout *l, const struct kp_struct *st);

/*
 * Splits req (of layout l, decoded at ver, complete) into s->dests: dest[i]
 * is where partition i in message order goes, 0 <= dest[i] < ndest, or < 0
 * for nowhere. ndest_entries must be the count of partitions. False on a
 * request of another message, a wrong count, a destination out of range, or
 * no memory (the arena's cap).
 */
bool kp_split_request(struct kp_arena *a, const struct kp_split_layout *l, const struct kp_struct *req, int16_t ver,
                      const int32_t *dest, size_t ndest_entries, int ndest, struct kp_split *s);

/*
 * The client's order built piece by piece, for a request that is walked in
 * place (walk.h) rather than decoded: init, then each topic followed by its
 * partitions, then finish (which fills s->dests' refs; their requests stay
 * NULL). False on no memory or a destination >= ndest.
 */
bool kp_split_init(struct kp_split *s, int16_t ver, int ndest);
bool kp_split_add_topic(struct kp_arena *a, struct kp_split *s, bool by_id, struct kp_span key);
bool kp_split_add_partition(struct kp_arena *a, struct kp_split *s, int32_t index, int32_t dest);
/* A partition that goes nowhere and is answered with error (not the merge's error code). */
bool kp_split_add_partition_error(struct kp_arena *a, struct kp_split *s, int32_t index, int16_t error);
bool kp_split_finish(struct kp_arena *a, struct kp_split *s);

/*
 * Joins responses[0 .. s->ndest) (each of layout l, decoded at s->version,
 * or NULL) into the client's response, as described above. A partition that
 * went nowhere, whose destination's response is NULL, or that it does not
 * hold gets error_code and every other field at its default. Returns NULL on
 * a response of another message or no memory.
 */
struct kp_struct *kp_split_merge(struct kp_arena *a, const struct kp_split_layout *l, const struct kp_split *s,
                                 struct kp_struct *const *responses, int16_t error_code);

/*
 * Makes a split Fetch request sessionless (v7+; nothing to do before):
 * SessionId 0, SessionEpoch -1 (a full fetch that opens no session), no
 * ForgottenTopicsData. A client's session cannot follow its partitions to
 * several brokers. False when req is not a Fetch request.
 */
bool kp_split_fetch_sessionless(struct kp_struct *req, int16_t ver);

/*
 * Gives a split Fetch request (v3+; nothing to do before) its share of the
 * client's MaxBytes: MaxBytes / nparts (at least 1), so that the merged
 * answer stays within what the client asked for (a client refuses a larger
 * one: librdkafka's receive.message.max.bytes). As for any Fetch, a broker
 * still returns a first record batch larger than that (KIP-74), so every
 * part makes progress. False when req is not a Fetch request or nparts < 1.
 */
bool kp_split_fetch_share_max_bytes(struct kp_struct *req, int16_t ver, int nparts);

/* Lowers a Fetch request's MaxWaitMs to max_wait_ms when it is longer. False when req is not a Fetch request. */
bool kp_split_fetch_cap_wait(struct kp_struct *req, int32_t max_wait_ms);

#endif
