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
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"
#include "skip.h"

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
