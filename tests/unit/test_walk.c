/*
 * walk: the partitions of Fetch responses and Produce requests met in
 * place, checked against the decoder at every version: each partition's
 * byte range decodes by itself as that partition, its records range is
 * where the decoder found the records, and the answer is the same whatever
 * the pieces (one-byte pieces, split in two at every byte). Every malformed
 * form fails with the error that names it, never reading past the end.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "messages.h"
#include "walk.h"

#define MAX_SEEN 16

struct seen {
	struct kp_walk_topic topics[MAX_SEEN];
	struct kp_walk_partition parts[MAX_SEEN];
	int n;
	int stop_after; /* 0: never */
};

static bool collect(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct seen *s = arg;
	cr_assert_lt(s->n, MAX_SEEN);
	s->topics[s->n] = *t;
	s->parts[s->n++] = *part;
	return !s->stop_after || s->n < s->stop_after;
}

static uint8_t records[4][400]; /* partition r: 100 * (r + 1) - 1 bytes */
static const uint8_t topic_id[2][16] = {{0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
                                        {0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}};

static struct kp_span str(const char *s)
{
	return (struct kp_span){(const uint8_t *)s, (int32_t)strlen(s)};
}

static void list(struct kp_arena *a, struct kp_value *v, int32_t n)
{
	v->a.cnt = n;
	v->a.items = kp_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(struct kp_value));
}

static struct kp_struct *new_struct(struct kp_arena *a, const struct kp_schema *s, int16_t ver)
{
	struct kp_struct *st = kp_struct_new(a, s, ver);
	cr_assert_not_null(st);
	return st;
}

/* Two topics: "orders" with 3 partitions (records of 100-300 bytes, one
 * null), "audit" with 1; Fetch v12+ with a tagged CurrentLeader in one
 * partition, v16+ with NodeEndpoints. */
static struct kp_struct *message(struct kp_arena *a, const struct kp_walk_layout *l, int16_t ver)
{
	const struct kp_schema *topic = l->body->fields[l->topics].sub;
	const struct kp_schema *part = topic->fields[l->partitions].sub;
	bool fetch = l == &kp_walk_fetch_response;
	for (int i = 0; i < 4; i++)
		memset(records[i], 0x41 + i, sizeof(records[i]));
	struct kp_struct *st = new_struct(a, l->body, ver);
	if (!fetch) {
		st->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].s = str("txn-1");
		st->v[KP_PRODUCE_REQ_ACKS].i = -1;
	}
	list(a, &st->v[l->topics], 2);
	for (int t = 0; t < 2; t++) {
		int n = t ? 1 : 3;
		struct kp_struct *ts = new_struct(a, topic, ver);
		ts->v[l->topic_name].s = str(t ? "audit" : "orders");
		ts->v[l->topic_id].s = (struct kp_span){topic_id[t], 16};
		list(a, &ts->v[l->partitions], n);
		for (int p = 0; p < n; p++) {
			int r = t ? 3 : p;
			struct kp_struct *ps = new_struct(a, part, ver);
			ps->v[l->index].i = 10 * t + p;
			ps->v[l->records].s = (struct kp_span){records[r], 100 * (r + 1) - 1};
			if (r == 1)
				ps->v[l->records].s = (struct kp_span){NULL, -1};
			if (fetch) {
				ps->v[l->error_code].i = p == 2 ? 6 : 0;
				ps->v[l->preferred].i = p == 1 ? 3 : -1;
				if (ver >= 12 && p == 2) {
					struct kp_struct *ls =
					    new_struct(a, part->fields[KP_FETCH_RESP_PART_CURRENT_LEADER].sub, ver);
					ls->v[KP_FETCH_LEADER_ID].i = 2;
					ls->v[KP_FETCH_LEADER_EPOCH].i = 7;
					ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER].st = ls;
					ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER].present = true;
				}
			}
			ts->v[l->partitions].a.items[p].st = ps;
		}
		st->v[l->topics].a.items[t].st = ts;
	}
	if (fetch && ver >= 16) {
		const struct kp_schema *ep = l->body->fields[KP_FETCH_RESP_NODE_ENDPOINTS].sub;
		struct kp_value *nv = &st->v[KP_FETCH_RESP_NODE_ENDPOINTS];
		nv->present = true;
		list(a, nv, 1);
		struct kp_struct *e = new_struct(a, ep, ver);
		e->v[KP_FETCH_ENDPOINT_NODE_ID].i = 2;
		e->v[KP_FETCH_ENDPOINT_HOST].s = str("kafka-2");
		e->v[KP_FETCH_ENDPOINT_PORT].i = 9092;
		nv->a.items[0].st = e;
	}
	return st;
}

static uint8_t *encode(const struct kp_struct *st, int16_t ver, bool flexible, size_t *len)
{
	struct kp_writer w;
	kp_writer_init(&w);
	kp_encode(&w, st, ver, flexible, -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	cr_assert_not_null(out);
	return out;
}

static bool walk(const struct kp_walk_layout *l, int16_t ver, bool flexible, const struct iovec *iov, int n,
                 size_t len, struct seen *s, struct kp_pieces *p, uint32_t *tags)
{
	memset(s->topics, 0, sizeof(s->topics));
	memset(s->parts, 0, sizeof(s->parts));
	s->n = 0;
	if (tags)
		*tags = 12345;
	kp_pieces_init(p, iov, n, len);
	return kp_walk_partitions(p, l, ver, flexible, collect, s, tags);
}

static const struct {
	const char *name;
	const struct kp_walk_layout *layout;
	int16_t api, from, to;
} messages[] = {
    {"Fetch response", &kp_walk_fetch_response, KP_API_FETCH, 0, 18},
    {"Produce request", &kp_walk_produce_request, KP_API_PRODUCE, 3, 13},
};

/* What the decoder says of every partition, against the walk's ranges. */
static void check_against_decoder(const struct kp_walk_layout *l, int16_t ver, bool flexible, const uint8_t *buf,
                                  size_t len, const struct seen *s, uint32_t tags, const char *what)
{
	struct kp_arena a;
	struct kp_cursor c;
	kp_arena_init(&a, 1 << 20);
	kp_cursor_init(&c, buf, len);
	struct kp_struct *st = kp_decode(&a, &c, l->body, ver, flexible, -1);
	cr_assert_not_null(st, "%s: the decoder refuses its own encoding", what);
	const struct kp_schema *part_schema = l->body->fields[l->topics].sub->fields[l->partitions].sub;
	int k = 0;
	for (int32_t t = 0; t < st->v[l->topics].a.cnt; t++) {
		const struct kp_struct *ts = st->v[l->topics].a.items[t].st;
		struct kp_span key = ts->v[ver >= 13 ? l->topic_id : l->topic_name].s;
		for (int32_t i = 0; i < ts->v[l->partitions].a.cnt; i++, k++) {
			const struct kp_struct *ps = ts->v[l->partitions].a.items[i].st;
			const struct kp_walk_partition *w = &s->parts[k];
			cr_assert_lt(k, s->n, "%s: the walk met %d partitions", what, s->n);
			cr_assert_eq(s->topics[k].ordinal, (uint32_t)t, "%s", what);
			cr_assert_eq(s->topics[k].by_id, ver >= 13, "%s", what);
			cr_assert_eq(s->topics[k].key_len, (size_t)key.len, "%s", what);
			cr_assert_arr_eq(s->topics[k].key, key.ptr, (size_t)key.len, "%s: topic %d", what, t);
			cr_assert_eq(w->index, ps->v[l->index].i, "%s", what);
			if (l->error_code >= 0)
				cr_assert_eq(w->error_code, ps->v[l->error_code].i, "%s", what);
			if (l->preferred >= 0 && ver >= 11)
				cr_assert_eq(w->preferred_read_replica, ps->v[l->preferred].i, "%s", what);
			struct kp_span rec = ps->v[l->records].s;
			cr_assert_eq(w->records_len, rec.len, "%s: partition %d records", what, k);
			if (rec.len >= 0)
				cr_assert_eq(w->records_at, (size_t)(rec.ptr - buf), "%s: partition %d records", what,
				             k);
			/* The range is the partition, whole: it decodes alone. */
			struct kp_cursor pc;
			kp_cursor_init(&pc, buf + w->start, w->end - w->start);
			const struct kp_struct *alone = kp_decode(&a, &pc, part_schema, ver, flexible, -1);
			cr_assert_not_null(alone, "%s: partition %d's range does not decode", what, k);
			cr_assert_eq(kp_cursor_left(&pc), 0, "%s: partition %d's range is too long", what, k);
			cr_assert_eq(alone->v[l->index].i, w->index, "%s", what);
		}
	}
	cr_assert_eq(s->n, k, "%s: the walk met %d partitions, the decoder %d", what, s->n, k);
	if (flexible)
		cr_assert_eq(tags, l == &kp_walk_fetch_response && ver >= 16 ? 1u : 0u, "%s: %u top-level tags", what,
		             tags);
	kp_arena_free(&a);
}

Test(walk, every_partition_is_met_where_the_decoder_finds_it_at_every_version_and_split)
{
	for (size_t m = 0; m < sizeof(messages) / sizeof(messages[0]); m++) {
		const struct kp_walk_layout *l = messages[m].layout;
		for (int16_t ver = messages[m].from; ver <= messages[m].to; ver++) {
			struct kp_arena a;
			size_t len;
			bool flexible = kp_api_flexible(kp_api_get(messages[m].api), ver);
			kp_arena_init(&a, 1 << 20);
			uint8_t *buf = encode(message(&a, l, ver), ver, flexible, &len);
			char what[64];
			struct seen s = {0};
			struct kp_pieces p;
			uint32_t tags;
			struct iovec *ones = calloc(len, sizeof(*ones));
			for (size_t i = 0; i < len; i++)
				ones[i] = (struct iovec){buf + i, 1};
			snprintf(what, sizeof(what), "%s v%d, one-byte pieces", messages[m].name, ver);
			cr_assert(walk(l, ver, flexible, ones, (int)len, len, &s, &p, &tags), "%s: %s reading %s", what,
			          kp_error_name(p.err), p.err_field);
			check_against_decoder(l, ver, flexible, buf, len, &s, tags, what);
			for (size_t cut = 0; cut <= len; cut++) {
				struct iovec two[2] = {{buf, cut}, {buf + cut, len - cut}};
				snprintf(what, sizeof(what), "%s v%d, split at %zu", messages[m].name, ver, cut);
				cr_assert(walk(l, ver, flexible, two, 2, len, &s, &p, &tags), "%s: %s reading %s", what,
				          kp_error_name(p.err), p.err_field);
				check_against_decoder(l, ver, flexible, buf, len, &s, tags, what);
			}
			free(ones);
			free(buf);
			kp_arena_free(&a);
		}
	}
}

Test(walk, every_strict_prefix_fails_as_truncated_without_reading_past_it)
{
	for (size_t m = 0; m < sizeof(messages) / sizeof(messages[0]); m++) {
		const struct kp_walk_layout *l = messages[m].layout;
		for (int16_t ver = messages[m].from; ver <= messages[m].to; ver++) {
			struct kp_arena a;
			size_t len;
			bool flexible = kp_api_flexible(kp_api_get(messages[m].api), ver);
			kp_arena_init(&a, 1 << 20);
			uint8_t *buf = encode(message(&a, l, ver), ver, flexible, &len);
			for (size_t cut = 0; cut < len; cut++) {
				uint8_t *prefix = malloc(cut ? cut : 1); /* ASan sees a read past it */
				memcpy(prefix, buf, cut);
				struct iovec iov = {prefix, cut};
				struct seen s = {0};
				struct kp_pieces p;
				/* No tag count asked: the top-level tagged fields are walked too. */
				cr_assert_not(walk(l, ver, flexible, &iov, 1, cut, &s, &p, NULL),
				              "%s v%d: %zu of %zu bytes", messages[m].name, ver, cut, len);
				cr_assert_eq(p.err, KP_ERR_TRUNCATED, "%s v%d, %zu bytes: %s", messages[m].name, ver,
				             cut, kp_error_name(p.err));
				cr_assert_leq(p.pos, cut);
				free(prefix);
			}
			free(buf);
			kp_arena_free(&a);
		}
	}
}

/* Fetch v11 (int32 counts) and v12 (compact) responses with one field made hostile. */
Test(walk, hostile_lengths_and_counts_are_refused_with_what_they_are)
{
	static const struct {
		const char *name;
		int16_t ver;
		int what; /* 0 Responses count, 1 topic name length, 2 records length, 3 Partitions count */
		uint32_t value;
		enum kp_error err;
	} cases[] = {
	    {"Responses count -2", 11, 0, 0xfffffffe, KP_ERR_BAD_LENGTH},
	    {"Responses count beyond the frame", 11, 0, 0x7fffffff, KP_ERR_TRUNCATED},
	    {"topic name length -3", 11, 1, 0xfffd, KP_ERR_BAD_LENGTH},
	    {"topic name longer than the frame", 11, 1, 0x7fff, KP_ERR_TRUNCATED},
	    {"Records length -5", 11, 2, 0xfffffffb, KP_ERR_BAD_LENGTH},
	    {"Records longer than the frame", 11, 2, 0x7ffffff0, KP_ERR_TRUNCATED},
	    {"last topic's Partitions count beyond the frame", 11, 3, 2, KP_ERR_TRUNCATED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct kp_arena a;
		size_t len;
		kp_arena_init(&a, 1 << 20);
		uint8_t *buf = encode(message(&a, &kp_walk_fetch_response, cases[i].ver), cases[i].ver, false, &len);
		struct seen s = {0};
		struct kp_pieces p;
		uint32_t tags;
		struct iovec iov = {buf, len};
		cr_assert(walk(&kp_walk_fetch_response, cases[i].ver, false, &iov, 1, len, &s, &p, &tags));
		/* ThrottleTimeMs, ErrorCode, SessionId, then Responses (int32) and the first topic's name (int16). */
		size_t at = cases[i].what == 0   ? 10
		            : cases[i].what == 1 ? 14
		            : cases[i].what == 2 ? s.parts[0].records_at - 4
		                                 : s.parts[3].start - 4; /* the last topic has one partition */
		if (cases[i].what == 1) {
			buf[at] = (uint8_t)(cases[i].value >> 8);
			buf[at + 1] = (uint8_t)cases[i].value;
		} else {
			for (int b = 0; b < 4; b++)
				buf[at + (size_t)b] = (uint8_t)(cases[i].value >> (24 - 8 * b));
		}
		cr_assert_not(walk(&kp_walk_fetch_response, cases[i].ver, false, &iov, 1, len, &s, &p, &tags), "%s",
		              cases[i].name);
		cr_assert_eq(p.err, cases[i].err, "%s: %s, wanted %s", cases[i].name, kp_error_name(p.err),
		             kp_error_name(cases[i].err));
		cr_assert_leq(p.pos, len);
		free(buf);
		kp_arena_free(&a);
	}
}

Test(walk, an_overlong_compact_count_is_a_bad_varint)
{
	/* Fetch v12: ThrottleTimeMs, ErrorCode, SessionId, then Responses as six varint bytes. */
	const uint8_t b[] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00};
	struct iovec iov = {(void *)b, sizeof(b)};
	struct seen s = {0};
	struct kp_pieces p;
	uint32_t tags;
	cr_assert_not(walk(&kp_walk_fetch_response, 12, true, &iov, 1, sizeof(b), &s, &p, &tags));
	cr_assert_eq(p.err, KP_ERR_BAD_VARINT);
	cr_assert_str_eq(p.err_field, "Responses");
}

Test(walk, the_callback_can_stop_the_walk)
{
	struct kp_arena a;
	size_t len;
	kp_arena_init(&a, 1 << 20);
	uint8_t *buf = encode(message(&a, &kp_walk_fetch_response, 13), 13, true, &len);
	struct seen s = {.stop_after = 2};
	struct kp_pieces p;
	uint32_t tags;
	struct iovec iov = {buf, len};
	cr_assert_not(walk(&kp_walk_fetch_response, 13, true, &iov, 1, len, &s, &p, &tags));
	cr_assert_eq(s.n, 2);
	cr_assert_eq(p.err, KP_OK, "stopped, not malformed");
	free(buf);
	kp_arena_free(&a);
}

/* What the topic callback saw, for the ranges test below. */
struct ranges {
	struct kp_walk_topic topics[MAX_SEEN];
	int ntopics;
	struct seen parts;
};

static bool collect_part(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct ranges *r = arg;
	return collect(&r->parts, t, part);
}

static bool collect_topic(void *arg, const struct kp_walk_topic *t)
{
	struct ranges *r = arg;
	cr_assert_lt(r->ntopics, MAX_SEEN);
	cr_assert_eq(t->ordinal, (uint32_t)r->ntopics, "topics are called back in order, once each");
	r->topics[r->ntopics++] = *t;
	return true;
}

/* The bytes [at, end) of buf are exactly one tagged-field section. */
static void assert_tag_section(const uint8_t *buf, size_t at, size_t end, const char *what)
{
	struct iovec iov = {(void *)(buf + at), end - at};
	struct kp_pieces p;
	kp_pieces_init(&p, &iov, 1, end - at);
	cr_assert(kp_pieces_skip_tags(&p), "%s: not a tag section", what);
	cr_assert_eq(p.pos, end - at, "%s: the tag section is %zu bytes, the range %zu", what, p.pos, end - at);
}

Test(walk, topic_and_tag_ranges_cut_each_struct_where_its_fields_lie)
{
	for (size_t m = 0; m < sizeof(messages) / sizeof(messages[0]); m++) {
		const struct kp_walk_layout *l = messages[m].layout;
		const struct kp_schema *topic_schema = l->body->fields[l->topics].sub;
		for (int16_t ver = messages[m].from; ver <= messages[m].to; ver++) {
			struct kp_arena a;
			size_t len;
			bool flexible = kp_api_flexible(kp_api_get(messages[m].api), ver);
			kp_arena_init(&a, 1 << 20);
			uint8_t *buf = encode(message(&a, l, ver), ver, flexible, &len);
			struct ranges r = {0};
			struct kp_walk_visitor v = {collect_part, collect_topic, &r};
			struct kp_pieces p;
			struct iovec two[2] = {{buf, len / 2}, {buf + len / 2, len - len / 2}};
			kp_pieces_init(&p, two, 2, len);
			cr_assert(kp_walk(&p, l, ver, flexible, &v, NULL), "%s v%d", messages[m].name, ver);
			cr_assert_eq(p.pos, len);
			cr_assert_eq(r.ntopics, 2, "%s v%d", messages[m].name, ver);
			for (int t = 0; t < r.ntopics; t++) {
				const struct kp_walk_topic *wt = &r.topics[t];
				cr_assert(wt->start < wt->parts_at && wt->parts_at < wt->tags_at && wt->tags_at <= wt->end);
				/* The key: a 16-byte id, or a name after its length. */
				size_t key_bytes = ver >= 13 ? 16 : (flexible ? 1 : 2) + wt->key_len;
				cr_assert_eq(wt->parts_at - wt->start, key_bytes, "%s v%d topic %d", messages[m].name, ver,
				             t);
				cr_assert_arr_eq(buf + wt->parts_at - wt->key_len, wt->key, wt->key_len);
				if (flexible)
					assert_tag_section(buf, wt->tags_at, wt->end, "topic");
				else
					cr_assert_eq(wt->tags_at, wt->end);
				/* The range is the topic, whole: it decodes alone. */
				struct kp_cursor c;
				kp_cursor_init(&c, buf + wt->start, wt->end - wt->start);
				cr_assert_not_null(kp_decode(&a, &c, topic_schema, ver, flexible, -1));
				cr_assert_eq(kp_cursor_left(&c), 0);
				if (t > 0)
					cr_assert_eq(wt->start, r.topics[t - 1].end, "topics follow each other");
			}
			for (int k = 0; k < r.parts.n; k++) {
				const struct kp_walk_partition *wp = &r.parts.parts[k];
				size_t rec_end = wp->records_at + (wp->records_len > 0 ? (size_t)wp->records_len : 0);
				cr_assert_eq(wp->tags_at, rec_end, "Records are the last regular field");
				if (flexible)
					assert_tag_section(buf, wp->tags_at, wp->end, "partition");
				else
					cr_assert_eq(wp->tags_at, wp->end);
				/* Fetch v12+: partition 2 of "orders" carries CurrentLeader (tag, size, 2 int32). */
				if (l == &kp_walk_fetch_response && ver >= 12 && k == 2)
					cr_assert_eq(wp->end - wp->tags_at, 1 + 1 + 1 + 8 + 1, "%s v%d: %zu tag bytes",
					             messages[m].name, ver, wp->end - wp->tags_at);
			}
			free(buf);
			kp_arena_free(&a);
		}
	}
}
