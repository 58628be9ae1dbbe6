/*
 * skip: the wire primitives read from pieces (a socket buffer's chunks),
 * as the in-place walks of proxy/ use them. Every case is read whole, in
 * one-byte pieces and split in two at every byte: the answer never depends
 * on where the chunks end.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "skip.h"

enum prim { UVARINT, LEN_COMPACT, LEN_INT16, LEN_INT32, TAGS };

struct prim_case {
	const char *name;
	enum prim kind;
	uint8_t bytes[16];
	size_t len;
	enum kp_error err; /* KP_OK: reads value and consumes all len bytes */
	int64_t value;     /* uvarint / length read */
};

static const struct prim_case cases[] = {
    {"uvarint 0", UVARINT, {0x00}, 1, KP_OK, 0},
    {"uvarint 127", UVARINT, {0x7f}, 1, KP_OK, 127},
    {"uvarint 128", UVARINT, {0x80, 0x01}, 2, KP_OK, 128},
    {"uvarint max", UVARINT, {0xff, 0xff, 0xff, 0xff, 0x0f}, 5, KP_OK, 0xffffffffLL},
    {"uvarint 0 non-minimal (as Kafka reads it)", UVARINT, {0x80, 0x00}, 2, KP_OK, 0},
    {"uvarint 1 in 5 bytes", UVARINT, {0x81, 0x80, 0x80, 0x80, 0x00}, 5, KP_OK, 1},
    {"uvarint over 32 bits", UVARINT, {0xff, 0xff, 0xff, 0xff, 0x1f}, 5, KP_ERR_BAD_VARINT, 0},
    {"uvarint overlong: 6 bytes", UVARINT, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 6, KP_ERR_BAD_VARINT, 0},
    {"uvarint truncated", UVARINT, {0x80}, 1, KP_ERR_TRUNCATED, 0},
    {"uvarint empty", UVARINT, {0}, 0, KP_ERR_TRUNCATED, 0},
    {"compact length null", LEN_COMPACT, {0x00}, 1, KP_OK, -1},
    {"compact length 0", LEN_COMPACT, {0x01}, 1, KP_OK, 0},
    {"compact length 200", LEN_COMPACT, {0xc9, 0x01}, 2, KP_OK, 200},
    {"compact length overlong", LEN_COMPACT, {0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 6, KP_ERR_BAD_VARINT, 0},
    {"compact length truncated", LEN_COMPACT, {0xc9}, 1, KP_ERR_TRUNCATED, 0},
    {"int16 length null", LEN_INT16, {0xff, 0xff}, 2, KP_OK, -1},
    {"int16 length 258", LEN_INT16, {0x01, 0x02}, 2, KP_OK, 258},
    {"int16 length -2", LEN_INT16, {0xff, 0xfe}, 2, KP_ERR_BAD_LENGTH, 0},
    {"int16 length most negative", LEN_INT16, {0x80, 0x00}, 2, KP_ERR_BAD_LENGTH, 0},
    {"int16 length truncated", LEN_INT16, {0x00}, 1, KP_ERR_TRUNCATED, 0},
    {"int32 length null", LEN_INT32, {0xff, 0xff, 0xff, 0xff}, 4, KP_OK, -1},
    {"int32 length max", LEN_INT32, {0x7f, 0xff, 0xff, 0xff}, 4, KP_OK, 0x7fffffff},
    {"int32 length -2", LEN_INT32, {0xff, 0xff, 0xff, 0xfe}, 4, KP_ERR_BAD_LENGTH, 0},
    {"int32 length truncated", LEN_INT32, {0x00, 0x00, 0x01}, 3, KP_ERR_TRUNCATED, 0},
    {"tags: none", TAGS, {0x00}, 1, KP_OK, 0},
    {"tags: two", TAGS, {0x02, 0x00, 0x01, 0xaa, 0x05, 0x02, 0xbb, 0xcc}, 8, KP_OK, 0},
    {"tags: a big tag number", TAGS, {0x01, 0xff, 0x7f, 0x00}, 4, KP_OK, 0},
    {"tags: count beyond the bytes", TAGS, {0x03, 0x00, 0x00}, 3, KP_ERR_TRUNCATED, 0},
    {"tags: huge count", TAGS, {0xff, 0xff, 0xff, 0xff, 0x0f, 0x00, 0x00}, 7, KP_ERR_TRUNCATED, 0},
    {"tags: size beyond the bytes", TAGS, {0x01, 0x00, 0x05, 0xaa}, 4, KP_ERR_TRUNCATED, 0},
    {"tags: huge size", TAGS, {0x01, 0x00, 0xff, 0xff, 0xff, 0xff, 0x0f}, 7, KP_ERR_TRUNCATED, 0},
    {"tags: overlong tag", TAGS, {0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 0x00}, 8, KP_ERR_BAD_VARINT, 0},
    {"tags: overlong count", TAGS, {0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 6, KP_ERR_BAD_VARINT, 0},
    {"tags: truncated size", TAGS, {0x01, 0x00}, 2, KP_ERR_TRUNCATED, 0},
};

/* Reads case c from the pieces; returns what was read in *value. */
static bool read_case(struct kp_pieces *p, const struct prim_case *c, int64_t *value)
{
	uint32_t u;
	*value = 0;
	switch (c->kind) {
	case UVARINT:
		if (!kp_pieces_uvarint(p, &u, "v"))
			return false;
		*value = u;
		return true;
	case LEN_COMPACT: return kp_pieces_len(p, true, true, value, "v");
	case LEN_INT16: return kp_pieces_len(p, false, false, value, "v");
	case LEN_INT32: return kp_pieces_len(p, false, true, value, "v");
	case TAGS: return kp_pieces_skip_tags(p);
	}
	return false;
}

static void check(const struct prim_case *c, const struct iovec *iov, int n, const char *how)
{
	struct kp_pieces p;
	int64_t value;
	kp_pieces_init(&p, iov, n, c->len);
	bool ok = read_case(&p, c, &value);
	cr_assert_eq(ok, c->err == KP_OK, "%s (%s): read %s, wanted %s", c->name, how, ok ? "ok" : "failed",
	             kp_error_name(c->err));
	cr_assert_eq(p.err, c->err, "%s (%s): %s, wanted %s", c->name, how, kp_error_name(p.err),
	             kp_error_name(c->err));
	cr_assert_leq(p.pos, c->len, "%s (%s): read past the end", c->name, how);
	if (ok) {
		cr_assert_eq(value, c->value, "%s (%s): %lld, wanted %lld", c->name, how, (long long)value,
		             (long long)c->value);
		cr_assert_eq(p.pos, c->len, "%s (%s): stopped at %zu of %zu", c->name, how, p.pos, c->len);
	} else {
		cr_assert_not_null(p.err_field, "%s (%s): no field named", c->name, how);
	}
}

Test(skip, each_primitive_reads_the_same_whatever_the_pieces)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct prim_case *c = &cases[i];
		uint8_t copy[16];
		memcpy(copy, c->bytes, sizeof(copy));
		struct iovec whole = {copy, c->len};
		check(c, &whole, 1, "whole");
		struct iovec ones[16];
		for (size_t k = 0; k < c->len; k++)
			ones[k] = (struct iovec){copy + k, 1};
		check(c, ones, (int)c->len, "one-byte pieces");
		for (size_t cut = 0; cut <= c->len; cut++) {
			struct iovec two[2] = {{copy, cut}, {copy + cut, c->len - cut}};
			check(c, two, 2, "split");
		}
	}
}

Test(skip, an_error_sticks_and_later_reads_fail_without_moving)
{
	const uint8_t b[] = {0xff, 0xfe, 0x00, 0x01};
	struct iovec iov = {(void *)b, sizeof(b)};
	struct kp_pieces p;
	int64_t n;
	uint32_t u;
	kp_pieces_init(&p, &iov, 1, sizeof(b));
	cr_assert_not(kp_pieces_len(&p, false, false, &n, "first"));
	size_t at = p.pos;
	cr_assert_not(kp_pieces_uvarint(&p, &u, "second"));
	cr_assert_not(kp_pieces_int(&p, 2, &n, "third"));
	cr_assert_eq(p.pos, at);
	cr_assert_eq(p.err, KP_ERR_BAD_LENGTH);
	cr_assert_str_eq(p.err_field, "first");
}

Test(skip, fixed_integers_are_big_endian_and_sign_extended)
{
	const uint8_t b[] = {0xff, 0xfe, 0x7f, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 0x80};
	struct iovec iov = {(void *)b, sizeof(b)};
	struct kp_pieces p;
	int64_t v;
	kp_pieces_init(&p, &iov, 1, sizeof(b));
	cr_assert(kp_pieces_int(&p, 2, &v, "a") && v == -2);
	cr_assert(kp_pieces_int(&p, 4, &v, "b") && v == 0x7fffffff);
	cr_assert(kp_pieces_int(&p, 8, &v, "c") && v == (int64_t)0x8000000000000001ULL);
	cr_assert(kp_pieces_int(&p, 1, &v, "d") && v == -128);
	cr_assert_not(kp_pieces_int(&p, 1, &v, "e"));
	cr_assert_eq(p.err, KP_ERR_TRUNCATED);
}
