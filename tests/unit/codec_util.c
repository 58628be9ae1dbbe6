#include "codec_util.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (const char *p = hex; *p; p++) {
		int d;
		if (*p == ' ' || *p == '\n' || *p == '\t')
			continue;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			cr_assert_fail("bad hex digit '%c'", *p);
		if (hi < 0) {
			hi = d;
		} else {
			cr_assert_lt(n, cap, "hex vector larger than its buffer");
			out[n++] = (uint8_t)(hi << 4 | d);
			hi = -1;
		}
	}
	cr_assert_eq(hi, -1, "odd number of hex digits");
	return n;
}

/* Decodes from a heap copy of exactly len bytes, so ASan sees any over-read. */
static bool decode_copy(struct kp_arena *a, bool request, int16_t api, int16_t version, const uint8_t *body, size_t len,
                        struct kp_message *m, struct kp_cursor *c, uint8_t **copy)
{
	*copy = malloc(len ? len : 1);
	cr_assert(*copy);
	memcpy(*copy, body, len);
	kp_cursor_init(c, *copy, len);
	return kp_message_decode(a, c, request, api, version, m);
}

struct kp_message check_roundtrip(struct kp_arena *a, bool request, int16_t api, int16_t version, const uint8_t *body,
                                  size_t len)
{
	struct kp_message m;
	struct kp_cursor c;
	struct kp_writer w;
	size_t outlen = 0;

	kp_cursor_init(&c, body, len);
	cr_assert(kp_message_decode(a, &c, request, api, version, &m), "api %d v%d %s: %s at byte %zu reading %s", api,
	          version, request ? "request" : "response", kp_error_name(c.err), c.err_pos,
	          c.err_field ? c.err_field : "?");
	cr_assert_not_null(m.body, "api %d v%d was not decoded (not in the decode range?)", api, version);
	kp_writer_init(&w);
	kp_message_encode(&w, &m);
	uint8_t *out = kp_writer_flatten(&w, &outlen);
	cr_assert_not_null(out);
	size_t at = 0;
	while (at < outlen && at < len && out[at] == body[at])
		at++;
	cr_assert(outlen == len && at == len, "api %d v%d %s: re-encoded %zu bytes, read %zu; first difference at %zu",
	          api, version, request ? "request" : "response", outlen, len, at);
	free(out);
	kp_writer_free(&w);
	return m;
}

void check_truncations(bool request, int16_t api, int16_t version, const uint8_t *body, size_t len)
{
	for (size_t cut = 0; cut < len; cut++) {
		struct kp_arena a;
		struct kp_message m;
		struct kp_cursor c;
		uint8_t *copy;
		kp_arena_init(&a, 1 << 24);
		bool ok = decode_copy(&a, request, api, version, body, cut, &m, &c, &copy);
		cr_assert_not(ok, "api %d v%d: a prefix of %zu of %zu bytes decoded", api, version, cut, len);
		cr_assert_leq(c.err_pos, cut);
		free(copy);
		kp_arena_free(&a);
	}
}

void check_corruptions(bool request, int16_t api, int16_t version, const uint8_t *body, size_t len)
{
	static const uint8_t patterns[][4] = {
	    {0xff, 0xff, 0xff, 0xfe}, /* -2 */
	    {0x7f, 0xff, 0xff, 0xff}, /* INT32_MAX */
	    {0xff, 0xff, 0xff, 0xff}, /* -1, and an endless varint */
	    {0x00, 0x00, 0x00, 0x00},
	};
	static const size_t widths[] = {1, 2, 4};
	uint8_t *buf = malloc(len ? len : 1);
	cr_assert(buf);
	for (size_t p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
		for (size_t wi = 0; wi < 3; wi++) {
			size_t width = widths[wi];
			for (size_t off = 0; off + width <= len; off++) {
				struct kp_arena a;
				struct kp_message m;
				struct kp_cursor c;
				uint8_t *copy;
				memcpy(buf, body, len);
				memcpy(buf + off, patterns[p] + 4 - width, width);
				kp_arena_init(&a, 1 << 24);
				if (decode_copy(&a, request, api, version, buf, len, &m, &c, &copy)) {
					/* Still valid (a value changed, or a varint became
					 * non-minimal): it must encode again. */
					struct kp_writer w;
					size_t outlen = 0;
					kp_writer_init(&w);
					kp_message_encode(&w, &m);
					uint8_t *out = kp_writer_flatten(&w, &outlen);
					cr_assert(out, "corrupted at %zu: could not re-encode", off);
					free(out);
					kp_writer_free(&w);
				}
				free(copy);
				kp_arena_free(&a);
			}
		}
	}
	free(buf);
}

struct kp_struct *item(const struct kp_value *v, int32_t i)
{
	cr_assert(i < v->a.cnt, "item %d of %d", i, v->a.cnt);
	return v->a.items[i].st;
}

bool span_is(struct kp_span s, const char *text)
{
	return s.len == (int32_t)strlen(text) && memcmp(s.ptr, text, (size_t)s.len) == 0;
}

const struct kp_schema *sub(const struct kp_schema *s, int idx)
{
	return s->fields[idx].sub;
}

const struct kp_value *field(const struct kp_struct *st, const char *name)
{
	int i = kp_field_index(st->schema, name);
	cr_assert_geq(i, 0, "%s has no field %s", st->schema->name, name);
	return &st->v[i];
}

void check_malformations(bool request, int16_t api, int16_t version, const uint8_t *body, size_t len)
{
	check_truncations(request, api, version, body, len);
	check_corruptions(request, api, version, body, len);
}
