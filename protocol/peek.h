/*
 * peek: the hot-path look at a connection's input. Reads the frame size and
 * the request header (or a response's correlation id) straight from an
 * evbuffer, copying only header bytes: the body is never pulled up or moved,
 * so a pass-through frame can then be moved to the other side untouched.
 */
#ifndef KP_PEEK_H
#define KP_PEEK_H

#include <event2/buffer.h>

#include "header.h"

/* Header bytes are copied into this; a header longer than it (a client id
 * of thousands of bytes) is still parsed, from a heap copy. */
#define KP_PEEK_SCRATCH 256

struct kp_peek {
	int32_t frame_size;           /* body size, without the 4 size bytes */
	bool whole;                   /* all 4 + frame_size bytes are buffered */
	struct kp_request_header req; /* spans point into scratch (or heap) */
	uint8_t scratch[KP_PEEK_SCRATCH];
	uint8_t *heap;        /* freed by kp_peek_release() */
	struct kp_cursor err; /* on KP_FRAME_MALFORMED from a bad header: what and where */
};

/*
 * Both look at the frame that starts at byte `at` of in (bytes before it may
 * be on their way out already).
 *
 * KP_FRAME_OK: the request header is parsed; p->whole says whether the whole
 * frame is buffered (a large frame can be forwarded as it arrives).
 * KP_FRAME_INCOMPLETE: wait for more bytes (frame_size is set once known).
 * KP_FRAME_MALFORMED: size < 0 or > max_frame, or a header that cannot be
 * parsed (p->err says where); the connection should be closed.
 */
enum kp_frame_status kp_peek_request(struct evbuffer *in, size_t at, int64_t max_frame, struct kp_peek *p);

/* Frame size and correlation id of the response at `at`, as soon as its
 * first 8 bytes are there; *whole says whether all of it is. */
enum kp_frame_status kp_peek_response(struct evbuffer *in, size_t at, int64_t max_frame, int32_t *frame_size,
                                      int32_t *correlation_id, bool *whole);

/*
 * Acks of the Produce request whose header kp_peek_request() just read (it
 * returned KP_FRAME_OK for the frame at `at`): v0-2 right after the header,
 * v3+ after the TransactionalId (a nullable string, compact from v9) that
 * is skipped by its length. Reads across the evbuffer's chunks, copying
 * only those few bytes, and never past this frame.
 *
 * KP_FRAME_OK: *acks is the value as sent (0: the broker will not answer).
 * KP_FRAME_INCOMPLETE: the bytes up to Acks have not all arrived (never
 * when p->whole). KP_FRAME_MALFORMED: p->err says what and where (byte
 * offset in the frame body): a TransactionalId length below -1, over 5
 * varint bytes, or reaching past the frame, or a frame that ends before
 * Acks.
 */
enum kp_frame_status kp_peek_produce_acks(struct evbuffer *in, size_t at, struct kp_peek *p, int16_t *acks);

/*
 * Overwrites the api_version of the request header at `at` (its first 8
 * bytes are buffered: kp_peek_request() returned KP_FRAME_OK for it) and
 * p->req.api_version with it, in place: nothing is moved, and the bytes
 * may straddle two of the evbuffer's chunks. False when those bytes are
 * not in `in`.
 */
bool kp_patch_request_version(struct evbuffer *in, size_t at, struct kp_peek *p, int16_t version);

void kp_peek_release(struct kp_peek *p);

#endif
