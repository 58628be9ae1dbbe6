#include "writer.h"

#include <stdlib.h>
#include <string.h>

void kp_writer_init(struct kp_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void kp_writer_free(struct kp_writer *w)
{
	free(w->buf);
	free(w->segs);
	memset(w, 0, sizeof(*w));
}

void kp_writer_reset(struct kp_writer *w)
{
	w->len = 0;
	w->nsegs = 0;
	w->owned_start = 0;
	w->total = 0;
	w->nomem = false;
}

size_t kp_writer_size(const struct kp_writer *w)
{
	return w->total + (w->len - w->owned_start);
}

size_t kp_writer_referenced(const struct kp_writer *w)
{
	return kp_writer_size(w) - w->len; /* every owned byte is in buf[0, len) */
}

/* Makes room for n more owned bytes; returns where they go, or NULL. */
static uint8_t *kp_grow(struct kp_writer *w, size_t n)
{
	if (w->nomem)
		return NULL;
	if (n > w->cap - w->len) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap - w->len < n) {
			if (cap > SIZE_MAX / 2) {
				w->nomem = true;
				return NULL;
			}
			cap *= 2;
		}
		uint8_t *nb = realloc(w->buf, cap);
		if (!nb) {
			w->nomem = true;
			return NULL;
		}
		w->buf = nb;
		w->cap = cap;
	}
	uint8_t *p = w->buf + w->len;
	w->len += n;
	return p;
}

static bool kp_push_seg(struct kp_writer *w, struct kp_segment seg)
{
	if (w->nomem)
		return false;
	if (w->nsegs == w->segcap) {
		size_t cap = w->segcap ? w->segcap * 2 : 8;
		struct kp_segment *ns = realloc(w->segs, cap * sizeof(*ns));
		if (!ns) {
			w->nomem = true;
			return false;
		}
		w->segs = ns;
		w->segcap = cap;
	}
	w->segs[w->nsegs++] = seg;
	w->total += seg.len;
	return true;
}

static void kp_close_owned(struct kp_writer *w)
{
	if (w->len > w->owned_start) {
		kp_push_seg(w, (struct kp_segment){NULL, w->owned_start, w->len - w->owned_start});
		w->owned_start = w->len;
	}
}

void kp_write_raw(struct kp_writer *w, const void *p, size_t n)
{
	uint8_t *dst = kp_grow(w, n);
	if (dst && n)
		memcpy(dst, p, n);
}

void kp_write_ref(struct kp_writer *w, const void *p, size_t n)
{
	if (n == 0)
		return;
	kp_close_owned(w);
	kp_push_seg(w, (struct kp_segment){p, 0, n});
}

void kp_write_i8(struct kp_writer *w, int8_t v)
{
	uint8_t *p = kp_grow(w, 1);
	if (p)
		p[0] = (uint8_t)v;
}

void kp_write_u16(struct kp_writer *w, uint16_t v)
{
	uint8_t *p = kp_grow(w, 2);
	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

void kp_write_i16(struct kp_writer *w, int16_t v)
{
	kp_write_u16(w, (uint16_t)v);
}

void kp_write_u32(struct kp_writer *w, uint32_t v)
{
	uint8_t *p = kp_grow(w, 4);
	if (p) {
		p[0] = (uint8_t)(v >> 24);
		p[1] = (uint8_t)(v >> 16);
		p[2] = (uint8_t)(v >> 8);
		p[3] = (uint8_t)v;
	}
}

void kp_write_i32(struct kp_writer *w, int32_t v)
{
	kp_write_u32(w, (uint32_t)v);
}

void kp_write_i64(struct kp_writer *w, int64_t v)
{
	uint8_t *p = kp_grow(w, 8);
	if (p)
		for (int i = 0; i < 8; i++)
			p[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
}

void kp_write_f64(struct kp_writer *w, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	kp_write_i64(w, (int64_t)bits);
}

void kp_write_bool(struct kp_writer *w, bool v)
{
	kp_write_i8(w, v ? 1 : 0);
}

static void kp_write_uvar(struct kp_writer *w, uint64_t v)
{
	uint8_t tmp[10];
	size_t n = 0;
	do {
		uint8_t b = v & 0x7f;
		v >>= 7;
		tmp[n++] = (uint8_t)(b | (v ? 0x80 : 0));
	} while (v);
	kp_write_raw(w, tmp, n);
}

void kp_write_uvarint(struct kp_writer *w, uint32_t v)
{
	kp_write_uvar(w, v);
}

void kp_write_varint(struct kp_writer *w, int32_t v)
{
	kp_write_uvar(w, (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31)));
}

void kp_write_varlong(struct kp_writer *w, int64_t v)
{
	kp_write_uvar(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

size_t kp_uvarint_size(uint32_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

void kp_write_len(struct kp_writer *w, bool compact, bool wide, int32_t n)
{
	if (compact)
		kp_write_uvarint(w, (uint32_t)(n + 1));
	else if (wide)
		kp_write_i32(w, n);
	else
		kp_write_i16(w, (int16_t)n);
}

void kp_write_string(struct kp_writer *w, bool compact, struct kp_span s)
{
	kp_write_len(w, compact, false, s.len);
	if (s.len > 0)
		kp_write_raw(w, s.ptr, (size_t)s.len);
}

void kp_write_bytes(struct kp_writer *w, bool compact, struct kp_span s, bool by_ref)
{
	kp_write_len(w, compact, true, s.len);
	if (s.len > 0) {
		if (by_ref)
			kp_write_ref(w, s.ptr, (size_t)s.len);
		else
			kp_write_raw(w, s.ptr, (size_t)s.len);
	}
}

size_t kp_writer_reserve_i32(struct kp_writer *w)
{
	size_t off = w->len;
	kp_write_i32(w, 0);
	return off;
}

void kp_writer_patch_i32(struct kp_writer *w, size_t off, int32_t v)
{
	if (w->nomem || off + 4 > w->len)
		return;
	uint32_t u = (uint32_t)v;
	w->buf[off] = (uint8_t)(u >> 24);
	w->buf[off + 1] = (uint8_t)(u >> 16);
	w->buf[off + 2] = (uint8_t)(u >> 8);
	w->buf[off + 3] = (uint8_t)u;
}

void kp_writer_finish(struct kp_writer *w)
{
	kp_close_owned(w);
}

uint8_t *kp_writer_flatten(struct kp_writer *w, size_t *len)
{
	kp_writer_finish(w);
	if (w->nomem)
		return NULL;
	uint8_t *out = malloc(w->total ? w->total : 1);
	if (!out)
		return NULL;
	size_t at = 0;
	for (size_t i = 0; i < w->nsegs; i++) {
		const struct kp_segment *s = &w->segs[i];
		memcpy(out + at, s->ref ? s->ref : w->buf + s->off, s->len);
		at += s->len;
	}
	*len = at;
	return out;
}

void kp_write_writer(struct kp_writer *w, struct kp_writer *src)
{
	kp_writer_finish(src);
	if (src->nomem)
		w->nomem = true;
	for (size_t i = 0; i < src->nsegs && !w->nomem; i++) {
		const struct kp_segment *s = &src->segs[i];
		if (s->ref)
			kp_write_ref(w, s->ref, s->len);
		else
			kp_write_raw(w, src->buf + s->off, s->len);
	}
}
