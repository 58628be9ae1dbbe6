#include "peek.h"

#include <stdlib.h>

/* Copies n bytes at offset at of in; false when fewer are there. */
static bool kp_peek_copy(struct evbuffer *in, size_t at, void *dst, size_t n)
{
	struct evbuffer_ptr pos;
	if (evbuffer_ptr_set(in, &pos, at, EVBUFFER_PTR_SET) < 0)
		return false;
	return evbuffer_copyout_from(in, &pos, dst, n) == (ev_ssize_t)n;
}

static enum kp_frame_status kp_peek_size(struct evbuffer *in, size_t at, int64_t max_frame, int32_t *frame_size)
{
	uint8_t b[4];
	size_t len = evbuffer_get_length(in), have = len > at ? len - at : 0;
	if (have < 4 || !kp_peek_copy(in, at, b, 4))
		return KP_FRAME_INCOMPLETE;
	return kp_frame_check(b, have, max_frame, frame_size);
}

enum kp_frame_status kp_peek_request(struct evbuffer *in, size_t at, int64_t max_frame, struct kp_peek *p)
{
	size_t len = evbuffer_get_length(in), buffered = len > at ? len - at : 0;
	enum kp_frame_status st = kp_peek_size(in, at, max_frame, &p->frame_size);
	if (st == KP_FRAME_MALFORMED || buffered < 4)
		return st;
	size_t avail = buffered - 4 < (size_t)p->frame_size ? buffered - 4 : (size_t)p->frame_size;
	p->whole = avail == (size_t)p->frame_size;

	/* Copy a little of the body; more only if the header is longer. */
	size_t want = avail < 64 ? avail : 64;
	for (;;) {
		uint8_t *dst = p->scratch;
		if (want > KP_PEEK_SCRATCH) {
			uint8_t *nh = realloc(p->heap, want);
			if (!nh) {
				kp_cursor_init(&p->err, NULL, 0);
				kp_cursor_fail(&p->err, KP_ERR_NOMEM, "request header");
				return KP_FRAME_MALFORMED;
			}
			p->heap = dst = nh;
		}
		if (want > 0 && !kp_peek_copy(in, at + 4, dst, want))
			return KP_FRAME_INCOMPLETE;
		kp_cursor_init(&p->err, dst, want);
		if (kp_request_header_parse(&p->err, &p->req))
			return KP_FRAME_OK;
		if (p->err.err != KP_ERR_TRUNCATED || want == (size_t)p->frame_size)
			return KP_FRAME_MALFORMED; /* the header does not fit its frame */
		if (want == avail)
			return KP_FRAME_INCOMPLETE; /* the rest of the header is still on its way */
		want = want * 4 < avail ? want * 4 : avail;
	}
}

enum kp_frame_status kp_peek_response(struct evbuffer *in, size_t at, int64_t max_frame, int32_t *frame_size,
                                      int32_t *correlation_id, bool *whole)
{
	uint8_t b[8];
	size_t len = evbuffer_get_length(in), buffered = len > at ? len - at : 0;
	enum kp_frame_status st = kp_peek_size(in, at, max_frame, frame_size);
	if (st == KP_FRAME_MALFORMED || buffered < 4)
		return st;
	if (*frame_size < 4)
		return KP_FRAME_MALFORMED; /* no room for a correlation id */
	if (buffered < 8 || !kp_peek_copy(in, at, b, 8))
		return KP_FRAME_INCOMPLETE;
	*correlation_id = (int32_t)((uint32_t)b[4] << 24 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 8 | b[7]);
	*whole = buffered - 4 >= (size_t)*frame_size;
	return KP_FRAME_OK;
}

/* A malformed probe: what and where (offset in the frame body) in p->err. */
static enum kp_frame_status kp_peek_bad(struct kp_peek *p, size_t body_pos, enum kp_error err, const char *field)
{
	kp_cursor_init(&p->err, NULL, 0);
	p->err.pos = body_pos;
	kp_cursor_fail(&p->err, err, field);
	return KP_FRAME_MALFORMED;
}

enum kp_frame_status kp_peek_produce_acks(struct evbuffer *in, size_t at, struct kp_peek *p, int16_t *acks)
{
	size_t len = evbuffer_get_length(in), body = at + 4, end = body + (size_t)p->frame_size;
	size_t have = len < end ? len : end; /* this frame's bytes buffered: [body, have) */
	size_t pos = body + p->req.size, tid = pos;
	uint8_t b[5];

	if (p->req.api_version >= 9) {
		/* TransactionalId: compact nullable string, uvarint length+1 (0: null). */
		size_t want = end - pos < 5 ? end - pos : 5, got = have - pos < want ? have - pos : want;
		struct kp_cursor c;
		if (got && !kp_peek_copy(in, pos, b, got))
			return KP_FRAME_INCOMPLETE;
		kp_cursor_init(&c, b, got);
		uint32_t n = kp_read_uvarint(&c, "TransactionalId");
		if (c.err == KP_ERR_TRUNCATED && got < want)
			return KP_FRAME_INCOMPLETE;
		if (!kp_cursor_ok(&c))
			return kp_peek_bad(p, pos - body + c.err_pos, c.err, "TransactionalId");
		pos += c.pos + (n ? n - 1 : 0);
		if (pos > end)
			return kp_peek_bad(p, tid - body, KP_ERR_BAD_LENGTH, "TransactionalId");
	} else if (p->req.api_version >= 3) {
		/* TransactionalId: nullable string, int16 length (-1: null). */
		if (end - pos < 2)
			return kp_peek_bad(p, pos - body, KP_ERR_TRUNCATED, "TransactionalId");
		if (have - pos < 2 || !kp_peek_copy(in, pos, b, 2))
			return KP_FRAME_INCOMPLETE;
		int16_t n = (int16_t)(b[0] << 8 | b[1]);
		if (n < -1)
			return kp_peek_bad(p, pos - body, KP_ERR_BAD_LENGTH, "TransactionalId");
		pos += 2 + (n > 0 ? (size_t)n : 0);
		if (pos > end)
			return kp_peek_bad(p, tid - body, KP_ERR_BAD_LENGTH, "TransactionalId");
	}
	if (end - pos < 2)
		return kp_peek_bad(p, pos - body, KP_ERR_TRUNCATED, "Acks");
	if (have < pos + 2 || !kp_peek_copy(in, pos, b, 2))
		return KP_FRAME_INCOMPLETE;
	*acks = (int16_t)(b[0] << 8 | b[1]);
	return KP_FRAME_OK;
}

bool kp_patch_request_version(struct evbuffer *in, size_t at, struct kp_peek *p, int16_t version)
{
	/* size int32, api_key int16, then api_version int16 */
	const uint8_t b[2] = {(uint8_t)((uint16_t)version >> 8), (uint8_t)version};
	struct evbuffer_ptr pos;
	struct evbuffer_iovec v[2];
	if (evbuffer_ptr_set(in, &pos, at + 6, EVBUFFER_PTR_SET) < 0)
		return false;
	int n = evbuffer_peek(in, 2, &pos, v, 2);
	if (n < 1 || n > 2)
		return false;
	size_t done = 0;
	for (int i = 0; i < n && done < 2; i++) {
		uint8_t *d = v[i].iov_base;
		for (size_t j = 0; j < v[i].iov_len && done < 2; j++)
			d[j] = b[done++];
	}
	if (done != 2)
		return false;
	p->req.api_version = version;
	return true;
}

void kp_peek_release(struct kp_peek *p)
{
	free(p->heap);
	p->heap = NULL;
}
