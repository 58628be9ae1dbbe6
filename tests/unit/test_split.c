/*
 * split: a client's request cut by partition into one request per broker,
 * and the brokers' answers joined back in the client's order (split.h).
 *
 * Every message the split knows, at its oldest, first flexible and newest
 * versions, and at the version that names topics by id, with one client
 * request of three topics:
 *
 *   alpha [0 1 2]  beta [5 3]  gamma [0]     dest = 0 1 0 | 2 0 | 1
 *
 *   destination 0: alpha [0 2] beta [3]
 *   destination 1: alpha [1] gamma [0]
 *   destination 2: beta [5]
 *
 * Each request is encoded and decoded again as a broker would read it; each
 * broker answers its partitions in reverse order, marking every partition
 * with ErrorCode 100 + d and a value field with 1000 (d + 1) + index; the
 * merged response, encoded and decoded again, must hold the client's order
 * with each broker's marks, and the caller's error code where a broker
 * failed or said nothing.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "messages.h"
#include "skip.h"
#include "split.h"
#include "walk.h"

#define NOT_LEADER 6

struct msg {
	const char *name;
	int16_t api;
	const struct kp_split_layout *req, *resp;
	const char *value; /* a response partition field each answer marks */
	int16_t versions[4];
	int nversions;
};

static const struct msg messages[] = {
    {"Produce", KP_API_PRODUCE, &kp_split_produce_request, &kp_split_produce_response, "BaseOffset", {3, 9, 13}, 3},
    {"Fetch", KP_API_FETCH, &kp_split_fetch_request, &kp_split_fetch_response, "HighWatermark", {4, 12, 13, 18}, 4},
    {"ListOffsets",
     KP_API_LIST_OFFSETS,
     &kp_split_list_offsets_request,
     &kp_split_list_offsets_response,
     "Offset",
     {0, 4, 6, 11},
     4},
    {"OffsetForLeaderEpoch",
     KP_API_OFFSET_FOR_LEADER_EPOCH,
     &kp_split_offset_for_leader_epoch_request,
     &kp_split_offset_for_leader_epoch_response,
     "EndOffset",
     {0, 3, 4},
     3},
    {"DeleteRecords",
     KP_API_DELETE_RECORDS,
     &kp_split_delete_records_request,
     &kp_split_delete_records_response,
     "LowWatermark",
     {0, 2},
     2},
};

static const struct {
	const char *name;
	int32_t parts[3];
	int n;
} client_topics[] = {{"alpha", {0, 1, 2}, 3}, {"beta", {5, 3}, 2}, {"gamma", {0}, 1}};
static const int32_t dest3[] = {0, 1, 0, 2, 0, 1};

/* What each destination must carry: topic ordinal, then its partition indexes. */
static const struct {
	int ntopics;
	struct {
		int topic;
		int32_t parts[2];
		int n;
	} topics[2];
} expect[3] = {
    {2, {{0, {0, 2}, 2}, {1, {3}, 1}}},
    {2, {{0, {1}, 1}, {2, {0}, 1}}},
    {1, {{1, {5}, 1}}},
};

static uint8_t topic_ids[3][16];
static const uint8_t records[3][12] = {{0xaa, 1}, {0xaa, 2}, {0xaa, 3}}; /* opaque batches */

struct ctx {
	struct kp_arena a;
	const struct msg *m;
	int16_t v;
	bool flexible;
};

static void ctx_init(struct ctx *c, const struct msg *m, int16_t v)
{
	kp_arena_init(&c->a, 0);
	c->m = m;
	c->v = v;
	c->flexible = kp_api_flexible(kp_api_get(m->api), v);
	for (int t = 0; t < 3; t++)
		memset(topic_ids[t], 0xa0 + t, 16);
}

/* ---- trees --------------------------------------------------------------- */

static const struct kp_schema *topic_schema(const struct kp_split_layout *l)
{
	return l->body->fields[l->topics].sub;
}

static const struct kp_schema *part_schema(const struct kp_split_layout *l)
{
	return topic_schema(l)->fields[l->partitions].sub;
}

static bool regular(const struct kp_schema *s, int i, int16_t v)
{
	const struct kp_field *f = &s->fields[i];
	return f->tag < 0 && v >= f->since && v <= f->until;
}

static bool is_int(uint8_t type)
{
	return type == KP_INT8 || type == KP_INT16 || type == KP_INT32 || type == KP_INT64;
}

/* A distinct value for field i, in its type's range. */
static int64_t mark(uint8_t type, int64_t base, int i)
{
	int64_t x = base + i;
	return type == KP_INT8 ? x % 100 : type == KP_INT16 ? x % 30000 : x;
}

/* Sets every integer field of st (but skip) to mark(base). */
static void fill(struct kp_struct *st, int skip, int64_t base, int16_t v)
{
	for (int i = 0; i < st->schema->nfields; i++)
		if (i != skip && regular(st->schema, i, v) && is_int(st->schema->fields[i].type))
			st->v[i].i = mark(st->schema->fields[i].type, base, i);
}

/* Checks what fill() set. */
static void check_fill(const struct kp_struct *st, int skip, int64_t base, int16_t v, const char *what)
{
	for (int i = 0; i < st->schema->nfields; i++)
		if (i != skip && regular(st->schema, i, v) && is_int(st->schema->fields[i].type))
			cr_assert_eq(st->v[i].i, mark(st->schema->fields[i].type, base, i), "%s v%d: %s.%s", what, v,
			             st->schema->name, st->schema->fields[i].name);
}

static int64_t part_base(int t, int32_t index)
{
	return 1000000 + t * 10000 + index * 100;
}

static struct kp_raw_tag *one_tag(struct kp_arena *a, uint32_t tag, const char *bytes)
{
	struct kp_raw_tag *r = kp_arena_alloc(a, sizeof(*r));
	*r = (struct kp_raw_tag){tag, {(const uint8_t *)bytes, (int32_t)strlen(bytes)}};
	return r;
}

/* Encodes st and decodes it again from bytes of its own, as the other side would. */
static struct kp_struct *reread(struct ctx *c, const struct kp_struct *st)
{
	struct kp_writer w;
	struct kp_cursor cur;
	size_t len = 0;
	kp_writer_init(&w);
	kp_encode(&w, st, c->v, c->flexible, -1);
	uint8_t *flat = kp_writer_flatten(&w, &len);
	cr_assert_not_null(flat);
	uint8_t *bytes = kp_arena_alloc(&c->a, len);
	memcpy(bytes, flat, len);
	free(flat);
	kp_writer_free(&w);
	kp_cursor_init(&cur, bytes, len);
	struct kp_struct *out = kp_decode(&c->a, &cur, st->schema, c->v, c->flexible, -1);
	cr_assert_not_null(out, "%s v%d: %s at %zu (%s)", c->m->name, c->v, kp_error_name(cur.err), cur.err_pos,
	                   cur.err_field ? cur.err_field : "?");
	cr_assert_eq(kp_cursor_left(&cur), 0);
	return out;
}

static void set_key(const struct kp_split_layout *l, struct kp_struct *topic, int t)
{
	if (l->topic_id >= 0 && topic->v[l->topic_id].present)
		topic->v[l->topic_id].s = (struct kp_span){topic_ids[t], 16};
	else
		topic->v[l->topic_name].s =
		    (struct kp_span){(const uint8_t *)client_topics[t].name, (int32_t)strlen(client_topics[t].name)};
}

/* Which client topic a topic is (by id where the version has ids). */
static int topic_of(const struct kp_split_layout *l, const struct kp_struct *topic)
{
	for (int t = 0; t < 3; t++) {
		if (l->topic_id >= 0 && topic->v[l->topic_id].present) {
			struct kp_span id = topic->v[l->topic_id].s;
			if (id.len == 16 && memcmp(id.ptr, topic_ids[t], 16) == 0)
				return t;
		} else if (span_is(topic->v[l->topic_name].s, client_topics[t].name)) {
			return t;
		}
	}
	cr_assert_fail("a topic the client did not send");
	return -1;
}

/* The client's request: every integer field marked, unknown tags at two levels. */
static struct kp_struct *client_request(struct ctx *c)
{
	const struct kp_split_layout *l = c->m->req;
	struct kp_struct *body = kp_struct_new(&c->a, l->body, c->v);
	struct kp_value *topics = kp_arena_alloc(&c->a, 3 * sizeof(*topics));
	fill(body, -1, 7, c->v);
	for (int t = 0; t < 3; t++) {
		struct kp_struct *topic = kp_struct_new(&c->a, topic_schema(l), c->v);
		struct kp_value *parts = kp_arena_alloc(&c->a, 3 * sizeof(*parts));
		set_key(l, topic, t);
		for (int p = 0; p < client_topics[t].n; p++) {
			struct kp_struct *part = kp_struct_new(&c->a, part_schema(l), c->v);
			int32_t index = client_topics[t].parts[p];
			fill(part, l->index, part_base(t, index), c->v);
			part->v[l->index].i = index;
			for (int i = 0; i < part->schema->nfields; i++)
				if (part->schema->fields[i].type == KP_RECORDS)
					part->v[i].s = (struct kp_span){records[t], sizeof(records[t])};
			parts[p] = (struct kp_value){.st = part, .present = true};
		}
		topic->v[l->partitions].a = (struct kp_list){parts, client_topics[t].n};
		if (c->flexible) {
			topic->unknown = one_tag(&c->a, 98, "T");
			topic->unknown_cnt = 1;
		}
		topics[t] = (struct kp_value){.st = topic, .present = true};
	}
	body->v[l->topics].a = (struct kp_list){topics, 3};
	if (c->flexible) {
		body->unknown = one_tag(&c->a, 99, "top");
		body->unknown_cnt = 1;
	}
	return reread(c, body);
}

/* Broker d's answer to its request: topics and partitions reversed, each marked. */
static struct kp_struct *answer(struct ctx *c, const struct kp_struct *req, int d)
{
	const struct kp_split_layout *lq = c->m->req, *l = c->m->resp;
	const struct kp_list *qt = &req->v[lq->topics].a;
	struct kp_struct *body = kp_struct_new(&c->a, l->body, c->v);
	struct kp_value *topics = kp_arena_alloc(&c->a, (size_t)qt->cnt * sizeof(*topics));
	int value = kp_field_index(part_schema(l), c->m->value);
	cr_assert_geq(value, 0);
	if (body->v[l->throttle_time_ms].present)
		body->v[l->throttle_time_ms].i = 10 * (int64_t)(d + 1);
	for (int32_t t = 0; t < qt->cnt; t++) {
		const struct kp_struct *q = qt->items[qt->cnt - 1 - t].st;
		const struct kp_list *qp = &q->v[lq->partitions].a;
		struct kp_struct *topic = kp_struct_new(&c->a, topic_schema(l), c->v);
		struct kp_value *parts = kp_arena_alloc(&c->a, (size_t)qp->cnt * sizeof(*parts));
		set_key(l, topic, topic_of(lq, q));
		for (int32_t p = 0; p < qp->cnt; p++) {
			struct kp_struct *part = kp_struct_new(&c->a, part_schema(l), c->v);
			int32_t index = (int32_t)qp->items[qp->cnt - 1 - p].st->v[lq->index].i;
			part->v[l->index].i = index;
			part->v[l->error_code].i = 100 + d;
			if (part->v[value].present)
				part->v[value].i = 1000 * (d + 1) + index;
			parts[p] = (struct kp_value){.st = part, .present = true};
		}
		topic->v[l->partitions].a = (struct kp_list){parts, qp->cnt};
		topics[t] = (struct kp_value){.st = topic, .present = true};
	}
	body->v[l->topics].a = (struct kp_list){topics, qt->cnt};
	return reread(c, body);
}

/* ---- checks -------------------------------------------------------------- */

/* Destination d's request, as its broker decodes it, carries what expect[d] says. */
static void check_dest(struct ctx *c, const struct kp_split *s, int d, const struct kp_struct *req)
{
	const struct kp_split_layout *l = c->m->req;
	const struct kp_list *topics = &req->v[l->topics].a;
	const char *what = c->m->name;
	int r = 0;
	cr_assert_eq(topics->cnt, expect[d].ntopics, "%s v%d dest %d", what, c->v, d);
	check_fill(req, -1, 7, c->v, what);
	cr_assert_eq(req->unknown_cnt, c->flexible ? 1u : 0u, "%s v%d: the top-level tags", what, c->v);
	for (int32_t t = 0; t < topics->cnt; t++) {
		const struct kp_struct *topic = topics->items[t].st;
		int ct = expect[d].topics[t].topic;
		cr_assert_eq(topic_of(l, topic), ct, "%s v%d dest %d topic %d", what, c->v, d, t);
		cr_assert_eq(topic->unknown_cnt, c->flexible ? 1u : 0u);
		const struct kp_list *parts = &topic->v[l->partitions].a;
		cr_assert_eq(parts->cnt, expect[d].topics[t].n, "%s v%d dest %d topic %d", what, c->v, d, t);
		for (int32_t p = 0; p < parts->cnt; p++, r++) {
			const struct kp_struct *part = parts->items[p].st;
			int32_t index = expect[d].topics[t].parts[p];
			cr_assert_eq(part->v[l->index].i, index, "%s v%d dest %d", what, c->v, d);
			check_fill(part, l->index, part_base(ct, index), c->v, what);
			cr_assert_eq(s->dests[d].refs[r].topic, ct);
			cr_assert_eq(client_topics[ct].parts[s->dests[d].refs[r].partition], index);
		}
	}
	cr_assert_eq(s->dests[d].cnt, r);
}

/* The merged response: the client's order; answered (d) or not (-1) per client partition. */
static void check_merged(struct ctx *c, const struct kp_struct *merged, const int *answered_by, int64_t throttle)
{
	const struct kp_split_layout *l = c->m->resp;
	const struct kp_list *topics = &merged->v[l->topics].a;
	int value = kp_field_index(part_schema(l), c->m->value);
	int at = 0;
	if (merged->v[l->throttle_time_ms].present)
		cr_assert_eq(merged->v[l->throttle_time_ms].i, throttle, "%s v%d throttle", c->m->name, c->v);
	cr_assert_eq(topics->cnt, 3);
	for (int t = 0; t < 3; t++) {
		const struct kp_struct *topic = topics->items[t].st;
		cr_assert_eq(topic_of(l, topic), t, "%s v%d: topic %d out of order", c->m->name, c->v, t);
		if (l->topic_id >= 0 && topic->v[l->topic_id].present)
			cr_assert_not(topic->v[l->topic_name].present);
		const struct kp_list *parts = &topic->v[l->partitions].a;
		cr_assert_eq(parts->cnt, client_topics[t].n);
		for (int p = 0; p < parts->cnt; p++, at++) {
			const struct kp_struct *part = parts->items[p].st;
			int32_t index = client_topics[t].parts[p];
			int d = answered_by[at];
			cr_assert_eq(part->v[l->index].i, index, "%s v%d: %s partition %d", c->m->name, c->v,
			             client_topics[t].name, p);
			int64_t code = d >= 0 ? 100 + d : NOT_LEADER;
			int64_t mark_value = d >= 0 ? 1000 * (d + 1) + index : part->schema->fields[value].def;
			cr_assert_eq(part->v[l->error_code].i, code, "%s v%d: %s/%d", c->m->name, c->v,
			             client_topics[t].name, index);
			if (part->v[value].present)
				cr_assert_eq(part->v[value].i, mark_value, "%s v%d: %s/%d", c->m->name, c->v,
				             client_topics[t].name, index);
		}
	}
}

static void split_and_merge(const struct msg *m, int16_t v)
{
	struct ctx c;
	struct kp_split s;
	ctx_init(&c, m, v);
	struct kp_struct *req = client_request(&c);
	cr_assert_eq(kp_split_count(m->req, req), 6);
	cr_assert(kp_split_request(&c.a, m->req, req, v, dest3, 6, 3, &s), "%s v%d", m->name, v);

	struct kp_struct *resp[3];
	for (int d = 0; d < 3; d++) {
		cr_assert_not_null(s.dests[d].request);
		struct kp_struct *sent = reread(&c, s.dests[d].request);
		check_dest(&c, &s, d, sent);
		resp[d] = answer(&c, sent, d);
	}

	/* Every broker answered. */
	static const int all[] = {0, 1, 0, 2, 0, 1};
	struct kp_struct *merged = kp_split_merge(&c.a, m->resp, &s, resp, NOT_LEADER);
	cr_assert_not_null(merged);
	check_merged(&c, reread(&c, merged), all, 30);

	/* Broker 1 failed: its partitions (alpha/1, gamma/0) get the error code. */
	static const int no1[] = {0, -1, 0, 2, 0, -1};
	resp[1] = NULL;
	merged = kp_split_merge(&c.a, m->resp, &s, resp, NOT_LEADER);
	cr_assert_not_null(merged);
	check_merged(&c, reread(&c, merged), no1, 30);

	/* Only broker 0 answered. */
	static const int only0[] = {0, -1, 0, -1, 0, -1};
	resp[2] = NULL;
	merged = kp_split_merge(&c.a, m->resp, &s, resp, NOT_LEADER);
	check_merged(&c, reread(&c, merged), only0, 10);

	/* None did. */
	static const int none[] = {-1, -1, -1, -1, -1, -1};
	resp[0] = NULL;
	merged = kp_split_merge(&c.a, m->resp, &s, resp, NOT_LEADER);
	check_merged(&c, reread(&c, merged), none, 0);
	kp_arena_free(&c.a);
}

/* ---- tests --------------------------------------------------------------- */

Test(split, every_message_splits_in_three_and_merges_back_in_client_order)
{
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++)
		for (int k = 0; k < messages[i].nversions; k++)
			split_and_merge(&messages[i], messages[i].versions[k]);
}

Test(split, every_version_of_every_message_splits_and_merges)
{
	for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
		const struct kp_api *api = kp_api_get(messages[i].api);
		for (int16_t v = api->decode_min; v <= api->decode_max; v++)
			split_and_merge(&messages[i], v);
	}
}

Test(split, topic_ids_are_matched_by_id_and_names_are_not_sent)
{
	struct ctx c;
	struct kp_split s;
	ctx_init(&c, &messages[1], 13); /* Fetch v13: topics by id */
	struct kp_struct *req = client_request(&c);
	const struct kp_struct *t0 = item(&req->v[KP_FETCH_REQ_TOPICS], 0);
	cr_assert_not(t0->v[KP_FETCH_TOPIC_TOPIC].present);
	cr_assert(kp_split_request(&c.a, &kp_split_fetch_request, req, 13, dest3, 6, 3, &s));
	cr_assert(s.topics[0].by_id);
	cr_assert_eq(s.topics[0].key.len, 16);

	struct kp_struct *resp[3];
	for (int d = 0; d < 3; d++)
		resp[d] = answer(&c, reread(&c, s.dests[d].request), d);
	/* A broker that names beta by alpha's id has not answered beta. */
	struct kp_struct *beta = item(&resp[2]->v[KP_FETCH_RESP_RESPONSES], 0);
	beta->v[KP_FETCH_TOPIC_TOPIC_ID].s = (struct kp_span){topic_ids[0], 16};
	struct kp_struct *merged = reread(&c, kp_split_merge(&c.a, &kp_split_fetch_response, &s, resp, NOT_LEADER));
	const struct kp_struct *mt = item(&merged->v[KP_FETCH_RESP_RESPONSES], 1);
	cr_assert_eq(memcmp(mt->v[KP_FETCH_TOPIC_TOPIC_ID].s.ptr, topic_ids[1], 16), 0);
	const struct kp_struct *beta5 = item(&mt->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0);
	cr_assert_eq(beta5->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i, 5);
	cr_assert_eq(beta5->v[KP_FETCH_RESP_PART_ERROR_CODE].i, NOT_LEADER);
	const struct kp_struct *beta3 = item(&mt->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 1);
	cr_assert_eq(beta3->v[KP_FETCH_RESP_PART_ERROR_CODE].i, 100);
	kp_arena_free(&c.a);
}

Test(split, a_partition_the_broker_leaves_out_gets_the_error_code_and_an_extra_one_is_ignored)
{
	struct ctx c;
	struct kp_split s;
	ctx_init(&c, &messages[2], 6); /* ListOffsets v6 */
	struct kp_struct *req = client_request(&c);
	cr_assert(kp_split_request(&c.a, &kp_split_list_offsets_request, req, 6, dest3, 6, 3, &s));
	struct kp_struct *resp[3];
	for (int d = 0; d < 3; d++)
		resp[d] = answer(&c, reread(&c, s.dests[d].request), d);
	/* Broker 0 answers alpha [2 0] beta [3] reversed: beta [3] alpha [2 0]. It
	 * renames alpha/0 to alpha/7 (never asked), so alpha/0 goes unanswered. */
	struct kp_struct *alpha = item(&resp[0]->v[KP_LIST_OFFSETS_RESP_TOPICS], 1);
	cr_assert(span_is(alpha->v[KP_LIST_OFFSETS_TOPIC_NAME].s, "alpha"));
	struct kp_struct *a0 = item(&alpha->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 1);
	cr_assert_eq(a0->v[KP_LIST_OFFSETS_RESP_PART_PARTITION_INDEX].i, 0);
	a0->v[KP_LIST_OFFSETS_RESP_PART_PARTITION_INDEX].i = 7;

	struct kp_struct *merged = reread(&c, kp_split_merge(&c.a, &kp_split_list_offsets_response, &s, resp, 3));
	const struct kp_struct *ma = item(&merged->v[KP_LIST_OFFSETS_RESP_TOPICS], 0);
	cr_assert_eq(ma->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS].a.cnt, 3);
	const struct kp_struct *p0 = item(&ma->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 0);
	cr_assert_eq(p0->v[KP_LIST_OFFSETS_RESP_PART_PARTITION_INDEX].i, 0);
	cr_assert_eq(p0->v[KP_LIST_OFFSETS_RESP_PART_ERROR_CODE].i, 3); /* the caller's code */
	cr_assert_eq(p0->v[KP_LIST_OFFSETS_RESP_PART_OFFSET].i, -1);
	cr_assert_eq(p0->v[KP_LIST_OFFSETS_RESP_PART_TIMESTAMP].i, -1);
	cr_assert_eq(p0->v[KP_LIST_OFFSETS_RESP_PART_LEADER_EPOCH].i, -1);
	const struct kp_struct *p2 = item(&ma->v[KP_LIST_OFFSETS_TOPIC_PARTITIONS], 2);
	cr_assert_eq(p2->v[KP_LIST_OFFSETS_RESP_PART_ERROR_CODE].i, 100);
	cr_assert_eq(p2->v[KP_LIST_OFFSETS_RESP_PART_OFFSET].i, 1002);
	kp_arena_free(&c.a);
}

Test(split, a_partition_routed_nowhere_is_not_sent_and_gets_the_error_code)
{
	struct ctx c;
	struct kp_split s;
	static const int32_t dest[] = {0, -1, 0, 1, 1, -1}; /* alpha/1 and gamma/0: no leader known */
	ctx_init(&c, &messages[4], 2);                      /* DeleteRecords v2 */
	struct kp_struct *req = client_request(&c);
	cr_assert(kp_split_request(&c.a, &kp_split_delete_records_request, req, 2, dest, 6, 2, &s));
	cr_assert_eq(s.dests[0].cnt, 2);
	cr_assert_eq(s.dests[1].cnt, 2);
	const struct kp_struct *sub0 = reread(&c, s.dests[0].request);
	cr_assert_eq(sub0->v[KP_DELETE_RECORDS_REQ_TOPICS].a.cnt, 1); /* alpha [0 2] */
	const struct kp_struct *sub1 = reread(&c, s.dests[1].request);
	cr_assert_eq(sub1->v[KP_DELETE_RECORDS_REQ_TOPICS].a.cnt, 1); /* beta [5 3] */
	cr_assert_eq(item(&item(&sub1->v[KP_DELETE_RECORDS_REQ_TOPICS], 0)->v[KP_DELETE_RECORDS_TOPIC_PARTITIONS], 1)
	                 ->v[KP_DELETE_RECORDS_PART_PARTITION_INDEX]
	                 .i,
	             3);

	struct kp_struct *resp[2] = {answer(&c, sub0, 0), answer(&c, sub1, 1)};
	static const int by[] = {0, -1, 0, 1, 1, -1};
	check_merged(&c, reread(&c, kp_split_merge(&c.a, &kp_split_delete_records_response, &s, resp, NOT_LEADER)),
	             by, 20);
	kp_arena_free(&c.a);
}

Test(split, a_destination_with_no_partition_gets_no_request)
{
	struct ctx c;
	struct kp_split s;
	static const int32_t dest[] = {2, 2, 2, 2, 2, 2};
	ctx_init(&c, &messages[3], 4); /* OffsetForLeaderEpoch v4 */
	struct kp_struct *req = client_request(&c);
	cr_assert(kp_split_request(&c.a, &kp_split_offset_for_leader_epoch_request, req, 4, dest, 6, 4, &s));
	cr_assert_null(s.dests[0].request);
	cr_assert_null(s.dests[1].request);
	cr_assert_null(s.dests[3].request);
	cr_assert_eq(s.dests[0].cnt, 0);
	const struct kp_struct *sub = reread(&c, s.dests[2].request);
	cr_assert_eq(sub->v[KP_OFFSET_FOR_LEADER_EPOCH_REQ_TOPICS].a.cnt, 3);
	cr_assert_eq(s.dests[2].cnt, 6);
	kp_arena_free(&c.a);
}

Test(split, an_empty_request_splits_to_nothing_and_merges_to_an_empty_response)
{
	struct kp_arena a;
	struct kp_split s;
	kp_arena_init(&a, 0);
	struct kp_struct *req = kp_struct_new(&a, &kp_list_offsets_request, 6);
	cr_assert_eq(kp_split_count(&kp_split_list_offsets_request, req), 0);
	cr_assert(kp_split_request(&a, &kp_split_list_offsets_request, req, 6, NULL, 0, 2, &s));
	cr_assert_null(s.dests[0].request);
	cr_assert_null(s.dests[1].request);
	struct kp_struct *resp[2] = {NULL, NULL};
	struct kp_struct *merged = kp_split_merge(&a, &kp_split_list_offsets_response, &s, resp, NOT_LEADER);
	cr_assert_not_null(merged);
	cr_assert_eq(merged->v[KP_LIST_OFFSETS_RESP_TOPICS].a.cnt, 0);
	kp_arena_free(&a);
}

Test(split, what_does_not_fit_is_refused)
{
	struct ctx c;
	struct kp_split s;
	ctx_init(&c, &messages[2], 11);
	struct kp_struct *req = client_request(&c);
	static const int32_t too_far[] = {0, 1, 0, 3, 0, 1};
	cr_assert_not(kp_split_request(&c.a, &kp_split_list_offsets_request, req, 11, dest3, 5, 3, &s));
	cr_assert_not(kp_split_request(&c.a, &kp_split_list_offsets_request, req, 11, dest3, 6, 0, &s));
	cr_assert_not(kp_split_request(&c.a, &kp_split_list_offsets_request, req, 11, too_far, 6, 3, &s));
	cr_assert_not(kp_split_request(&c.a, &kp_split_fetch_request, req, 11, dest3, 6, 3, &s));
	cr_assert_eq(kp_split_count(&kp_split_delete_records_request, req), -1);

	cr_assert(kp_split_request(&c.a, &kp_split_list_offsets_request, req, 11, dest3, 6, 3, &s));
	struct kp_struct *resp[3] = {NULL, NULL, NULL};
	resp[1] = kp_struct_new(&c.a, &kp_delete_records_response, 2); /* another message */
	cr_assert_null(kp_split_merge(&c.a, &kp_split_list_offsets_response, &s, resp, NOT_LEADER));
	resp[1] = NULL;
	cr_assert_null(kp_split_merge(&c.a, &kp_split_list_offsets_request, &s, resp, NOT_LEADER)); /* no error code */

	/* A split that runs out of arena fails, and says so. */
	struct kp_arena small;
	kp_arena_init(&small, 256);
	cr_assert_not(kp_split_request(&small, &kp_split_list_offsets_request, req, 11, dest3, 6, 3, &s));
	kp_arena_free(&small);
	kp_arena_free(&c.a);
}

Test(split, a_split_fetch_is_sessionless_and_the_clients_request_is_untouched)
{
	struct ctx c;
	struct kp_split s;
	ctx_init(&c, &messages[1], 12);
	struct kp_struct *req = client_request(&c);
	req->v[KP_FETCH_REQ_SESSION_ID].i = 77;
	req->v[KP_FETCH_REQ_SESSION_EPOCH].i = 5;
	const struct kp_schema *fs = sub(&kp_fetch_request, KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA);
	struct kp_struct *forgotten = kp_struct_new(&c.a, fs, 12);
	forgotten->v[0].s = (struct kp_span){(const uint8_t *)"old", 3};
	struct kp_value *fv = kp_arena_alloc(&c.a, sizeof(*fv));
	*fv = (struct kp_value){.st = forgotten, .present = true};
	req->v[KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA].a = (struct kp_list){fv, 1};
	req->v[KP_FETCH_REQ_MAX_BYTES].i = 3001;
	req = reread(&c, req);

	cr_assert(kp_split_request(&c.a, &kp_split_fetch_request, req, 12, dest3, 6, 3, &s));
	for (int d = 0; d < 3; d++) {
		cr_assert(kp_split_fetch_sessionless(s.dests[d].request, 12));
		cr_assert(kp_split_fetch_share_max_bytes(s.dests[d].request, 12, 3));
		const struct kp_struct *sub_req = reread(&c, s.dests[d].request);
		cr_assert_eq(sub_req->v[KP_FETCH_REQ_MAX_BYTES].i, 1000, "a third of the client's MaxBytes each");
		cr_assert_eq(sub_req->v[KP_FETCH_REQ_SESSION_ID].i, 0);
		cr_assert_eq(sub_req->v[KP_FETCH_REQ_SESSION_EPOCH].i, -1);
		cr_assert_eq(sub_req->v[KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA].a.cnt, 0);
	}
	cr_assert_eq(req->v[KP_FETCH_REQ_SESSION_ID].i, 77);
	cr_assert_eq(req->v[KP_FETCH_REQ_SESSION_EPOCH].i, 5);
	cr_assert_eq(req->v[KP_FETCH_REQ_MAX_BYTES].i, 3001);
	/* Never below 1 byte (the broker still returns a first batch: KIP-74); v0-2 have no MaxBytes. */
	struct kp_struct *tiny = kp_struct_new(&c.a, &kp_fetch_request, 12);
	tiny->v[KP_FETCH_REQ_MAX_BYTES].i = 2;
	cr_assert(kp_split_fetch_share_max_bytes(tiny, 12, 3));
	cr_assert_eq(tiny->v[KP_FETCH_REQ_MAX_BYTES].i, 1);
	struct kp_struct *old = kp_struct_new(&c.a, &kp_fetch_request, 2);
	old->v[KP_FETCH_REQ_MAX_BYTES].i = 90;
	cr_assert(kp_split_fetch_share_max_bytes(old, 2, 3));
	cr_assert_eq(old->v[KP_FETCH_REQ_MAX_BYTES].i, 90);
	cr_assert_not(kp_split_fetch_share_max_bytes(tiny, 12, 0));
	cr_assert_not(kp_split_fetch_share_max_bytes(kp_struct_new(&c.a, &kp_produce_request, 9), 9, 3));
	/* MaxWaitMs: lowered to the cap, never raised. */
	tiny->v[KP_FETCH_REQ_MAX_WAIT_MS].i = 500;
	cr_assert(kp_split_fetch_cap_wait(tiny, 100));
	cr_assert_eq(tiny->v[KP_FETCH_REQ_MAX_WAIT_MS].i, 100);
	cr_assert(kp_split_fetch_cap_wait(tiny, 300));
	cr_assert_eq(tiny->v[KP_FETCH_REQ_MAX_WAIT_MS].i, 100);
	cr_assert_not(kp_split_fetch_cap_wait(kp_struct_new(&c.a, &kp_produce_request, 9), 100));
	cr_assert_eq(req->v[KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA].a.cnt, 1);
	cr_assert_not(kp_split_fetch_sessionless(kp_struct_new(&c.a, &kp_produce_request, 9), 9));
	kp_arena_free(&c.a);
}

Test(split, a_split_produce_request_references_the_record_batches)
{
	struct ctx c;
	struct kp_split s;
	ctx_init(&c, &messages[0], 9);
	struct kp_struct *req = client_request(&c);
	cr_assert(kp_split_request(&c.a, &kp_split_produce_request, req, 9, dest3, 6, 3, &s));
	/* Destination 2 carries beta/5: its batch must leave by reference to the client's bytes. */
	const struct kp_struct *beta = item(&s.dests[2].request->v[KP_PRODUCE_REQ_TOPIC_DATA], 0);
	const struct kp_struct *beta5 = item(&beta->v[KP_PRODUCE_TOPIC_PARTITION_DATA], 0);
	struct kp_span rec = beta5->v[KP_PRODUCE_PART_RECORDS].s;
	const struct kp_struct *orig_beta = item(&req->v[KP_PRODUCE_REQ_TOPIC_DATA], 1);
	const struct kp_struct *orig_beta5 = item(&orig_beta->v[KP_PRODUCE_TOPIC_PARTITION_DATA], 0);
	cr_assert_eq(rec.ptr, orig_beta5->v[KP_PRODUCE_PART_RECORDS].s.ptr);
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, s.dests[2].request, 9, true, -1);
	kp_writer_finish(&w);
	bool found = false;
	for (size_t i = 0; i < w.nsegs; i++)
		found |= w.segs[i].ref == rec.ptr && w.segs[i].len == (size_t)rec.len;
	cr_assert(found, "the record batch was copied");
	kp_writer_free(&w);
	kp_arena_free(&c.a);
}

/* ---- a walked request ---------------------------------------------------- */

struct walked {
	struct kp_arena *a;
	struct kp_split *s;
	int32_t topic;
	int at;
};

static bool walked_partition(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct walked *w = arg;
	if ((int32_t)t->ordinal != w->topic) {
		cr_assert(kp_split_add_topic(w->a, w->s, t->by_id, (struct kp_span){t->key, (int32_t)t->key_len}));
		w->topic = (int32_t)t->ordinal;
	}
	cr_assert(kp_split_add_partition(w->a, w->s, part->index, dest3[w->at++]));
	return true;
}

Test(split, the_order_of_a_walked_produce_request_merges_its_answers)
{
	struct ctx c;
	struct kp_split s, ref;
	ctx_init(&c, &messages[0], 13);
	struct kp_struct *req = client_request(&c);
	cr_assert(kp_split_request(&c.a, &kp_split_produce_request, req, 13, dest3, 6, 3, &ref));

	/* The proxy walks the client's bytes instead of decoding them. */
	struct kp_writer w;
	size_t len = 0;
	kp_writer_init(&w);
	kp_encode(&w, req, 13, true, -1);
	uint8_t *bytes = kp_writer_flatten(&w, &len);
	kp_writer_free(&w);
	struct iovec iov = {bytes, len};
	struct kp_pieces p;
	struct walked wk = {&c.a, &s, -1, 0};
	kp_pieces_init(&p, &iov, 1, len);
	cr_assert(kp_split_init(&s, 13, 3));
	cr_assert(kp_walk_partitions(&p, &kp_walk_produce_request, 13, true, walked_partition, &wk, NULL));
	cr_assert(kp_split_finish(&c.a, &s));
	free(bytes);
	cr_assert_eq(s.nparts, 6);
	for (int d = 0; d < 3; d++) {
		cr_assert_null(s.dests[d].request);
		cr_assert_eq(s.dests[d].cnt, ref.dests[d].cnt);
		size_t n = (size_t)s.dests[d].cnt * sizeof(*s.dests[d].refs);
		cr_assert_eq(memcmp(s.dests[d].refs, ref.dests[d].refs, n), 0);
	}
	struct kp_struct *resp[3] = {NULL, NULL, NULL};
	for (int d = 0; d < 3; d += 2)
		resp[d] = answer(&c, reread(&c, ref.dests[d].request), d);
	static const int by[] = {0, -1, 0, 2, 0, -1};
	check_merged(&c, reread(&c, kp_split_merge(&c.a, &kp_split_produce_response, &s, resp, NOT_LEADER)), by, 30);
	kp_arena_free(&c.a);
}

Test(split, a_partition_added_with_its_own_error_is_answered_with_it_and_the_others_with_the_merges)
{
	/* Produce v13 by topic id: the proxy knows topic A (partition 0 to destination 0, 1 nowhere), not
	 * topic B (both partitions answered UNKNOWN_TOPIC_ID, 100); destination 0 answers nothing. */
	struct kp_arena a;
	struct kp_split s;
	static const uint8_t id_a[16] = {1}, id_b[16] = {2};
	kp_arena_init(&a, 0);
	cr_assert(kp_split_init(&s, 13, 2));
	cr_assert(kp_split_add_topic(&a, &s, true, (struct kp_span){id_a, 16}));
	cr_assert(kp_split_add_partition(&a, &s, 0, 0));
	cr_assert(kp_split_add_partition(&a, &s, 1, -1));
	cr_assert(kp_split_add_topic(&a, &s, true, (struct kp_span){id_b, 16}));
	cr_assert(kp_split_add_partition_error(&a, &s, 4, 100));
	cr_assert(kp_split_add_partition_error(&a, &s, 5, 100));
	cr_assert(kp_split_finish(&a, &s));
	cr_assert_eq(s.dests[0].cnt, 1);
	cr_assert_eq(s.dests[1].cnt, 0, "partitions with their own error go nowhere");
	struct kp_struct *resp[2] = {NULL, NULL};
	const struct kp_split_layout *l = &kp_split_produce_response;
	struct kp_struct *m = kp_split_merge(&a, l, &s, resp, NOT_LEADER);
	cr_assert_not_null(m);
	const struct kp_list *topics = &m->v[l->topics].a;
	cr_assert_eq(topics->cnt, 2);
	static const int32_t index[2][2] = {{0, 1}, {4, 5}};
	static const int16_t error[2][2] = {{NOT_LEADER, NOT_LEADER}, {100, 100}};
	for (int t = 0; t < 2; t++) {
		const struct kp_struct *ts = topics->items[t].st;
		cr_assert_arr_eq(ts->v[l->topic_id].s.ptr, t ? id_b : id_a, 16);
		const struct kp_list *parts = &ts->v[l->partitions].a;
		cr_assert_eq(parts->cnt, 2);
		for (int p = 0; p < 2; p++) {
			cr_assert_eq(parts->items[p].st->v[l->index].i, index[t][p]);
			cr_assert_eq(parts->items[p].st->v[l->error_code].i, error[t][p], "topic %d partition %d", t, p);
		}
	}
	kp_arena_free(&a);
}
