#include "walk.h"

#include "messages.h"

const struct kp_walk_layout kp_walk_fetch_response = {
    .body = &kp_fetch_response,
    .topics = KP_FETCH_RESP_RESPONSES,
    .topic_name = KP_FETCH_TOPIC_TOPIC,
    .topic_id = KP_FETCH_TOPIC_TOPIC_ID,
    .partitions = KP_FETCH_RESP_TOPIC_PARTITIONS,
    .index = KP_FETCH_RESP_PART_PARTITION_INDEX,
    .error_code = KP_FETCH_RESP_PART_ERROR_CODE,
    .preferred = KP_FETCH_RESP_PART_PREFERRED_READ_REPLICA,
    .records = KP_FETCH_RESP_PART_RECORDS,
};

const struct kp_walk_layout kp_walk_produce_request = {
    .body = &kp_produce_request,
    .topics = KP_PRODUCE_REQ_TOPIC_DATA,
    .topic_name = KP_PRODUCE_TOPIC_NAME,
    .topic_id = KP_PRODUCE_TOPIC_TOPIC_ID,
    .partitions = KP_PRODUCE_TOPIC_PARTITION_DATA,
    .index = KP_PRODUCE_PART_INDEX,
    .error_code = -1,
    .preferred = -1,
    .records = KP_PRODUCE_PART_RECORDS,
};

static bool kp_walk_present(const struct kp_field *f, int16_t ver)
{
	return f->tag < 0 && ver >= f->since && ver <= f->until;
}

/* The topic's name (v0-12) or id (v13+), into t. */
static bool kp_walk_topic_key(struct kp_pieces *p, const struct kp_field *f, bool by_id, bool flexible,
                              struct kp_walk_topic *t)
{
	int64_t n;
	t->by_id = by_id;
	if (by_id) {
		t->key_len = 16;
		return kp_pieces_read(p, t->key, 16, f->name);
	}
	if (!kp_pieces_len(p, flexible, false, &n, f->name))
		return false;
	t->key_len = n > 0 ? (size_t)n : 0;
	if (t->key_len > KP_WALK_NAME_MAX) { /* longer than any topic name: nothing to look up */
		t->key_len = 0;
		return kp_pieces_skip(p, (size_t)n, f->name);
	}
	for (size_t at = 0; at < t->key_len; at += 16)
		if (!kp_pieces_read(p, t->key + at, t->key_len - at < 16 ? t->key_len - at : 16, f->name))
			return false;
	return true;
}

static bool kp_walk_partition(struct kp_pieces *p, const struct kp_walk_layout *l, const struct kp_schema *s,
                              int16_t ver, bool flexible, const struct kp_walk_topic *t,
                              const struct kp_walk_visitor *vis)
{
	struct kp_walk_partition part = {
	    .preferred_read_replica = -1, .preferred_at = SIZE_MAX, .records_len = -1, .start = p->pos};
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		int64_t v;
		if (!kp_walk_present(f, ver))
			continue;
		if (i == l->index || i == l->error_code || i == l->preferred) {
			if (i == l->preferred)
				part.preferred_at = p->pos;
			if (!kp_pieces_int(p, kp_type_fixed_size(f->type), &v, f->name))
				return false;
			if (i == l->index)
				part.index = (int32_t)v;
			else if (i == l->error_code)
				part.error_code = (int16_t)v;
			else
				part.preferred_read_replica = (int32_t)v;
		} else if (i == l->records) {
			if (!kp_pieces_len(p, flexible, true, &part.records_len, f->name))
				return false;
			part.records_at = p->pos;
			if (!kp_pieces_skip(p, part.records_len > 0 ? (size_t)part.records_len : 0, f->name))
				return false;
		} else if (!kp_skip_field(p, f, ver, flexible)) {
			return false;
		}
	}
	part.tags_at = p->pos;
	if (flexible && !kp_pieces_skip_tags(p))
		return false;
	part.end = p->pos;
	return !vis->partition || vis->partition(vis->arg, t, &part);
}

static bool kp_walk_topic(struct kp_pieces *p, const struct kp_walk_layout *l, const struct kp_schema *s, int16_t ver,
                          bool flexible, struct kp_walk_topic *t, const struct kp_walk_visitor *vis)
{
	t->key_len = 0;
	t->start = t->parts_at = p->pos;
	t->tags_at = t->end = 0;
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		if (!kp_walk_present(f, ver))
			continue;
		if (i == l->topic_name || i == l->topic_id) {
			if (!kp_walk_topic_key(p, f, i == l->topic_id, flexible, t))
				return false;
		} else if (i == l->partitions) {
			int64_t n;
			t->parts_at = p->pos;
			if (!kp_pieces_len(p, flexible, true, &n, f->name))
				return false;
			for (int64_t k = 0; k < n; k++) /* each partition takes bytes: n is bounded by the frame */
				if (!kp_walk_partition(p, l, f->sub, ver, flexible, t, vis))
					return false;
		} else if (!kp_skip_field(p, f, ver, flexible)) {
			return false;
		}
	}
	t->tags_at = p->pos;
	if (flexible && !kp_pieces_skip_tags(p))
		return false;
	t->end = p->pos;
	return !vis->topic || vis->topic(vis->arg, t);
}

bool kp_walk(struct kp_pieces *p, const struct kp_walk_layout *l, int16_t ver, bool flexible,
             const struct kp_walk_visitor *v, uint32_t *tag_count)
{
	const struct kp_schema *s = l->body;
	struct kp_walk_topic t = {0};
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		if (!kp_walk_present(f, ver))
			continue;
		if (i != l->topics) {
			if (!kp_skip_field(p, f, ver, flexible))
				return false;
			continue;
		}
		int64_t n;
		if (!kp_pieces_len(p, flexible, true, &n, f->name))
			return false;
		for (int64_t k = 0; k < n; k++, t.ordinal++)
			if (!kp_walk_topic(p, l, f->sub, ver, flexible, &t, v))
				return false;
	}
	if (!flexible)
		return true;
	if (tag_count) {
		/* Peek the count, leaving the position at the section's start. */
		struct kp_pieces at = *p;
		if (kp_pieces_uvarint(&at, tag_count, "_tagged_fields"))
			return true;
		p->err = at.err;
		p->err_field = at.err_field;
		return false;
	}
	return kp_pieces_skip_tags(p);
}

bool kp_walk_partitions(struct kp_pieces *p, const struct kp_walk_layout *l, int16_t ver, bool flexible,
                        kp_walk_fn fn, void *arg, uint32_t *tag_count)
{
	const struct kp_walk_visitor v = {.partition = fn, .arg = arg};
	return kp_walk(p, l, ver, flexible, &v, tag_count);
}
