/*
 * refsplit: regional mode's Produce split and Fetch merge, by reference.
 *
 * Messages are built with the codec at each version, framed with their
 * header, copied into pieces that each live in their own allocation (so a
 * read past one is caught, and a reference can be traced to the piece it
 * points into), cut where it hurts: inside a record batch, inside the varint
 * or int32 that gives its length, into empty pieces. Each output is
 * flattened and decoded with the codec, and every field is checked against
 * the model the message was built from. The records must leave by
 * reference: every referenced byte lies in the input pieces, the referenced
 * bytes are exactly the records, and what was written is only the small
 * structure around them.
 *
 * One file over 1,000 lines: the split and the merge share the model, the
 * framing and the piece cutting, and each half reads on its own.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "codec_util.h"
#include "header.h"
#include "messages.h"
#include "refsplit.h"

/* ---- the model: topics, partitions, records ------------------------------ */

#define NTOPICS 4 /* orders, audit, metrics, and ghost (which no broker holds) */
#define MAXP 10   /* partition ordinals 0..3 are real, 9 is one nobody asks for */

static const char *const names[NTOPICS] = {"orders", "audit", "metrics", "ghost"};
static const uint8_t ids[NTOPICS][16] = {
    {0xaa, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {0xbb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {0xcc, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {0xdd, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
};
static const int nparts_of[NTOPICS] = {4, 2, 1, 1};
static uint8_t records[NTOPICS][MAXP][300];

/* Kafka's partition number of ordinal p: not the ordinal, so that a mix-up shows. */
static int32_t idx(int t, int p)
{
	return 5 * p + t + 1;
}

/* Record bytes of (t, p): 250 (a two-byte compact length), empty, null, ... */
static int32_t rlen(int t, int p)
{
	static const int32_t len[NTOPICS][4] = {{250, 61, 130, -1}, {0, 190}, {77}, {40}};
	return p == 9 ? 20 : len[t][p];
}

static struct kp_span rspan(int t, int p)
{
	int32_t n = rlen(t, p);
	return n < 0 ? (struct kp_span){NULL, -1} : (struct kp_span){records[t][p], n};
}

static void fill_records(void)
{
	for (int t = 0; t < NTOPICS; t++)
		for (int p = 0; p < MAXP; p++)
			for (int i = 0; i < 300; i++)
				records[t][p][i] = (uint8_t)(t * 71 + p * 13 + i * 7 + 1);
}

static struct kp_span str(const char *s)
{
	return (struct kp_span){(const uint8_t *)s, (int32_t)strlen(s)};
}

static struct kp_struct *new_struct(struct kp_arena *a, const struct kp_schema *s, int16_t ver)
{
	struct kp_struct *st = kp_struct_new(a, s, ver);
	cr_assert_not_null(st);
	return st;
}

static void list(struct kp_arena *a, struct kp_value *v, int32_t n)
{
	v->a.cnt = n;
	v->a.items = kp_arena_alloc(a, (size_t)(n ? n : 1) * sizeof(struct kp_value));
}

static void unknown_tag(struct kp_arena *a, struct kp_struct *st, uint32_t tag, const char *data)
{
	st->unknown = kp_arena_alloc(a, sizeof(*st->unknown));
	st->unknown[0] = (struct kp_raw_tag){tag, str(data)};
	st->unknown_cnt = 1;
}

static void check_unknown_tag(const struct kp_struct *st, uint32_t tag, const char *data, const char *what)
{
	cr_assert_eq(st->unknown_cnt, 1, "%s: %u unknown tags", what, st->unknown_cnt);
	cr_assert_eq(st->unknown[0].tag, tag, "%s", what);
	cr_assert(span_is(st->unknown[0].data, data), "%s", what);
}

/* ---- pieces ------------------------------------------------------------- */

struct pieces {
	struct iovec *iov;
	size_t *start; /* offset of each piece in the message */
	int n;
	size_t len;
};

/* buf[0, len) cut before each offset of at[] (ascending; repeats make empty pieces). */
static struct pieces cut(const uint8_t *buf, size_t len, const size_t *at, size_t nat)
{
	struct pieces pc = {calloc(nat + 1, sizeof(struct iovec)), calloc(nat + 1, sizeof(size_t)), 0, len};
	size_t from = 0;
	for (size_t i = 0; i <= nat; i++) {
		size_t to = i < nat ? at[i] : len;
		cr_assert(from <= to && to <= len, "cut %zu..%zu of %zu", from, to, len);
		uint8_t *piece = malloc(to - from ? to - from : 1);
		memcpy(piece, buf + from, to - from);
		pc.iov[pc.n] = (struct iovec){piece, to - from};
		pc.start[pc.n++] = from;
		from = to;
	}
	return pc;
}

static struct pieces cut_bytes(const uint8_t *buf, size_t len)
{
	size_t *at = calloc(len ? len : 1, sizeof(*at));
	for (size_t i = 1; i < len; i++)
		at[i - 1] = i;
	struct pieces pc = cut(buf, len, at, len ? len - 1 : 0);
	free(at);
	return pc;
}

static void pieces_free(struct pieces *pc)
{
	for (int i = 0; i < pc->n; i++)
		free(pc->iov[i].iov_base);
	free(pc->iov);
	free(pc->start);
}

/* The pieces that bytes [at, at + n) of the message lie in. */
static size_t pieces_spanned(const struct pieces *pc, size_t at, size_t n)
{
	size_t k = 0;
	for (int i = 0; i < pc->n; i++)
		if (n && pc->iov[i].iov_len && pc->start[i] < at + n && at < pc->start[i] + pc->iov[i].iov_len)
			k++;
	return k;
}

static bool in_pieces(const struct pieces *const *pcs, int npcs, const uint8_t *ptr, size_t n)
{
	for (int k = 0; k < npcs; k++)
		for (int i = 0; pcs[k] && i < pcs[k]->n; i++) {
			const uint8_t *base = pcs[k]->iov[i].iov_base;
			if (ptr >= base && ptr + n <= base + pcs[k]->iov[i].iov_len)
				return true;
		}
	return false;
}

/* Every referenced byte lies in the pieces; there are nrefs references of referenced bytes in all. */
static void check_references(const struct kp_writer *w, const struct pieces *const *pcs, int npcs, size_t referenced,
                             size_t nrefs, const char *what)
{
	size_t sum = 0, k = 0;
	for (size_t i = 0; i < w->nsegs; i++) {
		if (!w->segs[i].ref)
			continue;
		cr_assert(in_pieces(pcs, npcs, w->segs[i].ref, w->segs[i].len),
		          "%s: segment %zu references bytes outside the input pieces", what, i);
		sum += w->segs[i].len;
		k++;
	}
	cr_assert_eq(sum, referenced, "%s: %zu bytes referenced, the records are %zu", what, sum, referenced);
	cr_assert_eq(kp_writer_referenced(w), referenced, "%s", what);
	cr_assert_eq(k, nrefs, "%s: %zu references, the records span %zu pieces", what, k, nrefs);
}

/* Where each partition's records lie in a framed message (the walk is tested in test_walk.c). */
struct found {
	size_t at[16];
	int64_t len[16];
	int n;
};

static bool note_records(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	(void)t;
	struct found *f = arg;
	cr_assert_lt(f->n, 16);
	f->at[f->n] = part->records_at;
	f->len[f->n++] = part->records_len;
	return true;
}

static struct found records_of(const struct kp_walk_layout *l, int16_t ver, bool flexible, const uint8_t *buf,
                               size_t len, size_t hdr)
{
	struct found f = {0};
	struct iovec iov = {(void *)buf, len};
	struct kp_pieces p;
	kp_pieces_init(&p, &iov, 1, len);
	cr_assert(kp_pieces_skip(&p, hdr, "header"));
	cr_assert(kp_walk_partitions(&p, l, ver, flexible, note_records, &f, NULL));
	return f;
}

/* Cuts that hurt: inside each records' length and in the middle of each batch (twice: an empty
 * piece), near the end of long batches, inside the first field and inside the last tags. */
static struct pieces cut_awkwardly(const struct kp_walk_layout *l, int16_t ver, bool flexible, const uint8_t *buf,
                                   size_t len, size_t hdr)
{
	struct found f = records_of(l, ver, flexible, buf, len, hdr);
	size_t at[80], n = 0;
	at[n++] = hdr + 1;
	for (int i = 0; i < f.n; i++) {
		if (f.len[i] < 2)
			continue;
		at[n++] = f.at[i] - 1;
		at[n++] = f.at[i] + (size_t)f.len[i] / 2;
		at[n++] = f.at[i] + (size_t)f.len[i] / 2;
		if (f.len[i] > 200)
			at[n++] = f.at[i] + (size_t)f.len[i] - 1;
	}
	at[n++] = len - 1;
	for (size_t i = 1; i < n; i++) /* insertion sort: ascending */
		for (size_t j = i; j > 0 && at[j - 1] > at[j]; j--) {
			size_t x = at[j];
			at[j] = at[j - 1];
			at[j - 1] = x;
		}
	return cut(buf, len, at, n);
}

/* ---- Produce request split ------------------------------------------------ */

/* Three topics: orders (4 partitions: a 250-byte batch, 61, null, 130), audit (empty, 190),
 * metrics (77). Flexible versions carry tags at each level. */
static struct kp_struct *produce_request(struct kp_arena *a, int16_t ver)
{
	const struct kp_schema *topic = sub(&kp_produce_request, KP_PRODUCE_REQ_TOPIC_DATA);
	const struct kp_schema *part = sub(topic, KP_PRODUCE_TOPIC_PARTITION_DATA);
	struct kp_struct *st = new_struct(a, &kp_produce_request, ver);
	st->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].s = str("txn-1");
	st->v[KP_PRODUCE_REQ_ACKS].i = -1;
	st->v[kp_field_index(&kp_produce_request, "TimeoutMs")].i = 30000;
	list(a, &st->v[KP_PRODUCE_REQ_TOPIC_DATA], 3);
	for (int t = 0; t < 3; t++) {
		struct kp_struct *ts = new_struct(a, topic, ver);
		ts->v[KP_PRODUCE_TOPIC_NAME].s = str(names[t]);
		ts->v[KP_PRODUCE_TOPIC_TOPIC_ID].s = (struct kp_span){ids[t], 16};
		list(a, &ts->v[KP_PRODUCE_TOPIC_PARTITION_DATA], nparts_of[t]);
		for (int p = 0; p < nparts_of[t]; p++) {
			struct kp_struct *ps = new_struct(a, part, ver);
			ps->v[KP_PRODUCE_PART_INDEX].i = idx(t, p);
			ps->v[KP_PRODUCE_PART_RECORDS].s = rspan(t, p);
			if (t == 0 && p == 1)
				unknown_tag(a, ps, 3, "pt");
			ts->v[KP_PRODUCE_TOPIC_PARTITION_DATA].a.items[p].st = ps;
		}
		if (t == 0)
			unknown_tag(a, ts, 5, "tt");
		st->v[KP_PRODUCE_REQ_TOPIC_DATA].a.items[t].st = ts;
	}
	unknown_tag(a, st, 7, "top!");
	return st;
}

/* A whole frame body (header, then body) of a message; *hdr gets the header's size. */
static uint8_t *frame(const struct kp_struct *body, bool request, int16_t api, int16_t ver, bool flexible, size_t *hdr,
                      size_t *len)
{
	struct kp_writer w;
	kp_writer_init(&w);
	if (request) {
		struct kp_request_header h = {.api_key = api,
		                              .api_version = ver,
		                              .correlation_id = 42,
		                              .client_id = str("cli"),
		                              .header_version = kp_request_header_version(api, ver)};
		kp_request_header_write(&w, &h);
	} else {
		struct kp_response_header h = {.correlation_id = 42,
		                               .header_version = kp_response_header_version(api, ver)};
		kp_response_header_write(&w, &h);
	}
	*hdr = kp_writer_size(&w);
	kp_encode(&w, body, ver, flexible, -1);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	cr_assert_not_null(out);
	return out;
}

/* Where each partition goes: route[t][p], over ndest destinations. */
struct routes {
	const char *name;
	int ndest;
	int route[3][4];
};

static const struct routes routes[] = {
    {"two leaders, one partition kept", 2, {{0, 1, 0, -1}, {1, 1}, {0}}},
    {"three leaders, a topic kept whole", 3, {{2, 0, 2, 1}, {-1, 2}, {-1}}},
    {"a leader with nothing to do", 3, {{0, 2, 0, 2}, {2, 0}, {-1}}},
    {"all to one", 1, {{0, 0, 0, 0}, {0, 0}, {0}}},
};

struct route_arg {
	const struct routes *r;
	int calls;
};

static int route(void *arg, const struct kp_walk_topic *t, int32_t index)
{
	struct route_arg *ra = arg;
	ra->calls++;
	for (int k = 0; k < 3; k++) {
		bool same = t->by_id ? t->key_len == 16 && memcmp(t->key, ids[k], 16) == 0
		                     : t->key_len == strlen(names[k]) && memcmp(t->key, names[k], t->key_len) == 0;
		if (!same)
			continue;
		for (int p = 0; p < nparts_of[k]; p++)
			if (idx(k, p) == index)
				return ra->r->route[k][p];
	}
	cr_assert_fail("route asked for a partition the request does not hold (index %d)", index);
	return -1;
}

/* One destination's body against the model. */
static void check_destination(const struct kp_produce_split *s, int d, const struct routes *r, int16_t ver,
                              bool flexible, const struct pieces *pc, const struct found *f, const char *what)
{
	const struct kp_produce_dest *dest = &s->dest[d];
	size_t want_parts = 0, want_topics = 0, referenced = 0, nrefs = 0;
	for (int t = 0, k = 0; t < 3; t++) {
		bool any = false;
		for (int p = 0; p < nparts_of[t]; p++, k++)
			if (r->route[t][p] == d) {
				any = true;
				want_parts++;
				referenced += rlen(t, p) > 0 ? (size_t)rlen(t, p) : 0;
				nrefs += pieces_spanned(pc, f->at[k], f->len[k] > 0 ? (size_t)f->len[k] : 0);
			}
		want_topics += any;
	}
	cr_assert_eq(dest->nparts, want_parts, "%s, destination %d: %zu partitions carried", what, d, dest->nparts);
	if (want_parts == 0) {
		cr_assert_eq(kp_writer_size(&dest->body), 0, "%s: destination %d has nothing to send", what, d);
		return;
	}

	size_t len;
	uint8_t *out = kp_writer_flatten((struct kp_writer *)&dest->body, &len);
	struct kp_arena a;
	struct kp_cursor c;
	kp_arena_init(&a, 0);
	kp_cursor_init(&c, out, len);
	const struct kp_struct *st = kp_decode(&a, &c, &kp_produce_request, ver, flexible, -1);
	cr_assert_not_null(st, "%s, destination %d does not decode: %s at %s", what, d, kp_error_name(c.err),
	                   c.err_field);
	cr_assert_eq(kp_cursor_left(&c), 0, "%s, destination %d: trailing bytes", what, d);
	if (ver >= 3)
		cr_assert(span_is(st->v[KP_PRODUCE_REQ_TRANSACTIONAL_ID].s, "txn-1"), "%s", what);
	cr_assert_eq(st->v[KP_PRODUCE_REQ_ACKS].i, -1, "%s", what);
	cr_assert_eq(field(st, "TimeoutMs")->i, 30000, "%s", what);
	if (flexible)
		check_unknown_tag(st, 7, "top!", what);

	const struct kp_value *topics = &st->v[KP_PRODUCE_REQ_TOPIC_DATA];
	cr_assert_eq(topics->a.cnt, (int32_t)want_topics, "%s, destination %d: %d topics", what, d, topics->a.cnt);
	size_t carried = 0;
	for (int t = 0, out_t = 0; t < 3; t++) {
		int out_p = 0;
		const struct kp_struct *ts = NULL;
		for (int p = 0; p < nparts_of[t]; p++) {
			if (r->route[t][p] != d)
				continue;
			if (!ts) {
				ts = item(topics, out_t++);
				if (ver >= 13)
					cr_assert_arr_eq(ts->v[KP_PRODUCE_TOPIC_TOPIC_ID].s.ptr, ids[t], 16, "%s", what);
				else
					cr_assert(span_is(ts->v[KP_PRODUCE_TOPIC_NAME].s, names[t]), "%s: topic %s", what,
					          names[t]);
				if (flexible && t == 0)
					check_unknown_tag(ts, 5, "tt", what);
				else
					cr_assert_eq(ts->unknown_cnt, 0, "%s", what);
			}
			const struct kp_struct *ps = item(&ts->v[KP_PRODUCE_TOPIC_PARTITION_DATA], out_p++);
			cr_assert_eq(ps->v[KP_PRODUCE_PART_INDEX].i, idx(t, p), "%s, %s p%d", what, names[t], p);
			struct kp_span rec = ps->v[KP_PRODUCE_PART_RECORDS].s;
			cr_assert_eq(rec.len, rlen(t, p), "%s, %s p%d: %d record bytes", what, names[t], p, rec.len);
			if (rec.len > 0)
				cr_assert_arr_eq(rec.ptr, records[t][p], (size_t)rec.len, "%s, %s p%d", what, names[t],
				                 p);
			if (flexible && t == 0 && p == 1)
				check_unknown_tag(ps, 3, "pt", what);
			else
				cr_assert_eq(ps->unknown_cnt, 0, "%s", what);
			/* What the caller merges answers back with. */
			const struct kp_part_ref *ref = &dest->parts[carried++];
			cr_assert_eq(ref->topic, (uint32_t)t, "%s", what);
			cr_assert_eq(ref->partition, (uint32_t)p, "%s", what);
			cr_assert_eq(ref->index, idx(t, p), "%s", what);
		}
		if (ts)
			cr_assert_eq(ts->v[KP_PRODUCE_TOPIC_PARTITION_DATA].a.cnt, out_p, "%s", what);
	}

	/* Zero-copy: the records are referenced where they lie; only the structure was written. */
	const struct pieces *pcs[1] = {pc};
	check_references(&dest->body, pcs, 1, referenced, nrefs, what);
	size_t owned = kp_writer_size(&dest->body) - referenced;
	cr_assert_leq(owned, 32 + 16 * want_topics + 16 * want_parts, "%s, destination %d: %zu bytes written", what, d,
	              owned);
	free(out);
	kp_arena_free(&a);
}

static void check_split(int16_t ver, bool flexible, const struct routes *r, const uint8_t *buf, size_t len, size_t hdr,
                        const struct pieces *pc, const char *how)
{
	char what[160];
	struct kp_produce_split s;
	struct kp_pieces p;
	struct route_arg ra = {r, 0};
	snprintf(what, sizeof(what), "Produce v%d, %s, %s", ver, r->name, how);
	kp_produce_split_init(&s);
	kp_pieces_init(&p, pc->iov, pc->n, pc->len);
	cr_assert(kp_pieces_skip(&p, hdr, "header"));
	cr_assert(kp_produce_split(&s, &p, ver, flexible, r->ndest, route, &ra), "%s: %s at %s", what,
	          kp_error_name(p.err), p.err_field);
	cr_assert_eq(ra.calls, 7, "%s: route is asked once per partition", what);
	cr_assert_eq(s.ndest, r->ndest);
	struct found f = records_of(&kp_walk_produce_request, ver, flexible, buf, len, hdr);
	for (int d = 0; d < r->ndest; d++)
		check_destination(&s, d, r, ver, flexible, pc, &f, what);
	/* The kept partitions, in the client's order. */
	size_t k = 0;
	for (int t = 0; t < 3; t++)
		for (int p2 = 0; p2 < nparts_of[t]; p2++)
			if (r->route[t][p2] < 0) {
				cr_assert_lt(k, s.nkept, "%s", what);
				cr_assert_eq(s.kept[k].topic, (uint32_t)t, "%s", what);
				cr_assert_eq(s.kept[k].partition, (uint32_t)p2, "%s", what);
				cr_assert_eq(s.kept[k].index, idx(t, p2), "%s", what);
				k++;
			}
	cr_assert_eq(s.nkept, k, "%s: %zu kept", what, s.nkept);
	kp_produce_split_free(&s);
}

Test(refsplit, produce_is_split_per_destination_in_client_order_with_records_referenced_at_every_version)
{
	fill_records();
	for (int16_t ver = 3; ver <= 13; ver++) {
		bool flexible = kp_api_flexible(kp_api_get(KP_API_PRODUCE), ver);
		struct kp_arena a;
		size_t len, hdr;
		kp_arena_init(&a, 0);
		uint8_t *buf = frame(produce_request(&a, ver), true, KP_API_PRODUCE, ver, flexible, &hdr, &len);
		struct pieces awkward = cut_awkwardly(&kp_walk_produce_request, ver, flexible, buf, len, hdr);
		struct pieces ones = cut_bytes(buf, len);
		size_t none = 0;
		struct pieces whole = cut(buf, len, &none, 0);
		cr_assert_geq(awkward.n, 12, "v%d: %d pieces", ver, awkward.n);
		for (size_t r = 0; r < sizeof(routes) / sizeof(routes[0]); r++) {
			check_split(ver, flexible, &routes[r], buf, len, hdr, &awkward, "awkward pieces");
			check_split(ver, flexible, &routes[r], buf, len, hdr, &ones, "one-byte pieces");
			check_split(ver, flexible, &routes[r], buf, len, hdr, &whole, "one piece");
		}
		pieces_free(&awkward);
		pieces_free(&ones);
		pieces_free(&whole);
		free(buf);
		kp_arena_free(&a);
	}
}

Test(refsplit, a_batch_cut_across_pieces_leaves_as_one_reference_per_piece)
{
	/* v9 (the first flexible version): orders p0's 250 bytes cut at 1, 100 and 249. */
	fill_records();
	struct kp_arena a;
	size_t len, hdr;
	kp_arena_init(&a, 0);
	uint8_t *buf = frame(produce_request(&a, 9), true, KP_API_PRODUCE, 9, true, &hdr, &len);
	struct found f = records_of(&kp_walk_produce_request, 9, true, buf, len, hdr);
	cr_assert_eq(f.len[0], 250);
	size_t at[] = {f.at[0] + 1, f.at[0] + 100, f.at[0] + 249};
	struct pieces pc = cut(buf, len, at, 3);
	struct kp_produce_split s;
	struct kp_pieces p;
	struct route_arg ra = {&routes[0], 0};
	kp_produce_split_init(&s);
	kp_pieces_init(&p, pc.iov, pc.n, pc.len);
	cr_assert(kp_pieces_skip(&p, hdr, "header"));
	cr_assert(kp_produce_split(&s, &p, 9, true, 2, route, &ra));
	/* Destination 0 holds orders p0 (250 bytes) and p2 (130), metrics p0 (77). */
	const struct kp_writer *w = &s.dest[0].body;
	const uint8_t *expect[] = {(uint8_t *)pc.iov[0].iov_base + f.at[0], pc.iov[1].iov_base, pc.iov[2].iov_base,
	                           pc.iov[3].iov_base};
	const size_t expect_len[] = {1, 99, 149, 1};
	size_t k = 0;
	for (size_t i = 0; i < w->nsegs && k < 4; i++)
		if (w->segs[i].ref) {
			cr_assert_eq(w->segs[i].ref, expect[k], "reference %zu points where the batch lies", k);
			cr_assert_eq(w->segs[i].len, expect_len[k], "reference %zu: %zu bytes", k, w->segs[i].len);
			k++;
		}
	cr_assert_eq(k, 4);
	cr_assert_eq(kp_writer_referenced(w), 250 + 130 + 77, "%zu referenced", kp_writer_referenced(w));
	kp_produce_split_free(&s);
	pieces_free(&pc);
	free(buf);
	kp_arena_free(&a);
}

/* Splits buf's body (after hdr) of a Produce request at ver into routes[0]'s destinations. */
static bool split_raw(const uint8_t *buf, size_t len, size_t hdr, int16_t ver, int ndest, struct kp_pieces *p)
{
	struct kp_produce_split s;
	struct route_arg ra = {&routes[0], 0};
	uint8_t *copy = malloc(len ? len : 1); /* ASan sees a read past it */
	memcpy(copy, buf, len);
	struct iovec iov = {copy, len};
	kp_produce_split_init(&s);
	kp_pieces_init(p, &iov, 1, len);
	cr_assert(kp_pieces_skip(p, hdr, "header"));
	bool ok = kp_produce_split(&s, p, ver, kp_api_flexible(kp_api_get(KP_API_PRODUCE), ver), ndest, route, &ra);
	cr_assert_leq(p->pos, len);
	kp_produce_split_free(&s);
	free(copy);
	return ok;
}

Test(refsplit, a_cut_short_produce_request_is_truncated_at_every_length)
{
	fill_records();
	static const int16_t versions[] = {3, 8, 9, 13};
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		int16_t ver = versions[v];
		struct kp_arena a;
		size_t len, hdr;
		kp_arena_init(&a, 0);
		uint8_t *buf = frame(produce_request(&a, ver), true, KP_API_PRODUCE, ver, ver >= 9, &hdr, &len);
		for (size_t n = hdr; n < len; n++) {
			struct kp_pieces p;
			cr_assert_not(split_raw(buf, n, hdr, ver, 2, &p), "v%d, %zu of %zu bytes", ver, n, len);
			cr_assert_eq(p.err, KP_ERR_TRUNCATED, "v%d, %zu bytes: %s", ver, n, kp_error_name(p.err));
		}
		kp_arena_free(&a);
		free(buf);
	}
}

Test(refsplit, a_malformed_produce_request_is_refused_with_what_is_wrong)
{
	fill_records();
	struct kp_arena a;
	size_t len, hdr;
	struct kp_pieces p;
	kp_arena_init(&a, 0);
	/* v8: TransactionalId "txn-1" (2 + 5), Acks, TimeoutMs, TopicData count (4), "orders" (2 + 6),
	 * PartitionData count (4), Index (4), then orders p0's Records length. */
	uint8_t *buf = frame(produce_request(&a, 8), true, KP_API_PRODUCE, 8, false, &hdr, &len);
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, buf, len);
	longer[len] = 0;
	cr_assert_not(split_raw(longer, len + 1, hdr, 8, 2, &p));
	cr_assert_eq(p.err, KP_ERR_TRAILING, "%s", kp_error_name(p.err));

	cr_assert_not(split_raw(buf, len, hdr, 8, 1, &p), "routes[0] sends to destination 1 of 1");
	cr_assert_eq(p.err, KP_ERR_BAD_VALUE);
	cr_assert_str_eq(p.err_field, "destination");

	size_t records_len_at = hdr + 7 + 2 + 4 + 4 + 8 + 4 + 4;
	cr_assert_eq(buf[records_len_at + 3], 250, "the vector's layout");
	memcpy(buf + records_len_at, "\xff\xff\xff\xfb", 4); /* -5 */
	cr_assert_not(split_raw(buf, len, hdr, 8, 2, &p));
	cr_assert_eq(p.err, KP_ERR_BAD_LENGTH);
	memcpy(buf + records_len_at, "\x7f\xff\xff\xf0", 4); /* beyond the frame */
	cr_assert_not(split_raw(buf, len, hdr, 8, 2, &p));
	cr_assert_eq(p.err, KP_ERR_TRUNCATED);
	memcpy(buf + records_len_at, "\x00\x00\x00\xfa", 4); /* 250 again */
	cr_assert(split_raw(buf, len, hdr, 8, 2, &p));
	memcpy(buf + records_len_at - 8, "\x7f\xff\xff\xff", 4); /* PartitionData count beyond the frame */
	cr_assert_not(split_raw(buf, len, hdr, 8, 2, &p));
	cr_assert_eq(p.err, KP_ERR_TRUNCATED);
	free(longer);
	free(buf);
	kp_arena_free(&a);
}

Test(refsplit, the_split_struct_is_reused_across_requests_and_destination_counts)
{
	fill_records();
	struct kp_arena a;
	size_t len, hdr;
	kp_arena_init(&a, 0);
	uint8_t *buf = frame(produce_request(&a, 12), true, KP_API_PRODUCE, 12, true, &hdr, &len);
	struct iovec iov = {buf, len};
	struct kp_produce_split s;
	kp_produce_split_init(&s);
	for (int round = 0; round < 4; round++) {
		const struct routes *r = &routes[round % 2 ? 1 : 0];
		struct route_arg ra = {r, 0};
		struct kp_pieces p;
		kp_pieces_init(&p, &iov, 1, len);
		cr_assert(kp_pieces_skip(&p, hdr, "header"));
		cr_assert(kp_produce_split(&s, &p, 12, true, r->ndest, route, &ra));
		size_t parts = s.nkept;
		for (int d = 0; d < s.ndest; d++)
			parts += s.dest[d].nparts;
		cr_assert_eq(parts, 7, "round %d: every partition once", round);
	}
	kp_produce_split_free(&s);
	free(buf);
	kp_arena_free(&a);
}

/* ---- Fetch response merge -------------------------------------------------- */

/* A partition of a Fetch response in the model: (topic, ordinal). */
struct tp {
	int t, p;
};

static int64_t hw_of(int t, int p)
{
	return 1000 + 10 * t + p;
}

static bool same_tp(struct tp a, int t, int p)
{
	return a.t == t && a.p == p;
}

/* An error_watch: OFFSET_OUT_OF_RANGE (1), the one error the model's partitions carry (orders p3). */
static bool watch_offset_out_of_range(int16_t code)
{
	return code == 1;
}

/*
 * A broker's answer holding the partitions tps[0..n) (grouped by topic as
 * listed), with every field set from the model: orders p0 has an aborted
 * transaction and a DivergingEpoch, orders p1 a CurrentLeader, audit p1 a
 * CurrentLeader and an unknown tag, orders p3 an error and a preferred read
 * replica; orders has a topic tag, and the top level NodeEndpoints (v16+)
 * and an unknown tag.
 */
static struct kp_struct *fetch_response(struct kp_arena *a, int16_t ver, int32_t throttle, int16_t error_code,
                                        const struct tp *tps, int n)
{
	const struct kp_schema *topic = sub(&kp_fetch_response, KP_FETCH_RESP_RESPONSES);
	const struct kp_schema *part = sub(topic, KP_FETCH_RESP_TOPIC_PARTITIONS);
	struct kp_struct *st = new_struct(a, &kp_fetch_response, ver);
	st->v[KP_FETCH_RESP_THROTTLE_TIME_MS].i = throttle;
	st->v[KP_FETCH_RESP_ERROR_CODE].i = error_code;
	st->v[KP_FETCH_RESP_SESSION_ID].i = 12345; /* the merge answers sessionless: 0 */
	int ntopics = 0;
	for (int i = 0; i < n; i++)
		ntopics += i == 0 || tps[i].t != tps[i - 1].t;
	list(a, &st->v[KP_FETCH_RESP_RESPONSES], ntopics);
	for (int i = 0, k = -1; i < n; i++) {
		int t = tps[i].t, p = tps[i].p;
		struct kp_struct *ts;
		if (i == 0 || t != tps[i - 1].t) {
			int run = 1;
			while (i + run < n && tps[i + run].t == t)
				run++;
			ts = new_struct(a, topic, ver);
			ts->v[KP_FETCH_TOPIC_TOPIC].s = str(names[t]);
			ts->v[KP_FETCH_TOPIC_TOPIC_ID].s = (struct kp_span){ids[t], 16};
			list(a, &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS], run);
			ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.cnt = 0;
			if (t == 0)
				unknown_tag(a, ts, 6, "topic tag");
			st->v[KP_FETCH_RESP_RESPONSES].a.items[++k].st = ts;
		}
		ts = st->v[KP_FETCH_RESP_RESPONSES].a.items[k].st;
		struct kp_struct *ps = new_struct(a, part, ver);
		ps->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i = idx(t, p);
		ps->v[KP_FETCH_RESP_PART_ERROR_CODE].i = t == 0 && p == 3 ? 1 : 0;
		ps->v[KP_FETCH_RESP_PART_HIGH_WATERMARK].i = hw_of(t, p);
		ps->v[kp_field_index(part, "LastStableOffset")].i = 900 + 10 * t + p;
		ps->v[kp_field_index(part, "LogStartOffset")].i = 50 + 10 * t + p;
		struct kp_value *aborted = &ps->v[KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS];
		list(a, aborted, t == 0 && p == 0 ? 1 : 0);
		if (t == 0 && p == 0) {
			struct kp_struct *at = new_struct(a, sub(part, KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS), ver);
			at->v[0].i = 77;
			at->v[1].i = 880;
			aborted->a.items[0].st = at;
		}
		ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = t == 0 && p == 3 ? 2 : -1;
		ps->v[KP_FETCH_RESP_PART_RECORDS].s = rspan(t, p);
		if (t == 0 && p == 0) {
			int de = kp_field_index(part, "DivergingEpoch");
			struct kp_struct *e = new_struct(a, sub(part, de), ver);
			e->v[0].i = 4;
			e->v[1].i = 870;
			ps->v[de] = (struct kp_value){.st = e, .present = true};
		}
		if ((t == 0 && p == 1) || (t == 1 && p == 1)) {
			struct kp_struct *l = new_struct(a, sub(part, KP_FETCH_RESP_PART_CURRENT_LEADER), ver);
			l->v[KP_FETCH_LEADER_ID].i = 2;
			l->v[KP_FETCH_LEADER_EPOCH].i = 9;
			ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER] = (struct kp_value){.st = l, .present = true};
		}
		if (t == 1 && p == 1)
			unknown_tag(a, ps, 9, "u9");
		ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.items[ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS].a.cnt++].st = ps;
	}
	if (ver >= 16) {
		const struct kp_schema *ep = sub(&kp_fetch_response, KP_FETCH_RESP_NODE_ENDPOINTS);
		struct kp_value *nv = &st->v[KP_FETCH_RESP_NODE_ENDPOINTS];
		nv->present = true;
		list(a, nv, 1);
		struct kp_struct *e = new_struct(a, ep, ver);
		e->v[KP_FETCH_ENDPOINT_NODE_ID].i = 2;
		e->v[KP_FETCH_ENDPOINT_HOST].s = str("kafka-2");
		e->v[KP_FETCH_ENDPOINT_PORT].i = 9092;
		nv->a.items[0].st = e;
	}
	unknown_tag(a, st, 8, "top");
	return st;
}

/* A part: the framed response, where its body starts, and its pieces. */
struct part {
	uint8_t *buf;
	size_t len, hdr;
	struct pieces pc;
	struct kp_pieces p;
};

enum cutting { AWKWARD, ONE_BYTE, WHOLE };

static void part_make(struct part *pt, struct kp_arena *a, int16_t ver, int32_t throttle, int16_t error_code,
                      const struct tp *tps, int n, enum cutting how)
{
	size_t none = 0;
	bool flexible = kp_api_flexible(kp_api_get(KP_API_FETCH), ver);
	pt->buf = frame(fetch_response(a, ver, throttle, error_code, tps, n), false, KP_API_FETCH, ver, flexible,
	                &pt->hdr, &pt->len);
	if (how == ONE_BYTE)
		pt->pc = cut_bytes(pt->buf, pt->len);
	else if (how == WHOLE)
		pt->pc = cut(pt->buf, pt->len, &none, 0);
	else
		pt->pc = cut_awkwardly(&kp_walk_fetch_response, ver, flexible, pt->buf, pt->len, pt->hdr);
	kp_pieces_init(&pt->p, pt->pc.iov, pt->pc.n, pt->pc.len);
	cr_assert(kp_pieces_skip(&pt->p, pt->hdr, "header"));
}

static void part_free(struct part *pt)
{
	pieces_free(&pt->pc);
	free(pt->buf);
}

/* Part 0 holds orders p1, p3, audit p0 and metrics p0 (nobody asks for metrics); part 1 holds
 * audit p1, orders p0 and orders "p9" (nobody asks for it); part 2, absent, would hold orders p2. */
static const struct tp part0[] = {{0, 1}, {0, 3}, {1, 0}, {2, 0}};
static const struct tp part1[] = {{1, 1}, {0, 0}, {0, 9}};

static struct kp_fetch_want want(int16_t ver, int t, int p)
{
	if (ver >= 13)
		return (struct kp_fetch_want){ids[t], 16, idx(t, p)};
	return (struct kp_fetch_want){(const uint8_t *)names[t], strlen(names[t]), idx(t, p)};
}

/* Which part holds (t, p), and where in it (walk order), or -1. */
static int holder(int t, int p, int *at)
{
	for (*at = 0; *at < (int)(sizeof(part0) / sizeof(part0[0])); (*at)++)
		if (same_tp(part0[*at], t, p))
			return 0;
	for (*at = 0; *at < (int)(sizeof(part1) / sizeof(part1[0])); (*at)++)
		if (same_tp(part1[*at], t, p))
			return 1;
	return -1;
}

static void check_found_partition(const struct kp_struct *ps, int16_t ver, int t, int p, const char *what)
{
	const struct kp_schema *part = ps->schema;
	cr_assert_eq(ps->v[KP_FETCH_RESP_PART_ERROR_CODE].i, t == 0 && p == 3 ? 1 : 0, "%s", what);
	cr_assert_eq(ps->v[KP_FETCH_RESP_PART_HIGH_WATERMARK].i, hw_of(t, p), "%s", what);
	if (ver >= 4) {
		cr_assert_eq(field(ps, "LastStableOffset")->i, 900 + 10 * t + p, "%s", what);
		const struct kp_value *aborted = &ps->v[KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS];
		cr_assert_eq(aborted->a.cnt, t == 0 && p == 0 ? 1 : 0, "%s", what);
		if (aborted->a.cnt == 1) {
			cr_assert_eq(item(aborted, 0)->v[0].i, 77, "%s", what);
			cr_assert_eq(item(aborted, 0)->v[1].i, 880, "%s", what);
		}
	}
	if (ver >= 5)
		cr_assert_eq(field(ps, "LogStartOffset")->i, 50 + 10 * t + p, "%s", what);
	if (ver >= 11) /* orders p3's part named replica 2: a real id, answered as none */
		cr_assert_eq(ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i, -1, "%s", what);
	struct kp_span rec = ps->v[KP_FETCH_RESP_PART_RECORDS].s;
	cr_assert_eq(rec.len, rlen(t, p), "%s: %d record bytes", what, rec.len);
	if (rec.len > 0)
		cr_assert_arr_eq(rec.ptr, records[t][p], (size_t)rec.len, "%s", what);
	if (ver < 12)
		return;
	cr_assert_not(ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER].present, "%s: CurrentLeader is dropped", what);
	const struct kp_value *de = &ps->v[kp_field_index(part, "DivergingEpoch")];
	cr_assert_eq(de->present, t == 0 && p == 0, "%s: DivergingEpoch is kept", what);
	if (de->present) {
		cr_assert_eq(de->st->v[0].i, 4, "%s", what);
		cr_assert_eq(de->st->v[1].i, 870, "%s", what);
	}
	if (t == 1 && p == 1)
		check_unknown_tag(ps, 9, "u9", what);
	else
		cr_assert_eq(ps->unknown_cnt, 0, "%s", what);
}

static void check_missing_partition(const struct kp_struct *ps, int16_t ver, int16_t error_code, const char *what)
{
	cr_assert_eq(ps->v[KP_FETCH_RESP_PART_ERROR_CODE].i, error_code, "%s", what);
	cr_assert_eq(ps->v[KP_FETCH_RESP_PART_HIGH_WATERMARK].i, -1, "%s", what);
	if (ver >= 4) {
		cr_assert_eq(field(ps, "LastStableOffset")->i, -1, "%s", what);
		cr_assert_eq(ps->v[KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS].a.cnt, -1, "%s: no aborted transactions",
		             what);
	}
	if (ver >= 5)
		cr_assert_eq(field(ps, "LogStartOffset")->i, -1, "%s", what);
	if (ver >= 11)
		cr_assert_eq(ps->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i, -1, "%s", what);
	cr_assert_eq(ps->v[KP_FETCH_RESP_PART_RECORDS].s.len, 0, "%s: empty records", what);
	if (ver >= 12)
		cr_assert_not(ps->v[KP_FETCH_RESP_PART_CURRENT_LEADER].present, "%s", what);
}

/* The client's orders: topics interleaved, partitions shuffled, a partition nobody holds (orders
 * p2), a topic nobody holds (ghost), and a topic asked for in two runs. */
static const struct tp order_a[] = {{1, 1}, {1, 0}, {0, 2}, {0, 0}, {0, 3}, {0, 1}, {3, 0}};
static const struct tp order_b[] = {{0, 3}, {1, 0}, {0, 1}, {0, 2}, {1, 1}, {0, 0}};

static void check_merge(int16_t ver, const struct tp *order, int norder, enum cutting cutting, const char *how)
{
	bool flexible = kp_api_flexible(kp_api_get(KP_API_FETCH), ver);
	char what[160];
	struct kp_arena a;
	struct part pt[2];
	struct kp_fetch_want wants[16];
	struct kp_fetch_merge m;
	kp_arena_init(&a, 0);
	part_make(&pt[0], &a, ver, 17, 0, part0, 4, cutting);
	part_make(&pt[1], &a, ver, 5, 0, part1, 3, cutting);
	struct kp_pieces *parts[3] = {&pt[0].p, &pt[1].p, NULL};
	for (int i = 0; i < norder; i++)
		wants[i] = want(ver, order[i].t, order[i].p);
	snprintf(what, sizeof(what), "Fetch v%d, %s", ver, how);

	kp_fetch_merge_init(&m);
	m.error_watch = watch_offset_out_of_range;
	size_t part_records[3] = {7, 7, 7}; /* stale values: the merge sets every entry */
	m.part_records = part_records;
	cr_assert(kp_fetch_merge(&m, ver, flexible, wants, (size_t)norder, parts, 3, 6), "%s: part %d, %s at %s", what,
	          m.bad_part, kp_error_name(m.err), m.err_field);
	/* Each part's records over all it holds, wanted or not (part 1's orders p9 nobody asks for). */
	size_t held[2] = {0, 0};
	for (int i = 0; i < 4; i++)
		held[0] += rlen(part0[i].t, part0[i].p) > 0 ? (size_t)rlen(part0[i].t, part0[i].p) : 0;
	for (int i = 0; i < 3; i++)
		held[1] += rlen(part1[i].t, part1[i].p) > 0 ? (size_t)rlen(part1[i].t, part1[i].p) : 0;
	cr_assert(held[0] > 0 && held[1] > 0, "%s", what);
	cr_assert_eq(part_records[0], held[0], "%s: part 0 held %zu bytes of records", what, held[0]);
	cr_assert_eq(part_records[1], held[1], "%s: part 1 held %zu bytes of records", what, held[1]);
	cr_assert_eq(part_records[2], 0, "%s: an absent part held none", what);

	size_t len;
	uint8_t *out = kp_writer_flatten(&m.body, &len);
	struct kp_cursor c;
	kp_cursor_init(&c, out, len);
	const struct kp_struct *st = kp_decode(&a, &c, &kp_fetch_response, ver, flexible, -1);
	cr_assert_not_null(st, "%s: the merge does not decode: %s at %s", what, kp_error_name(c.err), c.err_field);
	cr_assert_eq(kp_cursor_left(&c), 0, "%s: trailing bytes", what);
	if (ver >= 1)
		cr_assert_eq(st->v[KP_FETCH_RESP_THROTTLE_TIME_MS].i, 17, "%s: the longest throttle", what);
	if (ver >= 7) {
		cr_assert_eq(st->v[KP_FETCH_RESP_ERROR_CODE].i, 0, "%s", what);
		cr_assert_eq(st->v[KP_FETCH_RESP_SESSION_ID].i, 0, "%s: sessionless", what);
	}
	cr_assert_not(st->v[KP_FETCH_RESP_NODE_ENDPOINTS].present, "%s: NodeEndpoints dropped", what);
	cr_assert_eq(st->unknown_cnt, 0, "%s: top-level tags dropped", what);

	/* Topics: one per run of the client's order; partitions in its order. */
	const struct kp_value *topics = &st->v[KP_FETCH_RESP_RESPONSES];
	size_t referenced = 0, nrefs = 0, found = 0, missing = 0, dropped = 0, watched = 0;
	int k = 0, i = 0;
	for (; i < norder; k++) {
		const struct kp_struct *ts = item(topics, k);
		int t = order[i].t;
		if (ver >= 13)
			cr_assert_arr_eq(ts->v[KP_FETCH_TOPIC_TOPIC_ID].s.ptr, ids[t], 16, "%s: topic %d", what, k);
		else
			cr_assert(span_is(ts->v[KP_FETCH_TOPIC_TOPIC].s, names[t]), "%s: topic %d is %s", what, k,
			          names[t]);
		cr_assert_eq(ts->unknown_cnt, 0, "%s: topic tags dropped", what);
		const struct kp_value *ps = &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS];
		int n = 0;
		for (; i < norder && order[i].t == t; i++, n++) {
			char pwhat[200];
			int p = order[i].p, at;
			const struct kp_struct *pd = item(ps, n);
			snprintf(pwhat, sizeof(pwhat), "%s, %s p%d", what, names[t], p);
			cr_assert_eq(pd->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i, idx(t, p), "%s", pwhat);
			int h = holder(t, p, &at);
			if (h < 0) {
				check_missing_partition(pd, ver, 6, pwhat);
				missing++;
				continue;
			}
			check_found_partition(pd, ver, t, p, pwhat);
			found++;
			dropped += ver >= 11 && t == 0 && p == 3;
			watched += t == 0 && p == 3; /* its error, 1 */
			struct found f = records_of(&kp_walk_fetch_response, ver, flexible, pt[h].buf, pt[h].len,
			                            pt[h].hdr);
			size_t n_rec = rlen(t, p) > 0 ? (size_t)rlen(t, p) : 0;
			referenced += n_rec;
			nrefs += pieces_spanned(&pt[h].pc, f.at[at], n_rec);
		}
		cr_assert_eq(ps->a.cnt, n, "%s: topic %d has %d partitions", what, k, ps->a.cnt);
	}
	cr_assert_eq(topics->a.cnt, k, "%s: %d topics", what, topics->a.cnt);
	cr_assert_eq(m.found, found, "%s", what);
	cr_assert_eq(m.missing, missing, "%s", what);
	cr_assert_eq(m.preferred_dropped, dropped, "%s", what);
	cr_assert_eq(m.watched, watched, "%s: partitions with a watched error (missing ones are not counted)", what);
	cr_assert_eq(m.referenced, referenced, "%s", what);
	cr_assert_eq(m.owned + m.referenced, len, "%s", what);
	const struct pieces *pcs[2] = {&pt[0].pc, &pt[1].pc};
	check_references(&m.body, pcs, 2, referenced, nrefs, what);
	cr_assert_leq(m.owned, 16 + 24 * (size_t)k + 80 * (size_t)norder, "%s: %zu bytes written", what, m.owned);

	free(out);
	kp_fetch_merge_free(&m);
	part_free(&pt[0]);
	part_free(&pt[1]);
	kp_arena_free(&a);
}

Test(refsplit, fetch_answers_are_merged_in_client_order_with_records_referenced_at_every_version)
{
	fill_records();
	for (int16_t ver = 0; ver <= 18; ver++) {
		check_merge(ver, order_a, 7, AWKWARD, "order a, awkward pieces");
		check_merge(ver, order_b, 6, AWKWARD, "order b (topics in several runs), awkward pieces");
		check_merge(ver, order_a, 7, ONE_BYTE, "order a, one-byte pieces");
		check_merge(ver, order_b, 6, WHOLE, "order b, one piece each");
	}
}

Test(refsplit, the_merge_takes_the_first_top_level_error_and_the_first_part_holding_a_partition)
{
	fill_records();
	struct kp_arena a;
	struct part pt[3];
	struct kp_fetch_merge m;
	kp_arena_init(&a, 0);
	/* v11: part 0 is fine; parts 1 and 2 failed at the top (58, then 3); part 1 and part 0 both hold
	 * orders p0: part 0's wins, whatever the parts say at the top. */
	static const struct tp holds0[] = {{0, 0}}, holds1[] = {{0, 0}, {0, 1}};
	part_make(&pt[0], &a, 11, 0, 0, holds0, 1, WHOLE);
	part_make(&pt[1], &a, 11, 100, 58, holds1, 2, WHOLE);
	part_make(&pt[2], &a, 11, 200, 3, NULL, 0, WHOLE);
	struct kp_pieces *parts[3] = {&pt[0].p, &pt[1].p, &pt[2].p};
	struct kp_fetch_want wants[] = {want(11, 0, 1), want(11, 0, 0), want(11, 0, 0)};
	kp_fetch_merge_init(&m);
	cr_assert(kp_fetch_merge(&m, 11, false, wants, 3, parts, 3, 6));
	size_t len;
	uint8_t *out = kp_writer_flatten(&m.body, &len);
	struct kp_cursor c;
	kp_cursor_init(&c, out, len);
	const struct kp_struct *st = kp_decode(&a, &c, &kp_fetch_response, 11, false, -1);
	cr_assert_not_null(st);
	cr_assert_eq(st->v[KP_FETCH_RESP_THROTTLE_TIME_MS].i, 200);
	cr_assert_eq(st->v[KP_FETCH_RESP_ERROR_CODE].i, 58, "the first non-zero top-level error");
	const struct kp_struct *ts = item(&st->v[KP_FETCH_RESP_RESPONSES], 0);
	cr_assert_eq(st->v[KP_FETCH_RESP_RESPONSES].a.cnt, 1);
	const struct kp_value *ps = &ts->v[KP_FETCH_RESP_TOPIC_PARTITIONS];
	cr_assert_eq(ps->a.cnt, 3);
	cr_assert_eq(item(ps, 0)->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i, idx(0, 1));
	for (int i = 1; i < 3; i++) {
		/* Asked for twice: answered twice, both times from part 0 (its records, not part 1's). */
		struct kp_span rec = item(ps, i)->v[KP_FETCH_RESP_PART_RECORDS].s;
		cr_assert_eq(item(ps, i)->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i, idx(0, 0));
		cr_assert_eq(rec.len, 250);
		cr_assert(rec.ptr >= out && rec.ptr < out + len);
	}
	cr_assert_eq(m.found, 3);
	cr_assert_eq(m.missing, 0);
	/* orders p1 (61 bytes, part 1) once, orders p0 (250 bytes, part 0) twice: one reference each. */
	cr_assert_eq(m.referenced, 61 + 2 * 250);
	const struct pieces *from[3] = {&pt[1].pc, &pt[0].pc, &pt[0].pc};
	const size_t sizes[3] = {61, 250, 250};
	size_t k = 0;
	for (size_t i = 0; i < m.body.nsegs; i++) {
		if (!m.body.segs[i].ref)
			continue;
		cr_assert_lt(k, 3);
		cr_assert_eq(m.body.segs[i].len, sizes[k], "reference %zu: %zu bytes", k, m.body.segs[i].len);
		cr_assert(in_pieces(&from[k], 1, m.body.segs[i].ref, sizes[k]), "reference %zu from the wrong part", k);
		k++;
	}
	cr_assert_eq(k, 3);
	free(out);
	kp_fetch_merge_free(&m);
	for (int i = 0; i < 3; i++)
		part_free(&pt[i]);
	kp_arena_free(&a);
}

Test(refsplit, no_parts_at_all_answers_every_partition_with_the_callers_error)
{
	struct kp_arena a;
	struct kp_fetch_merge m;
	kp_arena_init(&a, 0);
	struct kp_fetch_want wants[] = {want(16, 0, 0), want(16, 0, 1), want(16, 3, 0)};
	struct kp_pieces *parts[2] = {NULL, NULL};
	kp_fetch_merge_init(&m);
	cr_assert(kp_fetch_merge(&m, 16, true, wants, 3, parts, 2, 15));
	size_t len;
	uint8_t *out = kp_writer_flatten(&m.body, &len);
	struct kp_cursor c;
	kp_cursor_init(&c, out, len);
	const struct kp_struct *st = kp_decode(&a, &c, &kp_fetch_response, 16, true, -1);
	cr_assert_not_null(st);
	cr_assert_eq(kp_cursor_left(&c), 0);
	cr_assert_eq(st->v[KP_FETCH_RESP_RESPONSES].a.cnt, 2);
	check_missing_partition(item(&item(&st->v[KP_FETCH_RESP_RESPONSES], 1)->v[KP_FETCH_RESP_TOPIC_PARTITIONS], 0),
	                        16, 15, "ghost p0");
	cr_assert_eq(m.missing, 3);
	cr_assert_eq(m.referenced, 0);
	cr_assert_eq(m.owned, len);
	free(out);
	kp_fetch_merge_free(&m);
	kp_arena_free(&a);
}

Test(refsplit, a_malformed_part_is_named_and_refused_and_a_bad_want_too)
{
	fill_records();
	static const int16_t versions[] = {4, 12, 16};
	for (size_t v = 0; v < sizeof(versions) / sizeof(versions[0]); v++) {
		int16_t ver = versions[v];
		bool flexible = ver >= 12;
		struct kp_arena a;
		struct part pt;
		struct kp_fetch_merge m;
		struct kp_fetch_want wants[] = {want(ver, 0, 0), want(ver, 1, 1)};
		kp_arena_init(&a, 0);
		kp_fetch_merge_init(&m);
		part_make(&pt, &a, ver, 0, 0, part1, 3, AWKWARD);
		/* Every cut-short body, in a buffer of its own. */
		for (size_t n = pt.hdr; n < pt.len; n++) {
			uint8_t *copy = malloc(n);
			memcpy(copy, pt.buf, n);
			struct iovec iov = {copy, n};
			struct kp_pieces p;
			kp_pieces_init(&p, &iov, 1, n);
			cr_assert(kp_pieces_skip(&p, pt.hdr, "header"));
			struct kp_pieces *parts[2] = {NULL, &p};
			cr_assert_not(kp_fetch_merge(&m, ver, flexible, wants, 2, parts, 2, 6), "v%d, %zu bytes", ver,
			              n);
			cr_assert_eq(m.bad_part, 1);
			cr_assert_eq(m.err, KP_ERR_TRUNCATED, "v%d, %zu bytes: %s", ver, n, kp_error_name(m.err));
			cr_assert_eq(p.err, KP_ERR_TRUNCATED);
			cr_assert_leq(p.pos, n);
			free(copy);
		}
		/* One byte too many. */
		uint8_t *longer = malloc(pt.len + 1);
		memcpy(longer, pt.buf, pt.len);
		longer[pt.len] = 0;
		struct iovec iov = {longer, pt.len + 1};
		struct kp_pieces p;
		kp_pieces_init(&p, &iov, 1, pt.len + 1);
		cr_assert(kp_pieces_skip(&p, pt.hdr, "header"));
		struct kp_pieces *parts[1] = {&p};
		cr_assert_not(kp_fetch_merge(&m, ver, flexible, wants, 2, parts, 1, 6));
		cr_assert_eq(m.bad_part, 0);
		cr_assert_eq(m.err, KP_ERR_TRAILING, "%s", kp_error_name(m.err));
		free(longer);
		part_free(&pt);
		kp_fetch_merge_free(&m);
		kp_arena_free(&a);
	}
	/* v13+ names topics by 16-byte ids. */
	struct kp_fetch_merge m;
	struct kp_fetch_want bad[] = {{(const uint8_t *)"orders", 6, 0}};
	kp_fetch_merge_init(&m);
	cr_assert_not(kp_fetch_merge(&m, 13, true, bad, 1, NULL, 0, 6));
	cr_assert_eq(m.bad_part, -1);
	cr_assert_eq(m.err, KP_ERR_BAD_VALUE);
	kp_fetch_merge_free(&m);
}

Test(refsplit, produce_acks_are_read_across_pieces_at_every_version_without_moving)
{
	fill_records();
	for (int16_t ver = 0; ver <= 13; ver++) {
		bool flexible = kp_api_flexible(kp_api_get(KP_API_PRODUCE), ver);
		struct kp_arena a;
		size_t len, hdr;
		kp_arena_init(&a, 0);
		struct kp_struct *st = produce_request(&a, ver);
		st->v[KP_PRODUCE_REQ_ACKS].i = ver % 2 ? 0 : -1;
		uint8_t *buf = frame(st, true, KP_API_PRODUCE, ver, flexible, &hdr, &len);
		struct pieces ones = cut_bytes(buf, len);
		struct kp_pieces p;
		kp_pieces_init(&p, ones.iov, ones.n, len);
		cr_assert(kp_pieces_skip(&p, hdr, "header"));
		int16_t acks = 99;
		cr_assert(kp_produce_acks(&p, ver, flexible, &acks), "v%d: %s", ver, kp_error_name(p.err));
		cr_assert_eq(acks, ver % 2 ? 0 : -1, "v%d", ver);
		cr_assert_eq(p.pos, hdr, "v%d: the pieces moved", ver);
		/* Cut short before Acks' second byte: truncated, never read past. */
		size_t acks_end = hdr + 2 + (ver >= 3 ? (flexible ? 1 : 2) + 5 : 0);
		struct kp_pieces shortp;
		kp_pieces_init(&shortp, ones.iov, ones.n, acks_end - 1);
		cr_assert(kp_pieces_skip(&shortp, hdr, "header"));
		cr_assert_not(kp_produce_acks(&shortp, ver, flexible, &acks), "v%d", ver);
		cr_assert_eq(shortp.err, KP_ERR_TRUNCATED, "v%d: %s", ver, kp_error_name(shortp.err));
		pieces_free(&ones);
		free(buf);
		kp_arena_free(&a);
	}
}
