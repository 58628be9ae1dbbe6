/*
 * schema: the interpreter for message tables — decode, encode, JSON.
 *
 * Decoding follows the wire order of a struct: its regular fields, then, in
 * flexible versions, the tagged-field section (uvarint count, then per field
 * uvarint tag, uvarint size, bytes; tags strictly ascending). A known tag is
 * decoded from exactly its declared size; an unknown one is kept as bytes.
 */
#include "schema.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

bool kp_field_in_version(const struct kp_field *f, int16_t ver, bool flexible)
{
	if (ver < f->since || ver > f->until)
		return false;
	return f->tag < 0 || flexible;
}

static bool kp_nullable(const struct kp_field *f, int16_t ver)
{
	return f->null_since >= 0 && ver >= f->null_since;
}

int kp_field_index(const struct kp_schema *s, const char *name)
{
	for (int i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return i;
	return -1;
}

size_t kp_type_fixed_size(uint8_t type)
{
	switch (type) {
	case KP_BOOL:
	case KP_INT8: return 1;
	case KP_INT16:
	case KP_UINT16: return 2;
	case KP_INT32:
	case KP_UINT32: return 4;
	case KP_INT64:
	case KP_FLOAT64: return 8;
	case KP_UUID: return 16;
	default: return 0;
	}
}

/* Smallest encoding of a value of this type; used to bound array counts. */
static size_t kp_min_size(uint8_t type, bool flexible)
{
	size_t fixed = kp_type_fixed_size(type);
	if (fixed)
		return fixed;
	switch (type) {
	case KP_STRING: return flexible ? 1 : 2;
	case KP_BYTES:
	case KP_RECORDS:
	case KP_ARRAY: return flexible ? 1 : 4;
	default: return 1; /* a struct: at least one field or its tag section */
	}
}

static void kp_set_default(struct kp_value *v, const struct kp_field *f)
{
	v->present = false;
	switch (f->type) {
	case KP_STRING:
	case KP_BYTES:
	case KP_RECORDS:
		v->s.ptr = NULL;
		v->s.len = (f->flags & KP_F_DEFAULT_NULL) || f->type == KP_RECORDS ? -1 : 0;
		break;
	case KP_ARRAY:
		v->a.items = NULL;
		v->a.cnt = (f->flags & KP_F_DEFAULT_NULL) ? -1 : 0;
		break;
	case KP_STRUCT: v->st = NULL; break;
	case KP_FLOAT64: v->f = (double)f->def; break;
	default: v->i = f->def; break;
	}
}

struct kp_struct *kp_struct_new(struct kp_arena *a, const struct kp_schema *s, int16_t ver)
{
	struct kp_struct *st = kp_arena_alloc(a, sizeof(*st) + s->nfields * sizeof(struct kp_value));
	if (!st)
		return NULL;
	st->schema = s;
	st->complete = s->nfields;
	for (int i = 0; i < s->nfields; i++) {
		kp_set_default(&st->v[i], &s->fields[i]);
		st->v[i].present = s->fields[i].tag < 0 && ver >= s->fields[i].since && ver <= s->fields[i].until;
	}
	return st;
}

static void kp_decode_value(struct kp_arena *a, struct kp_cursor *c, const struct kp_field *f, uint8_t type,
                            struct kp_value *v, int16_t ver, bool flexible, bool nullable);

static void kp_decode_array(struct kp_arena *a, struct kp_cursor *c, const struct kp_field *f, struct kp_value *v,
                            int16_t ver, bool flexible, bool nullable)
{
	int32_t n = kp_read_array_len(c, flexible, nullable, kp_min_size(f->elem, flexible), f->name);
	v->a.cnt = n;
	v->a.items = NULL;
	if (!kp_cursor_ok(c) || n <= 0)
		return;
	v->a.items = kp_arena_alloc(a, (size_t)n * sizeof(struct kp_value));
	if (!v->a.items) {
		kp_cursor_fail(c, KP_ERR_NOMEM, f->name);
		return;
	}
	for (int32_t i = 0; i < n && kp_cursor_ok(c); i++)
		kp_decode_value(a, c, f, f->elem, &v->a.items[i], ver, flexible, false);
}

static void kp_decode_value(struct kp_arena *a, struct kp_cursor *c, const struct kp_field *f, uint8_t type,
                            struct kp_value *v, int16_t ver, bool flexible, bool nullable)
{
	v->present = true;
	switch (type) {
	case KP_BOOL: v->i = kp_read_bool(c, f->name); break;
	case KP_INT8: v->i = kp_read_i8(c, f->name); break;
	case KP_INT16: v->i = kp_read_i16(c, f->name); break;
	case KP_UINT16: v->i = kp_read_u16(c, f->name); break;
	case KP_INT32: v->i = kp_read_i32(c, f->name); break;
	case KP_UINT32: v->i = kp_read_u32(c, f->name); break;
	case KP_INT64: v->i = kp_read_i64(c, f->name); break;
	case KP_FLOAT64: v->f = kp_read_f64(c, f->name); break;
	case KP_UUID: v->s = kp_read_raw(c, 16, f->name); break;
	case KP_STRING: v->s = kp_read_string(c, flexible, nullable, f->name); break;
	case KP_BYTES:
	case KP_RECORDS: v->s = kp_read_bytes(c, flexible, nullable, f->name); break;
	case KP_ARRAY: kp_decode_array(a, c, f, v, ver, flexible, nullable); break;
	case KP_STRUCT:
		/* A nullable struct: an int8 marker first, < 0 for null. */
		if (nullable && kp_read_i8(c, f->name) < 0)
			v->st = NULL;
		else
			v->st = kp_decode(a, c, f->sub, ver, flexible, -1);
		break;
	default: kp_cursor_fail(c, KP_ERR_BAD_VALUE, f->name); break;
	}
}

/* The tagged-field section of a struct. */
static void kp_decode_tags(struct kp_arena *a, struct kp_cursor *c, struct kp_struct *st, int16_t ver)
{
	const struct kp_schema *s = st->schema;
	uint32_t n = kp_read_uvarint(c, "_tagged_fields");
	int64_t last = -1;

	/* Each tagged field takes at least two bytes (tag, size). */
	if (!kp_cursor_ok(c) || n == 0)
		return;
	if (n > kp_cursor_left(c) / 2) {
		kp_cursor_fail(c, KP_ERR_BAD_LENGTH, "_tagged_fields");
		return;
	}
	for (uint32_t i = 0; i < n; i++) {
		size_t at = c->pos;
		uint32_t tag = kp_read_uvarint(c, "_tag");
		uint32_t size = kp_read_uvarint(c, "_tag_size");
		if (!kp_cursor_ok(c))
			return;
		if ((int64_t)tag <= last) {
			c->pos = at;
			kp_cursor_fail(c, KP_ERR_BAD_TAGS, "_tag");
			return;
		}
		last = tag;
		struct kp_span data = kp_read_raw(c, size, "_tag_data");
		if (!kp_cursor_ok(c))
			return;
		int known = -1;
		for (int k = 0; k < s->nfields; k++) {
			const struct kp_field *f = &s->fields[k];
			if (f->tag == (int)tag && ver >= f->since && ver <= f->until) {
				known = k;
				break;
			}
		}
		if (known >= 0) {
			const struct kp_field *f = &s->fields[known];
			struct kp_cursor sub;
			kp_cursor_init(&sub, data.ptr, (size_t)data.len);
			kp_decode_value(a, &sub, f, f->type, &st->v[known], ver, true, kp_nullable(f, ver));
			if (kp_cursor_ok(&sub) && kp_cursor_left(&sub) != 0)
				kp_cursor_fail(&sub, KP_ERR_TRAILING, f->name);
			if (!kp_cursor_ok(&sub)) {
				/* Report the failure at its place in the outer input. */
				c->pos = (size_t)(data.ptr - c->buf) + sub.err_pos;
				kp_cursor_fail(c, sub.err, sub.err_field);
				return;
			}
			continue;
		}
		if (!st->unknown) {
			st->unknown = kp_arena_alloc(a, n * sizeof(*st->unknown));
			if (!st->unknown) {
				kp_cursor_fail(c, KP_ERR_NOMEM, "_tagged_fields");
				return;
			}
		}
		st->unknown[st->unknown_cnt++] = (struct kp_raw_tag){tag, data};
	}
}

struct kp_struct *kp_decode(struct kp_arena *a, struct kp_cursor *c, const struct kp_schema *s, int16_t ver,
                            bool flexible, int limit)
{
	struct kp_struct *st;
	int n = limit < 0 || limit > s->nfields ? s->nfields : limit;

	if (!kp_cursor_ok(c))
		return NULL;
	st = kp_struct_new(a, s, ver);
	if (!st) {
		kp_cursor_fail(c, KP_ERR_NOMEM, s->name);
		return NULL;
	}
	for (int i = 0; i < n && kp_cursor_ok(c); i++) {
		const struct kp_field *f = &s->fields[i];
		if (f->tag >= 0 || ver < f->since || ver > f->until)
			continue;
		kp_decode_value(a, c, f, f->type, &st->v[i], ver, flexible, kp_nullable(f, ver));
	}
	if (limit < 0 && flexible)
		kp_decode_tags(a, c, st, ver);
	st->complete = (uint16_t)(limit < 0 ? s->nfields : n);
	return kp_cursor_ok(c) ? st : NULL;
}

/* ---- encode ------------------------------------------------------------ */

static void kp_encode_value(struct kp_writer *w, const struct kp_field *f, uint8_t type, const struct kp_value *v,
                            int16_t ver, bool flexible, bool nullable)
{
	switch (type) {
	case KP_BOOL: kp_write_bool(w, v->i != 0); break;
	case KP_INT8: kp_write_i8(w, (int8_t)v->i); break;
	case KP_INT16: kp_write_i16(w, (int16_t)v->i); break;
	case KP_UINT16: kp_write_u16(w, (uint16_t)v->i); break;
	case KP_INT32: kp_write_i32(w, (int32_t)v->i); break;
	case KP_UINT32: kp_write_u32(w, (uint32_t)v->i); break;
	case KP_INT64: kp_write_i64(w, v->i); break;
	case KP_FLOAT64: kp_write_f64(w, v->f); break;
	case KP_UUID: {
		static const uint8_t zero[16];
		kp_write_raw(w, v->s.len == 16 ? v->s.ptr : zero, 16);
		break;
	}
	case KP_STRING: kp_write_string(w, flexible, v->s); break;
	case KP_BYTES: kp_write_bytes(w, flexible, v->s, false); break;
	case KP_RECORDS: kp_write_bytes(w, flexible, v->s, true); break;
	case KP_ARRAY:
		kp_write_len(w, flexible, true, v->a.cnt);
		for (int32_t i = 0; i < v->a.cnt; i++)
			kp_encode_value(w, f, f->elem, &v->a.items[i], ver, flexible, false);
		break;
	case KP_STRUCT:
		if (nullable)
			kp_write_i8(w, v->st ? 1 : -1);
		if (v->st)
			kp_encode(w, v->st, ver, flexible, -1);
		break;
	}
}

static void kp_encode_tags(struct kp_writer *w, const struct kp_struct *st, int16_t ver)
{
	const struct kp_schema *s = st->schema;
	uint32_t count = st->unknown_cnt;
	for (int k = 0; k < s->nfields; k++)
		if (s->fields[k].tag >= 0 && st->v[k].present && kp_field_in_version(&s->fields[k], ver, true))
			count++;
	kp_write_uvarint(w, count);
	if (count == 0)
		return;

	/* Merge known (schema order is not tag order) and unknown fields by tag. */
	uint32_t u = 0;
	int64_t last = -1;
	for (uint32_t done = 0; done < count; done++) {
		int best = -1;
		int64_t best_tag = INT64_MAX;
		for (int k = 0; k < s->nfields; k++) {
			const struct kp_field *f = &s->fields[k];
			if (f->tag > last && f->tag < best_tag && st->v[k].present &&
			    kp_field_in_version(f, ver, true)) {
				best = k;
				best_tag = f->tag;
			}
		}
		if (u < st->unknown_cnt && st->unknown[u].tag < best_tag) {
			const struct kp_raw_tag *t = &st->unknown[u++];
			kp_write_uvarint(w, t->tag);
			kp_write_uvarint(w, (uint32_t)t->data.len);
			kp_write_raw(w, t->data.ptr, (size_t)t->data.len);
			last = t->tag;
			continue;
		}
		if (best < 0)
			break; /* unreachable: count says there is one more */
		struct kp_writer tmp;
		size_t len = 0;
		kp_writer_init(&tmp);
		kp_encode_value(&tmp, &s->fields[best], s->fields[best].type, &st->v[best], ver, true,
		                kp_nullable(&s->fields[best], ver));
		uint8_t *bytes = kp_writer_flatten(&tmp, &len);
		if (!bytes)
			w->nomem = true;
		kp_write_uvarint(w, (uint32_t)best_tag);
		kp_write_uvarint(w, (uint32_t)len);
		if (bytes)
			kp_write_raw(w, bytes, len);
		free(bytes);
		kp_writer_free(&tmp);
		last = best_tag;
	}
}

void kp_encode(struct kp_writer *w, const struct kp_struct *st, int16_t ver, bool flexible, int limit)
{
	const struct kp_schema *s = st->schema;
	int n = limit < 0 || limit > s->nfields ? s->nfields : limit;
	if (n > st->complete)
		n = st->complete; /* never invent the fields a prefix decode skipped */
	for (int i = 0; i < n; i++) {
		const struct kp_field *f = &s->fields[i];
		if (f->tag >= 0 || ver < f->since || ver > f->until)
			continue;
		kp_encode_value(w, f, f->type, &st->v[i], ver, flexible, kp_nullable(f, ver));
	}
	if (limit < 0 && flexible && st->complete == s->nfields)
		kp_encode_tags(w, st, ver);
}

/* ---- JSON -------------------------------------------------------------- */

static void kp_json_string(FILE *out, struct kp_span s)
{
	if (s.len < 0) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (int32_t i = 0; i < s.len; i++) {
		uint8_t ch = s.ptr[i];
		if (ch == '"' || ch == '\\')
			fprintf(out, "\\%c", ch);
		else if (ch < 0x20 || ch >= 0x7f)
			fprintf(out, "\\u%04x", ch); /* bytes, not code points: lossless */
		else
			fputc(ch, out);
	}
	fputc('"', out);
}

static void kp_json_hex(FILE *out, struct kp_span s)
{
	if (s.len < 0) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (int32_t i = 0; i < s.len; i++)
		fprintf(out, "%02x", s.ptr[i]);
	fputc('"', out);
}

/* Kafka prints a Uuid as URL-safe base64 without padding. */
static void kp_json_uuid(FILE *out, struct kp_span s)
{
	static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	fputc('"', out);
	for (int i = 0; s.len == 16 && i < 16; i += 3) {
		uint32_t v = (uint32_t)s.ptr[i] << 16 | (i + 1 < 16 ? (uint32_t)s.ptr[i + 1] << 8 : 0) |
		             (i + 2 < 16 ? s.ptr[i + 2] : 0);
		int chars = i + 2 < 16 ? 4 : i + 1 < 16 ? 3 : 2;
		for (int k = 0; k < chars; k++)
			fputc(tbl[(v >> (18 - 6 * k)) & 0x3f], out);
	}
	fputc('"', out);
}

static void kp_json_indent(FILE *out, int indent)
{
	if (indent < 0)
		return;
	fputc('\n', out);
	for (int i = 0; i < indent; i++)
		fputs("  ", out);
}

static void kp_json_value(FILE *out, const struct kp_field *f, uint8_t type, const struct kp_value *v, int16_t ver,
                          bool flexible, const uint8_t *base, int indent)
{
	switch (type) {
	case KP_BOOL: fputs(v->i ? "true" : "false", out); break;
	case KP_FLOAT64: fprintf(out, "%.17g", v->f); break;
	case KP_UUID: kp_json_uuid(out, v->s); break;
	case KP_STRING: kp_json_string(out, v->s); break;
	case KP_BYTES: kp_json_hex(out, v->s); break;
	case KP_RECORDS:
		if (v->s.len < 0)
			fputs("null", out);
		else
			fprintf(out, "{\"offset\":%td,\"length\":%" PRId32 "}", base ? v->s.ptr - base : 0, v->s.len);
		break;
	case KP_ARRAY:
		if (v->a.cnt < 0) {
			fputs("null", out);
			break;
		}
		fputc('[', out);
		for (int32_t i = 0; i < v->a.cnt; i++) {
			if (i)
				fputc(',', out);
			if (f->elem == KP_STRUCT)
				kp_json_indent(out, indent < 0 ? -1 : indent + 1);
			kp_json_value(out, f, f->elem, &v->a.items[i], ver, flexible, base,
			              indent < 0 ? -1 : indent + 1);
		}
		if (f->elem == KP_STRUCT && v->a.cnt > 0)
			kp_json_indent(out, indent);
		fputc(']', out);
		break;
	case KP_STRUCT:
		if (v->st)
			kp_json(out, v->st, ver, flexible, base, indent);
		else
			fputs("null", out);
		break;
	default: fprintf(out, "%" PRId64, v->i); break;
	}
}

void kp_json(FILE *out, const struct kp_struct *st, int16_t ver, bool flexible, const uint8_t *base, int indent)
{
	const struct kp_schema *s = st->schema;
	bool first = true;
	fputc('{', out);
	for (int i = 0; i < s->nfields; i++) {
		const struct kp_field *f = &s->fields[i];
		if (!kp_field_in_version(f, ver, flexible) || (f->tag >= 0 && !st->v[i].present))
			continue;
		if (!first)
			fputc(',', out);
		first = false;
		kp_json_indent(out, indent < 0 ? -1 : indent + 1);
		fprintf(out, "\"%s\":%s", f->name, indent < 0 ? "" : " ");
		kp_json_value(out, f, f->type, &st->v[i], ver, flexible, base, indent < 0 ? -1 : indent + 1);
	}
	if (st->unknown_cnt) {
		if (!first)
			fputc(',', out);
		first = false;
		kp_json_indent(out, indent < 0 ? -1 : indent + 1);
		fputs("\"_unknown_tagged_fields\":[", out);
		for (uint32_t t = 0; t < st->unknown_cnt; t++) {
			fprintf(out, "%s{\"tag\":%" PRIu32 ",\"data\":", t ? "," : "", st->unknown[t].tag);
			kp_json_hex(out, st->unknown[t].data);
			fputc('}', out);
		}
		fputc(']', out);
	}
	if (!first)
		kp_json_indent(out, indent);
	fputc('}', out);
}
