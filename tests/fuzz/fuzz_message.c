/*
 * libFuzzer target: the message codec (headers, every decoded API and
 * version). Input: byte 0 selects request (even) or response (odd); for a
 * response, bytes 1-2 are the API key and 3-4 the version of the request it
 * answers; the rest is a frame body (without its size).
 *
 * Property: decoding never crashes or over-reads; when it succeeds, the
 * re-encoding decodes again and re-encodes to the very same bytes. The
 * in-place walk (skip.c) runs too, over the body cut into three pieces: it
 * never over-reads, and it agrees with the decoder on the tagged-field count.
 * The partition walk (walk.c) of Fetch responses and Produce requests runs
 * over the same pieces: it meets as many partitions as the decoder, with the
 * same indexes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "messages.h"
#include "skip.h"
#include "walk.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *encode(const struct kp_message *m, size_t *len)
{
	struct kp_writer w;
	kp_writer_init(&w);
	kp_message_encode(&w, m);
	uint8_t *out = kp_writer_flatten(&w, len);
	kp_writer_free(&w);
	return out;
}

/* Walks a decoded flexible body over three pieces; its tag count must match. */
static void walk(const struct kp_message *m, const uint8_t *body, size_t len, size_t cut1, size_t cut2)
{
	if (!m->body || !m->flexible)
		return;
	size_t at = (size_t)(m->raw_body.ptr - body), rest = len - at;
	size_t a = cut1 % (rest + 1), b = a + cut2 % (rest - a + 1);
	struct iovec iov[3] = {{(void *)(m->raw_body.ptr), a},
	                       {(void *)(m->raw_body.ptr + a), b - a},
	                       {(void *)(m->raw_body.ptr + b), rest - b}};
	struct kp_pieces p;
	uint32_t tags = 0, known = m->body->unknown_cnt;
	for (int i = 0; i < m->body->schema->nfields; i++)
		if (m->body->schema->fields[i].tag >= 0 && m->body->v[i].present)
			known++;
	kp_pieces_init(&p, iov, 3, rest);
	if (!kp_skip_to_tags(&p, m->body->schema, m->api_version, true, &tags) || tags != known)
		__builtin_trap();
}

struct met {
	const struct kp_struct *body;
	const struct kp_walk_layout *l;
	int32_t topic, part; /* the next partition the decoder has */
};

/* Each partition the walk meets must be the decoder's next one. */
static bool met_partition(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct met *m = arg;
	const struct kp_list *topics = &m->body->v[m->l->topics].a;
	while (m->topic < topics->cnt && m->part >= topics->items[m->topic].st->v[m->l->partitions].a.cnt) {
		m->topic++;
		m->part = 0;
	}
	if (m->topic >= topics->cnt || (int32_t)t->ordinal != m->topic ||
	    topics->items[m->topic].st->v[m->l->partitions].a.items[m->part].st->v[m->l->index].i != part->index ||
	    part->end < part->start)
		__builtin_trap();
	m->part++;
	return true;
}

/* Walks a decoded Fetch response / Produce request's partitions over three pieces. */
static void walk_partitions(const struct kp_message *m, const uint8_t *body, size_t len, size_t cut1, size_t cut2)
{
	const struct kp_walk_layout *l = NULL;
	if (!m->body)
		return;
	if (!m->request && m->api_key == KP_API_FETCH)
		l = &kp_walk_fetch_response;
	else if (m->request && m->api_key == KP_API_PRODUCE)
		l = &kp_walk_produce_request;
	if (!l)
		return;
	size_t at = (size_t)(m->raw_body.ptr - body), rest = len - at;
	size_t a = cut1 % (rest + 1), b = a + cut2 % (rest - a + 1);
	struct iovec iov[3] = {{(void *)(m->raw_body.ptr), a},
	                       {(void *)(m->raw_body.ptr + a), b - a},
	                       {(void *)(m->raw_body.ptr + b), rest - b}};
	struct kp_pieces p;
	struct met seen = {m->body, l, 0, 0};
	kp_pieces_init(&p, iov, 3, rest);
	if (!kp_walk_partitions(&p, l, m->api_version, m->flexible, met_partition, &seen, NULL))
		__builtin_trap(); /* what decodes, walks */
	const struct kp_list *topics = &m->body->v[l->topics].a;
	for (int32_t t = seen.topic + 1; t < topics->cnt; t++)
		if (topics->items[t].st->v[l->partitions].a.cnt > 0)
			__builtin_trap(); /* a partition the walk did not meet */
	if (seen.topic < topics->cnt && seen.part != topics->items[seen.topic].st->v[l->partitions].a.cnt)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	bool request = (data[0] & 1) == 0;
	int16_t api = (int16_t)(data[1] << 8 | data[2]);
	int16_t ver = (int16_t)(data[3] << 8 | data[4]);
	const uint8_t *body = data + 5;
	size_t len = size - 5;

	struct kp_arena a1, a2;
	struct kp_cursor c;
	struct kp_message m1, m2;
	kp_arena_init(&a1, 64 * len + (1 << 20));
	kp_arena_init(&a2, 64 * len + (1 << 20));
	kp_cursor_init(&c, body, len);
	if (kp_message_decode(&a1, &c, request, api, ver, &m1)) {
		walk(&m1, body, len, data[1] ^ data[2], data[3] ^ data[4]);
		walk_partitions(&m1, body, len, data[3] ^ data[4], data[1] ^ data[2]);
		size_t n1 = 0, n2 = 0;
		uint8_t *e1 = encode(&m1, &n1);
		if (!e1)
			abort();
		kp_cursor_init(&c, e1, n1);
		if (!kp_message_decode(&a2, &c, request, m1.api_key, m1.api_version, &m2))
			__builtin_trap(); /* our own encoding must decode */
		uint8_t *e2 = encode(&m2, &n2);
		if (!e2 || n1 != n2 || memcmp(e1, e2, n1) != 0)
			__builtin_trap(); /* and be a fixed point */
		free(e1);
		free(e2);
	}
	kp_arena_free(&a1);
	kp_arena_free(&a2);
	return 0;
}
