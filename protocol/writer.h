/*
 * writer: encodes Kafka wire primitives into an output made of segments.
 *
 * A segment is either bytes the writer owns (what an encoder produced) or a
 * reference to bytes it does not own (record batches, or the unchanged tail
 * of a message whose prefix was rewritten). A proxy hands references to the
 * socket layer without copying them; kp_writer_flatten() makes one buffer for
 * tools and tests. Allocation failure is sticky, like the cursor's errors.
 */
#ifndef KP_WRITER_H
#define KP_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cursor.h"

struct kp_segment {
	const uint8_t *ref; /* NULL: owned bytes at [off, off+len) of the writer's buffer */
	size_t off;
	size_t len;
};

struct kp_writer {
	uint8_t *buf; /* owned bytes */
	size_t len, cap;
	struct kp_segment *segs;
	size_t nsegs, segcap;
	size_t owned_start; /* start of the owned run not yet closed into a segment */
	size_t total;       /* bytes in all closed segments */
	bool nomem;
};

void kp_writer_init(struct kp_writer *w);
void kp_writer_free(struct kp_writer *w);
void kp_writer_reset(struct kp_writer *w);

static inline bool kp_writer_ok(const struct kp_writer *w)
{
	return !w->nomem;
}

/* Bytes written so far, owned and referenced. */
size_t kp_writer_size(const struct kp_writer *w);
/* Of those, the bytes referenced (kp_write_ref); the rest were copied into the writer. */
size_t kp_writer_referenced(const struct kp_writer *w);

void kp_write_raw(struct kp_writer *w, const void *p, size_t n);
/* References n bytes at p (they must outlive the writer's output). */
void kp_write_ref(struct kp_writer *w, const void *p, size_t n);

void kp_write_i8(struct kp_writer *w, int8_t v);
void kp_write_i16(struct kp_writer *w, int16_t v);
void kp_write_u16(struct kp_writer *w, uint16_t v);
void kp_write_i32(struct kp_writer *w, int32_t v);
void kp_write_u32(struct kp_writer *w, uint32_t v);
void kp_write_i64(struct kp_writer *w, int64_t v);
void kp_write_f64(struct kp_writer *w, double v);
void kp_write_bool(struct kp_writer *w, bool v);
void kp_write_uvarint(struct kp_writer *w, uint32_t v);
void kp_write_varint(struct kp_writer *w, int32_t v);
void kp_write_varlong(struct kp_writer *w, int64_t v);

/* Length prefix of a string/bytes/array: compact (uvarint n+1) or int16/int32; -1 = null. */
void kp_write_len(struct kp_writer *w, bool compact, bool wide, int32_t n);
void kp_write_string(struct kp_writer *w, bool compact, struct kp_span s);
/* Bytes; by_ref references the data instead of copying it (record batches). */
void kp_write_bytes(struct kp_writer *w, bool compact, struct kp_span s, bool by_ref);

/* Reserves a 4-byte slot in owned bytes; returns its offset for kp_writer_patch_i32(). */
size_t kp_writer_reserve_i32(struct kp_writer *w);
void kp_writer_patch_i32(struct kp_writer *w, size_t off, int32_t v);

/* Appends what src wrote (finishing it): its owned bytes copied, its references kept as references. */
void kp_write_writer(struct kp_writer *w, struct kp_writer *src);

/* Closes the open owned run; after this, segs/nsegs describe the output. */
void kp_writer_finish(struct kp_writer *w);

/* The whole output in one malloc'd buffer (caller frees); NULL on no memory. */
uint8_t *kp_writer_flatten(struct kp_writer *w, size_t *len);

/* Encoded size of an unsigned varint. */
size_t kp_uvarint_size(uint32_t v);

#endif
