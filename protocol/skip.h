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

/* Skips n bytes / reads n bytes (n <= 16) into out. */
bool kp_pieces_skip(struct kp_pieces *p, size_t n, const char *field);
bool kp_pieces_read(struct kp_pieces *p, void *out, size_t n, const char *field);

#endif
