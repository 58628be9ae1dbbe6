/*
 * libFuzzer target: peek, the look at a connection's input straight from an
 * evbuffer (request header, then for Produce the acks probe). Input: byte 0
 * and 1 say where the stream is cut into three chunks, byte 2 how much of it
 * has arrived; the rest is the stream (a frame, and whatever follows it).
 *
 * Property: nothing is consumed or read past what is buffered; for a whole
 * frame the probe agrees with the cursor decoder reading the frame body
 * (TransactionalId as a nullable string, then Acks); on fewer bytes it says
 * "incomplete" or what it says on the whole frame, never a different acks.
 */
#include <event2/buffer.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cursor.h"
#include "peek.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The probe on the first len bytes of stream, in three chunks. */
static enum kp_frame_status probe(const uint8_t *stream, size_t len, size_t c1, size_t c2, struct kp_peek *p,
                                  int16_t *acks, bool *produce)
{
	struct evbuffer *b = evbuffer_new();
	if (!b)
		abort();
	size_t a = c1 % (len + 1), m = a + c2 % (len - a + 1);
	evbuffer_add_reference(b, stream, a, NULL, NULL);
	evbuffer_add_reference(b, stream + a, m - a, NULL, NULL);
	evbuffer_add_reference(b, stream + m, len - m, NULL, NULL);
	*produce = false;
	enum kp_frame_status st = kp_peek_request(b, 0, 1 << 20, p);
	if (st == KP_FRAME_OK && p->req.api_key == 0) {
		*produce = true;
		st = kp_peek_produce_acks(b, 0, p, acks);
	}
	if (evbuffer_get_length(b) != len)
		__builtin_trap(); /* a look consumes nothing */
	evbuffer_free(b);
	return st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	const uint8_t *stream = data + 3;
	size_t len = size - 3, part = data[2] % (len + 1);
	struct kp_peek p = {0}, q = {0};
	int16_t acks = 0, part_acks = 0;
	bool produce, part_produce;
	enum kp_frame_status st = probe(stream, len, data[0], data[1], &p, &acks, &produce);
	enum kp_frame_status pst = probe(stream, part, data[1], data[0], &q, &part_acks, &part_produce);

	if (produce && p.whole) {
		/* The reference: the frame body, contiguous, through the cursor. */
		struct kp_cursor c;
		kp_cursor_init(&c, stream + 4, (size_t)p.frame_size);
		c.pos = p.req.size;
		if (p.req.api_version >= 3)
			kp_read_string(&c, p.req.api_version >= 9, true, "TransactionalId");
		int16_t want = kp_read_i16(&c, "Acks");
		if (kp_cursor_ok(&c) != (st == KP_FRAME_OK) || (st == KP_FRAME_OK && acks != want))
			__builtin_trap();
		if (st == KP_FRAME_INCOMPLETE)
			__builtin_trap(); /* a whole frame is never incomplete */
	}
	if (produce && part_produce && pst != KP_FRAME_INCOMPLETE && p.whole) {
		if (pst != st || (st == KP_FRAME_OK && part_acks != acks))
			__builtin_trap(); /* fewer bytes never change the answer */
	}
	kp_peek_release(&p);
	kp_peek_release(&q);
	return 0;
}
