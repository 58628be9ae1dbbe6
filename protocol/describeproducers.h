/*
 * describeproducers: DescribeProducers (key 61, KIP-664), v0, flexible. A
 * broker answers only for the partitions it leads (NOT_LEADER_OR_FOLLOWER for
 * the rest), so regional mode cuts a client's request by each partition's
 * real leader and merges the answers in the client's order. The request's
 * partitions are a bare int32 array, not structs, so split.h's cut does not
 * apply; the order is built with kp_split_add_* and the answers, shaped
 * "Topics [Partitions [PartitionIndex, ErrorCode ...]]", merge with
 * kp_split_merge and kp_split_describe_producers_response.
 *
 *   client   Topics [a [0 1 2]]   dest (1 0 1)
 *   split    0: Topics [a [1]]    1: Topics [a [0 2]]
 *   answers  merged: Topics [a [0 1 2]] (a partition not answered: the caller's error)
 *
 * Request:  Topics [Name string, PartitionIndexes [int32]].
 * Response: ThrottleTimeMs int32, Topics [Name string, Partitions
 *           [PartitionIndex int32, ErrorCode int16, ErrorMessage string
 *           (nullable, default null), ActiveProducers [ProducerId int64,
 *           ProducerEpoch int32, LastSequence int32 (default -1),
 *           LastTimestamp int64 (default -1), CoordinatorEpoch int32,
 *           CurrentTxnStartOffset int64 (default -1)]]].
 */
#ifndef KP_DESCRIBE_PRODUCERS_H
#define KP_DESCRIBE_PRODUCERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"
#include "split.h"

extern const struct kp_schema kp_describe_producers_request;
extern const struct kp_schema kp_describe_producers_response;
extern const struct kp_split_layout kp_split_describe_producers_response;

enum kp_describe_producers_field {
	KP_DESCRIBE_PRODUCERS_REQ_TOPICS = 0,
	KP_DESCRIBE_PRODUCERS_REQ_TOPIC_NAME = 0,
	KP_DESCRIBE_PRODUCERS_REQ_PARTITION_INDEXES = 1,
	KP_DESCRIBE_PRODUCERS_RESP_THROTTLE_TIME_MS = 0,
	KP_DESCRIBE_PRODUCERS_RESP_TOPICS = 1,
	KP_DESCRIBE_PRODUCERS_RESP_TOPIC_NAME = 0,
	KP_DESCRIBE_PRODUCERS_RESP_PARTITIONS = 1,
	KP_DESCRIBE_PRODUCERS_RESP_PARTITION_INDEX = 0,
	KP_DESCRIBE_PRODUCERS_RESP_ERROR_CODE = 1,
};

/* Partitions in a decoded request (the length dest[] must have); -1 if st is not one. */
int64_t kp_describe_producers_count(const struct kp_struct *st);

/*
 * Cuts req (decoded at ver) into s: dest[i] is where partition i in message
 * order goes (0 <= dest[i] < ndest, or < 0: nowhere, answered by the merge's
 * error); s->dests[d].request is destination d's request, NULL when none of
 * the partitions goes there. Allocated from a (names point into req's input).
 * False on a request of another message, a wrong count, a destination out of
 * range, or no memory.
 */
bool kp_describe_producers_split(struct kp_arena *a, const struct kp_struct *req, int16_t ver, const int32_t *dest,
                                 size_t n, int ndest, struct kp_split *s);

#endif
