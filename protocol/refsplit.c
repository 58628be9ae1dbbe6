/*
 * refsplit: the Produce split and the Fetch merge of regional mode (see
 * refsplit.h). Each works in two passes over the pieces:
 *
 *   1. walk (walk.c): note every topic's and partition's byte ranges, and
 *      where each goes (Produce: the caller's route) or comes from (Fetch: the
 *      part that holds a wanted partition). Counts are learnt here.
 *   2. emit: write the structure (counts, keys, fixed fields) as owned bytes
 *      and reference the records in place. Produce emits in the order of the
 *      input, with one locator moving forward; Fetch emits in the client's
 *      order, from a locator saved at each partition in pass 1.
 *
 * A locator is a struct kp_pieces: moving it costs the pieces it crosses.
 */
#include "refsplit.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "messages.h"

/* What pass 1 of the Produce split notes of a partition and a topic. */
struct kp_split_part {
	int dest; /* -1: kept */
	int32_t index;
	size_t start, records_at, records_end, end;
};

struct kp_split_topic {
	uint32_t ordinal;
	size_t start, parts_at, tags_at, end;
	size_t first, nparts; /* its partitions in the split's parts[] */
};

/* What the Fetch merge notes of a wanted partition (slot) and of the part holding it (src). */
struct kp_merge_slot {
	const uint8_t *key;
	size_t key_len;
	int32_t index;
	uint32_t want; /* its place in the client's order */
	uint32_t rep;  /* the first slot of equal wants (a partition asked for twice) */
	int32_t src;   /* in srcs[], -1: no part holds it (yet) */
};

struct kp_merge_src {
	struct kp_pieces at; /* a locator at the partition's start */
	size_t start, records_at, records_end, tags_at, end;
	size_t preferred_at; /* PreferredReadReplica's 4 bytes when the part named one (>= 0); else SIZE_MAX */
	int16_t error_code;
};

/* ---- pieces to writer ----------------------------------------------------- */

/* Grows *arr (of elements of size sz) to hold n + 1; false on no memory. */
static bool kp_reserve(void *arr, size_t *cap, size_t n, size_t sz)
{
	void **a = arr;
	if (n < *cap)
		return true;
	size_t ncap = *cap ? *cap * 2 : 16;
	if (ncap > SIZE_MAX / sz)
		return false;
	void *na = realloc(*a, ncap * sz);
	if (!na)
		return false;
	*a = na;
	*cap = ncap;
	return true;
}

static bool kp_fail(struct kp_pieces *p, enum kp_error err, const char *field)
{
	if (p->err == KP_OK) {
		p->err = err;
		p->err_field = field;
	}
	return false;
}

/* Moves the locator forward to pos (never back). */
static bool kp_seek(struct kp_pieces *loc, size_t pos)
{
	if (pos < loc->pos)
		return kp_fail(loc, KP_ERR_BAD_VALUE, "locator");
	return kp_pieces_skip(loc, pos - loc->pos, "locator");
}

/* Writes the n bytes at the locator (which stays where it is): copied, or referenced where they lie. */
static bool kp_emit(struct kp_writer *w, struct kp_pieces at, size_t n, bool by_ref)
{
	if (n > at.len - at.pos)
		return false;
	while (n) {
		if (at.idx >= at.n)
			return false;
		const struct iovec *v = &at.iov[at.idx];
		size_t here = v->iov_len - at.off;
		size_t m = n < here ? n : here;
		const uint8_t *src = (const uint8_t *)v->iov_base + at.off;
		if (by_ref)
			kp_write_ref(w, src, m);
		else
			kp_write_raw(w, src, m);
		at.off += m;
		n -= m;
		if (at.off == v->iov_len) {
			at.idx++;
			at.off = 0;
		}
	}
	return true;
}

/* Writes the bytes [from, to) of the pieces, moving loc to from first. */
static bool kp_emit_range(struct kp_writer *w, struct kp_pieces *loc, size_t from, size_t to, bool by_ref)
{
	return kp_seek(loc, from) && kp_emit(w, *loc, to - from, by_ref);
}

/* ---- Produce request split ------------------------------------------------ */

void kp_produce_split_init(struct kp_produce_split *s)
{
	memset(s, 0, sizeof(*s));
}

static void kp_produce_split_dests_free(struct kp_produce_split *s)
{
	for (int d = 0; d < s->ndest; d++) {
		kp_writer_free(&s->dest[d].body);
		free(s->dest[d].parts);
	}
	free(s->dest);
	free(s->count);
	s->dest = NULL;
	s->count = NULL;
	s->ndest = 0;
}

void kp_produce_split_free(struct kp_produce_split *s)
{
	kp_produce_split_dests_free(s);
	free(s->kept);
	free(s->topics);
	free(s->parts);
	memset(s, 0, sizeof(*s));
}

/* ndest destinations, each empty. */
static bool kp_produce_split_dests(struct kp_produce_split *s, int ndest)
{
	if (ndest != s->ndest) {
		kp_produce_split_dests_free(s);
		if (ndest > 0) {
			s->dest = calloc((size_t)ndest, sizeof(*s->dest));
			s->count = calloc((size_t)ndest * 3, sizeof(*s->count));
			if (!s->dest || !s->count) {
				kp_produce_split_dests_free(s);
				return false;
			}
			for (int d = 0; d < ndest; d++)
				kp_writer_init(&s->dest[d].body);
		}
		s->ndest = ndest;
	}
	for (int d = 0; d < ndest; d++) {
		kp_writer_reset(&s->dest[d].body);
		s->dest[d].nparts = 0;
	}
	if (ndest > 0)
		memset(s->count, 0, (size_t)ndest * 3 * sizeof(*s->count));
	s->nkept = s->ntopics = s->nparts = 0;
	return true;
}

struct kp_split_walk {
	struct kp_produce_split *s;
	struct kp_pieces *p;
	kp_produce_route_fn route;
	void *arg;
};

static bool kp_split_on_partition(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct kp_split_walk *sw = arg;
	struct kp_produce_split *s = sw->s;
	int d = sw->route(sw->arg, t, part->index);
	if (d < -1 || d >= s->ndest)
		return kp_fail(sw->p, KP_ERR_BAD_VALUE, "destination");
	if (!kp_reserve(&s->parts, &s->parts_cap, s->nparts, sizeof(*s->parts)))
		return kp_fail(sw->p, KP_ERR_NOMEM, "partitions");
	s->parts[s->nparts++] = (struct kp_split_part){
	    .dest = d,
	    .index = part->index,
	    .start = part->start,
	    .records_at = part->records_at,
	    .records_end = part->records_at + (part->records_len > 0 ? (size_t)part->records_len : 0),
	    .end = part->end,
	};
	return true;
}

static bool kp_split_on_topic(void *arg, const struct kp_walk_topic *t)
{
	struct kp_split_walk *sw = arg;
	struct kp_produce_split *s = sw->s;
	size_t first = s->ntopics ? s->topics[s->ntopics - 1].first + s->topics[s->ntopics - 1].nparts : 0;
	if (!kp_reserve(&s->topics, &s->topics_cap, s->ntopics, sizeof(*s->topics)))
		return kp_fail(sw->p, KP_ERR_NOMEM, "topics");
	s->topics[s->ntopics++] = (struct kp_split_topic){
	    .ordinal = t->ordinal,
	    .start = t->start,
	    .parts_at = t->parts_at,
	    .tags_at = t->tags_at,
	    .end = t->end,
	    .first = first,
	    .nparts = s->nparts - first,
	};
	return true;
}

static bool kp_split_carry(struct kp_produce_dest *dest, uint32_t topic, uint32_t partition, int32_t index)
{
	if (!kp_reserve(&dest->parts, &dest->parts_cap, dest->nparts, sizeof(*dest->parts)))
		return false;
	dest->parts[dest->nparts++] = (struct kp_part_ref){topic, partition, index};
	return true;
}

/* One topic: its key and partitions count opened in each destination it goes to, its partitions, its tags. */
static bool kp_split_emit_topic(struct kp_produce_split *s, struct kp_pieces *loc, const struct kp_split_topic *t,
                                bool flexible)
{
	uint32_t *count = s->count; /* [0, ndest): this topic's partitions per destination */
	const struct kp_split_part *parts = s->parts + t->first;
	for (size_t i = 0; i < t->nparts; i++)
		if (parts[i].dest >= 0)
			count[parts[i].dest]++;
	if (!kp_seek(loc, t->start))
		return false;
	struct kp_pieces key = *loc;
	for (size_t i = 0; i < t->nparts; i++) {
		const struct kp_split_part *sp = &parts[i];
		if (sp->dest < 0) {
			if (!kp_reserve(&s->kept, &s->kept_cap, s->nkept, sizeof(*s->kept)))
				return kp_fail(loc, KP_ERR_NOMEM, "kept");
			s->kept[s->nkept++] = (struct kp_part_ref){t->ordinal, (uint32_t)i, sp->index};
			continue;
		}
		struct kp_produce_dest *dest = &s->dest[sp->dest];
		struct kp_writer *w = &dest->body;
		if (dest->nparts == 0 || dest->parts[dest->nparts - 1].topic != t->ordinal) {
			if (!kp_emit(w, key, t->parts_at - t->start, false))
				return kp_fail(loc, KP_ERR_TRUNCATED, "TopicData");
			kp_write_len(w, flexible, true, (int32_t)count[sp->dest]);
		}
		if (!kp_split_carry(dest, t->ordinal, (uint32_t)i, sp->index))
			return kp_fail(loc, KP_ERR_NOMEM, "carried");
		if (!kp_emit_range(w, loc, sp->start, sp->records_at, false) ||
		    !kp_emit_range(w, loc, sp->records_at, sp->records_end, true) ||
		    !kp_emit_range(w, loc, sp->records_end, sp->end, false))
			return kp_fail(loc, KP_ERR_TRUNCATED, "PartitionData");
	}
	/* The topic's tags, once in each destination it went to. */
	if (!kp_seek(loc, t->tags_at))
		return false;
	for (size_t i = 0; i < t->nparts; i++) {
		int d = parts[i].dest;
		if (d < 0 || count[d] == 0)
			continue;
		count[d] = 0;
		if (!kp_emit(&s->dest[d].body, *loc, t->end - t->tags_at, false))
			return kp_fail(loc, KP_ERR_TRUNCATED, "_tagged_fields");
	}
	return true;
}

/* Pass 2: every destination's body, in the order of the input. */
static bool kp_split_emit(struct kp_produce_split *s, const struct kp_pieces *body, size_t topics_at, size_t tags_at,
                          size_t end, bool flexible)
{
	uint32_t *ntopics = s->count + s->ndest, *last = s->count + 2 * s->ndest; /* last: topic ordinal + 1 */
	struct kp_pieces loc = *body;
	for (size_t k = 0; k < s->ntopics; k++)
		for (size_t i = 0; i < s->topics[k].nparts; i++) {
			int d = s->parts[s->topics[k].first + i].dest;
			if (d >= 0 && last[d] != s->topics[k].ordinal + 1) {
				last[d] = s->topics[k].ordinal + 1;
				ntopics[d]++;
			}
		}
	for (int d = 0; d < s->ndest; d++) {
		if (!ntopics[d])
			continue;
		if (!kp_emit(&s->dest[d].body, loc, topics_at - body->pos, false))
			return kp_fail(&loc, KP_ERR_TRUNCATED, "ProduceRequest");
		kp_write_len(&s->dest[d].body, flexible, true, (int32_t)ntopics[d]);
	}
	for (size_t k = 0; k < s->ntopics; k++)
		if (!kp_split_emit_topic(s, &loc, &s->topics[k], flexible))
			return false;
	if (!kp_seek(&loc, tags_at))
		return false;
	for (int d = 0; d < s->ndest; d++) {
		struct kp_writer *w = &s->dest[d].body;
		if (ntopics[d] && !kp_emit(w, loc, end - tags_at, false))
			return kp_fail(&loc, KP_ERR_TRUNCATED, "_tagged_fields");
		kp_writer_finish(w);
		if (!kp_writer_ok(w))
			return kp_fail(&loc, KP_ERR_NOMEM, "ProduceRequest");
	}
	return true;
}

/* Where the TopicData array starts: after the fields before it. */
static bool kp_split_topics_at(struct kp_pieces *p, int16_t ver, bool flexible, size_t *at)
{
	const struct kp_schema *s = kp_walk_produce_request.body;
	struct kp_pieces q = *p;
	for (int i = 0; i < kp_walk_produce_request.topics; i++)
		if (kp_field_in_version(&s->fields[i], ver, false) && !kp_skip_field(&q, &s->fields[i], ver, flexible))
			return kp_fail(p, q.err, q.err_field);
	*at = q.pos;
	return true;
}

bool kp_produce_split(struct kp_produce_split *s, struct kp_pieces *p, int16_t ver, bool flexible, int ndest,
                      kp_produce_route_fn route, void *arg)
{
	struct kp_split_walk sw = {s, p, route, arg};
	const struct kp_walk_visitor v = {kp_split_on_partition, kp_split_on_topic, &sw};
	const struct kp_pieces body = *p;
	size_t topics_at, tags_at;
	uint32_t tags;

	if (ndest < 0 || !kp_produce_split_dests(s, ndest))
		return kp_fail(p, ndest < 0 ? KP_ERR_BAD_VALUE : KP_ERR_NOMEM, "destinations");
	if (!kp_split_topics_at(p, ver, flexible, &topics_at))
		return false;
	if (!kp_walk(p, &kp_walk_produce_request, ver, flexible, &v, &tags)) {
		if (p->err == KP_OK) /* a callback stopped it without saying why: not expected */
			kp_fail(p, KP_ERR_BAD_VALUE, "ProduceRequest");
		return false;
	}
	tags_at = p->pos;
	if (flexible && !kp_pieces_skip_tags(p))
		return false;
	if (p->pos != p->len)
		return kp_fail(p, KP_ERR_TRAILING, "ProduceRequest");
	if (!kp_split_emit(s, &body, topics_at, tags_at, p->len, flexible)) {
		/* The walk checked every range: only memory can fail here. */
		return kp_fail(p, KP_ERR_NOMEM, "ProduceRequest");
	}
	return true;
}

bool kp_produce_acks(struct kp_pieces *p, int16_t ver, bool flexible, int16_t *acks)
{
	const struct kp_schema *s = kp_walk_produce_request.body;
	struct kp_pieces q = *p;
	int64_t v;
	for (int i = 0; i < KP_PRODUCE_REQ_ACKS; i++)
		if (kp_field_in_version(&s->fields[i], ver, false) && !kp_skip_field(&q, &s->fields[i], ver, flexible))
			return kp_fail(p, q.err, q.err_field);
	if (!kp_pieces_int(&q, 2, &v, "Acks"))
		return kp_fail(p, q.err, q.err_field);
	*acks = (int16_t)v;
	return true;
}

/* ---- Fetch response merge ------------------------------------------------- */

void kp_fetch_merge_init(struct kp_fetch_merge *m)
{
	memset(m, 0, sizeof(*m));
	kp_writer_init(&m->body);
	m->bad_part = -1;
}

void kp_fetch_merge_free(struct kp_fetch_merge *m)
{
	kp_writer_free(&m->body);
	free(m->slots);
	free(m->slot_of);
	free(m->srcs);
	memset(m, 0, sizeof(*m));
	m->bad_part = -1;
}

static bool kp_merge_fail(struct kp_fetch_merge *m, int part, enum kp_error err, const char *field)
{
	m->bad_part = part;
	m->err = err;
	m->err_field = field;
	return false;
}

/* Orders slots by topic key (length, then bytes), then partition index. */
static int kp_merge_cmp(const uint8_t *key, size_t key_len, int32_t index, const struct kp_merge_slot *b)
{
	if (key_len != b->key_len)
		return key_len < b->key_len ? -1 : 1;
	int c = key_len ? memcmp(key, b->key, key_len) : 0;
	if (c)
		return c;
	return index < b->index ? -1 : index > b->index;
}

static int kp_merge_slot_cmp(const void *a, const void *b)
{
	const struct kp_merge_slot *x = a, *y = b;
	int c = kp_merge_cmp(x->key, x->key_len, x->index, y);
	return c ? c : (x->want < y->want ? -1 : x->want > y->want);
}

/* The slot of (key, index), or NULL. */
static struct kp_merge_slot *kp_merge_find(struct kp_fetch_merge *m, size_t nwant, const uint8_t *key,
                                           size_t key_len, int32_t index)
{
	size_t lo = 0, hi = nwant;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = kp_merge_cmp(key, key_len, index, &m->slots[mid]);
		if (c == 0)
			return &m->slots[m->slots[mid].rep];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

/* The wants, sorted for lookup; slot_of[] maps the client's order to them. */
static bool kp_merge_index(struct kp_fetch_merge *m, int16_t ver, const struct kp_fetch_want *want, size_t nwant)
{
	if (nwant > UINT32_MAX || nwant > INT32_MAX)
		return kp_merge_fail(m, -1, KP_ERR_BAD_VALUE, "wants");
	if (nwant > m->slots_cap) {
		struct kp_merge_slot *ns = realloc(m->slots, nwant * sizeof(*ns));
		if (!ns)
			return kp_merge_fail(m, -1, KP_ERR_NOMEM, "wants");
		m->slots = ns;
		m->slots_cap = nwant;
	}
	if (nwant > m->slot_of_cap) {
		uint32_t *no = realloc(m->slot_of, nwant * sizeof(*no));
		if (!no)
			return kp_merge_fail(m, -1, KP_ERR_NOMEM, "wants");
		m->slot_of = no;
		m->slot_of_cap = nwant;
	}
	for (size_t i = 0; i < nwant; i++) {
		if (ver >= 13 ? want[i].key_len != 16 : want[i].key_len > INT16_MAX)
			return kp_merge_fail(m, -1, KP_ERR_BAD_VALUE, "want key");
		m->slots[i] = (struct kp_merge_slot){want[i].key, want[i].key_len, want[i].index, (uint32_t)i, 0, -1};
	}
	if (nwant)
		qsort(m->slots, nwant, sizeof(*m->slots), kp_merge_slot_cmp);
	for (size_t i = 0; i < nwant; i++) {
		struct kp_merge_slot *sl = &m->slots[i];
		bool same = i > 0 && kp_merge_cmp(sl->key, sl->key_len, sl->index, &m->slots[i - 1]) == 0;
		sl->rep = same ? m->slots[i - 1].rep : (uint32_t)i;
		m->slot_of[sl->want] = (uint32_t)i;
	}
	return true;
}

struct kp_merge_walk {
	struct kp_fetch_merge *m;
	struct kp_pieces *p;
	struct kp_pieces loc; /* follows the walk, a partition behind */
	size_t nwant;
	size_t *records; /* the part's m->part_records entry, or NULL */
};

static bool kp_merge_on_partition(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct kp_merge_walk *mw = arg;
	struct kp_fetch_merge *m = mw->m;
	if (mw->records && part->records_len > 0)
		*mw->records += (size_t)part->records_len;
	if (t->key_len == 0) /* a null, empty or overlong name: no client asks for it */
		return true;
	struct kp_merge_slot *sl = kp_merge_find(m, mw->nwant, t->key, t->key_len, part->index);
	if (!sl || sl->src >= 0) /* not asked for, or an earlier part holds it */
		return true;
	if (!kp_seek(&mw->loc, part->start))
		return kp_fail(mw->p, KP_ERR_BAD_VALUE, "locator");
	if (!kp_reserve(&m->srcs, &m->srcs_cap, m->nsrcs, sizeof(*m->srcs)) || m->nsrcs >= INT32_MAX)
		return kp_fail(mw->p, KP_ERR_NOMEM, "partitions");
	m->srcs[m->nsrcs] = (struct kp_merge_src){
	    .at = mw->loc,
	    .start = part->start,
	    .records_at = part->records_at,
	    .records_end = part->records_at + (part->records_len > 0 ? (size_t)part->records_len : 0),
	    .tags_at = part->tags_at,
	    .end = part->end,
	    .preferred_at = part->preferred_read_replica >= 0 ? part->preferred_at : SIZE_MAX,
	    .error_code = part->error_code,
	};
	sl->src = (int32_t)m->nsrcs++;
	return true;
}

/* The top-level fields before Responses: ThrottleTimeMs (v1+), ErrorCode and SessionId (v7+). */
static bool kp_merge_top(struct kp_pieces *p, int16_t ver, int32_t *throttle, int16_t *error_code)
{
	const struct kp_schema *s = &kp_fetch_response;
	struct kp_pieces q = *p;
	*throttle = 0;
	*error_code = 0;
	for (int i = 0; i < KP_FETCH_RESP_RESPONSES; i++) {
		const struct kp_field *f = &s->fields[i];
		int64_t v;
		if (!kp_field_in_version(f, ver, false))
			continue;
		if (!kp_pieces_int(&q, kp_type_fixed_size(f->type), &v, f->name))
			return kp_fail(p, q.err, q.err_field);
		if (i == KP_FETCH_RESP_THROTTLE_TIME_MS)
			*throttle = (int32_t)v;
		else if (i == KP_FETCH_RESP_ERROR_CODE)
			*error_code = (int16_t)v;
	}
	return true;
}

/* Pass 1 over one part: its top-level fields, and where each wanted partition it holds lies. */
static bool kp_merge_walk_part(struct kp_fetch_merge *m, int j, struct kp_pieces *p, int16_t ver, bool flexible,
                               size_t nwant, int32_t *throttle, int16_t *error_code)
{
	struct kp_merge_walk mw = {m, p, *p, nwant, m->part_records ? &m->part_records[j] : NULL};
	const struct kp_walk_visitor v = {kp_merge_on_partition, NULL, &mw};
	if (!kp_merge_top(p, ver, throttle, error_code))
		return false;
	if (!kp_walk(p, &kp_walk_fetch_response, ver, flexible, &v, NULL)) {
		if (p->err == KP_OK)
			kp_fail(p, KP_ERR_BAD_VALUE, "FetchResponse");
		return false;
	}
	if (p->pos != p->len)
		return kp_fail(p, KP_ERR_TRAILING, "FetchResponse");
	return true;
}

/* A partition's tagged fields without CurrentLeader (tag 1), from the locator at their start. */
static bool kp_merge_emit_tags(struct kp_writer *w, const struct kp_pieces *at)
{
	struct kp_pieces q = *at;
	uint32_t n, kept = 0, tag, size;
	if (!kp_pieces_uvarint(&q, &n, "_tagged_fields"))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (!kp_pieces_uvarint(&q, &tag, "_tag") || !kp_pieces_uvarint(&q, &size, "_tag_size") ||
		    !kp_pieces_skip(&q, size, "_tag_data"))
			return false;
		kept += tag != 1;
	}
	kp_write_uvarint(w, kept);
	q = *at;
	if (!kp_pieces_uvarint(&q, &n, "_tagged_fields"))
		return false;
	for (uint32_t i = 0; i < n; i++) {
		if (!kp_pieces_uvarint(&q, &tag, "_tag") || !kp_pieces_uvarint(&q, &size, "_tag_size"))
			return false;
		if (tag != 1) {
			kp_write_uvarint(w, tag);
			kp_write_uvarint(w, size);
			if (!kp_emit(w, q, size, false))
				return false;
		}
		if (!kp_pieces_skip(&q, size, "_tag_data"))
			return false;
	}
	return true;
}

/* A wanted partition as its part wrote it: fields copied, records referenced, tags filtered. */
static bool kp_merge_emit_found(struct kp_writer *w, const struct kp_merge_src *src, bool flexible)
{
	struct kp_pieces loc = src->at;
	size_t head = src->start;
	if (src->preferred_at != SIZE_MAX) {
		/* A real broker's id: the client reads from whom it asked (-1). */
		if (!kp_emit_range(w, &loc, src->start, src->preferred_at, false))
			return false;
		kp_write_i32(w, -1);
		head = src->preferred_at + 4;
	}
	if (!kp_emit_range(w, &loc, head, src->records_at, false) ||
	    !kp_emit_range(w, &loc, src->records_at, src->records_end, true) ||
	    !kp_emit_range(w, &loc, src->records_end, src->tags_at, false) || !kp_seek(&loc, src->tags_at))
		return false;
	return !flexible || kp_merge_emit_tags(w, &loc);
}

/* The error partition every missing want is written from (only its index changes). */
static struct kp_struct *kp_merge_missing_part(struct kp_arena *a, int16_t ver, int16_t error_code)
{
	const struct kp_schema *s = kp_fetch_response.fields[KP_FETCH_RESP_RESPONSES]
	                                .sub->fields[KP_FETCH_RESP_TOPIC_PARTITIONS]
	                                .sub;
	struct kp_struct *st = kp_struct_new(a, s, ver);
	if (!st)
		return NULL;
	st->v[KP_FETCH_RESP_PART_ERROR_CODE].i = error_code;
	st->v[KP_FETCH_RESP_PART_HIGH_WATERMARK].i = -1;
	st->v[KP_FETCH_RESP_PART_ABORTED_TRANSACTIONS].a = (struct kp_list){NULL, ver >= 4 ? -1 : 0};
	st->v[KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA].i = -1;
	st->v[KP_FETCH_RESP_PART_RECORDS].s = (struct kp_span){NULL, 0};
	return st; /* LastStableOffset and LogStartOffset default to -1 */
}

static bool kp_merge_same_topic(const struct kp_fetch_want *a, const struct kp_fetch_want *b)
{
	return a->key_len == b->key_len && (a->key_len == 0 || memcmp(a->key, b->key, a->key_len) == 0);
}

/* Pass 2: the answer in the client's order. */
static bool kp_merge_emit(struct kp_fetch_merge *m, int16_t ver, bool flexible, const struct kp_fetch_want *want,
                          size_t nwant, int32_t throttle, int16_t error_code, int16_t missing_error)
{
	struct kp_writer *w = &m->body;
	struct kp_arena a;
	struct kp_struct *missing = NULL;
	size_t ntopics = 0;
	bool ok = true;

	kp_arena_init(&a, 0);
	if (ver >= 1)
		kp_write_i32(w, throttle);
	if (ver >= 7) {
		kp_write_i16(w, error_code);
		kp_write_i32(w, 0); /* SessionId: sessionless */
	}
	for (size_t i = 0; i < nwant; i++)
		ntopics += i == 0 || !kp_merge_same_topic(&want[i - 1], &want[i]);
	kp_write_len(w, flexible, true, (int32_t)ntopics);
	for (size_t i = 0, run; ok && i < nwant; i += run) {
		for (run = 1; i + run < nwant && kp_merge_same_topic(&want[i], &want[i + run]); run++)
			;
		if (ver >= 13)
			kp_write_raw(w, want[i].key, 16);
		else
			kp_write_string(w, flexible, (struct kp_span){want[i].key, (int32_t)want[i].key_len});
		kp_write_len(w, flexible, true, (int32_t)run);
		for (size_t k = i; ok && k < i + run; k++) {
			const struct kp_merge_slot *sl = &m->slots[m->slots[m->slot_of[k]].rep];
			if (sl->src >= 0) {
				ok = kp_merge_emit_found(w, &m->srcs[sl->src], flexible);
				m->found++;
				m->preferred_dropped += m->srcs[sl->src].preferred_at != SIZE_MAX;
				m->watched += m->error_watch && m->error_watch(m->srcs[sl->src].error_code);
				continue;
			}
			if (!missing && !(missing = kp_merge_missing_part(&a, ver, missing_error))) {
				ok = false;
				break;
			}
			missing->v[KP_FETCH_RESP_PART_PARTITION_INDEX].i = want[k].index;
			kp_encode(w, missing, ver, flexible, -1);
			m->missing++;
		}
		if (flexible)
			kp_write_uvarint(w, 0); /* the topic's tagged fields */
	}
	if (flexible)
		kp_write_uvarint(w, 0); /* top-level tagged fields: NodeEndpoints dropped */
	kp_writer_finish(w);
	kp_arena_free(&a);
	return ok && kp_writer_ok(w);
}

bool kp_fetch_merge(struct kp_fetch_merge *m, int16_t ver, bool flexible, const struct kp_fetch_want *want,
                    size_t nwant, struct kp_pieces *const *parts, int nparts, int16_t missing_error)
{
	int32_t throttle = 0;
	int16_t error_code = 0;

	kp_writer_reset(&m->body);
	m->owned = m->referenced = m->found = m->missing = m->preferred_dropped = m->watched = 0;
	m->throttled = 0;
	m->throttle_sum = 0;
	m->nsrcs = 0;
	m->bad_part = -1;
	m->err = KP_OK;
	m->err_field = NULL;
	if (!kp_merge_index(m, ver, want, nwant))
		return false;
	for (int j = 0; j < nparts; j++) {
		int32_t t;
		int16_t e;
		if (m->part_records)
			m->part_records[j] = 0;
		if (!parts[j])
			continue;
		if (!kp_merge_walk_part(m, j, parts[j], ver, flexible, nwant, &t, &e))
			return kp_merge_fail(m, j, parts[j]->err, parts[j]->err_field);
		throttle = t > throttle ? t : throttle;
		if (t > 0) {
			m->throttled++;
			m->throttle_sum += t;
		}
		error_code = error_code ? error_code : e;
	}
	if (!kp_merge_emit(m, ver, flexible, want, nwant, throttle, error_code, missing_error))
		return kp_merge_fail(m, -1, KP_ERR_NOMEM, "FetchResponse");
	m->referenced = kp_writer_referenced(&m->body);
	m->owned = kp_writer_size(&m->body) - m->referenced;
	return true;
}
