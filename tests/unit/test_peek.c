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

/* fetch.cut.through: the api_version is overwritten where it lies, whatever
 * chunks the header is split over, behind bytes already passed on, and
 * nothing else of the frame changes. */
Test(peek, a_request_version_is_patched_in_place_across_any_split)
{
	static const uint8_t before[5] = {1, 2, 3, 4, 5};
	for (size_t chunk = 1; chunk <= 9; chunk++) {
		size_t n = make_frame(9, 100);
		uint8_t want[200];
		memcpy(want, frame, n);
		want[6] = 0x00;
		want[7] = 0x02; /* Metadata v1 -> v2: the same header */
		struct evbuffer *b = evbuffer_new();
		evbuffer_add(b, before, sizeof(before));
		for (size_t at = 0; at < n; at += chunk) /* copied chunks: the real input buffer owns its bytes */
			evbuffer_add(b, frame + at, n - at < chunk ? n - at : chunk);
		struct kp_peek p = {0};
		cr_assert_eq(kp_peek_request(b, sizeof(before), 1 << 20, &p), KP_FRAME_OK);
		cr_assert(kp_patch_request_version(b, sizeof(before), &p, 2), "chunks of %zu", chunk);
		cr_assert_eq(p.req.api_version, 2);
		cr_assert_eq(evbuffer_get_length(b), sizeof(before) + n);
		uint8_t got[300];
		cr_assert_eq(evbuffer_copyout(b, got, sizeof(before) + n), (ev_ssize_t)(sizeof(before) + n));
		cr_assert_arr_eq(got, before, sizeof(before));
		cr_assert_arr_eq(got + sizeof(before), want, n, "chunks of %zu", chunk);
		struct kp_peek again = {0};
		cr_assert_eq(kp_peek_request(b, sizeof(before), 1 << 20, &again), KP_FRAME_OK);
		cr_assert_eq(again.req.api_version, 2);
		cr_assert_eq(again.req.correlation_id, 42);
		kp_peek_release(&again);
		kp_peek_release(&p);
		evbuffer_free(b);
	}
	struct evbuffer *b = evbuffer_new();
	evbuffer_add(b, frame, 7); /* the version's second byte is not there */
	struct kp_peek p = {0};
	cr_assert_not(kp_patch_request_version(b, 0, &p, 2));
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

/* ---- Produce: the acks probe ------------------------------------------- */

static uint8_t pframe[512];

/*
 * A Produce request frame of version ver (header v1, or v2 with its empty
 * tag section from v9) whose body starts with `after` (TransactionalId and
 * Acks as a case lays them out), then TimeoutMs and an empty topic list.
 * Returns the frame's length; *acks_end: where Acks ends (0: not in after).
 */
static size_t make_produce(int16_t ver, const uint8_t *after, size_t after_len)
{
	size_t n = 4;
	const uint8_t hdr[] = {0x00, 0x00, 0x00, (uint8_t)ver, 0x00, 0x00, 0x00, 0x07, 0x00, 0x03, 'c', 'i', 'd'};
	memcpy(pframe + n, hdr, sizeof(hdr));
	n += sizeof(hdr);
	if (ver >= 9)
		pframe[n++] = 0x00; /* header tags */
	memcpy(pframe + n, after, after_len);
	n += after_len;
	uint32_t size = (uint32_t)(n - 4);
	pframe[0] = (uint8_t)(size >> 24);
	pframe[1] = (uint8_t)(size >> 16);
	pframe[2] = (uint8_t)(size >> 8);
	pframe[3] = (uint8_t)size;
	return n;
}

/* The frame's first len bytes split at `cut`, then (when follow) another
 * frame's worth of 0xff bytes that a probe must never read. */
static struct evbuffer *produce_buffer(size_t len, size_t cut, bool follow)
{
	static const uint8_t next[64] = {[0 ... 63] = 0xff};
	struct evbuffer *b = evbuffer_new();
	cut = cut < len ? cut : len;
	evbuffer_add_reference(b, pframe, cut, NULL, NULL);
	evbuffer_add_reference(b, pframe + cut, len - cut, NULL, NULL);
	if (follow)
		evbuffer_add_reference(b, next, sizeof(next), NULL, NULL);
	return b;
}

/* The probe on the first len bytes of the frame (of n), split at every byte. */
static void probe_every_split(size_t len, size_t n, enum kp_frame_status want, int16_t want_acks,
                              enum kp_error want_err, const char *what)
{
	for (size_t cut = 0; cut <= len; cut++) {
		struct evbuffer *b = produce_buffer(len, cut, len == n);
		size_t before = evbuffer_get_length(b);
		int chunks = evbuffer_peek(b, -1, NULL, NULL, 0);
		struct kp_peek p = {0};
		int16_t acks = 12345;
		enum kp_frame_status st = kp_peek_request(b, 0, 1 << 20, &p);
		if (st == KP_FRAME_OK) {
			cr_assert_eq(p.whole, len == n);
			st = kp_peek_produce_acks(b, 0, &p, &acks);
		} else {
			cr_assert_eq(st, KP_FRAME_INCOMPLETE, "%s: the header of %zu of %zu bytes", what, len, n);
			cr_assert_lt(len, 4 + (size_t)p.frame_size, "%s: a whole frame's header must parse", what);
		}
		if (want == KP_FRAME_INCOMPLETE) {
			cr_assert_eq(st, KP_FRAME_INCOMPLETE, "%s: %zu of %zu bytes, cut at %zu: %d, wanted incomplete",
			             what, len, n, cut, st);
		} else if (want == KP_FRAME_OK) {
			cr_assert_eq(st, KP_FRAME_OK, "%s: %zu of %zu bytes, cut at %zu: %d (%s reading %s)", what, len,
			             n, cut, st, kp_error_name(p.err.err), p.err.err_field);
			cr_assert_eq(acks, want_acks, "%s: acks %d, wanted %d", what, acks, want_acks);
		} else if (len == n) {
			cr_assert_eq(st, KP_FRAME_MALFORMED, "%s: whole, cut at %zu: %d, wanted malformed", what, cut,
			             st);
			cr_assert_eq(p.err.err, want_err, "%s: %s, wanted %s", what, kp_error_name(p.err.err),
			             kp_error_name(want_err));
			cr_assert_not_null(p.err.err_field);
			cr_assert_leq(p.err.err_pos, n - 4 + 5, "%s: error offset %zu", what, p.err.err_pos);
		} else {
			cr_assert_neq(st, KP_FRAME_OK, "%s: %zu of %zu bytes: a malformed frame read as ok", what, len,
			              n);
		}
		cr_assert_eq(evbuffer_get_length(b), before, "nothing consumed");
		cr_assert_eq(evbuffer_peek(b, -1, NULL, NULL, 0), chunks, "nothing pulled up");
		kp_peek_release(&p);
		evbuffer_free(b);
	}
}

/* The probe on the first len bytes of the frame, split in the middle. */
static void probe_once(size_t len, enum kp_frame_status want, const char *what)
{
	struct evbuffer *b = produce_buffer(len, len / 2, false);
	struct kp_peek p = {0};
	int16_t acks;
	cr_assert_eq(kp_peek_request(b, 0, 1 << 20, &p), KP_FRAME_OK);
	cr_assert_eq(kp_peek_produce_acks(b, 0, &p, &acks), want, "%s: %zu bytes", what, len);
	evbuffer_free(b);
}

Test(peek, produce_acks_are_read_behind_every_transactional_id_at_every_version_and_split)
{
	static const struct {
		const char *name;
		int len; /* -1 null */
	} tids[] = {{"null", -1}, {"empty", 0}, {"txn-7", 5}, {"long", 200}};
	static const int16_t acks_values[] = {-1, 0, 1, -5};
	for (int16_t ver = 0; ver <= 13; ver++) {
		for (size_t t = 0; t < sizeof(tids) / sizeof(tids[0]); t++) {
			for (size_t a = 0; a < sizeof(acks_values) / sizeof(acks_values[0]); a++) {
				uint8_t after[300];
				size_t k = 0;
				if (ver >= 9) {
					after[k++] = (uint8_t)((tids[t].len + 1) | (tids[t].len + 1 >= 128 ? 0x80 : 0));
					if (tids[t].len + 1 >= 128)
						after[k++] = (uint8_t)((tids[t].len + 1) >> 7);
				} else if (ver >= 3) {
					after[k++] = (uint8_t)((uint16_t)tids[t].len >> 8);
					after[k++] = (uint8_t)tids[t].len;
				}
				if (ver >= 3 && tids[t].len > 0) {
					memset(after + k, 'T', (size_t)tids[t].len);
					k += (size_t)tids[t].len;
				}
				after[k++] = (uint8_t)((uint16_t)acks_values[a] >> 8);
				after[k++] = (uint8_t)acks_values[a];
				size_t acks_end = k;
				const uint8_t rest[] = {0x00, 0x00, 0x75, 0x30, 0x00, 0x00, 0x00, 0x00};
				memcpy(after + k, rest, sizeof(rest));
				k += sizeof(rest);
				size_t n = make_produce(ver, after, k);
				size_t hdr = n - k;
				char what[64];
				snprintf(what, sizeof(what), "v%d TransactionalId %s acks %d", ver, tids[t].name,
				         acks_values[a]);
				/* Every length from a whole header on; only one split for the long ones. */
				for (size_t len = hdr; len <= n; len++) {
					enum kp_frame_status want =
					    len >= hdr + acks_end ? KP_FRAME_OK : KP_FRAME_INCOMPLETE;
					if (tids[t].len > 10 && len != n && len != hdr + acks_end - 1) {
						probe_once(len, want, what);
						continue;
					}
					probe_every_split(len, n, want, acks_values[a], KP_OK, what);
				}
			}
		}
	}
}

Test(peek, produce_acks_of_a_malformed_frame_are_refused_never_read_from_the_next_frame)
{
	static const struct {
		const char *name;
		int16_t ver;
		uint8_t after[12];
		size_t len;
		enum kp_frame_status want;
		enum kp_error err;
		int16_t acks;
	} cases[] = {
	    {"v3 TransactionalId length -5", 3, {0xff, 0xfb, 0x00, 0x01}, 4, KP_FRAME_MALFORMED, KP_ERR_BAD_LENGTH, 0},
	    {"v8 TransactionalId length -2", 8, {0xff, 0xfe, 0x00, 0x01}, 4, KP_FRAME_MALFORMED, KP_ERR_BAD_LENGTH, 0},
	    {"v3 TransactionalId past its frame", 3, {0x01, 0x2c, 0x00, 0x01}, 4, KP_FRAME_MALFORMED,
	     KP_ERR_BAD_LENGTH, 0},
	    {"v8 frame ends inside the TransactionalId length", 8, {0x00}, 1, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v3 frame ends before Acks", 3, {0xff, 0xff}, 2, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v5 frame ends inside Acks", 5, {0x00, 0x00, 0x00}, 3, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v0 frame ends after the header", 0, {0}, 0, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v9 compact TransactionalId past its frame", 9, {0xc8, 0x01, 0x00, 0x01}, 4, KP_FRAME_MALFORMED,
	     KP_ERR_BAD_LENGTH, 0},
	    {"v13 compact TransactionalId of 2^32-2 bytes", 13, {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x01}, 7,
	     KP_FRAME_MALFORMED, KP_ERR_BAD_LENGTH, 0},
	    {"v9 overlong varint", 9, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x01}, 8, KP_FRAME_MALFORMED,
	     KP_ERR_BAD_VARINT, 0},
	    {"v11 varint over 32 bits", 11, {0xff, 0xff, 0xff, 0xff, 0x1f, 0x00, 0x01}, 7, KP_FRAME_MALFORMED,
	     KP_ERR_BAD_VARINT, 0},
	    {"v10 frame ends inside the varint", 10, {0x80}, 1, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v9 frame ends before the TransactionalId", 9, {0}, 0, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v12 frame ends before Acks", 12, {0x01}, 1, KP_FRAME_MALFORMED, KP_ERR_TRUNCATED, 0},
	    {"v9 non-minimal varint of an empty TransactionalId (Kafka reads it)", 9, {0x81, 0x00, 0x00, 0x01}, 4,
	     KP_FRAME_OK, KP_OK, 1},
	    {"v13 non-minimal varint of a null TransactionalId", 13, {0x80, 0x80, 0x00, 0xff, 0xff}, 5, KP_FRAME_OK,
	     KP_OK, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = make_produce(cases[i].ver, cases[i].after, cases[i].len);
		size_t hdr = n - cases[i].len;
		for (size_t len = hdr; len <= n; len++)
			probe_every_split(len, n, len == n ? cases[i].want : KP_FRAME_MALFORMED, cases[i].acks,
			                  cases[i].err, cases[i].name);
	}
}
