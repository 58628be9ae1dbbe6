/*
 * Wire primitives: what each encoding looks like, and what each kind of bad
 * input gives. Reads never go past the input and the first error sticks.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdlib.h>
#include <string.h>

#include "codec_util.h"
#include "cursor.h"
#include "header.h"
#include "writer.h"

static struct kp_cursor cur(const uint8_t *p, size_t n)
{
	struct kp_cursor c;
	kp_cursor_init(&c, p, n);
	return c;
}

Test(primitives, fixed_width_integers_are_big_endian)
{
	const uint8_t b[] = {0x01, 0x02, 0xff, 0xfe, 0x00, 0x00, 0x01, 0x00, 0x80, 0, 0, 0, 0, 0, 0, 1};
	struct kp_cursor c = cur(b, sizeof(b));
	cr_assert_eq(kp_read_i16(&c, "a"), 0x0102);
	cr_assert_eq(kp_read_i16(&c, "b"), -2);
	cr_assert_eq(kp_read_i32(&c, "c"), 256);
	cr_assert_eq(kp_read_i64(&c, "d"), (int64_t)0x8000000000000001ULL);
	cr_assert(kp_cursor_ok(&c));
	cr_assert_eq(kp_cursor_left(&c), 0);
}

struct varint_case {
	uint8_t bytes[12];
	size_t len;
	int64_t value;
	int kind; /* 0 uvarint, 1 varint (zigzag), 2 varlong */
};

static struct varint_case varints[] = {
    {{0x00}, 1, 0, 0},
    {{0x7f}, 1, 127, 0},
    {{0xac, 0x02}, 2, 300, 0},
    {{0xff, 0xff, 0xff, 0xff, 0x0f}, 5, 4294967295LL, 0},
    {{0x01}, 1, -1, 1},
    {{0x02}, 1, 1, 1},
    {{0xfe, 0xff, 0xff, 0xff, 0x0f}, 5, 2147483647, 1},
    {{0xff, 0xff, 0xff, 0xff, 0x0f}, 5, -2147483648LL, 1},
    {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 10, INT64_MIN, 2},
};

ParameterizedTestParameters(primitives, varints_decode_and_encode_canonically)
{
	return cr_make_param_array(struct varint_case, varints, sizeof(varints) / sizeof(varints[0]));
}

ParameterizedTest(struct varint_case *vc, primitives, varints_decode_and_encode_canonically)
{
	struct kp_cursor c = cur(vc->bytes, vc->len);
	struct kp_writer w;
	size_t n;
	int64_t got = vc->kind == 0   ? (int64_t)kp_read_uvarint(&c, "v")
	              : vc->kind == 1 ? kp_read_varint(&c, "v")
	                              : kp_read_varlong(&c, "v");
	cr_assert(kp_cursor_ok(&c));
	cr_assert_eq(got, vc->value);
	cr_assert_eq(c.pos, vc->len);
	kp_writer_init(&w);
	if (vc->kind == 0)
		kp_write_uvarint(&w, (uint32_t)vc->value);
	else if (vc->kind == 1)
		kp_write_varint(&w, (int32_t)vc->value);
	else
		kp_write_varlong(&w, vc->value);
	uint8_t *out = kp_writer_flatten(&w, &n);
	cr_assert_eq(n, vc->len);
	cr_assert_eq(memcmp(out, vc->bytes, n), 0);
	free(out);
	kp_writer_free(&w);
}

Test(primitives, overlong_varints_are_rejected_at_their_start)
{
	const uint8_t six[] = {0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	const uint8_t wide[] = {0xff, 0xff, 0xff, 0xff, 0x1f}; /* 33 bits */
	const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
	struct kp_cursor c = cur(six, sizeof(six));
	kp_read_i8(&c, "lead");
	kp_read_uvarint(&c, "count");
	cr_assert_eq(c.err, KP_ERR_BAD_VARINT);
	cr_assert_eq(c.err_pos, 1);
	cr_assert_str_eq(c.err_field, "count");
	c = cur(wide, sizeof(wide));
	kp_read_uvarint(&c, "v");
	cr_assert_eq(c.err, KP_ERR_BAD_VARINT);
	c = cur(eleven, sizeof(eleven));
	kp_read_varlong(&c, "v");
	cr_assert_eq(c.err, KP_ERR_BAD_VARINT);
	c = cur(six + 1, 3);
	kp_read_uvarint(&c, "v");
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
}

Test(primitives, strings_and_their_bad_lengths)
{
	uint8_t buf[32];
	struct kp_cursor c;
	struct kp_span s;

	c = cur(buf, unhex("0003 616263", buf, sizeof(buf)));
	s = kp_read_string(&c, false, false, "Host");
	cr_assert(kp_cursor_ok(&c) && s.len == 3 && memcmp(s.ptr, "abc", 3) == 0);

	c = cur(buf, unhex("04 616263", buf, sizeof(buf))); /* compact: length+1 */
	s = kp_read_string(&c, true, false, "Host");
	cr_assert(kp_cursor_ok(&c) && s.len == 3);

	c = cur(buf, unhex("ffff", buf, sizeof(buf)));
	s = kp_read_string(&c, false, true, "Rack");
	cr_assert(kp_cursor_ok(&c) && s.len == -1);

	c = cur(buf, unhex("ffff", buf, sizeof(buf)));
	kp_read_string(&c, false, false, "Host");
	cr_assert_eq(c.err, KP_ERR_BAD_VALUE, "null where not nullable");

	c = cur(buf, unhex("00", buf, sizeof(buf)));
	kp_read_string(&c, true, false, "Host");
	cr_assert_eq(c.err, KP_ERR_BAD_VALUE, "compact null where not nullable");

	c = cur(buf, unhex("fffe", buf, sizeof(buf)));
	kp_read_string(&c, false, true, "Rack");
	cr_assert_eq(c.err, KP_ERR_BAD_LENGTH);

	c = cur(buf, unhex("0004 616263", buf, sizeof(buf)));
	kp_read_string(&c, false, false, "Host");
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
	cr_assert_eq(c.err_pos, 0, "the error points at the length");

	c = cur(buf, unhex("7fffffff 00", buf, sizeof(buf)));
	kp_read_bytes(&c, false, false, "Records");
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
}

Test(primitives, array_counts_are_checked_before_allocation)
{
	uint8_t buf[16];
	struct kp_cursor c = cur(buf, unhex("7fffffff 0000", buf, sizeof(buf)));
	kp_read_array_len(&c, false, false, 4, "Brokers");
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
	c = cur(buf, unhex("fffffffe", buf, sizeof(buf)));
	kp_read_array_len(&c, false, true, 4, "Brokers");
	cr_assert_eq(c.err, KP_ERR_BAD_LENGTH);
	c = cur(buf, unhex("ffffffff", buf, sizeof(buf)));
	cr_assert_eq(kp_read_array_len(&c, false, true, 4, "Topics"), -1);
	cr_assert(kp_cursor_ok(&c));
	c = cur(buf, unhex("03 0000", buf, sizeof(buf))); /* compact count 2, 2 bytes left, 1 each */
	cr_assert_eq(kp_read_array_len(&c, true, false, 1, "Brokers"), 2);
}

Test(primitives, the_first_error_sticks)
{
	const uint8_t b[] = {0x00};
	struct kp_cursor c = cur(b, sizeof(b));
	kp_read_i32(&c, "first");
	kp_read_i8(&c, "second");
	cr_assert_eq(c.err, KP_ERR_TRUNCATED);
	cr_assert_str_eq(c.err_field, "first");
	cr_assert_eq(kp_read_i8(&c, "third"), 0);
	cr_assert_eq(c.pos, 0);
}

Test(primitives, writer_references_bytes_instead_of_copying_them)
{
	static const uint8_t batch[] = "record batch bytes";
	struct kp_writer w;
	size_t n;
	kp_writer_init(&w);
	kp_write_i16(&w, 7);
	kp_write_bytes(&w, false, (struct kp_span){batch, 18}, true);
	kp_write_i8(&w, 1);
	kp_writer_finish(&w);
	cr_assert_eq(w.nsegs, 3);
	cr_assert_eq(w.segs[1].ref, batch, "the batch is referenced, not copied");
	cr_assert_eq(kp_writer_size(&w), 2 + 4 + 18 + 1);
	uint8_t *flat = kp_writer_flatten(&w, &n);
	cr_assert_eq(n, 25);
	cr_assert_eq(memcmp(flat + 6, batch, 18), 0);
	free(flat);
	kp_writer_free(&w);
}

Test(primitives, frame_sizes_are_checked_before_anything_is_allocated)
{
	int32_t size = 0;
	const uint8_t tls_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00}; /* a TLS ClientHello on a plain port */
	const uint8_t negative[] = {0xff, 0xff, 0xff, 0xff};
	const uint8_t small[] = {0x00, 0x00, 0x00, 0x02, 0xaa};
	cr_assert_eq(kp_frame_check(tls_hello, sizeof(tls_hello), 100 * 1024 * 1024, &size), KP_FRAME_MALFORMED);
	cr_assert_eq(kp_frame_check(negative, 4, 1000, &size), KP_FRAME_MALFORMED);
	cr_assert_eq(kp_frame_check(small, 3, 1000, &size), KP_FRAME_INCOMPLETE);
	cr_assert_eq(kp_frame_check(small, 5, 1000, &size), KP_FRAME_INCOMPLETE);
	cr_assert_eq(size, 2);
	const uint8_t whole[] = {0x00, 0x00, 0x00, 0x01, 0xaa};
	cr_assert_eq(kp_frame_check(whole, 5, 1000, &size), KP_FRAME_OK);
}

Test(primitives, request_headers_of_each_version)
{
	uint8_t buf[64];
	struct kp_request_header h;
	struct kp_cursor c;

	/* v1: Metadata v8, corr 5, client "ab" */
	c = cur(buf, unhex("0003 0008 00000005 0002 6162", buf, sizeof(buf)));
	cr_assert(kp_request_header_parse(&c, &h));
	cr_assert_eq(h.header_version, 1);
	cr_assert_eq(h.size, 12);
	cr_assert_eq(h.client_id.len, 2);

	/* v2: Metadata v9, null client id, one unknown tag 3 of 1 byte */
	c = cur(buf, unhex("0003 0009 00000006 ffff 01 03 01 ee", buf, sizeof(buf)));
	cr_assert(kp_request_header_parse(&c, &h));
	cr_assert_eq(h.header_version, 2);
	cr_assert_eq(h.client_id.len, -1);
	cr_assert_eq(h.tags.len, 4);

	/* v0: ControlledShutdown v0 has no client id */
	c = cur(buf, unhex("0007 0000 00000001", buf, sizeof(buf)));
	cr_assert(kp_request_header_parse(&c, &h));
	cr_assert_eq(h.header_version, 0);
	cr_assert_eq(h.size, 8);

	/* a negative version is malformed */
	c = cur(buf, unhex("0003 ffff 00000001 0000", buf, sizeof(buf)));
	cr_assert_not(kp_request_header_parse(&c, &h));
	cr_assert_eq(c.err, KP_ERR_BAD_VALUE);
	cr_assert_str_eq(c.err_field, "request_api_version");

	/* tags out of order in a header */
	c = cur(buf, unhex("0003 0009 00000006 ffff 02 03 00 01 00", buf, sizeof(buf)));
	cr_assert_not(kp_request_header_parse(&c, &h));
	cr_assert_eq(c.err, KP_ERR_BAD_TAGS);
}

Test(primitives, a_held_frame_is_renumbered_in_place_and_a_writer_appends_another)
{
	uint8_t req[] = {0, 1, 0, 12, 0, 0, 0, 7, 0xff, 0xff}, resp[] = {0, 0, 0, 7, 0};
	cr_assert(kp_request_header_set_correlation_id(req, sizeof(req), 0x01020304));
	cr_assert_arr_eq(req, ((uint8_t[]){0, 1, 0, 12, 1, 2, 3, 4, 0xff, 0xff}), sizeof(req));
	cr_assert(kp_response_header_set_correlation_id(resp, sizeof(resp), -2));
	cr_assert_arr_eq(resp, ((uint8_t[]){0xff, 0xff, 0xff, 0xfe, 0}), sizeof(resp));
	cr_assert_not(kp_request_header_set_correlation_id(req, 7, 1), "too short to hold it");
	cr_assert_not(kp_response_header_set_correlation_id(resp, 3, 1));

	static const uint8_t records[] = "records";
	struct kp_writer a, b;
	kp_writer_init(&a);
	kp_writer_init(&b);
	kp_write_i16(&b, 5);
	kp_write_ref(&b, records, 7);
	kp_write_i8(&b, 9);
	kp_write_i32(&a, 1);
	kp_write_writer(&a, &b);
	cr_assert_eq(kp_writer_size(&a), 4 + 2 + 7 + 1);
	cr_assert_eq(kp_writer_referenced(&a), 7, "references stay references");
	size_t len;
	uint8_t *flat = kp_writer_flatten(&a, &len);
	cr_assert_arr_eq(flat, ((uint8_t[]){0, 0, 0, 1, 0, 5, 'r', 'e', 'c', 'o', 'r', 'd', 's', 9}), len);
	free(flat);
	kp_writer_free(&a);
	kp_writer_free(&b);
}
