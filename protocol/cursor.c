#include "cursor.h"

#include <string.h>

void kp_cursor_init(struct kp_cursor *c, const void *buf, size_t len)
{
	c->buf = buf;
	c->len = len;
	c->pos = 0;
	c->err = KP_OK;
	c->err_pos = 0;
	c->err_field = NULL;
}

bool kp_cursor_fail(struct kp_cursor *c, enum kp_error err, const char *field)
{
	if (c->err == KP_OK) {
		c->err = err;
		c->err_pos = c->pos;
		c->err_field = field;
	}
	return false;
}

const char *kp_error_name(enum kp_error err)
{
	switch (err) {
	case KP_OK: return "ok";
	case KP_ERR_TRUNCATED: return "truncated";
	case KP_ERR_BAD_LENGTH: return "bad length or count";
	case KP_ERR_BAD_VARINT: return "bad varint";
	case KP_ERR_BAD_TAGS: return "tagged fields out of order";
	case KP_ERR_BAD_VALUE: return "bad value";
	case KP_ERR_UNSUPPORTED: return "unsupported version";
	case KP_ERR_TRAILING: return "trailing bytes";
	case KP_ERR_NOMEM: return "out of memory";
	}
	return "?";
}

/* Returns a pointer to n readable bytes and advances, or NULL (error set). */
static const uint8_t *kp_take(struct kp_cursor *c, size_t n, const char *field)
{
	if (c->err != KP_OK)
		return NULL;
	if (n > c->len - c->pos) {
		kp_cursor_fail(c, KP_ERR_TRUNCATED, field);
		return NULL;
	}
	const uint8_t *p = c->buf + c->pos;
	c->pos += n;
	return p;
}

int8_t kp_read_i8(struct kp_cursor *c, const char *field)
{
	const uint8_t *p = kp_take(c, 1, field);
	return p ? (int8_t)p[0] : 0;
}

uint16_t kp_read_u16(struct kp_cursor *c, const char *field)
{
	const uint8_t *p = kp_take(c, 2, field);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

int16_t kp_read_i16(struct kp_cursor *c, const char *field)
{
	return (int16_t)kp_read_u16(c, field);
}

uint32_t kp_read_u32(struct kp_cursor *c, const char *field)
{
	const uint8_t *p = kp_take(c, 4, field);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

int32_t kp_read_i32(struct kp_cursor *c, const char *field)
{
	return (int32_t)kp_read_u32(c, field);
}

int64_t kp_read_i64(struct kp_cursor *c, const char *field)
{
	const uint8_t *p = kp_take(c, 8, field);
	uint64_t v = 0;
	if (!p)
		return 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

double kp_read_f64(struct kp_cursor *c, const char *field)
{
	uint64_t bits = (uint64_t)kp_read_i64(c, field);
	double d;
	memcpy(&d, &bits, sizeof(d));
	return d;
}

bool kp_read_bool(struct kp_cursor *c, const char *field)
{
	/* Any non-zero byte is true; re-encoding writes 1, so only 0/1 round-trip. */
	const uint8_t *p = kp_take(c, 1, field);
	if (p && p[0] > 1) {
		c->pos--;
		kp_cursor_fail(c, KP_ERR_BAD_VALUE, field);
		return false;
	}
	return p ? p[0] != 0 : false;
}

/* Little-endian base-128, at most max_bytes; the last byte must fit the width. */
static uint64_t kp_read_uvar(struct kp_cursor *c, int max_bytes, int width, const char *field)
{
	uint64_t v = 0;
	size_t start = c->pos;
	if (c->err != KP_OK)
		return 0;
	for (int i = 0; i < max_bytes; i++) {
		if (c->pos == c->len) {
			kp_cursor_fail(c, KP_ERR_TRUNCATED, field);
			return 0;
		}
		uint8_t b = c->buf[c->pos++];
		int shift = 7 * i;
		if (i == max_bytes - 1 && (b >> (width - shift)) != 0) {
			c->pos = start;
			kp_cursor_fail(c, KP_ERR_BAD_VARINT, field);
			return 0;
		}
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			return v;
	}
	c->pos = start;
	kp_cursor_fail(c, KP_ERR_BAD_VARINT, field);
	return 0;
}

uint32_t kp_read_uvarint(struct kp_cursor *c, const char *field)
{
	return (uint32_t)kp_read_uvar(c, 5, 32, field);
}

int32_t kp_read_varint(struct kp_cursor *c, const char *field)
{
	uint32_t u = (uint32_t)kp_read_uvar(c, 5, 32, field);
	return (int32_t)((u >> 1) ^ (~(u & 1) + 1));
}

int64_t kp_read_varlong(struct kp_cursor *c, const char *field)
{
	uint64_t u = kp_read_uvar(c, 10, 64, field);
	return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

struct kp_span kp_read_raw(struct kp_cursor *c, size_t n, const char *field)
{
	struct kp_span s = {NULL, 0};
	if (n > INT32_MAX) {
		kp_cursor_fail(c, KP_ERR_BAD_LENGTH, field);
		return s;
	}
	s.ptr = kp_take(c, n, field);
	s.len = s.ptr ? (int32_t)n : 0;
	return s;
}

/* Reads a length (compact: uvarint len+1; else int16 or int32) and its bytes. */
static struct kp_span kp_read_sized(struct kp_cursor *c, bool compact, bool wide, bool nullable, const char *field)
{
	struct kp_span s = {NULL, 0};
	size_t at = c->pos;
	int64_t len;
	if (compact)
		len = (int64_t)kp_read_uvarint(c, field) - 1;
	else
		len = wide ? kp_read_i32(c, field) : kp_read_i16(c, field);
	if (c->err != KP_OK)
		return s;
	if (len == -1) {
		if (!nullable) {
			c->pos = at;
			kp_cursor_fail(c, KP_ERR_BAD_VALUE, field);
			return s;
		}
		s.len = -1;
		return s;
	}
	if (len < -1 || (uint64_t)len > kp_cursor_left(c)) {
		c->pos = at;
		kp_cursor_fail(c, len < -1 ? KP_ERR_BAD_LENGTH : KP_ERR_TRUNCATED, field);
		return s;
	}
	return kp_read_raw(c, (size_t)len, field);
}

struct kp_span kp_read_string(struct kp_cursor *c, bool compact, bool nullable, const char *field)
{
	return kp_read_sized(c, compact, false, nullable, field);
}

struct kp_span kp_read_bytes(struct kp_cursor *c, bool compact, bool nullable, const char *field)
{
	return kp_read_sized(c, compact, true, nullable, field);
}

int32_t kp_read_array_len(struct kp_cursor *c, bool compact, bool nullable, size_t min_elem_size, const char *field)
{
	size_t at = c->pos;
	int64_t n = compact ? (int64_t)kp_read_uvarint(c, field) - 1 : kp_read_i32(c, field);
	if (c->err != KP_OK)
		return 0;
	if (n == -1) {
		if (nullable)
			return -1;
		c->pos = at;
		kp_cursor_fail(c, KP_ERR_BAD_VALUE, field);
		return 0;
	}
	if (n < -1 || (min_elem_size && (uint64_t)n > kp_cursor_left(c) / min_elem_size)) {
		c->pos = at;
		kp_cursor_fail(c, n < -1 ? KP_ERR_BAD_LENGTH : KP_ERR_TRUNCATED, field);
		return 0;
	}
	return (int32_t)n;
}
