/*
 * The hot-path look at an evbuffer: size and request header read across
 * chunk boundaries, without pulling the body together or consuming anything.
 */
#include <criterion/criterion.h>
#include <event2/buffer.h>
#include <string.h>

#include "codec_util.h"
#include "peek.h"

static uint8_t frame[70000];

/* A Metadata v1 request frame with a client id of idlen bytes and a body of bodylen. */
static size_t make_frame(size_t idlen, size_t bodylen)
{
	size_t n = 4;
	const uint8_t hdr[] = {0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2a};
	memcpy(frame + n, hdr, 8);
	n += 8;
	frame[n++] = (uint8_t)(idlen >> 8);
	frame[n++] = (uint8_t)idlen;
	memset(frame + n, 'c', idlen);
	n += idlen;
	memset(frame + n, 0xab, bodylen);
	n += bodylen;
	uint32_t size = (uint32_t)(n - 4);
	frame[0] = (uint8_t)(size >> 24);
	frame[1] = (uint8_t)(size >> 16);
	frame[2] = (uint8_t)(size >> 8);
	frame[3] = (uint8_t)size;
	return n;
}

/* An evbuffer holding frame[0..len) in chunks of `chunk` bytes (by reference). */
static struct evbuffer *chunked(size_t len, size_t chunk)
{
	struct evbuffer *b = evbuffer_new();
	for (size_t at = 0; at < len; at += chunk)
		evbuffer_add_reference(b, frame + at, len - at < chunk ? len - at : chunk, NULL, NULL);
	return b;
}

Test(peek, a_header_split_over_chunks_is_read_without_moving_the_body)
{
	size_t n = make_frame(9, 5000);
	struct evbuffer *b = chunked(n, 3);
	int chunks = evbuffer_peek(b, -1, NULL, NULL, 0);
	struct kp_peek p = {0};
	cr_assert_eq(kp_peek_request(b, 0, 1 << 20, &p), KP_FRAME_OK);
	cr_assert(p.whole);
	cr_assert_eq(p.frame_size, (int32_t)(n - 4));
	cr_assert_eq(p.req.api_key, 3);
	cr_assert_eq(p.req.api_version, 1);
	cr_assert_eq(p.req.correlation_id, 42);
	cr_assert_eq(p.req.client_id.len, 9);
	cr_assert_eq(evbuffer_get_length(b), n, "nothing consumed");
	cr_assert_eq(evbuffer_peek(b, -1, NULL, NULL, 0), chunks, "nothing pulled up");
	kp_peek_release(&p);
	evbuffer_free(b);
}

Test(peek, a_long_client_id_beyond_the_scratch_space_still_parses)
{
	size_t n = make_frame(3000, 10);
	struct evbuffer *b = chunked(n, 1000);
	struct kp_peek p = {0};
	cr_assert_eq(kp_peek_request(b, 0, 1 << 20, &p), KP_FRAME_OK);
	cr_assert_eq(p.req.client_id.len, 3000);
	cr_assert_eq(p.req.client_id.ptr[2999], 'c');
	kp_peek_release(&p);
	evbuffer_free(b);
}

Test(peek, the_header_of_a_large_frame_is_known_before_its_body_arrives)
{
	size_t n = make_frame(4, 60000);
	struct evbuffer *b = chunked(100, 100); /* only the first 100 bytes are here */
	struct kp_peek p = {0};
	cr_assert_eq(kp_peek_request(b, 0, 1 << 20, &p), KP_FRAME_OK);
	cr_assert_not(p.whole);
	cr_assert_eq(p.frame_size, (int32_t)(n - 4));
	evbuffer_free(b);
}

Test(peek, partial_sizes_and_headers_wait_for_more)
{
	size_t n = make_frame(40, 10);
	(void)n;
	struct kp_peek p = {0};
	for (size_t have = 0; have < 4 + 8 + 2 + 40; have++) {
		struct evbuffer *b = chunked(have, 7);
		cr_assert_eq(kp_peek_request(b, 0, 1 << 20, &p), KP_FRAME_INCOMPLETE, "with %zu bytes", have);
		evbuffer_free(b);
	}
	kp_peek_release(&p);
}

Test(peek, hostile_sizes_and_headers_are_malformed)
{
	struct kp_peek p = {0};
	struct evbuffer *b = evbuffer_new();
	const uint8_t tls[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
	evbuffer_add(b, tls, sizeof(tls));
	cr_assert_eq(kp_peek_request(b, 0, 100 * 1024 * 1024, &p), KP_FRAME_MALFORMED, "a TLS hello on a plain port");
	evbuffer_free(b);

	/* a frame of 6 bytes cannot hold a header of 8 + client id */
	b = evbuffer_new();
	const uint8_t tiny[] = {0, 0, 0, 6, 0, 3, 0, 1, 0, 0};
	evbuffer_add(b, tiny, sizeof(tiny));
	cr_assert_eq(kp_peek_request(b, 0, 1 << 20, &p), KP_FRAME_MALFORMED);
	cr_assert_eq(p.err.err, KP_ERR_TRUNCATED);
	evbuffer_free(b);

	/* a response too short for its correlation id */
	int32_t size, corr;
	bool whole;
	b = evbuffer_new();
	const uint8_t shortresp[] = {0, 0, 0, 2, 0, 0};
	evbuffer_add(b, shortresp, sizeof(shortresp));
	cr_assert_eq(kp_peek_response(b, 0, 1 << 20, &size, &corr, &whole), KP_FRAME_MALFORMED);
	evbuffer_free(b);
	kp_peek_release(&p);
}

Test(peek, a_response_correlation_id_is_read_from_its_first_bytes)
{
	int32_t size, corr;
	bool whole;
	struct evbuffer *b = evbuffer_new();
	const uint8_t resp[] = {0, 0, 0, 100, 0, 0, 0x01, 0x02, 0xff};
	evbuffer_add(b, resp, 7);
	cr_assert_eq(kp_peek_response(b, 0, 1 << 20, &size, &corr, &whole), KP_FRAME_INCOMPLETE);
	evbuffer_add(b, resp + 7, 2);
	cr_assert_eq(kp_peek_response(b, 0, 1 << 20, &size, &corr, &whole), KP_FRAME_OK);
	cr_assert_eq(corr, 0x0102);
	cr_assert_eq(size, 100);
	cr_assert_not(whole);
	evbuffer_free(b);
}

Test(peek, a_frame_behind_bytes_already_passed_on_is_read_at_its_offset)
{
	size_t n = make_frame(5, 300);
	struct evbuffer *b = evbuffer_new();
	const uint8_t before[37] = {0xee};
	evbuffer_add(b, before, sizeof(before)); /* the tail of an earlier frame, still on its way out */
	evbuffer_add(b, frame, 20);
	struct kp_peek p = {0};
	cr_assert_eq(kp_peek_request(b, sizeof(before), 1 << 20, &p), KP_FRAME_OK);
	cr_assert_not(p.whole);
	cr_assert_eq(p.req.correlation_id, 42);
	cr_assert_eq(p.req.client_id.len, 5);
	evbuffer_add(b, frame + 20, n - 20);
	cr_assert_eq(kp_peek_request(b, sizeof(before), 1 << 20, &p), KP_FRAME_OK);
	cr_assert(p.whole);
	cr_assert_eq(kp_peek_request(b, sizeof(before) + n, 1 << 20, &p), KP_FRAME_INCOMPLETE, "nothing after it");
	cr_assert_eq(kp_peek_request(b, sizeof(before) + n + 9, 1 << 20, &p), KP_FRAME_INCOMPLETE,
	             "an offset past the end is not an error");

	int32_t size, corr;
	bool whole;
	cr_assert_eq(kp_peek_response(b, sizeof(before), 1 << 20, &size, &corr, &whole), KP_FRAME_OK);
	cr_assert_eq(size, (int32_t)(n - 4));
	cr_assert(whole);
	kp_peek_release(&p);
	evbuffer_free(b);
}
