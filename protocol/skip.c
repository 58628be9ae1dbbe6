#include "skip.h"

#include <string.h>

void kp_pieces_init(struct kp_pieces *p, const struct iovec *iov, int n, size_t len)
{
	memset(p, 0, sizeof(*p));
	p->iov = iov;
	p->n = n;
	p->len = len;
}

static bool kp_pieces_fail(struct kp_pieces *p, enum kp_error err, const char *field)
{
	if (p->err == KP_OK) {
		p->err = err;
		p->err_field = field;
	}
	return false;
}

/* Moves over n bytes, copying them to out when out is not NULL. */
static bool kp_pieces_take(struct kp_pieces *p, uint8_t *out, size_t n, const char *field)
{
	if (p->err != KP_OK)
		return false;
	if (n > p->len - p->pos)
		return kp_pieces_fail(p, KP_ERR_TRUNCATED, field);
	p->pos += n;
	while (n) {
		if (p->idx >= p->n)
			return kp_pieces_fail(p, KP_ERR_TRUNCATED, field);
		size_t here = p->iov[p->idx].iov_len - p->off;
		size_t m = n < here ? n : here;
		if (out) {
			memcpy(out, (const uint8_t *)p->iov[p->idx].iov_base + p->off, m);
			out += m;
		}
		p->off += m;
		n -= m;
		if (p->off == p->iov[p->idx].iov_len) {
			p->idx++;
			p->off = 0;
		}
	}
	return true;
}

bool kp_pieces_skip(struct kp_pieces *p, size_t n, const char *field)
{
	return kp_pieces_take(p, NULL, n, field);
}

bool kp_pieces_read(struct kp_pieces *p, void *out, size_t n, const char *field)
{
	return kp_pieces_take(p, out, n, field);
}

bool kp_pieces_uvarint(struct kp_pieces *p, uint32_t *v, const char *field)
{
	*v = 0;
	for (int i = 0; i < 5; i++) {
		uint8_t b;
		if (!kp_pieces_read(p, &b, 1, field))
			return false;
		if (i == 4 && (b >> 4))
			break; /* more than 32 bits, or a sixth byte */
		*v |= (uint32_t)(b & 0x7f) << (7 * i);
		if (!(b & 0x80))
			return true;
	}
	return kp_pieces_fail(p, KP_ERR_BAD_VARINT, field);
}

bool kp_pieces_int(struct kp_pieces *p, size_t n, int64_t *v, const char *field)
{
	uint8_t b[8];
	uint64_t u = 0;
	if (n < 1 || n > 8)
		return kp_pieces_fail(p, KP_ERR_BAD_VALUE, field);
	if (!kp_pieces_read(p, b, n, field))
		return false;
	for (size_t i = 0; i < n; i++)
		u = u << 8 | b[i];
	/* sign-extend */
	*v = n == 8 ? (int64_t)u : (int64_t)(u ^ (1ULL << (8 * n - 1))) - (int64_t)(1ULL << (8 * n - 1));
	return true;
}

bool kp_pieces_len(struct kp_pieces *p, bool compact, bool wide, int64_t *n, const char *field)
{
	if (compact) {
		uint32_t u;
		if (!kp_pieces_uvarint(p, &u, field))
			return false;
		*n = (int64_t)u - 1;
	} else if (!kp_pieces_int(p, wide ? 4 : 2, n, field)) {
		return false;
	}
	return *n >= -1 || kp_pieces_fail(p, KP_ERR_BAD_LENGTH, field);
}

bool kp_pieces_skip_tags(struct kp_pieces *p)
{
	uint32_t n, tag, size;
	if (!kp_pieces_uvarint(p, &n, "_tagged_fields"))
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (!kp_pieces_uvarint(p, &tag, "_tag") || !kp_pieces_uvarint(p, &size, "_tag_size") ||
		    !kp_pieces_skip(p, size, "_tag_data"))
			return false;
	return true;
}

static bool kp_skip_value(struct kp_pieces *p, const struct kp_field *f, uint8_t type, int16_t ver, bool flexible)
{
	size_t fixed = kp_type_fixed_size(type);
	int64_t n;
	if (fixed)
		return kp_pieces_skip(p, fixed, f->name);
	switch (type) {
	case KP_STRING:
		return kp_pieces_len(p, flexible, false, &n, f->name) &&
		       kp_pieces_skip(p, n > 0 ? (size_t)n : 0, f->name);
	case KP_BYTES:
	case KP_RECORDS:
		return kp_pieces_len(p, flexible, true, &n, f->name) &&
		       kp_pieces_skip(p, n > 0 ? (size_t)n : 0, f->name);
	case KP_STRUCT:
		/* A nullable struct field (not an element of a nullable array): int8 marker, < 0 null. */
		if (f->type == KP_STRUCT && f->null_since >= 0 && ver >= f->null_since) {
			int8_t marker;
			if (!kp_pieces_read(p, &marker, 1, f->name))
				return false;
			if (marker < 0)
				return true;
		}
		return kp_skip_to_tags(p, f->sub, ver, flexible, NULL);
	case KP_ARRAY:
		if (!kp_pieces_len(p, flexible, true, &n, f->name))
			return false;
		if (n > 0 && kp_type_fixed_size(f->elem))
			return kp_pieces_skip(p, (size_t)n * kp_type_fixed_size(f->elem), f->name);
		for (int64_t i = 0; i < n; i++)
			if (!kp_skip_value(p, f, f->elem, ver, flexible))
				return false;
		return true;
	}
	return kp_pieces_fail(p, KP_ERR_BAD_VALUE, f->name);
}

bool kp_skip_field(struct kp_pieces *p, const struct kp_field *f, int16_t ver, bool flexible)
{
	return kp_skip_value(p, f, f->type, ver, flexible);
}

bool kp_skip_to_tags(struct kp_pieces *p, const struct kp_schema *s, int16_t ver, bool flexible, uint32_t *tag_count)
{
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		if (f->tag >= 0 || ver < f->since || ver > f->until)
			continue;
		if (!kp_skip_value(p, f, f->type, ver, flexible))
			return false;
	}
	if (!flexible)
		return true;
	if (tag_count) {
		/* Peek the count, leaving the position at the section's start. */
		struct kp_pieces at = *p;
		return kp_pieces_uvarint(&at, tag_count, "_tagged_fields") || kp_pieces_fail(p, at.err, at.err_field);
	}
	return kp_pieces_skip_tags(p);
}
