/*
 * walk: the topics and partitions of a Fetch response or a Produce request,
 * met in place. The walk follows the message's schema (fetch.c, produce.c)
 * over a frame in pieces (skip.h) and hands each partition to a callback as
 * a byte range, with the few fields a proxy decides on; its records stay
 * where they are, as an offset and a length: nothing is copied or decoded.
 *
 *   body ─ ... Responses/TopicData [ topic ─ Partitions [ partition ] ] ... tags
 *                                     │                   └─ fn(topic, part): [start, end),
 *                                     └─ name (v0-12) or id (v13+)        records [at, at+len)
 *
 * The steer scan (proxy/rewrite.c) decides on it; regional mode's split
 * and merge (refsplit.h) cut and join frames at these ranges, and learn
 * each topic's ranges from a second callback, called after its partitions:
 *
 *   topic := [start, parts_at) key | [parts_at, tags_at) Partitions | [tags_at, end) tags
 *   part  := [start, records_at) fields and records length | records | ... | [tags_at, end) tags
 */
#ifndef KP_WALK_H
#define KP_WALK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "skip.h"

#define KP_WALK_NAME_MAX 256 /* longer topic names are skipped, key_len 0 */

/* Where a message keeps its topics and partitions: field indexes in its schemas. */
struct kp_walk_layout {
	const struct kp_schema *body;
	int topics;                       /* the topics array in body */
	int topic_name, topic_id;         /* in a topic */
	int partitions;                   /* in a topic */
	int index, error_code, preferred; /* in a partition; -1: not in this message */
	int records;                      /* in a partition */
};

extern const struct kp_walk_layout kp_walk_fetch_response;
extern const struct kp_walk_layout kp_walk_produce_request;

struct kp_walk_topic {
	uint32_t ordinal; /* 0, 1, ... in the order of the message */
	bool by_id;       /* key is a 16-byte topic id (v13+), else a name */
	uint8_t key[KP_WALK_NAME_MAX + 1];
	size_t key_len; /* 0 for a name longer than KP_WALK_NAME_MAX (or empty / null) */
	/* Offsets from the walk's start: start and parts_at are set before the topic's first
	 * partition; tags_at (its tagged fields, = end when not flexible) and end only for
	 * the topic callback. */
	size_t start, parts_at, tags_at, end;
};

struct kp_walk_partition {
	int32_t index;
	int16_t error_code;             /* 0 where the message has none */
	int32_t preferred_read_replica; /* -1 where the message has none */
	size_t preferred_at;            /* where its 4 bytes are; SIZE_MAX where the message has none */
	size_t start, end;              /* the partition's bytes, offsets from the walk's start */
	size_t records_at;              /* the records' bytes: [records_at, records_at + records_len) */
	int64_t records_len;            /* -1: null (records_at is then just after the length) */
	size_t tags_at;                 /* its tagged fields, [tags_at, end); = end when not flexible */
};

/* Called for each partition; false stops the walk (which then returns false, p->err KP_OK). */
typedef bool (*kp_walk_fn)(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part);
/* Called after each topic's partitions and tagged fields (t->tags_at, t->end set); false stops too. */
typedef bool (*kp_walk_topic_fn)(void *arg, const struct kp_walk_topic *t);

struct kp_walk_visitor {
	kp_walk_fn partition;   /* NULL: none */
	kp_walk_topic_fn topic; /* NULL: none */
	void *arg;
};

/*
 * Walks the body (after the header) of message l at ver from p's position.
 * With flexible versions, *tag_count (when not NULL) gets the count of the
 * top-level tagged fields, and p stops at their start, as kp_skip_to_tags
 * does. False on malformed input (p->err says what) or when fn said stop.
 */
bool kp_walk_partitions(struct kp_pieces *p, const struct kp_walk_layout *l, int16_t ver, bool flexible,
                        kp_walk_fn fn, void *arg, uint32_t *tag_count);

/* The same walk, with a callback per topic as well. */
bool kp_walk(struct kp_pieces *p, const struct kp_walk_layout *l, int16_t ver, bool flexible,
             const struct kp_walk_visitor *v, uint32_t *tag_count);

#endif
