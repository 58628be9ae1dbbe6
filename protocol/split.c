/*
 * split: cut a request by partition, join the answers (split.h).
 *
 * The merge indexes each destination's response once (its partitions sorted
 * by topic key and partition index) and looks every client partition up in
 * the response of the destination that carried it: O(n log n) whatever
 * order the brokers answer in.
 */
#include "split.h"

#include <stdlib.h>
#include <string.h>

#include "messages.h"

/* ---- layouts ------------------------------------------------------------- */

const struct kp_split_layout kp_split_produce_request = {
    .body = &kp_produce_request,
    .topics = KP_PRODUCE_REQ_TOPIC_DATA,
    .topic_name = KP_PRODUCE_TOPIC_NAME,
    .topic_id = KP_PRODUCE_TOPIC_TOPIC_ID,
    .partitions = KP_PRODUCE_TOPIC_PARTITION_DATA,
    .index = KP_PRODUCE_PART_INDEX,
    .error_code = -1,
    .throttle_time_ms = -1,
};

const struct kp_split_layout kp_split_produce_response = {
    .body = &kp_produce_response,
    .topics = KP_PRODUCE_RESP_RESPONSES,
    .topic_name = KP_PRODUCE_TOPIC_NAME,
    .topic_id = KP_PRODUCE_TOPIC_TOPIC_ID,
    .partitions = KP_PRODUCE_RESP_TOPIC_PARTITION_RESPONSES,
    .index = KP_PRODUCE_RESP_PART_INDEX,
    .error_code = KP_PRODUCE_RESP_PART_ERROR_CODE,
    .throttle_time_ms = KP_PRODUCE_RESP_THROTTLE_TIME_MS,
};

const struct kp_split_layout kp_split_fetch_request = {
    .body = &kp_fetch_request,
    .topics = KP_FETCH_REQ_TOPICS,
    .topic_name = KP_FETCH_TOPIC_TOPIC,
    .topic_id = KP_FETCH_TOPIC_TOPIC_ID,
    .partitions = KP_FETCH_TOPIC_PARTITIONS,
    .index = KP_FETCH_PART_PARTITION,
    .error_code = -1,
    .throttle_time_ms = -1,
};

/* Records by reference, like every string of a decoded tree; top-level
 * ErrorCode and SessionId come from the first present response (split
 * fetches are sessionless, so SessionId is 0). */
const struct kp_split_layout kp_split_fetch_response = {
    .body = &kp_fetch_response,
    .topics = KP_FETCH_RESP_RESPONSES,
    .topic_name = KP_FETCH_TOPIC_TOPIC,
    .topic_id = KP_FETCH_TOPIC_TOPIC_ID,
    .partitions = KP_FETCH_RESP_TOPIC_PARTITIONS,
    .index = KP_FETCH_RESP_PART_PARTITION_INDEX,
    .error_code = KP_FETCH_RESP_PART_ERROR_CODE,
    .throttle_time_ms = KP_FETCH_RESP_THROTTLE_TIME_MS,
};

const struct kp_split_layout kp_split_list_offsets_request = {
    .body = &kp_list_offsets_request,
    .topics = KP_LIST_OFFSETS_REQ_TOPICS,
    .topic_name = KP_LIST_OFFSETS_TOPIC_NAME,
    .topic_id = -1,
    .partitions = KP_LIST_OFFSETS_TOPIC_PARTITIONS,
    .index = KP_LIST_OFFSETS_PART_PARTITION_INDEX,
    .error_code = -1,
    .throttle_time_ms = -1,
};

const struct kp_split_layout kp_split_list_offsets_response = {
    .body = &kp_list_offsets_response,
    .topics = KP_LIST_OFFSETS_RESP_TOPICS,
    .topic_name = KP_LIST_OFFSETS_TOPIC_NAME,
    .topic_id = -1,
    .partitions = KP_LIST_OFFSETS_TOPIC_PARTITIONS,
    .index = KP_LIST_OFFSETS_RESP_PART_PARTITION_INDEX,
    .error_code = KP_LIST_OFFSETS_RESP_PART_ERROR_CODE,
    .throttle_time_ms = KP_LIST_OFFSETS_RESP_THROTTLE_TIME_MS,
};

const struct kp_split_layout kp_split_offset_for_leader_epoch_request = {
    .body = &kp_offset_for_leader_epoch_request,
    .topics = KP_OFFSET_FOR_LEADER_EPOCH_REQ_TOPICS,
    .topic_name = KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_TOPIC,
    .topic_id = -1,
    .partitions = KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS,
    .index = KP_OFFSET_FOR_LEADER_EPOCH_PART_PARTITION,
    .error_code = -1,
    .throttle_time_ms = -1,
};

const struct kp_split_layout kp_split_offset_for_leader_epoch_response = {
    .body = &kp_offset_for_leader_epoch_response,
    .topics = KP_OFFSET_FOR_LEADER_EPOCH_RESP_TOPICS,
    .topic_name = KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_TOPIC,
    .topic_id = -1,
    .partitions = KP_OFFSET_FOR_LEADER_EPOCH_TOPIC_PARTITIONS,
    .index = KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_PARTITION,
    .error_code = KP_OFFSET_FOR_LEADER_EPOCH_RESP_PART_ERROR_CODE,
    .throttle_time_ms = KP_OFFSET_FOR_LEADER_EPOCH_RESP_THROTTLE_TIME_MS,
};

const struct kp_split_layout kp_split_delete_records_request = {
    .body = &kp_delete_records_request,
    .topics = KP_DELETE_RECORDS_REQ_TOPICS,
    .topic_name = KP_DELETE_RECORDS_TOPIC_NAME,
    .topic_id = -1,
    .partitions = KP_DELETE_RECORDS_TOPIC_PARTITIONS,
    .index = KP_DELETE_RECORDS_PART_PARTITION_INDEX,
    .error_code = -1,
    .throttle_time_ms = -1,
};

const struct kp_split_layout kp_split_delete_records_response = {
    .body = &kp_delete_records_response,
    .topics = KP_DELETE_RECORDS_RESP_TOPICS,
    .topic_name = KP_DELETE_RECORDS_TOPIC_NAME,
    .topic_id = -1,
    .partitions = KP_DELETE_RECORDS_TOPIC_PARTITIONS,
    .index = KP_DELETE_RECORDS_RESP_PART_PARTITION_INDEX,
    .error_code = KP_DELETE_RECORDS_RESP_PART_ERROR_CODE,
    .throttle_time_ms = KP_DELETE_RECORDS_RESP_THROTTLE_TIME_MS,
};

/* ---- trees --------------------------------------------------------------- */

static const struct kp_schema *kp_split_topic_schema(const struct kp_split_layout *l)
{
	return l->body->fields[l->topics].sub;
}

static const struct kp_schema *kp_split_part_schema(const struct kp_split_layout *l)
{
	return kp_split_topic_schema(l)->fields[l->partitions].sub;
}

/* A shallow copy of st: its values (and unknown tags) point where st's do. */
static struct kp_struct *kp_split_clone(struct kp_arena *a, const struct kp_struct *st)
{
	size_t size = sizeof(*st) + st->schema->nfields * sizeof(struct kp_value);
	struct kp_struct *c = kp_arena_alloc(a, size);
	if (c)
		memcpy(c, st, size);
	return c;
}

/* Whether st is a whole decoded struct of layout l's body. */
static bool kp_split_is(const struct kp_split_layout *l, const struct kp_struct *st)
{
	return st && st->schema == l->body && st->complete == l->body->nfields;
}

static const struct kp_list *kp_split_list(const struct kp_struct *st, int field)
{
	return &st->v[field].a;
}

/* A topic's key: its id where the version has one, else its name. */
static bool kp_split_key(const struct kp_split_layout *l, const struct kp_struct *topic, struct kp_span *key)
{
	if (l->topic_id >= 0 && topic->v[l->topic_id].present) {
		*key = topic->v[l->topic_id].s;
		return true;
	}
	if (l->topic_name >= 0 && topic->v[l->topic_name].present) {
		*key = topic->v[l->topic_name].s;
		return false;
	}
	*key = (struct kp_span){NULL, -1};
	return false;
}

/* A struct at its defaults, with the non-null nested structs a default needs. */
static struct kp_struct *kp_split_default(struct kp_arena *a, const struct kp_schema *s, int16_t ver, int depth)
{
	struct kp_struct *st = kp_struct_new(a, s, ver);
	if (!st || depth > 8)
		return st;
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		if (f->type != KP_STRUCT || !st->v[i].present || (f->null_since >= 0 && ver >= f->null_since))
			continue;
		st->v[i].st = kp_split_default(a, f->sub, ver, depth + 1);
		if (!st->v[i].st)
			return NULL;
	}
	return st;
}

/* ---- the client's order -------------------------------------------------- */

bool kp_split_init(struct kp_split *s, int16_t ver, int ndest)
{
	memset(s, 0, sizeof(*s));
	s->version = ver;
	s->ndest = ndest;
	return ndest > 0 && ndest <= KP_SPLIT_MAX_DEST;
}

/* Room for one more element in an arena array of *cap (doubling). */
static void *kp_split_grow(struct kp_arena *a, void *items, int32_t cnt, int32_t *cap, size_t size)
{
	if (cnt < *cap)
		return items;
	if (*cap > INT32_MAX / 2)
		return NULL;
	int32_t ncap = *cap ? *cap * 2 : 8;
	void *n = kp_arena_alloc(a, (size_t)ncap * size);
	if (!n)
		return NULL;
	if (cnt)
		memcpy(n, items, (size_t)cnt * size);
	*cap = ncap;
	return n;
}

bool kp_split_add_topic(struct kp_arena *a, struct kp_split *s, bool by_id, struct kp_span key)
{
	struct kp_split_topic *t = kp_split_grow(a, s->topics, s->ntopics, &s->topic_cap, sizeof(*t));
	if (!t)
		return false;
	s->topics = t;
	t = &s->topics[s->ntopics];
	t->by_id = by_id;
	t->first = s->nparts;
	t->cnt = 0;
	t->key = (struct kp_span){NULL, key.len < 0 ? -1 : key.len};
	if (key.len > 0) {
		uint8_t *copy = kp_arena_alloc(a, (size_t)key.len);
		if (!copy)
			return false;
		memcpy(copy, key.ptr, (size_t)key.len);
		t->key.ptr = copy;
	}
	s->ntopics++;
	return true;
}

bool kp_split_add_partition(struct kp_arena *a, struct kp_split *s, int32_t index, int32_t dest)
{
	if (s->ntopics == 0 || dest >= s->ndest)
		return false;
	struct kp_split_part *p = kp_split_grow(a, s->parts, s->nparts, &s->part_cap, sizeof(*p));
	if (!p)
		return false;
	s->parts = p;
	s->parts[s->nparts++] = (struct kp_split_part){index, dest < 0 ? -1 : dest, 0};
	s->topics[s->ntopics - 1].cnt++;
	return true;
}

bool kp_split_add_partition_error(struct kp_arena *a, struct kp_split *s, int32_t index, int16_t error)
{
	if (!kp_split_add_partition(a, s, index, -1))
		return false;
	s->parts[s->nparts - 1].error = error;
	return true;
}

bool kp_split_finish(struct kp_arena *a, struct kp_split *s)
{
	if (s->ndest <= 0 || s->ndest > KP_SPLIT_MAX_DEST)
		return false;
	s->dests = kp_arena_alloc(a, (size_t)s->ndest * sizeof(*s->dests));
	if (!s->dests)
		return false;
	for (int32_t i = 0; i < s->nparts; i++)
		if (s->parts[i].dest >= 0)
			s->dests[s->parts[i].dest].cnt++;
	for (int d = 0; d < s->ndest; d++) {
		struct kp_split_dest *dst = &s->dests[d];
		if (dst->cnt && !(dst->refs = kp_arena_alloc(a, (size_t)dst->cnt * sizeof(*dst->refs))))
			return false;
		dst->cnt = 0;
	}
	for (int32_t t = 0; t < s->ntopics; t++) {
		for (int32_t p = 0; p < s->topics[t].cnt; p++) {
			int32_t d = s->parts[s->topics[t].first + p].dest;
			if (d >= 0)
				s->dests[d].refs[s->dests[d].cnt++] = (struct kp_split_ref){t, p};
		}
	}
	return true;
}

/* ---- split --------------------------------------------------------------- */

int64_t kp_split_count(const struct kp_split_layout *l, const struct kp_struct *st)
{
	if (!kp_split_is(l, st))
		return -1;
	const struct kp_list *topics = kp_split_list(st, l->topics);
	int64_t n = 0;
	for (int32_t t = 0; t < topics->cnt; t++) {
		const struct kp_struct *topic = topics->items[t].st;
		if (topic && kp_split_list(topic, l->partitions)->cnt > 0)
			n += kp_split_list(topic, l->partitions)->cnt;
	}
	return n;
}

/* The client's order from a decoded request, with where each partition goes. */
static bool kp_split_order(struct kp_arena *a, const struct kp_split_layout *l, const struct kp_struct *req,
                           const int32_t *dest, size_t ndest_entries, struct kp_split *s)
{
	const struct kp_list *topics = kp_split_list(req, l->topics);
	size_t at = 0;
	for (int32_t t = 0; t < topics->cnt; t++) {
		const struct kp_struct *topic = topics->items[t].st;
		struct kp_span key;
		if (!topic)
			return false;
		bool by_id = kp_split_key(l, topic, &key);
		if (!kp_split_add_topic(a, s, by_id, key))
			return false;
		const struct kp_list *parts = kp_split_list(topic, l->partitions);
		for (int32_t p = 0; p < parts->cnt; p++) {
			if (at >= ndest_entries || !parts->items[p].st)
				return false;
			if (!kp_split_add_partition(a, s, (int32_t)parts->items[p].st->v[l->index].i, dest[at++]))
				return false;
		}
	}
	return at == ndest_entries;
}

/* Destination d's request: req with only the partitions of d's refs. */
static struct kp_struct *kp_split_build(struct kp_arena *a, const struct kp_split_layout *l,
                                        const struct kp_struct *req, const struct kp_split_dest *dst)
{
	const struct kp_list *topics = kp_split_list(req, l->topics);
	struct kp_struct *body = kp_split_clone(a, req);
	int32_t ntopics = 0;
	if (!body)
		return NULL;
	for (int32_t i = 0; i < dst->cnt; i++)
		if (i == 0 || dst->refs[i].topic != dst->refs[i - 1].topic)
			ntopics++;
	struct kp_value *items = kp_arena_alloc(a, (size_t)ntopics * sizeof(*items));
	if (!items)
		return NULL;
	int32_t nt = 0;
	for (int32_t i = 0; i < dst->cnt;) {
		int32_t t = dst->refs[i].topic, run = 0;
		while (i + run < dst->cnt && dst->refs[i + run].topic == t)
			run++;
		const struct kp_struct *orig = topics->items[t].st;
		const struct kp_list *orig_parts = kp_split_list(orig, l->partitions);
		struct kp_struct *topic = kp_split_clone(a, orig);
		struct kp_value *parts = kp_arena_alloc(a, (size_t)run * sizeof(*parts));
		if (!topic || !parts)
			return NULL;
		for (int32_t k = 0; k < run; k++)
			parts[k] = orig_parts->items[dst->refs[i + k].partition];
		topic->v[l->partitions].a = (struct kp_list){parts, run};
		items[nt].st = topic;
		items[nt].present = true;
		nt++;
		i += run;
	}
	body->v[l->topics].a = (struct kp_list){items, ntopics};
	return body;
}

bool kp_split_request(struct kp_arena *a, const struct kp_split_layout *l, const struct kp_struct *req, int16_t ver,
                      const int32_t *dest, size_t ndest_entries, int ndest, struct kp_split *s)
{
	if (!kp_split_init(s, ver, ndest) || !kp_split_is(l, req))
		return false;
	if (!kp_split_order(a, l, req, dest, ndest_entries, s) || !kp_split_finish(a, s))
		return false;
	for (int d = 0; d < ndest; d++)
		if (s->dests[d].cnt && !(s->dests[d].request = kp_split_build(a, l, req, &s->dests[d])))
			return false;
	return true;
}

/* ---- merge --------------------------------------------------------------- */

/* A partition of a destination's response, with the key it is found by. */
struct kp_split_entry {
	bool by_id;
	struct kp_span key;
	int32_t index;
	uint32_t ordinal; /* in the response: the first of equal entries wins */
	const struct kp_struct *topic;
	struct kp_struct *part;
};

struct kp_split_index {
	struct kp_split_entry *e;
	size_t n;
};

static int kp_split_key_cmp(bool a_id, struct kp_span a, bool b_id, struct kp_span b)
{
	if (a_id != b_id)
		return a_id ? 1 : -1;
	if (a.len != b.len)
		return a.len < b.len ? -1 : 1;
	return a.len > 0 ? memcmp(a.ptr, b.ptr, (size_t)a.len) : 0;
}

static int kp_split_entry_cmp(const void *pa, const void *pb)
{
	const struct kp_split_entry *x = pa, *y = pb;
	int c = kp_split_key_cmp(x->by_id, x->key, y->by_id, y->key);
	if (c)
		return c;
	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	return x->ordinal < y->ordinal ? -1 : x->ordinal > y->ordinal;
}

static bool kp_split_index_build(struct kp_arena *a, const struct kp_split_layout *l, const struct kp_struct *resp,
                                 struct kp_split_index *ix)
{
	const struct kp_list *topics = kp_split_list(resp, l->topics);
	size_t n = 0;
	ix->n = 0;
	for (int32_t t = 0; t < topics->cnt; t++)
		if (topics->items[t].st && kp_split_list(topics->items[t].st, l->partitions)->cnt > 0)
			n += (size_t)kp_split_list(topics->items[t].st, l->partitions)->cnt;
	if (n == 0)
		return true;
	if (!(ix->e = kp_arena_alloc(a, n * sizeof(*ix->e))))
		return false;
	for (int32_t t = 0; t < topics->cnt; t++) {
		const struct kp_struct *topic = topics->items[t].st;
		if (!topic)
			continue;
		struct kp_span key;
		bool by_id = kp_split_key(l, topic, &key);
		const struct kp_list *parts = kp_split_list(topic, l->partitions);
		for (int32_t p = 0; p < parts->cnt; p++) {
			struct kp_struct *part = parts->items[p].st;
			if (!part)
				continue;
			ix->e[ix->n] = (struct kp_split_entry){by_id,           key, (int32_t)part->v[l->index].i,
			                                       (uint32_t)ix->n, topic, part};
			ix->n++;
		}
	}
	qsort(ix->e, ix->n, sizeof(*ix->e), kp_split_entry_cmp);
	return true;
}

/* The first entry for (key, index), or NULL. */
static const struct kp_split_entry *kp_split_index_find(const struct kp_split_index *ix, bool by_id,
                                                        struct kp_span key, int32_t index)
{
	size_t lo = 0, hi = ix->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct kp_split_entry *e = &ix->e[mid];
		int c = kp_split_key_cmp(e->by_id, e->key, by_id, key);
		if (c < 0 || (c == 0 && e->index < index))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ix->n && ix->e[lo].index == index && kp_split_key_cmp(ix->e[lo].by_id, ix->e[lo].key, by_id, key) == 0)
		return &ix->e[lo];
	return NULL;
}

/* The merged body before its topics: the first present response's fields, the largest throttle. */
static struct kp_struct *kp_split_merge_top(struct kp_arena *a, const struct kp_split_layout *l,
                                            const struct kp_split *s, struct kp_struct *const *responses)
{
	struct kp_struct *body = NULL;
	int64_t throttle = 0;
	for (int d = 0; d < s->ndest; d++) {
		if (!responses[d])
			continue;
		if (!body && !(body = kp_split_clone(a, responses[d])))
			return NULL;
		if (l->throttle_time_ms >= 0 && responses[d]->v[l->throttle_time_ms].present &&
		    responses[d]->v[l->throttle_time_ms].i > throttle)
			throttle = responses[d]->v[l->throttle_time_ms].i;
	}
	if (!body && !(body = kp_split_default(a, l->body, s->version, 0)))
		return NULL;
	if (l->throttle_time_ms >= 0 && body->v[l->throttle_time_ms].present)
		body->v[l->throttle_time_ms].i = throttle;
	return body;
}

/* Client topic t of the merged response. */
static struct kp_struct *kp_split_merge_topic(struct kp_arena *a, const struct kp_split_layout *l,
                                              const struct kp_split *s, const struct kp_split_index *ix,
                                              const struct kp_split_topic *t, int16_t error_code)
{
	const struct kp_struct *first = NULL;
	struct kp_value *parts = NULL;
	if (t->cnt && !(parts = kp_arena_alloc(a, (size_t)t->cnt * sizeof(*parts))))
		return NULL;
	for (int32_t p = 0; p < t->cnt; p++) {
		const struct kp_split_part *sp = &s->parts[t->first + p];
		const struct kp_split_entry *e =
		    sp->dest >= 0 ? kp_split_index_find(&ix[sp->dest], t->by_id, t->key, sp->index) : NULL;
		parts[p].present = true;
		if (e) {
			parts[p].st = e->part;
			if (!first)
				first = e->topic;
			continue;
		}
		struct kp_struct *def = kp_split_default(a, kp_split_part_schema(l), s->version, 0);
		if (!def)
			return NULL;
		def->v[l->index].i = sp->index;
		def->v[l->error_code].i = sp->dest < 0 && sp->error ? sp->error : error_code;
		parts[p].st = def;
	}
	struct kp_struct *topic =
	    first ? kp_split_clone(a, first) : kp_split_default(a, kp_split_topic_schema(l), s->version, 0);
	if (!topic)
		return NULL;
	int key = t->by_id ? l->topic_id : l->topic_name;
	if (key >= 0 && topic->v[key].present)
		topic->v[key].s = t->key;
	topic->v[l->partitions].a = (struct kp_list){parts, t->cnt};
	return topic;
}

struct kp_struct *kp_split_merge(struct kp_arena *a, const struct kp_split_layout *l, const struct kp_split *s,
                                 struct kp_struct *const *responses, int16_t error_code)
{
	if (l->error_code < 0 || !responses || !s->dests || s->ndest <= 0 || s->ndest > KP_SPLIT_MAX_DEST)
		return NULL;
	struct kp_split_index *ix = kp_arena_alloc(a, (size_t)s->ndest * sizeof(*ix));
	if (!ix)
		return NULL;
	for (int d = 0; d < s->ndest; d++) {
		if (!responses[d])
			continue;
		if (!kp_split_is(l, responses[d]) || !kp_split_index_build(a, l, responses[d], &ix[d]))
			return NULL;
	}
	struct kp_struct *body = kp_split_merge_top(a, l, s, responses);
	struct kp_value *topics = NULL;
	if (!body || (s->ntopics && !(topics = kp_arena_alloc(a, (size_t)s->ntopics * sizeof(*topics)))))
		return NULL;
	for (int32_t t = 0; t < s->ntopics; t++) {
		topics[t].present = true;
		if (!(topics[t].st = kp_split_merge_topic(a, l, s, ix, &s->topics[t], error_code)))
			return NULL;
	}
	body->v[l->topics].a = (struct kp_list){topics, s->ntopics};
	return body;
}

/* ---- Fetch --------------------------------------------------------------- */

bool kp_split_fetch_sessionless(struct kp_struct *req, int16_t ver)
{
	if (!req || req->schema != &kp_fetch_request)
		return false;
	if (ver < 7)
		return true;
	req->v[KP_FETCH_REQ_SESSION_ID].i = 0;
	req->v[KP_FETCH_REQ_SESSION_EPOCH].i = -1;
	req->v[KP_FETCH_REQ_FORGOTTEN_TOPICS_DATA].a = (struct kp_list){NULL, 0};
	return true;
}

bool kp_split_fetch_cap_wait(struct kp_struct *req, int32_t max_wait_ms)
{
	if (!req || req->schema != &kp_fetch_request)
		return false;
	if (req->v[KP_FETCH_REQ_MAX_WAIT_MS].i > max_wait_ms)
		req->v[KP_FETCH_REQ_MAX_WAIT_MS].i = max_wait_ms;
	return true;
}

bool kp_split_fetch_share_max_bytes(struct kp_struct *req, int16_t ver, int nparts)
{
	if (!req || req->schema != &kp_fetch_request || nparts < 1)
		return false;
	if (ver < 3)
		return true;
	int64_t share = req->v[KP_FETCH_REQ_MAX_BYTES].i / nparts;
	req->v[KP_FETCH_REQ_MAX_BYTES].i = share > 0 ? share : 1;
	return true;
}
