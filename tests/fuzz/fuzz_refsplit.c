/*
 * libFuzzer target: regional mode's Produce split and Fetch merge
 * (protocol/refsplit.c) over hostile bodies. Input: byte 0 picks the
 * message (bit 0: Produce request or Fetch response; bit 1: a Fetch merge
 * gets the same body again as a second part), byte 1 the version, bytes 2-3
 * where the body is cut into three pieces (each in its own allocation, so a
 * read past one is caught), byte 4 the routes (Produce) or the partitions
 * the client wants (Fetch); the rest is the body (after the header).
 *
 * Properties: no crash, no over-read; the verdict and every output byte do
 * not depend on how the body is cut; every reference points into the
 * pieces, and an output walks again as a whole message of its kind with the
 * partitions it says it carries; when the codec decodes the input, it
 * decodes every output too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "arena.h"
#include "messages.h"
#include "refsplit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_WANTS 64

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

struct cut {
	struct iovec iov[3];
	size_t len;
};

static void cut_make(struct cut *c, const uint8_t *body, size_t len, uint8_t c1, uint8_t c2)
{
	size_t a = c1 * len / 255, b = a + c2 * (len - a) / 255;
	size_t at[4] = {0, a, b, len};
	c->len = len;
	for (int i = 0; i < 3; i++) {
		c->iov[i].iov_len = at[i + 1] - at[i];
		c->iov[i].iov_base = malloc(c->iov[i].iov_len ? c->iov[i].iov_len : 1);
		if (!c->iov[i].iov_base)
			abort();
		memcpy(c->iov[i].iov_base, body + at[i], c->iov[i].iov_len);
	}
}

static void cut_free(struct cut *c)
{
	for (int i = 0; i < 3; i++)
		free(c->iov[i].iov_base);
}

/* Every reference of w lies in one of the pieces. */
static void check_references(struct kp_writer *w, const struct cut *c)
{
	kp_writer_finish(w);
	for (size_t i = 0; i < w->nsegs; i++) {
		const uint8_t *r = w->segs[i].ref;
		bool in = !r;
		for (int k = 0; k < 3 && !in; k++) {
			const uint8_t *base = c->iov[k].iov_base;
			in = r >= base && r + w->segs[i].len <= base + c->iov[k].iov_len;
		}
		check(in);
	}
}

static uint8_t *flatten(struct kp_writer *w, size_t *len)
{
	uint8_t *out = kp_writer_flatten(w, len);
	if (!out)
		abort();
	return out;
}

static bool count_partition(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	(void)t;
	(void)part;
	(*(size_t *)arg)++;
	return true;
}

/* The bytes walk as a whole message of layout l: how many partitions they hold. */
static size_t walk_count(const struct kp_walk_layout *l, int16_t ver, bool flexible, const uint8_t *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};
	struct kp_pieces p;
	size_t n = 0;
	kp_pieces_init(&p, &iov, 1, len);
	check(kp_walk_partitions(&p, l, ver, flexible, count_partition, &n, NULL));
	check(p.pos == len);
	return n;
}

/* Whether the codec decodes buf as a whole body of schema s. */
static bool decodes(const struct kp_schema *s, int16_t ver, bool flexible, const uint8_t *buf, size_t len)
{
	struct kp_arena a;
	struct kp_cursor c;
	kp_arena_init(&a, 64 << 20);
	kp_cursor_init(&c, buf, len);
	bool ok = kp_decode(&a, &c, s, ver, flexible, -1) && kp_cursor_left(&c) == 0;
	kp_arena_free(&a);
	return ok;
}

/* ---- Produce ------------------------------------------------------------ */

static int fuzz_route(void *arg, const struct kp_walk_topic *t, int32_t index)
{
	const int *r = arg; /* {seed, ndest} */
	uint32_t h = (uint32_t)r[0] * 2654435761u ^ (uint32_t)index;
	for (size_t i = 0; i < t->key_len; i++)
		h = (h ^ t->key[i]) * 16777619u;
	return (int)(h % (uint32_t)(r[1] + 1)) - 1;
}

static bool split(struct kp_produce_split *s, const struct iovec *iov, int n, size_t len, int16_t ver, bool flexible,
                  int *r)
{
	struct kp_pieces p;
	kp_pieces_init(&p, iov, n, len);
	bool ok = kp_produce_split(s, &p, ver, flexible, r[1], fuzz_route, r);
	check(p.pos <= len);
	check(ok == (p.err == KP_OK));
	return ok;
}

static void fuzz_produce(const uint8_t *data, const uint8_t *body, size_t len)
{
	int16_t ver = (int16_t)(3 + data[1] % 11);
	bool flexible = kp_api_flexible(kp_api_get(KP_API_PRODUCE), ver);
	int r[2] = {data[4], 1 + data[4] % 3};
	struct kp_produce_split cut_split, whole_split;
	struct cut c;
	struct iovec whole = {(void *)body, len};

	cut_make(&c, body, len, data[2], data[3]);
	kp_produce_split_init(&cut_split);
	kp_produce_split_init(&whole_split);
	bool ok = split(&cut_split, c.iov, 3, len, ver, flexible, r);
	check(ok == split(&whole_split, &whole, 1, len, ver, flexible, r));
	if (ok) {
		size_t carried = cut_split.nkept;
		bool input_decodes = decodes(&kp_produce_request, ver, flexible, body, len);
		check(cut_split.nkept == whole_split.nkept);
		for (int d = 0; d < r[1]; d++) {
			struct kp_produce_dest *a = &cut_split.dest[d], *b = &whole_split.dest[d];
			size_t alen, blen;
			check_references(&a->body, &c);
			uint8_t *aout = flatten(&a->body, &alen), *bout = flatten(&b->body, &blen);
			check(alen == blen && memcmp(aout, bout, alen) == 0);
			check(a->nparts == b->nparts);
			check((alen == 0) == (a->nparts == 0));
			if (a->nparts)
				check(walk_count(&kp_walk_produce_request, ver, flexible, aout, alen) == a->nparts);
			if (a->nparts && input_decodes)
				check(decodes(&kp_produce_request, ver, flexible, aout, alen));
			for (size_t i = 1; i < a->nparts; i++) /* the client's order */
				check(a->parts[i - 1].topic < a->parts[i].topic ||
				      (a->parts[i - 1].topic == a->parts[i].topic &&
				       a->parts[i - 1].partition < a->parts[i].partition));
			carried += a->nparts;
			free(aout);
			free(bout);
		}
		check(carried == walk_count(&kp_walk_produce_request, ver, flexible, body, len));
	}
	kp_produce_split_free(&cut_split);
	kp_produce_split_free(&whole_split);
	cut_free(&c);
}

/* ---- Fetch ---------------------------------------------------------------- */

struct wants {
	struct kp_fetch_want w[MAX_WANTS];
	uint8_t keys[MAX_WANTS][KP_WALK_NAME_MAX];
	size_t n;
	uint8_t pick;
	uint32_t met;
};

/* The client wants some of the partitions the body holds (byte 4 says which). */
static bool pick_want(void *arg, const struct kp_walk_topic *t, const struct kp_walk_partition *part)
{
	struct wants *ws = arg;
	if (ws->n == MAX_WANTS || !(ws->pick >> (ws->met++ % 8) & 1))
		return true;
	memcpy(ws->keys[ws->n], t->key, t->key_len);
	ws->w[ws->n] = (struct kp_fetch_want){ws->keys[ws->n], t->key_len, part->index};
	ws->n++;
	return true;
}

static void wants_make(struct wants *ws, const uint8_t *body, size_t len, int16_t ver, bool flexible, uint8_t pick)
{
	struct iovec iov = {(void *)body, len};
	struct kp_pieces p;
	memset(ws, 0, sizeof(*ws));
	ws->pick = pick;
	kp_pieces_init(&p, &iov, 1, len);
	kp_walk_partitions(&p, &kp_walk_fetch_response, ver, flexible, pick_want, ws, NULL);
	/* The client's order is not the broker's: reversed, and one partition no one holds. */
	for (size_t i = 0; i < ws->n / 2; i++) {
		struct kp_fetch_want x = ws->w[i];
		ws->w[i] = ws->w[ws->n - 1 - i];
		ws->w[ws->n - 1 - i] = x;
	}
	if (ws->n < MAX_WANTS) {
		static const uint8_t ghost[16] = "ghost-topic-id!";
		ws->w[ws->n++] = (struct kp_fetch_want){ghost, ver >= 13 ? 16 : 5, 7};
	}
}

static bool merge(struct kp_fetch_merge *m, const struct iovec *iov, int n, size_t len, bool twice, int16_t ver,
                  bool flexible, const struct wants *ws)
{
	struct kp_pieces p[2];
	struct kp_pieces *parts[3] = {NULL, &p[0], twice ? &p[1] : NULL};
	kp_pieces_init(&p[0], iov, n, len);
	kp_pieces_init(&p[1], iov, n, len);
	bool ok = kp_fetch_merge(m, ver, flexible, ws->w, ws->n, parts, 3, 6);
	check(ok ? m->bad_part == -1 : m->bad_part == 1 || m->bad_part == 2);
	check(p[0].pos <= len);
	return ok;
}

static void fuzz_fetch(const uint8_t *data, const uint8_t *body, size_t len)
{
	int16_t ver = (int16_t)(data[1] % 19);
	bool flexible = kp_api_flexible(kp_api_get(KP_API_FETCH), ver), twice = data[0] & 2;
	static struct wants ws;
	struct kp_fetch_merge cut_merge, whole_merge;
	struct cut c;
	struct iovec whole = {(void *)body, len};

	wants_make(&ws, body, len, ver, flexible, data[4]);
	cut_make(&c, body, len, data[2], data[3]);
	kp_fetch_merge_init(&cut_merge);
	kp_fetch_merge_init(&whole_merge);
	bool ok = merge(&cut_merge, c.iov, 3, len, twice, ver, flexible, &ws);
	check(ok == merge(&whole_merge, &whole, 1, len, twice, ver, flexible, &ws));
	if (ok) {
		size_t alen, blen;
		check_references(&cut_merge.body, &c);
		uint8_t *aout = flatten(&cut_merge.body, &alen), *bout = flatten(&whole_merge.body, &blen);
		check(alen == blen && memcmp(aout, bout, alen) == 0);
		check(cut_merge.found + cut_merge.missing == ws.n);
		check(cut_merge.owned + cut_merge.referenced == alen);
		check(walk_count(&kp_walk_fetch_response, ver, flexible, aout, alen) == ws.n);
		if (decodes(&kp_fetch_response, ver, flexible, body, len))
			check(decodes(&kp_fetch_response, ver, flexible, aout, alen));
		free(aout);
		free(bout);
	}
	kp_fetch_merge_free(&cut_merge);
	kp_fetch_merge_free(&whole_merge);
	cut_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 5)
		return 0;
	if (data[0] & 1)
		fuzz_fetch(data, data + 5, size - 5);
	else
		fuzz_produce(data, data + 5, size - 5);
	return 0;
}
