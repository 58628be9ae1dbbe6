/*
 * libFuzzer target: split and merge by partition (protocol/split.c) of every
 * message regional mode splits. Input:
 *
 *   byte 0  message (mod 5): Produce, Fetch, ListOffsets, OffsetForLeaderEpoch,
 *           DeleteRecords
 *   byte 1  version (mod the versions decoded)
 *   byte 2  destinations - 1 (mod 4)
 *   byte 3  seed: where partitions go (some nowhere), which brokers fail
 *   bytes 4-5  length of the request body (big-endian); then that body, then
 *           a response body (without headers)
 *
 * Properties: a request that decodes always splits; each destination's
 * request encodes, decodes again, and carries exactly its partitions in the
 * client's order (a Fetch made sessionless says so); the answers of the
 * brokers, reversed and marked per broker, merge back in the client's order
 * with each partition marked by the broker that carried it, or with the
 * caller's error code when that broker failed or nobody carried it. The
 * response body of the input, when it decodes, merges too (as every present
 * broker's answer): no crash, the client's order, and it encodes and decodes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "messages.h"
#include "split.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ERROR_CODE 6
#define MAX_PARTS 100000

static const struct {
	int16_t api;
	const struct kp_split_layout *req, *resp;
} messages[] = {
    {KP_API_PRODUCE, &kp_split_produce_request, &kp_split_produce_response},
    {KP_API_FETCH, &kp_split_fetch_request, &kp_split_fetch_response},
    {KP_API_LIST_OFFSETS, &kp_split_list_offsets_request, &kp_split_list_offsets_response},
    {KP_API_OFFSET_FOR_LEADER_EPOCH, &kp_split_offset_for_leader_epoch_request,
     &kp_split_offset_for_leader_epoch_response},
    {KP_API_DELETE_RECORDS, &kp_split_delete_records_request, &kp_split_delete_records_response},
};

struct run {
	struct kp_arena a;
	const struct kp_split_layout *lq, *lr;
	int16_t ver;
	bool flexible;
};

static const struct kp_schema *topic_schema(const struct kp_split_layout *l)
{
	return l->body->fields[l->topics].sub;
}

static const struct kp_schema *part_schema(const struct kp_split_layout *l)
{
	return topic_schema(l)->fields[l->partitions].sub;
}

/* Encodes st and decodes it again (it must: it is our own encoding). */
static struct kp_struct *reread(struct run *r, const struct kp_struct *st)
{
	struct kp_writer w;
	struct kp_cursor c;
	size_t len = 0;
	kp_writer_init(&w);
	kp_encode(&w, st, r->ver, r->flexible, -1);
	uint8_t *flat = kp_writer_flatten(&w, &len);
	kp_writer_free(&w);
	if (!flat)
		abort();
	uint8_t *bytes = kp_arena_alloc(&r->a, len);
	if (!bytes)
		abort();
	memcpy(bytes, flat, len);
	free(flat);
	kp_cursor_init(&c, bytes, len);
	struct kp_struct *out = kp_decode(&r->a, &c, st->schema, r->ver, r->flexible, -1);
	if (!out || kp_cursor_left(&c) != 0)
		__builtin_trap();
	return out;
}

static const struct kp_struct *topic_at(const struct kp_split_layout *l, const struct kp_struct *body, int32_t t)
{
	return body->v[l->topics].a.items[t].st;
}

static int32_t index_at(const struct kp_split_layout *l, const struct kp_struct *topic, int32_t p)
{
	return (int32_t)topic->v[l->partitions].a.items[p].st->v[l->index].i;
}

/* Destination d's request, as its broker reads it, carries refs' partitions in order. */
static void check_dest(const struct run *r, const struct kp_struct *req, const struct kp_split_dest *dst,
                       const struct kp_struct *sent)
{
	const struct kp_list *topics = &sent->v[r->lq->topics].a;
	int32_t at = 0;
	for (int32_t t = 0; t < topics->cnt; t++) {
		const struct kp_list *parts = &topics->items[t].st->v[r->lq->partitions].a;
		if (parts->cnt <= 0)
			__builtin_trap(); /* a topic with nothing for this destination */
		for (int32_t p = 0; p < parts->cnt; p++, at++) {
			if (at >= dst->cnt)
				__builtin_trap();
			const struct kp_split_ref *ref = &dst->refs[at];
			const struct kp_struct *orig = topic_at(r->lq, req, ref->topic);
			if (index_at(r->lq, topics->items[t].st, p) != index_at(r->lq, orig, ref->partition))
				__builtin_trap();
		}
	}
	if (at != dst->cnt)
		__builtin_trap();
}

/* Broker d's answer: its request's topics and partitions reversed, ErrorCode 100 + d. */
static struct kp_struct *answer(struct run *r, const struct kp_struct *sent, int d)
{
	const struct kp_list *qt = &sent->v[r->lq->topics].a;
	struct kp_struct *body = kp_struct_new(&r->a, r->lr->body, r->ver);
	struct kp_value *topics = kp_arena_alloc(&r->a, (size_t)(qt->cnt > 0 ? qt->cnt : 1) * sizeof(*topics));
	if (!body || !topics)
		abort();
	for (int32_t t = 0; t < qt->cnt; t++) {
		const struct kp_struct *q = qt->items[qt->cnt - 1 - t].st;
		const struct kp_list *qp = &q->v[r->lq->partitions].a;
		struct kp_struct *topic = kp_struct_new(&r->a, topic_schema(r->lr), r->ver);
		struct kp_value *parts = kp_arena_alloc(&r->a, (size_t)(qp->cnt > 0 ? qp->cnt : 1) * sizeof(*parts));
		if (!topic || !parts)
			abort();
		if (r->lq->topic_id >= 0 && q->v[r->lq->topic_id].present)
			topic->v[r->lr->topic_id].s = q->v[r->lq->topic_id].s;
		else
			topic->v[r->lr->topic_name].s = q->v[r->lq->topic_name].s;
		for (int32_t p = 0; p < qp->cnt; p++) {
			struct kp_struct *part = kp_struct_new(&r->a, part_schema(r->lr), r->ver);
			if (!part)
				abort();
			part->v[r->lr->index].i = index_at(r->lq, q, qp->cnt - 1 - p);
			part->v[r->lr->error_code].i = 100 + d;
			parts[p] = (struct kp_value){.st = part, .present = true};
		}
		topic->v[r->lr->partitions].a = (struct kp_list){parts, qp->cnt};
		topics[t] = (struct kp_value){.st = topic, .present = true};
	}
	body->v[r->lr->topics].a = (struct kp_list){topics, qt->cnt};
	return reread(r, body);
}

/* The merged response, as the client reads it: the client's topics and partitions, in order. */
static void check_merged(struct run *r, const struct kp_split *s, const struct kp_struct *merged,
                         struct kp_struct *const *resp, bool marked)
{
	const struct kp_list *topics = &merged->v[r->lr->topics].a;
	if (topics->cnt != s->ntopics)
		__builtin_trap();
	for (int32_t t = 0; t < s->ntopics; t++) {
		const struct kp_split_topic *ct = &s->topics[t];
		const struct kp_list *parts = &topics->items[t].st->v[r->lr->partitions].a;
		if (parts->cnt != ct->cnt)
			__builtin_trap();
		for (int32_t p = 0; p < ct->cnt; p++) {
			const struct kp_split_part *cp = &s->parts[ct->first + p];
			const struct kp_struct *part = parts->items[p].st;
			if (part->v[r->lr->index].i != cp->index)
				__builtin_trap();
			if (!marked)
				continue;
			int64_t want = cp->dest >= 0 && resp[cp->dest] ? 100 + cp->dest : ERROR_CODE;
			if (part->v[r->lr->error_code].i != want)
				__builtin_trap();
		}
	}
}

static void run_split(struct run *r, const struct kp_struct *req, uint8_t seed, int ndest, const uint8_t *resp_body,
                      size_t resp_len)
{
	int64_t n = kp_split_count(r->lq, req);
	if (n < 0)
		__builtin_trap();
	if (n > MAX_PARTS)
		return;
	int32_t *dest = malloc((size_t)(n > 0 ? n : 1) * sizeof(*dest));
	if (!dest)
		abort();
	for (int64_t i = 0; i < n; i++)
		dest[i] = (int32_t)((seed * 31u + (uint32_t)i * 7u + (uint32_t)(i >> 3)) % (uint32_t)(ndest + 1)) - 1;

	struct kp_split s;
	if (!kp_split_request(&r->a, r->lq, req, r->ver, dest, (size_t)n, ndest, &s))
		__builtin_trap(); /* what decodes, splits */
	free(dest);

	struct kp_struct *resp[4] = {NULL, NULL, NULL, NULL};
	for (int d = 0; d < ndest; d++) {
		if (!s.dests[d].request) {
			if (s.dests[d].cnt)
				__builtin_trap();
			continue;
		}
		if (r->lq == &kp_split_fetch_request && !kp_split_fetch_sessionless(s.dests[d].request, r->ver))
			__builtin_trap();
		struct kp_struct *sent = reread(r, s.dests[d].request);
		if (r->lq == &kp_split_fetch_request && r->ver >= 7 &&
		    (sent->v[KP_FETCH_REQ_SESSION_ID].i != 0 || sent->v[KP_FETCH_REQ_SESSION_EPOCH].i != -1 ||
		     sent->v[KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA].a.cnt != 0))
			__builtin_trap();
		check_dest(r, req, &s.dests[d], sent);
		if (!(seed & (0x10u << d))) /* else broker d failed */
			resp[d] = answer(r, sent, d);
	}
	struct kp_struct *merged = kp_split_merge(&r->a, r->lr, &s, resp, ERROR_CODE);
	if (!merged)
		__builtin_trap();
	check_merged(r, &s, reread(r, merged), resp, true);

	/* The input's own response body, as the answer of every broker that did not fail. */
	struct kp_cursor c;
	kp_cursor_init(&c, resp_body, resp_len);
	struct kp_struct *given = kp_decode(&r->a, &c, r->lr->body, r->ver, r->flexible, -1);
	if (!given)
		return;
	for (int d = 0; d < ndest; d++)
		resp[d] = seed & (0x10u << d) ? NULL : given;
	merged = kp_split_merge(&r->a, r->lr, &s, resp, ERROR_CODE);
	if (!merged)
		__builtin_trap();
	check_merged(r, &s, reread(r, merged), resp, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6)
		return 0;
	const size_t nmsg = sizeof(messages) / sizeof(messages[0]);
	const struct kp_api *api = kp_api_get(messages[data[0] % nmsg].api);
	struct run r = {.lq = messages[data[0] % nmsg].req, .lr = messages[data[0] % nmsg].resp};
	r.ver = (int16_t)(api->decode_min + data[1] % (api->decode_max - api->decode_min + 1));
	r.flexible = kp_api_flexible(api, r.ver);
	int ndest = 1 + data[2] % 4;
	uint8_t seed = data[3];
	size_t req_len = (size_t)(data[4] << 8 | data[5]);
	const uint8_t *body = data + 6;
	size_t left = size - 6;
	if (req_len > left)
		req_len = left;

	struct kp_cursor c;
	kp_arena_init(&r.a, 0);
	kp_cursor_init(&c, body, req_len);
	struct kp_struct *req = kp_decode(&r.a, &c, r.lq->body, r.ver, r.flexible, -1);
	if (req)
		run_split(&r, req, seed, ndest, body + req_len, left - req_len);
	kp_arena_free(&r.a);
	return 0;
}
