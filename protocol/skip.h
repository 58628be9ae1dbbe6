/*
 * skip: walks a message laid out in pieces (the chunks of a socket buffer)
 * without copying it, to find where its top-level tagged fields start.
 *
 * Fetch v16+ and Produce v10+ responses carry broker addresses only in a
 * top-level tagged field (NodeEndpoints), which comes after every record
 * batch. A proxy walks the structure, skipping record batches by their
 * length, and learns whether there is anything to rewrite: usually there is
 * not, and the response then moves on untouched.
 */
#ifndef KP_SKIP_H
#define KP_SKIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "schema.h"

struct kp_pieces {
	const struct iovec *iov;
	int n;      /* pieces */
	int idx;    /* current piece */
	size_t off; /* offset in the current piece */
	size_t pos; /* offset in the whole message */
	size_t len; /* bytes in all pieces (the message) */
	enum kp_error err;
	const char *err_field;
};

void kp_pieces_init(struct kp_pieces *p, const struct iovec *iov, int n, size_t len);

/*
 * Walks a struct of schema s at version ver from the current position, up to
 * its tagged-field section (when top_tags is set: stops there and returns
 * that section's field count in *tag_count) or to its end. False on
 * malformed input (p->err says what).
 */
bool kp_skip_to_tags(struct kp_pieces *p, const struct kp_schema *s, int16_t ver, bool flexible, uint32_t *tag_count);

/* Skips one field f (a regular one, present at ver) at the current position. */
bool kp_skip_field(struct kp_pieces *p, const struct kp_field *f, int16_t ver, bool flexible);

/* Skips n bytes / reads n bytes (n <= 16) into out. */
bool kp_pieces_skip(struct kp_pieces *p, size_t n, const char *field);
bool kp_pieces_read(struct kp_pieces *p, void *out, size_t n, const char *field);

/*
 * The wire primitives, read from pieces. Each returns false on a failure
 * (p->err: KP_ERR_TRUNCATED when the pieces end inside the field,
 * KP_ERR_BAD_VARINT for a varint over 5 bytes or over 32 bits,
 * KP_ERR_BAD_LENGTH for a length below -1); the error is sticky.
 * Non-minimal varints (0x80 0x00 for 0) are read as Kafka reads them.
 */
bool kp_pieces_uvarint(struct kp_pieces *p, uint32_t *v, const char *field);
/* A big-endian signed integer of n bytes (1, 2, 4 or 8), sign-extended. */
bool kp_pieces_int(struct kp_pieces *p, size_t n, int64_t *v, const char *field);
/* A length or count: compact (uvarint n+1), else int32 (wide) or int16. -1: null. */
bool kp_pieces_len(struct kp_pieces *p, bool compact, bool wide, int64_t *n, const char *field);
/* A tagged-field section: its count, then each tag, size and data. */
bool kp_pieces_skip_tags(struct kp_pieces *p);

#endif
