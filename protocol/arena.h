/*
 * arena: bump allocation for one decoded message, freed all at once.
 *
 * A cap bounds what one message may allocate, so that a hostile frame full of
 * tiny elements cannot turn into a huge decoded tree.
 */
#ifndef KP_ARENA_H
#define KP_ARENA_H

#include <stddef.h>

struct kp_arena_chunk;

struct kp_arena {
	struct kp_arena_chunk *head;
	size_t used; /* bytes handed out, all chunks */
	size_t cap;  /* 0: no cap */
};

void kp_arena_init(struct kp_arena *a, size_t cap);
/* Zeroed memory aligned for any value, or NULL (cap reached, or no memory). */
void *kp_arena_alloc(struct kp_arena *a, size_t n);
void kp_arena_free(struct kp_arena *a);

#endif
