/*
 * keysplit: the group and transaction requests that name several keys, cut
 * by key into one request per destination (in regional mode: each key's
 * coordinator), their answers joined back in the client's order; and the
 * listings that name none (ListGroups, ListTransactions), sent to every
 * broker, whose answers are gathered into one.
 *
 *   client request                 dest[] (one per key)      requests
 *   DescribeGroups [g1 g2 g3]  --kp_keysplit_request(0 1 0)-->  0: [g1 g3]
 *                                                               1: [g2]
 *   answers (NULL: that destination failed; any order)
 *                              --kp_keysplit_merge-->  [g1 g2 g3]
 *   a key that went nowhere, whose destination failed, or that its answer
 *   does not hold: an element with only its key and the given error code.
 *
 * Top-level fields of a split request are the client's; of a merged or
 * gathered answer, the first present answer's, but ThrottleTimeMs, the
 * largest of them. Elements are referenced, not copied: the trees made here
 * point into the trees they were made from (and through them into their
 * input bytes), which must outlive them. Everything is allocated from the
 * caller's arena and encoded with kp_encode() at the request's version.
 * Which destination a key goes to is the caller's (routing/) decision.
 */
#ifndef KP_KEYSPLIT_H
#define KP_KEYSPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schema.h"

struct kp_keysplit_layout {
	const struct kp_schema *request, *response;
	int16_t min_version;  /* the first version shaped so (OffsetFetch: 8, when it began naming several groups) */
	int8_t key_type;      /* coordinator.h's KP_COORD_GROUP or KP_COORD_TRANSACTION */
	int req_keys;         /* the keyed array in the request; -1: a listing, which names no key */
	int req_key;          /* the key in a request element; -1: the elements are the keys (strings) */
	int resp_items;       /* the answered array in the response */
	int resp_key;         /* the key in an answer's element */
	int resp_error;       /* the error code in an answer's element */
	int error_code;       /* a listing's top-level ErrorCode in the response; -1: none */
	int throttle_time_ms; /* in the response; -1: none */
};

extern const struct kp_keysplit_layout kp_keysplit_describe_groups;
extern const struct kp_keysplit_layout kp_keysplit_delete_groups;
extern const struct kp_keysplit_layout kp_keysplit_offset_fetch; /* v8+ */
extern const struct kp_keysplit_layout kp_keysplit_consumer_group_describe;
extern const struct kp_keysplit_layout kp_keysplit_describe_transactions;
extern const struct kp_keysplit_layout kp_keysplit_list_groups;       /* a listing */
extern const struct kp_keysplit_layout kp_keysplit_list_transactions; /* a listing */

/* The layout requests of (api, ver) have, or NULL when they are not split or gathered so. */
const struct kp_keysplit_layout *kp_keysplit_layout(int16_t api, int16_t ver);

/* The keys a decoded request of layout l names; -1 if it is not of l or names none. */
int32_t kp_keysplit_count(const struct kp_keysplit_layout *l, const struct kp_struct *req);

/* Key i of the request (0 <= i < its count; a null key reads as empty). */
struct kp_span kp_keysplit_key(const struct kp_keysplit_layout *l, const struct kp_struct *req, int32_t i);

/*
 * Cuts req (layout l, decoded at ver) into out[0 .. ndest): dest[i] is where
 * key i goes, 0 <= dest[i] < ndest, or < 0 for nowhere; out[d] is NULL when
 * no key goes to d. False on a request of another layout, a wrong count, a
 * destination out of range, or no memory.
 */
bool kp_keysplit_request(struct kp_arena *a, const struct kp_keysplit_layout *l, const struct kp_struct *req,
                         int16_t ver, const int32_t *dest, size_t n, int ndest, struct kp_struct **out);

/*
 * Joins answers[0 .. ndest) (layout l's response at ver, or NULL) into the
 * client's answer to req, as described above: key i's element is the first
 * one of answers[dest[i]] with that key not taken by an earlier equal key,
 * else an element with the key and error. NULL on no memory or an answer of
 * another message.
 */
struct kp_struct *kp_keysplit_merge(struct kp_arena *a, const struct kp_keysplit_layout *l, const struct kp_struct *req,
                                    int16_t ver, const int32_t *dest, struct kp_struct *const *answers, int ndest,
                                    int16_t error);

/* Whether a listing keeps an element with this key (the caller's ctx). */
typedef bool (*kp_keysplit_keep)(struct kp_span key, void *ctx);

/*
 * A listing (l->req_keys < 0): the elements of answers[0 .. n) that keep
 * says yes to (keep NULL: all), in answer order. Its ErrorCode is the first
 * present answer's non-zero one, else missing_error when an answer is NULL,
 * else 0. NULL on no memory or an answer of another message.
 */
struct kp_struct *kp_keysplit_gather(struct kp_arena *a, const struct kp_keysplit_layout *l, int16_t ver,
                                     struct kp_struct *const *answers, int n, kp_keysplit_keep keep, void *ctx,
                                     int16_t missing_error);

#endif
