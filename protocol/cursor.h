/*
 * cursor: bounds-checked reads of Kafka wire primitives from a byte span.
 *
 * Every read goes through one cursor with a sticky error: the first failure
 * records where it happened (byte offset and the field being read) and every
 * later read returns zero without touching memory. Callers read a run of
 * fields and check once, after them, with kp_cursor_ok() (kp_cursor_fail()
 * records a failure of their own). A length or count is checked
 * against the bytes left before anything trusts it, so a hostile count can
 * never cause an allocation larger than the input.
 *
 * Strings and bytes are returned as spans into the input (no copies).
 */
#ifndef KP_CURSOR_H
#define KP_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A span of input bytes; len -1 is a null string/bytes/array. */
struct kp_span {
	const uint8_t *ptr;
	int32_t len;
};

enum kp_error {
	KP_OK = 0,
	KP_ERR_TRUNCATED,   /* the input ended inside a field */
	KP_ERR_BAD_LENGTH,  /* a length or count below -1, or larger than what is left */
	KP_ERR_BAD_VARINT,  /* a varint longer than its type allows */
	KP_ERR_BAD_TAGS,    /* tagged fields out of order or repeated */
	KP_ERR_BAD_VALUE,   /* a value the protocol does not allow (e.g. null where not nullable) */
	KP_ERR_UNSUPPORTED, /* a version this build does not decode */
	KP_ERR_TRAILING,    /* bytes left over after the message */
	KP_ERR_NOMEM,
};

struct kp_cursor {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	enum kp_error err;
	size_t err_pos;        /* offset of the failing read */
	const char *err_field; /* name of the field being read */
};

void kp_cursor_init(struct kp_cursor *c, const void *buf, size_t len);

static inline bool kp_cursor_ok(const struct kp_cursor *c)
{
	return c->err == KP_OK;
}

static inline size_t kp_cursor_left(const struct kp_cursor *c)
{
	return c->len - c->pos;
}

/* Records the first error; later calls keep the first. Returns false. */
bool kp_cursor_fail(struct kp_cursor *c, enum kp_error err, const char *field);

const char *kp_error_name(enum kp_error err);

int8_t kp_read_i8(struct kp_cursor *c, const char *field);
int16_t kp_read_i16(struct kp_cursor *c, const char *field);
uint16_t kp_read_u16(struct kp_cursor *c, const char *field);
int32_t kp_read_i32(struct kp_cursor *c, const char *field);
uint32_t kp_read_u32(struct kp_cursor *c, const char *field);
int64_t kp_read_i64(struct kp_cursor *c, const char *field);
double kp_read_f64(struct kp_cursor *c, const char *field);
bool kp_read_bool(struct kp_cursor *c, const char *field);

/* Unsigned varint of at most 5 bytes (32 bits). */
uint32_t kp_read_uvarint(struct kp_cursor *c, const char *field);
/* Zigzag varint (5 bytes) and varlong (10 bytes). */
int32_t kp_read_varint(struct kp_cursor *c, const char *field);
int64_t kp_read_varlong(struct kp_cursor *c, const char *field);

/* n raw bytes as a span (n must fit in what is left). */
struct kp_span kp_read_raw(struct kp_cursor *c, size_t n, const char *field);

/*
 * String or bytes: int16 (strings) / int32 (bytes) length, or in compact form
 * an unsigned varint of length+1 (0 = null). A null where nullable is false
 * is KP_ERR_BAD_VALUE.
 */
struct kp_span kp_read_string(struct kp_cursor *c, bool compact, bool nullable, const char *field);
struct kp_span kp_read_bytes(struct kp_cursor *c, bool compact, bool nullable, const char *field);

/*
 * Array element count: int32, or compact uvarint count+1. Returns -1 for a
 * null array. The count is checked against the bytes left, assuming each
 * element takes at least min_elem_size bytes.
 */
int32_t kp_read_array_len(struct kp_cursor *c, bool compact, bool nullable, size_t min_elem_size, const char *field);

#endif
