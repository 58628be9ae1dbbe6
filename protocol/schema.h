/*
 * schema: Kafka messages described as data, and one interpreter that
 * decodes, encodes and prints any of them at any version.
 *
 * Each decoded API has a file (metadata.c, fetch.c, ...) holding tables of
 * struct kp_field written from Kafka's message definitions: Kafka's field
 * names, the versions a field exists in, the versions it may be null in, and
 * its tag when it is a tagged field. The interpreter below turns bytes into a
 * tree of values allocated from an arena, and the tree back into bytes:
 *
 *   bytes --kp_decode()--> struct kp_struct (values; strings, bytes and
 *                          record batches point into the input, never copied)
 *   tree  --kp_encode()--> kp_writer segments (record batches by reference)
 *
 * Unknown tagged fields are kept as raw (tag, bytes) and written back in tag
 * order with the known ones, so a message survives a round trip byte for byte.
 * kp_decode_prefix() stops after the first N fields, so a rewrite of an early
 * field (the Metadata brokers) re-encodes only that prefix and references the
 * rest of the message unchanged: its cost does not grow with partitions.
 */
#ifndef KP_SCHEMA_H
#define KP_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "arena.h"
#include "cursor.h"
#include "writer.h"

enum kp_type {
	KP_BOOL,
	KP_INT8,
	KP_INT16,
	KP_UINT16,
	KP_INT32,
	KP_UINT32,
	KP_INT64,
	KP_FLOAT64,
	KP_UUID,
	KP_STRING,
	KP_BYTES,
	KP_RECORDS, /* record batches: bytes that are never copied */
	KP_STRUCT,  /* a nested struct (sub) */
	KP_ARRAY,   /* array of elem; of structs when elem == KP_STRUCT */
};

#define KP_VMAX INT16_MAX /* "and every later version" */

/* Field flags */
#define KP_F_DEFAULT_NULL 0x01 /* absent or defaulted nullable string/array is null, not "" / [] */

struct kp_schema;

struct kp_field {
	const char *name; /* Kafka's name, e.g. "NodeId" */
	uint8_t type;
	uint8_t elem;         /* element type of a KP_ARRAY */
	int16_t since, until; /* versions the field exists in */
	int16_t null_since;   /* nullable from this version on; -1: never */
	int16_t tag;          /* -1: a regular field; else its tag (flexible versions only) */
	uint8_t flags;
	int64_t def; /* default of a numeric field */
	const struct kp_schema *sub;
};

struct kp_schema {
	const char *name;
	const struct kp_field *fields;
	uint16_t nfields;
};

#define KP_SCHEMA(sname, array)                                                                                        \
	{                                                                                                              \
		sname, array, (uint16_t)(sizeof(array) / sizeof(array[0]))                                             \
	}

/* Field constructors, to keep the tables readable. */
#define KP_FIELD(n, t, s, u)                                                                                           \
	{                                                                                                              \
		.name = n, .type = t, .since = s, .until = u, .null_since = -1, .tag = -1                              \
	}
#define KP_FIELD_D(n, t, s, u, d)                                                                                      \
	{                                                                                                              \
		.name = n, .type = t, .since = s, .until = u, .null_since = -1, .tag = -1, .def = d                    \
	}
#define KP_NFIELD(n, t, s, u, ns)                                                                                      \
	{                                                                                                              \
		.name = n, .type = t, .since = s, .until = u, .null_since = ns, .tag = -1                              \
	}
/* A nullable string whose default (absent, or in a new struct) is null. */
#define KP_NULL_STRING(n, s, ns)                                                                                       \
	{                                                                                                              \
		.name = n, .type = KP_STRING, .since = s, .until = KP_VMAX, .null_since = ns, .tag = -1,               \
		.flags = KP_F_DEFAULT_NULL                                                                             \
	}
#define KP_TAGGED_NULL_STRING(n, s, tg)                                                                                \
	{                                                                                                              \
		.name = n, .type = KP_STRING, .since = s, .until = KP_VMAX, .null_since = s, .tag = tg,                \
		.flags = KP_F_DEFAULT_NULL                                                                             \
	}
#define KP_ARRAY_OF(n, e, s, u)                                                                                        \
	{                                                                                                              \
		.name = n, .type = KP_ARRAY, .elem = e, .since = s, .until = u, .null_since = -1, .tag = -1            \
	}
/* A nullable array of e (not structs) whose default is null. */
#define KP_NULL_ARRAY_OF(n, e, s, ns)                                                                                  \
	{                                                                                                              \
		.name = n, .type = KP_ARRAY, .elem = e, .since = s, .until = KP_VMAX, .null_since = ns, .tag = -1,     \
		.flags = KP_F_DEFAULT_NULL                                                                             \
	}
#define KP_STRUCTS(n, sub_, s, u)                                                                                      \
	{                                                                                                              \
		.name = n, .type = KP_ARRAY, .elem = KP_STRUCT, .since = s, .until = u, .null_since = -1, .tag = -1,   \
		.sub = sub_                                                                                            \
	}
#define KP_NSTRUCTS(n, sub_, s, u, ns)                                                                                 \
	{                                                                                                              \
		.name = n, .type = KP_ARRAY, .elem = KP_STRUCT, .since = s, .until = u, .null_since = ns, .tag = -1,   \
		.sub = sub_                                                                                            \
	}
/* A nullable array of structs whose default is null. */
#define KP_NULL_STRUCTS(n, sub_, s, ns)                                                                                \
	{                                                                                                              \
		.name = n, .type = KP_ARRAY, .elem = KP_STRUCT, .since = s, .until = KP_VMAX, .null_since = ns,        \
		.tag = -1, .flags = KP_F_DEFAULT_NULL, .sub = sub_                                                     \
	}
/*
 * One nested struct that may be null: on the wire an int8 marker first, -1
 * for null, else (Kafka writes 1, and reads any value >= 0 as present) the
 * struct. The encoder writes -1 or 1.
 */
#define KP_NULL_STRUCT(n, sub_, s, ns)                                                                                 \
	{                                                                                                              \
		.name = n, .type = KP_STRUCT, .since = s, .until = KP_VMAX, .null_since = ns, .tag = -1, .sub = sub_   \
	}
#define KP_TAGGED(n, t, s, u, tg, d)                                                                                   \
	{                                                                                                              \
		.name = n, .type = t, .since = s, .until = u, .null_since = -1, .tag = tg, .def = d                    \
	}
#define KP_TAGGED_STRUCT(n, sub_, s, u, tg)                                                                            \
	{                                                                                                              \
		.name = n, .type = KP_STRUCT, .since = s, .until = u, .null_since = -1, .tag = tg, .sub = sub_         \
	}
#define KP_TAGGED_STRUCTS(n, sub_, s, u, tg)                                                                           \
	{                                                                                                              \
		.name = n, .type = KP_ARRAY, .elem = KP_STRUCT, .since = s, .until = u, .null_since = -1, .tag = tg,   \
		.sub = sub_                                                                                            \
	}

struct kp_struct;

struct kp_list {
	struct kp_value *items;
	int32_t cnt; /* -1: null */
};

struct kp_value {
	union {
		int64_t i;
		double f;
		struct kp_span s; /* STRING, BYTES, RECORDS (len -1: null); UUID (16 bytes) */
		struct kp_list a;
		struct kp_struct *st;
	};
	bool present; /* regular fields: exists at this version; tagged: was in the input or set */
};

struct kp_raw_tag {
	uint32_t tag;
	struct kp_span data;
};

struct kp_struct {
	const struct kp_schema *schema;
	uint16_t complete;          /* fields that hold real values: all, or the prefix kp_decode() read */
	struct kp_raw_tag *unknown; /* unknown tagged fields, in input order (ascending) */
	uint32_t unknown_cnt;
	struct kp_value v[]; /* one per schema field */
};

/*
 * Decodes a struct of schema s at version ver from the cursor. flexible says
 * whether ver is a flexible version of its API. Stops after `limit` fields
 * (-1: all, and then the tagged-field section). Returns NULL with the cursor's
 * error set on malformed input.
 */
struct kp_struct *kp_decode(struct kp_arena *a, struct kp_cursor *c, const struct kp_schema *s, int16_t ver,
                            bool flexible, int limit);

/* Encodes st at version ver (the first `limit` fields, -1: all). A struct from
 * a prefix decode encodes only that prefix, whatever limit says. */
void kp_encode(struct kp_writer *w, const struct kp_struct *st, int16_t ver, bool flexible, int limit);

/* A struct of schema s with every field at its default. */
struct kp_struct *kp_struct_new(struct kp_arena *a, const struct kp_schema *s, int16_t ver);

/* Encoded size of a fixed-width type (ints, bool, uuid); 0 for the others. */
size_t kp_type_fixed_size(uint8_t type);

/* Index of a field by Kafka name, or -1. */
int kp_field_index(const struct kp_schema *s, const char *name);

/* Whether field f exists at version ver (tagged fields: in a flexible version). */
bool kp_field_in_version(const struct kp_field *f, int16_t ver, bool flexible);

/*
 * Writes st as JSON. base is the start of the input, so that record batches
 * print as {"offset":..,"length":..} relative to it (NULL: absolute 0).
 */
void kp_json(FILE *out, const struct kp_struct *st, int16_t ver, bool flexible, const uint8_t *base, int indent);

#endif
